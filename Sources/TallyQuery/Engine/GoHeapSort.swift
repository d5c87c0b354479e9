/// Go's `container/heap` and the `sort.Sort` (`GoPdqsort`) that Prometheus 2.42 orders `topk`,
/// `bottomk`, `sort` and `sort_desc` with. Neither is stable, so values that tie come out in an
/// order only the same algorithm reproduces; these follow Go's steps exactly.
struct GoHeap {
    var elements: [VectorElement]
    /// `Less(i, j)`: the element that belongs nearer the top.
    let less: (VectorElement, VectorElement) -> Bool

    mutating func push(_ element: VectorElement) {
        elements.append(element)
        up(elements.count - 1)
    }

    mutating func pop() {
        let n = elements.count - 1
        elements.swapAt(0, n)
        _ = down(0, n)
        elements.removeLast()
    }

    private mutating func up(_ start: Int) {
        var j = start
        while true {
            let i = (j - 1) / 2
            if i == j || !less(elements[j], elements[i]) { break }
            elements.swapAt(i, j)
            j = i
        }
    }

    private mutating func down(_ start: Int, _ n: Int) -> Bool {
        var i = start
        while true {
            let j1 = 2 * i + 1
            if j1 >= n || j1 < 0 { break }
            var j = j1
            let j2 = j1 + 1
            if j2 < n && less(elements[j2], elements[j1]) { j = j2 }
            if !less(elements[j], elements[i]) { break }
            elements.swapAt(i, j)
            i = j
        }
        return i > start
    }
}

enum GoSort {
    /// `sort.Sort(sort.Reverse(data))` where `data.Less` is `heapLess`: NaN last, then ascending
    /// (`heapLess` descending) or descending (`heapLess` ascending), ties in Go's order.
    static func sortReversed(_ elements: inout [VectorElement], heapLess: @escaping (VectorElement, VectorElement) -> Bool) {
        GoPdqsort.sort(&elements) { heapLess($1, $0) }
    }

    /// `vectorByValueHeap.Less`: NaN first, then ascending.
    static func ascendingNaNFirst(_ a: VectorElement, _ b: VectorElement) -> Bool { a.value.isNaN || a.value < b.value }

    /// `vectorByReverseValueHeap.Less`: NaN first, then descending.
    static func descendingNaNFirst(_ a: VectorElement, _ b: VectorElement) -> Bool { a.value.isNaN || a.value > b.value }
}
