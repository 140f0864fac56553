/// The plaintext form of a stored response, the bytes that get sealed: a small header block
/// (format byte, status, headers) followed by the body, so the hit path opens once and hands the
/// body on as a slice without copying it.
///
/// Layout: `0x01 | status u16 | count u16 | (nameLen u16 | name | valueLen u32 | value)* | body`.
public struct ResponseRecord: Sendable, Equatable {
    public var status: Int
    public var headers: [HeaderField]
    public var body: [UInt8]

    public init(status: Int, headers: [HeaderField], body: [UInt8]) {
        self.status = status; self.headers = headers; self.body = body
    }

    static let formatByte: UInt8 = 1

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 64 + headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 6 })
        out.append(Self.formatByte)
        Self.append(UInt16(status), to: &out)
        Self.append(UInt16(headers.count), to: &out)
        for header in headers {
            Self.append(UInt16(header.name.utf8.count), to: &out)
            out.append(contentsOf: header.name.utf8)
            Self.append(UInt32(header.value.utf8.count), to: &out)
            out.append(contentsOf: header.value.utf8)
        }
        out.append(contentsOf: body)
        return out
    }

    /// The status and headers of an encoded record and where its body starts; nil when malformed.
    public static func decodeHead(_ bytes: UnsafeRawBufferPointer) -> (status: Int, headers: [HeaderField], bodyOffset: Int)? {
        var offset = 0
        func read(_ count: Int) -> UnsafeRawBufferPointer? {
            guard count >= 0, offset + count <= bytes.count else { return nil }
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
        }
        func integer(_ width: Int) -> Int? {
            guard let raw = read(width) else { return nil }
            return raw.reduce(0) { $0 << 8 | Int($1) }
        }
        guard let format = read(1), format[0] == formatByte, let status = integer(2), let count = integer(2) else { return nil }
        var headers: [HeaderField] = []
        headers.reserveCapacity(count)
        for _ in 0..<count {
            guard let nameLength = integer(2), let name = read(nameLength),
                  let valueLength = integer(4), let value = read(valueLength) else { return nil }
            headers.append(HeaderField(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return (status, headers, offset)
    }

    /// Decodes a whole record; for tests and the cold paths.
    public init?(decoding bytes: [UInt8]) {
        guard let decoded = bytes.withUnsafeBytes({ Self.decodeHead($0) }) else { return nil }
        self.init(status: decoded.status, headers: decoded.headers, body: Array(bytes[decoded.bodyOffset...]))
    }

    private static func append(_ value: UInt16, to out: inout [UInt8]) {
        out.append(UInt8(value >> 8)); out.append(UInt8(value & 0xFF))
    }
    private static func append(_ value: UInt32, to out: inout [UInt8]) {
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8((value >> UInt32(shift)) & 0xFF)) }
    }
}
