"""The HTTP server of one process (docs/operations.md, "Limits", "Slow
clients", "Signals"; docs/architecture.md): Tornado's HTTPServer with a
bound for every phase of a connection, the requests in flight, and a
drain that loses no request.

Phases of a connection and what bounds each:

- waiting for a request (silent since accepted, or idle between
  keep-alive requests): at `max_connections`, the one waiting longest is
  closed to admit a new client; idle ones are also closed after
  `idle_timeout` without a byte;
- its head arriving: `header_timeout`, from accept for a connection's
  first request, from its first byte for later ones;
- its body arriving: `body_timeout`;
- its answer being read: `write_timeout` (ClientStream).
"""
import asyncio
import collections
import logging

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from scoring_api.accept import Acceptor
from scoring_api.deadlines import Deadlines
from scoring_api.streams import ClientStream
from scoring_api.throttle import Throttle

logger = logging.getLogger(__name__)

# How long a draining server lets a kept-alive connection bring its next
# request before it closes it (see ScoringHTTPServer.drain).
DRAIN_GRACE_SECONDS = 1.0
# Between stopping handshakes on the listening sockets and taking what
# their queues hold: a handshake the kernel was completing on another CPU
# as the filter came (microseconds) lands in the queue well before.
HANDSHAKES_SETTLE_SECONDS = 0.05


def stream_of(request_conn):
    """The ClientStream under `request_conn` (an HTTP1Connection).

    Tornado 6.6.1 documents no accessor: HTTP1Connection keeps the stream
    it was given as `.stream` (None once detached), a name its API
    snapshot (tornado/test/api.txt) lists; the one place that reads it
    (HTTP1ConnectionCanaryTest fails when it changes).
    """
    return request_conn.stream


class ScoringHTTPServer(HTTPServer):
    """Tornado's HTTPServer with `max_connections`, `header_timeout`,
    `write_timeout`, the in-flight count and draining of `traffic`
    (scoring_api.traffic.Traffic), and `drain()`; plain HTTP only.

    It accepts through `Acceptor`, not Tornado's accept loop, so it
    overrides TCPServer's `add_sockets` and `stop` with the meaning
    Tornado gives them, and builds each connection's ClientStream itself,
    then hands it to the public `handle_stream`. `body_timeout` means what
    it means to HTTPServer, on every path, but is kept by one sweep
    (Deadlines) instead of a timeout around every body read;
    `idle_connection_timeout` too, instead of Tornado's timeout around
    every head read (its `conn_params` get no header_timeout).

    Overrides of Tornado 6.6.1's TCPServer / HTTPServer (their
    HTTPServerConnectionDelegate interface included): `initialize`,
    `add_sockets`, `stop`, `start_request`, `on_close`;
    HTTPServerCanaryTest fails when one of them, or the set of
    TCPServer's public methods, changes.
    """

    # Overrides HTTPServer.initialize (Tornado 6.6.1; HTTPServerCanaryTest).
    def initialize(self, request_callback, *, traffic, max_connections,
                   write_timeout, header_timeout, idle_connection_timeout,
                   body_timeout=None, max_buffer_size=None, chunk_size=None,
                   ssl_options=None, **kwargs):
        if ssl_options is not None:
            raise ValueError("ScoringHTTPServer serves plain HTTP only")
        super().initialize(request_callback, max_buffer_size=max_buffer_size,
                           chunk_size=chunk_size,
                           idle_connection_timeout=idle_connection_timeout,
                           **kwargs)
        # Tornado bounds the wait for each head with a future and a timer
        # (gen.with_timeout, header_timeout = idle_connection_timeout or
        # 3600): measured, 5.1-5.6 % of a cached score's CPU time. `idle`
        # keeps that bound instead. `conn_params` is in Tornado 6.6's API
        # snapshot (tornado/test/api.txt); HTTPServerCanaryTest.
        self.conn_params.header_timeout = None
        # What TCPServer would give its own IOStreams, kept here rather
        # than read back from its undocumented attributes.
        self.stream_options = {"max_buffer_size": max_buffer_size,
                               "read_chunk_size": chunk_size}
        self.traffic = traffic
        self.max_connections = max_connections
        self.write_timeout = write_timeout
        self.stalls = Throttle()
        self.evictions = Throttle()
        self.late_heads = Throttle()
        self.heads = Deadlines(header_timeout, self._head_too_late)
        self.bodies = Deadlines(body_timeout, self._body_too_late)
        self.idle = Deadlines(idle_connection_timeout, _close_if_idle)
        self.acceptors = []
        self.open_connections = 0
        # Connections waiting for a request, no byte of it come yet, the
        # one waiting longest first: {ClientStream: None}.
        self.waiting = collections.OrderedDict()
        # Connections with a request counted in `traffic`.
        self.serving = set()
        self.closing_idle = False  # draining, and its grace is over

    # -- accepting ----------------------------------------------------------

    # Overrides TCPServer.add_sockets (Tornado 6.6.1; HTTPServerCanaryTest).
    def add_sockets(self, sockets):
        acceptor = Acceptor(sockets, self._accepted, self.can_admit)
        self.acceptors.append(acceptor)
        acceptor.resume()

    # Overrides TCPServer.stop (Tornado 6.6.1; HTTPServerCanaryTest).
    def stop(self):
        """Stop listening and close the listening sockets now (as
        TCPServer.stop); `drain` is the graceful way."""
        for acceptor in self.acceptors:
            acceptor.close()
        self.acceptors = []
        super().stop()

    def can_admit(self):
        """Whether a new client may be accepted: below max_connections, or
        a connection waiting for a request can make room for it."""
        return (self.open_connections < self.max_connections
                or bool(self.waiting))

    def _accepted(self, connection, address):
        if self.open_connections >= self.max_connections:
            self._close_longest_waiting()
        stream = ClientStream(connection, self.write_timeout, self.stalls,
                              self._first_byte, self._closed,
                              **self.stream_options)
        self.open_connections += 1
        self._wait_for_request(stream)
        self.heads.wait(stream)  # the first head: from accept
        try:
            self.handle_stream(stream, address)
        except Exception:
            logger.exception("cannot serve a new connection")
            stream.close()

    def _close_longest_waiting(self):
        """Close the connection that has waited longest for a request, to
        make room (as nginx does with idle keep-alive connections). One
        whose request is already in the kernel is left to it."""
        while self.waiting:
            stream, _ = self.waiting.popitem(last=False)
            if stream.has_unread_bytes():
                continue  # its request is on its way: a head soon
            count = self.evictions.event()
            if count:
                logger.warning(
                    "max_connections (%d) reached: closed connections"
                    " waiting for a request to admit new clients (%d since"
                    " the last such line)", self.max_connections, count)
            stream.close()
            return

    def _resume_accepting(self):
        for acceptor in self.acceptors:
            acceptor.resume()

    # -- one connection's requests ------------------------------------------

    # Overrides HTTPServer.start_request (Tornado 6.6.1;
    # HTTPServerCanaryTest).
    def start_request(self, server_conn, request_conn):
        self._request_over(server_conn)  # its previous one is answered
        stream = stream_of(request_conn)
        if stream not in self.heads and not stream.closed():
            # A later request on a kept-alive connection: idle until its
            # first byte (the first request's head counts from accept).
            if self.closing_idle:
                _close_if_idle(stream)
                self.heads.wait(stream)  # still open: a head on its way
            else:
                self._wait_for_request(stream)
                self._resume_accepting()
        return _RequestWatch(super().start_request(server_conn, request_conn),
                             self, server_conn, request_conn, stream)

    # Overrides HTTPServer.on_close (Tornado 6.6.1; HTTPServerCanaryTest).
    def on_close(self, server_conn):
        super().on_close(server_conn)
        self._request_over(server_conn)

    def _wait_for_request(self, stream):
        """`stream` waits for a request until its first byte: closed to
        make room at max_connections, or after idle_timeout."""
        self.waiting[stream] = None
        stream.watch_for_first_byte()
        self.idle.wait(stream)

    def _stop_waiting(self, stream):
        """`stream` no longer waits for a request: a byte of one came, or
        it closed."""
        self.waiting.pop(stream, None)
        self.idle.done(stream)

    def _first_byte(self, stream):
        self._stop_waiting(stream)
        if stream not in self.heads:  # a later request's head: from now
            self.heads.wait(stream)

    def _head_received(self, stream):
        self._stop_waiting(stream)  # read from the buffer: no first byte
        self.heads.done(stream)
        stream.awaiting_first_byte = False  # read from the buffer at once

    def _request_started(self, server_conn):
        self.serving.add(server_conn)
        self.traffic.started()

    def _request_over(self, server_conn):
        if server_conn in self.serving:
            self.serving.remove(server_conn)
            self.traffic.finished()

    def _closed(self, stream):
        self.open_connections -= 1
        self._stop_waiting(stream)
        self.heads.done(stream)
        self._resume_accepting()

    def _head_too_late(self, stream):
        count = self.late_heads.event()
        if count:
            logger.warning(
                "closed connections whose request head did not come in"
                " %.1fs (%d since the last such line)", self.heads.timeout,
                count)
        stream.close()

    def _body_too_late(self, watch):
        logger.warning("body not received in %.1fs; closing the connection",
                       self.bodies.timeout)
        watch.request_conn.close()

    # -- draining -------------------------------------------------------------

    def drain(self, grace_seconds=DRAIN_GRACE_SECONDS):
        """Stop gracefully: serve every request a client sent, and no next
        one on a kept-alive connection. Returns a Future done once the
        listening sockets are closed.

        `traffic.draining` first (answers say `Connection: close`, /ready
        says 503); then the listening sockets complete no new handshake
        (`Acceptor.stop_handshakes`), what the kernel already queued is
        accepted and served, and only then are they closed. A connection
        still waiting for a request `grace_seconds` after the drain began
        is closed then: the grace lets a kept-alive client that is about
        to send its next request have it answered, instead of finding its
        connection closed under it (HTTP's keep-alive race).
        """
        self.traffic.draining = True
        settle = 0.0
        for acceptor in self.acceptors:
            if acceptor.stop_handshakes():
                settle = HANDSHAKES_SETTLE_SECONDS
        IOLoop.current().call_later(grace_seconds, self._close_idle)
        return asyncio.ensure_future(self._close_listeners(settle))

    async def _close_listeners(self, settle):
        await asyncio.sleep(settle)
        for acceptor in self.acceptors:
            acceptor.accept_queued()
        self.stop()

    def _close_idle(self):
        self.closing_idle = True
        for stream in list(self.waiting):
            _close_if_idle(stream)


class _RequestWatch(httputil.HTTPMessageDelegate):
    """Passes one request on to `delegate`, and tells `server` what its
    connection is doing: its head has come (the request is in flight
    until the connection's next request or its close), its body is being
    read (bounded by body_timeout), it is over.

    A request read from the buffer of a connection the server has closed
    (a client that did not read its answers, a drain, a deadline) never
    reaches the application: the connection is detached and dropped,
    rather than have Tornado serve every request a client pipelined
    though no answer can reach it any more.

    Public interfaces of Tornado 6.6.1 (HTTPServerConnectionDelegate's
    start_request returns an HTTPMessageDelegate; HTTPServer's xheaders
    wraps its delegate the same way; HTTP1Connection.detach ends its
    processing); HTTPServerCanaryTest fails when they change, and
    TrafficTest, PipelinedTest (tests/unit/test_httpserver.py) and
    test_drain when that flow does.
    """

    def __init__(self, delegate, server, server_conn, request_conn, stream):
        self.delegate = delegate
        self.server = server
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.stream = stream

    def headers_received(self, start_line, headers):
        if self.stream.closed():
            self.request_conn.detach()
            return None
        server = self.server
        server._head_received(self.stream)
        server._request_started(self.server_conn)
        if "Content-Length" in headers or "Transfer-Encoding" in headers:
            server.bodies.wait(self)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk):
        return self.delegate.data_received(chunk)

    def finish(self):
        self.server.bodies.done(self)
        self.delegate.finish()

    def on_connection_close(self):
        self.server.bodies.done(self)
        self.server._request_over(self.server_conn)
        self.delegate.on_connection_close()


def _close_if_idle(stream):
    """Close `stream` unless a request is already on its way in: that one
    is answered (with Connection: close, as the server drains)."""
    if not stream.has_unread_bytes():
        stream.close()
