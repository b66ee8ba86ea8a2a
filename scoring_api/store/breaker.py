"""The circuit breaker that keeps calls off a cache known to be down."""
import asyncio
import contextvars
import logging

logger = logging.getLogger(__name__)


class CircuitBreaker:
    """Keeps calls off a dependency known to be down, and notices its return.

    After `failure_threshold` failed calls in a row the circuit opens and
    `allows()` answers False at once. While it is open a background task
    probes every `reset_timeout` seconds; the first probe that succeeds
    closes it. No caller ever waits on a probe.
    """

    def __init__(self, name, probe, failure_threshold, reset_timeout):
        self.name = name
        self.probe = probe
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.failures = 0
        self.probing = None  # the probe task, while the circuit is open

    @property
    def is_open(self):
        return self.probing is not None

    def allows(self):
        return self.probing is None

    def record_success(self):
        self.failures = 0

    def record_failure(self):
        self.failures += 1
        if self.probing is None and self.failures >= self.failure_threshold:
            logger.warning("%s: circuit open after %d failed calls; probing"
                           " every %.1fs", self.name, self.failures,
                           self.reset_timeout)
            # A fresh context: the probe belongs to no request.
            self.probing = asyncio.get_running_loop().create_task(
                self._probe_until_up(), context=contextvars.Context())

    async def _probe_until_up(self):
        while True:
            await asyncio.sleep(self.reset_timeout)
            try:
                if await self.probe():
                    break
            except Exception:
                logger.exception("%s: the probe failed", self.name)
        self.failures = 0
        self.probing = None
        logger.warning("%s: circuit closed, calls resume", self.name)

    async def close(self):
        if self.probing is not None:
            self.probing.cancel()
            await asyncio.gather(self.probing, return_exceptions=True)
            self.probing = None
