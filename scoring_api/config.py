"""Settings: config.ini plus SCORING_<SECTION>_<KEY> environment overrides.

Read once at start-up into frozen dataclasses. Every key has a default, so
`Settings()` is a working configuration; a bad key or value raises
`ConfigError` whose message is one line naming the key and the value.
"""
import configparser
import dataclasses
import logging
import os
import re
import urllib.parse


ENV_PREFIX = "SCORING_"
# Variables of the test harness (SCORING_TEST_REDIS_URL): not config keys.
TEST_PREFIX = ENV_PREFIX + "TEST_"


class ConfigError(Exception):
    """A config file or value that cannot be used."""


# Numbers as an operator types them: ASCII digits only (int() would also
# take "47_399" and Arabic-Indic digits).
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")

# Query parameters a Redis URL may carry, and what each takes (the value
# as redis-py reads it). Timeouts, retries and the pool size are config
# keys, so a URL cannot silently override them; an option redis-py would
# refuse only at the first call is refused here, at start-up.
_URL_BOOLEAN = re.compile(r"(?i)true|false|yes|no|1|0")
URL_OPTIONS = {
    "db": (re.compile(r"[0-9]+"), "a database number"),
    "protocol": (re.compile(r"[23]"), "2 or 3"),
    "client_name": (re.compile(r"[!-~]+"), "a name without spaces"),
    "health_check_interval": (re.compile(r"[0-9]+"), "whole seconds"),
    "socket_keepalive": (_URL_BOOLEAN, "true or false"),
}
# Only for rediss:// (TLS).
TLS_URL_OPTIONS = {
    "ssl_cert_reqs": (re.compile(r"none|optional|required"),
                      "none, optional or required"),
    "ssl_check_hostname": (_URL_BOOLEAN, "true or false"),
    "ssl_ca_certs": (re.compile(r".+"), "a file"),
    "ssl_ca_path": (re.compile(r".+"), "a directory"),
    "ssl_certfile": (re.compile(r".+"), "a file"),
    "ssl_keyfile": (re.compile(r".+"), "a file"),
}
SECRET_KEYS = frozenset({"password"})
MASK = "***"


def mask_url(text):
    """`text` with the password of a Redis URL shown as ***: safe to print
    and log. Also without a scheme (`user:password@host:port` typed where
    host:port belongs)."""
    scheme, separator, rest = text.rpartition("://")
    credentials, at, hosts = rest.rpartition("@")
    if not at or ":" not in credentials:
        return text
    user = credentials.partition(":")[0]
    return "%s%s%s:%s@%s" % (scheme, separator, user, MASK, hosts)


def shown(key, text):
    """How the value `text` of `key` may be printed: secrets masked (also
    a URL typed where it does not belong)."""
    if key in SECRET_KEYS:
        return MASK if text else text
    return mask_url(text)


def _integer(low, high=None):
    def parse(text):
        if not _INTEGER.fullmatch(text):
            raise ValueError("expected an integer")
        value = int(text)
        if value < low or (high is not None and value > high):
            bound = "%d..%d" % (low, high) if high is not None else \
                ">= %d" % low
            raise ValueError("expected an integer %s" % bound)
        return value
    return parse


# A timeout, pause or window shorter than this cannot be meant (1e-9
# would close every connection at once); one of an hour or more is a hang.
MIN_SECONDS = 0.001
MAX_SECONDS = 3600
# The largest request body the service reads into memory.
MAX_BODY_BYTES = 16 * 1024 * 1024


def _seconds(text):
    if not _DECIMAL.fullmatch(text):
        raise ValueError("expected a number of seconds")
    value = float(text)
    if not MIN_SECONDS <= value < MAX_SECONDS:
        raise ValueError("expected seconds, at least %g and under %d" % (
            MIN_SECONDS, MAX_SECONDS))
    return value


def _text(text):
    return text


def _host(text):
    if not text:
        raise ValueError("expected an address to listen on (write 0.0.0.0"
                         " if every interface is meant)")
    return text


def _salt(text):
    if not text:
        raise ValueError("expected a salt: an empty one makes tokens"
                         " anyone can compute")
    return text


def _boolean(text):
    value = text.lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected true or false")


def _choice(*allowed):
    def parse(text):
        if text not in allowed:
            raise ValueError("expected one of " + ", ".join(
                option or "(empty)" for option in allowed))
        return text
    return parse


def _host_port(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    # "/" or "@": a URL typed where host:port belongs (its password would
    # be printed as a host).
    if not host or "/" in host or "@" in host \
            or not _INTEGER.fullmatch(port) or port[0] in "+-" \
            or not 0 < int(port) <= 65535:
        raise ValueError("expected host:port, not %r" % mask_url(text))
    return host, int(port)


def _nodes(text):
    """host:port,host:port,... as a tuple of (host, port)."""
    return tuple(_host_port(part.strip()) for part in text.split(",")
                 if part.strip())


def _redis_node(node):
    """Checks one host[:port] of a Redis URL (IPv6 in brackets)."""
    host, colon, port = node.rpartition(":")
    if not colon or host.endswith(":") or (host.startswith("[")
                                           and not host.endswith("]")):
        host, port = node, ""  # no port, or a bare IPv6 address
    if not host.strip("[]"):
        raise ValueError("expected redis://host:port/db")
    if port and (not _INTEGER.fullmatch(port) or port[0] in "+-"
                 or not 0 < int(port) <= 65535):
        raise ValueError("expected a port 1..65535, not %r" % port)


def _redis_url(text):
    """A Redis URL: redis://[[user]:password@]host:port/db, rediss://,
    unix:///path; or, for a cluster, redis://host:port,host:port,..."""
    if not text:
        return text
    url = urllib.parse.urlsplit(text)
    if url.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("expected redis://host:port/db")
    if url.scheme == "unix":
        if not url.path:
            raise ValueError("expected unix:///path/to/redis.sock")
    else:
        for node in url.netloc.rpartition("@")[2].split(","):
            _redis_node(node)
        db = url.path.strip("/")
        if db and not (db.isascii() and db.isdigit()):
            raise ValueError("expected a database number after the port")
    options = URL_OPTIONS | (TLS_URL_OPTIONS if url.scheme == "rediss"
                             else {})
    for name, value in urllib.parse.parse_qsl(url.query,
                                              keep_blank_values=True):
        if name not in options:
            raise ValueError(
                "unknown URL option %r (timeouts, retries and the pool"
                " size are config keys; ssl_* options need rediss://)"
                % name)
        pattern, expected = options[name]
        if not pattern.fullmatch(value):
            raise ValueError("URL option %s=%r: expected %s" % (
                name, value, expected))
    return text


def _log_level(text):
    level = text.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(
            "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level


def _seconds_or_off(text):
    """Seconds, or 0 for "off"."""
    if _DECIMAL.fullmatch(text) and float(text) == 0:
        return 0.0
    try:
        return _seconds(text)
    except ValueError:
        raise ValueError("expected 0 (off) or seconds, at least %g and"
                         " under %d" % (MIN_SECONDS, MAX_SECONDS)) from None


# The highest rate a quota may name: calls a second, far past what one
# instance serves.
MAX_RATE = 1e6


def _rate(text):
    if not _DECIMAL.fullmatch(text):
        raise ValueError("expected calls a second (a number; 0: no limit)")
    value = float(text)
    if not 0 <= value <= MAX_RATE:
        raise ValueError("expected calls a second, 0 (no limit) to %d"
                         % MAX_RATE)
    return value


def _limit(text):
    """One [limits.accounts] value, rate[/burst]: (rate, burst or None)."""
    rate_text, slash, burst_text = text.partition("/")
    rate_text, burst_text = rate_text.strip(), burst_text.strip()
    if not _DECIMAL.fullmatch(rate_text) or (
            slash and not (_INTEGER.fullmatch(burst_text)
                           and burst_text[0] not in "+-")):
        raise ValueError("expected rate[/burst]: calls a second, then a"
                         " whole number of calls at once (e.g. 50/100)")
    rate = _rate(rate_text)
    return rate, int(burst_text) if slash else None


def _accounts(text):
    """The environment's one list, account=rate[/burst],...: a tuple of
    (account, rate, burst or None)."""
    accounts = {}
    for item in text.split(","):
        if not item.strip():
            continue
        account, equals, limit = item.partition("=")
        if not equals:
            raise ValueError("expected account=rate[/burst],..., not %r"
                             % item.strip())
        try:
            accounts[account.strip()] = _limit(limit)
        except ValueError as error:
            raise ValueError("%s: %s" % (account.strip(), error)) from None
    return tuple((account, rate, burst)
                 for account, (rate, burst) in accounts.items())


def _key(default, parse, doc):
    return dataclasses.field(
        default=default, metadata={"parse": parse, "doc": doc})


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    host: str = _key("127.0.0.1", _host, "address to listen on")
    port: int = _key(8080, _integer(1, 65535), "TCP port")
    workers: int = _key(1, _integer(1, 64), "processes serving the port")
    max_body_bytes: int = _key(
        65536, _integer(1, MAX_BODY_BYTES), "larger request bodies get 413")
    max_client_ids: int = _key(
        1000, _integer(1), "most ids one clients_interests call may ask for")
    idle_timeout: float = _key(
        60.0, _seconds, "seconds an idle keep-alive connection stays open")
    header_timeout: float = _key(
        10.0, _seconds, "seconds a client may take to send a request head")
    body_timeout: float = _key(
        10.0, _seconds, "seconds a client may take to send its body")
    shutdown_timeout: float = _key(
        5.0, _seconds, "how long a stop waits for requests in flight")
    log_file: str = _key("", _text, "log file; empty: standard error")
    log_level: str = _key("INFO", _log_level, "DEBUG, INFO, WARNING, ...")
    log_format: str = _key(
        "text", _choice("text", "json"), "text, or json: an object a line")
    xheaders: bool = _key(
        False, _boolean, "client address from X-Real-Ip/X-Forwarded-For")
    max_connections: int = _key(
        1000, _integer(1), "client connections per process; more wait")
    write_timeout: float = _key(
        10.0, _seconds, "seconds a client may take to read an answer")
    max_worker_restarts: int = _key(
        10, _integer(0), "worker restarts allowed within restart_window")
    restart_window: float = _key(
        60.0, _seconds, "seconds over which worker restarts are counted")


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    salt: str = _key("Otus", _salt, "salt of user tokens")
    admin_login: str = _key("admin", _text, "the login that is the admin")
    admin_salt: str = _key("42", _salt, "salt of the hourly admin token")


@dataclasses.dataclass(frozen=True)
class StoreSettings:
    mode: str = _key("standalone", _choice("standalone", "sentinel",
                                           "cluster"),
                     "standalone, sentinel or cluster")
    url: str = _key("redis://127.0.0.1:6379/0", _redis_url, "Redis URL")
    sentinels: tuple = _key((), _nodes, "sentinel mode: host:port,...")
    service_name: str = _key("", _text, "sentinel mode: the master's name")
    db: int = _key(0, _integer(0), "sentinel mode: database number")
    password: str = _key("", _text, "sentinel mode: the master's password")
    connect_timeout: float = _key(0.5, _seconds, "seconds to connect")
    timeout: float = _key(1.0, _seconds, "seconds for one command")
    retries: int = _key(2, _integer(0, 10), "retries after a failed call")
    backoff: float = _key(0.05, _seconds, "first pause between retries")
    backoff_max: float = _key(0.5, _seconds, "longest pause between retries")
    max_connections: int = _key(
        64, _integer(1), "connections per process; more calls wait")

    @property
    def worst_call_seconds(self):
        """The longest one call may take: every attempt and pause."""
        return ((self.retries + 1) * (self.connect_timeout + self.timeout)
                + self.retries * self.backoff_max)


@dataclasses.dataclass(frozen=True)
class CacheSettings(StoreSettings):
    mode: str = _key("", _choice("", "standalone", "sentinel", "cluster"),
                     "empty (with an empty url): the [store] Redis")
    url: str = _key("", _redis_url, "Redis URL; empty: the [store] one")
    connect_timeout: float = _key(0.2, _seconds, "seconds to connect")
    timeout: float = _key(0.2, _seconds, "seconds for one command")
    retries: int = _key(1, _integer(0, 10), "retries after a failed call")
    backoff: float = _key(0.02, _seconds, "first pause between retries")
    backoff_max: float = _key(0.1, _seconds, "longest pause between retries")
    ttl: int = _key(3600, _integer(1), "seconds a score stays cached")
    failure_threshold: int = _key(
        3, _integer(1), "failed calls in a row that open the circuit")
    reset_timeout: float = _key(
        1.0, _seconds, "seconds between probes of a cache known to be down")
    local_size: int = _key(
        10000, _integer(0), "scores kept in process; 0: no local tier")
    local_ttl: float = _key(
        600.0, _seconds, "seconds a score stays in the local tier, at most"
        " ttl")


@dataclasses.dataclass(frozen=True)
class LimitsSettings:
    rate: float = _key(0.0, _rate, "calls a second a partner may make; 0: no"
                       " limit")
    burst: int = _key(10, _integer(0), "calls above the rate at once")
    enforce: bool = _key(True, _boolean, "false: count and report, never"
                         " refuse")
    # From [limits.accounts] (account = rate[/burst] lines), or the
    # environment's one list SCORING_LIMITS_ACCOUNTS.
    accounts: tuple = _key((), _accounts, "per-partner overrides")

    def overrides(self):
        """{account: (rate, burst or None)} of [limits.accounts]."""
        return {account: (rate, burst)
                for account, rate, burst in self.accounts}


@dataclasses.dataclass(frozen=True)
class OverloadSettings:
    shed_lag: float = _key(0.1, _seconds_or_off, "event-loop lag that sheds"
                           " new calls; 0: never")
    budget: float = _key(1.0, _seconds_or_off, "seconds of calls in flight a"
                         " process takes on; 0: no limit")
    min_in_flight: int = _key(64, _integer(1), "calls in flight always"
                              " allowed")
    max_held: int = _key(1024, _integer(0), "429s held at once for partners"
                         " that keep calling")
    starved_lag: float = _key(0.1, _seconds, "a lag this long makes a Redis"
                              " timeout the process's own")


@dataclasses.dataclass(frozen=True)
class Settings:
    server: ServerSettings = dataclasses.field(default_factory=ServerSettings)
    auth: AuthSettings = dataclasses.field(default_factory=AuthSettings)
    store: StoreSettings = dataclasses.field(default_factory=StoreSettings)
    cache: CacheSettings = dataclasses.field(default_factory=CacheSettings)
    limits: LimitsSettings = dataclasses.field(
        default_factory=LimitsSettings)
    overload: OverloadSettings = dataclasses.field(
        default_factory=OverloadSettings)

    @property
    def cache_url(self):
        return self.cache.url or self.store.url

    @property
    def cache_redis(self):
        """[cache] with the Redis to use resolved: an empty mode and url
        mean the [store] Redis (in every mode), with the cache's own
        timeouts, retries and breaker."""
        if self.cache.mode or self.cache.url:
            return dataclasses.replace(
                self.cache, mode=self.cache.mode or "standalone")
        return dataclasses.replace(
            self.cache, **{key: getattr(self.store, key)
                           for key in CONNECTION_KEYS})

    @property
    def cache_shares_store(self):
        """True when the cache's Redis is the store's server: [cache] mode
        and url empty, or naming the same server (any database of it:
        memory is the server's)."""
        return _server_of(self.cache_redis) == _server_of(self.store)

    @property
    def log_level(self):
        return getattr(logging, self.server.log_level)

    def replace(self, **sections):
        """A copy with some keys changed: replace(store={"retries": 0})."""
        changed = {
            name: dataclasses.replace(getattr(self, name), **values)
            for name, values in sections.items()
        }
        return dataclasses.replace(self, **changed)


CONNECTION_KEYS = ("mode", "url", "sentinels", "service_name", "db",
                   "password")
SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Settings)}
# account = rate[/burst] lines, keys in their exact case: [limits]
# accounts.
ACCOUNTS_SECTION = "limits.accounts"
_PORTED = re.compile(r":[0-9]+$")


def _server_of(redis):
    """What names the Redis server (or set) of a [store] or resolved
    [cache] section, whatever its database and credentials."""
    if redis.mode == "sentinel":
        return redis.mode, frozenset(redis.sentinels), redis.service_name
    nodes = urllib.parse.urlsplit(redis.url)
    if nodes.scheme == "unix":
        return redis.mode, nodes.path
    return redis.mode, frozenset(
        node.lower() if _PORTED.search(node) else node.lower() + ":6379"
        for node in nodes.netloc.rpartition("@")[2].split(","))


def _parse(section, key, text, source):
    schema = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
    if key not in schema:
        raise ConfigError("%s: unknown key [%s] %s (known: %s)" % (
            source, section, key, ", ".join(schema)))
    parse = schema[key].metadata["parse"]
    try:
        return parse(text.strip())
    except ValueError as error:
        raise ConfigError("%s: [%s] %s = %r: %s" % (
            source, section, key, shown(key, text), error)) from None


def _read_file(path):
    """{section: {key: text}} of the config file at `path`."""
    # No section is special: a [DEFAULT] section is an unknown section.
    parser = configparser.ConfigParser(interpolation=None,
                                       default_section="\0")
    # Keys as written: [limits.accounts] names accounts in their exact
    # case; the other sections' keys are lower-cased below.
    parser.optionxform = str
    try:
        with open(path, "rb") as config_file:
            data = config_file.read()
        parser.read_string(data.decode("utf-8"), path)
    except OSError as error:
        raise ConfigError("cannot read config %s: %s" % (
            path, error.strerror)) from None
    except UnicodeDecodeError as error:
        raise ConfigError("%s: line %d is not UTF-8 text" % (
            path, data.count(b"\n", 0, error.start) + 1)) from None
    except configparser.Error as error:
        raise ConfigError("%s: %s" % (
            path, " ".join(str(error).split()))) from None
    found = {}
    for section in parser.sections():
        if section == ACCOUNTS_SECTION:
            found[section] = dict(parser.items(section))
            continue
        if section not in SECTIONS:
            raise ConfigError("%s: unknown section [%s] (known: %s)" % (
                path, section, ", ".join([*SECTIONS, ACCOUNTS_SECTION])))
        keys = found[section] = {}
        for key, text in parser.items(section):
            if key.lower() in keys:
                raise ConfigError("%s: [%s] %s: the key is given twice" % (
                    path, section, key.lower()))
            keys[key.lower()] = text
    return found


def _read_accounts(keys, source):
    """The `accounts` of [limits] from the [limits.accounts] lines."""
    accounts = []
    for account, text in keys.items():
        try:
            rate, burst = _limit(text.strip())
        except ValueError as error:
            raise ConfigError("%s: [%s] %s = %r: %s" % (
                source, ACCOUNTS_SECTION, account, text, error)) from None
        accounts.append((account, rate, burst))
    return tuple(accounts)


def _environment_keys(environ):
    """(name, section, key, text) of every SCORING_* variable; an unknown
    section is an error. The test harness's SCORING_TEST_* are not ours."""
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name.startswith(TEST_PREFIX):
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("_")
        if section not in SECTIONS:
            raise ConfigError("%s: unknown section [%s] (known: %s)" % (
                name, section, ", ".join(SECTIONS)))
        yield name, section, key, text


# The keys only sentinel mode reads, and their defaults (docs/operations.md,
# "Redis modes").
SENTINEL_KEYS = {"sentinels": (), "service_name": "", "db": 0,
                 "password": ""}


def _check_redis(section, redis, given=None):
    """What one key cannot say alone: each mode's keys must be there, and
    no key another mode would read. `given`: the section as written, when
    `redis` is the Redis resolved for it (an empty [cache] is [store]'s).
    A url in sentinel mode is allowed (unused there, it may be empty):
    its default cannot be told apart from one written."""
    given = given or redis
    if given.mode != "sentinel":
        stray = [key for key, default in SENTINEL_KEYS.items()
                 if getattr(given, key) != default]
        if stray:
            raise ConfigError("[%s] %s: only mode = sentinel reads %s"
                              " (mode = %s)" % (
                                  section, ", ".join(stray),
                                  "it" if len(stray) == 1 else "them",
                                  given.mode or "(empty)"))
    if redis.mode == "sentinel" and not (redis.sentinels
                                         and redis.service_name):
        raise ConfigError("[%s] mode = sentinel needs sentinels and"
                          " service_name" % section)
    if redis.mode in ("standalone", "cluster") and not redis.url:
        raise ConfigError("[%s] mode = %s needs a url" % (
            section, redis.mode))
    if redis.mode == "standalone" and "," in redis.url.partition("?")[0]:
        raise ConfigError("[%s] url = %r: several nodes need mode ="
                          " cluster" % (section, mask_url(redis.url)))
    if redis.mode == "cluster" and redis.url.startswith("unix:"):
        raise ConfigError("[%s] url = %r: a cluster needs redis:// or"
                          " rediss://" % (section, mask_url(redis.url)))
    if redis.mode == "cluster" and urllib.parse.urlsplit(
            redis.url).path.strip("/") not in ("", "0"):
        raise ConfigError("[%s] url = %r: a cluster has database 0 only" % (
            section, mask_url(redis.url)))


def load_settings(path=None, environ=None, overrides=()):
    """Settings from the file at `path` (if any), then the environment,
    then `overrides`: (source, section, key, text) such as a command-line
    option. A bad file, key or value raises `ConfigError`."""
    environ = os.environ if environ is None else environ
    values = {section: {} for section in SECTIONS}
    if path is not None:
        for section, keys in _read_file(path).items():
            if section == ACCOUNTS_SECTION:
                values["limits"]["accounts"] = _read_accounts(keys, path)
                continue
            for key, text in keys.items():
                values[section][key] = _parse(section, key, text, path)
    for name, section, key, text in _environment_keys(environ):
        values[section][key] = _parse(section, key, text, name)
    for source, section, key, text in overrides:
        values[section][key] = _parse(section, key, text, source)
    settings = Settings(**{
        section: SECTIONS[section](**keys)
        for section, keys in values.items()
    })
    _check_redis("store", settings.store)
    _check_redis("cache", settings.cache_redis, settings.cache)
    return settings
