import NIOCore

/// Header fields a listener puts on every response (`x-edge-region`, `cache-control: no-store`),
/// turned into wire form once when the responder is made rather than added to each response. They
/// take precedence: a field of the same name in a response's own headers is not written.
package struct FixedHeaderLines: Sendable {
    /// Lowercased names, to leave out of a response's own headers.
    package let names: [String]
    /// `name: value\r\n` for each field.
    package let bytes: ByteBuffer

    /// Fields with names and values that are valid header tokens and field values (the caller's
    /// own constants and validated config).
    package init(_ fields: [(name: String, value: String)]) {
        names = fields.map { $0.name.lowercased() }
        var bytes = ByteBuffer()
        for field in fields {
            bytes.writeString(field.name.lowercased())
            bytes.writeStaticString(": ")
            bytes.writeString(field.value)
            bytes.writeStaticString("\r\n")
        }
        self.bytes = bytes
    }

    package static let none = FixedHeaderLines([])

    /// Whether a response's own field `name` gives way to one of these.
    @inline(__always)
    func overrides(_ name: String) -> Bool { names.contains { name.caseInsensitiveEquals($0) } }
}
