"""Gate answers and checked tokens kept in memory, each only while nothing it came from changed.

Every entry carries the database's change counter (`verifier.store.changes`) as it was read
*before* the rows the entry came from, and is used only by a request that read the same value
again: any ban, lift, waiver, scan, decision, approval or token change committed since moves
the counter and so retires every entry at once. Answers also carry the UTC day they were made
on (a recorded waiver lapses at a day's end) and the policy digest they were decided under (a
reload of the policy retires them at once; `verifier.store.policies` keeps servers sharing a
database on one policy); answers decided from facts at the moment of the
request (which may read the time of day) are never kept. The HTTP layer serves kept answers
without FastAPI (`FastDecisions`); whatever it cannot answer from memory goes to the route,
which fills the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import parse_qsl

from verifier.errors import StoreError
from verifier.service.model import ApiToken, Role
from verifier.service.tokens import MAX_TOKEN_LENGTH

if TYPE_CHECKING:
    from verifier.service.decisions import GateAnswer

log = logging.getLogger(__name__)

#: Entries kept of each kind before the oldest half is dropped (bounds memory: a client that
#: asks for a million distinct targets costs a million database lookups, not a million entries).
MAX_ENTRIES = 50_000
#: The route `FastDecisions` answers from memory.
DECISION_PATH = "/api/v1/decision"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: (target, environment) exactly as the request's query string gave them.
AnswerKey = tuple[str, str | None]
T = TypeVar("T")


def answer_body(document: dict[str, Any]) -> bytes:
    """The JSON bytes of an answer, as FastAPI's JSONResponse renders a dict."""
    return json.dumps(
        document, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


@dataclass(frozen=True)
class _Kept(Generic[T]):
    count: int
    day: date
    #: The policy digest (with the recorded waivers) the answer was decided under.
    digest: str
    value: T


class GateCache:
    """Checked tokens and gate answers of one server process (thread-safe, bounded).

    An answer is kept with the change count, the UTC day and the policy digest it was made
    at, and served only at all three: a reload of the policy (here, or by another server,
    which also moves the counter: `verifier.store.policies`) retires it at once.
    """

    def __init__(self, *, limit: int = MAX_ENTRIES) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[int, ApiToken]] = {}
        self._answers: dict[AnswerKey, _Kept[bytes]] = {}
        self._gates: dict[AnswerKey, _Kept[GateAnswer]] = {}

    def token(self, token_sha256: str, *, count: int) -> ApiToken | None:
        """The active token with this digest, if it was checked at change count `count`."""
        found = self._tokens.get(token_sha256)
        return found[1] if found is not None and found[0] == count else None

    def keep_token(self, token_sha256: str, token: ApiToken, *, count: int) -> None:
        """Keep an active token, looked up after the counter read `count`."""
        with self._lock:
            self._bound(self._tokens)
            self._tokens[token_sha256] = (count, token)

    def answer(self, key: AnswerKey, *, count: int, day: date, digest: str) -> bytes | None:
        """The kept JSON answer of `GET /api/v1/decision` for the query `key`, if made at
        change count `count` on `day` under policy digest `digest`."""
        return _fresh(self._answers.get(key), count=count, day=day, digest=digest)

    def keep_answer(
        self, key: AnswerKey, body: bytes, *, count: int, day: date, digest: str
    ) -> None:
        """Keep a JSON answer made from rows read after the counter read `count`, on `day`,
        under policy digest `digest`."""
        with self._lock:
            self._bound(self._answers)
            self._answers[key] = _Kept(count=count, day=day, digest=digest, value=body)

    def gate(self, key: AnswerKey, *, count: int, day: date, digest: str) -> GateAnswer | None:
        """The kept gate answer for (subject, environment), as `answer` (for admission)."""
        return _fresh(self._gates.get(key), count=count, day=day, digest=digest)

    def keep_gate(
        self, key: AnswerKey, answer: GateAnswer, *, count: int, day: date, digest: str
    ) -> None:
        """Keep a gate answer for (subject, environment), as `keep_answer`."""
        with self._lock:
            self._bound(self._gates)
            self._gates[key] = _Kept(count=count, day=day, digest=digest, value=answer)

    def _bound(self, entries: dict[Any, Any]) -> None:
        if len(entries) >= self._limit:
            # Dicts keep insertion order: the oldest half goes.
            for key in list(entries)[: self._limit // 2]:
                del entries[key]


def _fresh(found: _Kept[T] | None, *, count: int, day: date, digest: str) -> T | None:
    if found is None or found.count != count or found.day != day or found.digest != digest:
        return None
    return found.value


def today() -> date:
    """The UTC day the gate decides on (as `gate` computes it)."""
    return datetime.now(UTC).date()


class CoalescedCount:
    """Reads of the change counter shared by the requests waiting at the same moment.

    A request waits for a read that *starts after it arrived*, so it sees every change
    committed before it arrived; the requests that arrive before that read starts share it.
    The read runs on a thread (a slow database server never stalls the event loop), or, with
    `inline` (SQLite: one statement on a local file, bounded by the connection's short busy
    timeout), on the event loop itself, which spares the thread hop and the GIL hand-offs.
    """

    def __init__(self, read: Callable[[], int], *, inline: bool = False) -> None:
        self._read, self._inline = read, inline
        self._next: asyncio.Future[int] | None = None

    async def read(self) -> int:
        """The counter, read after this call began.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        waiting = self._next
        if waiting is None:
            loop = asyncio.get_running_loop()
            waiting = self._next = loop.create_future()
            # Retrieved even when every waiter went away (no "never retrieved" noise).
            waiting.add_done_callback(lambda f: None if f.cancelled() else f.exception())
            loop.call_soon(self._start, loop, waiting)
        # Shielded: one waiter going away must not cancel the read for the others.
        return await asyncio.shield(waiting)

    def _start(self, loop: asyncio.AbstractEventLoop, waiting: asyncio.Future[int]) -> None:
        self._next = None  # whoever arrives from now on waits for the next read
        if self._inline:
            try:
                value = self._read()
            except Exception as exc:  # handed to every waiter, as from the thread
                if not waiting.cancelled():
                    waiting.set_exception(exc)
            else:
                if not waiting.cancelled():
                    waiting.set_result(value)
            return
        reading = loop.run_in_executor(None, self._read)

        def done(finished: asyncio.Future[int]) -> None:
            if waiting.cancelled():
                return
            error = finished.exception()
            if error is not None:
                waiting.set_exception(error)
            else:
                waiting.set_result(finished.result())

        reading.add_done_callback(done)


def _bearer_digest(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The SHA-256 of the one `Authorization: Bearer <token>` header, or None for anything
    else (the route then answers, with its own checks and errors)."""
    found = [value for name, value in headers if name == b"authorization"]
    if len(found) != 1 or not found[0].startswith(b"Bearer "):
        return None
    secret = found[0][len(b"Bearer ") :]
    if not secret or len(secret) > MAX_TOKEN_LENGTH or not secret.isascii() or b" " in secret:
        return None
    return hashlib.sha256(secret).hexdigest()


def _answer_key(query_string: bytes) -> AnswerKey | None:
    """(target, environment) of a query with exactly those parameters, each at most once."""
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return None
    given = dict(pairs)
    if (
        len(given) != len(pairs)
        or "target" not in given
        or not set(given)
        <= {
            "target",
            "environment",
        }
    ):
        return None
    return given["target"], given.get("environment")


class FastDecisions:
    """ASGI middleware: `GET /api/v1/decision` answered from `GateCache` when both the token
    and the answer are kept at the counter's current value, else by the app's route.

    It never answers differently from the route: it serves only bytes the route made, for
    the same token and query, under the policy digest the server decides with now, with
    nothing changed in the database since.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: GateCache,
        count: CoalescedCount,
        digest: Callable[[], str],
    ) -> None:
        self.app, self._cache, self._count, self._digest = app, cache, count, digest
        self._headers = [(b"content-type", b"application/json")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == DECISION_PATH and scope["method"] == "GET":
            try:
                body = await self._kept(scope)
            except Exception:  # a bug here: the route answers (and reports its own failures)
                log.exception("the gate's fast path failed; the route answers")
                body = None
            if body is not None:
                headers = [*self._headers, (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    async def _kept(self, scope: Scope) -> bytes | None:
        digest = _bearer_digest(scope["headers"])
        key = _answer_key(scope["query_string"])
        if digest is None or key is None:
            return None
        try:
            count = await self._count.read()
        except StoreError:  # the route reads the database again and reports the failure
            return None
        token = self._cache.token(digest, count=count)
        if token is None or not token.role.allows(Role.VIEWER):
            return None
        return self._cache.answer(key, count=count, day=today(), digest=self._digest())
