import Foundation
import Synchronization

/// Wall-clock time in seconds since the Unix epoch, injected wherever freshness, ages or lags are
/// computed so tests can move time instead of sleeping.
public protocol CacheClock: Sendable {
    func now() -> Double
}

/// The real clock.
public struct SystemCacheClock: CacheClock {
    public init() {}
    public func now() -> Double { Date().timeIntervalSince1970 }
}

/// A clock that only moves when told to; for tests of TTLs and staleness.
public final class ManualCacheClock: CacheClock {
    private let current: Mutex<Double>  // protects the current instant

    public init(_ start: Double = 1_700_000_000) { current = Mutex(start) }
    public func now() -> Double { current.withLock { $0 } }
    public func advance(by seconds: Double) { current.withLock { $0 += seconds } }
}
