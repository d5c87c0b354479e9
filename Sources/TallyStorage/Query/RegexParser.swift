/// The parsed pattern.
indirect enum RegexNode {
    case chars(CharClass)
    case assert(Assertion)
    case concat([RegexNode])
    case alternate([RegexNode])
    /// `greedy` tries one more repetition before one fewer; it decides only what groups capture.
    case repeated(RegexNode, min: Int, max: Int?, greedy: Bool)
    /// Capture group `index` (from 1).
    case capture(Int, RegexNode)

    /// Whether the node can match the empty text.
    var isNullable: Bool {
        switch self {
        case .assert: true
        case .chars: false
        case .concat(let items): items.allSatisfy(\.isNullable)
        case .alternate(let branches): branches.contains(where: \.isNullable)
        case .repeated(let inner, let low, _, _): low == 0 || inner.isNullable
        case .capture(_, let inner): inner.isNullable
        }
    }
}

/// The flags `(?imsU)` set for the rest of the group they appear in.
struct RegexFlags {
    var foldCase = false
    var dotAll = false
    var multiLine = false
    /// `(?U)`: `x*` is lazy and `x*?` greedy.
    var ungreedy = false
}

/// RE2's syntax as Go 1.19's `regexp/syntax` reads it with Perl's flags, which Prometheus uses.
struct RegexParser {
    private let s: [Unicode.Scalar]
    private var i = 0
    private var flags = RegexFlags()
    private var depth = 0
    /// Each capture group's name (nil when unnamed), in the order of their opening parentheses.
    private(set) var captureNames: [String?] = []
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
        let saved = flags
        while true {
            guard let branch = concatenation() else { return nil }
            branches.append(branch)
            guard i < s.count, s[i] == "|" else { break }
            i += 1
        }
        // Flags set inside a group end with it.
        flags = saved
        return branches.count == 1 ? branches[0] : .alternate(branches)
    }

    private mutating func concatenation() -> RegexNode? {
        var items: [RegexNode] = []
        while i < s.count, s[i] != "|", s[i] != ")" {
            guard let pieces = atoms() else { return nil }
            items += pieces
            if let (low, high, lazy) = quantifier() {
                // As in Go, a repetition applies to the item before it, also across a flag group or
                // `\Q...\E` (`a(?i)*` is `a*`, `\Qab\E*` is `ab*`); with none it lacks its argument.
                guard let last = items.popLast() else { return nil }
                items.append(.repeated(last, min: low, max: high, greedy: lazy == flags.ungreedy))
                // RE2 refuses a repetition right after a repetition (`a**`, `a++`, `a{2}*`).
                if quantifier() != nil { invalid = true }
            }
        }
        return items.count == 1 ? items[0] : .concat(items)
    }

    /// `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`, and whether a `?` follows (lazy, or greedy under `(?U)`).
    private mutating func quantifier() -> (Int, Int?, Bool)? {
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
        let lazy = i < s.count && s[i] == "?"
        if lazy { i += 1 }
        return (result.0, result.1, lazy)
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
            // Go reads `{02}` as text: a count has no leading zero.
            return j > begin && !(j - begin > 1 && s[begin] == "0") ? value : nil
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

    /// The items the text at `i` adds: one, or none for a flag group, or a literal each for `\Q...\E`.
    private mutating func atoms() -> [RegexNode]? {
        if s[i] == "(", i + 2 < s.count, s[i + 1] == "?", s[i + 2] != "P" {
            i += 2
            return flagGroup()
        }
        if s[i] == "\\", i + 1 < s.count, s[i + 1] == "Q" {
            i += 2
            var items: [RegexNode] = []
            while i < s.count {
                if s[i] == "\\", i + 1 < s.count, s[i + 1] == "E" {
                    i += 2
                    return items
                }
                items.append(literal(s[i]))
                i += 1
            }
            // Unended, it would quote the `)$` Prometheus puts after the pattern.
            return nil
        }
        return atom().map { [$0] }
    }

    private mutating func atom() -> RegexNode? {
        let c = s[i]
        i += 1
        switch c {
        case "(": return group()
        case "[": return charClass().map { .chars($0) }
        case ".": return .chars(flags.dotAll ? .everything : .everythingButNewline)
        case "^": return .assert(flags.multiLine ? .beginLine : .beginText)
        case "$": return .assert(flags.multiLine ? .endLine : .endText)
        case "\\": return escape()
        case "*", "+", "?": return nil
        case "{":
            // A repetition with nothing before it is refused, as in Go; any other `{` is literal text.
            return repeatCount(from: i - 1) == nil ? literal(c) : nil
        default: return literal(c)
        }
    }

    private func literal(_ c: Unicode.Scalar) -> RegexNode {
        .chars(CharClass(ranges: [c.value...c.value], foldCase: flags.foldCase))
    }

    private mutating func group() -> RegexNode? {
        var name: String?
        if i < s.count, s[i] == "?" {
            i += 1
            // (?P<name>...); flag groups were read by `atoms`. Go 1.19, which Prometheus 2.42 is built
            // with, refuses `(?<name>...)`. A name is word characters; Go 1.19 allows it twice.
            guard i < s.count, s[i] == "P" else { return nil }
            i += 1
            guard i < s.count, s[i] == "<", let close = s[i...].firstIndex(of: ">") else { return nil }
            let text = String(String.UnicodeScalarView(s[(i + 1)..<close]))
            guard !text.isEmpty, text.unicodeScalars.allSatisfy(CharClass.isWord) else { return nil }
            name = text
            i = close + 1
        }
        captureNames.append(name)
        let index = captureNames.count
        let saved = flags
        let inner = alternation()
        flags = saved
        guard let inner, i < s.count, s[i] == ")" else { return nil }
        i += 1
        return .capture(index, inner)
    }

    /// After `(?`: flags `(?i)`, `(?s)`, `(?m)`, `(?U)`, `(?-i)`, set for the rest of the group (no
    /// item), or `(?flags:...)`, a group that captures nothing. RE2 refuses a `-` with no flag after it.
    private mutating func flagGroup() -> [RegexNode]? {
        var on = true
        var sawFlag = false
        var set = flags
        while i < s.count, s[i] != ")", s[i] != ":" {
            switch s[i] {
            case "i": set.foldCase = on
            case "s": set.dotAll = on
            case "m": set.multiLine = on
            case "U": set.ungreedy = on
            case "-":
                guard on else { return nil }
                on = false
                sawFlag = false
                i += 1
                continue
            default: return nil
            }
            sawFlag = true
            i += 1
        }
        guard i < s.count, on || sawFlag else { return nil }
        if s[i] == ")" {
            i += 1
            flags = set
            return []
        }
        i += 1
        let saved = flags
        flags = set
        let inner = alternation()
        flags = saved
        guard let inner, i < s.count, s[i] == ")" else { return nil }
        i += 1
        return [inner]
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
        default:
            guard var set = classEscape() else { return nil }
            set.foldCase = flags.foldCase
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
        case "0"..."7":
            // Octal, as in Go: `\0`, or `\1`-`\7` with another octal digit after, up to three digits.
            // A lone `\1`-`\7` is a back-reference, which RE2 refuses.
            let octal: ClosedRange<Unicode.Scalar> = "0"..."7"
            guard c == "0" || (i < s.count && octal.contains(s[i])) else { return nil }
            var value = c.value - 48
            for _ in 1..<3 where i < s.count && octal.contains(s[i]) {
                value = value * 8 + s[i].value - 48
                i += 1
            }
            return single(value)
        case "x":
            guard let digits = braced(orNext: 2), let v = UInt32(digits, radix: 16), v <= 0x10FFFF else { return nil }
            return single(v)
        case "p", "P":
            guard let name = braced(orNext: 1) else { return nil }
            return Self.unicodeClass(name, complemented: c == "P")
        default:
            // Escaped punctuation is itself; RE2 refuses escaped letters and digits it does not know.
            guard c.isASCII, !c.properties.isAlphabetic, !(c >= "0" && c <= "9") else { return nil }
            return single(c.value)
        }
    }

    /// After `\x` or `\p`: the text in braces, or else the next `count` scalars.
    private mutating func braced(orNext count: Int) -> String? {
        if i < s.count, s[i] == "{" {
            guard let close = s[i...].firstIndex(of: "}") else { return nil }
            defer { i = close + 1 }
            return String(String.UnicodeScalarView(s[(i + 1)..<close]))
        }
        guard i + count <= s.count else { return nil }
        defer { i += count }
        return String(String.UnicodeScalarView(s[i..<(i + count)]))
    }

    /// `\p{name}` (or `\P{name}` when `complemented`) as Go 1.19 reads it: `Any`, a general category
    /// by its one- or two-letter name (`L`, `Lu`), or a script (`Greek`); `^` before the name
    /// complements it too.
    private static func unicodeClass(_ name: String, complemented: Bool) -> CharClass? {
        if name.hasPrefix("^") { return unicodeClass(String(name.dropFirst()), complemented: !complemented) }
        if name == "Any" { return CharClass(ranges: complemented ? [] : [0...0x10FFFF]) }
        if let members = categoryGroups[name] { return CharClass(categories: [(members, complemented)]) }
        guard let ranges = CharClass.scripts[name] else { return nil }
        return CharClass(ranges: complemented ? complement(ranges) : ranges)
    }

    private static let categoryGroups: [String: [Unicode.GeneralCategory]] = [
        "C": [.control, .format, .privateUse, .surrogate], "Cc": [.control], "Cf": [.format], "Co": [.privateUse], "Cs": [.surrogate],
        "L": [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter],
        "Lu": [.uppercaseLetter], "Ll": [.lowercaseLetter], "Lt": [.titlecaseLetter], "Lm": [.modifierLetter], "Lo": [.otherLetter],
        "M": [.spacingMark, .enclosingMark, .nonspacingMark], "Mc": [.spacingMark], "Me": [.enclosingMark], "Mn": [.nonspacingMark],
        "N": [.decimalNumber, .letterNumber, .otherNumber], "Nd": [.decimalNumber], "Nl": [.letterNumber], "No": [.otherNumber],
        "P": [.connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation, .otherPunctuation],
        "Pc": [.connectorPunctuation], "Pd": [.dashPunctuation], "Ps": [.openPunctuation], "Pe": [.closePunctuation],
        "Pi": [.initialPunctuation], "Pf": [.finalPunctuation], "Po": [.otherPunctuation],
        "S": [.mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol],
        "Sm": [.mathSymbol], "Sc": [.currencySymbol], "Sk": [.modifierSymbol], "So": [.otherSymbol],
        "Z": [.spaceSeparator, .lineSeparator, .paragraphSeparator], "Zs": [.spaceSeparator], "Zl": [.lineSeparator], "Zp": [.paragraphSeparator],
    ]

    /// After `[`: `[^a-z\d[:alpha:][:^digit:]]`.
    private mutating func charClass() -> CharClass? {
        var set = CharClass(foldCase: flags.foldCase)
        if i < s.count, s[i] == "^" {
            set.negated = true
            i += 1
        }
        var first = true
        while i < s.count, s[i] != "]" || first {
            first = false
            // `[:name:]` up to the first `:]`, as Go reads it; without one, `[` is itself.
            if s[i] == "[", i + 1 < s.count, s[i + 1] == ":", let close = firstColonBracket(from: i + 2) {
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

    /// Where the first `:]` at or after `start` begins.
    private func firstColonBracket(from start: Int) -> Int? {
        var j = start
        while j + 1 < s.count {
            if s[j] == ":" && s[j + 1] == "]" { return j }
            j += 1
        }
        return nil
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
