#if canImport(Glibc)
import Glibc
#endif

/// Go's `math.Log`, `math.Exp`, `math.Log1p` and `math.Pow` as Prometheus 2.42 runs them on x86-64: the
/// first two Go's assembly routines, the others pure Go, operation for operation, so `ln`, `log2`,
/// `log10`, `exp` and `^` answer with Prometheus' bits (the trigonometric and hyperbolic functions,
/// built on these, are in `GoTrigonometry.swift`). The C library's functions are correctly rounded more often but differ in the
/// last bit for many arguments (which `count_values` turns into different label values), and Go's
/// `Log` reads a subnormal argument as if its exponent field were that of 2^-1023 (`ln(5e-324)` is
/// -709.09 there, not -744.44).
enum GoMath {
    /// `math.Log`: `log_amd64.s`, which splits the argument into fraction and exponent from its bits
    /// alone (no normalising of subnormals), then evaluates FreeBSD's `e_log.c` polynomial.
    static func log(_ x: Double) -> Double {
        let bits = x.bitPattern
        if bits & ~(1 << 63) == 0 { return -.infinity }
        if Int64(bitPattern: bits) < 0 { return Double(bitPattern: 0x7FF8_0000_0000_0001) }
        if bits >= 0x7FF0_0000_0000_0000 { return x }
        var f1 = Double(bitPattern: bits & 0x000F_FFFF_FFFF_FFFF | 0x3FE0_0000_0000_0000)
        var k = Double(Int32(truncatingIfNeeded: Int64(bits >> 52) & 0x7FF) - 0x3FE)
        // `cmpnlt`: not (sqrt(2)/2 < f1).
        if !(halfSqrt2 < f1) {
            k -= 1
            f1 *= 2
        }
        let f = f1 - 1
        let s = f / (2 + f)
        let s2 = s * s
        let s4 = s2 * s2
        let t1 = s2 * (((l7 * s4 + l5) * s4 + l3) * s4 + l1)
        let t2 = s4 * ((l6 * s4 + l4) * s4 + l2)
        let r = t1 + t2
        let hfsq = 0.5 * f * f
        return k * ln2Hi - ((hfsq - (s * (r + hfsq) + ln2Lo * k)) - f)
    }

    /// `math.Log10`: `Log(x) * (1/Ln10)`, the constant rounded from the exact quotient as Go's
    /// constant arithmetic rounds it (one bit off `1 / M_LN10` computed in doubles).
    static func log10(_ x: Double) -> Double { log(x) * Double(bitPattern: 0x3FDB_CB7B_1526_E50E) }

    /// `math.Log2`: exact for powers of two, else `Log(frac) * (1/Ln2) + exp` of `Frexp`.
    static func log2(_ x: Double) -> Double {
        let (fraction, exponent) = frexp(x)
        if fraction == 0.5 { return Double(exponent - 1) }
        return log(fraction) * Double(bitPattern: 0x3FF7_1547_652B_82FE) + Double(exponent)
    }

    /// `math.Log1p` (pure Go on x86-64, FreeBSD's `s_log1p.c`).
    static func log1p(_ x: Double) -> Double {
        if x < -1 || x.isNaN { return .nan }
        if x == -1 { return -.infinity }
        if x == .infinity { return .infinity }
        let magnitude = abs(x)
        var f = 0.0, fractionBits: UInt64 = 0, k = 1
        if magnitude < 4.142135623730950488017e-01 { // √2 - 1
            if magnitude < 0x1p-29 {
                if magnitude < 0x1p-54 { return x }
                return x - x * x * 0.5
            }
            if x > -2.928932188134524755992e-01 { // √2/2 - 1
                k = 0
                f = x
                fractionBits = 1
            }
        }
        var correction = 0.0
        if k != 0 {
            var u: Double
            if magnitude < 0x1p53 {
                u = 1.0 + x
                fractionBits = u.bitPattern
                k = Int(fractionBits >> 52) - 1023
                correction = k > 0 ? 1.0 - (u - x) : x - (u - 1.0)
                correction /= u
            } else {
                u = x
                fractionBits = u.bitPattern
                k = Int(fractionBits >> 52) - 1023
            }
            fractionBits &= 0x000F_FFFF_FFFF_FFFF
            if fractionBits < 0x0006_A09E_667F_3BCD { // the fraction bits of √2
                u = Double(bitPattern: fractionBits | 0x3FF0_0000_0000_0000)
            } else {
                k += 1
                u = Double(bitPattern: fractionBits | 0x3FE0_0000_0000_0000)
                fractionBits = (0x0010_0000_0000_0000 - fractionBits) >> 2
            }
            f = u - 1.0
        }
        let hfsq = 0.5 * f * f
        let kd = Double(k)
        if fractionBits == 0 {
            if f == 0 {
                if k == 0 { return 0 }
                correction += kd * ln2Lo
                return kd * ln2Hi + correction
            }
            let r = hfsq * (1.0 - 0.66666666666666666 * f)
            if k == 0 { return f - r }
            return kd * ln2Hi - ((r - (kd * ln2Lo + correction)) - f)
        }
        let s = f / (2.0 + f)
        let z = s * s
        let r = z * (l1 + z * (l2 + z * (l3 + z * (l4 + z * (l5 + z * (l6 + z * l7))))))
        if k == 0 { return f - (hfsq - s * (hfsq + r)) }
        return kd * ln2Hi - ((hfsq - (s * (hfsq + r) + (kd * ln2Lo + correction))) - f)
    }

    /// `math.Pow` of Go 1.19 (pure Go on x86-64): the special cases in Go's order, then the
    /// fractional part of the exponent as `Exp(yf * Log(x))` and the integer part by squaring
    /// `Frexp(x)`'s fraction, the powers of two kept apart until one `Ldexp` at the end. The C
    /// library's `pow` rounds differently (`1.5473662528133199 ^ 100` is 9.10567385265753e+18 in
    /// Prometheus, 9.105673852657506e+18 from C), which `count_values` shows as another label.
    static func pow(_ x: Double, _ y: Double) -> Double {
        if y == 0 || x == 1 { return 1 }
        if x.isNaN || y.isNaN { return .nan }
        if x == 0 {
            if y < 0 { return isOddInteger(y) ? Double(signOf: x, magnitudeOf: .infinity) : .infinity }
            return isOddInteger(y) ? x : 0
        }
        if y.isInfinite {
            if x == -1 { return 1 }
            return (abs(x) < 1) == (y > 0) ? 0 : .infinity
        }
        if x.isInfinite {
            if x < 0 { return pow(1 / x, -y) }
            return y < 0 ? 0 : .infinity
        }
        if y == 0.5 { return x.squareRoot() }
        if y == -0.5 { return 1 / x.squareRoot() }
        var yi = abs(y).rounded(.towardZero)
        var yf = abs(y) - yi
        if yf != 0 && x < 0 { return .nan }
        if yi >= 0x1p63 {
            // An even integer that overflows, or underflows to 0, for every x but -1.
            if x == -1 { return 1 }
            return (abs(x) < 1) == (y > 0) ? 0 : .infinity
        }
        var a1 = 1.0, ae = 0
        if yf != 0 {
            if yf > 0.5 {
                yf -= 1
                yi += 1
            }
            a1 = exp(yf * log(x))
        }
        var (x1, xe) = frexp(x)
        var i = Int64(yi)
        while i != 0 {
            // Past 2^±4096 the answer is 0 or infinite whatever is left: the exponent stops growing.
            if xe < -(1 << 12) || (1 << 12) < xe {
                ae += xe
                break
            }
            if i & 1 == 1 {
                a1 *= x1
                ae += xe
            }
            x1 *= x1
            xe <<= 1
            if x1 < 0.5 {
                x1 += x1
                xe -= 1
            }
            i >>= 1
        }
        if y < 0 {
            a1 = 1 / a1
            ae = -ae
        }
        return ldexp(a1, ae)
    }

    /// `math.Ldexp` (pure Go on x86-64): `fraction` x 2^`exponent` with one rounding, a subnormal
    /// answer made by one multiply by 2^-53 (scaling in two steps, as Swift's `scalbn` does past
    /// 2^-1022, can round twice). `exponent` is `pow`'s, within a few hundred thousand of zero.
    private static func ldexp(_ fraction: Double, _ exponent: Int) -> Double {
        if fraction == 0 || fraction.isInfinite || fraction.isNaN { return fraction }
        var x = fraction, e = exponent
        if abs(x) < Double.leastNormalMagnitude {
            x *= 4_503_599_627_370_496 // 2^52
            e -= 52
        }
        var bits = x.bitPattern
        e += Int((bits >> 52) & 0x7FF) - 1023
        if e < -1075 { return Double(signOf: x, magnitudeOf: 0) }
        if e > 1023 { return x < 0 ? -.infinity : .infinity }
        var scale = 1.0
        if e < -1022 {
            e += 53
            scale = 0x1p-53
        }
        bits &= ~(0x7FF << 52)
        bits |= UInt64(e + 1023) << 52
        return scale * Double(bitPattern: bits)
    }

    /// Go's `isOddInt`: an integer whose `int64` conversion is odd (past 2^63 Go's conversion gives
    /// the smallest `int64`, which is even; so are all such doubles).
    private static func isOddInteger(_ x: Double) -> Bool {
        let integer = x.rounded(.towardZero)
        guard x == integer, abs(integer) < 0x1p63 else { return false }
        return Int64(integer) & 1 == 1
    }

    /// `math.Frexp` (pure Go on x86-64): subnormals normalised first.
    static func frexp(_ value: Double) -> (Double, Int) {
        if value == 0 || value.isInfinite || value.isNaN { return (value, 0) }
        var x = value, exponent = 0
        if abs(x) < Double.leastNormalMagnitude {
            x *= 4_503_599_627_370_496 // 2^52
            exponent = -52
        }
        var bits = x.bitPattern
        exponent += Int((bits >> 52) & 0x7FF) - 1023 + 1
        bits &= ~(0x7FF << 52)
        bits |= 1022 << 52
        return (Double(bitPattern: bits), exponent)
    }

    /// `math.Exp`: `exp_amd64.s` (Shibata's method): the argument reduced by the nearest multiple
    /// of ln 2 and divided by 16, a Taylor polynomial, four squarings of `(2 + y) * y`, then scaled
    /// by 2^k (in two steps for a subnormal result, 0 below 2^-1075). Go takes the fused multiply-add path when the processor
    /// has AVX and FMA; the roundings differ between the two, so both are here.
    static func exp(_ x: Double) -> Double {
        let bits = x.bitPattern
        if bits & ~(1 << 63) >= 0x7FF0_0000_0000_0000 {
            return bits == 0xFFF0_0000_0000_0000 ? 0 : x
        }
        if x > 7.09782712893384e+02 { return .infinity }
        let scaled = log2e * x
        // CVTSD2SL: round to nearest even; out of range gives the "integer indefinite" value.
        let k: Int32 = abs(scaled) < 2_147_483_647 ? Int32(scaled.rounded(.toNearestOrEven)) : .min
        let kd = Double(k)
        var y: Double, p: Double
        if usesFMA {
            y = fusedSubtract(x, kd, ln2U)
            y = fusedSubtract(y, kd, ln2L) * 0.0625
            p = taylor[0]
            for c in taylor.dropFirst() { p = c.addingProduct(p, y) }
            y *= p
            for _ in 0..<3 { y *= y + 2 }
            y = 1.0.addingProduct(y, y + 2)
        } else {
            y = x - ln2U * kd
            y = (y - ln2L * kd) * 0.0625
            p = taylor[0]
            for c in taylor.dropFirst() { p = p * y + c }
            y *= p
            for _ in 0..<4 { y *= 2 + y }
            y += 1
        }
        var biased = Int64(k) + 0x3FF
        if biased <= 0 {
            // A subnormal result: scaled in two steps, the second rounding into the subnormal range.
            if biased < -52 { return 0 }
            y *= Double(bitPattern: UInt64(biased + 0x3FE) << 52)
            biased = 1
        } else if biased >= 0x7FF {
            return .infinity
        }
        return y * Double(bitPattern: UInt64(biased) << 52)
    }

    /// `a - b * c` with one rounding (VFNMADD231SD).
    private static func fusedSubtract(_ a: Double, _ b: Double, _ c: Double) -> Double { a.addingProduct(-b, c) }

    private static let halfSqrt2 = 7.07106781186547524401e-01
    private static let ln2Hi = 6.93147180369123816490e-01
    private static let ln2Lo = 1.90821492927058770002e-10
    private static let l1 = 6.666666666666735130e-01
    private static let l2 = 3.999999999940941908e-01
    private static let l3 = 2.857142874366239149e-01
    private static let l4 = 2.222219843214978396e-01
    private static let l5 = 1.818357216161805012e-01
    private static let l6 = 1.531383769920937332e-01
    private static let l7 = 1.479819860511658591e-01

    private static let log2e = 1.4426950408889634073599246810018920
    private static let ln2U = 0.69314718055966295651160180568695068359375
    private static let ln2L = 0.28235290563031577122588448175013436025525412068e-12
    /// 1/8!, 1/7!, ..., 1/3!, then 1/2 and 1 (the order the polynomial meets them).
    private static let taylor: [Double] = [2.4801587301587301587e-5, 1.9841269841269841270e-4, 1.3888888888888888889e-3,
                                           8.3333333333333333333e-3, 4.1666666666666666667e-2, 1.6666666666666666667e-1, 0.5, 1.0]

    /// Whether Go's `useFMA` is set here: the processor has AVX and FMA (read once from the kernel's
    /// list of the CPU's flags).
    static let usesFMA: Bool = {
        guard let file = fopen("/proc/cpuinfo", "r") else { return false }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            guard text.hasPrefix("flags") else { continue }
            let flags = Set(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == ":" }))
            return flags.contains("avx") && flags.contains("fma")
        }
        return false
    }()
}
