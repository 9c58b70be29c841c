"""Verified lineage: weight fingerprints and which recorded base a set of weights comes from."""

from __future__ import annotations

import os
import sys

if "numpy" not in sys.modules:
    # The fingerprint's matrix products are small (64 anchors by a few hundred units): spread
    # over several BLAS threads on a busy machine they ran 75 times slower than on one thread
    # (docs/lineage.md). verifier does no other BLAS work, so its own process keeps one thread
    # unless the user set these.
    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")
