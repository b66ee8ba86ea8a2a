import configparser
import dataclasses
import logging
import os
import tempfile
import unittest

from scoring_api import config
from tests.support.cases import cases

CONFIG_INI = os.path.join(os.path.dirname(__file__), "..", "..",
                          "config.ini")


def write_config(text):
    handle = tempfile.NamedTemporaryFile(
        "w", suffix=".ini", delete=False, encoding="utf-8")
    with handle:
        handle.write(text)
    return handle.name


def _as_text(value):
    """A default as config.ini would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join("%s:%d" % node for node in value)
    return str(value)


# (section, key) of every config key.
ALL_KEYS = [(section, field.name)
            for section, factory in config.SECTIONS.items()
            for field in dataclasses.fields(factory)]


def field_of(section, key):
    return next(field for field in dataclasses.fields(config.SECTIONS[section])
                if field.name == key)


def assert_refused_in_one_line(test, message, load, *args):
    """`load(*args)` raises a ConfigError of one line holding `message`."""
    with test.assertRaises(config.ConfigError) as raised:
        load(*args)
    test.assertIn(message, str(raised.exception))
    test.assertNotIn("\n", str(raised.exception))


class LoadSettingsTest(unittest.TestCase):
    def load(self, text, environ=None, overrides=()):
        path = write_config(text)
        self.addCleanup(os.unlink, path)
        return config.load_settings(path, environ or {}, overrides)

    def test_without_a_file_the_defaults_apply(self):
        settings = config.load_settings(None, {})
        self.assertEqual(settings, config.Settings())
        self.assertEqual(settings.auth.salt, "Otus")
        self.assertEqual(settings.auth.admin_salt, "42")

    def test_the_shipped_config_ini_loads(self):
        config.load_settings(CONFIG_INI, {})

    @cases(ALL_KEYS)
    def test_the_shipped_config_ini_documents_every_key(self, case):
        section, key = case
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(CONFIG_INI)
        if (section, key) == ("limits", "accounts"):
            # Its own section of account = rate[/burst] lines.
            self.assertTrue(parser.has_section(config.ACCOUNTS_SECTION))
        else:
            self.assertTrue(parser.has_option(section, key))

    def test_file_values_are_typed(self):
        settings = self.load("[server]\nport = 9000\n"
                             "[store]\ntimeout = 0.25\nretries = 0\n")
        self.assertEqual(settings.server.port, 9000)
        self.assertEqual(settings.store.timeout, 0.25)
        self.assertEqual(settings.store.retries, 0)

    def test_the_environment_overrides_the_file(self):
        settings = self.load(
            "[store]\nurl = redis://127.0.0.1:6379/0\n",
            {"SCORING_STORE_URL": "redis://10.1.1.1:7000/2",
             "SCORING_SERVER_MAX_BODY_BYTES": "100",
             "SCORING_TEST_REDIS_URL": "not ours: ignored"})
        self.assertEqual(settings.store.url, "redis://10.1.1.1:7000/2")
        self.assertEqual(settings.server.max_body_bytes, 100)

    def test_an_override_beats_the_environment(self):
        settings = self.load("", {"SCORING_SERVER_PORT": "9000"},
                             [("--port", "server", "port", "9001")])
        self.assertEqual(settings.server.port, 9001)

    def test_an_empty_cache_url_means_the_store(self):
        settings = self.load("[store]\nurl = redis://10.0.0.5:6379/3\n")
        self.assertEqual(settings.cache_url, "redis://10.0.0.5:6379/3")
        settings = self.load("[cache]\nurl = redis://10.0.0.6:6379/0\n")
        self.assertEqual(settings.cache_url, "redis://10.0.0.6:6379/0")

    @cases([
        ("[server]\nport = abc\n",
         "[server] port = 'abc': expected an integer"),
        ("[server]\nport = 70000\n",
         "[server] port = '70000': expected an integer 1..65535"),
        ("[server]\nworkers = 0\n",
         "[server] workers = '0': expected an integer 1..64"),
        ("[store]\ntimeout = soon\n",
         "[store] timeout = 'soon': expected a number of seconds"),
        ("[store]\ntimeout = -1\n",
         "[store] timeout = '-1': expected seconds, at least 0.001 and"
         " under 3600"),
        ("[store]\nurl = http://x\n",
         "[store] url = 'http://x': expected redis://host:port/db"),
        ("[store]\nurl = redis://:6379/0\n",
         "[store] url = 'redis://:6379/0': expected redis://host:port/db"),
        ("[store]\nurl = redis://host:port/0\n",
         "[store] url = 'redis://host:port/0': expected a port 1..65535,"
         " not 'port'"),
        ("[store]\nurl = redis://h:6379/0?socket_timeout=abc\n",
         "[store] url = 'redis://h:6379/0?socket_timeout=abc': unknown URL"
         " option 'socket_timeout' (timeouts, retries and the pool size are"
         " config keys; ssl_* options need rediss://)"),
        ("[store]\nurl = redis://h:6379/0?db=two\n",
         "[store] url = 'redis://h:6379/0?db=two': URL option db='two':"
         " expected a database number"),
        ("[store]\nurl = redis://h:6379/0?colour=red\n",
         "unknown URL option 'colour'"),
        ("[store]\nurl = unix://\n",
         "[store] url = 'unix://': expected unix:///path/to/redis.sock"),
        ("[server]\nport = 47_399\n",
         "[server] port = '47_399': expected an integer"),
        ("[server]\nport = \u0664\u0667\u0663\u0669\u0669\n",
         "[server] port = '\u0664\u0667\u0663\u0669\u0669': expected an"
         " integer"),
        ("[server]\nport = 65536\n",
         "[server] port = '65536': expected an integer 1..65535"),
        ("[store]\ntimeout = 1_0\n",
         "[store] timeout = '1_0': expected a number of seconds"),
        ("[store]\ntimeout = nan\n",
         "[store] timeout = 'nan': expected a number of seconds"),
        ("[server]\nxheaders = maybe\n",
         "[server] xheaders = 'maybe': expected true or false"),
        ("[server]\nlog_format = xml\n",
         "[server] log_format = 'xml': expected one of text, json"),
        ("[store]\nmode = replicated\n",
         "[store] mode = 'replicated': expected one of standalone,"
         " sentinel, cluster"),
        ("[cache]\nmode = ring\n",
         "[cache] mode = 'ring': expected one of (empty), standalone,"
         " sentinel, cluster"),
        ("[store]\nsentinels = 10.0.0.1:26379,10.0.0.2\n",
         "[store] sentinels = '10.0.0.1:26379,10.0.0.2': expected"
         " host:port, not '10.0.0.2'"),
        ("[store]\nmode = sentinel\nsentinels = h:26379\n",
         "[store] mode = sentinel needs sentinels and service_name"),
        ("[cache]\nmode = sentinel\nservice_name = m\n",
         "[cache] mode = sentinel needs sentinels and service_name"),
        ("[store]\nsentinels = h:26379\nservice_name = m\n",
         "[store] sentinels, service_name: only mode = sentinel reads them"
         " (mode = standalone)"),
        ("[store]\nmode = cluster\nurl = redis://a:7000\npassword = pw\n",
         "[store] password: only mode = sentinel reads it (mode = cluster)"),
        ("[cache]\nservice_name = m\n",
         "[cache] service_name: only mode = sentinel reads it"
         " (mode = (empty))"),
        ("[cache]\nurl = redis://c:6379/0\ndb = 2\n",
         "[cache] db: only mode = sentinel reads it (mode = (empty))"),
        ("[store]\nurl = redis://a:1,b:2\n",
         "[store] url = 'redis://a:1,b:2': several nodes need mode ="
         " cluster"),
        ("[store]\nmode = cluster\nurl = unix:///tmp/r.sock\n",
         "[store] url = 'unix:///tmp/r.sock': a cluster needs redis://"),
        ("[store]\nmode = cluster\nurl =\n",
         "[store] mode = cluster needs a url"),
        # The mode as read from a file, not an interned literal.
        ("[store]\nmode = cluster\nurl = redis://a:7000/3\n",
         "[store] url = 'redis://a:7000/3': a cluster has database 0"),
        ("[DEFAULT]\nport = 80\n", "unknown section [DEFAULT]"),
        ("[cache]\nurl = redis://host:6379/x\n",
         "[cache] url = 'redis://host:6379/x': expected a database number"
         " after the port"),
        ("[server]\nlog_level = LOUD\n",
         "[server] log_level = 'LOUD': expected one of DEBUG, INFO,"
         " WARNING, ERROR, CRITICAL"),
        ("[server]\nprot = 80\n", "unknown key [server] prot"),
        ("[sever]\nport = 80\n", "unknown section [sever]"),
        ("port = 80\n", "File contains no section headers."),
    ])
    def test_a_bad_value_is_one_line_naming_key_and_value(self, case):
        text, message = case
        assert_refused_in_one_line(self, message, self.load, text)

    @cases([
        ("redis://:s3cret@h:6379/x", "redis://:***@h:6379/x"),
        ("redis://user:s3cret@h:6379/0?colour=red",
         "redis://user:***@h:6379/0?colour=red"),
        ("redis://:s3cret@h:port/0", "redis://:***@h:port/0"),
    ])
    def test_a_password_in_a_bad_url_is_masked(self, case):
        url, masked = case
        with self.assertRaises(config.ConfigError) as raised:
            self.load("", {"SCORING_STORE_URL": url})
        self.assertNotIn("s3cret", str(raised.exception))
        self.assertIn(masked, str(raised.exception))

    def test_a_bad_password_value_is_masked(self):
        with self.assertRaises(config.ConfigError) as raised:
            self.load("[store]\npassword = s3cret\n",
                      {"SCORING_STORE_PASSWORD_X": "1"})
        self.assertNotIn("s3cret", str(raised.exception))
        self.assertEqual(config.shown("password", "s3cret"), "***")
        self.assertEqual(config.shown("password", ""), "")

    @cases([
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://user:p%40ss@h:6380/1", "rediss://user:***@h:6380/1"),
        ("redis://user@h:6379/0", "redis://user@h:6379/0"),
        ("redis://:pw@a:1,b:2", "redis://:***@a:1,b:2"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
        ("user:s3cret@h:26379", "user:***@h:26379"),
        (":s3cret@h:26379", ":***@h:26379"),
        ("", ""),
    ])
    def test_mask_url(self, case):
        url, masked = case
        self.assertEqual(config.mask_url(url), masked)

    def load_bytes(self, content):
        """The path of a config file holding `content`, and the error that
        loading it raised."""
        path = write_config("")
        self.addCleanup(os.unlink, path)
        with open(path, "wb") as config_file:
            config_file.write(content)
        with self.assertRaises(config.ConfigError) as raised:
            config.load_settings(path, {})
        return path, str(raised.exception)

    def test_the_line_of_bad_utf8_counts_a_leading_blank_line(self):
        path, error = self.load_bytes(b"\n[server]\nhost = caf\xe9\n")
        self.assertEqual(error, "%s: line 3 is not UTF-8 text" % path)

    def test_several_nodes_in_standalone_mode_read_from_a_file(self):
        # The mode as the file spells it, not the built-in default.
        with self.assertRaises(config.ConfigError) as raised:
            self.load("[store]\nmode = standalone\nurl = redis://a:1,b:2\n")
        self.assertEqual(str(raised.exception),
                         "[store] url = 'redis://a:1,b:2': several nodes need"
                         " mode = cluster")

    @cases([("store", "mode", "expected one of"),
            ("server", "xheaders", "expected true or false")])
    def test_other_values_are_shown_as_typed_but_a_urls_password(self, case):
        # A URL pasted into the wrong key keeps its password masked, with
        # or without its scheme; any other text is shown, so the operator
        # sees what is wrong.
        section, key, expected = case
        with self.assertRaises(config.ConfigError) as raised:
            self.load("[%s]\n%s = redis://u:pw@h\n" % (section, key))
        self.assertIn("[%s] %s = 'redis://u:***@h': %s" % (
            section, key, expected), str(raised.exception))
        with self.assertRaises(config.ConfigError) as raised:
            self.load("[%s]\n%s = u:pw@h\n" % (section, key))
        self.assertIn("[%s] %s = 'u:***@h': %s" % (
            section, key, expected), str(raised.exception))
        with self.assertRaises(config.ConfigError) as raised:
            self.load("[%s]\n%s = bogus-value\n" % (section, key))
        self.assertIn("[%s] %s = 'bogus-value': %s" % (
            section, key, expected), str(raised.exception))

    def test_a_file_that_is_not_utf8_is_one_line(self):
        path, error = self.load_bytes(
            b"[server]\n; caf\xc3\xa9\nhost = caf\xe9\n")
        self.assertEqual(error, "%s: line 3 is not UTF-8 text" % path)

    def test_an_unknown_section_in_the_environment_is_refused(self):
        with self.assertRaises(config.ConfigError) as raised:
            self.load("", {"SCORING_STOER_URL": "redis://h:6379/0"})
        self.assertEqual(str(raised.exception),
                         "SCORING_STOER_URL: unknown section [stoer] (known:"
                         " server, auth, store, cache, limits, overload)")

    def test_the_test_harness_variables_are_not_config(self):
        settings = self.load("", {"SCORING_TEST_REDIS_URL": "anything",
                                  "SCORING_TEST_OTHER": "x",
                                  "OTHER_STORE_URL": "x"})
        self.assertEqual(settings, config.Settings())

    def test_the_service_s_variables_are_read_among_any_others(self):
        settings = self.load("", {"HOME": "/root", "LANG": "C.UTF-8",
                                  "SCORING_SERVER_PORT": "9000",
                                  "SCORING_STORE_RETRIES": "0",
                                  "XDG_RUNTIME_DIR": "/run/user/0"})
        self.assertEqual((settings.server.port, settings.store.retries),
                         (9000, 0))

    @cases([
        ("[server]\nport = 1\n", 1),
        ("[server]\nport = 65535\n", 65535),
        ("[server]\nport = +8080\n", 8080),
        ("[server]\nport =  8080 \n", 8080),
    ])
    def test_ports_at_their_bounds(self, case):
        text, port = case
        self.assertEqual(self.load(text).server.port, port)

    @cases([
        "redis://localhost/0",  # the port is optional: 6379
        "redis://localhost",
        "redis://[::1]/0",  # IPv6, without and with a port
        "redis://[::1]:65535/0",
        "redis://[2001:db8::1:5]/0",  # its last group is no port
        "redis://h:1/0",
        "rediss://user:pw@h:6380/15?ssl_cert_reqs=none",
        "unix:///run/redis/redis.sock?db=2",
        "redis://h:6379/0?client_name=api&protocol=3",
    ])
    def test_redis_urls_accepted(self, url):
        self.assertEqual(self.load("", {"SCORING_STORE_URL": url}).store.url,
                         url)

    @cases([
        ("redis://h:0/0", "expected a port 1..65535, not '0'"),
        ("redis://h:65536/0", "expected a port 1..65535, not '65536'"),
        ("redis://h:+1/0", "expected a port 1..65535, not '+1'"),
        ("redis://[::1:6379/0", "Invalid IPv6 URL"),
        # A stray "]" is no bare IPv6 address: the port is checked.
        ("redis://[::1]:1,a]:x/0", "expected a port 1..65535, not 'x'"),
        ("redis://h:6379/0?db=", "URL option db='': expected a database"
                                 " number"),  # blank, still checked
        ("unix:///run/redis.sock?socket_timeout=1",
         "unknown URL option 'socket_timeout' (timeouts, retries and the"
         " pool size are config keys; ssl_* options need rediss://)"),
        ("unix:///run/redis.sock?ssl_cert_reqs=none",
         "unknown URL option 'ssl_cert_reqs' (timeouts, retries and the"
         " pool size are config keys; ssl_* options need rediss://)"),
    ])
    def test_redis_urls_refused(self, case):
        url, message = case
        with self.assertRaises(config.ConfigError) as raised:
            self.load("", {"SCORING_STORE_URL": url})
        self.assertEqual(str(raised.exception),
                         "SCORING_STORE_URL: [store] url = %r: %s" % (
                             url, message))

    @cases([("10.0.0.1:65535", (("10.0.0.1", 65535),)),
            ("a:1, [::1]:2,", (("a", 1), ("::1", 2)))])
    def test_sentinel_nodes_accepted(self, case):
        text, nodes = case
        self.assertEqual(self.load("[store]\nmode = sentinel\nsentinels = %s"
                                   "\nservice_name = m\n" % text)
                         .store.sentinels, nodes)

    @cases(["h:0", "h:65536", "h:+1", "h:-1", ":26379", "h", "user@h:26379",
            "h/0:26379"])
    def test_sentinel_nodes_refused(self, node):
        with self.assertRaises(config.ConfigError) as raised:
            self.load("[store]\nsentinels = %s\n" % node)
        self.assertEqual(str(raised.exception).rpartition(": ")[2],
                         "expected host:port, not %r" % node)

    @cases([
        ("[store]\nmode = sentinel\nsentinels = 10.0.0.1:26379, "
         "[::1]:26380\nservice_name = mymaster\ndb = 2\npassword = pw\n",
         {"mode": "sentinel", "sentinels": (("10.0.0.1", 26379),
                                            ("::1", 26380)),
          "service_name": "mymaster", "db": 2, "password": "pw"}),
        ("[store]\nmode = cluster\nurl = redis://a:7000,b:7001\n",
         {"mode": "cluster", "url": "redis://a:7000,b:7001"}),
    ])
    def test_redis_modes(self, case):
        text, expected = case
        store = self.load(text).store
        self.assertEqual({key: getattr(store, key) for key in expected},
                         expected)

    def test_the_cache_uses_the_store_redis_in_every_mode(self):
        settings = self.load("[store]\nmode = sentinel\nsentinels = h:1\n"
                             "service_name = m\npassword = pw\n"
                             "[cache]\ntimeout = 0.3\n")
        cache = settings.cache_redis
        self.assertEqual((cache.mode, cache.sentinels, cache.service_name,
                          cache.password, cache.timeout),
                         ("sentinel", (("h", 1),), "m", "pw", 0.3))

    def test_a_cache_url_of_its_own_is_standalone(self):
        settings = self.load("[store]\nmode = sentinel\nsentinels = h:1\n"
                             "service_name = m\n"
                             "[cache]\nurl = redis://c:6379/1\n")
        self.assertEqual((settings.cache_redis.mode, settings.cache_redis.url),
                         ("standalone", "redis://c:6379/1"))

    @cases([("true", True), ("Yes", True), ("on", True), ("1", True),
            ("false", False), ("NO", False), ("off", False), ("0", False)])
    def test_booleans(self, case):
        text, value = case
        self.assertEqual(
            self.load("[server]\nxheaders = %s\n" % text).server.xheaders,
            value)

    def test_the_shipped_config_ini_equals_the_built_in_defaults(self):
        self.assertEqual(config.load_settings(CONFIG_INI, {}),
                         config.Settings())

    @cases(ALL_KEYS)
    def test_each_default_passes_its_own_parser(self, case):
        field = field_of(*case)
        parse = field.metadata["parse"]
        self.assertEqual(parse(_as_text(field.default)), field.default)

    def test_a_bad_environment_value_names_the_variable(self):
        with self.assertRaises(config.ConfigError) as raised:
            self.load("", {"SCORING_STORE_RETRIES": "many"})
        self.assertEqual(str(raised.exception),
                         "SCORING_STORE_RETRIES: [store] retries = 'many':"
                         " expected an integer")

    def test_an_unknown_key_in_a_known_section_of_the_environment(self):
        with self.assertRaises(config.ConfigError) as raised:
            self.load("", {"SCORING_STORE_TIMOUT": "1"})
        self.assertIn("unknown key [store] timout", str(raised.exception))

    def test_a_missing_file_is_one_line(self):
        with self.assertRaises(config.ConfigError) as raised:
            config.load_settings("/nonexistent/config.ini", {})
        self.assertEqual(
            str(raised.exception),
            "cannot read config /nonexistent/config.ini: No such file or"
            " directory")

    def test_the_worst_case_of_one_store_call(self):
        # config.ini: (retries + 1) x (connect_timeout + timeout) plus
        # retries x backoff_max. Unlike the defaults (2 retries, where
        # 2 + 1 == 2 | 1 and 3 x 1.5 == 3 + 1.5), these tell each
        # operation from any other.
        store = config.StoreSettings(connect_timeout=0.25, timeout=0.5,
                                     retries=3, backoff_max=2.0)
        self.assertEqual(store.worst_call_seconds, 4 * 0.75 + 3 * 2.0)
        self.assertEqual(config.StoreSettings().worst_call_seconds, 5.5)

    @cases(["DEBUG", "info", "Warning", "ERROR", "CRITICAL"])
    def test_the_log_level_is_the_logging_module_s(self, name):
        settings = self.load("[server]\nlog_level = %s\n" % name)
        self.assertEqual(settings.log_level, getattr(logging, name.upper()))

    def test_settings_are_frozen(self):
        with self.assertRaises(dataclasses.FrozenInstanceError):
            config.Settings().server.port = 1
        with self.assertRaises(dataclasses.FrozenInstanceError):
            config.Settings().server = config.ServerSettings()

    @cases(list(config.SECTIONS))
    def test_every_section_is_frozen(self, section):
        """The methods build an Authenticator once per [auth] object: one
        changed in place would go on checking the old salts."""
        values = getattr(config.Settings(), section)
        key = dataclasses.fields(values)[0].name
        with self.assertRaises(dataclasses.FrozenInstanceError):
            setattr(values, key, getattr(values, key))


# Every bounded integer key: (section, key, lowest, highest or None).
INTEGER_RANGES = [
    ("server", "port", 1, 65535), ("server", "workers", 1, 64),
    ("server", "max_body_bytes", 1, 16 * 1024 * 1024),
    ("server", "max_client_ids", 1, None),
    ("server", "max_connections", 1, None),
    ("server", "max_worker_restarts", 0, None),
    ("store", "db", 0, None), ("store", "retries", 0, 10),
    ("store", "max_connections", 1, None),
    ("cache", "db", 0, None), ("cache", "retries", 0, 10),
    ("cache", "max_connections", 1, None), ("cache", "ttl", 1, None),
    ("cache", "failure_threshold", 1, None), ("cache", "local_size", 0, None),
    ("limits", "burst", 0, None), ("overload", "min_in_flight", 1, None),
    ("overload", "max_held", 0, None),
]
SECONDS_KEYS = [
    ("server", "idle_timeout"), ("server", "header_timeout"),
    ("server", "body_timeout"),
    ("server", "shutdown_timeout"), ("server", "write_timeout"),
    ("server", "restart_window"),
    ("store", "connect_timeout"), ("store", "timeout"), ("store", "backoff"),
    ("store", "backoff_max"), ("cache", "connect_timeout"),
    ("cache", "timeout"), ("cache", "backoff"), ("cache", "backoff_max"),
    ("cache", "reset_timeout"), ("cache", "local_ttl"),
    ("overload", "starved_lag"),
]
# Seconds, or 0 for off.
OFF_OR_SECONDS_KEYS = [("overload", "shed_lag"), ("overload", "budget")]
# Calls a second, 0 for no limit.
RATE_KEYS = [("limits", "rate")]


class KeyBoundsTest(unittest.TestCase):
    """Each key accepts its whole range, both ends included, and refuses
    one step past either end with a message that states the range."""

    def value(self, section, key, text):
        # db is read in sentinel mode only (any other mode refuses it).
        mode = ([("test", section, "mode", "sentinel"),
                 ("test", section, "sentinels", "h:26379"),
                 ("test", section, "service_name", "m")]
                if key == "db" else [])
        settings = config.load_settings(
            None, {}, mode + [("test", section, key, text)])
        return getattr(getattr(settings, section), key)

    def refusal(self, section, key, text):
        with self.assertRaises(config.ConfigError) as raised:
            self.value(section, key, text)
        return str(raised.exception)

    def test_the_lists_name_every_number_key(self):
        numbers = {(section, field.name)
                   for section, factory in config.SECTIONS.items()
                   for field in dataclasses.fields(factory)
                   if field.type in ("int", "float", int, float)}
        self.assertEqual(
            numbers, {(section, key) for section, key, *_ in INTEGER_RANGES}
            | set(SECONDS_KEYS) | set(OFF_OR_SECONDS_KEYS) | set(RATE_KEYS))

    @cases(OFF_OR_SECONDS_KEYS)
    def test_off_or_seconds_keys_take_0_or_seconds(self, case):
        section, key = case
        for text, value in (("0", 0.0), ("0.0", 0.0), ("0.001", 0.001),
                            ("3599.5", 3599.5)):
            self.assertEqual(self.value(section, key, text), value)
        for text in ("0.0009", "3600", "-0.5", "off"):
            self.assertEqual(
                self.refusal(section, key, text),
                "test: [%s] %s = %r: expected 0 (off) or seconds, at least"
                " 0.001 and under 3600" % (section, key, text))

    @cases(RATE_KEYS)
    def test_rate_keys_take_0_to_a_million_calls_a_second(self, case):
        section, key = case
        for text, value in (("0", 0.0), ("0.5", 0.5), ("1e6", 1e6)):
            self.assertEqual(self.value(section, key, text), value)
        for text, message in (
                ("-1", "expected calls a second, 0 (no limit) to 1000000"),
                ("1000001", "expected calls a second, 0 (no limit) to"
                 " 1000000"),
                ("fast", "expected calls a second (a number; 0: no limit)"),
                ("inf", "expected calls a second (a number; 0: no limit)")):
            self.assertEqual(self.refusal(section, key, text),
                             "test: [%s] %s = %r: %s" % (
                                 section, key, text, message))

    @cases(INTEGER_RANGES)
    def test_integer_keys_at_both_ends(self, case):
        section, key, lowest, highest = case
        stated = ("%d..%d" % (lowest, highest) if highest is not None
                  else ">= %d" % lowest)
        self.assertEqual(self.value(section, key, str(lowest)), lowest)
        self.assertEqual(
            self.refusal(section, key, str(lowest - 1)),
            "test: [%s] %s = '%d': expected an integer %s" % (
                section, key, lowest - 1, stated))
        if highest is None:
            self.assertEqual(self.value(section, key, "1000000"), 1000000)
            return
        self.assertEqual(self.value(section, key, str(highest)), highest)
        self.assertEqual(
            self.refusal(section, key, str(highest + 1)),
            "test: [%s] %s = '%d': expected an integer %s" % (
                section, key, highest + 1, stated))

    @cases(SECONDS_KEYS)
    def test_seconds_keys_are_a_millisecond_or_more_under_an_hour(
            self, case):
        section, key = case
        self.assertEqual(self.value(section, key, "0.001"), 0.001)
        self.assertEqual(self.value(section, key, "1e-3"), 0.001)
        self.assertEqual(self.value(section, key, "3599.5"), 3599.5)
        for text in ("0", "0.0009", "1e-9", "3600", "86400", "-0.5"):
            self.assertEqual(
                self.refusal(section, key, text),
                "test: [%s] %s = %r: expected seconds, at least 0.001 and"
                " under 3600" % (section, key, text))


class RefusedAtStartUpTest(unittest.TestCase):
    """Values that cannot be right are refused in one line (each was
    accepted before, silently)."""

    @cases([
        ("SCORING_SERVER_HOST", "",
         "SCORING_SERVER_HOST: [server] host = '': expected an address to"
         " listen on (write 0.0.0.0 if every interface is meant)"),
        ("SCORING_SERVER_HOST", "  ",
         "SCORING_SERVER_HOST: [server] host = '  ': expected an address to"
         " listen on (write 0.0.0.0 if every interface is meant)"),
        ("SCORING_AUTH_SALT", "",
         "SCORING_AUTH_SALT: [auth] salt = '': expected a salt: an empty"
         " one makes tokens anyone can compute"),
        ("SCORING_AUTH_ADMIN_SALT", "",
         "SCORING_AUTH_ADMIN_SALT: [auth] admin_salt = '': expected a salt:"
         " an empty one makes tokens anyone can compute"),
        ("SCORING_SERVER_MAX_BODY_BYTES", "99999999999999",
         "SCORING_SERVER_MAX_BODY_BYTES: [server] max_body_bytes ="
         " '99999999999999': expected an integer 1..16777216"),
        ("SCORING_SERVER_MAX_BODY_BYTES", "16777217",
         "SCORING_SERVER_MAX_BODY_BYTES: [server] max_body_bytes ="
         " '16777217': expected an integer 1..16777216"),
        ("SCORING_SERVER_BODY_TIMEOUT", "1e-9",
         "SCORING_SERVER_BODY_TIMEOUT: [server] body_timeout = '1e-9':"
         " expected seconds, at least 0.001 and under 3600"),
        ("SCORING_STORE_TIMEOUT", "0.0005",
         "SCORING_STORE_TIMEOUT: [store] timeout = '0.0005': expected"
         " seconds, at least 0.001 and under 3600"),
    ])
    def test_a_value_that_cannot_be_right_is_one_line(self, case):
        name, text, message = case
        with self.assertRaises(config.ConfigError) as raised:
            config.load_settings(None, {name: text})
        self.assertEqual(str(raised.exception), message)

    @cases([("server", "host", "0.0.0.0"), ("server", "host", "::"),
            ("auth", "salt", "s"), ("auth", "admin_salt", "0"),
            ("server", "max_body_bytes", "16777216")])
    def test_the_nearest_values_that_can_be_right_are_taken(self, case):
        section, key, text = case
        settings = config.load_settings(None, {}, [("t", section, key, text)])
        self.assertEqual(str(getattr(getattr(settings, section), key)), text)

    def test_an_empty_salt_in_a_file_is_refused_too(self):
        path = write_config("[auth]\nsalt =\n")
        self.addCleanup(os.unlink, path)
        with self.assertRaises(config.ConfigError) as raised:
            config.load_settings(path, {})
        self.assertEqual(str(raised.exception), "%s: [auth] salt = '':"
                         " expected a salt: an empty one makes tokens anyone"
                         " can compute" % path)


class CacheSharesStoreTest(unittest.TestCase):
    """Whether the cache's Redis is the store's server (its memory is
    then shared: docs/operations.md, "Memory")."""

    @cases([
        ({}, True),
        ({"SCORING_CACHE_URL": "redis://127.0.0.1:6379/1"}, True),
        ({"SCORING_CACHE_URL": "redis://:pw@127.0.0.1/0"}, True),
        ({"SCORING_CACHE_URL": "redis://127.0.0.1:6380/0"}, False),
        ({"SCORING_CACHE_URL": "redis://10.0.0.9:6379/0"}, False),
        ({"SCORING_CACHE_MODE": "cluster",
          "SCORING_CACHE_URL": "redis://127.0.0.1:6379"}, False),
        ({"SCORING_STORE_MODE": "sentinel", "SCORING_STORE_URL": "",
          "SCORING_STORE_SENTINELS": "h:1", "SCORING_STORE_SERVICE_NAME":
          "m"}, True),
        ({"SCORING_STORE_URL": "unix:///run/redis.sock"}, True),
        ({"SCORING_STORE_URL": "unix:///run/redis.sock",
          "SCORING_CACHE_URL": "unix:///run/cache.sock"}, False),
        ({"SCORING_STORE_MODE": "cluster",
          "SCORING_STORE_URL": "redis://10.0.0.1:7000,10.0.0.2:7001"}, True),
        ({"SCORING_STORE_MODE": "cluster",
          "SCORING_STORE_URL": "redis://10.0.0.1:7000,10.0.0.2:7001",
          "SCORING_CACHE_MODE": "cluster",
          "SCORING_CACHE_URL": "redis://10.0.0.3:7000"}, False),
        ({"SCORING_STORE_MODE": "cluster",
          "SCORING_STORE_URL": "redis://10.0.0.1:7000,10.0.0.2:7001",
          "SCORING_CACHE_URL": "redis://10.0.0.3:6379"}, False),
    ])
    def test_the_same_server_whatever_its_database(self, case):
        environ, shared = case
        self.assertEqual(config.load_settings(None, environ)
                         .cache_shares_store, shared)

    @cases([("m", True), ("other", False)])
    def test_sentinel_mode_read_from_a_file_names_its_master(self, case):
        # A file's values are strings of their own, not the literals the
        # code compares them with.
        service_name, shared = case
        path = write_config(
            "[store]\nmode = sentinel\nurl =\nsentinels = h:26379\n"
            "service_name = m\n[cache]\nmode = sentinel\n"
            "sentinels = h:26379\nservice_name = %s\n" % service_name)
        self.addCleanup(os.unlink, path)
        self.assertEqual(config.load_settings(path, {}).cache_shares_store,
                         shared)


class RedisUrlOptionsTest(unittest.TestCase):
    """A URL option redis-py would refuse at the first call (every score a
    500, every interests call a 503) is refused at start-up instead."""

    @cases([
        ("redis://h:6379/0?ssl_cert_reqs=required",
         "unknown URL option 'ssl_cert_reqs'"),
        ("redis://h:6379/0?protocol=9",
         "URL option protocol='9': expected 2 or 3"),
        ("redis://h:6379/0?client_name=a%20b",
         "URL option client_name='a b': expected a name without spaces"),
        ("redis://h:6379/0?socket_keepalive=off",
         "URL option socket_keepalive='off': expected true or false"),
        ("rediss://h:6379/0?ssl_cert_reqs=bogus",
         "URL option ssl_cert_reqs='bogus': expected none, optional or"
         " required"),
        ("redis://h:6379/0?health_check_interval=-1",
         "URL option health_check_interval='-1': expected whole seconds"),
    ])
    def test_a_bad_option_is_refused(self, case):
        url, message = case
        with self.assertRaises(config.ConfigError) as raised:
            config.load_settings(None, {"SCORING_STORE_URL": url})
        self.assertIn(message, str(raised.exception))

    @cases([
        "redis://h:6379/0?db=2&protocol=3&client_name=scoring"
        "&health_check_interval=30&socket_keepalive=true",
        "rediss://h:6380/0?ssl_cert_reqs=none&ssl_check_hostname=false"
        "&ssl_ca_certs=/etc/ssl/ca.pem",
    ])
    def test_a_good_option_is_kept(self, url):
        settings = config.load_settings(None, {"SCORING_STORE_URL": url})
        self.assertEqual(settings.store.url, url)

    def test_a_cluster_has_database_0_only(self):
        with self.assertRaises(config.ConfigError) as raised:
            config.load_settings(None, {
                "SCORING_STORE_MODE": "cluster",
                "SCORING_STORE_URL": "redis://127.0.0.1:7000/3"})
        self.assertEqual(str(raised.exception),
                         "[store] url = 'redis://127.0.0.1:7000/3': a cluster"
                         " has database 0 only")
        config.load_settings(None, {
            "SCORING_STORE_MODE": "cluster",
            "SCORING_STORE_URL": "redis://127.0.0.1:7000/0"})


class SentinelNodesTest(unittest.TestCase):
    def test_a_url_typed_as_a_sentinel_is_refused_masked(self):
        with self.assertRaises(config.ConfigError) as raised:
            config.load_settings(None, {
                "SCORING_STORE_SENTINELS": "redis://:s3cret@h:26379"})
        self.assertEqual(
            str(raised.exception),
            "SCORING_STORE_SENTINELS: [store] sentinels ="
            " 'redis://:***@h:26379': expected host:port, not"
            " 'redis://:***@h:26379'")

    def test_a_password_typed_without_a_scheme_is_masked(self):
        with self.assertRaises(config.ConfigError) as raised:
            config.load_settings(None, {
                "SCORING_STORE_SENTINELS": "user:s3cret@h:26379"})
        self.assertNotIn("s3cret", str(raised.exception))
        self.assertIn("'user:***@h:26379'", str(raised.exception))

    @cases(["h:x", "h:", "h:2a"])
    def test_a_node_whose_port_is_no_number_is_refused_saying_so(self, node):
        with self.assertRaises(config.ConfigError) as raised:
            config.load_settings(None, {
                "SCORING_STORE_MODE": "sentinel",
                "SCORING_STORE_SERVICE_NAME": "m",
                "SCORING_STORE_SENTINELS": node})
        self.assertEqual(
            str(raised.exception),
            "SCORING_STORE_SENTINELS: [store] sentinels = %r: expected"
            " host:port, not %r" % (node, node))


class AccountLimitsTest(unittest.TestCase):
    """[limits.accounts]: account = rate[/burst], accounts in their exact
    case; from the environment, one SCORING_LIMITS_ACCOUNTS list."""

    def load(self, text, environ=None):
        path = write_config(text)
        self.addCleanup(os.unlink, path)
        return config.load_settings(path, environ or {})

    def test_accounts_keep_their_case_and_the_other_keys_do_not(self):
        settings = self.load("[limits]\nRate = 5\nburst = 2\n"
                             "[limits.accounts]\nAcme = 50/100\n"
                             "acme = 10\nGlobex Corp = 0\n")
        self.assertEqual(settings.limits.rate, 5.0)
        self.assertEqual(settings.limits.overrides(), {
            "Acme": (50.0, 100), "acme": (10.0, None),
            "Globex Corp": (0.0, None)})

    def test_the_environment_s_list_replaces_the_section(self):
        settings = self.load(
            "[limits.accounts]\nacme = 1\n",
            {"SCORING_LIMITS_ACCOUNTS": "acme=50/100, Globex=10,"})
        self.assertEqual(settings.limits.overrides(), {
            "acme": (50.0, 100), "Globex": (10.0, None)})

    def test_the_sections_after_limits_accounts_are_read_too(self):
        settings = self.load("[limits.accounts]\nacme = 50/100\n"
                             "[limits]\nrate = 5\n[overload]\nbudget = 0\n")
        self.assertEqual(settings.limits.overrides(), {"acme": (50.0, 100)})
        self.assertEqual(settings.limits.rate, 5.0)
        self.assertEqual(settings.overload.budget, 0.0)

    def test_an_empty_item_within_the_environment_s_list_is_skipped(self):
        settings = self.load(
            "", {"SCORING_LIMITS_ACCOUNTS": "acme=50/100,, ,Globex=10"})
        self.assertEqual(settings.limits.overrides(), {
            "acme": (50.0, 100), "Globex": (10.0, None)})

    @cases([
        ("[limits.accounts]\nacme = fast\n",
         "[limits.accounts] acme = 'fast': expected rate[/burst]: calls a"
         " second, then a whole number of calls at once (e.g. 50/100)"),
        ("[limits.accounts]\nAcme = 5/1.5\n",
         "[limits.accounts] Acme = '5/1.5': expected rate[/burst]"),
        ("[limits.accounts]\nacme = 5/-1\n",
         "[limits.accounts] acme = '5/-1': expected rate[/burst]"),
        ("[limits.accounts]\nacme = -5\n",
         "[limits.accounts] acme = '-5': expected calls a second, 0 (no"
         " limit) to 1000000"),
        ("[limits.accounts]\nacme = 2e6\n",
         "[limits.accounts] acme = '2e6': expected calls a second, 0 (no"
         " limit) to 1000000"),
        ("[limits.accounts]\nacme =\n",
         "[limits.accounts] acme = '': expected rate[/burst]"),
        ("[limits]\nrate = 1\nRATE = 2\n",
         "[limits] rate: the key is given twice"),
        ("[limits]\naccount = 1\n", "unknown key [limits] account"),
        ("[limits.acounts]\nacme = 1\n",
         "unknown section [limits.acounts] (known: server, auth, store,"
         " cache, limits, overload, limits.accounts)"),
        ("[limits]\nenforce = maybe\n",
         "[limits] enforce = 'maybe': expected true or false"),
    ])
    def test_a_bad_line_is_one_line_naming_key_and_value(self, case):
        text, message = case
        assert_refused_in_one_line(self, message, self.load, text)

    @cases([
        ("acme=fast", "SCORING_LIMITS_ACCOUNTS: [limits] accounts ="
         " 'acme=fast': acme: expected rate[/burst]"),
        ("acme=1,globex", "SCORING_LIMITS_ACCOUNTS: [limits] accounts ="
         " 'acme=1,globex': expected account=rate[/burst],..., not"
         " 'globex'"),
        ("acme=1/2/3", "acme: expected rate[/burst]"),
    ])
    def test_a_bad_list_in_the_environment_names_it(self, case):
        text, message = case
        assert_refused_in_one_line(self, message, self.load, "",
                                   {"SCORING_LIMITS_ACCOUNTS": text})
