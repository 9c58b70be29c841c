"""Download progress on stderr (rich): bytes, rate and time left; silent when not a terminal."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich loads only when a bar is shown (a terminal, not --quiet)
    from rich.progress import Progress, TaskID


class RichProgress:
    """One bar for all bytes a scan downloads, safe to advance from several threads.

    The bar appears with the first byte to download: a local scan, which downloads nothing,
    shows none (not an empty bar).
    """

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._lock = threading.Lock()
        self._total = 0

    def add_total(self, n: int) -> None:
        """Expect `n` more bytes."""
        with self._lock:
            if self._task is None:
                if n <= 0:
                    return
                self._progress.start()  # does nothing when already started
                self._task = self._progress.add_task("fetching", total=0)
            self._total += n
            self._progress.update(self._task, total=self._total)

    def advance(self, n: int) -> None:
        """`n` more bytes arrived (negative when a download restarts)."""
        task = self._task
        if task is not None:
            self._progress.advance(task, n)


class SilentProgress:
    """Progress that shows nothing (quiet, or stderr is not a terminal)."""

    def add_total(self, n: int) -> None:
        """Ignore."""

    def advance(self, n: int) -> None:
        """Ignore."""


@contextmanager
def download_progress(*, enabled: bool) -> Iterator[RichProgress | SilentProgress]:
    """A progress bar on stderr when enabled and stderr is a terminal, else nothing."""
    if not enabled or not sys.stderr.isatty():
        yield SilentProgress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    progress = Progress(*columns, console=Console(stderr=True), transient=True)
    try:
        yield RichProgress(progress)  # starts the bar when there is something to download
    finally:
        progress.stop()  # does nothing when it never started
