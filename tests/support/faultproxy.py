"""A fault layer between the service and Redis, like Toxiproxy: a TCP proxy
on a free loopback port that the tests drive.

    proxy = FaultProxy(6379)      # forwards 127.0.0.1:<proxy.port> to it
    proxy.latency = 0.2           # seconds added to each direction
    proxy.stalled = True          # bytes are read and dropped both ways
    proxy.cut()                   # closes every connection now
    proxy.close()                 # in tearDown

It runs its own event loop in a daemon thread, so it serves whatever loop
(or process) the service runs in, and never outlives the interpreter.
Each connection counts its round trips: the times the client sent after
having been answered (pipelined writes are one).
"""
import asyncio
import threading

CHUNK_BYTES = 65536
START_TIMEOUT_SECONDS = 5.0


class Link:
    """One client connection and its upstream one."""

    def __init__(self):
        self.round_trips = 0
        self.answered = True  # nothing asked yet: the next send is a trip
        self.writers = []

    def sent(self):
        if self.answered:
            self.round_trips += 1
            self.answered = False

    def received(self):
        self.answered = True

    def close(self):
        for writer in self.writers:
            writer.close()


class FaultProxy:
    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.latency = 0.0
        self.stalled = False
        self.links = []  # every connection since the start, in order
        self.loop = asyncio.new_event_loop()
        self.server = None
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(ready,), name="fault-proxy", daemon=True)
        self.thread.start()
        if not ready.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError("the fault proxy did not start")
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = "redis://127.0.0.1:%d/0" % self.port

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0))
        ready.set()
        self.loop.run_forever()
        self.loop.close()

    def round_trips(self):
        """Round trips of each connection so far, in order."""
        return [link.round_trips for link in self.links]

    def cut(self):
        """Close every open connection, both sides (new ones are taken)."""
        self._in_loop(self._cut)

    def close(self):
        """Stop serving, close every connection and end the thread."""
        if not self.thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(
            START_TIMEOUT_SECONDS)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(START_TIMEOUT_SECONDS)

    def _in_loop(self, function):
        async def run():
            function()
        asyncio.run_coroutine_threadsafe(run(), self.loop).result(
            START_TIMEOUT_SECONDS)

    def _cut(self):
        for link in self.links:
            link.close()

    async def _stop(self):
        self.server.close()
        self._cut()
        tasks = [task for task in asyncio.all_tasks()
                 if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, client_reader, client_writer):
        link = Link()
        self.links.append(link)
        link.writers.append(client_writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                *self.upstream)
            link.writers.append(upstream_writer)
            await asyncio.gather(
                self._pump(client_reader, upstream_writer, link.sent),
                self._pump(upstream_reader, client_writer, link.received))
        except (OSError, asyncio.CancelledError):
            pass  # refused upstream, or the proxy stopping
        finally:
            link.close()

    async def _pump(self, reader, writer, seen):
        """Forward reader to writer, each chunk (and the end) `latency`
        late, in order."""
        due = asyncio.Queue()
        delivering = asyncio.ensure_future(self._deliver(due, writer))
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                if data and self.stalled:
                    continue
                await due.put((self.loop.time() + self.latency, data))
                if not data:
                    break
                seen()
        except OSError:
            await due.put((self.loop.time() + self.latency, b""))
        finally:
            await delivering

    async def _deliver(self, due, writer):
        try:
            while True:
                at, data = await due.get()
                await asyncio.sleep(max(0.0, at - self.loop.time()))
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
