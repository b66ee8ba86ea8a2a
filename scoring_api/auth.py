"""Tokens: who may call the API (docs/api.md, "Authentication")."""
import datetime
import functools
import hashlib
import hmac

# User tokens kept once computed: one SHA-512 per account and login, not
# one per call (measured: authenticating a call 1.1 us instead of 2.3;
# 1.8 % of a cached score's CPU time).
# Only for an account and login of KEPT_MAX_CHARS together at most, so
# that the cache holds a few MB whatever callers send.
USER_TOKENS_KEPT = 4096
KEPT_MAX_CHARS = 256


def local_now():
    """The server's local time: the admin token changes with its hour.

    A function of its own so that tests can stop the clock.
    """
    return datetime.datetime.now()


class Authenticator:
    """Checks request tokens against the salts from `[auth]`."""

    def __init__(self, salt, admin_login, admin_salt):
        self.salt = salt
        self.admin_login = admin_login
        self.admin_salt = admin_salt

    @classmethod
    def from_settings(cls, auth_settings):
        return cls(auth_settings.salt, auth_settings.admin_login,
                   auth_settings.admin_salt)

    def is_admin(self, login):
        return login == self.admin_login

    def user_token(self, account, login):
        account, login = account or "", login or ""
        if len(account) + len(login) > KEPT_MAX_CHARS:
            return _sha512(account + login + self.salt)
        return _user_token(account, login, self.salt)

    def admin_token(self, now=None):
        """The admin token of the current hour, server local time."""
        now = now or local_now()
        return _sha512(now.strftime("%Y%m%d%H") + self.admin_salt)

    def check(self, account, login, token, now=None):
        """True when `token` is the right one for this account and login."""
        if self.is_admin(login):
            expected = self.admin_token(now)
        else:
            expected = self.user_token(account, login)
        return hmac.compare_digest(
            expected.encode(), (token or "").encode("utf-8", "replace"))


@functools.lru_cache(maxsize=USER_TOKENS_KEPT)
def _user_token(account, login, salt):
    return _sha512(account + login + salt)


def _sha512(text):
    return hashlib.sha512(text.encode("utf-8")).hexdigest()
