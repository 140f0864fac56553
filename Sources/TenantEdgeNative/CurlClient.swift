internal import CCurl
import Foundation
import TenantEdgeCore

/// Blocking HTTPS transfers through one libcurl easy handle, always with peer and host verification.
/// Run it on its own thread or a thread pool, never on an event loop. The handle is freed in `deinit`.
public final class CurlClient {
    private static let globalInit: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    private let handle: UnsafeMutableRawPointer

    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
        /// Response header fields, names lowercased (of the last response, after redirects).
        public var headers: [String: String] = [:]
    }

    /// Collects the body and header lines during one `curl_easy_perform`.
    private final class BodySink {
        var bytes: [UInt8] = []
        var headerLines: [String] = []
        let limit: Int
        init(limit: Int) { self.limit = limit }
    }

    public init() throws(EdgeError) {
        guard Self.globalInit, let handle = curl_easy_init() else {
            throw EdgeError(.transferFailure, "libcurl could not be initialised")
        }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    /// Asked about once a second during a transfer (and on every progress); true aborts it.
    public typealias AbortCheck = @Sendable () -> Bool

    private final class AbortBox {
        let check: AbortCheck
        init(_ check: @escaping AbortCheck) { self.check = check }
    }

    /// GETs `url`, verifying the server against `caFile` (or the system store when nil).
    /// `shouldAbort` lets another thread end a long poll early (the transfer fails).
    public func get(
        _ url: String, caFile: String?, headers: [String] = [], timeoutMs: Int = 5000,
        maxBodyBytes: Int = 16 << 20, shouldAbort: AbortCheck? = nil
    ) throws(EdgeError) -> Response {
        try request(
            "GET", url, body: nil, caFile: caFile, headers: headers, timeoutMs: timeoutMs, maxBodyBytes: maxBodyBytes,
            shouldAbort: shouldAbort)
    }

    /// Any method, with an optional body (sent as is), verifying the server like `get`.
    public func request(
        _ method: String, _ url: String, body: [UInt8]?, caFile: String?, headers: [String] = [],
        timeoutMs: Int = 5000, maxBodyBytes: Int = 16 << 20, shouldAbort: AbortCheck? = nil
    ) throws(EdgeError) -> Response {
        curl_easy_reset(handle)
        let hasBody = body != nil
        var payload = (body?.isEmpty ?? true) ? [0] : body!  // never a NULL buffer: curl would read stdin instead
        let payloadCount = body?.count ?? 0
        let sink = BodySink(limit: maxBodyBytes)
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        for header in headers { headerList = curl_slist_append(headerList, header) }
        defer { curl_slist_free_all(headerList) }

        let writeCallback: @convention(c) (UnsafeMutablePointer<CChar>, Int, Int, UnsafeMutableRawPointer?) -> Int = {
            data, size, count, context in
            let sink = Unmanaged<BodySink>.fromOpaque(context!).takeUnretainedValue()
            let total = size * count
            guard sink.bytes.count + total <= sink.limit else { return 0 }  // abort: body too large
            sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: total))
            return total
        }

        let headerCallback: @convention(c) (UnsafeMutablePointer<CChar>, Int, Int, UnsafeMutableRawPointer?) -> Int = {
            data, size, count, context in
            let sink = Unmanaged<BodySink>.fromOpaque(context!).takeUnretainedValue()
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
            if line.hasPrefix("HTTP/") { sink.headerLines.removeAll() }  // a new response (after 100 or a redirect)
            sink.headerLines.append(line)
            return size * count
        }
        let abort = shouldAbort.map(AbortBox.init)
        let progressCallback:
            @convention(c) (UnsafeMutableRawPointer?, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> Int32 = {
                context, _, _, _, _ in
                Unmanaged<AbortBox>.fromOpaque(context!).takeUnretainedValue().check() ? 1 : 0
            }
        let code: CURLcode = withExtendedLifetime((sink, abort)) {
            errorBuffer.withUnsafeMutableBufferPointer { errors in
                payload.withUnsafeMutableBufferPointer { bytes in
                    var ok = te_curl_setopt_str(handle, CURLOPT_URL, url) == CURLE_OK
                    ok = ok && te_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1) == CURLE_OK
                    ok = ok && te_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1) == CURLE_OK
                    ok = ok && te_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2) == CURLE_OK
                    ok = ok && te_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, timeoutMs) == CURLE_OK
                    ok = ok && te_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, min(timeoutMs, 2000)) == CURLE_OK
                    ok = ok && te_curl_setopt_ptr(handle, CURLOPT_ERRORBUFFER, errors.baseAddress) == CURLE_OK
                    ok = ok && te_curl_setopt_write_callback(handle, writeCallback) == CURLE_OK
                    ok =
                        ok
                        && te_curl_setopt_ptr(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque())
                            == CURLE_OK
                    ok = ok && te_curl_setopt_header_callback(handle, headerCallback) == CURLE_OK
                    ok =
                        ok
                        && te_curl_setopt_ptr(handle, CURLOPT_HEADERDATA, Unmanaged.passUnretained(sink).toOpaque())
                            == CURLE_OK
                    if let headerList {
                        ok = ok && te_curl_setopt_ptr(handle, CURLOPT_HTTPHEADER, headerList) == CURLE_OK
                    }
                    if let caFile { ok = ok && te_curl_setopt_str(handle, CURLOPT_CAINFO, caFile) == CURLE_OK }
                    if let abort {
                        ok = ok && te_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0) == CURLE_OK
                        ok = ok && te_curl_setopt_xferinfo_callback(handle, progressCallback) == CURLE_OK
                        ok =
                            ok
                            && te_curl_setopt_ptr(
                                handle, CURLOPT_XFERINFODATA, Unmanaged.passUnretained(abort).toOpaque()) == CURLE_OK
                    }
                    if method != "GET" {
                        ok = ok && te_curl_setopt_str(handle, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK
                    }
                    if hasBody {
                        ok = ok && te_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, payloadCount) == CURLE_OK
                        ok = ok && te_curl_setopt_ptr(handle, CURLOPT_POSTFIELDS, bytes.baseAddress) == CURLE_OK
                    }
                    guard ok else { return CURLE_FAILED_INIT }
                    return curl_easy_perform(handle)
                }
            }
        }
        guard code == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw EdgeError(
                .transferFailure,
                "\(method) \(url) failed: curl error \(code.rawValue) "
                    + (detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail))
        }
        var status = 0
        _ = te_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var fields: [String: String] = [:]
        for line in sink.headerLines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespacesAndNewlines)
        }
        return Response(status: status, body: sink.bytes, headers: fields)
    }

    /// libcurl's error number for the last failure class the feed client cares about (peer verification).
    public static let peerVerificationFailed = Int(CURLE_PEER_FAILED_VERIFICATION.rawValue)
}
