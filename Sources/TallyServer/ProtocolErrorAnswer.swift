import NIOCore
import NIOHTTP1

/// Answers a request the HTTP parser could not read before the connection closes, as NIO's
/// `HTTPServerProtocolErrorHandler` does, but saying why: 431 when the request line and headers
/// are past the parser's 80 KiB (a long query sent in the URL, which fits in a POST form body),
/// 400 for anything else. Go's server, which Prometheus clients know, answers the same codes.
final class ProtocolErrorAnswer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// A response has begun and not ended: a second one cannot be written into it.
    private var responseOpen = false

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parserError = error as? HTTPParserError, !responseOpen {
            let (status, reason): (HTTPResponseStatus, String) = parserError == .headerOverflow
                ? (.requestHeaderFieldsTooLarge, "the request line and headers are over 80 KiB; send a long query as a POST form body\n")
                : (.badRequest, "malformed HTTP request: \(parserError)\n")
            var body = context.channel.allocator.buffer(capacity: reason.utf8.count)
            body.writeString(reason)
            let headers = HTTPHeaders([("Connection", "close"), ("Content-Type", "text/plain; charset=utf-8"),
                                       ("Content-Length", "\(body.readableBytes)")])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        // The decoder closes the connection once this returns; others may still want to see the error.
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: responseOpen = true
        case .end: responseOpen = false
        default: break
        }
        context.write(data, promise: promise)
    }
}
