/// The grouping of `count_values ... by (...)` as Prometheus 2.42 uses it, step after step.
///
/// 2.42 appends the value label to the node's own `by` list at each step and sorts the result in
/// place. The parser built that list one label at a time, so its array has room for one more
/// label when the count is not a power of two (3, 5, 6, 7, ...): the append then writes into the
/// node's array, and the sort moves the value label into the node's first labels, pushing the
/// last one out. Each later step appends again over what was pushed out. So from the second step
/// of a range (or subquery) on, the value label can take the place of `by` labels that sort after
/// it, and the groups lose those labels. Answers equal to 2.42's need the same list, kept for the
/// whole query as 2.42 keeps it in the expression.
final class CountValuesGrouping: @unchecked Sendable {
    /// The array the node's list lives in: its labels, then the room the append writes to.
    private var array: [String]
    private let count: Int
    private let hasRoom: Bool

    init(_ labels: [String]) {
        count = labels.count
        // Appending to a slice of one doubles its capacity: 1, 2, 4, 8, ...
        hasRoom = count > 0 && count & (count - 1) != 0
        array = labels + (hasRoom ? [""] : [])
    }

    /// Each evaluation of the node sorts its list in place first.
    func startEvaluation() {
        array[0..<count].sort(by: Self.goOrder)
    }

    /// The labels one step groups by.
    func step(valueLabel: String) -> Set<String> {
        guard hasRoom else { return Set(array).union([valueLabel]) }
        array[count] = valueLabel
        array.sort(by: Self.goOrder)
        return Set(array)
    }

    private static func goOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}
