/// Narrows a Prometheus exposition to the tenants a token may see: every sample line with a
/// `tenant="…"` label of another tenant is dropped; lines without a tenant label stay.
enum MetricsScope {
    static func filter(_ exposition: [UInt8], allowed: (String) -> Bool) -> [UInt8] {
        let marker = Array("tenant=\"".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(exposition.count)
        for line in exposition.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            if let start = line.firstRange(of: marker)?.upperBound,
                let end = line[start...].firstIndex(of: UInt8(ascii: "\"")),
                !allowed(String(decoding: line[start..<end], as: UTF8.self))
            {
                continue
            }
            out.append(contentsOf: line)
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }
}
