"""A loader oracle that may allocate without bound, run in a spawned child with capped memory.

`gguf.GGUFReader` builds Python objects per array element, so a mutated count can make it
allocate tens of GB (it once took a test run to 20 GB and the out-of-memory killer). Tests run
such a reader here: one long-lived child, address space capped at `ORACLE_MEMORY`; a child that
dies is replaced and its input counts as refused, as the real loader would fail to load it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")

#: Address space of the child process.
ORACLE_MEMORY = 2 << 30


def _cap_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ORACLE_MEMORY, ORACLE_MEMORY))


class CappedChild:
    """Runs top-level functions of bytes in the capped child, started on first use."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def run(self, function: Callable[[bytes], T | None], data: bytes) -> T | None:
        """`function(data)` in the child; None when it returns None or the child dies."""
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=_cap_memory
            )
        try:
            return self._pool.submit(function, data).result(timeout=300)
        except BrokenProcessPool:
            self.close()
            return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
