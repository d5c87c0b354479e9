/// A regular expression in RE2's syntax matched in time linear in the input: the pattern becomes a
/// small NFA whose states are all followed at once (Thompson's construction and simulation), so no
/// pattern, whatever its nesting of repetitions, can make a match take exponential time. Label
/// matchers use it: any client of the query API can send a regex, and it runs against every value
/// of a label in the index.
///
/// It answers whether the whole value matches (`^(?:pattern)$`), over Unicode scalars as RE2 reads
/// UTF-8. Syntax outside what it knows (Unicode scripts such as `\p{Greek}`, back-references, look-
/// arounds, which RE2 refuses anyway) makes `init` return nil, and the caller falls back.
struct LinearRegex: Sendable {
    private let program: [Instruction]
    private let classes: [CharClass]

    /// Largest program accepted (RE2 refuses large ones too): bounds memory and time per scalar.
    static let maxInstructions = 20_000

    init?(_ pattern: String) {
        var parser = RegexParser(Array(pattern.unicodeScalars))
        guard let tree = parser.parse() else { return nil }
        var compiler = NFACompiler()
        guard compiler.emit(tree), compiler.program.count < Self.maxInstructions else { return nil }
        compiler.program.append(.match)
        program = compiler.program
        classes = compiler.classes
    }

    /// Whether all of `value` matches.
    func matches(_ value: String) -> Bool {
        let input = Array(value.unicodeScalars)
        var current = StateSet(count: program.count), next = StateSet(count: program.count)
        add(0, at: 0, input, &current)
        for position in 0..<input.count {
            let scalar = input[position]
            next.clear()
            for pc in current.members {
                if case .consume(let c) = program[pc], classes[c].contains(scalar) { add(pc + 1, at: position + 1, input, &next) }
            }
            swap(&current, &next)
            if current.members.isEmpty { return false }
        }
        return current.members.contains { if case .match = program[$0] { return true } else { return false } }
    }

    /// Adds `pc` and every state reachable from it without consuming input at `position`.
    private func add(_ start: Int, at position: Int, _ input: [Unicode.Scalar], _ set: inout StateSet) {
        var stack = [start]
        while let pc = stack.popLast() {
            guard set.insert(pc) else { continue }
            switch program[pc] {
            case .split(let a, let b):
                stack.append(b)
                stack.append(a)
            case .jump(let target):
                stack.append(target)
            case .assert(let kind):
                if kind.holds(at: position, in: input) { stack.append(pc + 1) }
            case .consume, .match:
                break
            }
        }
    }

    /// Program states in insertion order, each at most once.
    private struct StateSet {
        var members: [Int] = []
        private var present: [Bool]

        init(count: Int) { present = Array(repeating: false, count: count) }

        mutating func insert(_ pc: Int) -> Bool {
            if present[pc] { return false }
            present[pc] = true
            members.append(pc)
            return true
        }

        mutating func clear() {
            for pc in members { present[pc] = false }
            members.removeAll(keepingCapacity: true)
        }
    }
}

enum Instruction: Sendable {
    case consume(Int)
    case split(Int, Int)
    case jump(Int)
    case assert(Assertion)
    case match
}

enum Assertion: Sendable {
    case beginText, endText, beginLine, endLine, wordBoundary, notWordBoundary

    func holds(at position: Int, in input: [Unicode.Scalar]) -> Bool {
        switch self {
        case .beginText: return position == 0
        case .endText: return position == input.count
        case .beginLine: return position == 0 || input[position - 1] == "\n"
        case .endLine: return position == input.count || input[position] == "\n"
        case .wordBoundary, .notWordBoundary:
            let before = position > 0 && CharClass.isWord(input[position - 1])
            let after = position < input.count && CharClass.isWord(input[position])
            return (before != after) == (self == .wordBoundary)
        }
    }
}

/// A set of scalars: ranges and Unicode general categories (each possibly complemented), plus case folding.
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
        let category = scalar.properties.generalCategory
        return categories.contains { $0.members.contains(category) != $0.complemented }
    }

    static func isWord(_ s: Unicode.Scalar) -> Bool {
        (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || s == "_"
    }

    func contains(_ scalar: Unicode.Scalar) -> Bool {
        var found = holds(scalar)
        if !found && foldCase {
            for variant in [scalar.properties.lowercaseMapping, scalar.properties.uppercaseMapping] {
                let scalars = variant.unicodeScalars
                if scalars.count == 1, let v = scalars.first, holds(v) {
                    found = true
                    break
                }
            }
        }
        return found != negated
    }

    static let digits = CharClass(ranges: [48...57])
    static let word = CharClass(ranges: [48...57, 65...90, 95...95, 97...122])
    static let space = CharClass(ranges: [9...10, 12...13, 32...32])
    static let everything = CharClass(ranges: [0...0x10FFFF])
    static let everythingButNewline = CharClass(ranges: [0...9, 11...0x10FFFF])
}

/// The parsed pattern.
indirect enum RegexNode {
    case empty
    case chars(CharClass)
    case assert(Assertion)
    case concat([RegexNode])
    case alternate([RegexNode])
    case repeated(RegexNode, min: Int, max: Int?)
}

/// RE2's syntax (`regexp/syntax` in Go), the parts label matchers meet.
struct RegexParser {
    private let s: [Unicode.Scalar]
    private var i = 0
    private var foldCase = false
    private var dotAll = false
    private var multiLine = false
    private var depth = 0
    /// Set by syntax RE2 refuses that the descent would otherwise read on as text.
    private var invalid = false

    init(_ scalars: [Unicode.Scalar]) { s = scalars }

    mutating func parse() -> RegexNode? {
        guard let node = alternation(), i == s.count, !invalid else { return nil }
        return node
    }

    private mutating func alternation() -> RegexNode? {
        depth += 1
        defer { depth -= 1 }
        guard depth < 200 else { return nil }
        var branches: [RegexNode] = []
        let saved = (foldCase, dotAll, multiLine)
        while true {
            guard let branch = concatenation() else { return nil }
            branches.append(branch)
            guard i < s.count, s[i] == "|" else { break }
            i += 1
        }
        // Flags set inside a group end with it.
        (foldCase, dotAll, multiLine) = saved
        return branches.count == 1 ? branches[0] : .alternate(branches)
    }

    private mutating func concatenation() -> RegexNode? {
        var items: [RegexNode] = []
        while i < s.count, s[i] != "|", s[i] != ")" {
            guard var atom = atom() else { return nil }
            if let (low, high) = quantifier() {
                if case .empty = atom { return nil }
                atom = .repeated(atom, min: low, max: high)
                // RE2 refuses a repetition of a repetition (`a**`, `a++`, `a{2}*`) without a group.
                if quantifier() != nil { invalid = true }
            }
            items.append(atom)
        }
        return items.count == 1 ? items[0] : .concat(items)
    }

    /// `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` (each optionally lazy, which a whole-value match ignores).
    private mutating func quantifier() -> (Int, Int?)? {
        guard i < s.count else { return nil }
        var result: (Int, Int?)
        switch s[i] {
        case "*": result = (0, nil); i += 1
        case "+": result = (1, nil); i += 1
        case "?": result = (0, 1); i += 1
        case "{":
            guard let (low, high, end) = repeatCount(from: i) else { return nil }
            // RE2 refuses counts over 1000 and a maximum below the minimum.
            guard low <= 1000, (high ?? 0) <= 1000, high.map({ $0 >= low }) ?? true else {
                invalid = true
                return nil
            }
            result = (low, high)
            i = end
        default: return nil
        }
        if i < s.count, s[i] == "?" { i += 1 }
        return result
    }

    /// `{n}`, `{n,}` or `{n,m}` at `start`, with the index after it; nil when it is literal text.
    private func repeatCount(from start: Int) -> (Int, Int?, Int)? {
        var j = start + 1
        func number() -> Int? {
            let begin = j
            var value = 0
            while j < s.count, let d = s[j].properties.numericType == .decimal && s[j].isASCII ? Int(s[j].value) - 48 : nil {
                value = min(value * 10 + d, 100_000)
                j += 1
            }
            return j > begin ? value : nil
        }
        guard let low = number() else { return nil }
        var high: Int? = low
        if j < s.count, s[j] == "," {
            j += 1
            high = number()
        }
        guard j < s.count, s[j] == "}" else { return nil }
        return (low, high, j + 1)
    }

    private mutating func atom() -> RegexNode? {
        let c = s[i]
        i += 1
        switch c {
        case "(": return group()
        case "[": return charClass().map { .chars($0) }
        case ".": return .chars(dotAll ? .everything : .everythingButNewline)
        case "^": return .assert(multiLine ? .beginLine : .beginText)
        case "$": return .assert(multiLine ? .endLine : .endText)
        case "\\": return escape()
        case "*", "+", "?": return nil
        case "{":
            // Not a repetition here: RE2 reads it as literal text.
            return literal(c)
        default: return literal(c)
        }
    }

    private func literal(_ c: Unicode.Scalar) -> RegexNode {
        .chars(CharClass(ranges: [c.value...c.value], foldCase: foldCase))
    }

    private mutating func group() -> RegexNode? {
        if i < s.count, s[i] == "?" {
            i += 1
            if i < s.count, s[i] == "P" || s[i] == "<" {
                // (?P<name>...) or (?<name>...): a named capture, which a whole-value match treats as a group.
                if s[i] == "P" { i += 1 }
                guard i < s.count, s[i] == "<", let close = s[i...].firstIndex(of: ">"), close > i + 1 else { return nil }
                i = close + 1
            } else {
                // Flags: (?i) (?s) (?m) (?U), (?-i), or (?flags:...).
                var on = true
                var flags = (foldCase, dotAll, multiLine)
                while i < s.count, s[i] != ")", s[i] != ":" {
                    switch s[i] {
                    case "i": flags.0 = on
                    case "s": flags.1 = on
                    case "m": flags.2 = on
                    case "U": break
                    case "-": guard on else { return nil }; on = false
                    default: return nil
                    }
                    i += 1
                }
                guard i < s.count else { return nil }
                if s[i] == ")" {
                    i += 1
                    (foldCase, dotAll, multiLine) = flags
                    return .empty
                }
                i += 1
                let saved = (foldCase, dotAll, multiLine)
                (foldCase, dotAll, multiLine) = flags
                let inner = alternation()
                (foldCase, dotAll, multiLine) = saved
                guard let inner, i < s.count, s[i] == ")" else { return nil }
                i += 1
                return inner
            }
        }
        let saved = (foldCase, dotAll, multiLine)
        let inner = alternation()
        (foldCase, dotAll, multiLine) = saved
        guard let inner, i < s.count, s[i] == ")" else { return nil }
        i += 1
        return inner
    }

    /// After a backslash, outside a class.
    private mutating func escape() -> RegexNode? {
        guard i < s.count else { return nil }
        let c = s[i]
        switch c {
        case "A": i += 1; return .assert(.beginText)
        case "z": i += 1; return .assert(.endText)
        case "b": i += 1; return .assert(.wordBoundary)
        case "B": i += 1; return .assert(.notWordBoundary)
        case "Q":
            i += 1
            var items: [RegexNode] = []
            while i < s.count {
                if s[i] == "\\", i + 1 < s.count, s[i + 1] == "E" {
                    i += 2
                    break
                }
                items.append(literal(s[i]))
                i += 1
            }
            return .concat(items)
        default:
            guard var set = classEscape() else { return nil }
            set.foldCase = foldCase
            return .chars(set)
        }
    }

    /// An escape that stands for a set of scalars (also inside classes): `\d`, `\w`, `\s` and their
    /// negations, `\pL`, `\p{Lu}`, `\n`, `\x41`, `\x{263A}`, and escaped punctuation.
    private mutating func classEscape() -> CharClass? {
        guard i < s.count else { return nil }
        let c = s[i]
        i += 1
        func single(_ v: UInt32) -> CharClass { CharClass(ranges: [v...v]) }
        switch c {
        case "d": return .digits
        case "D": var k = CharClass.digits; k.negated = true; return k
        case "w": return .word
        case "W": var k = CharClass.word; k.negated = true; return k
        case "s": return .space
        case "S": var k = CharClass.space; k.negated = true; return k
        case "n": return single(10)
        case "t": return single(9)
        case "r": return single(13)
        case "f": return single(12)
        case "v": return single(11)
        case "a": return single(7)
        case "x":
            var digits = ""
            if i < s.count, s[i] == "{" {
                guard let close = s[i...].firstIndex(of: "}") else { return nil }
                digits = String(String.UnicodeScalarView(s[(i + 1)..<close]))
                i = close + 1
            } else {
                guard i + 2 <= s.count else { return nil }
                digits = String(String.UnicodeScalarView(s[i..<(i + 2)]))
                i += 2
            }
            guard let v = UInt32(digits, radix: 16), v <= 0x10FFFF else { return nil }
            return single(v)
        case "p", "P":
            var name = ""
            if i < s.count, s[i] == "{" {
                guard let close = s[i...].firstIndex(of: "}") else { return nil }
                name = String(String.UnicodeScalarView(s[(i + 1)..<close]))
                i = close + 1
            } else {
                guard i < s.count else { return nil }
                name = String(s[i])
                i += 1
            }
            guard var set = Self.generalCategory(name) else { return nil }
            if c == "P" { set.categories = set.categories.map { ($0.members, !$0.complemented) } }
            return set
        default:
            // Escaped punctuation is itself; RE2 refuses escaped letters and digits it does not know.
            guard c.isASCII, !c.properties.isAlphabetic, !(c >= "0" && c <= "9") else { return nil }
            return single(c.value)
        }
    }

    /// A Unicode general category by its one- or two-letter name (`L`, `Lu`, `^N`).
    private static func generalCategory(_ name: String) -> CharClass? {
        let complemented = name.hasPrefix("^")
        guard let members = categoryGroups[complemented ? String(name.dropFirst()) : name] else { return nil }
        return CharClass(categories: [(members, complemented)])
    }

    private static let categoryGroups: [String: [Unicode.GeneralCategory]] = [
        "L": [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter],
        "Lu": [.uppercaseLetter], "Ll": [.lowercaseLetter], "Lt": [.titlecaseLetter], "Lm": [.modifierLetter], "Lo": [.otherLetter],
        "N": [.decimalNumber, .letterNumber, .otherNumber], "Nd": [.decimalNumber], "Nl": [.letterNumber], "No": [.otherNumber],
        "P": [.connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation, .otherPunctuation],
        "S": [.mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol],
        "Z": [.spaceSeparator, .lineSeparator, .paragraphSeparator], "Zs": [.spaceSeparator],
        "M": [.spacingMark, .enclosingMark, .nonspacingMark],
    ]

    /// After `[`: `[^a-z\d[:alpha:][:^digit:]]`.
    private mutating func charClass() -> CharClass? {
        var set = CharClass(foldCase: foldCase)
        if i < s.count, s[i] == "^" {
            set.negated = true
            i += 1
        }
        var first = true
        while i < s.count, s[i] != "]" || first {
            first = false
            if s[i] == "[", i + 1 < s.count, s[i + 1] == ":" {
                guard let close = (i + 2 < s.count ? s[(i + 2)...] : []).firstIndex(of: ":"), close + 1 < s.count, s[close + 1] == "]" else { return nil }
                // `[:^alpha:]` is the complement of `[:alpha:]`.
                let name = String(String.UnicodeScalarView(s[(i + 2)..<close]))
                let negated = name.hasPrefix("^")
                guard let ranges = Self.posixClasses[negated ? String(name.dropFirst()) : name] else { return nil }
                set.ranges += negated ? Self.complement(ranges) : ranges
                i = close + 2
                continue
            }
            let low: UInt32
            if s[i] == "\\" {
                i += 1
                guard let escaped = classEscape() else { return nil }
                if escaped.negated || !escaped.categories.isEmpty || escaped.ranges.count != 1 || escaped.ranges[0].count != 1 {
                    // A set inside a class: \d, \W, \pL. Negated ones are added as their complement.
                    set.ranges += escaped.negated ? Self.complement(escaped.ranges) : escaped.ranges
                    set.categories += escaped.categories
                    continue
                }
                low = escaped.ranges[0].lowerBound
            } else {
                low = s[i].value
                i += 1
            }
            if i + 1 < s.count, s[i] == "-", s[i + 1] != "]" {
                i += 1
                let high: UInt32
                if s[i] == "\\" {
                    i += 1
                    guard let escaped = classEscape(), !escaped.negated, escaped.categories.isEmpty, escaped.ranges.count == 1, escaped.ranges[0].count == 1 else { return nil }
                    high = escaped.ranges[0].lowerBound
                } else {
                    high = s[i].value
                    i += 1
                }
                guard low <= high else { return nil }
                set.ranges.append(low...high)
            } else {
                set.ranges.append(low...low)
            }
        }
        guard i < s.count else { return nil }
        i += 1
        return set
    }

    private static func complement(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if r.lowerBound > next { out.append(next...(r.lowerBound - 1)) }
            next = max(next, r.upperBound &+ 1)
        }
        if next <= 0x10FFFF { out.append(next...0x10FFFF) }
        return out
    }

    private static let posixClasses: [String: [ClosedRange<UInt32>]] = [
        "alnum": [48...57, 65...90, 97...122], "alpha": [65...90, 97...122], "ascii": [0...127], "blank": [9...9, 32...32],
        "cntrl": [0...31, 127...127], "digit": [48...57], "graph": [33...126], "lower": [97...122], "print": [32...126],
        "punct": [33...47, 58...64, 91...96, 123...126], "space": [9...13, 32...32], "upper": [65...90],
        "word": [48...57, 65...90, 95...95, 97...122], "xdigit": [48...57, 65...70, 97...102],
    ]
}

/// Thompson's construction.
struct NFACompiler {
    var program: [Instruction] = []
    var classes: [CharClass] = []

    /// Appends `node`'s instructions; false once the program grows past the limit.
    mutating func emit(_ node: RegexNode) -> Bool {
        guard program.count < LinearRegex.maxInstructions else { return false }
        switch node {
        case .empty:
            return true
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
        case .repeated(let inner, let low, let high):
            for _ in 0..<low { guard emit(inner) else { return false } }
            if let high {
                // Each optional copy may be skipped to the end.
                var skips: [Int] = []
                for _ in low..<high {
                    skips.append(program.count)
                    program.append(.split(program.count + 1, 0))
                    guard emit(inner) else { return false }
                }
                for k in skips { program[k] = .split(k + 1, program.count) }
            } else {
                let loop = program.count
                program.append(.split(loop + 1, 0))
                guard emit(inner) else { return false }
                program.append(.jump(loop))
                program[loop] = .split(loop + 1, program.count)
            }
            return true
        }
    }
}
