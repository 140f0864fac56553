import Foundation
import TenantEdgeCore

#if canImport(Glibc)
    import Glibc
#endif

/// Durable replacement of a whole file, for state a daemon must find again after a crash or a power
/// cut (the node's bundle and feed cursor, the origin's registry, log and ledger): either the old
/// file or the new one is on disk, never a torn mix.
package enum DurableFile {
    /// Writes to a temporary file (mode 0600), fsyncs it, renames it over `path`, fsyncs the directory.
    /// A short write, a failed fsync or a failed rename throws `.io` naming the path, and the old file
    /// stays as it was.
    package static func write(_ bytes: [UInt8], to path: String) throws(EdgeError) {
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw EdgeError(.io, "cannot create \(temporary)") }
        let written = bytes.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return false }
                offset += count
            }
            return true
        }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written, synced else {
            unlink(temporary)
            throw EdgeError(.io, "cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw EdgeError(.io, "cannot rename \(temporary) to \(path)") }
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }
}
