"""The request envelope and the arguments of each method."""
from scoring_api import fields
from scoring_api.errors import ValidationError


class Request:
    """A set of fields filled from a dict; invalid input raises one error.

    Every field is checked and all their errors are reported together; the
    cross-field rules of `validate` run only when every field passed.
    """

    declared_fields = {}
    _checks = ()
    _present = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.declared_fields = {
            name: attr
            for klass in reversed(cls.__mro__)
            for name, attr in vars(klass).items()
            if isinstance(attr, fields.Field)
        }
        # What __init__ reads of each field, looked up once per class.
        cls._checks = tuple((name, field, field.clean)
                            for name, field in cls.declared_fields.items())

    def __init__(self, data):
        if not isinstance(data, dict):
            raise ValidationError(
                {"arguments": "must be an object, not %s"
                 % fields.type_name(data)})
        errors = {}
        # Every declared field's clean value, None where absent; the fields
        # read it from the instance's __dict__ (no descriptor call here).
        self.values = values = dict.fromkeys(self.declared_fields)
        for name, field, clean in self._checks:
            if name in data:
                try:
                    values[name] = clean(data[name])
                except fields.FieldError as error:
                    errors[name] = str(error)
            elif field.required:
                # An absent optional key is fine even when the field is not
                # nullable: `required` is about presence (docs/api.md,
                # "The request envelope").
                errors[name] = field.messages["required"]
        self.__dict__.update(values)
        if not errors:
            errors = self.validate()
        if errors:
            raise ValidationError(errors)

    def validate(self):
        """Cross-field rules; return {name: message} for what breaks them."""
        return {}

    def present(self):
        """Names of the fields holding a non-empty value, in field order
        (found once: the cross-field rules and the log both ask)."""
        if self._present is None:
            self._present = [name for name, value in self.values.items()
                             if not fields.is_empty(value)]
        return self._present


class MethodRequest(Request):
    account = fields.CharField(required=False, nullable=True)
    login = fields.CharField(required=True, nullable=True)
    token = fields.CharField(required=True, nullable=True)
    arguments = fields.ArgumentsField(required=True, nullable=True)
    method = fields.CharField(required=True, nullable=False)

    is_admin = False  # set once the token has been checked


class OnlineScoreRequest(Request):
    PAIRS = (("phone", "email"), ("first_name", "last_name"),
             ("gender", "birthday"))

    phone = fields.PhoneField(required=False, nullable=True)
    email = fields.EmailField(required=False, nullable=True)
    first_name = fields.CharField(required=False, nullable=True)
    last_name = fields.CharField(required=False, nullable=True)
    birthday = fields.BirthDayField(required=False, nullable=True)
    gender = fields.GenderField(required=False, nullable=True)

    def validate(self):
        present = set(self.present())
        for pair in self.PAIRS:
            if present.issuperset(pair):
                return {}
        pairs = [" and ".join(pair) for pair in self.PAIRS]
        return {"arguments": "need at least one pair with values: %s, or %s"
                % (", ".join(pairs[:-1]), pairs[-1])}


class ClientsInterestsRequest(Request):
    client_ids = fields.ClientIDsField(required=True, nullable=False)
    date = fields.DateField(required=False, nullable=True)

    def __init__(self, data, max_client_ids=1000):
        self.max_client_ids = max_client_ids
        super().__init__(data)

    def validate(self):
        if len(self.client_ids) > self.max_client_ids:
            return {"client_ids": "may hold at most %d ids"
                    % self.max_client_ids}
        return {}
