import XCTest
@testable import TallyStorage

final class TenantCreationTests: XCTestCase {
    /// A tenant whose `wal/` cannot be made leaves no `<tenant>/` behind: the next start would
    /// otherwise take the empty directory for a tenant.
    func testFailedCreationLeavesNothingBehind() throws {
        // Running as root ignores permissions, so the failure is a path length: `<tenant>` is just
        // under PATH_MAX and `<tenant>/wal` just over it.
        let pathMax = Int(PATH_MAX) - 1, tenantLength = 100
        var root = try temporaryDirectory()
        while pathMax - root.count - 1 > tenantLength + 201 + 28 {
            root += "/" + String(repeating: "d", count: 200)
            try FileSystem.makeDirectory(root)
        }
        root += "/" + String(repeating: "r", count: pathMax - 2 - root.count - 1 - tenantLength - 1)
        let tenant = String(repeating: "t", count: tenantLength)
        let registry = try TenantRegistry(root: root, options: StorageOptions())
        XCTAssertEqual((root + "/" + tenant).count, pathMax - 2, "the tenant directory itself can be made")

        XCTAssertThrowsError(try registry.database(for: tenant)) { error in
            XCTAssertTrue("\(error)".contains(tenant + "/wal"), "\(error)")
        }
        XCTAssertFalse(FileSystem.exists(root + "/" + tenant))
        XCTAssertEqual(TenantRegistry.existingTenants(root: root), [])
    }
}
