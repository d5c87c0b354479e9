/// The head's series in pages of 4096, so the store grows a page at a time: a new series never
/// copies the others, and at most one page is spare (an array grows by copying all of itself and
/// leaves up to a half, or a quarter, spare). The first page grows as an array does, so a tenant
/// with a few series holds no more than they need.
struct SeriesPages: RandomAccessCollection, MutableCollection {
    private static let shift = 12
    private static let pageSize = 1 << shift

    private var pages: [[MemSeries]] = []
    private(set) var count = 0

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    subscript(index: Int) -> MemSeries {
        // Read in place: a copy would retain and release the series' chunk arrays on every read.
        _read { yield pages[index &>> Self.shift][index & (Self.pageSize - 1)] }
        _modify { yield &pages[index &>> Self.shift][index & (Self.pageSize - 1)] }
    }

    mutating func append(_ series: MemSeries) {
        if count & (Self.pageSize - 1) == 0 {
            pages.append([])
            if count > 0 { pages[pages.count - 1].reserveCapacity(Self.pageSize) }
        }
        pages[pages.count - 1].append(series)
        count += 1
    }

    /// Room for as many series as a page holds, spare included.
    var capacity: Int { pages.reduce(0) { $0 + $1.capacity } }

    var heapBytes: Int { pages.reduce(HeadMemory.array(pages)) { $0 + HeadMemory.array($1) } }
}
