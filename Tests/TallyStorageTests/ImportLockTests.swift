import Foundation
import XCTest
@testable import TallyStorage

/// A tenant opened for writing removes `<ulid>.tmp` left by an interrupted write, but not one an
/// import is still filling.
final class ImportLockTests: XCTestCase {
    func testAnOpeningTenantLeavesTheBlockAnImportIsFilling() throws {
        let root = try temporaryDirectory(), directory = root + "/tenant"
        defer { try? FileSystem.removeTree(root) }
        let ulid = "01JE0000000000000000000000"
        XCTAssertNotNil(ULID(ulid))
        let temporary = directory + "/" + ulid + ".tmp"
        try FileManager.default.createDirectory(atPath: temporary + "/chunks", withIntermediateDirectories: true)
        let lock = try ImportLock(tenantDirectory: directory, ulid: ulid)
        try TenantDatabase.open(directory: directory, tenant: "t").close()
        XCTAssertTrue(FileManager.default.fileExists(atPath: temporary + "/chunks"), "held by an import: left alone")
        lock.release()
        XCTAssertFalse(FileManager.default.fileExists(atPath: ImportLock.path(directory, ulid)), "the lock file goes with the lock")
        try TenantDatabase.open(directory: directory, tenant: "t").close()
        XCTAssertFalse(FileManager.default.fileExists(atPath: temporary), "left by an interrupted write: removed")

        // A crashed import left its lock file, held by no one: the .tmp and the lock file go.
        try FileManager.default.createDirectory(atPath: temporary + "/chunks", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: ImportLock.path(directory, ulid), contents: nil))
        try TenantDatabase.open(directory: directory, tenant: "t").close()
        XCTAssertFalse(FileManager.default.fileExists(atPath: temporary))
        XCTAssertFalse(FileManager.default.fileExists(atPath: ImportLock.path(directory, ulid)))
    }
}
