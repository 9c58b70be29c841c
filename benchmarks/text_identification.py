"""Identify real text files on this machine: which become pickles, and what their openings import.

The false-positive measurement for the identification (docs/scanners.md, "Identification"):
every licence, README, notice, Python source, config and vocabulary under the given folders is
identified; a file identified as a pickle is read by both CPython unpicklers in process
(`tests.scanners.pickle_campaign.unpickler_reads`: stand-ins, nothing imported or run) to see
whether it imports or calls anything. With `--baseline CHECKOUT`, the identification of another
checkout of verifier (say, main before a change) runs on the same files and the changes are
listed.

    python -m benchmarks.text_identification /usr/share/doc /usr/share/common-licenses \\
        "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \\
        --baseline /path/to/other/checkout
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

_SUFFIXES = (".py", ".txt", ".md", ".json", ".rst", ".cfg", ".toml", ".yaml", ".yml", ".jinja")
_PREFIXES = ("license", "copying", "readme", "notice", "vocab", "merges", "authors")


def text_files(roots: list[str]) -> list[Path]:
    """The text-like files under `roots` (by name: this picks the sample, not the format)."""
    found: list[Path] = []
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                low = name.lower()
                if not path.is_symlink() and (low.endswith(_SUFFIXES) or low.startswith(_PREFIXES)):
                    found.append(path)
    return found


Identify = Callable[[bytes, int], str]


def _identifier(checkout: str | None) -> tuple[Identify, Callable[[bytes, int], object]]:
    """`identify` (as a format name) and `text_pickle_import` of a checkout (None: this one)."""
    if checkout is not None:
        sys.path.insert(0, checkout)
        for name in [m for m in sys.modules if m == "verifier" or m.startswith("verifier.")]:
            del sys.modules[name]
    sniff = importlib.import_module("verifier.scanners.sniff")
    if checkout is not None:
        sys.path.remove(checkout)
        for name in [m for m in sys.modules if m == "verifier" or m.startswith("verifier.")]:
            del sys.modules[name]
    imports = getattr(sniff, "text_pickle_import", lambda head, size: None)
    return (lambda head, size: str(sniff.identify(head, size).value)), imports


def main() -> int:
    """Print the counts; exit 1 when a file the baseline called text is identified otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("roots", nargs="+")
    parser.add_argument("--baseline", help="another verifier checkout to compare with")
    args = parser.parse_args()
    baseline = _identifier(args.baseline)[0] if args.baseline else None
    identify, imports = _identifier(None)
    from tests.scanners.pickle_campaign import unpickler_reads

    formats: collections.Counter[str] = collections.Counter()
    with_import = changed = left_text = 0
    pickle_reads: collections.Counter[str] = collections.Counter()
    for path in text_files(args.roots):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        head = data[:65536]
        fmt = identify(head, len(data))
        formats[fmt] += 1
        if fmt == "text" and imports(head, len(data)) is not None:
            with_import += 1
        if baseline is not None and (old := baseline(head, len(data))) != fmt:
            changed += 1
            left_text += old == "text"
            print(f"changed {old} -> {fmt}: {path}")
        if fmt == "pickle":
            reads = unpickler_reads(data)
            pickle_reads[
                "calls" if reads.called else "imports" if reads.imported else "neither"
            ] += 1
    print(f"files: {sum(formats.values())}; formats: {dict(formats.most_common())}")
    print(f"text whose opening a pickle loader imports (PICKLE-IMPORT-IN-TEXT): {with_import}")
    print(f"identified as pickles, what the unpicklers do: {dict(pickle_reads)}")
    if baseline is not None:
        print(f"identified differently from the baseline: {changed}, text before: {left_text}")
    return 1 if left_text else 0


if __name__ == "__main__":
    sys.exit(main())
