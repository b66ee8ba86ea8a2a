"""Before any timing: every peer answers as the service does, byte for
byte (status, media type, body), and every server answers each script
with its expected status; the hit bodies are sent once to each server on
the way, so that every hit the rounds time is a score-cache hit."""
import collections
import concurrent.futures
import http.client

CONNECTIONS = 4
TIMEOUT_SECONDS = 10.0


class Answer(collections.namedtuple("Answer", "status media_type body")):
    """What a caller sees of an answer, headers apart from the media type
    (a request id, a date, a server name differ and may)."""


class Refused(Exception):
    """A server does not answer as it must; the message says where."""


def media_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


def post_each(port, bodies, connections=CONNECTIONS):
    """[Answer] to POSTing each of `bodies` to /method/, in order, over a
    few keep-alive connections."""
    parts = [list(range(start, len(bodies), connections))
             for start in range(connections)]

    def send(indices):
        connection = http.client.HTTPConnection("127.0.0.1", port,
                                                timeout=TIMEOUT_SECONDS)
        answers = {}
        try:
            for index in indices:
                connection.request("POST", "/method/", bodies[index],
                                   {"Content-Type": "application/json"})
                response = connection.getresponse()
                answers[index] = Answer(
                    response.status,
                    media_type(response.getheader("Content-Type")),
                    response.read())
        finally:
            connection.close()
        return answers

    found = {}
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        for answers in pool.map(send, parts):
            found.update(answers)
    return [found[index] for index in range(len(bodies))]


def differences(whats, expected, got):
    """Lines saying where `got` differs from `expected` (lists of Answer,
    one per call named in `whats`)."""
    return ["%s: the service answers %d %s %r, this one %d %s %r" % (
        what, want.status, want.media_type, want.body, have.status,
        have.media_type, have.body)
        for what, want, have in zip(whats, expected, got) if want != have]


def require_same(name, whats, expected, got):
    """Refuse the server `name` unless its answers are the service's."""
    found = differences(whats, expected, got)
    if found:
        raise Refused("%s does not answer as the service does (%d of %d"
                      " calls differ), e.g.\n  %s" % (
                          name, len(found), len(whats),
                          "\n  ".join(found[:3])))


def require_status(name, script, answers):
    """Refuse the server `name` unless each answer has `script`'s
    expected status."""
    wrong = collections.Counter(answer.status for answer in answers
                                if answer.status != script.expected)
    if wrong:
        raise Refused("%s answers the %s script with %s, not %d" % (
            name, script.name, dict(wrong), script.expected))
