import datetime
import unittest

from scoring_api import fields
from tests.support.cases import cases
from tests.support.clock import stop_calendar

# The calendar is stopped on this day (tests.support.clock): the age
# limits below are written out by hand, not computed by the code under test.
TODAY = datetime.date(2026, 11, 24)

BAD_ID = "must hold only integers from 0 to 18446744073709551615"


class Holder:
    """One attribute per kind of field, the way request classes use them."""

    anything = fields.Field(nullable=True)
    char = fields.CharField(nullable=True)
    required_char = fields.CharField(required=True, nullable=False)
    arguments = fields.ArgumentsField(nullable=True)
    email = fields.EmailField(nullable=True)
    phone = fields.PhoneField(nullable=True)
    date = fields.DateField(nullable=True)
    birthday = fields.BirthDayField(nullable=True)
    gender = fields.GenderField(nullable=True)
    client_ids = fields.ClientIDsField(nullable=False)


class FieldTestCase(unittest.TestCase):
    today = TODAY

    def setUp(self):
        super().setUp()
        stop_calendar(self, self.today)

    def assert_accepts(self, name, value, expected):
        self.assertEqual(getattr(Holder, name).clean(value), expected)

    def assert_rejects(self, name, value, message):
        with self.assertRaises(fields.FieldError) as raised:
            getattr(Holder, name).clean(value)
        self.assertEqual(str(raised.exception), message)


class AcceptedValuesTest(FieldTestCase):
    @cases([
        ("anything", 1.5, 1.5),
        ("anything", ["a"], ["a"]),
        ("char", "anything", "anything"),
        ("char", None, None),
        ("char", "", ""),
        ("arguments", {"a": 1}, {"a": 1}),
        ("arguments", {}, {}),
        ("email", "stupnikov@otus.ru", "stupnikov@otus.ru"),
        ("phone", "79175002040", "79175002040"),
        ("phone", 79175002040, 79175002040),
        ("phone", 70000000000, 70000000000),
        ("date", "20.07.2017", datetime.date(2017, 7, 20)),
        ("date", "29.02.2016", datetime.date(2016, 2, 29)),
        ("phone", 79999999999, 79999999999),
        ("phone", "70000000000", "70000000000"),
        ("birthday", "24.11.2026", TODAY),
        ("birthday", "24.11.1956", datetime.date(1956, 11, 24)),
        ("birthday", "01.01.2000", datetime.date(2000, 1, 1)),
        ("gender", 0, 0),
        ("gender", 1, 1),
        ("gender", 2, 2),
        ("client_ids", [0], [0]),
        ("client_ids", [1, 2, 3], [1, 2, 3]),
        ("client_ids", [2 ** 64 - 1], [2 ** 64 - 1]),
    ])
    def test_field_keeps_a_valid_value(self, case):
        name, value, expected = case
        self.assert_accepts(name, value, expected)


class RejectedValuesTest(FieldTestCase):
    @cases([
        ("char", 1, "must be a string, not int"),
        ("char", ["a"], "must be a string, not list"),
        ("required_char", "", "may not be empty"),
        ("required_char", None, "may not be empty"),
        ("arguments", [1], "must be an object, not list"),
        ("arguments", "a=1", "must be an object, not str"),
        ("email", "stupnikovotus.ru", "must contain @"),
        ("email", 5, "must be a string, not int"),
        ("phone", "89175002040", "must be 11 digits starting with 7"),
        ("phone", "7917500204", "must be 11 digits starting with 7"),
        ("phone", "791750020400", "must be 11 digits starting with 7"),
        ("phone", "7917500204a", "must be 11 digits starting with 7"),
        ("phone", "7917500204\u0661", "must be 11 digits starting with 7"),
        ("phone", " 79175002040", "must be 11 digits starting with 7"),
        ("phone", 89175002040, "must be 11 digits starting with 7"),
        ("phone", 7917500204, "must be 11 digits starting with 7"),
        ("phone", 69999999999, "must be 11 digits starting with 7"),
        ("phone", 80000000000, "must be 11 digits starting with 7"),
        ("phone", -79175002040, "must be 11 digits starting with 7"),
        ("phone", "+79175002040", "must be 11 digits starting with 7"),
        ("phone", "79175002040\n", "must be 11 digits starting with 7"),
        ("phone", ["79175002040"],
         "must be a string or an integer, not list"),
        ("email", ["a@b"], "must be a string, not list"),
        ("phone", 79175002040.0,
         "must be a string or an integer, not float"),
        ("phone", True, "must be a string or an integer, not bool"),
        ("date", "XXX", "must be a real date in the form DD.MM.YYYY"),
        ("date", "1.1.2000", "must be a real date in the form DD.MM.YYYY"),
        ("date", "31.02.2017", "must be a real date in the form DD.MM.YYYY"),
        ("date", "29.02.2017", "must be a real date in the form DD.MM.YYYY"),
        ("date", "2017-07-20", "must be a real date in the form DD.MM.YYYY"),
        ("date", 20072017, "must be a string DD.MM.YYYY, not int"),
        ("date", "20.07.2017 ", "must be a real date in the form DD.MM.YYYY"),
        ("date", "\u0662\u0660.07.2017",
         "must be a real date in the form DD.MM.YYYY"),
        ("date", ["20.07.2017"],
         "must be a string DD.MM.YYYY, not list"),
        ("birthday", "01.01.1890", "must be at most 70 years ago"),
        ("birthday", "23.11.1956", "must be at most 70 years ago"),
        ("birthday", "25.11.2026", "may not be in the future"),
        ("birthday", "01.01.2100", "may not be in the future"),
        ("birthday", "XXX", "must be a real date in the form DD.MM.YYYY"),
        ("birthday", 1, "must be a string DD.MM.YYYY, not int"),
        ("gender", -1, "must be 0 (unknown), 1 (male) or 2 (female)"),
        ("gender", 3, "must be 0 (unknown), 1 (male) or 2 (female)"),
        ("gender", "1", "must be an integer 0, 1 or 2, not str"),
        ("gender", True, "must be an integer 0, 1 or 2, not bool"),
        ("gender", 1.0, "must be an integer 0, 1 or 2, not float"),
        ("client_ids", [], "may not be empty"),
        ("client_ids", None, "may not be empty"),
        ("client_ids", {"1": 2}, "must be a list of integers, not dict"),
        ("client_ids", ["1", "2"], BAD_ID),
        ("client_ids", [1, -2], BAD_ID),
        ("client_ids", [-1], BAD_ID),
        ("client_ids", [0, -1], BAD_ID),
        ("client_ids", "1,2", "must be a list of integers, not str"),
        ("client_ids", [1, True], BAD_ID),
        ("client_ids", [1.5], BAD_ID),
        ("client_ids", [2 ** 64], BAD_ID),
        ("client_ids", [-2 ** 63 - 1], BAD_ID),
        ("phone", 2 ** 64, "must be 11 digits starting with 7"),
        ("phone", -2 ** 63 - 1, "must be 11 digits starting with 7"),
        ("gender", 2 ** 64, "must be 0 (unknown), 1 (male) or 2 (female)"),
    ])
    def test_field_rejects_an_invalid_value_saying_why(self, case):
        name, value, message = case
        self.assert_rejects(name, value, message)


class EmptyValuesTest(unittest.TestCase):
    @cases([None, "", [], {}])
    def test_empty_values_are_empty(self, value):
        self.assertTrue(fields.is_empty(value))

    @cases([0, False, "0", [None], " "])
    def test_falsy_but_given_values_are_not_empty(self, value):
        self.assertFalse(fields.is_empty(value))


class LeapDayTest(FieldTestCase):
    """On 29 February, 70 years ago is 28 February: that year has no 29th."""

    today = datetime.date(2024, 2, 29)

    def test_a_birthday_70_years_before_a_leap_day_is_accepted(self):
        self.assert_accepts("birthday", "28.02.1954",
                            datetime.date(1954, 2, 28))

    def test_the_day_before_is_too_old(self):
        self.assert_rejects("birthday", "27.02.1954",
                            "must be at most 70 years ago")

    def test_the_leap_day_itself_is_today(self):
        self.assert_accepts("birthday", "29.02.2024", self.today)
        self.assert_rejects("birthday", "01.03.2024",
                            "may not be in the future")


class WallClockTest(unittest.TestCase):
    def test_birthdays_are_checked_against_the_local_date(self):
        before = datetime.date.today()
        checked_against = fields.today()
        # either day, should midnight fall between the two readings
        self.assertIn(checked_against, (before, datetime.date.today()))


class DescriptorTest(unittest.TestCase):
    def test_a_field_learns_its_name_from_the_class(self):
        self.assertEqual(Holder.phone.name, "phone")

    def test_an_unset_field_reads_none(self):
        self.assertIsNone(Holder().phone)
