import Foundation
import Logging
import Synchronization
import TenantEdgeCore
import Testing

@testable import TenantEdgeHTTP

/// JSON log lines: one object per line whatever the values hold, fixed fields never overwritten.
@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test func eachLineIsOneObjectWithItsFieldsEvenForHostileValues() throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "tenantedge.test") { label in
            JSONLogHandler(label: label) { line in lines.withLock { $0.append(line) } }
        }
        logger[metadataKey: "node"] = "n1"
        logger.warning(
            "two\nlines \"quoted\"",
            metadata: [
                "source": "1.2.3.4\n{\"level\":\"critical\"}", "message": "not the message", "count": "\(3)",
                "nested": ["a": ["b", "c"]],
            ])
        logger.debug("below the level")
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.hasSuffix("\n") && line.dropLast().firstIndex(of: "\n") == nil, "one line")
        let object = try #require(JSONValue.parse(Array(line.utf8))?.objectValue)
        #expect(object["level"] == .string("warning") && object["label"] == .string("tenantedge.test"))
        #expect(object["message"] == .string("two\nlines \"quoted\""))
        #expect(object["meta_message"] == .string("not the message"), "a field never replaces a fixed one")
        #expect(object["source"] == .string("1.2.3.4\n{\"level\":\"critical\"}"))
        #expect(object["node"] == .string("n1") && object["count"] == .string("3"))
        #expect(object["nested"] == .object(["a": .array([.string("b"), .string("c")])]))
        #expect(object["ts"]?.stringValue?.hasSuffix("Z") == true)
    }
}
