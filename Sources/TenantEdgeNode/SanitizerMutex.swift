#if TSAN
    import TenantEdgeCore

    /// In the ThreadSanitizer build, this module's locks are ones the sanitizer sees (see
    /// `SanitizerVisibleMutex`); every other build uses `Synchronization.Mutex`.
    typealias Mutex = SanitizerVisibleMutex
#endif
