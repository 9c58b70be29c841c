"""Write the labelled corpus to a folder: python -m benchmarks.corpus OUT [--marker-dir D]."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.corpus import build_corpus


def main() -> None:
    """Build the corpus and print how many samples of each kind were written."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--marker-dir", type=Path, default=None)
    args = parser.parse_args()
    marker = args.marker_dir or Path(tempfile.mkdtemp(prefix="verifier-marker-"))
    samples = build_corpus(args.out, marker)
    bad = sum(s.technique.malicious for s in samples)
    print(f"{bad} malicious and {len(samples) - bad} benign samples in {args.out}")


if __name__ == "__main__":
    main()
