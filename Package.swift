// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

/// The storage layer's release build leaves out Swift's run-time exclusivity checks: the head is a
/// class whose arrays are reached once per appended or replayed sample, and the checks (a
/// thread-local access set per access) were 18% of WAL replay. Debug builds, which `make test`
/// runs, keep them, so an overlapping access still fails a test; the compile-time checks stay in both.
let storageSettings: [SwiftSetting] = strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "tally",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tally", targets: ["tally"]),
        .executable(name: "tally-bench", targets: ["tally-bench"]),
        .executable(name: "tally-microbench", targets: ["tally-microbench"]),
        // For the libFuzzer targets in fuzz/, a package of its own that depends on this one by path
        // (a package reaches another's modules only through its products).
        .library(name: "TallyWire", targets: ["TallyWire"]),
        .library(name: "TallyStorage", targets: ["TallyStorage"]),
        .library(name: "TallyCost", targets: ["TallyCost"]),
        .library(name: "TallyServer", targets: ["TallyServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    ],
    targets: [
        .systemLibrary(name: "CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
        // libxcrypt's crypt(3), for bcrypt password hashes in the auth configuration.
        .systemLibrary(name: "CCrypt", pkgConfig: "libcrypt", providers: [.apt(["libcrypt-dev"])]),
        .target(name: "TallyWire", dependencies: ["CSnappy"], swiftSettings: strict),
        .target(name: "TallyStorage", dependencies: ["CSnappy"], swiftSettings: storageSettings),
        .target(name: "TallyCost", dependencies: ["TallyStorage"], swiftSettings: strict),
        // PromQL: parser and evaluation, reading through the storage read interface only.
        .target(name: "TallyQuery", dependencies: ["TallyStorage"], swiftSettings: strict),
        .target(
            name: "TallyServer",
            dependencies: [
                "TallyWire", "TallyStorage", "TallyCost", "TallyQuery", "CCrypt",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPCompression", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "tally",
            dependencies: [
                "TallyServer", "TallyStorage", "TallyCost", "TallyQuery", "TallyLoad",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(name: "TallyLoad", dependencies: ["TallyWire"], swiftSettings: strict),
        .executableTarget(
            name: "tally-bench",
            dependencies: ["TallyLoad", "TallyWire", "TallyStorage", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "benchmarks/TallyBench",
            swiftSettings: strict
        ),
        .target(name: "CAllocationCounter", path: "benchmarks/CAllocationCounter"),
        .executableTarget(
            name: "tally-microbench",
            dependencies: ["CAllocationCounter", "TallyLoad", "TallyWire", "TallyStorage", "TallyCost",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "benchmarks/TallyMicrobench",
            swiftSettings: strict
        ),
        // libprotobuf-c and the C that protoc-c generates from proto/ (`make proto-c`): a decoder and
        // encoder written by other people, which the wire tests hold the hand-written decoder to.
        .systemLibrary(name: "CProtobufC", path: "Tests/CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
        .target(name: "RemoteWriteProtobufC", dependencies: ["CProtobufC"], path: "Tests/RemoteWriteProtobufC",
                linkerSettings: [.linkedLibrary("protobuf-c")]),
        // Shared by the test targets: seeded random choices that print their seed, appends to a tenant.
        .target(name: "TallyTestSupport", dependencies: ["RemoteWriteProtobufC", "TallyStorage"], path: "Tests/TallyTestSupport", swiftSettings: strict),
        .testTarget(name: "TallyWireTests", dependencies: ["TallyWire", "CSnappy", "RemoteWriteProtobufC", "TallyTestSupport"], swiftSettings: strict),
        .testTarget(name: "TallyStorageTests", dependencies: ["TallyStorage", "TallyTestSupport"], swiftSettings: strict),
        .testTarget(name: "TallyCostTests", dependencies: ["TallyCost", "TallyStorage", "TallyTestSupport"], swiftSettings: strict),
        .testTarget(name: "TallyQueryTests", dependencies: ["TallyQuery", "TallyStorage", "TallyTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["TallyWire", "TallyStorage", "TallyQuery", "TallyLoad", "TallyTestSupport"],
            // Read through #filePath, not as a bundle resource.
            exclude: ["Resources"],
            swiftSettings: strict
        ),
    ]
)
