import NIOCore
import NIOEmbedded
import NIOHTTP1
import TenantEdgeHTTP

/// The strict request decoder against NIO's (`HTTPRequestDecoder`, llhttp) on the same bytes, read
/// in two pieces split where the input's first byte says. What ours produced before it refused or
/// the bytes ran out must be what NIO produced, part by part: the same method, target, version and
/// header fields in order, the same body bytes, the same trailers. Ours may refuse what NIO takes,
/// never the other way round. The comparison ends after a request that closes the connection
/// (`keepsConnection` on ours' head, the rule the connection handler and ours apply: nothing behind
/// it is served or read); llhttp's rule for whether NIO reads on differs for repeated `Connection`
/// fields, and NIO stops at an upgrade request. Ours is also checked against itself read in small
/// pieces, and every head's `keepsConnection` against NIO's `isKeepAlive` (without an `Upgrade`).
enum RequestDecoderDifferential {
    enum Part: Equatable, CustomStringConvertible {
        case head(method: String, target: String, version: [Int], fields: [[String]])
        case body([UInt8])
        case end(trailers: [[String]]?)

        var description: String {
            switch self {
            case .head(let method, let target, let version, let fields):
                "head \(method) \(target.debugDescription) \(version) \(fields)"
            case .body(let bytes): "body \(bytes.count) bytes"
            case .end(let trailers): "end \(trailers.map { "\($0)" } ?? "")"
            }
        }
    }

    struct Decoded {
        var parts: [Part] = []
        var refused = false
        /// The heads (by index in `parts`) after which the connection closes (`keepsConnection`).
        var closingHeads: Set<Int> = []

        /// Whether the request that ends at `parts[index]` closes the connection.
        func closesConnection(endAt index: Int) -> Bool {
            guard let head = parts[..<index].lastIndex(where: { if case .head = $0 { true } else { false } }) else {
                return false
            }
            return closingHeads.contains(head)
        }
    }

    static let check: FuzzTargets.Target = { input in
        guard let first = input.first else { return }
        let bytes = Array(input.dropFirst())
        // The first byte puts one read boundary anywhere in the input, in proportion to its value.
        let split = Int(first) * bytes.count / 255
        let twoReads = [0..<split, split..<bytes.count]
        let ours = decode(bytes, reads: twoReads, handler: strictDecoder, head: ourHead)
        let nio = decode(bytes, reads: twoReads, handler: nioDecoder, head: nioHead)
        compare(ours: ours, nio: nio, input: bytes)
        // One input of up to 512 bytes in four: ours against itself in reads of 1 to 8 bytes (what
        // it keeps between reads, the scanner's place, a chunk-size line's, a trailer section's, must
        // not change what it reads); not more, since a read through the channel costs more than
        // parsing it.
        let inPieces = first % 4 == 0 && bytes.count <= 512
        let size = Int(first / 4) % 8 + 1
        let small = stride(from: 0, to: bytes.count, by: size).map { $0..<min(bytes.count, $0 + size) }
        if inPieces {
            let pieces = decode(bytes, reads: small, handler: strictDecoder, head: ourHead)
            if pieces.parts != ours.parts || pieces.refused != ours.refused {
                fail(
                    "ours in reads of \(size): \(pieces.parts) \(pieces.refused), "
                        + "in two: \(ours.parts) \(ours.refused)", bytes)
            }
        }
        // The connection handler runs the same decoder with reading of its own (decision 77).
        ConnectionReadingCheck.check(bytes, twoReads: twoReads, pieces: inPieces ? small : nil, decoded: ours.parts)
    }

    static func strictDecoder() -> ByteToMessageHandler<StrictRequestDecoder> {
        ByteToMessageHandler(StrictRequestDecoder(maxHeadBytes: 17 * 1024))
    }

    static func nioDecoder() -> ByteToMessageHandler<HTTPRequestDecoder> {
        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes))
    }

    /// Ours' head as compared, and whether the connection closes after it. Its fields are read as
    /// the responders read them (`RequestFields` from the received bytes), and `keepsConnection`,
    /// which reads `Connection` in one pass of its own, is held to NIO's rule (`isKeepAlive`, and
    /// never with an `Upgrade` field); NIO's own heads carry llhttp's verdict, which differs for
    /// repeated fields.
    static func ourHead(_ head: EdgeRequestHead) -> (Part, closes: Bool) {
        let nioForm = head.httpRequestHead
        if head.keepsConnection != (nioForm.isKeepAlive && !nioForm.headers.contains(name: "upgrade")) {
            preconditionFailure("http-request: keepsConnection and isKeepAlive differ on \(head.headers)")
        }
        return (part(nioForm), !head.keepsConnection)
    }

    static func nioHead(_ head: HTTPRequestHead) -> (Part, closes: Bool) { (part(head), false) }

    static func part(_ head: HTTPRequestHead) -> Part {
        .head(
            method: head.method.rawValue, target: head.uri, version: [head.version.major, head.version.minor],
            fields: fieldPairs(head.headers))
    }

    static func compare(ours: Decoded, nio: Decoded, input: [UInt8]) {
        for (index, part) in ours.parts.enumerated() {
            let theirs = index < nio.parts.count ? nio.parts[index] : nil
            if part == theirs {
                if case .end = part, ours.closesConnection(endAt: index) { return }
                continue
            }
            if index == ours.parts.count - 1, case .body(let mine) = part {
                let longer: [UInt8]? = if case .body(let bytes) = theirs { bytes } else { nil }
                // Ours stopped inside a body NIO read further: its bytes must be the start of NIO's.
                if let longer, longer.starts(with: mine), mine.count < longer.count { return }
                // The handler serves a request only at its end, so body bytes of one that never ended
                // are never used; NIO withholds a read's body bytes when that read fails further on.
                // Ours refused, or waits for bytes any completion of which is an input of its own.
                if nio.refused, longer.map({ $0.starts(with: mine) || mine.starts(with: $0) }) ?? (theirs == nil) {
                    return
                }
            }
            fail("part \(index): ours \(part), NIO \(theirs.map { "\($0)" } ?? "nothing")", input)
        }
        if !ours.refused, nio.parts.count > ours.parts.count {
            fail("NIO read \(nio.parts[ours.parts.count]) that ours did not, and ours did not refuse", input)
        }
        // NIO refusing while ours still waits is no disagreement: ours has accepted nothing NIO did not
        // read (the loop above), and any completion of the bytes it waits on is an input of its own.
    }

    static func fail(_ message: String, _ input: [UInt8]) -> Never {
        preconditionFailure(
            "http-request: \(message); input \(String(decoding: input, as: UTF8.self).debugDescription)")
    }

    /// Names and values as RFC 9110 5.5 defines a field value: without its trailing whitespace, which
    /// NIO's decoder keeps and ours drops (neither keeps the leading whitespace).
    static func fieldPairs(_ headers: HTTPHeaders) -> [[String]] {
        headers.map { field in
            var value = Substring(field.value)
            while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
            return [field.name, String(value)]
        }
    }

    static func decode<Decoder: ByteToMessageDecoder, Head: Equatable>(
        _ bytes: [UInt8], reads: [Range<Int>], handler: () -> ByteToMessageHandler<Decoder>,
        head read: (Head) -> (Part, closes: Bool)
    ) -> Decoded where Decoder.InboundOut == HTTPPart<Head, ByteBuffer> {
        let channel = EmbeddedChannel()
        var decoded = Decoded()
        do {
            try channel.pipeline.syncOperations.addHandler(handler())
        } catch {
            preconditionFailure("http-request: the decoder could not be added: \(error)")
        }
        for read in reads where !read.isEmpty {
            do {
                try channel.writeInbound(ByteBuffer(bytes: bytes[read]))
            } catch {
                decoded.refused = true
                break
            }
        }
        while let part = try? channel.readInbound(as: HTTPPart<Head, ByteBuffer>.self) {
            switch part {
            case .head(let head):
                let (compared, closes) = read(head)
                decoded.parts.append(compared)
                if closes { decoded.closingHeads.insert(decoded.parts.count - 1) }
            case .body(let buffer):
                let bytes = Array(buffer.readableBytesView)
                if bytes.isEmpty { continue }
                if case .body(let earlier) = decoded.parts.last {
                    decoded.parts[decoded.parts.count - 1] = .body(earlier + bytes)
                } else {
                    decoded.parts.append(.body(bytes))
                }
            case .end(let trailers):
                decoded.parts.append(.end(trailers: trailers.map(fieldPairs)))
            }
        }
        _ = try? channel.finish(acceptAlreadyClosed: true)
        return decoded
    }
}
