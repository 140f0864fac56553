import Synchronization

/// A version number handed out in order, for upstream scripts that must change their answer.
package final class VersionCounter: Sendable {
    private let value = Mutex(0)
    package init() {}
    package func next() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
}

/// A one-way switch set by one task and read by another.
package final class Flag: Sendable {
    private let value = Mutex(false)
    package init() {}
    package var isSet: Bool { value.withLock { $0 } }
    package func set() { value.withLock { $0 = true } }
}
