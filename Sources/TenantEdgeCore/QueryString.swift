import Foundation

/// The query of an admin or origin request (`a=1&b=two`), read without ever indexing past what is
/// there: `?=`, `?&&`, `?a` and `?=x` are all answers, never a trap. The first occurrence of a name
/// wins, so a repeated name cannot change what an earlier check saw.
public enum QueryString {
    /// Names and values, percent-decoded (an undecodable value is kept as it arrived). Pairs with an
    /// empty name are dropped.
    public static func parse(_ text: Substring) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let name: Substring
            let value: Substring
            if let equals = pair.firstIndex(of: "=") {
                name = pair[..<equals]
                value = pair[pair.index(after: equals)...]
            } else {
                name = pair
                value = ""
            }
            guard !name.isEmpty else { continue }
            let key = String(name).removingPercentEncoding ?? String(name)
            if fields[key] != nil { continue }
            fields[key] = String(value).removingPercentEncoding ?? String(value)
        }
        return fields
    }

    /// The path and the query of a request target (`/a?b=1` → `/a`, `b=1`); the query is empty when
    /// there is none.
    public static func split(target: String) -> (path: Substring, query: Substring) {
        // Searched as a byte: a `Character` search pays for grapheme breaking on every byte.
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (Substring(target), "") }
        return (target[..<mark], target[target.utf8.index(after: mark)...])
    }
}
