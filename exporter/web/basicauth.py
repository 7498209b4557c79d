"""HTTP basic auth against exporter-toolkit's `basic_auth_users` (bcrypt hashes).

bcrypt is slow on purpose (about 70 ms at cost 10), and Prometheus scrapes with the same credentials
every time, so an outcome is cached under a SHA-256 of (user, password, hash): a scrape after the first
costs a dictionary lookup, and a changed password or hash misses the cache. The hashing runs in a
worker thread, a few at a time, so a burst of wrong passwords cannot stall the event loop that serves
everyone else. An unknown user is checked against a dummy hash of the same cost, so response time
does not tell which user names exist. The dummy hash is of a secret drawn when the users are loaded, so
no password matches it; and even if one did, only a configured user is ever admitted.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Mapping

import anyio
import anyio.to_thread
import bcrypt

CACHE_SIZE = 1024
CONCURRENT_HASHES = 2
"""bcrypt releases the GIL, so two checks use both cores of a small node and no more."""


class Verdict(enum.Enum):
    """The outcome of checking one Authorization header; the values are the rejection reasons."""

    OK = "ok"
    NO_CREDENTIALS = "no_credentials"
    BAD_CREDENTIALS = "bad_credentials"


class BasicAuth:
    """Checks `Authorization: Basic ...` headers against one set of users."""

    def __init__(self, users: Mapping[str, bytes], dummy_secret: bytes | None = None) -> None:
        """`dummy_secret` is what the dummy hash is of: random unless a test needs to know it."""
        self._users = dict(users)
        self._dummy_secret = dummy_secret if dummy_secret is not None else secrets.token_urlsafe(32).encode()
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._limiter = anyio.CapacityLimiter(CONCURRENT_HASHES)
        self._dummy: bytes | None = None

    async def check(self, authorization: str | None) -> tuple[Verdict, str | None]:
        """The verdict and, when the user name is a configured one, that name (for logs)."""
        credentials = parse_basic(authorization)
        if credentials is None:
            return Verdict.NO_CREDENTIALS, None
        user, password = credentials
        hashed = self._users.get(user)
        known = hashed is not None
        if hashed is None:
            hashed = await self._dummy_hash()
        key = hashlib.sha256(b"\0".join((user.encode(), password, hashed))).digest()
        outcome = self._cache.get(key)
        if outcome is None:
            outcome = await anyio.to_thread.run_sync(_matches, password, hashed, limiter=self._limiter)
            self._remember(key, outcome)
        if known and outcome:
            return Verdict.OK, user
        return Verdict.BAD_CREDENTIALS, user if known else None

    def _remember(self, key: bytes, outcome: bool) -> None:
        self._cache[key] = outcome
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    async def _dummy_hash(self) -> bytes:
        if self._dummy is None:
            cost = max((_cost(hashed) for hashed in self._users.values()), default=10)
            salt = bcrypt.gensalt(rounds=cost)
            self._dummy = await anyio.to_thread.run_sync(bcrypt.hashpw, self._dummy_secret, salt)
        return self._dummy


def parse_basic(authorization: str | None) -> tuple[str, bytes] | None:
    """`Basic base64(user:password)` -> (user, password bytes); None if absent or malformed."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


def _matches(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        # bcrypt 5 refuses passwords over 72 bytes; no configured password can be such a one.
        return False


def _cost(hashed: bytes) -> int:
    return int(hashed[4:6])
