"""Reading the Prometheus text of `GET /metrics` in tests."""
from prometheus_client.parser import text_string_to_metric_families


def samples(text):
    """{(sample name, frozenset of label items): value} of a /metrics
    answer."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples}


def value(samples_, name, **labels):
    """The value of one sample, 0 when it is not there yet."""
    return samples_.get((name, frozenset(labels.items())), 0.0)


def requests_total(samples_, api_method, code):
    return value(samples_, "scoring_api_requests_total",
                 api_method=api_method, code=str(code))
