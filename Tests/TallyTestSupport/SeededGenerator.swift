import Foundation

/// xorshift64*: reproducible random choices for tests. Seeded from `TALLY_TEST_SEED` when set, else
/// from `fixedSeed` (a test that must cover the same cases every run), else at random; the seed is
/// printed, so a failing run can be replayed with it.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    /// `test` names the choices in the printed line.
    public init(test: String, fixedSeed: UInt64? = nil) {
        let seed = ProcessInfo.processInfo.environment["TALLY_TEST_SEED"].flatMap { UInt64($0) } ?? fixedSeed ?? UInt64.random(in: 1...UInt64.max)
        print("\(test): TALLY_TEST_SEED=\(seed)")
        state = seed == 0 ? 1 : seed
    }

    public mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}
