import datetime
import unittest

from scoring_api import fields
from tests.cases import cases

TODAY = datetime.date.today()


def ddmmyyyy(day):
    return day.strftime("%d.%m.%Y")


class Holder:
    """One attribute per kind of field, the way request classes use them."""

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
    def assert_accepts(self, name, value, expected):
        holder = Holder()
        setattr(holder, name, value)
        self.assertEqual(getattr(holder, name), expected)

    def assert_rejects(self, name, value, message):
        with self.assertRaises(fields.FieldError) as raised:
            setattr(Holder(), name, value)
        self.assertEqual(str(raised.exception), message)


class AcceptedValuesTest(FieldTestCase):
    @cases([
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
        ("birthday", ddmmyyyy(TODAY), TODAY),
        ("birthday", ddmmyyyy(fields.years_before(TODAY, 70)),
         fields.years_before(TODAY, 70)),
        ("gender", 0, 0),
        ("gender", 1, 1),
        ("gender", 2, 2),
        ("client_ids", [0], [0]),
        ("client_ids", [1, 2, 3], [1, 2, 3]),
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
        ("phone", 79175002040.0,
         "must be a string or an integer, not float"),
        ("phone", True, "must be a string or an integer, not bool"),
        ("date", "XXX", "must be a real date in the form DD.MM.YYYY"),
        ("date", "1.1.2000", "must be a real date in the form DD.MM.YYYY"),
        ("date", "31.02.2017", "must be a real date in the form DD.MM.YYYY"),
        ("date", "29.02.2017", "must be a real date in the form DD.MM.YYYY"),
        ("date", "2017-07-20", "must be a real date in the form DD.MM.YYYY"),
        ("date", 20072017, "must be a string DD.MM.YYYY, not int"),
        ("birthday", "01.01.1890", "must be at most 70 years ago"),
        ("birthday",
         ddmmyyyy(fields.years_before(TODAY, 70) - datetime.timedelta(1)),
         "must be at most 70 years ago"),
        ("birthday", ddmmyyyy(TODAY + datetime.timedelta(1)),
         "may not be in the future"),
        ("birthday", "XXX", "must be a real date in the form DD.MM.YYYY"),
        ("gender", -1, "must be 0 (unknown), 1 (male) or 2 (female)"),
        ("gender", 3, "must be 0 (unknown), 1 (male) or 2 (female)"),
        ("gender", "1", "must be an integer 0, 1 or 2, not str"),
        ("gender", True, "must be an integer 0, 1 or 2, not bool"),
        ("gender", 1.0, "must be an integer 0, 1 or 2, not float"),
        ("client_ids", [], "may not be empty"),
        ("client_ids", None, "may not be empty"),
        ("client_ids", {"1": 2}, "must be a list of integers, not dict"),
        ("client_ids", ["1", "2"], "must hold only non-negative integers"),
        ("client_ids", [1, -2], "must hold only non-negative integers"),
        ("client_ids", [1, True], "must hold only non-negative integers"),
        ("client_ids", [1.5], "must hold only non-negative integers"),
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


class YearsBeforeTest(unittest.TestCase):
    def test_29_february_becomes_28_february_in_a_common_year(self):
        self.assertEqual(
            fields.years_before(datetime.date(2024, 2, 29), 70),
            datetime.date(1954, 2, 28))


class DescriptorTest(unittest.TestCase):
    def test_a_field_learns_its_name_from_the_class(self):
        self.assertEqual(Holder.phone.name, "phone")

    def test_an_unset_field_reads_none(self):
        self.assertIsNone(Holder().phone)
