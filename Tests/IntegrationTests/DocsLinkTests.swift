import Foundation
import XCTest

/// The README and every file under docs/ stand alone: nothing they link to or name by a relative
/// path lies outside the repository, and every file they link to exists.
final class DocsLinkTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    func testTheReadmeAndDocsLinkOnlyToFilesInTheRepository() throws {
        var files = ["README.md"]
        let docs = try XCTUnwrap(FileManager.default.enumerator(atPath: Self.repository + "/docs"))
        for case let path as String in docs where !FileSystemChecks.isDirectory(Self.repository + "/docs/" + path) { files.append("docs/" + path) }
        XCTAssertGreaterThan(files.count, 5)
        for file in files {
            guard let text = FileManager.default.contents(atPath: Self.repository + "/" + file).flatMap({ String(data: $0, encoding: .utf8) }) else { continue }
            XCTAssertEqual(Self.problems(in: text, of: file), [], file)
        }
    }

    /// The checker itself finds each kind of escape.
    func testTheCheckFindsLinksAndPathsThatLeaveTheRepository() {
        let text = """
            The definition is `../shared/notes/cost-semantics.md` in the notes; see [semantics](../../shared/x.md),
            [a file](/work/shared/notes/a.md), [missing](architecture-old.md), [fine](costs.md#the-endpoints),
            [web](https://prometheus.io/docs/) and <a href="file:///etc/passwd">this</a>.
            """
        XCTAssertEqual(Self.problems(in: text, of: "docs/example.md"), [
            "links to ../../shared/x.md, outside the repository",
            "links to /work/shared/notes/a.md, an absolute path",
            "links to architecture-old.md, which does not exist",
            "links to file:///etc/passwd, an absolute path",
            "names ../shared/notes/cost-semantics.md, which does not exist",
        ])
    }

    static func problems(in text: String, of file: String) -> [String] {
        let directory = (file as NSString).deletingLastPathComponent
        func resolved(_ path: String) -> String {
            URL(fileURLWithPath: repository + "/" + directory + "/" + path).standardized.path
        }
        func inside(_ path: String) -> Bool { path == repository || path.hasPrefix(repository + "/") }
        var out: [String] = []
        let links = matches(#"\]\(([^)\s]+)\)|href="([^"]+)"|^\s*\[[^\]]+\]:\s*(\S+)"#, in: text)
        for target in links where !target.hasPrefix("http://") && !target.hasPrefix("https://") && !target.hasPrefix("mailto:") && !target.hasPrefix("#") {
            let path = String(target.split(separator: "#", maxSplits: 1).first ?? "")
            if path.hasPrefix("/") || path.hasPrefix("~") || path.hasPrefix("file:") {
                out.append("links to \(target), an absolute path")
            } else if !inside(resolved(path)) {
                out.append("links to \(target), outside the repository")
            } else if !FileManager.default.fileExists(atPath: resolved(path)) {
                out.append("links to \(target), which does not exist")
            }
        }
        for path in matches(#"(?:^|[\s`'"(])((?:\.\./)+[^\s`'")]*)"#, in: text) where !links.contains(path) {
            if !inside(resolved(path)) {
                out.append("names \(path), outside the repository")
            } else if !FileManager.default.fileExists(atPath: resolved(path)) {
                out.append("names \(path), which does not exist")
            }
        }
        return out.sorted()
    }

    /// The first non-empty capture group of each match.
    static func matches(_ pattern: String, in text: String) -> [String] {
        let regex = try! NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
            (1..<match.numberOfRanges).lazy.compactMap { Range(match.range(at: $0), in: text) }.first.map { String(text[$0]) }
        }
    }
}

private enum FileSystemChecks {
    static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }
}
