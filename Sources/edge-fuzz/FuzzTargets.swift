import Foundation
import TenantEdgeConfig
import TenantEdgeCore

/// The parsers that read outside bytes, each fed arbitrary input with the properties it must keep
/// whatever arrives. A trap here (a failed `precondition`, or one inside the parser) is a finding:
/// libFuzzer saves the input, and once fixed it goes into `Tests/fuzz-corpus/<target>/`, which
/// `make test` replays.
enum FuzzTargets {
    typealias Target = @Sendable ([UInt8]) -> Void

    static let all: [String: Target] = [
        "query": query, "cache-control": cacheControl, "http-date": httpDate, "purge": purge, "feed": feed,
        "bundle": bundle, "l2-codec": l2Codec, "request-target": requestTarget,
        "http-request": RequestDecoderDifferential.check,
    ]

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Admin and origin query strings: never a trap, never an empty name.
    static let query: Target = { bytes in
        let text = text(bytes)
        precondition(QueryString.parse(Substring(text)).keys.allSatisfy { !$0.isEmpty })
        let (path, query) = QueryString.split(target: text)
        precondition(path.count + query.count <= text.count)
    }

    /// `Cache-Control`, `Age`, `Expires` and `Date` from an upstream: lifetimes stay in range.
    static let cacheControl: Target = { bytes in
        let value = text(bytes)
        let control = CacheControl(parsing: value)
        for seconds in [control.maxAge, control.sMaxAge, control.staleIfError, control.staleWhileRevalidate] {
            if let seconds { precondition((0...2_147_483_648).contains(seconds)) }
        }
        let headers = [
            HeaderField("Cache-Control", value), HeaderField("Age", value), HeaderField("Expires", value),
            HeaderField("Date", value), HeaderField("Surrogate-Key", value),
        ]
        if case .store(let life) = StoragePolicy.decide(
            requestHeaders: [HeaderField("Cookie", value)], status: 200,
            responseHeaders: headers, responseTime: 1.7e9, defaultTTL: 3600)
        {
            for seconds in [life.freshness, life.initialAge, life.keep] {
                precondition(seconds.isFinite && seconds >= 0 && seconds <= 2 * StoragePolicy.longestLifetime)
            }
        }
        precondition(StoragePolicy.tags(from: headers).count <= StoragePolicy.maxTags)
    }

    /// HTTP dates: what parses formats back to the same instant; any Double formats.
    static let httpDate: Target = { bytes in
        // `31 Dec 9999 23:59:60` is the one date past what `format` writes (it clamps there).
        if let instant = HTTPDate.parse(text(bytes)), instant <= 253_402_300_799 {
            precondition(HTTPDate.parse(HTTPDate.format(instant)) == instant)
        }
        if bytes.count >= 8 {
            let bits = bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            precondition(HTTPDate.format(Double(bitPattern: bits)).hasSuffix(" GMT"))
        }
    }

    /// Purge bodies from publishers and admins: within the limits when accepted.
    static let purge: Target = { bytes in
        guard let purge = try? PurgeRequest(json: bytes) else { return }
        precondition(purge.keys.count + purge.tags.count + purge.prefixes.count <= PurgeRequest.Limits.items)
        precondition(!purge.tenant.isEmpty)
    }

    /// Feed answers from the origin: the first byte picks the status, the next eight the cursor.
    /// Accepted events follow the cursor one by one.
    static let feed: Target = { bytes in
        guard let first = bytes.first else { return }
        let status = first & 1 == 0 ? 200 : 410
        let after = Int(
            bytes.dropFirst().prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                % UInt64(FeedAnswer.largestSequence + 2))
        guard let answer = try? FeedAnswer.parse(status: status, body: Array(bytes.dropFirst(9)), after: after) else {
            return
        }
        if case .events(let events, let head) = answer {
            for (offset, event) in events.enumerated() {
                precondition(event.seq == after + 1 + offset && event.seq <= head)
            }
        }
    }

    /// Config bundles (after their signature checked out): read with the node file's rules.
    static let bundle: Target = { bytes in
        var base = EdgeConfig()
        base.security.masterKeyFile = "/unused"
        guard let (bundle, config) = try? ConfigBundle.read(bytes, base: base) else { return }
        precondition(bundle.version >= 1 && config.validate().isEmpty)
    }

    /// L2 values from Redis: what decodes is in range and encodes back to the same bytes.
    static let l2Codec: Target = { bytes in
        _ = L2EntryCodec.decodeValue(bytes)
        guard let entry = L2EntryCodec.decode(bytes) else { return }
        precondition(L2EntryCodec.encode(entry) == bytes)
        precondition(entry.lifetime.keep <= 2 * StoragePolicy.longestLifetime && entry.responseTime.isFinite)
    }

    /// Request targets and hosts from clients: normalisation is idempotent and stays origin-form.
    static let requestTarget: Target = { bytes in
        let raw = text(bytes)
        _ = HostName.isValid(raw)
        _ = RequestTarget.staysUnderBasePath(raw)
        guard case .success(let accepted) = RequestTarget.accept(method: "GET", rawTarget: raw) else { return }
        precondition(accepted.target.hasPrefix("/"))
        precondition(accepted.isNormal == RequestTarget.isNormal(accepted.target))
        if accepted.isNormal {
            precondition(RequestTarget.normalize(accepted.target) == accepted.target)
        }
        guard let normal = RequestTarget.normalize(accepted.target) else { return }
        precondition(normal.hasPrefix("/") && RequestTarget.normalize(normal) == normal)
        _ = TenantCache.prefixes(of: normal)
    }
}
