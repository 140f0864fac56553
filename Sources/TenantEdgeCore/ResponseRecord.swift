/// The plaintext form of a stored response, the bytes that get sealed. The headers are kept in
/// HTTP/1.1 wire form, so a hit opens the record once and writes the header block and the body to
/// the socket as slices of the opened buffer, creating no strings and copying nothing.
///
/// Layout: `0x02 | status u16 | blockLength u32 | ("Name: value\r\n")* | body`. Headers whose values
/// the cache recomputes per response (`Age`, `Content-Length`) and hop-by-hop headers are never in
/// the block (see `StoredHeaders`).
public struct ResponseRecord: Sendable, Equatable {
    public var status: Int
    public var headers: [HeaderField]
    public var body: [UInt8]

    public init(status: Int, headers: [HeaderField], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static let formatByte: UInt8 = 2
    /// Bytes before the header block.
    public static let prefixCount = 7

    public func encoded() -> [UInt8] {
        var block: [UInt8] = []
        block.reserveCapacity(headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
        for header in headers {
            block.append(contentsOf: header.name.utf8)
            block.append(contentsOf: [0x3A, 0x20])
            block.append(contentsOf: header.value.utf8)
            block.append(contentsOf: [0x0D, 0x0A])
        }
        var out: [UInt8] = []
        out.reserveCapacity(Self.prefixCount + block.count + body.count)
        out.append(Self.formatByte)
        out.append(UInt8(status >> 8))
        out.append(UInt8(status & 0xFF))
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8((block.count >> shift) & 0xFF)) }
        out.append(contentsOf: block)
        out.append(contentsOf: body)
        return out
    }

    /// Where the parts of an encoded record are, without decoding any header: the hit path's view.
    public struct Layout: Sendable, Equatable {
        public var status: Int
        public var headerBlock: Range<Int>
        public var bodyOffset: Int
    }

    public static func layout(_ bytes: UnsafeRawBufferPointer) -> Layout? {
        guard bytes.count >= prefixCount, bytes[0] == formatByte else { return nil }
        let status = Int(bytes[1]) << 8 | Int(bytes[2])
        let length = (3..<7).reduce(0) { $0 << 8 | Int(bytes[$1]) }
        guard (100...999).contains(status), prefixCount + length <= bytes.count else { return nil }
        return Layout(status: status, headerBlock: prefixCount..<prefixCount + length, bodyOffset: prefixCount + length)
    }

    /// The status and headers of an encoded record and where its body starts; nil when malformed.
    public static func decodeHead(_ bytes: UnsafeRawBufferPointer) -> (
        status: Int, headers: [HeaderField], bodyOffset: Int
    )? {
        guard let layout = layout(bytes) else { return nil }
        var headers: [HeaderField] = []
        var lineStart = layout.headerBlock.lowerBound
        var index = lineStart
        while index + 1 < layout.headerBlock.upperBound {
            if bytes[index] == 0x0D && bytes[index + 1] == 0x0A {
                let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<index])
                guard let colon = line.firstIndex(of: 0x3A) else { return nil }
                let valueStart = min(colon + 2, line.count)
                headers.append(
                    HeaderField(
                        String(decoding: line[..<colon], as: UTF8.self),
                        String(decoding: line[valueStart...], as: UTF8.self)))
                index += 2
                lineStart = index
            } else {
                index += 1
            }
        }
        guard lineStart == layout.headerBlock.upperBound else { return nil }
        return (layout.status, headers, layout.bodyOffset)
    }

    /// Decodes a whole record; for tests and the cold paths.
    public init?(decoding bytes: [UInt8]) {
        guard let decoded = bytes.withUnsafeBytes({ Self.decodeHead($0) }) else { return nil }
        self.init(status: decoded.status, headers: decoded.headers, body: Array(bytes[decoded.bodyOffset...]))
    }
}

/// Which upstream headers are stored and shown to clients.
public enum StoredHeaders {
    /// Removes hop-by-hop headers, `Surrogate-Key` (returned as tags) and the headers the cache
    /// writes itself per response (`Age`, `Content-Length`, `X-Edge-Region`,
    /// `X-Edge-Preferred-Region`), so an upstream cannot make a stored answer carry a second,
    /// contradicting copy. Returns the tags.
    public static func prepare(_ headers: inout [HeaderField]) -> [String] {
        HopByHop.strip(&headers)
        let tags = StoragePolicy.tags(from: headers)
        let recomputed = ["surrogate-key", "age", "content-length", "x-edge-region", "x-edge-preferred-region"]
        headers.removeAll { field in recomputed.contains { field.name.caseInsensitiveEquals($0) } }
        return tags
    }
}
