import NIOHTTP1
import TenantEdgeCore

extension HTTPMethod {
    /// NIO's method for one the strict parser named (it names no other).
    init(_ method: RequestMethod) {
        switch method {
        case .get: self = .GET
        case .head: self = .HEAD
        case .post: self = .POST
        case .put: self = .PUT
        case .delete: self = .DELETE
        case .options: self = .OPTIONS
        case .patch: self = .PATCH
        case .trace: self = .TRACE
        case .connect: self = .CONNECT
        }
    }
}
