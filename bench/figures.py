"""The arithmetic of the wall-clock bench: a row's figures over its
rounds, ratios of CPU time a call taken round by round, and the targets.

A round holds one run of every row, so a ratio of two rows in the same
round compares them under the same conditions; a row's figure is the
median over the rounds, its spread their min..max.
"""
import collections
import statistics


def row_figures(rounds):
    """Medians over `rounds` (each {"rps", "p99_ms", "cpu_us", "user_us",
    "system_us", ...}) and the min..max of the CPU time a call."""
    cpu = [each["cpu_us"] for each in rounds]
    return {
        "rps": statistics.median(each["rps"] for each in rounds),
        "p50_ms": statistics.median(each["p50_ms"] for each in rounds),
        "p99_ms": statistics.median(each["p99_ms"] for each in rounds),
        "cpu_us": statistics.median(cpu),
        "user_us": statistics.median(each["user_us"] for each in rounds),
        "system_us": statistics.median(each["system_us"] for each in rounds),
        "cpu_us_min": min(cpu),
        "cpu_us_max": max(cpu),
    }


def ratio(mine, theirs):
    """{"median", "min", "max", "rounds"} of the CPU time a call of the
    rounds `mine` over `theirs`, round by round."""
    values = [a["cpu_us"] / b["cpu_us"] for a, b in zip(mine, theirs)]
    return {"median": statistics.median(values), "min": min(values),
            "max": max(values), "rounds": values}


class Target(collections.namedtuple("Target", "row reference at_most")):
    """The CPU time a call of `row` at most `at_most` times `reference`'s,
    in the same rounds (the median of the per-round ratios)."""

    def __str__(self):
        if self.at_most == 1:
            return "%s no dearer than %s" % (self.row, self.reference)
        return "%s <= %.2fx %s" % (self.row, self.at_most, self.reference)

    def verdict(self, rounds):
        """(passed, ratio) from {row name: rounds}; None when a row of the
        target was not run."""
        if self.row not in rounds or self.reference not in rounds:
            return None
        found = ratio(rounds[self.row], rounds[self.reference])
        return found["median"] <= self.at_most, found


def against_verdict(mine, before):
    """(dearer, ratio): whether the rounds `mine` cost more CPU a call
    than `before`'s by more than the run's spread, i.e. the median of the
    per-round ratios is above 1 by more than their max - min."""
    found = ratio(mine, before)
    spread = found["max"] - found["min"]
    return found["median"] - 1 > spread, found
