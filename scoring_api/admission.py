"""Which authenticated calls are served (docs/api.md, "Quotas";
docs/operations.md, "Overload"): the partner's quota first, then the
process's load, before the call does any work.

`methods.method_handler` asks `admit` once a call is authenticated and
calls `finished` when it is answered; the handler reads what was decided
(`ctx["quota"]`, `ctx["shed"]`) to add the quota header fields and
`Retry-After`, and awaits `delay` before a refusal. Nothing here knows
HTTP.
"""
import logging

from scoring_api import metrics
from scoring_api.errors import ApiError, Overloaded
from scoring_api.overload import LoopLag, Overload
from scoring_api.quotas import Quotas
from scoring_api.throttle import Throttle

logger = logging.getLogger(__name__)

RATE_LIMITED = "rate limit exceeded"
STORE_OVERLOADED = "store_overloaded"
QUOTA = "quota"


class RateLimited(ApiError):
    """Over the partner's quota: 429, with Retry-After."""

    code = 429

    def __init__(self):
        super().__init__(RATE_LIMITED)


class Admission:
    """The quotas and the shedding of one process."""

    def __init__(self, quotas, overload):
        """`quotas`: a quotas.Quotas; `overload`: an overload.Overload."""
        self.quotas = quotas
        self.overload = overload
        self.shed_log = Throttle()
        self.shed_since_report = {}

    @classmethod
    def from_settings(cls, settings, lag=None, counters=None):
        """Quotas of [limits] (shared through `counters`, a
        store.counters.QuotaCounters, when given) and shedding of
        [overload] on the loop's `lag` (a LoopLag; a new one, not
        started, when not given: only calls in flight shed then)."""
        limits, overload = settings.limits, settings.overload
        quotas = Quotas(limits.rate, limits.burst, limits.enforce,
                        limits.overrides(), settings.server.workers,
                        counters)
        if lag is None:
            lag = LoopLag(starved_lag=overload.starved_lag)
        return cls(quotas, Overload(
            lag, shed_lag=overload.shed_lag, budget=overload.budget,
            min_in_flight=overload.min_in_flight,
            max_held=overload.max_held))

    def admit(self, account, ctx):
        """Decide one authenticated call of `account`: returns when it is
        served (then `finished` must follow), raises `RateLimited` (429)
        over quota, `Overloaded` (503) when shed. Sets `ctx["quota"]`
        (the quotas.Decision) and, when shed, `ctx["shed"]` (why)."""
        decision = self.quotas.admit(account)
        ctx["quota"] = decision
        if decision.over_quota:
            metrics.call_over_quota(decision.partner, self.quotas.enforce)
            if not decision.admitted:
                metrics.call_refused(QUOTA, decision.partner)
                raise RateLimited()
        reason = self.overload.admit(decision.partner_over,
                                     self.quotas.someone_over)
        if reason is not None:
            self._shed(account, ctx, reason)
            raise Overloaded()
        ctx["account"] = account

    def finished(self, ctx):
        """The call `admit` let through is answered."""
        if "account" in ctx:
            self.overload.finished(ctx["quota"].partner_over)

    def store_overloaded(self, ctx):
        """The served call failed with `Overloaded` from the store: the
        process was too late, the partner is not charged."""
        if "account" in ctx:
            self._shed(ctx["account"], ctx, STORE_OVERLOADED)

    def _shed(self, account, ctx, reason):
        decision = ctx["quota"]
        self.quotas.refund(account, decision)
        ctx["shed"] = reason
        metrics.call_refused(reason, decision.partner
                             or self.quotas.partner_label(account))
        self.shed_since_report[reason] = (
            self.shed_since_report.get(reason, 0) + 1)
        if self.shed_log.event():
            by_reason = ", ".join("%s %d" % item for item in sorted(
                self.shed_since_report.items()))
            logger.warning("overload: %d calls shed since the last report"
                           " (%s)", sum(self.shed_since_report.values()),
                           by_reason)
            self.shed_since_report = {}

    async def delay(self, ctx):
        """(Retry-After in whole seconds, close the connection?) of a
        refused or shed call, once its answer may go: a refusal of a
        partner that keeps calling is held first (at most `max_held` at
        once; past it, answered at once and its connection closed)."""
        if "shed" in ctx:
            return self.overload.retry_after(), False
        decision = ctx["quota"]
        held = await self.overload.hold(decision)
        if held is None:
            return decision.retry_after, True
        return decision.retry_after_held(held), False

    def start(self):
        """Measure the loop's lag and sync the quotas, on the running
        loop, until `stop`."""
        self.overload.lag.start()
        self.quotas.start()
        metrics.watch_loop_lag(lambda: self.overload.lag.lag)

    async def stop(self):
        self.overload.release_holds()
        self.overload.lag.stop()
        await self.quotas.stop()
