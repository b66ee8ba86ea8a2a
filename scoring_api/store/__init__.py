"""The Redis store: interests that must be read, scores that may be
cached, in standalone, sentinel or cluster mode (docs/operations.md).

The rest of the service sees one `Store` (facade.py). Inside: building the
client of each mode (modes.py), one Redis role with its bounds and counted
retries (endpoint.py), the circuit breaker (breaker.py), the in-process
tier (local.py), the outage log (outages.py) and the start-up check that
the cache's Redis evicts only cached scores (eviction.py).
"""
from scoring_api.store.breaker import CircuitBreaker
from scoring_api.store.endpoint import (TRANSIENT_ERRORS, OtherType,
                                        RedisEndpoint)
from scoring_api.store.eviction import check_cache_eviction
from scoring_api.store.facade import Store
from scoring_api.store.local import LocalCache
from scoring_api.store.modes import describe
from scoring_api.store.outages import OutageLog

__all__ = ["CircuitBreaker", "LocalCache", "OtherType", "OutageLog",
           "RedisEndpoint", "Store", "TRANSIENT_ERRORS",
           "check_cache_eviction", "describe"]
