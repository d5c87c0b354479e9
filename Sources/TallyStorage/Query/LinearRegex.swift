/// A regular expression in RE2's syntax matched in time linear in the input: the pattern becomes a
/// small NFA whose states are all followed at once (Thompson's construction, and Pike's simulation
/// when capture groups are wanted), so no pattern, whatever its nesting of repetitions, can make a
/// match take exponential time. Label matchers and `label_replace` use it: any client of the query
/// API can send a regex, and it runs against label values that any sender can write.
///
/// It answers whether the whole value matches (`^(?:pattern)$`), over Unicode scalars as RE2 reads
/// UTF-8, and which text each capture group took, as Go's `regexp` reports it (leftmost-first:
/// the match a backtracking engine would find first). Syntax RE2 refuses (back-references,
/// lookarounds, Go 1.19's unknown classes) makes `init` return nil.
public struct LinearRegex: Sendable {
    private let program: [Instruction]
    private let classes: [CharClass]
    /// The name of each capture group, by number from 1 (nil for an unnamed group).
    public let groupNames: [String?]

    /// Largest program accepted (RE2 refuses large ones too): bounds memory and time per scalar.
    static let maxInstructions = 20_000

    public init?(_ pattern: String) {
        var parser = RegexParser(Array(pattern.unicodeScalars))
        guard let tree = parser.parse() else { return nil }
        var compiler = NFACompiler()
        guard compiler.emit(tree), compiler.program.count < Self.maxInstructions else { return nil }
        compiler.program.append(.match)
        program = compiler.program
        classes = compiler.classes
        groupNames = parser.captureNames
    }

    /// Whether all of `value` matches.
    public func matches(_ value: String) -> Bool {
        guard let survivors = run(over: value, tracksGroups: false, check: { () throws(Never) in }) else { return false }
        return survivors.states.contains { if case .match = program[$0] { return true } else { return false } }
    }

    /// The text each capture group took in the whole-value match (element 0 the whole value, nil
    /// for a group that took no part), or nil when `value` does not match.
    public func captures(_ value: String) -> [String?]? {
        captures(value) { () throws(Never) in }
    }

    /// `captures`, calling `check` every `checkInterval` scalars of the value and giving up with
    /// its error: a value a query builds can be hundreds of megabytes, which takes the automaton
    /// seconds (following every thread's groups costs more than the plain match), and the query's
    /// deadline must still end it.
    public func captures<Failure: Error>(_ value: String, check: () throws(Failure) -> Void) throws(Failure) -> [String?]? {
        // Threads are in priority order: the first to match is the one a backtracking engine finds.
        guard let survivors = try run(over: value, tracksGroups: true, check: check),
              let winner = survivors.states.first(where: { if case .match = program[$0] { return true } else { return false } }) else { return nil }
        var found = survivors.groups[winner]
        let utf8 = value.utf8
        found[0] = 0
        found[1] = utf8.count
        return stride(from: 0, to: found.count, by: 2).map { slot in
            guard found[slot] >= 0 && found[slot + 1] >= found[slot] else { return nil }
            // The offsets are UTF-8 offsets at scalar boundaries: the slice is whole scalars.
            return String(decoding: utf8[utf8.index(utf8.startIndex, offsetBy: found[slot])..<utf8.index(utf8.startIndex, offsetBy: found[slot + 1])],
                          as: UTF8.self)
        }
    }

    private static let checkInterval = 64

    /// What the assertions at a point between two scalars look at: the scalars either side (nil at
    /// an end of the value) and, for the groups, the point's UTF-8 offset.
    struct Boundary {
        let offset: Int
        let before: Unicode.Scalar?
        let after: Unicode.Scalar?
    }

    /// Runs every thread over `value`'s scalars, read one at a time from the string itself (a copy
    /// as an array of scalars would be four times a value that can be hundreds of megabytes): the
    /// threads alive after the last scalar, or nil once none is.
    private func run<Failure: Error>(over value: String, tracksGroups: Bool, check: () throws(Failure) -> Void) throws(Failure) -> ThreadList? {
        var scalars = value.unicodeScalars.makeIterator()
        var upcoming = scalars.next()
        let slots = tracksGroups ? Array(repeating: -1, count: 2 * (groupNames.count + 1)) : []
        var current = ThreadList(count: program.count, tracksGroups: tracksGroups), next = current
        add(0, groups: slots, at: Boundary(offset: 0, before: nil, after: upcoming), &current)
        var offset = 0, consumed = 0
        while let scalar = upcoming {
            if consumed % Self.checkInterval == 0 { try check() }
            consumed += 1
            offset += UTF8.width(scalar)
            upcoming = scalars.next()
            step(from: current, over: scalar, to: Boundary(offset: offset, before: scalar, after: upcoming), into: &next)
            swap(&current, &next)
            if current.states.isEmpty { return nil }
        }
        return current
    }

    /// Moves every thread of `current` that consumes `scalar` into `next`, in order, at `boundary`
    /// (the point after `scalar`).
    private func step(from current: ThreadList, over scalar: Unicode.Scalar, to boundary: Boundary, into next: inout ThreadList) {
        next.clear()
        for pc in current.states {
            if case .consume(let c) = program[pc], classes[c].contains(scalar) {
                add(pc + 1, groups: current.tracksGroups ? current.groups[pc] : [], at: boundary, &next)
            }
        }
    }

    /// Adds `start` and every state reachable from it without consuming input at `boundary`, depth
    /// first in priority order (a split's first branch before its second), each state once: the
    /// first thread to reach a state has the higher priority, and the later one is dropped.
    private func add(_ start: Int, groups: [Int], at boundary: Boundary, _ list: inout ThreadList) {
        var stack = list.takeStack()
        defer { list.returnStack(stack) }
        stack.append((start, groups))
        while let (pc, groups) = stack.popLast() {
            guard list.insert(pc, groups: groups) else { continue }
            switch program[pc] {
            case .split(let a, let b):
                stack.append((b, groups))
                stack.append((a, groups))
            case .jump(let target):
                stack.append((target, groups))
            case .assert(let kind):
                if kind.holds(at: boundary) { stack.append((pc + 1, groups)) }
            case .save(let slot):
                var saved = groups
                if list.tracksGroups { saved[slot] = boundary.offset }
                stack.append((pc + 1, saved))
            case .consume, .match:
                break
            }
        }
    }

    /// Program states in priority order, each at most once, with the group positions of the thread
    /// that reached it when they are tracked.
    private struct ThreadList {
        var states: [Int] = []
        var groups: [[Int]]
        private var present: [Bool]
        let tracksGroups: Bool

        init(count: Int, tracksGroups: Bool) {
            present = Array(repeating: false, count: count)
            groups = tracksGroups ? Array(repeating: [], count: count) : []
            self.tracksGroups = tracksGroups
        }

        mutating func insert(_ pc: Int, groups found: [Int]) -> Bool {
            if present[pc] { return false }
            present[pc] = true
            states.append(pc)
            if tracksGroups { groups[pc] = found }
            return true
        }

        mutating func clear() {
            for pc in states { present[pc] = false }
            states.removeAll(keepingCapacity: true)
        }

        /// The work list `add` follows, kept between calls so that a step allocates nothing.
        private var stack: [(Int, [Int])] = []

        mutating func takeStack() -> [(Int, [Int])] {
            var taken: [(Int, [Int])] = []
            swap(&taken, &stack)
            return taken
        }

        mutating func returnStack(_ emptied: [(Int, [Int])]) { stack = emptied }
    }
}
