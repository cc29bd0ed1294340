"""The pages' template filters (api/pages/filters.py)."""

from __future__ import annotations

import pytest

from api.pages.filters import device, sig, size


@pytest.mark.parametrize("n, shown", [(108250.1 * 1024, "106 MiB"), (980, "980 B"), (4630, "4.52 KiB"),
                                      (3 * 2**30, "3 GiB"), (None, "–")])
def test_sizes_in_binary_units(n, shown):
    assert size(n) == shown


def test_mean_std_and_device_display():
    assert sig([0.13066047430038452]) == "0.1307" and sig([0.4914, 0.4822, 0.4465]) == "0.4914, 0.4822, 0.4465"
    assert (device("cpu: cpu"), device("cpu: x86_64"), device("cuda: NVIDIA H200")) == \
        ("cpu", "cpu: x86_64", "cuda: NVIDIA H200")


def test_created_times_read_compactly_with_the_full_time_kept():
    from datetime import UTC, datetime

    from api.pages.filters import ago, exact

    now = datetime(2026, 12, 7, 17, 0, 0, tzinfo=UTC)
    assert [ago(t, now) for t in ("2026-12-07T16:59:20+00:00", "2026-12-07T16:48:00", "2026-12-07T14:00:00+00:00",
                                  "2026-12-05T17:00:00+00:00", "2026-11-02T09:00:00+00:00", None)] == \
        ["40s ago", "12 min ago", "3 h ago", "2 d ago", "2026-11-02", "–"]
    assert exact("2026-12-07T16:48:05.123456+00:00") == "2026-12-07 16:48:05 UTC"
