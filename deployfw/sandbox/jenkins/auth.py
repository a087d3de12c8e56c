"""Authentication and CSRF crumbs, as a locked-down Jenkins controller applies them.

Rules copied from Jenkins:

* HTTP basic with the user's API token authenticates; a wrong token answers 401 with
  ``WWW-Authenticate: Basic realm="Jenkins"``; anonymous requests lack Overall/Read and
  get 403 (unless ``anonymous_read``).
* The crumb issuer (``crumbIssuer/api/json``) hands out a crumb bound to the user and
  the web session (``JSESSIONID.*`` cookie). A POST without a valid crumb answers 403
  "No valid crumb was included in the request" - except for API-token-authenticated
  requests, which Jenkins (since 2.96) exempts. ``tokens_exempt=False`` models older
  controllers; password authentication (``password=``) always needs a crumb.
* Turning the issuer off answers 404 there and stops the check (CSRF protection off);
  invalidating crumbs (a controller restart) makes every crumb handed out so far stale.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

CRUMB_FIELD = "Jenkins-Crumb"
COOKIE_PREFIX = "JSESSIONID."


@dataclass(frozen=True)
class Identity:
    """Who a request is: a user name (``anonymous`` if none) and how it authenticated."""

    user: str
    via: str  # "token", "password" or "anonymous"


class AuthFailed(Exception):
    """Credentials were presented and are wrong (401)."""


class Security:
    """The controller's users, crumb issuer and sessions."""

    def __init__(self, user: str, token: str, password: str | None, anonymous_read: bool) -> None:
        self.user = user
        self.token = token
        self.password = password
        self.anonymous_read = anonymous_read
        self.issuer_enabled = True
        self.tokens_exempt = True
        self.cookie_name = COOKIE_PREFIX + secrets.token_hex(4)
        self._salt = secrets.token_bytes(16)
        self._lock = threading.Lock()

    def identify(self, authorization: str | None) -> Identity:
        """Authenticate from an ``Authorization`` header, or raise :class:`AuthFailed`."""
        if not authorization:
            return Identity("anonymous", "anonymous")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise AuthFailed("unsupported authorization scheme")
        try:
            user, _, secret = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise AuthFailed("malformed basic authorization") from exc
        if user == self.user and hmac.compare_digest(secret, self.token):
            return Identity(user, "token")
        if user == self.user and self.password is not None and hmac.compare_digest(secret, self.password):
            return Identity(user, "password")
        raise AuthFailed(f"Invalid password/token for user: {user}")

    def may_read(self, identity: Identity) -> bool:
        """Overall/Read: every authenticated user, anonymous only if allowed."""
        return identity.via != "anonymous" or self.anonymous_read

    def crumb_for(self, identity: Identity, session: str) -> str:
        """The crumb valid for this user and web session until crumbs are invalidated."""
        with self._lock:
            salt = self._salt
        return hmac.new(salt, f"{identity.user};{session}".encode(), hashlib.sha256).hexdigest()

    def needs_crumb(self, identity: Identity) -> bool:
        """True if a POST from ``identity`` must carry a valid crumb."""
        if not self.issuer_enabled:
            return False
        return not (identity.via == "token" and self.tokens_exempt)

    def crumb_valid(self, identity: Identity, session: str | None, crumb: str | None) -> bool:
        """True if ``crumb`` was issued to this user in this session and is still current."""
        if not session or not crumb:
            return False
        return hmac.compare_digest(crumb, self.crumb_for(identity, session))

    def invalidate_crumbs(self) -> None:
        """Make every crumb issued so far stale, as a controller restart does."""
        with self._lock:
            self._salt = secrets.token_bytes(16)

    @staticmethod
    def new_session() -> str:
        """A fresh web session id."""
        return "node0" + secrets.token_hex(12)
