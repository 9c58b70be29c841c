"""Decompression budgets: per file from its size, per scan shared by its files."""

from __future__ import annotations

import threading

from verifier.scanners.budget import (
    FILE_FLOOR,
    FILE_RATIO,
    SCAN_FLOOR,
    SCAN_RATIO,
    DecompressionBudget,
    ScanBudget,
)


def test_a_file_may_decompress_its_floor_or_its_ratio() -> None:
    assert DecompressionBudget.for_file(10).limit == FILE_FLOOR
    big = FILE_FLOOR // FILE_RATIO * 3
    assert DecompressionBudget.for_file(big).limit == FILE_RATIO * big


def test_a_file_budget_is_spent_by_what_it_takes() -> None:
    budget = DecompressionBudget(100)
    assert budget.take(60) and budget.remaining() == 40
    assert budget.take(40) and budget.remaining() == 0
    assert not budget.take(1)
    assert "file's decompression budget" in budget.exceeded()


def test_files_of_one_scan_share_its_budget() -> None:
    scan = ScanBudget(floor=150, ratio=0)
    first = DecompressionBudget(100, scan=scan)
    second = DecompressionBudget(100, scan=scan)
    assert first.take(100)
    assert second.remaining() == 50  # its own 100, but only 50 left in the scan
    assert not second.take(60)
    assert "scan's decompression budget" in second.exceeded()


def test_a_scan_allows_more_as_larger_files_are_opened() -> None:
    scan = ScanBudget()
    assert scan.limit == SCAN_FLOOR
    size = SCAN_FLOOR // SCAN_RATIO * 2
    DecompressionBudget.for_file(size, scan=scan)
    assert scan.limit == SCAN_RATIO * size


def test_a_scan_budget_counts_every_thread() -> None:
    scan = ScanBudget(floor=10_000 * 8, ratio=0)

    def spend() -> None:
        budget = DecompressionBudget(1 << 40, scan=scan)
        for _ in range(10_000):
            budget.take(1)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert scan.remaining() == 0
    assert not scan.take(1)
