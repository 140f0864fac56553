import Foundation
import Testing

@testable import TenantEdgeCore

/// The typed JSON value: strict types, exact integers, canonical text.
@Suite("JSON values")
struct JSONValueTests {
    @Test func typesAreNeverGuessed() throws {
        let value = try #require(JSONValue.parse(Array(#"{"a":1,"b":true,"c":1.5,"d":"x","e":[1,"y"],"f":null}"#.utf8)))
        let object = try #require(value.objectValue)
        #expect(object["a"] == .integer(1) && object["a"]?.boolValue == nil)
        #expect(object["b"] == .bool(true) && object["b"]?.integerValue == nil)
        #expect(object["c"] == .number(1.5) && object["c"]?.integerValue == nil)
        #expect(object["e"]?.stringsValue == nil, "a mixed array is not a list of strings")
        #expect(object["f"] == .null)
        #expect(JSONValue.parse(Array("{".utf8)) == nil && JSONValue.parse([]) == nil)
        #expect(JSONValue.parse(Array("9007199254740993".utf8)) == .integer(9_007_199_254_740_993), "exact beyond 2^53")
    }

    @Test func canonicalTextSortsKeysAndKeepsSlashes() throws {
        let value = JSONValue.object(["b": .string("/x"), "a": .array([.integer(2), .bool(false)])])
        #expect(try value.canonicalText == #"{"a":[2,false],"b":"/x"}"#)
    }
}
