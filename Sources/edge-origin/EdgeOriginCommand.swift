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
        subcommands: [Run.self, CheckConfig.self])

    /// `check-config`: the file read and validated as `run` would, and every file it names
    /// readable (keys, certificates, KEKs, node tokens), without opening the store or a port.
    struct CheckConfig: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-config", abstract: "Validate a config and the files it names, and exit.")
        @Option(name: .long, help: "Path of the origin's YAML config.")
        var config: String

        func run() throws {
            do {
                let settings = try OriginConfigReader.load(path: config)
                var files: [(String, String?)] = [
                    ("tls.cert_file", settings.certFile), ("tls.key_file", settings.keyFile),
                    ("tls.node_ca_file", settings.nodeCAFile), ("signing_key_file", settings.signingKeyFile),
                ]
                if case .postgres(let postgres) = settings.storage {
                    files.append(("storage.postgres.ca_file", postgres.caFile))
                }
                for (index, region) in settings.regions.enumerated() {
                    files.append(("regions[\(index)].kek_file", region.kekFile))
                    for (nodeIndex, node) in region.nodes.enumerated() {
                        files.append(("regions[\(index)].nodes[\(nodeIndex)].admin_token_file", node.adminTokenFile))
                    }
                }
                for case (let key, let path?) in files where !path.isEmpty {
                    guard FileManager.default.isReadableFile(atPath: path) else {
                        throw EdgeError(.invalidConfig, "\(key): cannot read \(path)")
                    }
                }
                let nodes = settings.regions.reduce(0) { $0 + $1.nodes.count }
                print("config ok: origin, \(settings.regions.count) region(s), \(nodes) node(s) pushed to")
            } catch let error as EdgeError {
                FileHandle.standardError.write(Data((error.message + "\n").utf8))
                throw ExitCode(2)
            }
        }
    }

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
            do { try await Self.serve(settings, group: group, logger: logger) } catch let error as EdgeError {
                FileHandle.standardError.write(Data((error.message + "\n").utf8))
                try? await group.shutdownGracefully()
                throw ExitCode(2)
            }
            try? await group.shutdownGracefully()
            logger.info("stopped")
        }

        /// Starts and runs the origin until it has drained; it is released when this returns, before
        /// the caller stops the event loops (its listener completes promises on them as it goes).
        static func serve(_ settings: OriginConfig, group: MultiThreadedEventLoopGroup, logger: Logger) async throws {
            let origin = try await OriginServer.start(config: settings, group: group, logger: logger)
            let systemd = SystemdNotifier(environment: ProcessInfo.processInfo.environment)
            systemd.ready(status: "serving")  // the HTTPS listener is bound
            try await origin.run(signals: [.sigterm, .sigint], logger: logger, stopping: { systemd.stopping() })
        }
    }
}
