// swift-tools-version:5.4
import PackageDescription

/// libFuzzer targets for Tally's readers of untrusted bytes (docs/fuzzing.md). Only `make fuzz`
/// builds them, with `-Xswiftc -sanitize=fuzzer,address`: libFuzzer supplies `main`, so each target
/// is one file of declarations (`-parse-as-library`) exporting `LLVMFuzzerTestOneInput`.
///
/// Tools version 5.4 on purpose: from 5.5 SwiftPM links every Swift executable with `main` aliased to
/// the module's own entry point (`--defsym main=<module>_main`), which a libFuzzer target does not
/// have. The Swift 6 language mode is therefore set by flag.
let swift6: SwiftSetting = .unsafeFlags(["-swift-version", "6"])
let harness: [SwiftSetting] = [.unsafeFlags(["-swift-version", "6", "-parse-as-library"])]

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: "tally") },
                      swiftSettings: harness)
}

let package = Package(
    name: "tally-fuzz",
    dependencies: [.package(name: "tally", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "TallyStorage", package: "tally")],
                swiftSettings: [swift6]),
        fuzzTarget("fuzz-remote-write", ["TallyWire"]),
        fuzzTarget("fuzz-wal", ["TallyStorage"]),
        fuzzTarget("fuzz-block-index", ["TallyStorage"]),
        fuzzTarget("fuzz-head-chunks", ["TallyStorage"]),
        fuzzTarget("fuzz-selector", ["TallyStorage"]),
        fuzzTarget("fuzz-query-params", ["TallyStorage", "TallyCost", "TallyServer"]),
    ]
)
