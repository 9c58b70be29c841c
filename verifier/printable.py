"""Names and strings a model controls, made safe to print and lossless to record.

Two jobs, one module:

- `printable(text)`: the one escaping function for every terminal, table, markdown, HTML and
  PDF output. Control characters (C0, DEL, C1: so no CSI or OSC escape sequence reaches a
  terminal), line and paragraph separators, bidirectional controls (U+202E and friends),
  other invisible format characters and lone surrogates are written as `\\xHH` or `\\uHHHH`.
  The result is one line that shows what the bytes were.
- `record_name(os_name)` / `os_name(recorded)`: a file name from the file system as text that
  always encodes as UTF-8 (the database, JSON). Bytes that are not UTF-8 (which Python keeps as
  `surrogateescape` surrogates) become `\\xHH` and a backslash becomes `\\\\`; nothing else
  changes, and `os_name` reverses it exactly.
"""

from __future__ import annotations

import re

# C0 and C1 controls with DEL; the Arabic letter mark; zero-width and directional marks;
# line and paragraph separators; embeddings, overrides and isolates; word joiner and invisible
# operators; the byte-order mark; interlinear annotation; lone surrogates.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff]"
)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control, bidirectional or invisible character escaped (one line)."""
    return _UNSAFE.sub(_escape_char, text)


_SURROGATE_OR_BACKSLASH = re.compile("[\\\\\udc80-\udcff]")
_RECORDED_ESCAPE = re.compile(r"\\(\\|x[89a-f][0-9a-f])")


def _record_char(match: re.Match[str]) -> str:
    char = match.group()
    return "\\\\" if char == "\\" else f"\\x{ord(char) - 0xDC00:02x}"


def record_name(name: str) -> str:
    """A file-system name as text that encodes as UTF-8, reversibly (see `os_name`)."""
    return _SURROGATE_OR_BACKSLASH.sub(_record_char, name)


def _os_char(match: re.Match[str]) -> str:
    body = match.group(1)
    return "\\" if body == "\\" else chr(0xDC00 + int(body[1:], 16))


def os_name(recorded: str) -> str:
    """The file-system name (with `surrogateescape` surrogates) that `record_name` recorded."""
    return _RECORDED_ESCAPE.sub(_os_char, recorded)
