import NIOCore
import NIOHTTP1
import TenantEdgeCore
import Testing

@testable import TenantEdgeHTTP

/// `HTTPResponseHeadWriter` lays a head into one reservation sized for the longest head its parts
/// can make: exact bytes for each kind of part, and parts at their longest (20-digit numbers, long
/// fields) that must fit the bound rather than trap.
@Suite("Response head writer")
struct HTTPResponseHeadWriterTests {
    static let fixed = FixedHeaderLines([(name: "X-Edge-Region", value: "eu-west")])

    static func head(
        _ response: EdgeResponse, version: HTTPVersion = .http1_1, contentLength: Int? = 5, connection: String? = nil,
        into buffer: ByteBuffer = ByteBuffer()
    ) -> String {
        var buffer = buffer
        HTTPResponseHeadWriter.write(
            version: version, response: response, fixed: fixed, contentLength: contentLength, connection: connection,
            into: &buffer)
        return String(buffer: buffer)
    }

    @Test func aHitIsItsStoredBlockAgeCacheStatusAndTheFixedFields() {
        var hit = EdgeResponse(
            status: .ok, headers: HTTPHeaders(), body: nil,
            rawHeaders: ByteBuffer(string: "content-type: text/plain\r\n"))
        hit.age = 7
        hit.cacheStatus = CacheStatusField(.hit(ttl: 53), cacheName: "TenantEdge")
        #expect(
            Self.head(hit)
                == "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nage: 7\r\ncache-status: TenantEdge; hit; ttl=53\r\n"
                + "x-edge-region: eu-west\r\ncontent-length: 5\r\n\r\n")
        hit.cacheStatus = CacheStatusField(.sharedHit(ttl: -4), cacheName: "TenantEdge")
        hit.preferredRegion = "us-east"
        #expect(
            Self.head(hit, version: .http1_0, connection: "keep-alive")
                == "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\nage: 7\r\n"
                + "cache-status: TenantEdge; hit; ttl=0; detail=l2\r\nx-edge-preferred-region: us-east\r\n"
                + "x-edge-region: eu-west\r\ncontent-length: 5\r\nconnection: keep-alive\r\n\r\n")
    }

    @Test func otherStatusesHeadersAndCacheStatusesAsBefore() {
        var response = EdgeResponse(
            status: .notFound,
            headers: HTTPHeaders([
                ("Content-Type", "application/json"), ("Content-Length", "999"), ("Connection", "upgrade"),
                ("x-edge-region", "spoofed"), ("Vary", "Accept"),
            ]), body: nil)
        let miss = CacheStatus.miss(stored: false, detail: "uncacheable")
        response.cacheStatus = CacheStatusField(miss, cacheName: "TenantEdge")
        #expect(
            Self.head(response, contentLength: nil, connection: "close")
                == "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nVary: Accept\r\n"
                + "cache-status: \(miss.headerValue(cacheName: "TenantEdge"))\r\nx-edge-region: eu-west\r\n"
                + "connection: close\r\n\r\n")
        let custom = EdgeResponse(status: .custom(code: 599, reasonPhrase: "Odd"), headers: HTTPHeaders(), body: nil)
        #expect(
            Self.head(custom, contentLength: 0)
                == "HTTP/1.1 599 Odd\r\nx-edge-region: eu-west\r\ncontent-length: 0\r\n\r\n")
    }

    /// Every part at its longest, into a buffer that has bytes and little room already: the head
    /// lands after what was there, whole.
    @Test func thePartsAtTheirLongestFitTheirBound() {
        let long = String(repeating: "v", count: 10_000)
        var response = EdgeResponse(
            status: .ok, headers: HTTPHeaders([("X-Long", long)]), body: nil, rawHeaders: ByteBuffer(string: long))
        response.age = Int.max
        response.cacheStatus = CacheStatusField(.sharedHit(ttl: Int.max), cacheName: String(repeating: "n", count: 300))
        response.preferredRegion = String(repeating: "r", count: 200)
        var start = ByteBuffer(string: "earlier")
        start.reserveCapacity(8)
        let text = Self.head(response, contentLength: Int.max, connection: "keep-alive", into: start)
        #expect(
            text.hasPrefix("earlierHTTP/1.1 200 OK\r\n" + long + "X-Long: " + long + "\r\nage: 9223372036854775807\r\n")
        )
        #expect(text.contains("; hit; ttl=9223372036854775807; detail=l2\r\nx-edge-preferred-region: r"))
        #expect(text.hasSuffix("content-length: 9223372036854775807\r\nconnection: keep-alive\r\n\r\n"))

        let reason = String(repeating: "R", count: 5_000)
        var other = EdgeResponse(status: .custom(code: 599, reasonPhrase: reason), headers: HTTPHeaders(), body: nil)
        let bypass = CacheStatus.bypass(detail: String(repeating: "d", count: 5_000))
        other.cacheStatus = CacheStatusField(bypass, cacheName: String(repeating: "n", count: 300))
        let otherText = Self.head(other, contentLength: Int.max, into: start)
        #expect(otherText.hasPrefix("earlierHTTP/1.1 599 " + reason + "\r\ncache-status: "))
        #expect(otherText.contains(bypass.headerValue(cacheName: String(repeating: "n", count: 300)) + "\r\n"))
    }
}
