import Foundation

/// `edge-bench`: measurements that `make bench` runs beside the HTTP comparison.
@main
enum EdgeBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        switch arguments.count > 1 ? arguments[1] : "" {
        case "redis-pipeline": try RedisPipelineBench.run(arguments)
        case "redis-engines": try RedisEnginesBench.run(arguments)
        case "feed-propagation": try await FeedPropagationBench.run(arguments)
        case "erasure": try await ErasureBench.run(arguments)
        case "geo-lookups": try GeoLookupBench.run(arguments)
        case "partition-memory": try PartitionMemoryBench.run(arguments)
        case "aead-open": try AEADOpenBench.run(arguments)
        default: usage()
        }
    }

    static func usage() -> Never {
        FileHandle.standardError.write(
            Data(
                """
                usage: edge-bench redis-pipeline PORT [KEYS] [ROUNDS] [SIZE]
                       edge-bench redis-engines PORT [SECONDS] [CONCURRENCY] [ROUNDS]
                       edge-bench feed-propagation CERT KEY CA [EVENTS] [POSTGRES_URL]
                       edge-bench erasure CERT KEY CA REDIS_PORT [ENTRIES]
                       edge-bench geo-lookups MMDB [SECONDS] [WORKING_SET]
                       edge-bench partition-memory SHAPE [PARTITIONS] [PER_PARTITION]
                         (SHAPE: plain, query, tags, wide, variant, directory or worst)
                       edge-bench aead-open SIZE [SECONDS]

                """.utf8))
        exit(2)
    }
}
