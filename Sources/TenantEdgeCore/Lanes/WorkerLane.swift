import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Which lane the calling thread is: a small index that each event loop thread claims once, so
/// hit-path state (counters, histograms, buffers) can be kept per event loop and touched by no
/// other core. A thread without a lane (a test's own thread, the cooperative pool, a libcurl queue)
/// gets `nil` and uses the shared, locked fallback of whatever it calls.
///
/// Lanes are never given back: a thread that ends keeps its index, so no two threads ever share
/// one. After `capacity` claims, further threads simply run without a lane.
public enum WorkerLane {
    /// Lanes a process hands out; each lane-local value reserves a pointer per lane.
    public static let capacity = 64

    private static let claimed = Atomic<Int>(0)
    /// The thread-specific slot holding `index + 1` (0, the initial value, means no lane).
    @usableFromInline static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create")
        return key
    }()

    /// The calling thread's lane, or nil when it never claimed one.
    @inlinable
    public static var current: Int? {
        let raw = Int(bitPattern: pthread_getspecific(key))
        return raw == 0 ? nil : raw &- 1
    }

    /// Gives the calling thread a lane (once; later calls return the same one). Nil when all
    /// `capacity` lanes are taken: the thread then works without one.
    @discardableResult
    public static func claim() -> Int? {
        if let current { return current }
        let index = claimed.add(1, ordering: .relaxed).oldValue
        guard index < capacity, pthread_setspecific(key, UnsafeRawPointer(bitPattern: index + 1)) == 0 else {
            return nil
        }
        return index
    }
}
