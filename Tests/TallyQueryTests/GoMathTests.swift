@testable import TallyQuery
import XCTest

/// `ln`, `log2`, `log10` and `exp` give Prometheus 2.42's bits. Each expected value is what a running
/// Prometheus 2.42 (Debian's, on this kind of machine) answered for the function of `vector(x)`;
/// where the C library answers otherwise, that is said beside it.
final class GoMathTests: XCTestCase {
    /// Subnormal arguments and results, by their bits (their decimal literals would warn).
    private let tiny = Double.leastNonzeroMagnitude // 5e-324
    private let e310 = Double(bitPattern: 0x0000_1268_8B70_E62B) // 1e-310
    private let e315 = Double(bitPattern: 0x0000_0000_34AD_79F6) // 4.366474027e-315

    func testLogarithmsAreGoAmd64s() {
        let cases: [(String, (Double) -> Double, Double, Double)] = [
            ("ln", GoMath.log, 3, 1.0986122886681096), // C: 1.0986122886681098
            ("ln", GoMath.log, tiny, -709.0895657128241), // C: -744.4400719213812
            ("ln", GoMath.log, e310, -709.0850815488945),
            ("ln", GoMath.log, 0.7071067811865476, -0.3465735902799726),
            ("log10", GoMath.log10, tiny, -307.9536855642528),
            ("log10", GoMath.log10, 1000, 3),
            ("log10", GoMath.log10, 7, 0.8450980400142568),
            ("log2", GoMath.log2, 10, 3.321928094887362),
            ("log2", GoMath.log2, e310, -1029.7977094150824),
            ("log2", GoMath.log2, 0.25, -2),
        ]
        for (name, function, x, expected) in cases {
            XCTAssertEqual(function(x).bitPattern, expected.bitPattern, "\(name)(\(x)) = \(function(x)), Prometheus \(expected)")
        }
        XCTAssertEqual(GoMath.log(0), -.infinity)
        XCTAssertEqual(GoMath.log(-0.0), -.infinity)
        XCTAssertTrue(GoMath.log(-1).isNaN)
        XCTAssertEqual(GoMath.log(.infinity), .infinity)
        XCTAssertTrue(GoMath.log(.nan).isNaN)
    }

    func testExpIsGoAmd64s() {
        XCTAssertEqual(GoMath.exp(-.infinity), 0)
        XCTAssertEqual(GoMath.exp(.infinity), .infinity)
        XCTAssertTrue(GoMath.exp(.nan).isNaN)
        XCTAssertEqual(GoMath.exp(709.78), .infinity, "Go's scaling overflows where exp(709.78) is finite")
        XCTAssertEqual(GoMath.exp(-745.1), tiny)
        XCTAssertEqual(GoMath.exp(-800), 0)
        // These are the fused multiply-add path's values, the one Go takes on a processor with AVX
        // and FMA, as every machine this runs on has; without them Go, and Tally, round otherwise.
        guard GoMath.usesFMA else { return }
        for (x, expected) in [(10.2847, 29281.172158218484), (1, 2.718281828459045), (-1, 0.36787944117144233),
                              (0.5, 1.6487212707001282), (-723.8403484685223, e315)] {
            XCTAssertEqual(GoMath.exp(x).bitPattern, expected.bitPattern, "exp(\(x)) = \(GoMath.exp(x)), Prometheus \(expected)") // C: exp(10.2847) = 29281.172158218487
        }
    }
}
