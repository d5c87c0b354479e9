@testable import TallyQuery
import XCTest

/// `ln`, `log2`, `log10`, `exp`, `^`, the trigonometric and hyperbolic functions and `atan2` give
/// Prometheus 2.42's bits. Each expected value is what a running Prometheus 2.42 (Debian's, on this
/// kind of machine) answered for the function of `vector(x)`, for `(x) ^ (y)` or for
/// `vector(y) atan2 vector(x)`; where the C library answers otherwise, that is said beside it.
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

    func testPowIsGo119s() {
        let cases: [(Double, Double, UInt64)] = [
            (1.5473662528133199, 100, 0x43DF_9776_8801_0DBD), // C: 9.105673852657506e+18
            (1.1157333721600828, 50, 0x406D_D95E_5252_7229), // C: 238.7927638635892
            (240.54015201894202, 11, 0x4560_20B4_2639_FB34), // C: 1.5597801607782405e+26
            (4.003083378841142, -13, 0x3E4F_AE59_70FD_8544), // C: 1.4752639581902938e-08
            (0.9999999, 1e9, 0x36EA_8C16_73A3_3933), // C: 3.720057571493637e-44, 1.3e-8 apart
            (1.1618922292929503, 7, 0x4006_DE83_B32B_F10F),
            (2.5, 0.3, 0x3FF5_0FE6_C94A_6E58),
            (10, -3.7, 0x3F2A_26FD_4727_80C1),
            (2, -1074.5, 0x0000_0000_0000_0001),
            // Subnormal answers, rounded once (Swift's `scalbn` rounds twice: 4.9907956886007e-311, 8.840861651099e-311).
            (0.39057830659753895, 760, 0x0000_092F_EF4D_45ED),
            (0.5372217746166006, 1149, 0x0000_1046_4BAA_1807),
            (Double.leastNonzeroMagnitude, 0.5, 0x1E60_0000_0000_0000),
            (-2, 63, 0xC3E0_0000_0000_0000),
            (-0.0, -3, 0xFFF0_0000_0000_0000),
            (0, -.infinity, 0x7FF0_0000_0000_0000),
            (-1, .infinity, 0x3FF0_0000_0000_0000),
            (3, 1075, 0x7FF0_0000_0000_0000),
        ]
        for (x, y, expected) in cases {
            let answer = GoMath.pow(x, y)
            XCTAssertEqual(answer.bitPattern, expected, "(\(x)) ^ (\(y)) = \(answer), Prometheus \(Double(bitPattern: expected))")
        }
        XCTAssertTrue(GoMath.pow(-8, 1.0 / 3).isNaN)
        XCTAssertTrue(GoMath.pow(.nan, 1).isNaN)
        XCTAssertEqual(GoMath.pow(.nan, 0), 1)
    }

    func testTrigonometryAndHyperbolicFunctionsAreGo119s() {
        let cases: [(String, (Double) -> Double, Double, Double)] = [
            ("sin", GoMath.sin, 2, 0.9092974268256816), // C: 0.9092974268256817
            ("sin", GoMath.sin, 0x1p29, 0.3265676630185634), // the first angle reduced by Payne-Hanek; C: 0.3265676630185633
            ("sin", GoMath.sin, 1e300, -0.8178819121159087), // C: -0.8178819121159085
            ("cos", GoMath.cos, 0.7, 0.7648421872844884), // C: 0.7648421872844885
            ("cos", GoMath.cos, 21, -0.5477292602242685),
            ("tan", GoMath.tan, 1, 1.557407724654902), // C: 1.5574077246549023
            ("tan", GoMath.tan, 1e300, 1.4214488238747243),
            ("asin", GoMath.asin, 0.66, 0.7208187608700896), // C: 0.7208187608700897
            ("acos", GoMath.acos, 0.5, 1.0471975511965976), // C: 1.0471975511965979
            ("atan", GoMath.atan, 44.1, 1.5481244751733603),
            ("sinh", GoMath.sinh, 0.7, 0.7585837018395336), // C: 0.7585837018395334
            ("cosh", GoMath.cosh, 44, 6.425800057179655e18), // C: 6425800057179654000
            ("cosh", GoMath.cosh, 0.2869321605396833, 1.04144823523842), // (e + 1/e) / 2; (e + Exp(-x)) / 2 is 1.0414482352384202
            ("cosh", GoMath.cosh, 710, .infinity), // Go's Exp overflows first; C: 1.1169973830808557e+308
            ("tanh", GoMath.tanh, 0.7, 0.6043677771171635),
            ("asinh", GoMath.asinh, 21.5, 3.761740510352456), // C: 3.7617405103524564
            ("acosh", GoMath.acosh, 5.539953844840914, 2.3968862936872775),
            ("atanh", GoMath.atanh, -0.925153249830472, -1.6236590809202105),
            // Go negates only arguments below zero, so -0 stays -0.
            ("sinh", GoMath.sinh, -0.0, -0.0), ("asinh", GoMath.asinh, -0.0, -0.0),
            ("atanh", GoMath.atanh, -0.0, -0.0), ("tanh", GoMath.tanh, -0.0, -0.0),
        ]
        for (name, function, x, expected) in cases {
            XCTAssertEqual(function(x).bitPattern, expected.bitPattern, "\(name)(\(x)) = \(function(x)), Prometheus \(expected)")
        }
        for function in [GoMath.sin, GoMath.cos, GoMath.tan] {
            XCTAssertTrue(function(.infinity).isNaN)
        }
        XCTAssertTrue(GoMath.asin(1.5).isNaN)
        XCTAssertTrue(GoMath.acosh(0.5).isNaN)
        XCTAssertEqual(GoMath.atanh(-1), -.infinity)
        let atan2Cases: [(Double, Double, Double)] = [
            (7.600603375468236, -88.74999246291165, 3.0561605000448044), // C: 3.056160500044805
            // y / x underflows to +0, whose Atan Go moves up by π; C: -3.141592653589793
            (-6.595605135450752e-40, -8.688184024766879e+304, 3.141592653589793),
            (-0.0, -1, -3.141592653589793), (0, -0.0, 3.141592653589793),
            (.infinity, -.infinity, 2.356194490192345), (-1, .infinity, -0.0),
        ]
        for (y, x, expected) in atan2Cases {
            XCTAssertEqual(GoMath.atan2(y, x).bitPattern, expected.bitPattern, "\(y) atan2 \(x) = \(GoMath.atan2(y, x)), Prometheus \(expected)")
        }
    }
}
