import NIOCore

extension ByteBuffer {
    /// These readable bytes, in storage of their own when the storage they share is more than
    /// `slack` bytes larger: what a request keeps of a read (its head's fields, the part of it a
    /// read ended in) then holds its own bytes and a little more, never a read buffer of up to
    /// 64 KiB, which NIO's receive pool can then reuse.
    package func compacted(slack: Int) -> ByteBuffer {
        guard storageCapacity - readableBytes > slack else { return self }
        var copy = ByteBufferAllocator().buffer(capacity: readableBytes)
        copy.writeImmutableBuffer(self)
        return copy
    }
}
