"""API token secrets: made with 256 bits from the OS, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets

from verifier.errors import UsageError

#: Every token starts with this, so that secret scanners and people can recognise one.
TOKEN_PREFIX = "vrf_"  # noqa: S105 - a public prefix, not a secret
#: Token names: short, printable, safe in a URL and a log line.
TOKEN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: Longest bearer token the service reads (anything longer is not one of ours).
MAX_TOKEN_LENGTH = 128


def new_token() -> str:
    """A fresh token secret: the prefix and 32 random bytes, URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token secret: what the database keeps and looks tokens up by.

    A plain hash suffices (no salt, no slow KDF): the secret has 256 bits of entropy, so no
    dictionary applies, and the lookup must be one indexed equality.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token_name(name: str) -> str:
    """`name` if it is a valid token name.

    Raises:
        UsageError: It is empty, too long or has characters other than a-z, 0-9, `.`, `_`, `-`.
    """
    if not TOKEN_NAME.match(name):
        raise UsageError(
            f"token name {name!r} is not valid: use 1 to 64 of a-z, 0-9, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return name
