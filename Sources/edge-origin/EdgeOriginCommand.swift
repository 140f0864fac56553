import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import TenantEdgeConfig
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeOrigin

/// `edge-origin`: the reference control plane. Parses arguments, bootstraps logging, runs.
@main
struct EdgeOriginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge-origin", abstract: "TenantEdge central origin: invalidation log and config over HTTPS.",
        subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the origin until SIGTERM or SIGINT.")
        @Option(name: .long, help: "Path of the origin's YAML config.")
        var config: String

        func run() async throws {
            let settings: OriginConfig
            do { settings = try OriginConfigReader.load(path: config) } catch {
                FileHandle.standardError.write(Data((error.message + "\n").utf8))
                throw ExitCode(2)
            }
            DaemonLogging.bootstrap(settings.logging)
            let logger = Logger(label: "tenantedge.origin")
            let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            let origin: OriginServer
            do {
                origin = try await OriginServer.start(config: settings, group: group, logger: logger)
            } catch let error as EdgeError {
                FileHandle.standardError.write(Data((error.message + "\n").utf8))
                try? await group.shutdownGracefully()
                throw ExitCode(2)
            }
            try await origin.run(signals: [.sigterm, .sigint], logger: logger)
            try? await group.shutdownGracefully()
            logger.info("stopped")
        }
    }
}
