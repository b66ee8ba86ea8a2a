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
         "[store] url = 'redis://host:port/0': Port could not be cast to"
         " integer value as 'port'"),
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
