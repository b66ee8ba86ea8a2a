"""Hypothesis strategies and settings profiles for the property tests.

Profiles (environment variable HYPOTHESIS_PROFILE):
- `fast` (default): 20 examples a test, so the fast layers stay fast;
- `ci`: 100 a test, a few seconds in all.
Both are derandomized (the same examples on every run: no test passes or
fails by the luck of the draw), keep no example database on disk, and have
no per-example deadline (a busy machine is not a failure).
"""
import datetime
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

for name, examples in (("fast", 20), ("ci", 100)):
    settings.register_profile(
        name, max_examples=examples, derandomize=True, database=None,
        deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

# The calendar the property tests stop at (tests.support.clock.stop_calendar).
TODAY = datetime.date(2026, 11, 24)
OLDEST_BIRTHDAY = datetime.date(1956, 11, 24)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1)
    | st.integers(-2 ** 80, 2 ** 80)  # past 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8)
"""Any value a JSON body can hold."""

phone_numbers = st.integers(70000000000, 79999999999)
phones = phone_numbers | phone_numbers.map(str)
emails = st.builds("{}@{}".format, st.text(max_size=10),
                   st.text(max_size=10))
names = st.text(max_size=12)
birthdays = st.dates(OLDEST_BIRTHDAY, TODAY)
genders = st.sampled_from([0, 1, 2])


def ddmmyyyy(day):
    return day.strftime("%d.%m.%Y")


def maybe(values):
    """A valid value, or the argument left empty or out."""
    return st.none() | st.just("") | values


@st.composite
def score_arguments(draw):
    """Valid `online_score` arguments (at least one complete pair), as
    {name: value}; an empty draw leaves the argument out."""
    drawn = {
        "phone": draw(maybe(phones)),
        "email": draw(maybe(emails)),
        "first_name": draw(maybe(names)),
        "last_name": draw(maybe(names)),
        "birthday": draw(maybe(birthdays.map(ddmmyyyy))),
        "gender": draw(st.none() | genders),
    }
    pairs = (("phone", "email"), ("first_name", "last_name"),
             ("gender", "birthday"))
    present = {name for name, value in drawn.items()
               if value is not None and value != ""}
    if not any(present.issuperset(pair) for pair in pairs):
        first, second = draw(st.sampled_from(pairs))
        for name in (first, second):
            drawn[name] = draw(dict(phone=phones, email=emails,
                                    first_name=names.filter(bool),
                                    last_name=names.filter(bool),
                                    birthday=birthdays.map(ddmmyyyy),
                                    gender=genders)[name])
    left_out = draw(st.sets(st.sampled_from(sorted(drawn))))
    return {name: value for name, value in drawn.items()
            if name not in left_out or name in present_pair(drawn, pairs)}


def present_pair(arguments, pairs):
    """The names of the first complete pair of `arguments`."""
    for pair in pairs:
        if all(arguments.get(name) not in (None, "") for name in pair):
            return pair
    return ()


def expected_score(arguments):
    """The score rules of docs/api.md, written out apart from the code
    under test."""
    def given(name):
        return arguments.get(name) not in (None, "")

    score = 0.0
    score += 1.5 if given("phone") else 0
    score += 1.5 if given("email") else 0
    # gender 0 is present but adds nothing
    score += 1.5 if given("birthday") and arguments.get("gender") else 0
    score += 0.5 if given("first_name") and given("last_name") else 0
    return score


client_ids = st.lists(st.integers(0, 2 ** 31), min_size=1, max_size=30)
interests = st.lists(st.text(min_size=1, max_size=8), min_size=1,
                     max_size=3)
