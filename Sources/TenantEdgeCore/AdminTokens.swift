/// Admin bearer tokens as the tokens file lists them: only the SHA-256 of each token is known, with
/// its scopes and the tenants it may touch (`*` for all). Comparison is constant-time over every
/// configured token, so timing reveals neither which token nor how much of one matched.
public struct AdminTokens: Sendable {
    public enum Scope: String, Sendable, CaseIterable { case purge, config, read, admin }

    public struct Token: Sendable, Equatable {
        public var sha256: [UInt8]
        public var scopes: Set<Scope>
        public var tenants: [String]
        public init(sha256: [UInt8], scopes: Set<Scope>, tenants: [String]) {
            self.sha256 = sha256
            self.scopes = scopes
            self.tenants = tenants
        }

        /// `admin` implies every other scope.
        public func allows(_ scope: Scope) -> Bool { scopes.contains(scope) || scopes.contains(.admin) }
        public func allows(tenant: String) -> Bool { tenants.contains("*") || tenants.contains(tenant) }
    }

    public enum Verdict: Sendable, Equatable {
        case allowed(Token)
        /// No token, or one that matches nothing: 401.
        case unauthenticated
        /// A valid token without the scope or tenant: 403.
        case forbidden(String)
    }

    public let tokens: [Token]
    public init(_ tokens: [Token]) { self.tokens = tokens }

    /// Finds the token whose SHA-256 is `digest`, comparing against all of them in constant time.
    public func match(digest: [UInt8]) -> Token? {
        var found: Token? = nil
        for token in tokens where Self.constantTimeEquals(token.sha256, digest) { found = token }
        return found
    }

    /// Decides a request needing `scope`, for `tenant` when the call targets one.
    public func authorize(digest: [UInt8]?, scope: Scope, tenant: String? = nil) -> Verdict {
        guard let digest, let token = match(digest: digest) else { return .unauthenticated }
        guard token.allows(scope) else { return .forbidden("token lacks the '\(scope.rawValue)' scope") }
        if let tenant, !token.allows(tenant: tenant) {
            return .forbidden("token is not allowed for tenant '\(tenant)'")
        }
        return .allowed(token)
    }

    /// Equal-length comparison whose time depends only on the lengths.
    public static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<lhs.count { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
