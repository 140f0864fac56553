#if TSAN
    import Glibc

    /// The lock every module of ours uses as `Mutex` in the ThreadSanitizer build (`make sanitize-thread`,
    /// which compiles with `-DTSAN`), and only there: each module's `SanitizerMutex.swift` shadows
    /// `Synchronization.Mutex` with it.
    ///
    /// Why: on Linux, `Synchronization.Mutex` locks with atomics and `futex` calls inside the standard
    /// library, which the sanitizer neither instruments nor intercepts, so it saw no ordering between
    /// two critical sections of the same lock and reported every `withLock` body touched from two
    /// threads as a race (43 such reports in the first run, none of them real). A `pthread_mutex_t` is
    /// intercepted, so the sanitizer orders the sections and reports only what no lock orders.
    /// The same API as `Mutex` where we use it; a class, since the pthread mutex must not move.
    package final class SanitizerVisibleMutex<Value>: @unchecked Sendable {
        private let mutex: UnsafeMutablePointer<pthread_mutex_t>
        private var value: Value  // only under `mutex`

        package init(_ value: sending Value) {
            mutex = .allocate(capacity: 1)
            mutex.initialize(to: pthread_mutex_t())
            // Error-checking: locking it again on the same thread fails (and traps below) instead of
            // hanging, as `Synchronization.Mutex` traps; a recursive lock is how a bug shows here.
            var attributes = pthread_mutexattr_t()
            pthread_mutexattr_init(&attributes)
            pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ERRORCHECK))
            precondition(pthread_mutex_init(mutex, &attributes) == 0, "pthread_mutex_init failed")
            pthread_mutexattr_destroy(&attributes)
            self.value = value
        }

        deinit {
            pthread_mutex_destroy(mutex)
            mutex.deallocate()
        }

        package func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
            precondition(pthread_mutex_lock(mutex) == 0, "a Mutex locked again on the thread that holds it")
            defer { pthread_mutex_unlock(mutex) }
            return try body(&value)
        }
    }
#endif
