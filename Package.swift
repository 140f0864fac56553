// swift-tools-version:6.1
// The package reads as the architecture: C shims, a pure core, native adapters (one file per
// C library), what both daemons share over HTTP, the config readers, the node, the origin, and
// thin executables. See README.md, "Targets".
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "TenantEdge",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "edge-node", targets: ["edge-node"]),
        .executable(name: "edgectl", targets: ["edgectl"]),
        .executable(name: "edge-origin", targets: ["edge-origin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        // Already built for async-http-client; named here for the origin's HTTPS listener.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // For the BoringSSL it builds (`CCryptoBoringSSL`): the AES-256-GCM of every seal and open
        // (decision 82). OpenSSL stays for everything else.
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The origin's state: SQLite embedded (the default), PostgreSQL for replicas (issue 14).
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // Spans of the miss path exported over OTLP/HTTP when `tracing.otlp_endpoint` is set (issue 15);
        // the gRPC exporter is left out (its trait off), so gRPC is resolved but never built.
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // C shims: module map + typed wrappers for what Swift cannot call, nothing else.
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CMaxMindDB", pkgConfig: "libmaxminddb", providers: [.apt(["libmaxminddb-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // Pure logic: no sockets, no C.
        .target(name: "TenantEdgeCore", swiftSettings: strict),

        // BoringSSL's AES-256-GCM, as swift-crypto builds it (decision 82). A target of its own: its
        // headers and the system OpenSSL's declare the same C structs differently, and one Swift
        // module cannot import both.
        .target(
            name: "TenantEdgeBoringSSL",
            dependencies: ["TenantEdgeCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),

        // Native adapters: one file per C library, conforming to the core's ports.
        .target(
            name: "TenantEdgeNative",
            dependencies: ["TenantEdgeCore", "TenantEdgeBoringSSL", "COpenSSL", "CHiredis", "CMaxMindDB", "CCurl"],
            swiftSettings: strict
        ),

        // What both daemons share: the HTTP/1.1 listener and connection handler, the response head
        // writer, request/response types and JSON helpers, TLS, durable file writes, the audit log,
        // logging and signals.
        .target(
            name: "TenantEdgeHTTP",
            dependencies: [
                "TenantEdgeCore", "TenantEdgeNative",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // The config-file readers: node file, signed bundle body, admin tokens, origin file (YAML).
        .target(
            name: "TenantEdgeConfig",
            dependencies: ["TenantEdgeCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),

        // The edge node: traffic, shared tier, tenants, admin, geo, feed. Never imports the origin.
        .target(
            name: "TenantEdgeNode",
            dependencies: [
                "TenantEdgeCore", "TenantEdgeNative", "TenantEdgeHTTP", "TenantEdgeConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            // The operator's dashboard, in the binary (issue 15).
            resources: [.embedInCode("Admin/Dashboard/node-dashboard.html")],
            swiftSettings: strict
        ),

        // The origin: registry, sealed keys, invalidation log, erasure ledger, bundle pushes. Never
        // imports the node.
        .target(
            name: "TenantEdgeOrigin",
            dependencies: [
                "TenantEdgeCore", "TenantEdgeNative", "TenantEdgeHTTP", "TenantEdgeConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            // The fleet dashboard, in the binary (issue 15).
            resources: [.embedInCode("API/fleet-dashboard.html")],
            swiftSettings: strict
        ),

        // Thin executables.
        .executableTarget(
            name: "edge-node",
            dependencies: [
                "TenantEdgeNode", "TenantEdgeHTTP", "TenantEdgeConfig", "TenantEdgeCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "edge-origin",
            dependencies: [
                "TenantEdgeOrigin", "TenantEdgeHTTP", "TenantEdgeConfig", "TenantEdgeCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "edgectl",
            dependencies: [
                "TenantEdgeConfig", "TenantEdgeCore", "TenantEdgeNative",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        // Fuzzing only (`make fuzz`; `make test` replays the corpus): every parser of outside bytes.
        .executableTarget(
            name: "edge-fuzz",
            dependencies: [
                "TenantEdgeCore", "TenantEdgeConfig", "TenantEdgeHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),

        // Benchmarks only (`make bench`): not part of the product.
        .executableTarget(
            name: "edge-bench",
            dependencies: [
                "TenantEdgeNative", "TenantEdgeCore", "TenantEdgeHTTP", "TenantEdgeConfig", "TenantEdgeNode",
                "TenantEdgeOrigin",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // One test target per product target; the node's harness (a node, an upstream, raw sockets,
        // Redis) is shared through TenantEdgeTestSupport, built only for the tests.
        .testTarget(name: "TenantEdgeCoreTests", dependencies: ["TenantEdgeCore"], swiftSettings: strict),
        .testTarget(
            name: "TenantEdgeBoringSSLTests",
            dependencies: ["TenantEdgeBoringSSL", "TenantEdgeNative", "TenantEdgeCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TenantEdgeNativeTests",
            dependencies: ["TenantEdgeNative", "TenantEdgeCore", "COpenSSL"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TenantEdgeHTTPTests",
            dependencies: [
                "TenantEdgeHTTP", "TenantEdgeCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TenantEdgeConfigTests",
            dependencies: ["TenantEdgeConfig", "TenantEdgeCore"],
            swiftSettings: strict
        ),
        .target(
            name: "TenantEdgeTestSupport",
            dependencies: [
                "TenantEdgeNode", "TenantEdgeHTTP", "TenantEdgeConfig", "TenantEdgeCore", "TenantEdgeNative",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TenantEdgeTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "TenantEdgeNodeTests",
            dependencies: [
                "TenantEdgeNode", "TenantEdgeTestSupport", "TenantEdgeHTTP", "TenantEdgeConfig", "TenantEdgeCore",
                "TenantEdgeNative",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TenantEdgeOriginTests",
            dependencies: [
                "TenantEdgeOrigin", "TenantEdgeNode", "TenantEdgeTestSupport", "TenantEdgeHTTP", "TenantEdgeConfig",
                "TenantEdgeCore", "TenantEdgeNative",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)
