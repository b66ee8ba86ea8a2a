import configparser
import dataclasses
import os
import tempfile
import unittest

from scoring_api import config
from tests.cases import cases

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

    def test_the_shipped_config_ini_documents_every_key(self):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(CONFIG_INI)
        for section, factory in config.SECTIONS.items():
            for field in dataclasses.fields(factory):
                with self.subTest(section=section, key=field.name):
                    self.assertTrue(parser.has_option(section, field.name))

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
         "[store] timeout = '-1': expected seconds, more than 0 and"
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
         " config keys)"),
        ("[store]\nurl = redis://h:6379/0?db=two\n",
         "[store] url = 'redis://h:6379/0?db=two': URL option db='two' is"
         " not valid"),
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
        ("[store]\nurl = redis://a:1,b:2\n",
         "[store] url = 'redis://a:1,b:2': several nodes need mode ="
         " cluster"),
        ("[store]\nmode = cluster\nurl = unix:///tmp/r.sock\n",
         "[store] url = 'unix:///tmp/r.sock': a cluster needs redis://"),
        ("[store]\nmode = cluster\nurl =\n",
         "[store] mode = cluster needs a url"),
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
        with self.assertRaises(config.ConfigError) as raised:
            self.load(text)
        self.assertIn(message, str(raised.exception))
        self.assertNotIn("\n", str(raised.exception))

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
        ("", ""),
    ])
    def test_mask_url(self, case):
        url, masked = case
        self.assertEqual(config.mask_url(url), masked)

    def test_a_file_that_is_not_utf8_is_one_line(self):
        path = write_config("")
        self.addCleanup(os.unlink, path)
        with open(path, "wb") as config_file:
            config_file.write(b"[server]\n; caf\xc3\xa9\nhost = caf\xe9\n")
        with self.assertRaises(config.ConfigError) as raised:
            config.load_settings(path, {})
        self.assertEqual(str(raised.exception),
                         "%s: line 3 is not UTF-8 text" % path)

    def test_an_unknown_section_in_the_environment_is_refused(self):
        with self.assertRaises(config.ConfigError) as raised:
            self.load("", {"SCORING_STOER_URL": "redis://h:6379/0"})
        self.assertEqual(str(raised.exception),
                         "SCORING_STOER_URL: unknown section [stoer] (known:"
                         " server, auth, store, cache)")

    def test_the_test_harness_variables_are_not_config(self):
        settings = self.load("", {"SCORING_TEST_REDIS_URL": "anything",
                                  "SCORING_TEST_OTHER": "x",
                                  "OTHER_STORE_URL": "x"})
        self.assertEqual(settings, config.Settings())

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

    def test_each_default_passes_its_own_parser(self):
        for section, factory in config.SECTIONS.items():
            for field in dataclasses.fields(factory):
                with self.subTest(section=section, key=field.name):
                    text = _as_text(field.default)
                    parse = field.metadata["parse"]
                    self.assertEqual(parse(text), field.default)

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
        store = config.StoreSettings(connect_timeout=0.5, timeout=1.0,
                                     retries=2, backoff_max=0.5)
        self.assertEqual(store.worst_call_seconds, 3 * 1.5 + 2 * 0.5)

    def test_settings_are_frozen(self):
        with self.assertRaises(dataclasses.FrozenInstanceError):
            config.Settings().server.port = 1
