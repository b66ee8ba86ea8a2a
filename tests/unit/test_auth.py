import datetime
import json
import unittest

import mock

from scoring_api import auth
from scoring_api.auth import Authenticator
from tests.support import helpers
from tests.support.cases import cases
from tests.support.clock import stop_auth_clock

AUTH = Authenticator(salt="Otus", admin_login="admin", admin_salt="42")
TEN_TO_NOON = datetime.datetime(2026, 11, 24, 11, 59, 59)
NOON = datetime.datetime(2026, 11, 24, 12, 0, 0)


class UserTokenTest(unittest.TestCase):
    def test_the_token_is_sha512_of_account_login_and_salt(self):
        self.assertTrue(AUTH.check("horns&hoofs", "h&f", helpers.user_token()))

    def test_the_spec_example_token(self):
        # printf '%s' 'horns&hoofsh&fOtus' | sha512sum
        self.assertEqual(
            AUTH.user_token("horns&hoofs", "h&f"),
            "55cc9ce545bcd144300fe9efc28e65d415b923ebb6be1e19d2750a2c03e80dd2"
            "09a27954dca045e5bb12418e7d89b6d718a9e35af34e14e1d5bcd5a08f21fc95")

    def test_an_absent_account_counts_as_empty(self):
        self.assertTrue(AUTH.check(None, "h&f", helpers.user_token("", "h&f")))

    @cases(["", None, "sdd", helpers.user_token("other", "h&f")])
    def test_a_wrong_or_empty_token_fails(self, token):
        self.assertFalse(AUTH.check("horns&hoofs", "h&f", token))

    def test_a_non_ascii_token_fails_without_error(self):
        self.assertFalse(AUTH.check("horns&hoofs", "h&f", "\u0442\u043e"))

    def test_salts_come_from_the_settings(self):
        auth = Authenticator(salt="pepper", admin_login="root",
                             admin_salt="7")
        self.assertTrue(auth.check("a", "b", helpers.user_token(
            "a", "b", salt="pepper")))
        self.assertFalse(auth.check("a", "b", helpers.user_token("a", "b")))
        self.assertTrue(auth.is_admin("root"))
        self.assertFalse(auth.is_admin("admin"))


class KeptUserTokenTest(unittest.TestCase):
    def setUp(self):
        auth._user_token.cache_clear()

    def sha512_calls(self, account, login, checks=2):
        with mock.patch.object(auth, "_sha512", wraps=auth._sha512) as sha:
            for _ in range(checks):
                self.assertTrue(AUTH.check(account, login, helpers.user_token(
                    account, login)))
        return sha.call_count

    def test_a_login_s_token_is_computed_once(self):
        self.assertEqual(self.sha512_calls("kept", "once"), 1)

    def test_a_kept_token_is_its_salt_s_own(self):
        pepper = Authenticator(salt="pepper", admin_login="admin",
                               admin_salt="42")
        token = helpers.user_token("a", "b")
        self.assertTrue(AUTH.check("a", "b", token))  # kept
        self.assertFalse(pepper.check("a", "b", token))
        self.assertTrue(pepper.check("a", "b", helpers.user_token(
            "a", "b", salt="pepper")))

    def test_4096_tokens_are_kept_the_oldest_computed_again(self):
        # docs/performance.md: 4,096 kept.
        logins = ["login%d" % number for number in range(4097)]
        for login in logins:
            AUTH.user_token("a", login)
        self.assertEqual(auth._user_token.cache_info().currsize, 4096)
        self.assertEqual(self.sha512_calls("a", logins[0], checks=1), 1)
        self.assertEqual(self.sha512_calls("a", logins[-1], checks=1), 0)

    # (account, login, kept): kept up to 256 characters together
    # (docs/performance.md), however they are split.
    @cases([("a", "l" * 255, True), ("ab", "l" * 255, False),
            ("", "l" * 257, False), (None, "l" * 256, True),
            ("a" * 128, "l" * 128, True)])
    def test_tokens_of_at_most_256_characters_are_kept(self, case):
        account, login, kept = case
        self.assertEqual(self.sha512_calls(account, login), 1 if kept else 2)


class AdminTokenTest(unittest.TestCase):
    def test_the_admin_token_is_sha512_of_the_hour_and_admin_salt(self):
        # printf '%s' '202611241242' | sha512sum
        self.assertEqual(
            AUTH.admin_token(NOON),
            "c5c0e43f78a3fe682938b74f1ef3cfca16fd6cea229eea98027c87e6c419b5f7"
            "de64f93295c94d4a566f5c38cc1b78bf2cefedb9707993dd1cae19b859b3e55c")

    def test_the_admin_token_of_the_current_hour_passes(self):
        token = helpers.admin_token(NOON)
        self.assertTrue(AUTH.check("horns&hoofs", "admin", token, now=NOON))

    def test_the_admin_token_holds_for_the_whole_hour(self):
        token = helpers.admin_token(NOON)
        self.assertTrue(AUTH.check(None, "admin", token,
                                   now=NOON.replace(minute=59, second=59)))

    def test_last_hours_admin_token_fails_at_the_hour_boundary(self):
        token = helpers.admin_token(TEN_TO_NOON)
        self.assertTrue(AUTH.check(None, "admin", token, now=TEN_TO_NOON))
        self.assertFalse(AUTH.check(None, "admin", token, now=NOON))

    def test_a_user_token_does_not_make_an_admin(self):
        token = helpers.user_token("horns&hoofs", "admin")
        self.assertFalse(AUTH.check("horns&hoofs", "admin", token, now=NOON))

    def test_without_a_time_given_the_token_is_that_of_the_clocks_hour(self):
        stop_auth_clock(self, NOON)
        self.assertEqual(AUTH.admin_token(), AUTH.admin_token(NOON))
        self.assertTrue(AUTH.check(None, "admin", helpers.admin_token(NOON)))
        self.assertFalse(AUTH.check(
            None, "admin", helpers.admin_token(TEN_TO_NOON)))

    def test_the_admin_salt_comes_from_the_settings(self):
        other = Authenticator(salt="Otus", admin_login="admin",
                              admin_salt="43")
        self.assertFalse(other.check(None, "admin", helpers.admin_token(NOON),
                                     now=NOON))
        self.assertTrue(other.check(
            None, "admin", helpers.admin_token(NOON, salt="43"), now=NOON))

    def test_a_login_decoded_from_a_request_body_is_the_admin(self):
        login = json.loads('{"login": "admin"}')["login"]
        self.assertTrue(AUTH.is_admin(login))
        self.assertTrue(AUTH.check(None, login, helpers.admin_token(NOON),
                                   now=NOON))

    @cases(["Admin", "admin ", "administrator", ""])
    def test_the_admin_login_is_an_exact_match(self, login):
        self.assertFalse(AUTH.is_admin(login))
        token = helpers.user_token("horns&hoofs", login)
        self.assertTrue(AUTH.check("horns&hoofs", login, token, now=NOON))


class WallClockTest(unittest.TestCase):
    def test_the_clock_is_the_servers_local_time(self):
        before = datetime.datetime.now()
        now = auth.local_now()
        self.assertTrue(before <= now <= datetime.datetime.now())
