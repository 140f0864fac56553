/// Where an entry's sealed bytes are: an array of their own (just sealed), the tail of the value
/// read from L2, or a record in its partition's slab (stored in L1; `SealedSlab`). Readers go through `withBytes`, so
/// the hit path opens a stored entry where it lies, copying nothing. Slab records are named only
/// inside this module (by the partition's `SealedSlabStore`): outside it a value is made from an
/// array, so no other code can point one at memory of its choosing.
public struct SealedBytes: Sendable {
    enum Storage {
        case array([UInt8])
        /// `value`'s bytes from `start` on: an L2 value's sealed part, after its metadata header.
        /// Copying it out cost an L2 hit a copy of the whole value (16 KiB for a 16 KiB body).
        case tail(of: [UInt8], start: UInt32)
        /// The record at `offset` of `slab` (its header; the bytes follow it), `count` bytes.
        case slab(SealedSlab, offset: UInt32, count: UInt32)
    }

    var storage: Storage

    public init(_ bytes: [UInt8]) { storage = .array(bytes) }

    init(slab: SealedSlab, offset: UInt32, count: UInt32) { storage = .slab(slab, offset: offset, count: count) }

    /// `value`'s bytes from `start` on, where they are; none when `start` is out of range (which the
    /// L2 codec never asks for: it checks the length first), so no header byte passes for sealed.
    init(tailOf value: [UInt8], from start: Int) {
        guard (0...value.count).contains(start), let at = UInt32(exactly: start) else {
            storage = .array([])
            return
        }
        storage = .tail(of: value, start: at)
    }

    /// The sealed value's length (a slab record's header is not counted).
    public var count: Int {
        switch storage {
        case .array(let bytes): bytes.count
        case .tail(let value, let start): value.count - Int(start)
        case .slab(_, _, let count): Int(count)
        }
    }

    /// Runs `body` on the bytes where they are. The pointer is valid only inside `body`: the slab
    /// is kept alive for that long, and may be freed once the last entry naming it goes.
    public func withBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        switch storage {
        case .array(let bytes):
            let result = bytes.withUnsafeBytes { raw in Swift.Result { () throws(Failure) -> Result in try body(raw) } }
            return try result.get()
        case .tail(let value, let start):
            let result = value.withUnsafeBytes { raw in
                Swift.Result { () throws(Failure) -> Result in
                    try body(UnsafeRawBufferPointer(rebasing: raw[Int(start)...]))
                }
            }
            return try result.get()
        case .slab(let slab, let offset, let count):
            let start = slab.base + Int(offset) + SealedSlab.recordHeaderBytes
            return try withExtendedLifetime(slab) { () throws(Failure) -> Result in
                try body(UnsafeRawBufferPointer(start: start, count: Int(count)))
            }
        }
    }

    /// A copy in an array of its own (the cold paths: L2 writes, re-seals, tests).
    public var array: [UInt8] {
        switch storage {
        case .array(let bytes): bytes
        case .tail, .slab: withBytes { Array($0) }
        }
    }

    /// The slab holding the bytes, if any.
    var slab: SealedSlab? {
        guard case .slab(let slab, _, _) = storage else { return nil }
        return slab
    }

    /// Whether the bytes sit in `slab` at `offset`: the partition's test that a slab's record is
    /// still the one its slot stores.
    func isRecord(_ offset: Int, of slab: SealedSlab) -> Bool {
        guard case .slab(let holder, let at, _) = storage else { return false }
        return holder === slab && Int(at) == offset
    }
}
