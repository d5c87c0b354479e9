import Foundation
import NIOCore
import NIOHTTP1
import NIOHTTPCompression

/// gzip for answers, by swift-nio-extras' `HTTPResponseCompressor`: the compressor reads each
/// request's `Accept-Encoding` and compresses the matching answer on the event loop, setting
/// `Content-Encoding` and the compressed `Content-Length`.
enum ResponseCompression {
    /// Smaller bodies go as they are: a gzip header and trailer are 18 bytes, and short answers (most
    /// remote-write answers, refusals) gain nothing worth the deflate state.
    static let minimumBytes = 256

    /// Adds the compressor behind NIO's HTTP server handlers (so it sees every request head and
    /// answer in order) and in front of the connection's handler.
    static func add(to pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandler(GzipOnlyAcceptEncoding())
        try pipeline.addHandler(HTTPResponseCompressor(responseCompressionPredicate: compressesLargeBodies))
    }

    /// Every answer is written with its `Content-Length`, so its size is known before its body. An
    /// answer already in a coding (Remote-Read's snappy) goes as it is, and so do Remote-Read's
    /// streamed frames, which a reader takes one by one as they come, as Prometheus sends them.
    private static func compressesLargeBodies(_ head: inout HTTPResponseHead, _ clientAccepts: Bool) -> HTTPResponseCompressor.CompressionIntent {
        guard !head.headers.contains(name: "Content-Encoding"),
              head.headers.first(name: "Content-Type")?.hasPrefix("application/x-streamed-protobuf") != true else { return .doNotCompress }
        let length = head.headers.first(name: "Content-Length").flatMap(Int.init) ?? 0
        return length > minimumBytes ? .compressIfPossible : .doNotCompress
    }
}

/// Leaves the compressor only gzip to choose. It would answer `Accept-Encoding: gzip, deflate`
/// (curl, Python's requests) with deflate, which clients disagree on (zlib-wrapped or raw); the
/// server has only ever offered gzip. Each coding is also trimmed and lowercased, as the header's
/// grammar allows (`GZIP; q=0.5`) and the compressor's exact prefix match does not.
final class GzipOnlyAcceptEncoding: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case var .head(head) = unwrapInboundIn(data), head.headers.contains(name: "Accept-Encoding") else {
            return context.fireChannelRead(data)
        }
        let asked = head.headers[canonicalForm: "Accept-Encoding"]
        let offered = asked.compactMap { coding -> String? in
            let fields = coding.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            return fields.first == "deflate" ? nil : fields.joined(separator: ";")
        }
        // Most clients send plain `gzip`: their head goes on untouched.
        guard !offered.elementsEqual(asked, by: { $0 == $1 }) else { return context.fireChannelRead(data) }
        head.headers.replaceOrAdd(name: "Accept-Encoding", value: offered.joined(separator: ", "))
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }
}
