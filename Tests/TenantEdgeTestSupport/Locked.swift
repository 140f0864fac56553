import Synchronization

/// A value shared between concurrent test tasks.
package final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>  // protects the value
    package init(_ value: Value) { mutex = Mutex(value) }
    package var value: Value { mutex.withLock { $0 } }
    package func update(_ body: @Sendable (inout Value) -> Void) { mutex.withLock { body(&$0) } }
    /// Changes the value and returns what `body` says, in one step.
    package func modify<Result: Sendable>(_ body: @Sendable (inout Value) -> Result) -> Result {
        mutex.withLock { body(&$0) }
    }
}
