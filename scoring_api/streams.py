"""The stream of one client connection (docs/operations.md, "Slow
clients"): a write timeout, and notices the server keeps its connection
rules with (the first byte of a request, the close)."""
import logging
import socket

from tornado.iostream import IOStream

logger = logging.getLogger(__name__)


class ClientStream(IOStream):
    """An IOStream that is closed when what it was given to write is not
    all written (the client does not read) within `write_timeout`
    seconds; Tornado has no write timeout.

    It calls `on_first_byte(stream)` when the first byte arrives after
    `watch_for_first_byte()`, and `on_close(stream)` when its socket is
    closed. `stalls` is a Throttle shared by the server: a client that
    does not read is logged at most once per interval, with a count.

    Overrides, read from Tornado 6.6.1 (StreamCanaryTest fails when they
    change): `write` (public), and the subclass hooks `read_from_fd` and
    `close_fd` that BaseIOStream documents for subclasses.
    """

    def __init__(self, connection, write_timeout, stalls, on_first_byte,
                 on_close, **kwargs):
        super().__init__(connection, **kwargs)
        self.connection = connection
        self.write_timeout = write_timeout
        self.stalls = stalls
        self.on_first_byte = on_first_byte
        self.on_close = on_close
        self.write_timer = None
        self.awaiting_first_byte = False

    def watch_for_first_byte(self):
        self.awaiting_first_byte = True

    # Overrides IOStream.read_from_fd (Tornado 6.6.1; StreamCanaryTest).
    def read_from_fd(self, buf):
        count = super().read_from_fd(buf)
        if count and self.awaiting_first_byte:
            self.awaiting_first_byte = False
            self.on_first_byte(self)
        return count

    # Overrides BaseIOStream.write (Tornado 6.6.1; StreamCanaryTest).
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
        count = self.stalls.event()
        if count:
            logger.warning(
                "closed connections whose client did not read its answer:"
                " answer not read in %.1fs (%d since the last such line)",
                self.write_timeout, count)
        self.close()

    def _stop_write_timer(self):
        if self.write_timer is not None:
            self.io_loop.remove_timeout(self.write_timer)
            self.write_timer = None

    # Overrides IOStream.close_fd (Tornado 6.6.1; StreamCanaryTest).
    def close_fd(self):
        self._stop_write_timer()
        super().close_fd()
        self.on_close(self)

    def has_unread_bytes(self):
        """Whether the client sent bytes that wait in the kernel, not read
        yet (a request on its way in)."""
        if self.closed():
            return False
        try:
            return bool(self.connection.recv(
                1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except OSError:  # nothing there (EAGAIN), or a broken connection
            return False
