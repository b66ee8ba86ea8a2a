"""Per-partner quotas (docs/api.md, "Quotas"; docs/operations.md).

A partner (the `account` of an authenticated call) has a token bucket:
it holds `burst + 1` calls and refills at `rate` calls a second, so a
partner may send `burst + 1` calls at once, then `rate` a second. `rate`
0 means no limit. `[limits.accounts]` overrides both for one account.
Every admitted call takes one call from the bucket; a refused one takes
nothing. With `enforce` off (shadow mode) nothing is refused: the calls
that would have been are counted and reported, and spend nothing, as
refused ones would not.

One quota across processes and machines, and `admit` never waits on
Redis: each process holds a share of every partner's bucket (its rate
and its capacity times the share) and decides alone. The shares follow
the calls: every `sync_interval` seconds each process publishes how many
calls a second it is asked for each partner it serves and reads the sum
of all processes' (store/counters.py); its share is its part of that sum
(SHARE_HEADROOM more, so that the processes together never give less
than the rate; one process alone has all of it). A process that meets a
partner it does not know starts with 1/workers of its bucket, so that
processes meeting a partner at once cannot each give it a whole burst.
When the counters fail, every process holds 1/workers of every quota
(the local share), says so once, and says so again once they answer.
Together, for a partner sending at twice its rate or more through two
processes, they admit between 0.9 x 10 x rate and 1.1 x (10 x rate +
burst) calls in any 10 s (tests/unit/test_quotas.py, SharedQuotaTest).

Header fields: draft-ietf-httpapi-ratelimit-headers-11 (the RateLimit-
Policy and RateLimit fields of the -08 to -11 drafts). One policy,
"default": `RateLimit-Policy: "default";q=<burst + 1>;w=<seconds an empty
bucket takes to refill, (burst + 1) / rate rounded up>`, a promise that
holds: a client that sends at most q calls in any w seconds is never
refused (with one worker; with several, each holds its share of the
burst). `RateLimit: "default";r=<calls it may send now>;t=<seconds until
the bucket is full again>`, of the share of the process that answers. A
refusal adds `Retry-After`: whole seconds (at least 1) until one call
would be admitted.
"""
import asyncio
import logging
import math
import time

from scoring_api.errors import Overloaded, StoreUnavailable
from scoring_api.store.counters import STALE_SECONDS, this_process
from scoring_api.throttle import LOG_INTERVAL_SECONDS

logger = logging.getLogger(__name__)

DRAFT = "draft-ietf-httpapi-ratelimit-headers-11"
POLICY_NAME = "default"
POLICY_FIELD = "RateLimit-Policy"
LIMIT_FIELD = "RateLimit"
# How often the shares are brought up to date, and, while the counters
# fail, how often they are tried again.
SYNC_INTERVAL_SECONDS = 0.2
PROBE_INTERVAL_SECONDS = 1.0
# A process's demand is the calls a second it is asked for, smoothed over
# about this long.
DEMAND_SMOOTHING_SECONDS = 0.5
# Each process takes this much more than its part of the demand: shares
# read at different moments may add up to a little less than one.
SHARE_HEADROOM = 1.05
# The least share a process keeps of a partner others serve: a call that
# comes to it is not refused for want of a refill.
SHARE_FLOOR = 0.02
# An account unused this long, its bucket full again, is forgotten.
IDLE_SECONDS = 60.0
# The most accounts a process keeps; past it the longest idle go first.
MAX_ACCOUNTS = 10000
EVICTED_SHARE = 0.1
# A partner refused within this long is over its quota: its next refusal
# is held (see Decision.hold) and its admitted calls are shed first.
OVER_QUOTA_SECONDS = 1.0
# The longest a refusal is held.
HOLD_MAX_SECONDS = 5.0
# A level this close under a whole call is one (float sums of refills).
EPSILON = 1e-6
# Partner label of every account without an override.
OTHER_PARTNER = "other"


class Policy:
    """One quota: `rate` calls a second and `burst` calls above it at
    once; what its RateLimit-Policy field says."""

    __slots__ = ("rate", "burst", "capacity", "window", "field")

    def __init__(self, rate, burst):
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError("a quota's rate must be a number over 0,"
                             " not %r" % (rate,))
        if burst < 0 or not float(burst).is_integer():
            raise ValueError("a quota's burst must be a whole number >= 0,"
                             " not %r" % (burst,))
        self.rate = float(rate)
        self.burst = int(burst)
        self.capacity = self.burst + 1
        # At least 1: the capacity is.
        self.window = math.ceil(self.capacity / self.rate)
        self.field = '"%s";q=%d;w=%d' % (POLICY_NAME, self.capacity,
                                         self.window)


class Decision:
    """What `Quotas.admit` decided for one call, and what its answer says.

    `admitted`: serve it. `over_quota`: the quota did not allow it
    (refused, or in shadow mode served all the same). `partner_over`:
    the partner is over its quota (refused within the last second): its
    calls are shed first. `hold`: seconds to hold the 429 before sending
    it, for a partner that keeps calling while refused. `partner`: the
    metrics label (the account when it has an override, else "other").
    """

    __slots__ = ("admitted", "over_quota", "partner_over", "policy",
                 "level", "rate", "capacity", "wait", "hold", "partner")

    def __init__(self, admitted, over_quota, partner_over, policy, level,
                 rate, capacity, wait=0.0, hold=0.0, partner=None):
        self.admitted = admitted
        self.over_quota = over_quota
        self.partner_over = partner_over
        self.policy = policy
        self.level = level  # calls available after this one
        self.rate = rate  # of the bucket (this process's share)
        self.capacity = capacity
        self.wait = wait  # seconds until a call would be admitted
        self.hold = hold
        self.partner = partner

    @property
    def counted(self):
        """False when no quota applies: the answer has no quota fields."""
        return self.policy is not None

    # The RateLimit field's values, of a counted decision: its bucket is
    # never below 0, nor full after a call or a refusal.

    @property
    def remaining(self):
        """Calls that may be sent now (the RateLimit field's r)."""
        return int(self.level + EPSILON)

    @property
    def reset(self):
        """Seconds until the bucket is full again (its t)."""
        return math.ceil((self.capacity - self.level) / self.rate)

    @property
    def retry_after(self):
        """Whole seconds, at least 1, until a call would be admitted."""
        return max(1, math.ceil(self.wait))

    def retry_after_held(self, held):
        """Retry-After of a refusal sent after holding it `held`
        seconds."""
        return max(1, math.ceil(self.wait - held))


UNLIMITED = Decision(True, False, False, None, math.inf, 0.0, math.inf)


def header_fields(decision):
    """[(name, value)] of the quota fields of an answer to `decision`'s
    call; none when no quota applies. (Retry-After is the refusal's own:
    `decision.retry_after`.)"""
    if decision.policy is None:
        return []
    return [(POLICY_FIELD, decision.policy.field),
            (LIMIT_FIELD, '"%s";r=%d;t=%d' % (
                POLICY_NAME, decision.remaining, decision.reset))]


class _Bucket:
    """This process's share of one account's bucket."""

    __slots__ = ("policy", "partner", "share", "rate", "capacity",
                 "level", "stamp", "used", "asked", "demand",
                 "measured_at", "published", "refused_at")

    def __init__(self, policy, partner, share, now):
        self.policy = policy
        self.partner = partner
        self.set_share(share)
        self.level = self.capacity  # calls available at `stamp`
        self.stamp = now
        self.used = now  # the last call
        self.asked = 0  # calls since the last measure of the demand
        self.demand = 0.0  # calls a second, smoothed
        self.measured_at = now
        self.published = False  # this demand is in the counters
        self.refused_at = -math.inf

    def set_share(self, share):
        self.share = share
        self.rate = self.policy.rate * share
        # A call is a whole call: never less than one at once.
        self.capacity = max(1.0, self.policy.capacity * share)

    def settle(self, now):
        """The level at `now` (refilled up to the capacity)."""
        level = self.level + (now - self.stamp) * self.rate
        if level > self.capacity:
            level = self.capacity
        self.level = level
        self.stamp = now
        return level

    def reshare(self, share, now):
        """Hold `share` of the bucket from `now`: what it held stays (a
        larger share fills up at its rate, never at once)."""
        self.settle(now)
        self.set_share(share)
        self.level = min(self.level, self.capacity)

    def measure(self, now):
        """The demand (calls asked a second, smoothed) at `now`."""
        elapsed = now - self.measured_at
        if elapsed > 0:
            weight = math.exp(-elapsed / DEMAND_SMOOTHING_SECONDS)
            self.demand = (self.demand * weight
                           + self.asked / elapsed * (1 - weight))
            self.asked = 0
            self.measured_at = now
        return self.demand


class Quotas:
    """Every partner's quota in this process: `admit` per call, `sync`
    in the background (`start`/`stop`)."""

    def __init__(self, rate, burst, enforce=True, accounts=None, workers=1,
                 counters=None, clock=time.monotonic, process=None,
                 sync_interval=SYNC_INTERVAL_SECONDS,
                 probe_interval=PROBE_INTERVAL_SECONDS,
                 idle_seconds=IDLE_SECONDS, max_accounts=MAX_ACCOUNTS,
                 log_interval=LOG_INTERVAL_SECONDS):
        """`rate`, `burst`: every partner's quota (rate 0: none);
        `accounts`: {account: (rate, burst or None)} overrides, a None
        burst meaning `burst`; `workers`: the processes sharing the
        quota; `counters`: a store.counters.QuotaCounters (None: this
        process holds 1/workers of every quota); `process`: this
        process's name in the counters (default host:pid)."""
        if workers < 1 or not float(workers).is_integer():
            raise ValueError("workers must be a whole number >= 1, not %r"
                             % (workers,))
        self.enforce = enforce
        self.workers = int(workers)
        self.local_share = 1.0 / self.workers
        self.default = Policy(rate, burst) if rate else None
        self.overrides = {
            account: (Policy(own_rate, burst if own_burst is None
                             else own_burst) if own_rate else None)
            for account, (own_rate, own_burst) in (accounts or {}).items()}
        self.counters = counters
        self.clock = clock
        self.process = process
        self.sync_interval = sync_interval
        self.probe_interval = probe_interval
        self.idle_seconds = idle_seconds
        self.max_accounts = max_accounts
        self.buckets = {}
        # False while the counters fail: every process holds its local
        # share.
        self.shared = counters is not None
        self.next_probe = -math.inf
        self.log_interval = log_interval
        self.last_refusal_report = -math.inf
        self.refused_by_partner = {}  # since the last report
        self.over_at = -math.inf  # the last call of a partner over quota
        self.task = None

    def someone_over(self):
        """True while some partner is over its quota (one called while
        over it within OVER_QUOTA_SECONDS)."""
        return self.clock() - self.over_at < OVER_QUOTA_SECONDS

    def policy_of(self, account):
        """The quota of `account`, or None when it has no limit."""
        if account in self.overrides:
            return self.overrides[account]
        return self.default

    def partner_label(self, account):
        """The metrics label of `account`: its name when it has an
        override, else "other" (a bounded label set whatever callers
        name)."""
        return account if account in self.overrides else OTHER_PARTNER

    @property
    def limited(self):
        """True when some account has a quota."""
        return self.default is not None or any(self.overrides.values())

    def admit(self, account):
        """Decide one call of `account` (after authentication): a
        `Decision`. Cheap, synchronous, never waits on Redis."""
        bucket = self.buckets.get(account)
        now = self.clock()
        if bucket is None:
            policy = self.policy_of(account)
            if policy is None:
                return UNLIMITED
            bucket = self._new_bucket(account, policy, now)
        bucket.asked += 1
        bucket.used = now
        level = bucket.level + (now - bucket.stamp) * bucket.rate
        if level > bucket.capacity:
            level = bucket.capacity
        bucket.stamp = now
        # Over its quota: refused lately, or asking more than its rate
        # (its calls shed, not refused, spend nothing until they are).
        partner_over = (now - bucket.refused_at < OVER_QUOTA_SECONDS
                        or bucket.demand > bucket.rate)
        if partner_over:
            self.over_at = now
        if level >= 1 - EPSILON:
            bucket.level = level = level - 1
            return Decision(True, False, partner_over, bucket.policy,
                            level, bucket.rate, bucket.capacity,
                            partner=bucket.partner)
        bucket.level = level
        wait = (1 - level) / bucket.rate
        # A partner refused again within the second: its answers wait
        # (at least a second, at most HOLD_MAX_SECONDS), so a client
        # that calls again at once costs a refusal a second per
        # connection, not one per round trip.
        hold = (min(max(wait, 1.0), HOLD_MAX_SECONDS)
                if self.enforce and partner_over else 0.0)
        bucket.refused_at = self.over_at = now
        self._count_refusal(bucket.partner, now)
        return Decision(not self.enforce, True, True, bucket.policy, level,
                        bucket.rate, bucket.capacity, wait, hold,
                        bucket.partner)

    def refund(self, account, decision):
        """Give back the call `decision` (of `account`) took: it was shed
        before doing any work. Not to a partner over its quota: its
        excess is what is cut first, and its calls shed must drain its
        bucket, or it would never be refused (nor its refusals held)."""
        bucket = self.buckets.get(account)
        if bucket is not None and decision.admitted \
                and not decision.partner_over:
            bucket.level = min(bucket.capacity, bucket.level + 1)

    def _new_bucket(self, account, policy, now):
        if len(self.buckets) >= self.max_accounts:
            self._evict()
        # Until the counters tell its share, a process holds 1/workers:
        # processes that meet a partner at once cannot each give it a
        # whole burst.
        bucket = _Bucket(policy, self.partner_label(account),
                         self.local_share, now)
        self.buckets[account] = bucket
        return bucket

    def _evict(self):
        by_use = sorted(self.buckets, key=lambda key: self.buckets[key].used)
        for account in by_use[:max(1, int(len(by_use) * EVICTED_SHARE))]:
            del self.buckets[account]

    def _count_refusal(self, partner, now):
        self.refused_by_partner[partner] = (
            self.refused_by_partner.get(partner, 0) + 1)
        if now - self.last_refusal_report >= self.log_interval:
            self._report_refusals(now)

    def _report_refusals(self, now):
        """One line for the refusals since the last one, by partner."""
        if not self.refused_by_partner:
            return
        count = sum(self.refused_by_partner.values())
        by_partner = ", ".join(
            "%s %d" % item for item in sorted(self.refused_by_partner.items()))
        self.refused_by_partner = {}
        self.last_refusal_report = now
        logger.warning("quotas: %d calls %s since the last report (%s)",
                       count, "refused over quota" if self.enforce else
                       "over quota, served in shadow mode", by_partner)

    async def sync(self):
        """Measure each partner's demand here, exchange the demands with
        the other processes and take this process's shares (or, while
        the counters fail, the local share); forget idle partners."""
        now = self.clock()
        if now - self.last_refusal_report >= self.log_interval:
            self._report_refusals(now)
        demands = {}
        for account, bucket in self.buckets.items():
            demand = bucket.measure(now)
            if now - bucket.used > STALE_SECONDS:
                demand = 0.0  # not asked lately: its field goes
            if demand > 0 or bucket.published:
                demands[account] = demand
        self._forget_idle(now)
        if self.counters is None or not demands:
            return
        if not self.shared and now < self.next_probe:
            return
        try:
            totals = await self.counters.exchange(
                demands, self.process or this_process())
        except Overloaded:
            return  # this process was late, not Redis: the next sync
        except Exception as error:
            self._counters_failed(error)
            return
        now = self.clock()
        for account, total in totals.items():
            bucket = self.buckets.get(account)
            if bucket is None:
                continue  # forgotten meanwhile
            mine = demands[account]
            bucket.published = mine > 0
            if mine > 0:
                share = SHARE_HEADROOM * mine / max(total, mine)
                bucket.reshare(min(1.0, max(SHARE_FLOOR, share)), now)
            # else: not asked lately; it keeps its share until it is.
        if not self.shared:
            self.shared = True
            logger.warning("quotas: the shared counters answer again: the"
                           " processes share every quota by demand again")

    def _counters_failed(self, error):
        now = self.clock()
        self.next_probe = now + self.probe_interval
        if not self.shared:
            return
        self.shared = False
        for bucket in self.buckets.values():
            bucket.reshare(self.local_share, now)
        logger.warning(
            "quotas: the shared counters failed (%s): each process holds"
            " 1/%d of every quota until they answer", error, self.workers,
            exc_info=not isinstance(error, StoreUnavailable))

    def _forget_idle(self, now):
        idle = [account for account, bucket in self.buckets.items()
                if now - bucket.used >= self.idle_seconds
                and not (bucket.published and self.shared)
                and bucket.settle(now) >= bucket.capacity]
        for account in idle:
            del self.buckets[account]

    def start(self):
        """Sync in the background until `stop`."""
        if self.task is None:
            self.task = asyncio.ensure_future(self._run())

    async def stop(self):
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None

    async def _run(self):
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.sync()
            except Exception:  # never let the loop die
                logger.exception("quotas: sync failed")
