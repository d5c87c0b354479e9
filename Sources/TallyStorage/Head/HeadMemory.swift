/// Heap bytes the head holds, by structure: what `tally-microbench --head-memory` prints beside the
/// process's own malloc figures. Estimates from sizes and capacities, as glibc's malloc rounds them
/// (16-byte steps, 8 bytes of chunk header, 32 at the least).
public struct HeadMemory: Sendable {
    public struct Part: Sendable {
        public let name: String
        public let bytes: Int
    }

    public var series = 0
    public var samples = 0
    public var parts: [Part] = []
    public var total: Int { parts.reduce(0) { $0 + $1.bytes } }

    mutating func add(_ name: String, _ bytes: Int) { parts.append(Part(name: name, bytes: bytes)) }

    /// What malloc hands out for a request of `bytes`.
    static func malloc(_ bytes: Int) -> Int { bytes == 0 ? 0 : max(32, (bytes + 8 + 15) & ~15) }

    /// A Swift array's storage: a 32-byte object header, then the elements (none for an empty array).
    static func array<T>(_ array: [T]) -> Int {
        array.capacity == 0 ? 0 : malloc(32 + array.capacity * MemoryLayout<T>.stride)
    }

    /// A native String's storage: inline up to 15 UTF-8 bytes, else a 32-byte header, the bytes and a NUL.
    static func string(_ s: String) -> Int {
        let n = s.utf8.count
        return n <= 15 ? 0 : malloc(32 + n + 1)
    }

    /// A native Dictionary's storage: a 64-byte header, the occupancy bitmap, keys and values, over a
    /// power-of-two bucket count at most 3/4 full.
    static func dictionary<K, V>(_ d: [K: V]) -> Int {
        guard d.capacity > 0 else { return 0 }
        var buckets = 1
        while buckets * 3 / 4 < d.capacity { buckets <<= 1 }
        return malloc(64 + max(1, buckets / 64) * 8 + buckets * (MemoryLayout<K>.stride + MemoryLayout<V>.stride))
    }
}

extension Head {
    /// The head's heap by structure (see `HeadMemory`).
    func memory() -> HeadMemory {
        var m = HeadMemory()
        m.series = series.count
        var openUsed = 0, openHeap = 0, closedUsed = 0, closedHeap = 0, closedLists = 0
        for s in series {
            let open = s.open.stream.bytes
            openUsed += open.count
            openHeap += HeadMemory.array(open)
            m.samples += s.open.count
            closedLists += HeadMemory.array(s.closed)
            for c in s.closed {
                closedUsed += c.bytes.count
                closedHeap += HeadMemory.array(c.bytes)
                m.samples += XORChunk.sampleCount(c.bytes)
            }
        }
        let lateBytes = late.values.reduce(HeadMemory.dictionary(late)) { total, l in
            total + HeadMemory.array(l.buffer) + HeadMemory.array(l.chunks) + l.chunks.reduce(0) { $0 + HeadMemory.array($1.bytes) }
        }
        m.add("series structs (\(MemoryLayout<MemSeries>.stride) B each, room for \(series.capacity))", series.heapBytes)
        m.add("label ids (\(labelStore.nameSetCount) name sets, values)", labelStore.heapBytes)
        m.add("open chunks: encoded bytes", openUsed)
        m.add("open chunks: headers and spare capacity", openHeap - openUsed)
        m.add("closed chunks: encoded bytes", closedUsed)
        m.add("closed chunks: headers and spare capacity", closedHeap - closedUsed)
        m.add("closed chunk lists", closedLists)
        m.add("out-of-order samples", lateBytes)
        m.add("native histograms (chunks, newest)", histograms.values.reduce(HeadMemory.dictionary(histograms)) { total, h in
            total + HeadMemory.array(h.openInteger.bytes) + HeadMemory.array(h.openFloat.bytes) + HeadMemory.array(h.closed) + h.closed.reduce(0) { $0 + HeadMemory.array($1.bytes) }
        })
        m.add("postings", HeadMemory.dictionary(postings) + postings.values.reduce(0) { $0 + HeadMemory.array($1) })
        m.add("series maps (by label hash, by ref, by label symbol ids)", byHash.heapBytes + byRef.heapBytes + byLabelIds.heapBytes)
        m.add("encoded label cache (\(encodedLabelEntries.count) encodings)",
              encodedLabelPages.reduce(encodedLabelIndex.heapBytes + HeadMemory.array(encodedLabelEntries) + HeadMemory.array(encodedLabelPages)) { $0 + HeadMemory.array($1) })
        m.add("symbol table (\(symbols.count) symbols)", symbols.heapBytes)
        return m
    }
}
