"""The sweep page's parallel coordinates (api/pages/sweeps.py `parallel`), from cells as GET /sweeps/<id> gives them."""

from __future__ import annotations

from api.pages.sweeps import as_grid, parallel


def cell(index: int, values: dict, mean: float | None, n: int = 3) -> dict:
    return {"index": index, "label": str(values), "values": values, "test_accuracy": {"mean": mean, "n": n}}


def test_one_field_or_no_result_draws_none():
    assert parallel({"lr": [0.1, 0.2]}, [cell(0, {"lr": 0.1}, 0.9)]) is None
    assert parallel({"lr": [0.1], "seed": [1]}, [cell(0, {"lr": 0.1, "seed": 1}, None)]) is None


def test_axes_place_numbers_by_value_on_a_log_scale_across_decades_and_listed_cells_at_base():
    listed = [{"lr": 0.001}, {"lr": 0.1, "augment": True}, {"lr": 0.01}]  # listed cells: augment unset is the base
    grid = as_grid(listed)
    pc = parallel(grid, [cell(i, c, 0.8 + i / 10) for i, c in enumerate(listed)])
    lr, augment, acc = pc["axes"]
    assert [a["name"] for a in pc["axes"]] == ["lr", "augment", "test accuracy (%)"]
    ys = {t["label"]: t["y"] for t in lr["ticks"]}
    assert abs((ys["0.001"] + ys["0.1"]) / 2 - ys["0.01"]) < 1e-6  # 0.01 halfway: log scale
    assert [t["label"] for t in augment["ticks"]] == ["base", "true"]
    assert [line["index"] for line in pc["lines"]] == [0, 1, 2]  # the most accurate drawn last
    assert pc["lines"][-1]["colour"] == "#dc2626" and pc["lines"][0]["colour"] == "#2563eb"
    assert pc["missing"] == 0 and len(pc["lines"][0]["points"].split()) == 3
