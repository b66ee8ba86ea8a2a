"""CPU time of a server process (its workers included), read from /proc,
and the CPUs it runs on."""
import collections
import glob
import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class CpuTimes(collections.namedtuple("CpuTimes", "user system")):
    """User and system CPU seconds."""

    @property
    def total(self):
        return self.user + self.system

    def __add__(self, other):
        return CpuTimes(self.user + other.user, self.system + other.system)

    def __sub__(self, other):
        return CpuTimes(self.user - other.user, self.system - other.system)


def parse_stat(text, clock_ticks=CLOCK_TICKS):
    """CpuTimes of the text of /proc/<pid>/stat: utime and stime, fields
    14 and 15 of proc(5), counted after the command name, which is in
    parentheses and may hold spaces and parentheses itself."""
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (the state): field n is fields[n - 3]
    return CpuTimes(int(fields[11]) / clock_ticks,
                    int(fields[12]) / clock_ticks)


def children(pid):
    """The pids of the children of every thread of `pid`."""
    found = []
    for path in glob.glob("/proc/%d/task/*/children" % pid):
        try:
            with open(path) as listed:
                found.extend(int(child) for child in listed.read().split())
        except OSError:  # the thread ended meanwhile
            continue
    return found


def move_to(pid, cpus):
    """Run `pid`, every thread of it and its descendants (a service's
    workers) on the CPUs `cpus` only; what ends meanwhile is passed."""
    for task in glob.glob("/proc/%d/task/*" % pid):
        try:
            os.sched_setaffinity(int(os.path.basename(task)), cpus)
        except OSError:  # the thread ended
            continue
    for child in children(pid):
        move_to(child, cpus)


def cpu_times(pid):
    """CpuTimes used so far by `pid` and its descendants (a service's
    workers), or None when the process is gone (or there is no /proc)."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            own = parse_stat(stat.read())
    except OSError:
        return None
    for child in children(pid):
        times = cpu_times(child)
        if times is not None:
            own += times
    return own


def per_call(before, after, calls):
    """{"user_us", "system_us", "cpu_us"}: the CPU time one call cost,
    from CpuTimes `before` and `after` `calls` calls."""
    used = after - before
    return {"user_us": 1e6 * used.user / calls,
            "system_us": 1e6 * used.system / calls,
            "cpu_us": 1e6 * used.total / calls}
