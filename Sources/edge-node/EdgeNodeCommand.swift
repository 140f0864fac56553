import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import TenantEdgeConfig
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNode
import UnixSignals

/// `edge-node`: the edge daemon. Parses arguments, bootstraps logging, runs; nothing else.
@main
struct EdgeNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge-node",
        abstract: "TenantEdge edge daemon: an encrypted, per-tenant HTTP cache.",
        subcommands: [Run.self, CheckConfig.self])

    struct Options: ParsableArguments {
        @Option(name: .long, help: "Path of the YAML config (default: $EDGE_CONFIG).")
        var config: String?

        func path() throws -> String {
            if let config { return config }
            if let fromEnvironment = ProcessInfo.processInfo.environment["EDGE_CONFIG"], !fromEnvironment.isEmpty {
                return fromEnvironment
            }
            throw ValidationError("--config FILE or EDGE_CONFIG is required")
        }
    }

    struct CheckConfig: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-config", abstract: "Validate a config and exit.")
        @OptionGroup var options: Options

        func run() throws {
            do {
                let config = try ConfigReader.load(path: try options.path())
                try NodePreflight.check(config)
                print(
                    "config ok: node \(config.node.id), region \(config.node.region), \(config.tenants.count) tenant(s)"
                )
            } catch let error as EdgeError {
                FileHandle.standardError.write(Data((error.message + "\n").utf8))
                throw ExitCode(2)
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the edge node until SIGTERM or SIGINT (graceful drain); SIGHUP reopens the GeoIP database.")
        @OptionGroup var options: Options

        func run() async throws {
            let config: EdgeConfig
            do {
                config = try ConfigReader.load(path: try options.path())
                try NodePreflight.check(config)
            } catch let error as EdgeError {
                FileHandle.standardError.write(Data((error.message + "\n").utf8))
                throw ExitCode(2)
            }
            DaemonLogging.bootstrap(config.logging)  // the config says how: read first, errors above go plain
            let logger = Logger(label: "tenantedge.node")
            let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            do { try await Self.serve(config, group: group, logger: logger) } catch let error as EdgeError {
                FileHandle.standardError.write(Data((error.message + "\n").utf8))
                try? await group.shutdownGracefully()
                throw ExitCode(1)
            }
            try? await group.shutdownGracefully()
            logger.info("stopped")
        }

        /// Starts and runs the node until it has drained. The node and everything it holds (the
        /// listeners' quiescing helpers complete promises on the loops when they go) are released
        /// when this returns, before the caller shuts the event loops down.
        static func serve(_ config: EdgeConfig, group: MultiThreadedEventLoopGroup, logger: Logger) async throws {
            let systemd = SystemdNotifier(environment: ProcessInfo.processInfo.environment)
            let hangUps = HangUpReloads(logger: logger, systemd: systemd)
            let node = try await EdgeNode.start(
                config: config, group: group, logger: logger, signals: [.sigterm, .sigint],
                extraServices: [hangUps, StopNotice(systemd: systemd)])
            hangUps.node.set(node)
            defer { hangUps.node.clear() }
            systemd.ready(status: "serving")  // both listeners are bound
            try await node.run()
        }
    }
}

/// SIGHUP reopens the GeoIP database (the previous one stays if the new file does not open); a
/// service of the node's group, so it stops with it.
final class HangUpReloads: Service, Sendable {
    let node = NodeSlot()
    private let logger: Logger
    private let systemd: SystemdNotifier

    init(logger: Logger, systemd: SystemdNotifier) {
        self.logger = logger
        self.systemd = systemd
    }

    func run() async throws {
        let hangUps = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown { [node, logger, systemd] in
            for await _ in hangUps {
                systemd.reloading()
                let reloaded = node.value?.reloadGeoIP() ?? false
                logger.info("SIGHUP: GeoIP database reopened", metadata: ["reloaded": "\(reloaded)"])
                systemd.ready(status: "serving")
            }
        }
    }

    /// The node, set once it has started (the service is created before it).
    final class NodeSlot: Sendable {
        private let slot = Mutex<EdgeNode?>(nil)
        var value: EdgeNode? { slot.withLock { $0 } }
        func set(_ node: EdgeNode) { slot.withLock { $0 = node } }
        /// Drops the node (it holds this service: a cycle until cleared).
        func clear() { slot.withLock { $0 = nil } }
    }
}

/// Tells systemd a graceful stop began (`STOPPING=1`) as soon as SIGTERM arrives, so it waits for
/// the drain rather than counting it as a hang.
struct StopNotice: Service {
    let systemd: SystemdNotifier

    func run() async throws {
        try? await gracefulShutdown()
        systemd.stopping()
    }
}
