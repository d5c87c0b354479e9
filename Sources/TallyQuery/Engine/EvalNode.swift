import TallyStorage

/// A selector as the evaluator uses it: storage matchers, and the offset it reads at once `@` is
/// resolved against the evaluation time.
struct SelectorNode {
    let matchers: [TallyStorage.LabelMatcher]
    /// The matchers as written, `__name__` last: `absent` builds its labels from them.
    let written: [LabelMatcher]
    let originalOffset: Int64
    var offset: Int64
    /// `@`, in ms, once `start()` and `end()` are resolved.
    var timestamp: Int64?
    let startOrEnd: AtModifier?
    /// The times its samples are read in (`EvalNode.withReadableTimes`); all until that is set.
    var readableFrom = Int64.min
    var readableThrough = Int64.max
}

struct SubqueryNode {
    var expr: EvalNode
    let range: Int64
    let step: Int64
    let originalOffset: Int64
    var offset: Int64
    var timestamp: Int64?
    let startOrEnd: AtModifier?
}

struct AggregateNode {
    let op: AggregateOp
    var expr: EvalNode
    var parameter: EvalNode?
    /// Sorted, as Prometheus sorts them before grouping.
    let grouping: [String]
    let without: Bool
    /// `count_values ... by (...)` only: the list as 2.42 rewrites it from step to step.
    var countValuesGrouping: CountValuesGrouping?
}

struct BinaryNode {
    let op: BinaryOp
    var lhs: EvalNode
    var rhs: EvalNode
    let matching: VectorMatching?
    let returnBool: Bool
}

struct CallNode {
    let name: String
    var args: [EvalNode]
}

/// The tree the evaluator walks: Prometheus' syntax tree without parentheses and unary plus, with
/// step-invariant parts marked (evaluated once, at the start) and `@` turned into offsets, as
/// Prometheus' `PreprocessExpr` and `setOffsetForAtModifier` do.
indirect enum EvalNode {
    case number(Double)
    case string(String)
    case selector(SelectorNode)
    case matrix(SelectorNode, range: Int64)
    case subquery(SubqueryNode)
    case aggregate(AggregateNode)
    case binary(BinaryNode)
    case call(CallNode)
    case negate(EvalNode)
    case stepInvariant(EvalNode)

    var valueType: ValueType {
        switch self {
        case .number: .scalar
        case .string: .string
        case .selector, .aggregate: .vector
        case .matrix, .subquery: .matrix
        case .binary(let b): b.lhs.valueType == .scalar && b.rhs.valueType == .scalar ? .scalar : .vector
        case .call(let c): PromQLFunction.all[c.name]?.returnType ?? .vector
        case .negate(let inner), .stepInvariant(let inner): inner.valueType
        }
    }

    static func compile(_ expr: Expr) throws(QueryError) -> EvalNode {
        switch expr {
        case .number(let n): return .number(n.value)
        case .string(let s): return .string(s.value)
        case .vectorSelector(let v): return .selector(try selector(v))
        case .matrixSelector(let m): return .matrix(try selector(m.selector), range: m.range)
        case .subquery(let s):
            return .subquery(SubqueryNode(expr: try compile(s.expr), range: s.range, step: s.step, originalOffset: s.offset,
                                          offset: s.offset, timestamp: fixedTime(s.at), startOrEnd: s.at))
        case .aggregate(let a):
            let grouping = a.grouping.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            return .aggregate(AggregateNode(op: a.op, expr: try compile(a.expr), parameter: try a.parameter.map { (p) throws(QueryError) in try compile(p) },
                                            grouping: grouping, without: a.without,
                                            countValuesGrouping: a.op == .countValues && !a.without ? CountValuesGrouping(grouping) : nil))
        case .binary(let b):
            return .binary(BinaryNode(op: b.op, lhs: try compile(b.lhs), rhs: try compile(b.rhs), matching: b.matching, returnBool: b.returnBool))
        case .call(let c):
            var args: [EvalNode] = []
            for arg in c.args { args.append(try compile(arg)) }
            return .call(CallNode(name: c.function.name, args: args))
        case .paren(let p): return try compile(p.expr)
        case .unary(let u):
            let inner = try compile(u.expr)
            return u.op == .minus ? .negate(inner) : inner
        }
    }

    private static func fixedTime(_ at: AtModifier?) -> Int64? {
        if case .timestamp(let t) = at { return t }
        return nil
    }

    private static func selector(_ v: VectorSelector) throws(QueryError) -> SelectorNode {
        var matchers: [TallyStorage.LabelMatcher] = []
        for m in v.allMatchers {
            do {
                matchers.append(try m.storageMatcher())
            } catch {
                throw QueryError(.badData, "invalid parameter \"query\": \(error)")
            }
        }
        return SelectorNode(matchers: matchers, written: v.allMatchers, originalOffset: v.offset, offset: v.offset,
                            timestamp: fixedTime(v.at), startOrEnd: v.at)
    }

    // MARK: step invariance (Prometheus' PreprocessExpr)

    /// Wraps every step-invariant part in `.stepInvariant`, and resolves `@ start()` / `@ end()`.
    func preprocessed(start: Int64, end: Int64) -> EvalNode {
        var node = self
        return node.markInvariant(start: start, end: end) ? .stepInvariant(node) : node
    }

    /// Functions whose answer changes with the evaluation time even when their arguments do not.
    private static let timeDependentFunctions: Set<String> = [
        "days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute", "month", "year",
        "predict_linear", "time", "timestamp",
    ]

    private mutating func markInvariant(start: Int64, end: Int64) -> Bool {
        func resolve(_ at: AtModifier?, _ timestamp: inout Int64?) {
            switch at {
            case .start: timestamp = start
            case .end: timestamp = end
            default: break
            }
        }
        switch self {
        case .selector(var s):
            resolve(s.startOrEnd, &s.timestamp)
            self = .selector(s)
            return s.timestamp != nil
        case .matrix(var s, let range):
            resolve(s.startOrEnd, &s.timestamp)
            self = .matrix(s, range: range)
            return s.timestamp != nil
        case .aggregate(var a):
            // As Prometheus: only the vector is looked at, never the parameter.
            let invariant = a.expr.markInvariant(start: start, end: end)
            self = .aggregate(a)
            return invariant
        case .binary(var b):
            let left = b.lhs.markInvariant(start: start, end: end)
            let right = b.rhs.markInvariant(start: start, end: end)
            if left && right {
                self = .binary(b)
                return true
            }
            if left { b.lhs = .stepInvariant(b.lhs) }
            if right { b.rhs = .stepInvariant(b.rhs) }
            self = .binary(b)
            return false
        case .call(var c):
            var invariant = !Self.timeDependentFunctions.contains(c.name)
            var each: [Bool] = []
            for i in c.args.indices {
                let argInvariant = c.args[i].markInvariant(start: start, end: end)
                each.append(argInvariant)
                invariant = invariant && argInvariant
            }
            if !invariant {
                for i in c.args.indices where each[i] { c.args[i] = .stepInvariant(c.args[i]) }
            }
            self = .call(c)
            return invariant
        case .subquery(var s):
            if s.expr.markInvariant(start: start, end: end) { s.expr = .stepInvariant(s.expr) }
            resolve(s.startOrEnd, &s.timestamp)
            self = .subquery(s)
            return s.timestamp != nil
        case .negate(var inner):
            let invariant = inner.markInvariant(start: start, end: end)
            self = .negate(inner)
            return invariant
        case .number, .string:
            return true
        case .stepInvariant:
            return true
        }
    }

    // MARK: @ as offsets (Prometheus' setOffsetForAtModifier)

    /// Sets each selector's and subquery's offset so that, evaluated from `evaluationTime`, it
    /// reads at its `@` time: the offsets and `@` of enclosing subqueries are taken back out.
    func withAtOffsets(evaluationTime: Int64) -> EvalNode {
        func offset(_ timestamp: Int64?, _ original: Int64, _ enclosing: [SubqueryNode]) -> Int64 {
            guard let timestamp else { return original }
            var subqueryOffset: Int64 = 0
            var subqueryTimestamp: Int64?
            for s in enclosing {
                subqueryOffset = subqueryOffset &+ s.originalOffset
                if let t = s.timestamp {
                    subqueryOffset = s.originalOffset
                    subqueryTimestamp = t
                }
            }
            if let subqueryTimestamp { subqueryOffset = subqueryOffset &+ (evaluationTime &- subqueryTimestamp) }
            return original &+ ((evaluationTime &- timestamp) &- subqueryOffset)
        }
        var node = self
        node.updateEach(enclosing: [],
                        selector: { s, _, enclosing in s.offset = offset(s.timestamp, s.originalOffset, enclosing) },
                        subquery: { s, enclosing in s.offset = offset(s.timestamp, s.originalOffset, enclosing) })
        return node
    }

    // MARK: the times each selector reads (Prometheus' getTimeRangesForSelector)

    /// Sets the times each selector's samples are read in, as Prometheus 2.42 selects them for a
    /// query from `start` to `end`: its series come from storage trimmed to the times its place in
    /// the query asks for, so an evaluation that moves past them (a subquery with `@` inside a
    /// function evaluated at every step, whose windows move on past the `@` time) finds only the
    /// samples before, then none.
    func withReadableTimes(start: Int64, end: Int64, lookback: Int64) -> EvalNode {
        var node = self
        node.updateEach(enclosing: [], selector: { s, range, enclosing in
            var subqueryOffset: Int64 = 0, subqueryRange: Int64 = 0
            var from = start, through = end
            for q in enclosing {
                subqueryOffset = subqueryOffset.addingSaturated(q.originalOffset)
                subqueryRange = subqueryRange.addingSaturated(q.range)
                // A subquery's `@` sets the time and drops the offsets and ranges around it.
                if let t = q.timestamp {
                    (subqueryOffset, subqueryRange) = (q.originalOffset, q.range)
                    (from, through) = (t, t)
                }
            }
            if let t = s.timestamp {
                (from, through) = (t, t)
            } else {
                from = from.subtractingSaturated(subqueryOffset).subtractingSaturated(subqueryRange)
                through = through.subtractingSaturated(subqueryOffset)
            }
            from = from.subtractingSaturated(range == 0 ? lookback : range)
            s.readableFrom = from.subtractingSaturated(s.originalOffset)
            s.readableThrough = through.subtractingSaturated(s.originalOffset)
        }, subquery: { _, _ in })
        return node
    }

    /// Runs `selector` on every selector (with its range, 0 for an instant selector) and `subquery`
    /// on every subquery before its inside, each with the subqueries around it, outermost first.
    private mutating func updateEach(enclosing: [SubqueryNode], selector: (inout SelectorNode, _ range: Int64, _ enclosing: [SubqueryNode]) -> Void,
                                     subquery: (inout SubqueryNode, _ enclosing: [SubqueryNode]) -> Void) {
        func update(_ node: inout EvalNode) { node.updateEach(enclosing: enclosing, selector: selector, subquery: subquery) }
        switch self {
        case .selector(var s):
            selector(&s, 0, enclosing)
            self = .selector(s)
        case .matrix(var s, let range):
            selector(&s, range, enclosing)
            self = .matrix(s, range: range)
        case .subquery(var s):
            subquery(&s, enclosing)
            let around = enclosing + [s]
            s.expr.updateEach(enclosing: around, selector: selector, subquery: subquery)
            self = .subquery(s)
        case .aggregate(var a):
            update(&a.expr)
            if var p = a.parameter {
                update(&p)
                a.parameter = p
            }
            self = .aggregate(a)
        case .binary(var b):
            update(&b.lhs)
            update(&b.rhs)
            self = .binary(b)
        case .call(var c):
            for i in c.args.indices { update(&c.args[i]) }
            self = .call(c)
        case .negate(var inner):
            update(&inner)
            self = .negate(inner)
        case .stepInvariant(var inner):
            update(&inner)
            self = .stepInvariant(inner)
        case .number, .string:
            break
        }
    }

    /// The node without a step-invariant mark.
    var unwrappedInvariant: EvalNode {
        if case .stepInvariant(let inner) = self { return inner }
        return self
    }
}
