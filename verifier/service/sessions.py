"""Dashboard sessions: random ids kept server-side, each with its token's digest and CSRF secret.

The cookie carries only a random session id (256 bits from the OS); the token secret never
leaves the login request. A session keeps the SHA-256 of the token, so every request checks
the token again and a revoked token ends its sessions at once. Sessions live in this process's
memory: a restart logs everyone out, which is the safe failure.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

#: The session cookie's name.
SESSION_COOKIE = "verifier_session"
#: The login form's CSRF cookie (no session exists before login: double submit).
LOGIN_CSRF_COOKIE = "verifier_login_csrf"
#: How long a session lasts from login, in seconds (no sliding renewal).
SESSION_LIFETIME = 8 * 3600
#: Most sessions kept at once; logging in past it ends the oldest session.
MAX_SESSIONS = 10_000
#: Length of a session id or CSRF secret as `secrets.token_urlsafe(32)` writes it.
SECRET_LENGTH = 43


@dataclass(frozen=True)
class DashboardSession:
    """One logged-in browser: whose token, its CSRF secret, and when it ends."""

    session_id: str
    token_sha256: str
    csrf: str
    expires_at: float


def same_secret(given: str | None, expected: str) -> bool:
    """Whether a submitted secret equals the expected one (constant time; None never does)."""
    if given is None or len(given) > 2 * SECRET_LENGTH:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class SessionStore:
    """The sessions of one server process (thread-safe; bounded)."""

    def __init__(self, *, lifetime: float = SESSION_LIFETIME, limit: int = MAX_SESSIONS) -> None:
        self._lifetime, self._limit = lifetime, limit
        self._sessions: OrderedDict[str, DashboardSession] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, token_sha256: str, *, now: float) -> DashboardSession:
        """A new session for the token with this digest."""
        session = DashboardSession(
            session_id=secrets.token_urlsafe(32),
            token_sha256=token_sha256,
            csrf=secrets.token_urlsafe(32),
            expires_at=now + self._lifetime,
        )
        with self._lock:
            self._sessions[session.session_id] = session
            while len(self._sessions) > self._limit:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None, *, now: float) -> DashboardSession | None:
        """The live session with this id, or None (an expired one is dropped)."""
        if not session_id or len(session_id) != SECRET_LENGTH:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at <= now:
                del self._sessions[session_id]
                return None
            return session

    def end(self, session_id: str) -> None:
        """Forget a session (logout)."""
        with self._lock:
            self._sessions.pop(session_id, None)
