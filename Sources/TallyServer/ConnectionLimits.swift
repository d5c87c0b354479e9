#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Why the server gave up on a connection before answering its request: the `reason` label of
/// `tally_http_connections_refused_total`.
enum ConnectionRefusal: String, CaseIterable, Error, Sendable {
    /// `--max-connections` were open: closed as soon as it was accepted.
    case maxConnections = "max_connections"
    /// Its body would have taken the bytes held over every connection past `--max-buffered-bytes`: 503.
    case bufferedBytes = "buffered_bytes"
    /// Its request was not complete within `--http.read-timeout` of its first byte: 408.
    case readTimeout = "read_timeout"
}

/// The limits every connection shares, so that no number of clients can exhaust the server: how
/// many connections are open, how many request-body bytes they hold, how long they may idle or
/// take to send a request.
final class ConnectionLimits: Sendable {
    let idleTimeout: TimeAmount
    let readTimeout: TimeAmount
    private let maxConnections: Int
    private let maxBufferedBytes: Int
    private let metrics: ServerMetrics
    private let openConnections = Atomic<Int>(0)
    private let bufferedBytes = Atomic<Int>(0)

    init(configuration: ServerConfiguration, metrics: ServerMetrics) {
        idleTimeout = TimeAmount(configuration.idleTimeout)
        readTimeout = TimeAmount(configuration.readTimeout)
        maxConnections = configuration.maxConnections
        maxBufferedBytes = configuration.maxBufferedBytes
        self.metrics = metrics
    }

    /// Counts a new connection in; false, counted as refused, when the most are open already.
    func admitConnection() -> Bool {
        guard Self.add(1, to: openConnections, upTo: maxConnections) else {
            refused(.maxConnections)
            return false
        }
        metrics.openConnections.increment()
        return true
    }

    func connectionClosed() {
        openConnections.wrappingSubtract(1, ordering: .relaxed)
        metrics.openConnections.decrement()
    }

    /// Takes `bytes` of the buffered-bytes budget; false when they would go past it.
    func reserve(_ bytes: Int) -> Bool {
        guard Self.add(bytes, to: bufferedBytes, upTo: maxBufferedBytes) else { return false }
        metrics.bufferedRequestBytes.increment(by: Double(bytes))
        return true
    }

    func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        bufferedBytes.wrappingSubtract(bytes, ordering: .relaxed)
        metrics.bufferedRequestBytes.decrement(by: Double(bytes))
    }

    func refused(_ reason: ConnectionRefusal) {
        metrics.refusedConnectionCounters[reason]?.increment()
    }

    /// Adds `amount` unless the sum would pass `limit`; exact under concurrent callers.
    private static func add(_ amount: Int, to counter: borrowing Atomic<Int>, upTo limit: Int) -> Bool {
        var current = counter.load(ordering: .relaxed)
        while current + amount <= limit {
            let (exchanged, original) = counter.compareExchange(expected: current, desired: current + amount, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }
}

/// The first handler of a connection, next to the socket, for what the HTTP handlers cannot see or
/// do: that bytes of a request came (the decoder keeps an incomplete head to itself), and answers
/// to requests refused before their end (NIO's pipelining handler allows none). Closes gently after
/// such an answer: output shut, input read and dropped until the client closes or `drainTime`
/// passes, so that unread bytes do not reset the connection before the client has read the answer.
final class RawConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// The inbound user event sent ahead of every read's bytes.
    struct BytesArrived: Sendable {}

    /// The outbound user event that asks for an early answer.
    struct Answer: Sendable {
        let status: HTTPResponseStatus
        let message: String
        var retryAfterSeconds: Int?
    }

    /// The outbound user event that sends `100 Continue` ahead of a request's answer. It is written
    /// here as bytes, below the HTTP encoder and the response compressor, which take every
    /// response head they see for a request's final one (the compressor traps on a second).
    struct Continue: Sendable {}

    /// The outbound user event that closes gently after an answer already written: sent after a
    /// request answered before its body was all read (413).
    struct Linger: Sendable {}

    static let drainTime = TimeAmount.seconds(2)
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        context.fireUserInboundEventTriggered(BytesArrived())
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // After an answer of its own, the client's end of input is what the drain waits for.
        if answered, case ChannelEvent.inputClosed = event { return context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // The pipelining handler may hold reads back while it waits for a request's end that will
        // never come: drain from here.
        if answered { context.read() } else { context.fireChannelReadComplete() }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if event is Continue {
            guard !answered else { return }
            return context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n"))), promise: promise)
        }
        if event is Linger { return linger(context: context) }
        guard let answer = event as? Answer else { return context.triggerUserOutboundEvent(event, promise: promise) }
        var head = "HTTP/1.1 \(answer.status.code) \(answer.status.reasonPhrase)\r\nDate: \(HTTPDate.format(time(nil)))\r\nConnection: close\r\n"
            + "Content-Type: text/plain; charset=utf-8\r\nContent-Length: \(answer.message.utf8.count)\r\n"
        if let seconds = answer.retryAfterSeconds { head += "Retry-After: \(seconds)\r\n" }
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer(string: head + "\r\n" + answer.message))), promise: promise)
        linger(context: context)
    }

    /// Output shut; input read and dropped until the client closes or `drainTime` passes.
    private func linger(context: ChannelHandlerContext) {
        guard !answered else { return }
        answered = true
        context.close(mode: .output, promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: Self.drainTime) { channel.close(promise: nil) }
        context.read()
    }
}

/// Pauses accepting after `accept` failed for want of descriptors or memory. NIO's
/// `AcceptBackoffHandler` does not help there: it delays the next read, but a failed accept leaves
/// the listening socket registered, and the connection still pending wakes the event loop again at
/// once, thousands of times a second. Turning `autoRead` off unregisters the socket until it is
/// turned back on.
final class AcceptPauseHandler: ChannelInboundHandler {
    typealias InboundIn = Channel

    static let pause = TimeAmount.milliseconds(250)
    private let logger: Logger
    /// Accepting failed since it last succeeded; logged once at each end of a run of failures.
    private var failing = false

    init(logger: Logger) { self.logger = logger }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if failing {
            failing = false
            logger.notice("accepting connections again")
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A client that gave up before it was accepted leaves nothing exhausted.
        guard let ioError = error as? IOError, ioError.errnoCode != ECONNABORTED else { return context.fireErrorCaught(error) }
        if !failing {
            failing = true
            logger.warning("accepting connections failed; retrying every \(Self.pause.nanoseconds / 1_000_000) ms", metadata: ["error": "\(ioError)"])
        }
        // One failure a read: each pause is over before the next can come.
        guard let options = context.channel.syncOptions else { return }
        try? options.setOption(.autoRead, value: false)
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.pause) { try? options.setOption(.autoRead, value: true) }
    }
}
