enum Instruction: Sendable {
    case consume(Int)
    case split(Int, Int)
    case jump(Int)
    case assert(Assertion)
    /// Records the position in a capture slot: group k's start in slot 2k, its end in 2k + 1.
    case save(Int)
    case match
}

enum Assertion: Sendable {
    case beginText, endText, beginLine, endLine, wordBoundary, notWordBoundary

    func holds(at boundary: LinearRegex.Boundary) -> Bool {
        switch self {
        case .beginText: return boundary.before == nil
        case .endText: return boundary.after == nil
        case .beginLine: return boundary.before.map { $0 == "\n" } ?? true
        case .endLine: return boundary.after.map { $0 == "\n" } ?? true
        case .wordBoundary, .notWordBoundary:
            let before = boundary.before.map(CharClass.isWord) ?? false
            let after = boundary.after.map(CharClass.isWord) ?? false
            return (before != after) == (self == .wordBoundary)
        }
    }
}

/// A set of scalars: ranges (scripts among them) and Unicode general categories (each possibly
/// complemented), plus case folding.
struct CharClass: Sendable {
    var ranges: [ClosedRange<UInt32>] = []
    var categories: [(members: [Unicode.GeneralCategory], complemented: Bool)] = []
    var negated = false
    var foldCase = false

    init(ranges: [ClosedRange<UInt32>] = [], categories: [(members: [Unicode.GeneralCategory], complemented: Bool)] = [],
         negated: Bool = false, foldCase: Bool = false) {
        self.ranges = ranges
        self.categories = categories
        self.negated = negated
        self.foldCase = foldCase
    }

    private func holds(_ scalar: Unicode.Scalar) -> Bool {
        if ranges.contains(where: { $0.contains(scalar.value) }) { return true }
        guard !categories.isEmpty else { return false }
        // Go 1.19's tables are Unicode 13.0: a scalar assigned since then is in no category there.
        let category = scalar.properties.age.map { $0.major < 13 || ($0.major == 13 && $0.minor == 0) } == true ? scalar.properties.generalCategory : .unassigned
        return categories.contains { $0.members.contains(category) != $0.complemented }
    }

    /// Each script's scalars (`Greek`, `Old_Italic`), from the generated table.
    static let scripts: [String: [ClosedRange<UInt32>]] = scriptTable.mapValues { text in
        text.split(separator: ",").map { item in
            let bounds = item.split(separator: "-").map { UInt32($0, radix: 16)! }
            return bounds[0]...bounds[bounds.count - 1]
        }
    }

    static func isWord(_ s: Unicode.Scalar) -> Bool {
        (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || s == "_"
    }

    func contains(_ scalar: Unicode.Scalar) -> Bool {
        var found = holds(scalar)
        if !found && foldCase, let orbit = Self.caseOrbits[scalar.value] {
            // As Go's (?i): the scalar matches when any scalar simple case folding makes equal to it
            // does (`s`, `S` and `ſ`; `k`, `K` and the Kelvin sign).
            found = orbit.contains { $0 != scalar.value && Unicode.Scalar($0).map(holds) == true }
        }
        return found != negated
    }

    /// For each scalar that simple case folding makes equal to others, all of them (itself too).
    private static let caseOrbits: [UInt32: [UInt32]] = {
        var orbits: [UInt32: [UInt32]] = [:]
        for line in caseOrbitTable.split(separator: "\n") {
            let members = line.split(separator: " ").map { UInt32($0, radix: 16)! }
            for member in members { orbits[member] = members }
        }
        return orbits
    }()

    static let digits = CharClass(ranges: [48...57])
    static let word = CharClass(ranges: [48...57, 65...90, 95...95, 97...122])
    static let space = CharClass(ranges: [9...10, 12...13, 32...32])
    static let everything = CharClass(ranges: [0...0x10FFFF])
    static let everythingButNewline = CharClass(ranges: [0...9, 11...0x10FFFF])
}

/// Thompson's construction.
struct NFACompiler {
    var program: [Instruction] = []
    var classes: [CharClass] = []

    /// Appends `node`'s instructions; false once the program grows past the limit.
    mutating func emit(_ node: RegexNode) -> Bool {
        guard program.count < LinearRegex.maxInstructions else { return false }
        switch node {
        case .chars(let set):
            classes.append(set)
            program.append(.consume(classes.count - 1))
            return true
        case .assert(let kind):
            program.append(.assert(kind))
            return true
        case .concat(let items):
            return items.allSatisfy { emit($0) }
        case .alternate(let branches):
            var jumps: [Int] = []
            for (k, branch) in branches.enumerated() {
                if k < branches.count - 1 {
                    let split = program.count
                    program.append(.split(split + 1, 0))
                    guard emit(branch) else { return false }
                    jumps.append(program.count)
                    program.append(.jump(0))
                    program[split] = .split(split + 1, program.count)
                } else {
                    guard emit(branch) else { return false }
                }
            }
            for j in jumps { program[j] = .jump(program.count) }
            return true
        case .capture(let index, let inner):
            program.append(.save(2 * index))
            guard emit(inner) else { return false }
            program.append(.save(2 * index + 1))
            return true
        case .repeated(let inner, let low, let high, let greedy):
            // As Go compiles them (after its simplification), so that groups capture what Go's do:
            // x{n,m} is n copies then m - n optional ones, x{n,} is n - 1 copies then x+, and x* is
            // a loop, or (x+)? when x can match empty text.
            guard let high else {
                if low == 0 { return inner.isNullable ? optional(greedy) { $0.oneOrMore(inner, greedy) } : loop(inner, greedy) }
                for _ in 1..<low { guard emit(inner) else { return false } }
                return oneOrMore(inner, greedy)
            }
            for _ in 0..<low { guard emit(inner) else { return false } }
            var skips: [Int] = []
            for _ in low..<high {
                skips.append(program.count)
                program.append(.split(0, 0))
                guard emit(inner) else { return false }
            }
            for k in skips { program[k] = preferring(k + 1, over: program.count, greedy) }
            return true
        }
    }

    /// A split that tries `first` before `second` when greedy, the other way round when lazy.
    private func preferring(_ first: Int, over second: Int, _ greedy: Bool) -> Instruction {
        greedy ? .split(first, second) : .split(second, first)
    }

    /// `x?` around what `body` emits.
    private mutating func optional(_ greedy: Bool, _ body: (inout NFACompiler) -> Bool) -> Bool {
        let split = program.count
        program.append(.split(0, 0))
        guard body(&self) else { return false }
        program[split] = preferring(split + 1, over: program.count, greedy)
        return true
    }

    /// `x+`: x, then back to its start or on.
    private mutating func oneOrMore(_ inner: RegexNode, _ greedy: Bool) -> Bool {
        let start = program.count
        guard emit(inner) else { return false }
        program.append(preferring(start, over: program.count + 1, greedy))
        return true
    }

    /// `x*` for an x that cannot match empty text.
    private mutating func loop(_ inner: RegexNode, _ greedy: Bool) -> Bool {
        let split = program.count
        program.append(.split(0, 0))
        guard emit(inner) else { return false }
        program.append(.jump(split))
        program[split] = preferring(split + 1, over: program.count, greedy)
        return true
    }
}
