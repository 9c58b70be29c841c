"""Download progress: a rich bar on a terminal, nothing otherwise."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from verifier.progress import RichProgress, SilentProgress, download_progress


def test_not_a_terminal_or_quiet_shows_nothing() -> None:
    # Under pytest stderr is captured, so it is not a terminal.
    with download_progress(enabled=True) as progress:
        assert isinstance(progress, SilentProgress)
    with download_progress(enabled=False) as progress:
        assert isinstance(progress, SilentProgress)


def test_rich_progress_counts_bytes_from_several_files() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with Progress(console=console) as bar:
        progress = RichProgress(bar)
        progress.add_total(100)
        progress.add_total(50)
        progress.advance(120)
        progress.advance(-20)  # a download restarted
        [task] = bar.tasks
        assert task.total == 150 and task.completed == 100
