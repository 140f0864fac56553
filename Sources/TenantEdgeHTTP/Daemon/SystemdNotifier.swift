import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// systemd's readiness protocol without libsystemd: a datagram to `$NOTIFY_SOCKET` (a path, or
/// `@name` for an abstract socket). `READY=1` once the listeners are bound, `STOPPING=1` when a
/// graceful stop begins, `RELOADING=1` (with `MONOTONIC_USEC`) and `READY=1` around a reload.
/// Without `NOTIFY_SOCKET` (not under systemd `Type=notify`) it does nothing.
public struct SystemdNotifier: Sendable {
    private let path: String?

    public init(environment: [String: String]) {
        let value = environment["NOTIFY_SOCKET"] ?? ""
        // A path (absolute) or an abstract name; anything else is not systemd's and is ignored.
        path = value.hasPrefix("/") || value.hasPrefix("@") ? value : nil
    }

    public var isActive: Bool { path != nil }

    public func ready(status: String? = nil) { send("READY=1" + (status.map { "\nSTATUS=" + $0 } ?? "")) }
    public func stopping() { send("STOPPING=1") }

    /// Before a reload: systemd (`Type=notify-reload` or `ExecReload`) waits for the next `READY=1`.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = Int(now.tv_sec) &* 1_000_000 &+ Int(now.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
    }

    /// Sends `message`; a failure is not the daemon's business (systemd then times out on its own).
    public func send(_ message: String) {
        guard let path else { return }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let payload = Array(message.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                payload.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, 0, socketAddress, length) }
            }
        }
    }
}
