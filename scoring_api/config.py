"""Settings: config.ini plus SCORING_<SECTION>_<KEY> environment overrides.

Read once at start-up into frozen dataclasses. Every key has a default, so
`Settings()` is a working configuration; a bad key or value raises
`ConfigError` whose message is one line naming the key and the value.
"""
import configparser
import dataclasses
import logging
import os
import urllib.parse

ENV_PREFIX = "SCORING_"


class ConfigError(Exception):
    """A config file or value that cannot be used."""


def _convert(convert, text, expected):
    try:
        return convert(text)
    except ValueError:
        raise ValueError("expected " + expected) from None


def _integer(low, high=None):
    def parse(text):
        value = _convert(int, text, "an integer")
        if value < low or (high is not None and value > high):
            bound = "%d..%d" % (low, high) if high is not None else \
                ">= %d" % low
            raise ValueError("expected an integer %s" % bound)
        return value
    return parse


def _seconds(text):
    value = _convert(float, text, "a number of seconds")
    if not 0 < value < 3600:
        raise ValueError("expected seconds, more than 0 and under 3600")
    return value


def _text(text):
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
                repr(option) if not option else option for option in allowed))
        return text
    return parse


def _host_port(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isascii() or not port.isdigit() \
            or not 0 < int(port) <= 65535:
        raise ValueError("expected host:port")
    return host.strip("[]"), int(port)


def _nodes(text):
    """host:port,host:port,... as a tuple of (host, port)."""
    return tuple(_host_port(part.strip()) for part in text.split(",")
                 if part.strip())


def _redis_url(text):
    if not text:
        return text
    url = urllib.parse.urlsplit(text)
    if url.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("expected redis://host:port/db")
    if url.scheme != "unix":
        url.port  # raises ValueError on a port that is not a number
        if not url.hostname:
            raise ValueError("expected redis://host:port/db")
        db = url.path.strip("/")
        if db and not db.isdigit():
            raise ValueError("expected a database number after the port")
    return text


def _log_level(text):
    level = text.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(
            "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level


def _key(default, parse, doc):
    return dataclasses.field(
        default=default, metadata={"parse": parse, "doc": doc})


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    host: str = _key("127.0.0.1", _text, "address to listen on")
    port: int = _key(8080, _integer(1, 65535), "TCP port")
    workers: int = _key(1, _integer(1, 64), "processes serving the port")
    max_body_bytes: int = _key(
        65536, _integer(1), "larger request bodies get 413")
    max_client_ids: int = _key(
        1000, _integer(1), "most ids one clients_interests call may ask for")
    idle_timeout: float = _key(
        60.0, _seconds, "seconds an idle keep-alive connection stays open")
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
        30.0, _seconds, "seconds a client may take to read an answer")


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    salt: str = _key("Otus", _text, "salt of user tokens")
    admin_login: str = _key("admin", _text, "the login that is the admin")
    admin_salt: str = _key("42", _text, "salt of the hourly admin token")


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
        10.0, _seconds, "seconds a score stays in the local tier")


@dataclasses.dataclass(frozen=True)
class Settings:
    server: ServerSettings = dataclasses.field(default_factory=ServerSettings)
    auth: AuthSettings = dataclasses.field(default_factory=AuthSettings)
    store: StoreSettings = dataclasses.field(default_factory=StoreSettings)
    cache: CacheSettings = dataclasses.field(default_factory=CacheSettings)

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
            source, section, key, text, error)) from None


def load_settings(path=None, environ=None, overrides=()):
    """Settings from the file at `path` (if any), then the environment,
    then `overrides`: (source, section, key, text) such as a command-line
    option."""
    environ = os.environ if environ is None else environ
    values = {section: {} for section in SECTIONS}
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as config_file:
                parser.read_file(config_file)
        except OSError as error:
            raise ConfigError("cannot read config %s: %s" % (
                path, error.strerror)) from None
        except configparser.Error as error:
            raise ConfigError("%s: %s" % (
                path, " ".join(str(error).split()))) from None
        for section in parser.sections():
            if section not in SECTIONS:
                raise ConfigError("%s: unknown section [%s] (known: %s)" % (
                    path, section, ", ".join(SECTIONS)))
            for key, text in parser.items(section):
                values[section][key] = _parse(section, key, text, path)
    for name, text in environ.items():
        section, _, key = name[len(ENV_PREFIX):].lower().partition("_")
        if name.startswith(ENV_PREFIX) and section in SECTIONS:
            values[section][key] = _parse(section, key, text, name)
    for source, section, key, text in overrides:
        values[section][key] = _parse(section, key, text, source)
    return Settings(**{
        section: SECTIONS[section](**keys)
        for section, keys in values.items()
    })
