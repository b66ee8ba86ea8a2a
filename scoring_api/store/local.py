"""The in-process tier in front of the Redis cache."""
import collections
import time


class LocalCache:
    """An in-process LRU tier in front of the Redis cache.

    A hot score is answered without a network round trip. Entries live at
    most `ttl_seconds` (and never past the TTL they were given); size 0
    turns the tier off.
    """

    def __init__(self, size, ttl_seconds, clock=time.monotonic):
        self.size = size
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.entries = collections.OrderedDict()  # key: (expires_at, value)

    def get(self, key):
        entry = self.entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self.clock():
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return value

    def set(self, key, value, ttl_seconds=None):
        if not self.size:
            return
        ttl = self.ttl_seconds if ttl_seconds is None else min(
            ttl_seconds, self.ttl_seconds)
        self.entries[key] = (self.clock() + ttl, value)
        self.entries.move_to_end(key)
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
