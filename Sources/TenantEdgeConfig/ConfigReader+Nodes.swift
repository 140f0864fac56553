import Foundation
import TenantEdgeCore
import Yams

/// Typed accessors over Yams nodes that record a problem, naming the key, instead of failing.
package extension ConfigReader {
    mutating func mapping(_ node: Node?, _ path: String, allowed: Set<String>) -> [String: Node]? {
        guard let node else { return nil }
        guard case .mapping(let mapping) = node else {
            problems.append(ConfigProblem(path, "must be a mapping"))
            return nil
        }
        var fields: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.string else {
                problems.append(ConfigProblem(path, "has a key that is not a string"))
                continue
            }
            let full = path == "config" ? name : "\(path).\(name)"
            if !allowed.contains(name) {
                problems.append(ConfigProblem(full, "is not a known key"))
                continue
            }
            if fields[name] != nil {
                problems.append(ConfigProblem(full, "appears twice"))
                continue
            }
            fields[name] = value
        }
        return fields
    }

    mutating func sequence(_ node: Node?, _ path: String) -> [Node] {
        guard let node else { return [] }
        guard case .sequence(let sequence) = node else {
            problems.append(ConfigProblem(path, "must be a list"))
            return []
        }
        return Array(sequence)
    }

    private static func key(_ parent: String?, _ name: String) -> String { parent.map { "\($0).\(name)" } ?? name }

    private static func scalar(_ node: Node) -> Node.Scalar? {
        if case .scalar(let scalar) = node { return scalar }
        return nil
    }

    mutating func string(_ fields: [String: Node], _ name: String, _ parent: String?, _ apply: (String) -> Void) {
        guard let node = fields[name] else { return }
        guard let scalar = Self.scalar(node), node.null == nil else {
            problems.append(ConfigProblem(Self.key(parent, name), "must be a string"))
            return
        }
        apply(scalar.string)
    }

    mutating func integer(_ fields: [String: Node], _ name: String, _ parent: String?, _ apply: (Int) -> Void) {
        guard let node = fields[name] else { return }
        guard Self.scalar(node) != nil, let value = node.int else {
            problems.append(
                ConfigProblem(Self.key(parent, name), "must be a whole number, got '\(node.string ?? "a non-scalar")'"))
            return
        }
        apply(value)
    }

    mutating func number(_ fields: [String: Node], _ name: String, _ parent: String?, _ apply: (Double) -> Void) {
        guard let node = fields[name] else { return }
        guard Self.scalar(node) != nil, let value = node.float ?? node.int.map(Double.init) else {
            problems.append(
                ConfigProblem(Self.key(parent, name), "must be a number, got '\(node.string ?? "a non-scalar")'"))
            return
        }
        apply(value)
    }

    mutating func boolean(_ fields: [String: Node], _ name: String, _ parent: String?, _ apply: (Bool) -> Void) {
        guard let node = fields[name] else { return }
        guard Self.scalar(node) != nil, let value = node.bool else {
            problems.append(
                ConfigProblem(Self.key(parent, name), "must be true or false, got '\(node.string ?? "a non-scalar")'"))
            return
        }
        apply(value)
    }

    mutating func strings(_ fields: [String: Node], _ name: String, _ parent: String?, _ apply: ([String]) -> Void) {
        guard let node = fields[name] else { return }
        guard case .sequence(let sequence) = node else {
            problems.append(ConfigProblem(Self.key(parent, name), "must be a list of strings"))
            return
        }
        var values: [String] = []
        for (index, item) in sequence.enumerated() {
            guard let scalar = Self.scalar(item) else {
                problems.append(ConfigProblem("\(Self.key(parent, name))[\(index)]", "must be a string"))
                return
            }
            values.append(scalar.string)
        }
        apply(values)
    }

    /// `logging: {format: text|json, level: …}`, in the node's and the origin's file alike.
    mutating func readLogging(_ top: [String: Node], _ apply: (LogSettings) -> Void) {
        guard let fields = mapping(top["logging"], "logging", allowed: ["format", "level"]) else { return }
        var settings = LogSettings()
        enumeration(fields, "format", "logging") { settings.format = $0 }
        enumeration(fields, "level", "logging") { settings.level = $0 }
        apply(settings)
    }

    mutating func enumeration<Value: RawRepresentable & CaseIterable>(
        _ fields: [String: Node], _ name: String, _ parent: String?, _ apply: (Value) -> Void
    ) where Value.RawValue == String {
        guard let node = fields[name] else { return }
        guard let text = Self.scalar(node)?.string, let value = Value(rawValue: text) else {
            let choices = Value.allCases.map(\.rawValue).joined(separator: ", ")
            problems.append(
                ConfigProblem(
                    Self.key(parent, name), "must be one of \(choices), got '\(node.string ?? "a non-scalar")'"))
            return
        }
        apply(value)
    }

    static func resolve(_ path: String, _ base: String?) -> String {
        guard let base, !path.hasPrefix("/") else { return path }
        return URL(fileURLWithPath: base).appendingPathComponent(path).standardizedFileURL.path
    }

    static func firstLine(of error: any Error) -> String {
        String(describing: error).split(separator: "\n").first.map(String.init) ?? "parse error"
    }
}
