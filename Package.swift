// swift-tools-version:6.0
// The package reads as the architecture: C shims, a pure core, native adapters (one file per
// C library), the NIO server, and thin executables. See README.md, "Targets".
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
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C shims: module map + typed wrappers for what Swift cannot call, nothing else.
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CMaxMindDB", pkgConfig: "libmaxminddb", providers: [.apt(["libmaxminddb-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // Pure logic: no sockets, no C.
        .target(name: "TenantEdgeCore", swiftSettings: strict),

        // Native adapters: one file per C library, conforming to the core's ports.
        .target(
            name: "TenantEdgeNative",
            dependencies: ["TenantEdgeCore", "COpenSSL", "CHiredis", "CMaxMindDB", "CCurl"],
            swiftSettings: strict
        ),

        // NIO listeners, upstream client, admin API, config reading; the origin (Origin/).
        .target(
            name: "TenantEdgeServer",
            dependencies: [
                "TenantEdgeCore", "TenantEdgeNative",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),

        // Thin executables.
        .executableTarget(
            name: "edge-node",
            dependencies: [
                "TenantEdgeServer", "TenantEdgeCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "edge-origin",
            dependencies: [
                "TenantEdgeServer", "TenantEdgeCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "edgectl",
            dependencies: [
                "TenantEdgeServer", "TenantEdgeCore", "TenantEdgeNative",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        // Fuzzing only (`make fuzz`; `make test` replays the corpus): every parser of outside bytes.
        .executableTarget(
            name: "edge-fuzz",
            dependencies: ["TenantEdgeCore", "TenantEdgeServer"],
            swiftSettings: strict
        ),

        // Benchmarks only (`make bench`): not part of the product.
        .executableTarget(
            name: "edge-bench",
            dependencies: [
                "TenantEdgeNative", "TenantEdgeCore", "TenantEdgeServer",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        .testTarget(name: "TenantEdgeCoreTests", dependencies: ["TenantEdgeCore"], swiftSettings: strict),
        .testTarget(
            name: "TenantEdgeNativeTests",
            dependencies: ["TenantEdgeNative", "TenantEdgeCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TenantEdgeServerTests",
            dependencies: [
                "TenantEdgeServer", "TenantEdgeCore", "TenantEdgeNative",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ]
)
