"""What the processes sharing the partners' quotas tell each other, in the
cache's Redis (docs/architecture.md, "Quotas").

Each process holds a share of every partner's quota (quotas.py), in
proportion to the calls it is asked to serve for that partner. To know
its share it publishes its own demand (calls a second, smoothed) and
reads the sum of everyone's: one hash per account, `quota:{<account>}`,
one field per process (`host:pid`) holding "<demand> <wall-clock second>".
The braces make the account a Redis Cluster hash tag: one slot per
account. One script call per account brings a process's field up to
date, deletes the fields nobody refreshed for `stale` seconds (processes
gone or idle) and answers the sum, all accounts in one pipelined round
trip (one per node in a cluster).

The keys have no TTL: the cache's Redis may run with `volatile-lru`,
which evicts only keys with a TTL (cached scores), so cache pressure never
evicts them. Their number is bounded all the same: a process that stops
serving a partner deletes its field, stale ones are deleted by the next
process that asks, and a hash without fields is no key at all.
"""
import hashlib
import os
import socket
import time

from scoring_api.errors import StoreUnavailable

KEY_PREFIX = b"quota:"
# Longer account names are keyed by their digest: a key stays small
# whatever a caller names.
LONGEST_KEY_NAME = 100
# A demand not refreshed for this long is a process gone: left out of the
# sum and deleted.
STALE_SECONDS = 1.0
# A field holding more than this is not ours: deleted like a stale one.
LARGEST_DEMAND = 1e12

# KEYS[1]: the account's hash; ARGV: now (wall-clock seconds), this
# process, its demand (calls a second; 0: none, its field goes), stale
# (seconds). A key of another type, or a field that does not read as
# "<demand> <second>", is data the service did not write: deleted, never
# an error. Answers the sum of the fresh demands, as a string (Redis would
# cut a Lua number to an integer).
DEMAND_SCRIPT = """
local now = tonumber(ARGV[1])
local stale = tonumber(ARGV[4])
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' and kind ~= 'none' then
  redis.call('DEL', KEYS[1])
end
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3] .. ' ' .. ARGV[1])
else
  redis.call('HDEL', KEYS[1], ARGV[2])
end
local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local demand, at = string.match(fields[i + 1], '^(%S+) (%S+)$')
  demand = tonumber(demand)
  at = tonumber(at)
  if demand and at and demand > 0 and demand < tonumber(ARGV[5])
      and now - at <= stale and at - now <= stale then
    total = total + demand
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
return tostring(total)
"""


def this_process():
    """The name of this process among all sharing the counters:
    `host:pid`, read at each call (a forked worker has its own pid)."""
    return "%s:%d" % (socket.gethostname(), os.getpid())


class QuotaCounters:
    """The demands of every process, through the cache's `RedisEndpoint`
    (its timeouts, retries and modes apply)."""

    def __init__(self, endpoint, clock=time.time, stale=STALE_SECONDS,
                 prefix=KEY_PREFIX):
        """`clock`: wall-clock seconds, the same on every machine (NTP):
        a demand is stale `stale` seconds after it was written."""
        self.endpoint = endpoint
        self.clock = clock
        self.stale = stale
        self.prefix = prefix

    def key(self, account):
        """The account's key: its name in braces (one cluster slot), or
        its digest when the name is long. Never fails, whatever the
        account's characters."""
        name = account.encode("utf-8", "surrogatepass")
        if len(name) > LONGEST_KEY_NAME:
            name = b"sha256:" + hashlib.sha256(name).hexdigest().encode()
        return self.prefix + b"{" + name + b"}"

    async def exchange(self, demands, process=None, retries=0):
        """Publish {account: this process's demand (calls a second, 0:
        none)}; returns {account: the sum of the fresh demands of every
        process, this one's included}.

        One round trip (one per node in a cluster). Raises
        `StoreUnavailable` when Redis fails; by default it is not retried:
        the next exchange, a moment later, is the retry.
        """
        if not demands:
            return {}
        accounts = list(demands)
        totals = await self.endpoint.run(
            "EVAL", self._exchange_all, accounts, demands,
            process or this_process(), self.clock(), retries=retries)
        if not isinstance(totals, list) or len(totals) != len(accounts):
            raise StoreUnavailable("%s answered %r to the quota script"
                                   % (self.endpoint.name, totals))
        return {account: float(total)
                for account, total in zip(accounts, totals)}

    async def _exchange_all(self, accounts, demands, process, now):
        pipeline = self.endpoint.client.pipeline(transaction=False)
        now = repr(float(now))
        stale = repr(float(self.stale))
        largest = repr(LARGEST_DEMAND)
        process = process.encode("utf-8", "surrogatepass")
        for account in accounts:
            pipeline.execute_command(
                "EVAL", DEMAND_SCRIPT, 1, self.key(account), now, process,
                repr(float(demands[account])), stale, largest)
        return await pipeline.execute()
