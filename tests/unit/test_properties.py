"""Properties of the request classes and the scoring rules, for any input
hypothesis makes (tests/support/strategies.py: how many, and the profiles)."""
import unittest

from hypothesis import assume, given
from hypothesis import strategies as st

from scoring_api import scoring
from scoring_api.errors import ValidationError
from scoring_api.requests import (ClientsInterestsRequest, MethodRequest,
                                  OnlineScoreRequest)
from tests.support import strategies
from tests.support.clock import stop_calendar

PAIR_RULE = ("need at least one pair with values: phone and email,"
             " first_name and last_name, or gender and birthday")
VALID = {
    OnlineScoreRequest: {"first_name": "a", "last_name": "b",
                         "phone": "79175002040", "email": "a@b"},
    ClientsInterestsRequest: {"client_ids": [1], "date": "20.07.2017"},
    MethodRequest: {"account": "a", "login": "l", "method": "m",
                    "token": "t", "arguments": {}},
}
FIELDS = [(kind, name) for kind in VALID for name in kind.declared_fields]


class AnyJsonTest(unittest.TestCase):
    """Any JSON value in any field: valid, or one error naming the field;
    never another exception."""

    def setUp(self):
        stop_calendar(self, strategies.TODAY)

    @given(st.sampled_from(FIELDS), strategies.json_values)
    def test_a_field_accepts_the_value_or_names_itself(self, field, value):
        kind, name = field
        try:
            kind(dict(VALID[kind], **{name: value}))
        except ValidationError as error:
            # a pair (or the envelope) may have lost its only value instead
            if error.errors != {"arguments": PAIR_RULE}:
                self.assertEqual(list(error.errors), [name])
            message = error.errors.popitem()[1]
            self.assertIsInstance(message, str)
            self.assertTrue(message)


def cleaned(arguments):
    request = OnlineScoreRequest(arguments)
    return {name: getattr(request, name)
            for name in OnlineScoreRequest.declared_fields}


class ScoreRulesTest(unittest.TestCase):
    def setUp(self):
        stop_calendar(self, strategies.TODAY)

    @given(strategies.score_arguments())
    def test_the_score_is_that_of_the_spec_for_valid_arguments(
            self, arguments):
        self.assertEqual(scoring.compute_score(**cleaned(arguments)),
                         strategies.expected_score(arguments))

    @given(strategies.score_arguments(), strategies.phone_numbers)
    def test_a_phone_as_integer_or_string_is_the_same_person(
            self, arguments, phone):
        as_int = cleaned(dict(arguments, phone=phone))
        as_str = cleaned(dict(arguments, phone=str(phone)))
        self.assertEqual(scoring.score_key(**as_int),
                         scoring.score_key(**as_str))
        self.assertEqual(scoring.compute_score(**as_int),
                         scoring.compute_score(**as_str))

    @given(strategies.score_arguments(), st.data())
    def test_the_cache_key_changes_with_any_input(self, arguments, data):
        name = data.draw(st.sampled_from(sorted(
            OnlineScoreRequest.declared_fields)))
        other = dict(arguments, **{name: data.draw(dict(
            phone=strategies.phones, email=strategies.emails,
            first_name=strategies.names, last_name=strategies.names,
            birthday=strategies.birthdays.map(strategies.ddmmyyyy),
            gender=strategies.genders)[name])})
        first = cleaned(arguments)
        try:
            second = cleaned(other)
        except ValidationError:
            assume(False)  # the change emptied the only complete pair
        # not the same value drawn again (an int phone is its string, and
        # an argument left out is one given empty)
        assume(str(first[name] or "") != str(second[name] or ""))
        self.assertNotEqual(scoring.score_key(**first),
                            scoring.score_key(**second))
