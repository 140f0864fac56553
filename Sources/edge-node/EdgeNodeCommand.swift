import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import TenantEdgeConfig
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNode

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
        static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate a config and exit.")
        @OptionGroup var options: Options

        func run() throws {
            do {
                let config = try ConfigReader.load(path: try options.path())
                try NodePreflight.check(config)
                print("config ok: node \(config.node.id), region \(config.node.region), \(config.tenants.count) tenant(s)")
            } catch let error as EdgeError {
                FileHandle.standardError.write(Data((error.message + "\n").utf8))
                throw ExitCode(2)
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the edge node until SIGTERM or SIGINT.")
        @OptionGroup var options: Options

        func run() async throws {
            DaemonLogging.bootstrap()
            let logger = Logger(label: "tenantedge.node")
            let config: EdgeConfig
            do {
                config = try ConfigReader.load(path: try options.path())
                try NodePreflight.check(config)
            } catch let error as EdgeError {
                FileHandle.standardError.write(Data((error.message + "\n").utf8))
                throw ExitCode(2)
            }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            let node: EdgeNode
            do {
                node = try await EdgeNode.start(config: config, group: group, logger: logger)
            } catch let error as EdgeError {
                FileHandle.standardError.write(Data((error.message + "\n").utf8))
                try? await group.shutdownGracefully()
                throw ExitCode(1)
            }
            SignalWaiter.onHangUp { node.reloadGeoIP() }
            await SignalWaiter.waitForTermination()
            logger.info("draining")
            await node.drain()
            try? await group.shutdownGracefully()
            logger.info("stopped")
        }
    }
}
