/// Go 1.19's trigonometric, inverse trigonometric and hyperbolic functions as Prometheus 2.42 runs
/// them on x86-64, where all are pure Go (Cephes' and FreeBSD's polynomials, Payne-Hanek reduction
/// for huge angles) built on `GoMath`'s `Exp` and `Log`. The C library's versions differ from them in
/// the last bit for many arguments, and `count_values` shows the difference as another label value.
/// Go evaluates each expression left to right without fused multiply-adds on x86-64, and so does this;
/// like Go, it negates only arguments below zero, so -0 keeps its sign where Go's does.
extension GoMath {
    /// `math.Sin`.
    static func sin(_ x: Double) -> Double {
        if x == 0 || x.isNaN { return x }
        if x.isInfinite { return .nan }
        let (octant, z) = reduced(abs(x))
        var j = octant, negative = x < 0
        if j > 3 {
            negative.toggle()
            j -= 4
        }
        let y = j == 1 || j == 2 ? cosinePolynomial(z) : sinePolynomial(z)
        return negative ? -y : y
    }

    /// `math.Cos`.
    static func cos(_ x: Double) -> Double {
        if x.isNaN || x.isInfinite { return .nan }
        let (octant, z) = reduced(abs(x))
        var j = octant, negative = false
        if j > 3 {
            j -= 4
            negative.toggle()
        }
        if j > 1 { negative.toggle() }
        let y = j == 1 || j == 2 ? sinePolynomial(z) : cosinePolynomial(z)
        return negative ? -y : y
    }

    /// `math.Tan`.
    static func tan(_ x: Double) -> Double {
        if x == 0 || x.isNaN { return x }
        if x.isInfinite { return .nan }
        let (j, z) = reduced(abs(x))
        let zz = z * z
        var y = z
        if zz > 1e-14 {
            y = z + z * (zz * ((tanP[0] * zz + tanP[1]) * zz + tanP[2])
                / ((((zz + tanQ[1]) * zz + tanQ[2]) * zz + tanQ[3]) * zz + tanQ[4]))
        }
        if j & 2 == 2 { y = -1 / y }
        return x < 0 ? -y : y
    }

    /// `math.Asin`.
    static func asin(_ x: Double) -> Double {
        if x == 0 { return x }
        let magnitude = abs(x)
        if magnitude > 1 { return .nan }
        let root = (1 - magnitude * magnitude).squareRoot()
        let angle = magnitude > 0.7 ? .pi / 2 - reducedArctangent(root / magnitude) : reducedArctangent(magnitude / root)
        return x < 0 ? -angle : angle
    }

    /// `math.Acos`: π/2 less the arcsine.
    static func acos(_ x: Double) -> Double { .pi / 2 - asin(x) }

    /// `math.Atan`.
    static func atan(_ x: Double) -> Double {
        if x == 0 { return x }
        return x > 0 ? reducedArctangent(x) : -reducedArctangent(-x)
    }

    /// `math.Atan2` (PromQL's `atan2` operator): the special cases in Go's order, then the quadrant of
    /// `Atan(y / x)`.
    static func atan2(_ y: Double, _ x: Double) -> Double {
        if y.isNaN || x.isNaN { return .nan }
        if y == 0 {
            return x >= 0 && x.sign == .plus ? Double(signOf: y, magnitudeOf: 0) : Double(signOf: y, magnitudeOf: .pi)
        }
        if x == 0 { return Double(signOf: y, magnitudeOf: .pi / 2) }
        if x.isInfinite {
            if x > 0 { return Double(signOf: y, magnitudeOf: y.isInfinite ? .pi / 4 : 0) }
            return Double(signOf: y, magnitudeOf: y.isInfinite ? threeQuartersPi : .pi)
        }
        if y.isInfinite { return Double(signOf: y, magnitudeOf: .pi / 2) }
        let angle = atan(y / x)
        guard x < 0 else { return angle }
        return angle <= 0 ? angle + .pi : angle - .pi
    }

    /// `math.Sinh`: a rational function up to 0.5, `(e - 1/e) / 2` of one `Exp` above.
    static func sinh(_ x: Double) -> Double {
        let magnitude = x < 0 ? -x : x
        let value: Double
        if magnitude > 21 {
            value = exp(magnitude) * 0.5
        } else if magnitude > 0.5 {
            let e = exp(magnitude)
            value = (e - 1 / e) * 0.5
        } else {
            let square = magnitude * magnitude
            value = (((sinhP[3] * square + sinhP[2]) * square + sinhP[1]) * square + sinhP[0]) * magnitude
                / (((square + sinhQ[2]) * square + sinhQ[1]) * square + sinhQ[0])
        }
        return x < 0 ? -value : value
    }

    /// `math.Cosh`: `(e + 1/e) / 2` of one `Exp`.
    static func cosh(_ x: Double) -> Double {
        let magnitude = abs(x)
        if magnitude > 21 { return exp(magnitude) * 0.5 }
        let e = exp(magnitude)
        return (e + 1 / e) * 0.5
    }

    /// `math.Tanh`: ±1 past half of ln 2^127, `1 - 2 / (Exp(2|x|) + 1)` from 0.625, a rational function below.
    static func tanh(_ x: Double) -> Double {
        let magnitude = abs(x)
        if magnitude > 0.5 * 8.8029691931113054295988e+01 { return x < 0 ? -1 : 1 }
        if magnitude >= 0.625 {
            let value = 1 - 2 / (exp(2 * magnitude) + 1)
            return x < 0 ? -value : value
        }
        if x == 0 { return x }
        let square = x * x
        return x + x * square * ((tanhP[0] * square + tanhP[1]) * square + tanhP[2])
            / (((square + tanhQ[0]) * square + tanhQ[1]) * square + tanhQ[2])
    }

    /// `math.Asinh`.
    static func asinh(_ x: Double) -> Double {
        if x.isNaN || x.isInfinite { return x }
        let magnitude = x < 0 ? -x : x
        let value: Double
        if magnitude > 0x1p28 {
            value = log(magnitude) + ln2
        } else if magnitude > 2 {
            value = log(2 * magnitude + 1 / ((magnitude * magnitude + 1).squareRoot() + magnitude))
        } else if magnitude < 0x1p-28 {
            value = magnitude
        } else {
            value = log1p(magnitude + magnitude * magnitude / (1 + (1 + magnitude * magnitude).squareRoot()))
        }
        return x < 0 ? -value : value
    }

    /// `math.Acosh`.
    static func acosh(_ x: Double) -> Double {
        if x < 1 || x.isNaN { return .nan }
        if x == 1 { return 0 }
        if x >= 0x1p28 { return log(x) + ln2 }
        if x > 2 { return log(2 * x - 1 / (x + (x * x - 1).squareRoot())) }
        let t = x - 1
        return log1p(t + (2 * t + t * t).squareRoot())
    }

    /// `math.Atanh`.
    static func atanh(_ x: Double) -> Double {
        if x < -1 || x > 1 || x.isNaN { return .nan }
        if x == 1 { return .infinity }
        if x == -1 { return -.infinity }
        let magnitude = x < 0 ? -x : x
        let value: Double
        if magnitude < 0x1p-28 {
            value = magnitude
        } else if magnitude < 0.5 {
            let twice = magnitude + magnitude
            value = 0.5 * log1p(twice + twice * magnitude / (1 - magnitude))
        } else {
            value = 0.5 * log1p((magnitude + magnitude) / (1 - magnitude))
        }
        return x < 0 ? -value : value
    }

    /// `x` (not negative) as an octant `j` (0, 2, 4 or 6 after mapping odd octants up) and the
    /// remainder `z` in [-π/4, π/4]: π/4 in three parts below 2^29, Payne-Hanek above.
    private static func reduced(_ x: Double) -> (octant: UInt64, remainder: Double) {
        if x >= 0x1p29 { return payneHanek(x) }
        var j = UInt64(x * (4 / .pi))
        var y = Double(j)
        if j & 1 == 1 {
            j += 1
            y += 1
        }
        return (j & 7, ((x - y * pi4A) - y * pi4B) - y * pi4C)
    }

    /// Go's `trigReduce`: the integer part mod 8 and the fraction of x / (π/4), from 4/π's bits
    /// multiplied out in 64-bit integers (K. C. Ng, "Argument reduction for huge arguments: good to
    /// the last bit").
    private static func payneHanek(_ x: Double) -> (octant: UInt64, remainder: Double) {
        if x < .pi / 4 { return (0, x) }
        var mantissa = x.bitPattern
        let exponent = Int((mantissa >> 52) & 0x7FF) - 1023 - 52
        mantissa &= ~(0x7FF << 52)
        mantissa |= 1 << 52
        // Three digits of 4/π such that the product's leading digit has the exponent -61.
        let digit = (exponent + 61) / 64, shift = UInt64((exponent + 61) % 64)
        let z0 = (fourOverPi[digit] << shift) | (fourOverPi[digit + 1] >> (64 - shift))
        let z1 = (fourOverPi[digit + 1] << shift) | (fourOverPi[digit + 2] >> (64 - shift))
        let z2 = (fourOverPi[digit + 2] << shift) | (fourOverPi[digit + 3] >> (64 - shift))
        let z2High = z2.multipliedFullWidth(by: mantissa).high
        let (z1High, z1Low) = z1.multipliedFullWidth(by: mantissa)
        let z0Low = z0 &* mantissa
        let (low, carry) = z1Low.addingReportingOverflow(z2High)
        var high = z0Low &+ z1High &+ (carry ? 1 : 0)
        var j = high >> 61
        high = high << 3 | low >> 61
        let leadingZeros = UInt64(high.leadingZeroBitCount)
        let biasedExponent = 1023 - (leadingZeros + 1)
        high = (high << (leadingZeros + 1)) | (low >> (64 - (leadingZeros + 1)))
        high >>= 12
        high |= biasedExponent << 52
        var z = Double(bitPattern: high)
        if j & 1 == 1 {
            j = (j + 1) & 7
            z -= 1
        }
        return (j, z * (.pi / 4))
    }

    private static func sinePolynomial(_ z: Double) -> Double {
        let zz = z * z
        return z + z * zz * (((((sinC[0] * zz + sinC[1]) * zz + sinC[2]) * zz + sinC[3]) * zz + sinC[4]) * zz + sinC[5])
    }

    private static func cosinePolynomial(_ z: Double) -> Double {
        let zz = z * z
        return 1.0 - 0.5 * zz + zz * zz * (((((cosC[0] * zz + cosC[1]) * zz + cosC[2]) * zz + cosC[3]) * zz + cosC[4]) * zz + cosC[5])
    }

    /// Go's `satan`: the arctangent of a positive `x`, reduced to [0, 0.66] for `xatan`.
    private static func reducedArctangent(_ x: Double) -> Double {
        let moreBits = 6.123233995736765886130e-17 // π/2 = Pi/2 + moreBits
        if x <= 0.66 { return arctangentSeries(x) }
        if x > 2.41421356237309504880 { return .pi / 2 - arctangentSeries(1 / x) + moreBits } // tan(3π/8)
        return .pi / 4 + arctangentSeries((x - 1) / (x + 1)) + 0.5 * moreBits
    }

    /// Go's `xatan`: Cephes' rational function on [0, 0.66].
    private static func arctangentSeries(_ x: Double) -> Double {
        var z = x * x
        z = z * ((((atanP[0] * z + atanP[1]) * z + atanP[2]) * z + atanP[3]) * z + atanP[4])
            / (((((z + atanQ[0]) * z + atanQ[1]) * z + atanQ[2]) * z + atanQ[3]) * z + atanQ[4])
        return x * z + x
    }

    /// π/4 in three parts whose products with an octant count below 2^30 are exact.
    private static let pi4A = 7.85398125648498535156e-1
    private static let pi4B = 3.77489470793079817668e-8
    private static let pi4C = 2.69515142907905952645e-15
    /// 3π/4 rounded once (Go's constant arithmetic), equal to `3 * .pi / 4` in doubles.
    private static let threeQuartersPi = Double(bitPattern: 0x4002_D97C_7F33_21D2)
    private static let ln2 = 6.93147180559945286227e-01

    private static let sinC = [1.58962301576546568060e-10, -2.50507477628578072866e-8, 2.75573136213857245213e-6,
                               -1.98412698295895385996e-4, 8.33333333332211858878e-3, -1.66666666666666307295e-1]
    private static let cosC = [-1.13585365213876817300e-11, 2.08757008419747316778e-9, -2.75573141792967388112e-7,
                               2.48015872888517045348e-5, -1.38888888888730564116e-3, 4.16666666666665929218e-2]
    private static let tanP = [-1.30936939181383777646e4, 1.15351664838587416140e6, -1.79565251976484877988e7]
    /// The first coefficient, 1, is implied in the denominator.
    private static let tanQ = [1.0, 1.36812963470692954678e4, -1.32089234440210967447e6, 2.50083801823357915839e7,
                               -5.38695755929454629881e7]
    private static let atanP = [-8.750608600031904122785e-01, -1.615753718733365076637e+01, -7.500855792314704667340e+01,
                                -1.228866684490136173410e+02, -6.485021904942025371773e+01]
    private static let atanQ = [2.485846490142306297962e+01, 1.650270098316988542046e+02, 4.328810604912902668951e+02,
                                4.853903996359136964868e+02, 1.945506571482613964425e+02]
    /// Hart and Cheney's #2029, lowest power first.
    private static let sinhP = [-0.6307673640497716991184787251e+6, -0.8991272022039509355398013511e+5,
                                -0.2894211355989563807284660366e+4, -0.2630563213397497062819489e+2]
    private static let sinhQ = [-0.6307673640497716991212077277e+6, 0.1521517378790019070696485176e+5,
                                -0.173678953558233699533450911e+3]
    private static let tanhP = [-9.64399179425052238628E-1, -9.92877231001918586564E1, -1.61468768441708447952E3]
    private static let tanhQ = [1.12811678491632931402E2, 2.23548839060100448583E3, 4.84406305325125486048E3]
    /// 4/π's bits: 4/π = Σ fourOverPi[i] x 2^(-64 i), 1,217 bits for the largest exponent.
    private static let fourOverPi: [UInt64] = [
        0x0000_0000_0000_0001, 0x45F3_06DC_9C88_2A53, 0xF84E_AFA3_EA69_BB81, 0xB6C5_2B32_7887_2083,
        0xFCA2_C757_BD77_8AC3, 0x6E48_DC74_849B_A5C0, 0x0C92_5DD4_13A3_2439, 0xFC3B_D639_6253_4E7D,
        0xD104_6BEA_5D76_8909, 0xD338_E04D_68BE_FC82, 0x7323_AC73_06A6_73E9, 0x3908_BF17_7BF2_5076,
        0x3FF1_2FFF_BC0B_301F, 0xDE5E_2316_B414_DA3E, 0xDA6C_FD9E_4F96_136E, 0x9E8C_7ECD_3CBF_D45A,
        0xEA4F_758F_D7CB_E2F6, 0x7A0E_73EF_14A5_25D4, 0xD7F6_BF62_3F1A_BA10, 0xAC06_608D_F8F6_D757,
    ]
}
