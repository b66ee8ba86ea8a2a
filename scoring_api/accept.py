"""Accepting client connections (docs/operations.md, "Limits" and
"Signals"): the service's own accept loop, the descriptor limit, and the
way a listening socket is closed without resetting a queued client.
"""
import ctypes
import errno
import functools
import logging
import resource
import socket
import sys

from tornado.ioloop import IOLoop

from scoring_api.throttle import Throttle

logger = logging.getLogger(__name__)

# How long accepting stops after accept() failed for want of descriptors
# (or memory): long enough not to spin, short enough to serve again soon.
ACCEPT_PAUSE_SECONDS = 0.5
# Connections taken in one loop turn, as Tornado does (its listen backlog).
ACCEPTS_PER_TURN = 128
# Descriptors the process holds besides clients and Redis: standard
# streams, the log file, listening sockets, the event loop's own.
DESCRIPTOR_MARGIN = 32
# Errors that accept(2) reports for a connection already gone (Linux
# passes pending network errors on): try the next one.
_GONE = frozenset((errno.ECONNABORTED, errno.EPROTO, errno.ENETDOWN,
                   errno.ENOPROTOOPT, errno.EHOSTDOWN, errno.ENONET,
                   errno.EHOSTUNREACH, errno.EOPNOTSUPP, errno.ENETUNREACH))
# <asm-generic/socket.h>; Python's socket module does not name it.
SO_ATTACH_FILTER = 26


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


class _SockFilter(ctypes.Structure):  # struct sock_filter, <linux/filter.h>
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):  # struct sock_fprog
    _fields_ = [("len", ctypes.c_ushort),
                ("filter", ctypes.POINTER(_SockFilter))]


_BPF_RET_K = 0x06  # BPF_RET | BPF_K: "return k": keep k bytes, 0 = drop
_DROP_ALL = (_SockFilter * 1)(_SockFilter(_BPF_RET_K, 0, 0, 0))
_DROP_ALL_PROGRAM = bytes(_SockFprog(1, _DROP_ALL))


def stop_handshakes(sock):
    """Make the kernel complete no more connections on listening `sock`;
    True when it could (Linux), False elsewhere.

    A classic BPF program that drops every packet, attached with
    SO_ATTACH_FILTER: a new client's SYN (and the last ACK of a handshake
    not yet complete) is dropped, so its kernel sends it again a second
    later, to a listener still open on the port (SO_REUSEPORT) or to a
    closed port (refused). Connections already complete stay in the
    accept queue and keep no filter. Closing a listener with clients in
    its queue would reset them (checked on Linux 6.18: filtered, 0 of 20
    new clients queued, each connected 1.0 s later to another listener).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                        _DROP_ALL_PROGRAM)
    except OSError as error:
        logger.warning("cannot stop new connections on %s before closing"
                       " it: %s", sock.getsockname(), error)
        return False
    return True


class Acceptor:
    """Accepts on listening `sockets` and hands each connection to
    `on_accept(connection, address)` while `can_admit()` is true.

    The service's own accept loop, not Tornado's
    (`tornado.netutil.add_accept_handler`, re-implemented here from
    Tornado 6.6.1; AcceptHandlerCanaryTest fails when it changes): on
    EMFILE Tornado's loop retries at once, the socket staying readable,
    and logs a traceback per turn; measured at `ulimit -n 256` with 400
    idle connections: 100 % CPU and 17 MB of log in 5 s. Here accept()
    failing for want of descriptors (or memory) takes the sockets out of
    the IOLoop for `pause_seconds`, logged once per interval with a
    count. When `can_admit()` is false they leave the IOLoop too (the
    kernel keeps the clients waiting) until `resume()`.
    """

    def __init__(self, sockets, on_accept, can_admit,
                 pause_seconds=ACCEPT_PAUSE_SECONDS):
        self.sockets = list(sockets)
        self.on_accept = on_accept
        self.can_admit = can_admit
        self.pause_seconds = pause_seconds
        self.refusals = Throttle()
        self.io_loop = IOLoop.current()
        self.listening = False
        self.stopped = False
        self.pause_timer = None

    def resume(self):
        """Listen again, unless stopped, paused or unable to admit."""
        if (self.listening or self.stopped or self.pause_timer
                or not self.can_admit()):
            return
        for sock in self.sockets:
            self.io_loop.add_handler(
                sock, functools.partial(self._accept, sock), IOLoop.READ)
        self.listening = True

    def stop(self):
        """Accept nothing more (the sockets stay open)."""
        self.stopped = True
        self._mute()
        if self.pause_timer:
            self.io_loop.remove_timeout(self.pause_timer)
            self.pause_timer = None

    def stop_handshakes(self):
        """No new connection is completed on any socket (see
        `stop_handshakes`); True when the kernel could do it."""
        return all([stop_handshakes(sock) for sock in self.sockets])

    def accept_queued(self):
        """Take every connection the kernel has completed, whatever
        `can_admit()` says: the last turn before the sockets close."""
        for sock in self.sockets:
            while self._accept_one(sock):
                pass

    def close(self):
        self.stop()
        for sock in self.sockets:
            sock.close()

    def _mute(self):
        if self.listening:
            for sock in self.sockets:
                self.io_loop.remove_handler(sock)
            self.listening = False

    def _accept(self, sock, fd, events):
        for _ in range(ACCEPTS_PER_TURN):
            if not self.can_admit():
                self._mute()
                return
            if not self._accept_one(sock):
                return

    def _accept_one(self, sock):
        """Accept one connection from `sock`; False when there is none to
        take now."""
        while True:
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return False
            except OSError as error:
                if error.errno in _GONE:
                    continue
                # EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything else: the
                # socket stays readable, so retrying now would spin.
                count = self.refusals.event()
                if count:
                    logger.warning(
                        "cannot accept connections, pausing %gs at a time:"
                        " %s (%d since the last such line)",
                        self.pause_seconds, error, count)
                self._pause()
                return False
            self.on_accept(connection, address)
            return True

    def _pause(self):
        self._mute()
        if self.pause_timer is None and not self.stopped:
            self.pause_timer = self.io_loop.call_later(self.pause_seconds,
                                                       self._end_pause)

    def _end_pause(self):
        self.pause_timer = None
        self.resume()
