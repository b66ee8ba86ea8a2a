"""A stopped clock, so that no test depends on the hour or day it runs in.

The admin token changes every hour and birthdays are checked against
today's date: a test that reads the wall clock fails when a run crosses an
hour or midnight. These helpers stop the service's clock for one test.
"""
import datetime

import mock

from tests.support.helpers import admin_token, api_request


class FakeClock:
    """A monotonic clock that moves only when a test moves it:
    `clock.now += 1.5`."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


# Mid-hour, so the moment is plainly inside one hour of one day.
NOW = datetime.datetime(2026, 11, 24, 12, 30, 0)


def stop_auth_clock(test, now=NOW):
    """The service believes it is `now` until `test` ends."""
    patcher = mock.patch("scoring_api.auth.local_now", return_value=now)
    patcher.start()
    test.addCleanup(patcher.stop)


def stop_calendar(test, today):
    """Birthdays are checked against `today` until `test` ends."""
    patcher = mock.patch("scoring_api.fields.today", return_value=today)
    patcher.start()
    test.addCleanup(patcher.stop)


def admin_request(method, arguments, now=NOW):
    """A request body with the admin token of `now`'s hour."""
    return api_request(method, arguments, login="admin",
                       token=admin_token(now))
