import Foundation

/// `edge-bench`: measurements that `make bench` runs beside the HTTP comparison.
@main
enum EdgeBench {
    static func main() throws {
        let arguments = CommandLine.arguments
        switch arguments.count > 1 ? arguments[1] : "" {
        case "redis-pipeline": try RedisPipelineBench.run(arguments)
        case "redis-engines": try RedisEnginesBench.run(arguments)
        default: usage()
        }
    }

    static func usage() -> Never {
        FileHandle.standardError.write(Data("""
            usage: edge-bench redis-pipeline PORT [KEYS] [ROUNDS] [SIZE]
                   edge-bench redis-engines PORT [SECONDS] [CONCURRENCY] [ROUNDS]

            """.utf8))
        exit(2)
    }
}
