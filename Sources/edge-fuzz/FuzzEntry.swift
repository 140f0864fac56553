import Foundation

#if FUZZING
    /// libFuzzer's entry: `TE_FUZZ_TARGET` names the target (`make fuzz` sets it per run).
    private let selectedTarget: FuzzTargets.Target = {
        let name = ProcessInfo.processInfo.environment["TE_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTargets.all[name] else {
            fatalError("TE_FUZZ_TARGET must be one of \(FuzzTargets.all.keys.sorted())")
        }
        return target
    }()

    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
        selectedTarget(Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
#else
    /// Replays every input of a corpus folder (`<root>/<target>/<file>`) through its target, as
    /// `make test` does: an input that once broke a parser must never break it again.
    @main
    struct FuzzCorpusReplay {
        static func main() {
            let arguments = CommandLine.arguments
            guard arguments.count == 3, arguments[1] == "replay" else {
                print("usage: edge-fuzz replay <corpus folder>")
                exit(2)
            }
            let root = URL(fileURLWithPath: arguments[2])
            let folders = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
            var replayed = 0
            for target in FuzzTargets.all.keys.sorted() {
                guard folders.contains(target), let run = FuzzTargets.all[target] else {
                    print("fuzz corpus: no inputs for \(target) under \(root.path)")
                    exit(1)
                }
                let folder = root.appendingPathComponent(target)
                let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
                for file in files {
                    guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(file).path)
                    else { continue }
                    run(Array(data))
                    replayed += 1
                }
            }
            if let unknown = folders.first(where: { FuzzTargets.all[$0] == nil && !$0.hasPrefix(".") }) {
                print("fuzz corpus: \(unknown) is no fuzz target")
                exit(1)
            }
            print("fuzz corpus: \(replayed) inputs replayed through \(FuzzTargets.all.count) targets")
        }
    }
#endif
