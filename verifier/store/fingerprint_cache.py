"""Decoded reference fingerprints kept between scans by one store, bounded by their bytes.

Every scan of weights compares with the same references (every registered base, and up to
`scan_rows.MAX_LINEAGE_REFERENCES` recorded models), and reading them back (the blobs fetched,
then `Fingerprint.from_bytes`) was about two thirds of a millisecond a reference. Fingerprint
rows are only ever inserted, so a scan's fingerprint never changes: a store (`Store`, the
`SQLiteRecorder`) keeps the ones it decoded, by scan id, and a long-running process (the
service, its workers) reads each reference once. What may change (registration, which scans are
complete, the cap) is still read from the database on every scan
(`scan_tables.LINEAGE_CANDIDATES`); only the fetch and decode of a listed id are skipped.
Each store owns its cache, so one database's fingerprints are never served for another's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from verifier.lineage.fingerprint import Fingerprint

REFERENCE_CACHE_BYTES = 128 << 20
"""Bytes of decoded arrays one store keeps: 128 MiB. A fingerprint holds one 64 x 128 float16
profile (16 KiB) per profiled matrix and orientation, 23 to 27 on MiniLM (about 0.4 MiB), so
this keeps about 300 such fingerprints: a scan's 100 recorded models and its bases, for a few
widths. The least recently used go first."""


def decoded_bytes(fingerprint: Fingerprint) -> int:
    """The bytes a decoded fingerprint holds: its Gram matrix and its profiles (views over the
    record's bytes, which they keep alive)."""
    return int(fingerprint.gram.nbytes) + sum(int(m.profiles.nbytes) for m in fingerprint.matrices)


class FingerprintCache:
    """Decoded fingerprints by scan id, least recently used evicted past `max_bytes`.

    Safe to share between threads (a service's scans run concurrently). The fingerprints held
    are read-only (`Fingerprint.from_bytes` makes every array so): a comparison that wrote into
    one would raise rather than change what later scans compare with.
    """

    def __init__(self, max_bytes: int = REFERENCE_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[str, Fingerprint, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def held_bytes(self) -> int:
        """Bytes of the decoded arrays held now (at most `max_bytes`)."""
        with self._lock:
            return self._bytes

    def get(self, scan_id: str) -> tuple[str, Fingerprint] | None:
        """`(repo id, fingerprint)` of a scan decoded before, or None."""
        with self._lock:
            entry = self._entries.get(scan_id)
            if entry is None:
                return None
            self._entries.move_to_end(scan_id)
            return entry[0], entry[1]

    def put(self, scan_id: str, repo_id: str, fingerprint: Fingerprint) -> None:
        """Keep a decoded fingerprint, evicting the least recently used past `max_bytes` (one
        larger than the whole bound is not kept)."""
        size = decoded_bytes(fingerprint)
        if size > self.max_bytes:
            return
        with self._lock:
            held = self._entries.pop(scan_id, None)
            if held is not None:
                self._bytes -= held[2]
            self._entries[scan_id] = (repo_id, fingerprint, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, _, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted
