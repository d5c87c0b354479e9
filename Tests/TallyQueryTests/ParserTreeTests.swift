import TallyQuery
import XCTest

/// What the printed form cannot show: how operators group, what each node holds, and where it is.
final class ParserTreeTests: XCTestCase {
    /// Precedence and associativity as in Prometheus' grammar, shown fully parenthesized.
    func testOperatorsGroupAsInPrometheus() throws {
        let groupings = [
            ("a - b - c", "((a - b) - c)"), ("a / b * c", "((a / b) * c)"), ("a % b / c", "((a % b) / c)"),
            ("a ^ b ^ c", "(a ^ (b ^ c))"), ("a + b * c", "(a + (b * c))"), ("a * b + c", "((a * b) + c)"),
            ("a * b ^ c", "(a * (b ^ c))"), ("a atan2 b * c", "((a atan2 b) * c)"), ("a + b atan2 c", "(a + (b atan2 c))"),
            ("a == b + c", "(a == (b + c))"), ("a > bool b < c", "((a > bool b) < c)"), ("a and b == c", "(a and (b == c))"),
            ("a or b and c", "(a or (b and c))"), ("a and b or c", "((a and b) or c)"), ("a unless b and c", "((a unless b) and c)"),
            ("a or b unless c", "(a or (b unless c))"), ("a or b or c", "((a or b) or c)"),
            ("-a ^ b", "-(a ^ b)"), ("-a * b", "(-a * b)"), ("-a + b", "(-a + b)"), ("a ^ -b ^ c", "(a ^ -(b ^ c))"),
            ("- - a", "--a"), ("+a", "+a"), ("a + b offset 5m", "(a + b offset 5m)"), ("-a offset 5m", "-a offset 5m"),
            ("(a + b) * c", "({(a + b)} * c)"),
        ]
        for (query, expected) in groupings {
            XCTAssertEqual(Self.grouped(try PromQL.parse(query)), expected, query)
        }
    }

    func testNodesHoldWhatWasWritten() throws {
        guard case .binary(let join) = try PromQL.parse(#"a * on(x) group_left(y, z) b{c!~"d.*"} offset -5m"#),
              case .vectorSelector(let right) = join.rhs else { return XCTFail("not a join of selectors") }
        XCTAssertEqual(join.matching, VectorMatching(cardinality: .manyToOne, matchingLabels: ["x"], on: true, include: ["y", "z"]))
        XCTAssertEqual(right.name, "b")
        XCTAssertEqual(right.matchers, [LabelMatcher(name: "c", kind: .regexNoMatch, value: "d.*")])
        XCTAssertEqual(right.allMatchers.last, LabelMatcher(name: "__name__", kind: .equal, value: "b"))
        XCTAssertEqual(right.offset, -300_000)

        // The type checker's adjustments: set operators match many-to-many; no matching with a scalar.
        guard case .binary(let set) = try PromQL.parse("a and b"), case .binary(let scalar) = try PromQL.parse("a + 1") else { return XCTFail() }
        XCTAssertEqual(set.matching?.cardinality, .manyToMany)
        XCTAssertNil(scalar.matching)

        guard case .subquery(let subquery) = try PromQL.parse("rate(a[1h])[1d:] @ 1.5") else { return XCTFail("not a subquery") }
        XCTAssertEqual(subquery.range, 86_400_000)
        XCTAssertEqual(subquery.step, 0)
        XCTAssertEqual(subquery.at, .timestamp(1500))
        XCTAssertEqual(subquery.expr.type, .vector)

        guard case .aggregate(let aggregate) = try PromQL.parse(#"count_values without (a) ("v", b)"#) else { return XCTFail() }
        XCTAssertEqual(aggregate.op, .countValues)
        XCTAssertEqual(aggregate.parameter?.description, #""v""#)
        XCTAssertTrue(aggregate.without)

        for (literal, value) in [("0x1F", 31.0), ("0755", 493), ("1e3", 1000), ("-.5", -0.5), ("+Inf", .infinity)] {
            guard case .number(let number) = try PromQL.parse(literal) else { return XCTFail(literal) }
            XCTAssertEqual(number.value, value, literal)
        }
        guard case .string(let string) = try PromQL.parse(#""\u00e9\x41\101\t" "#) else { return XCTFail() }
        XCTAssertEqual(string.value, "éAA\t")
        XCTAssertEqual(try PromQL.parse("NaN"), try PromQL.parse("NaN"), "NaN literals are equal")
        XCTAssertEqual(try PromQL.parse("rate(foo[5m])").type, .vector)
        XCTAssertEqual(try PromQL.parse("foo[5m]").type, .matrix)
        XCTAssertEqual(try PromQL.parse("time() + 1").type, .scalar)
    }

    /// Byte ranges as Prometheus gives them, modifiers included.
    func testPositionsCoverEachNode() throws {
        let positions: [(String, Int, Int)] = [
            ("foo offset 5m", 0, 13), ("foo[5m] offset 1h", 0, 17), ("foo @ start()", 0, 13), ("-1", 0, 2),
            ("sum by (x) (a)", 0, 14), ("sum(a) by (x)", 0, 13), ("rate(a[5m])", 0, 11), ("  (a)  ", 2, 5),
            ("a + b", 0, 5), ("-a", 0, 2), ("a[5m:1m] offset 1m", 0, 18), (#"{a="é"}"#, 0, 8),
        ]
        for (query, start, end) in positions {
            XCTAssertEqual(try PromQL.parse(query).position, PositionRange(start: start, end: end), query)
        }
        XCTAssertThrowsError(try PromQL.parse("a +\n  b[5m]")) { error in
            let error = error as? PromQLParseError
            XCTAssertEqual(error?.position.start, 6)
            XCTAssertEqual(error.map { [$0.line, $0.column] }, [2, 3])
        }
    }

    /// Binary operators parenthesized; parentheses written in the query shown as braces.
    private static func grouped(_ expr: Expr) -> String {
        switch expr {
        case .binary(let binary): "(\(grouped(binary.lhs)) \(binary.op.rawValue)\(binary.returnBool ? " bool" : "") \(grouped(binary.rhs)))"
        case .unary(let unary): unary.op.rawValue + grouped(unary.expr)
        case .paren(let paren): "{\(grouped(paren.expr))}"
        default: expr.description
        }
    }
}
