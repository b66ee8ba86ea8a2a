"""Client connections of one process (SPEC 8, "Limits", "Slow clients").

At most `max_connections` at once: past it the listening sockets leave the
IOLoop and new clients wait in the kernel's backlog until one closes.
Running out of descriptors (EMFILE/ENFILE) pauses accepting briefly and is
logged once per interval with a count, never once per attempt (Tornado's
own accept loop spins and logs a traceback per turn). An answer the client
does not read within `write_timeout` closes its connection (Tornado has
no write timeout).
"""
import errno
import functools
import logging
import resource
import socket
import time

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError

from scoring_api.deadlines import Deadlines
from scoring_api.throttle import LOG_INTERVAL_SECONDS, Throttle

logger = logging.getLogger(__name__)

# How long accepting stops after accept() failed for want of descriptors
# (or memory): long enough not to spin, short enough to serve again soon.
ACCEPT_PAUSE_SECONDS = 0.5
# Connections taken in one loop turn, as Tornado does (its listen backlog).
ACCEPTS_PER_TURN = 128
# Descriptors the process holds besides clients and Redis: standard
# streams, the log file, listening sockets, the event loop's own.
DESCRIPTOR_MARGIN = 32
# How long a draining server lets a kept-alive connection bring its next
# request before it closes it (see LimitedHTTPServer.drain).
DRAIN_GRACE_SECONDS = 1.0
# Errors that accept(2) reports for a connection already gone (Linux
# passes pending network errors on): try the next one.
_GONE = frozenset((errno.ECONNABORTED, errno.EPROTO, errno.ENETDOWN,
                   errno.ENOPROTOOPT, errno.EHOSTDOWN, errno.ENONET,
                   errno.EHOSTUNREACH, errno.EOPNOTSUPP, errno.ENETUNREACH))


def raise_descriptor_limit():
    """Raise the soft RLIMIT_NOFILE to the hard one; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as error:
            logger.warning("cannot raise the descriptor limit from %d to"
                           " %d: %s", soft, hard, error)
    return soft


def warn_if_descriptors_short(settings, limit):
    """A WARNING when `max_connections` clients, the Redis connections and
    the process's own descriptors may not fit in `limit`."""
    redis = settings.store.max_connections + settings.cache.max_connections
    needed = settings.server.max_connections + redis + DESCRIPTOR_MARGIN
    if limit != resource.RLIM_INFINITY and needed > limit:
        logger.warning(
            "descriptor limit %d < %d needed ([server] max_connections %d +"
            " Redis connections %d + %d for the process): past it accepts"
            " pause; raise the limit (ulimit -n) or lower max_connections",
            limit, needed, settings.server.max_connections, redis,
            DESCRIPTOR_MARGIN)


class ThrottledWarning:
    """A repeated event logged at WARNING at most once per `interval`,
    with the number of events since the last line."""

    def __init__(self, message, interval=LOG_INTERVAL_SECONDS,
                 clock=time.monotonic):
        self.message = message
        self.throttle = Throttle(interval, clock)

    def event(self, detail):
        count = self.throttle.event()
        if count:
            logger.warning("%s: %s (%d since the last such line)",
                           self.message, detail, count)


class Acceptor:
    """Accepts on listening `sockets` and hands each connection to
    `on_accept(connection, address)`, while `full()` is false.

    When full, or when accept() fails for want of descriptors, the sockets
    leave the IOLoop (the kernel keeps the clients waiting); `resume()`
    brings them back once a connection closed, a pause brings them back
    after `pause_seconds`.
    """

    def __init__(self, sockets, on_accept, full,
                 pause_seconds=ACCEPT_PAUSE_SECONDS):
        self.sockets = list(sockets)
        self.on_accept = on_accept
        self.full = full
        self.pause_seconds = pause_seconds
        self.refusals = ThrottledWarning(
            "cannot accept connections, pausing %gs at a time"
            % pause_seconds)
        self.io_loop = IOLoop.current()
        self.listening = False
        self.stopped = False
        self.pause_timer = None

    def resume(self):
        """Listen again, unless stopped, paused or still full."""
        if (self.listening or self.stopped or self.pause_timer
                or self.full()):
            return
        for sock in self.sockets:
            self.io_loop.add_handler(
                sock, functools.partial(self._accept, sock), IOLoop.READ)
        self.listening = True

    def stop(self):
        self.stopped = True
        self._mute()
        if self.pause_timer:
            self.io_loop.remove_timeout(self.pause_timer)
            self.pause_timer = None

    def _mute(self):
        if self.listening:
            for sock in self.sockets:
                self.io_loop.remove_handler(sock)
            self.listening = False

    def _accept(self, sock, fd, events):
        for _ in range(ACCEPTS_PER_TURN):
            if self.full():
                self._mute()
                return
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno in _GONE:
                    continue
                # EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything else: the
                # socket stays readable, so retrying now would spin.
                self.refusals.event(error)
                self._pause()
                return
            self.on_accept(connection, address)

    def _pause(self):
        self._mute()
        self.pause_timer = self.io_loop.call_later(self.pause_seconds,
                                                   self._end_pause)

    def _end_pause(self):
        self.pause_timer = None
        self.resume()


READS = ("read_until_regex", "read_until", "read_bytes", "read_into",
         "read_until_close")


class WriteTimeoutStream(IOStream):
    """An IOStream closed when what it was given to write is not all
    written (the client does not read) within `write_timeout` seconds.

    Once closed it reads nothing more, not even what is already buffered:
    Tornado would serve every request a client pipelined, though no
    answer can reach it any more.
    """

    def __init__(self, socket, write_timeout, stalls, **kwargs):
        super().__init__(socket, **kwargs)
        self.write_timeout = write_timeout
        self.stalls = stalls  # ThrottledWarning shared by the server
        self.write_timer = None

    def write(self, data):
        future = super().write(data)
        if not future.done():  # the kernel's buffer is full: wait, bounded
            if self.write_timer is None:
                self.write_timer = self.io_loop.call_later(
                    self.write_timeout, self._write_too_slow)
            future.add_done_callback(self._written)
        return future

    def _written(self, future):
        if not self.writing():
            self._stop_write_timer()

    def _write_too_slow(self):
        self.write_timer = None
        self.stalls.event("answer not read in %.1fs" % self.write_timeout)
        self.close()
        # Every public read of IOStream, whichever HTTP1Connection uses,
        # now fails at once (a closed stream would still hand out what it
        # has buffered); set here, so that no other read pays for it.
        for read in READS:
            setattr(self, read, self._refuse_to_read)

    def _refuse_to_read(self, *args, **kwargs):
        raise StreamClosedError(real_error=self.error)

    def _stop_write_timer(self):
        if self.write_timer is not None:
            self.io_loop.remove_timeout(self.write_timer)
            self.write_timer = None

    def close_fd(self):
        self._stop_write_timer()
        super().close_fd()

    def has_unread_bytes(self):
        """Whether the client sent bytes that wait in the kernel, not read
        yet (a request on its way in)."""
        try:
            return bool(self.socket.recv(
                1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except OSError:  # nothing there (EAGAIN), or a broken connection
            return False


class _RequestWatch(httputil.HTTPMessageDelegate):
    """Passes one request on to `delegate`, and tells `server` what a
    connection is doing: waiting for the request's headers (idle, see
    drain), then reading its body (bounded by the server's body_timeout).

    Public interfaces of Tornado 6.6.1 (HTTPServerConnectionDelegate's
    start_request returns an HTTPMessageDelegate; HTTPServer's xheaders
    wraps its delegate the same way); should that flow change,
    BodyTimeoutTest and DrainTest (functional) and test_drain fail.
    """

    def __init__(self, delegate, server, server_conn, request_conn):
        self.delegate = delegate
        self.server = server
        self.server_conn = server_conn
        self.request_conn = request_conn

    def headers_received(self, start_line, headers):
        self.server.idle.pop(self.server_conn, None)
        if "Content-Length" in headers or "Transfer-Encoding" in headers:
            self.server.bodies.wait(self)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk):
        return self.delegate.data_received(chunk)

    def finish(self):
        self.server.bodies.done(self)
        self.delegate.finish()

    def on_connection_close(self):
        self.server.bodies.done(self)
        self.delegate.on_connection_close()

    def late(self):  # the body did not come in time (see Deadlines)
        logger.warning("body not received in %.1fs; closing the connection",
                       self.server.bodies.timeout)
        self.request_conn.close()


class LimitedHTTPServer(HTTPServer):
    """Tornado's HTTPServer with `max_connections`, `write_timeout` and a
    graceful `drain` (plain HTTP only: no ssl_options).

    It accepts through `Acceptor`, not Tornado's accept loop (which spins
    and logs a traceback per turn when descriptors run out): `add_sockets`
    and `stop` are overridden, with the meaning TCPServer gives them.
    `body_timeout` means what it means to HTTPServer, on every path, but
    is kept by one sweep (Deadlines) instead of a timeout around every
    body read (11 % of the instructions of a cached score).
    """

    def initialize(self, *args, max_connections, write_timeout,
                   body_timeout=None, **kwargs):
        super().initialize(*args, **kwargs)
        if self.ssl_options is not None:
            raise ValueError("LimitedHTTPServer serves plain HTTP only")
        self.bodies = Deadlines(body_timeout)
        self.max_connections = max_connections
        self.write_timeout = write_timeout
        self.stalls = ThrottledWarning(
            "closed connections whose client did not read its answer")
        self.acceptors = []
        self.open_connections = 0
        # Connections waiting for the headers of their next request:
        # {HTTP1ServerConnection: its HTTP1Connection}.
        self.idle = {}
        self.closing_idle = False  # draining, and its grace is over

    def full(self):
        return self.open_connections >= self.max_connections

    def add_sockets(self, sockets):
        acceptor = Acceptor(sockets, self._accepted, self.full)
        self.acceptors.append(acceptor)
        acceptor.resume()

    def stop(self):
        for acceptor in self.acceptors:
            acceptor.stop()
            for sock in acceptor.sockets:
                sock.close()
        self.acceptors = []
        super().stop()

    def _accepted(self, connection, address):
        stream = WriteTimeoutStream(
            connection, self.write_timeout, self.stalls,
            max_buffer_size=self.max_buffer_size,
            read_chunk_size=self.read_chunk_size)
        self.handle_stream(stream, address)

    def handle_stream(self, stream, address):
        self.open_connections += 1
        super().handle_stream(stream, address)

    def start_request(self, server_conn, request_conn):
        if self.closing_idle:  # draining, its last answer is out
            _close_if_idle(request_conn)
        else:
            self.idle[server_conn] = request_conn
        return _RequestWatch(super().start_request(server_conn, request_conn),
                             self, server_conn, request_conn)

    def on_close(self, server_conn):
        super().on_close(server_conn)
        self.idle.pop(server_conn, None)
        self.open_connections -= 1
        for acceptor in self.acceptors:
            acceptor.resume()

    def drain(self, grace_seconds=DRAIN_GRACE_SECONDS):
        """Serve no next request on any connection: each answer from now on
        closes its connection (handlers say `Connection: close` while
        Traffic.draining), and a connection still waiting for a
        request after `grace_seconds` is closed then.

        The grace lets a kept-alive client that is about to send its next
        request have it answered, instead of finding its connection
        closed under it (HTTP's keep-alive race).
        """
        IOLoop.current().call_later(grace_seconds, self._close_idle)

    def _close_idle(self):
        self.closing_idle = True
        for request_conn in list(self.idle.values()):
            _close_if_idle(request_conn)
        self.idle.clear()


def _close_if_idle(request_conn):
    """Close the connection of `request_conn` (an HTTP1Connection waiting
    for headers) unless a request is already on its way in: that one is
    answered (with Connection: close, as the server drains)."""
    if not request_conn.stream.has_unread_bytes():
        request_conn.close()
