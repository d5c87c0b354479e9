import XCTest
@testable import TallyQuery

/// The engine against hand-worked answers, in Prometheus' test script format. Each expectation
/// below was worked out from the data by hand with Prometheus 2.42's documented semantics; the
/// differential test against a running Prometheus covers the breadth.
final class EngineScriptTests: XCTestCase {
    private func run(_ script: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let runner = try PromQLScript()
        try runner.run(script, name: "script")
        XCTAssertGreaterThan(runner.evaluations, 0, file: file, line: line)
        XCTAssertEqual(runner.failures, [], file: file, line: line)
    }

    func testDailyNodeCostsFromHourlyPrices() throws {
        try run("""
        load 1h
            node_total_hourly_cost{cluster="a", node="n1"} 0.5x48
            node_total_hourly_cost{cluster="a", node="n2"} 0.25x24 _x24
            node_total_hourly_cost{cluster="b", node="n3"} 1x48

        # One day of hourly prices, summed per cluster: 24 x (0.5 + 0.25) and 24 x 1.
        eval instant at 23h sum by (cluster) (sum_over_time(node_total_hourly_cost[23h]))
            {cluster="a"} 18
            {cluster="b"} 24

        # Past n2's last sample plus the lookback, only n1 remains for cluster a.
        eval instant at 30h sum by (cluster) (node_total_hourly_cost)
            {cluster="a"} 0.5
            {cluster="b"} 1

        eval_ordered instant at 1h topk(2, node_total_hourly_cost)
            node_total_hourly_cost{cluster="b", node="n3"} 1
            node_total_hourly_cost{cluster="a", node="n1"} 0.5

        eval instant at 1h node_total_hourly_cost{cluster="a"} / on (cluster) group_left sum by (cluster) (node_total_hourly_cost)
            {cluster="a", node="n1"} 0.6666666666666666
            {cluster="a", node="n2"} 0.3333333333333333
        """)
    }

    /// `avg_over_time` is 2.42's compensated running mean: the cases Prometheus 2.42's own test data
    /// gives for the edges of float64, and values that cancel, where 2.42 answers -5.55e-16 (a
    /// running Prometheus 2.42 gave it for `avg_over_time((minute(vector(time())) - 29.5)[59m:1m])`,
    /// the same 60 values in the same order) and the sum divided once 0.
    func testAverageOverTimeAtTheEdgesOfFloat() throws {
        try run("""
        load 10s
            metric 1 2 3 4 5
            metric2 1 2 3 4 Inf
            metric3 1 2 3 4 -Inf
            metric4 1 2 3 Inf -Inf
            metric5 Inf 0 Inf
            metric5c Inf Inf Inf -Inf
            metric6b -Inf 0 -Inf
            metric7 1 2 -Inf -Inf Inf
            metric8 9.988465674311579e+307 9.988465674311579e+307
            metric9 -9.988465674311579e+307 -9.988465674311579e+307 -9.988465674311579e+307
            metric10 -9.988465674311579e+307 9.988465674311579e+307
            metric11 0.1 0.2 0.3 NaN 0.4
            cancelling -15.5+1x45 -29.5+1x13

        eval instant at 1m avg_over_time(metric[1m])
            {} 3
        eval instant at 1m avg_over_time(metric2[1m])
            {} Inf
        eval instant at 1m avg_over_time(metric3[1m])
            {} -Inf
        eval instant at 1m avg_over_time(metric4[1m])
            {} NaN
        eval instant at 1m avg_over_time(metric5[1m])
            {} Inf
        eval instant at 1m avg_over_time(metric5c[1m])
            {} NaN
        eval instant at 1m avg_over_time(metric6b[1m])
            {} -Inf
        eval instant at 1m avg_over_time(metric7[1m])
            {} NaN
        # The sum overflows; the mean does not.
        eval instant at 1m avg_over_time(metric8[1m])
            {} 9.988465674311579e+307
        eval instant at 1m avg_over_time(metric9[1m])
            {} -9.988465674311579e+307
        eval instant at 1m avg_over_time(metric10[1m])
            {} 0
        eval instant at 1m avg_over_time(metric11[1m])
            {} NaN
        eval instant at 590s avg_over_time(cancelling[590s])
            {} -5.551115123125783e-16
        # Go's exp, whose last bit differs from the C library's here, is what count_values names.
        eval instant at 0s count_values("v", exp(vector(10.2847)))
            {v="29281.172158218484"} 1
        """)
    }

    /// `sort`, `sort_desc`, `topk` and `bottomk` over 60 series of four values and NaN: the order of
    /// ties is Go 1.19's `sort.Sort` (pattern-defeating quicksort) over the series in label order.
    /// Each expected order is what a running Prometheus 2.42 answered for the same 60 values.
    func testTiesComeInGoSortOrderPastTwelveSeries() throws {
        try run("""
        load 1m
            tie{a="00"} 0
            tie{a="01"} 2
            tie{a="02"} NaN
            tie{a="03"} NaN
            tie{a="04"} 0
            tie{a="05"} 1
            tie{a="06"} NaN
            tie{a="07"} NaN
            tie{a="08"} NaN
            tie{a="09"} 3
            tie{a="10"} NaN
            tie{a="11"} NaN
            tie{a="12"} 3
            tie{a="13"} NaN
            tie{a="14"} 3
            tie{a="15"} 1
            tie{a="16"} 0
            tie{a="17"} NaN
            tie{a="18"} 0
            tie{a="19"} 0
            tie{a="20"} 2
            tie{a="21"} 0
            tie{a="22"} 3
            tie{a="23"} 0
            tie{a="24"} 3
            tie{a="25"} 2
            tie{a="26"} 1
            tie{a="27"} 3
            tie{a="28"} 2
            tie{a="29"} 2
            tie{a="30"} 2
            tie{a="31"} 3
            tie{a="32"} NaN
            tie{a="33"} 0
            tie{a="34"} 2
            tie{a="35"} 0
            tie{a="36"} NaN
            tie{a="37"} NaN
            tie{a="38"} 2
            tie{a="39"} 2
            tie{a="40"} 3
            tie{a="41"} 1
            tie{a="42"} NaN
            tie{a="43"} 2
            tie{a="44"} 0
            tie{a="45"} 2
            tie{a="46"} 2
            tie{a="47"} 3
            tie{a="48"} 3
            tie{a="49"} 0
            tie{a="50"} 3
            tie{a="51"} NaN
            tie{a="52"} NaN
            tie{a="53"} 3
            tie{a="54"} 0
            tie{a="55"} 3
            tie{a="56"} NaN
            tie{a="57"} NaN
            tie{a="58"} 3
            tie{a="59"} 3

        eval_ordered instant at 0m sort(tie)
            tie{a="33"} 0
            tie{a="21"} 0
            tie{a="49"} 0
            tie{a="44"} 0
            tie{a="16"} 0
            tie{a="18"} 0
            tie{a="54"} 0
            tie{a="35"} 0
            tie{a="04"} 0
            tie{a="00"} 0
            tie{a="19"} 0
            tie{a="23"} 0
            tie{a="41"} 1
            tie{a="26"} 1
            tie{a="05"} 1
            tie{a="15"} 1
            tie{a="30"} 2
            tie{a="28"} 2
            tie{a="01"} 2
            tie{a="46"} 2
            tie{a="20"} 2
            tie{a="45"} 2
            tie{a="43"} 2
            tie{a="39"} 2
            tie{a="38"} 2
            tie{a="25"} 2
            tie{a="34"} 2
            tie{a="29"} 2
            tie{a="47"} 3
            tie{a="50"} 3
            tie{a="09"} 3
            tie{a="31"} 3
            tie{a="59"} 3
            tie{a="58"} 3
            tie{a="55"} 3
            tie{a="14"} 3
            tie{a="53"} 3
            tie{a="27"} 3
            tie{a="24"} 3
            tie{a="48"} 3
            tie{a="40"} 3
            tie{a="12"} 3
            tie{a="22"} 3
            tie{a="07"} NaN
            tie{a="36"} NaN
            tie{a="02"} NaN
            tie{a="32"} NaN
            tie{a="42"} NaN
            tie{a="56"} NaN
            tie{a="08"} NaN
            tie{a="17"} NaN
            tie{a="03"} NaN
            tie{a="06"} NaN
            tie{a="37"} NaN
            tie{a="10"} NaN
            tie{a="57"} NaN
            tie{a="52"} NaN
            tie{a="11"} NaN
            tie{a="13"} NaN
            tie{a="51"} NaN

        eval_ordered instant at 0m sort_desc(tie)
            tie{a="22"} 3
            tie{a="59"} 3
            tie{a="58"} 3
            tie{a="55"} 3
            tie{a="53"} 3
            tie{a="50"} 3
            tie{a="48"} 3
            tie{a="47"} 3
            tie{a="40"} 3
            tie{a="09"} 3
            tie{a="31"} 3
            tie{a="27"} 3
            tie{a="12"} 3
            tie{a="24"} 3
            tie{a="14"} 3
            tie{a="46"} 2
            tie{a="25"} 2
            tie{a="01"} 2
            tie{a="30"} 2
            tie{a="45"} 2
            tie{a="20"} 2
            tie{a="43"} 2
            tie{a="29"} 2
            tie{a="28"} 2
            tie{a="39"} 2
            tie{a="34"} 2
            tie{a="38"} 2
            tie{a="26"} 1
            tie{a="41"} 1
            tie{a="15"} 1
            tie{a="05"} 1
            tie{a="49"} 0
            tie{a="04"} 0
            tie{a="33"} 0
            tie{a="54"} 0
            tie{a="35"} 0
            tie{a="18"} 0
            tie{a="16"} 0
            tie{a="00"} 0
            tie{a="19"} 0
            tie{a="44"} 0
            tie{a="23"} 0
            tie{a="21"} 0
            tie{a="10"} NaN
            tie{a="32"} NaN
            tie{a="37"} NaN
            tie{a="17"} NaN
            tie{a="42"} NaN
            tie{a="56"} NaN
            tie{a="02"} NaN
            tie{a="07"} NaN
            tie{a="08"} NaN
            tie{a="13"} NaN
            tie{a="36"} NaN
            tie{a="03"} NaN
            tie{a="57"} NaN
            tie{a="52"} NaN
            tie{a="06"} NaN
            tie{a="11"} NaN
            tie{a="51"} NaN

        eval_ordered instant at 0m topk(25, tie)
            tie{a="55"} 3
            tie{a="09"} 3
            tie{a="12"} 3
            tie{a="59"} 3
            tie{a="24"} 3
            tie{a="48"} 3
            tie{a="22"} 3
            tie{a="14"} 3
            tie{a="58"} 3
            tie{a="27"} 3
            tie{a="31"} 3
            tie{a="50"} 3
            tie{a="47"} 3
            tie{a="40"} 3
            tie{a="53"} 3
            tie{a="39"} 2
            tie{a="45"} 2
            tie{a="38"} 2
            tie{a="30"} 2
            tie{a="28"} 2
            tie{a="20"} 2
            tie{a="34"} 2
            tie{a="43"} 2
            tie{a="25"} 2
            tie{a="29"} 2

        eval_ordered instant at 0m bottomk(25, tie)
            tie{a="00"} 0
            tie{a="54"} 0
            tie{a="23"} 0
            tie{a="33"} 0
            tie{a="21"} 0
            tie{a="04"} 0
            tie{a="19"} 0
            tie{a="49"} 0
            tie{a="44"} 0
            tie{a="18"} 0
            tie{a="35"} 0
            tie{a="16"} 0
            tie{a="26"} 1
            tie{a="41"} 1
            tie{a="05"} 1
            tie{a="15"} 1
            tie{a="29"} 2
            tie{a="38"} 2
            tie{a="25"} 2
            tie{a="20"} 2
            tie{a="01"} 2
            tie{a="39"} 2
            tie{a="34"} 2
            tie{a="43"} 2
            tie{a="28"} 2
        """)
    }

    func testCounterResetsAndStaleness() throws {
        try run("""
        load 1m
            requests_total{job="api"} 0 10 20 5 15 stale
            other{job="api"} 1 1 1
            other{job="web"} 2 2 2

        # 20 -> 5 is a reset: the increase over [0m, 4m] is 10 + 10 + 5 + 10 = 35, extrapolated by nothing
        # (the window's edges are sample times).
        eval instant at 4m increase(requests_total[4m])
            {job="api"} 35

        eval instant at 4m resets(requests_total[10m])
            {job="api"} 1

        # The staleness marker at 5m ends the series at once, inside the lookback window.
        eval instant at 5m requests_total

        eval instant at 4m30s requests_total
            requests_total{job="api"} 15

        # Two series on the "one" side share the empty match group.
        eval_fail instant at 1m requests_total + on () other
        """)
    }

    func testAtModifierOffsetAndSubqueries() throws {
        try run("""
        load 10s
            metric{a="1"} 0+1x100

        eval instant at 500s metric @ 100
            metric{a="1"} 10

        eval instant at 500s metric offset 100s
            metric{a="1"} 40

        # Subquery steps are multiples of 20s: 460, 480, 500 hold 46, 48, 50.
        eval instant at 500s sum_over_time(metric[50s:20s])
            {a="1"} 144

        eval instant at 500s label_replace(metric, "b", "x-$1", "a", "(.*)")
            metric{a="1", b="x-1"} 50

        eval_fail instant at 500s label_replace(metric, "b", "$1", "a", "(.*")

        # timestamp() with `@` reads at the `@` time among the samples its series were selected
        # with, [@ - offset - 5m, @ - offset] (Prometheus 2.42 checked on kubecost data).
        eval instant at 500s timestamp(metric @ 100 offset 20s)
            {a="1"} 80

        eval instant at 500s timestamp(metric @ 100 offset -30s)
            {a="1"} 100

        eval instant at 500s timestamp(metric @ 100 offset 400s)

        eval instant at 500s timestamp(metric @ 100)
            {a="1"} 100
        """)
    }

    /// `predict_linear(m[5m] @ 600, 0)` in a range query: the function depends on the step's time,
    /// so Prometheus 2.42 evaluates it at every step over a window that moves from `@`'s, but reads
    /// only the samples its `@` selected (up to 600 s). Steps whose window holds two of them answer;
    /// the rest do not (a range query cannot check this against instant queries, which the script
    /// runner does, so it is asked here directly). Checked on kubecost data against Prometheus 2.42.
    func testPredictLinearWithAtReadsOnlyTheSamplesAtSelectedInARangeQuery() throws {
        let script = try PromQLScript.loaded(["m 0+10x100"])
        let answer = QueryEngine(options: QueryOptions()).rangeQuery("predict_linear(m[5m] @ 600, 0)", start: 600_000, end: 1_200_000,
                                                                    step: 60_000, database: script.tenant)
        guard case .success(let result) = answer, case .matrix(let series) = result.value else { return XCTFail("\(answer)") }
        XCTAssertEqual(series.count, 1)
        XCTAssertEqual(series.first?.points.map(\.timestamp), [600_000, 660_000, 720_000, 780_000, 840_000])
        for (point, want) in zip(series.first?.points ?? [], [100.0, 110, 120, 130, 140]) { XCTAssertEqual(point.value, want, accuracy: 1e-9) }
    }

    /// Prometheus 2.42 refuses a factor with `f <= 0 || f >= 1`: NaN passes, and the answer is NaN.
    func testHoltWintersTakesANaNFactorAndRefusesTheEdges() throws {
        try run("""
        load 1m
            metric 1 2 4 8 16

        eval instant at 4m holt_winters(metric[5m], NaN, 0.5)
            {} NaN

        eval instant at 4m holt_winters(metric[5m], 0.5, scalar(absent_metric))
            {} NaN

        eval_fail instant at 4m holt_winters(metric[5m], 1, 0.5)

        eval_fail instant at 4m holt_winters(metric[5m], 0.5, 0)
        """)
    }
}
