import NIOCore
import NIOHTTP1
import TenantEdgeCore

/// A request's header fields. As the decoder hands them over they stay the bytes that arrived, with
/// the place of each name and value, and a field becomes a `String` only when something asks for
/// it: an L1 hit reads a few fields by name and builds none of the others (docs/decisions.md #76;
/// NIO's `HTTPHeaders` cost a `String` per name and value, an allocation for each longer than 15
/// bytes, and a browser's fields made four per request). Removing fields keeps them as received;
/// the first addition (the admission giving the tenant's canonical `Host`) turns them into
/// `HTTPHeaders`, which later edits work on; a request that leaves for the upstream is sent those.
///
/// Names are compared with `ASCII.equalIgnoringCase` (letters without case, other bytes exactly) in
/// both forms, for lookups and removals alike, and values are decoded as UTF-8 with invalid bytes
/// replaced, as the decoder used to build them: whichever form the fields are in, every reader sees
/// the same names and values.
package struct RequestFields: Sendable {
    /// Where one field's name and value lie in the received bytes (offsets from their first byte).
    package struct Span: Sendable, Equatable {
        package var name: Range<Int>
        package var value: Range<Int>

        package init(name: Range<Int>, value: Range<Int>) {
            self.name = name
            self.value = value
        }
    }

    // Stored side by side rather than as an enum's payloads: reading a payload copies it (a retain
    // of the bytes and one of the places), and a hit reads the fields a dozen times.
    /// The received bytes, and the place of each field in them; unused once `edited` is set.
    private var bytes: ByteBuffer
    private var spans: [Span]
    /// The fields as `HTTPHeaders`: made so, or from the first addition on, and then `bytes` and
    /// `spans` are empty; nil while the fields are as received.
    private var edited: HTTPHeaders? {
        didSet { assert(edited == nil || (spans.isEmpty && bytes.readableBytes == 0)) }
    }

    package init() { self.init(HTTPHeaders()) }

    package init(_ headers: HTTPHeaders) {
        bytes = ByteBuffer()
        spans = []
        edited = headers
    }

    package init(_ pairs: [(String, String)]) { self.init(HTTPHeaders(pairs)) }

    /// Fields as received: `bytes` holds them (a slice of the read buffer, not a copy). Nil when a
    /// span does not lie within its readable bytes, which the decoder never makes: a request read
    /// with a field missing would be another request, so it is refused rather than passed on.
    package init?(received bytes: ByteBuffer, spans: [Span]) {
        let count = bytes.readableBytes
        for span in spans {
            guard span.name.lowerBound >= 0, span.name.upperBound <= count, span.value.lowerBound >= 0,
                span.value.upperBound <= count
            else { return nil }
        }
        self.bytes = bytes
        self.spans = spans
        edited = nil
    }

    package var count: Int { edited?.count ?? spans.count }

    /// The bytes these fields keep alive while received (the storage they share with their read), 0
    /// once edited: what a request queued or waiting on the upstream holds.
    package var heldBytes: Int { edited == nil ? bytes.storageCapacity : 0 }

    /// Calls `body` with each field's name and value bytes in order, until it returns false. The
    /// pointers are valid only inside `body`.
    package func forEachField(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Bool) {
        guard let headers = edited else {
            bytes.withUnsafeReadableBytes { raw in
                for span in spans {
                    let going = body(
                        UnsafeRawBufferPointer(rebasing: raw[span.name]),
                        UnsafeRawBufferPointer(rebasing: raw[span.value]))
                    if !going { return }
                }
            }
            return
        }
        for (name, value) in headers {
            var name = name
            var value = value
            let going = name.withUTF8 { nameBytes in
                value.withUTF8 { body(UnsafeRawBufferPointer(nameBytes), UnsafeRawBufferPointer($0)) }
            }
            if !going { return }
        }
    }

    /// Calls `body` with the value bytes of each field named `name`, in order, until it returns
    /// false. The name's bytes are read once, and most fields are passed over on their length alone.
    package func forEachValue(named name: String, _ body: (UnsafeRawBufferPointer) -> Bool) {
        var name = name
        name.withUTF8 { wanted in
            let wanted = UnsafeRawBufferPointer(wanted)
            forEachField { fieldName, value in
                guard fieldName.count == wanted.count, ASCII.equalIgnoringCase(fieldName, wanted) else { return true }
                return body(value)
            }
        }
    }

    /// The first value of `name`.
    package func first(name: String) -> String? {
        var found: String? = nil
        forEachValue(named: name) { value in
            found = String(decoding: value, as: UTF8.self)
            return false
        }
        return found
    }

    package func contains(name: String) -> Bool {
        var found = false
        forEachValue(named: name) { _ in
            found = true
            return false
        }
        return found
    }

    /// Every value of `name`, in order.
    package subscript(name: String) -> [String] {
        var values: [String] = []
        forEachValue(named: name) { value in
            values.append(String(decoding: value, as: UTF8.self))
            return true
        }
        return values
    }

    /// Every value of `name` joined as one comma-separated list (RFC 9110 5.3), nil when there is
    /// none: what a `Vary` variant is keyed on, as `[HeaderField].combined` reads it.
    package func combined(_ name: String) -> String? {
        let values = self[name]
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// The head's size as the connection counts it: each name and value and four bytes for the
    /// colon, a space and the line end.
    package var countedBytes: Int {
        guard let headers = edited else { return spans.reduce(0) { $0 + $1.name.count + $1.value.count + 4 } }
        return headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
    }

    /// NIO's form, for whatever sends or records the fields as a whole.
    package var httpHeaders: HTTPHeaders { edited ?? HTTPHeaders(map { ($0.name, $0.value) }) }

    /// The core's view of these fields.
    package var fields: [HeaderField] { map { HeaderField($0.name, $0.value) } }

    package mutating func add(name: String, value: String) {
        var headers = httpHeaders
        edited = nil  // `headers` is then the only owner, and grows in place
        bytes = ByteBuffer()  // lets go of the received bytes
        spans = []
        headers.add(name: name, value: value)
        edited = headers
    }

    /// Every field named `name` removed, and one with `value` added at the end.
    package mutating func replaceOrAdd(name: String, value: String) {
        remove(name: name)
        add(name: name, value: value)
    }

    package mutating func remove(name: String) {
        var name = name
        name.withUTF8 { wanted in removeAll { ASCII.equalIgnoringCase($0, UnsafeRawBufferPointer(wanted)) } }
    }

    /// Removes every field whose name's bytes, ASCII letters lowercased, are in `names`: one pass,
    /// however many names a client's `Connection` lists. Bytes rather than strings, since `String`
    /// equality is Unicode's (the Kelvin sign equals `K` there).
    package mutating func remove(lowercasedNamesIn names: Set<[UInt8]>) {
        guard !names.isEmpty else { return }
        removeAll { name in names.contains(name.map(ASCII.lowercased)) }
    }

    /// Removes the fields whose name bytes `matches` picks; received fields stay as received.
    private mutating func removeAll(where matches: (UnsafeRawBufferPointer) -> Bool) {
        guard let headers = edited else {
            let kept = bytes.withUnsafeReadableBytes { raw in
                spans.filter { !matches(UnsafeRawBufferPointer(rebasing: raw[$0.name])) }
            }
            if kept.count != spans.count { spans = kept }
            return
        }
        var kept: [(String, String)] = []
        var removed = false
        for (name, value) in headers {
            var nameText = name
            if nameText.withUTF8({ matches(UnsafeRawBufferPointer($0)) }) {
                removed = true
            } else {
                kept.append((name, value))
            }
        }
        if removed { edited = HTTPHeaders(kept) }
    }
}

extension RequestFields: Sequence {
    package typealias Element = (name: String, value: String)

    /// Builds each field's strings as it goes; a reader after one field should ask by name.
    package struct Iterator: IteratorProtocol {
        private let fields: RequestFields
        private var index = 0
        private var edited: HTTPHeaders.Iterator?

        init(_ fields: RequestFields) {
            self.fields = fields
            edited = fields.edited?.makeIterator()
        }

        package mutating func next() -> (name: String, value: String)? {
            if edited != nil { return edited?.next() }
            guard index < fields.spans.count else { return nil }
            let span = fields.spans[index]
            index += 1
            return fields.bytes.withUnsafeReadableBytes { raw in
                (
                    String(decoding: UnsafeRawBufferPointer(rebasing: raw[span.name]), as: UTF8.self),
                    String(decoding: UnsafeRawBufferPointer(rebasing: raw[span.value]), as: UTF8.self)
                )
            }
        }
    }

    package func makeIterator() -> Iterator { Iterator(self) }
}

extension RequestFields: Equatable {
    /// The same names and values in the same order, whichever form each side is in.
    package static func == (lhs: RequestFields, rhs: RequestFields) -> Bool {
        lhs.count == rhs.count && lhs.elementsEqual(rhs) { $0.name == $1.name && $0.value == $1.value }
    }
}

extension RequestFields: CustomStringConvertible {
    package var description: String { httpHeaders.description }
}
