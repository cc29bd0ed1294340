"""The sweep pages (the list, one sweep) and their view models: the cells table, the metric against the swept value,
curves over seeds, and the parallel coordinates of a sweep over two or more fields."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import render_template

from api.pages.compare import MAX_RUNS
from shared.lab.stats import compare, summarize
from shared.lab.sweeps import fields_of
from shared.store import sweeps
from shared.store.db import Session
from shared.store.models import EpochMetric, JobStatus

CURVE_METRICS = ("test_accuracy", "test_loss")


def list_page(page: dict[str, Any]) -> str:
    """The sweeps page, from GET /sweeps's body."""
    return render_template("sweeps.html", **page)


def sweep_page(session: Session, sweep: dict[str, Any]) -> str:
    """One sweep's page (table, charts), from GET /sweeps/<id>'s body."""
    return render_template("sweep.html", **sweep_view(session, sweep))


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def as_grid(stored: dict[str, list[Any]] | list[dict[str, Any]]) -> dict[str, list[Any]]:
    """A stored grid, or listed cells as field -> the values they take (first seen first), for the chart's axis."""
    if not isinstance(stored, list):
        return stored
    out: dict[str, list[Any]] = {k: [] for k in fields_of(stored)}
    for cell in stored:
        for k in out:
            if cell.get(k) not in out[k]:
                out[k].append(cell.get(k))
    return out


def metric_chart(grid: dict[str, list[Any]], cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Test accuracy (percent) per cell with its 95% interval; x is the swept value when one numeric field is swept."""
    keys = list(grid)
    numeric = len(keys) == 1 and _numeric(grid[keys[0]])
    points = []
    for c in cells:
        acc = c["test_accuracy"]
        if acc["mean"] is None:
            continue
        x = c["values"].get(keys[0]) if numeric else c["label"]
        ci = [min(100.0, max(0.0, v * 100)) for v in acc["ci95"]] if acc["ci95"] else None  # a t interval may pass 100%
        points.append({"x": x, "y": acc["mean"] * 100, "ci": ci, "n": acc["n"]})
    positive = numeric and all(v > 0 for v in grid[keys[0]])
    log = positive and max(grid[keys[0]]) / min(grid[keys[0]]) >= 20  # lr, batch size: spread over decades
    return {"numeric": numeric, "log": bool(log), "x": keys[0] if len(keys) == 1 else "cell",
            "labels": [c["label"] for c in cells], "points": points}


def curves(session: Session, sweep_id: int, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per cell and epoch: mean and std (ddof=1) of each curve metric over the cell's succeeded jobs."""
    by: dict[tuple[int, int], list[EpochMetric]] = defaultdict(list)
    for index, metric in sweeps.succeeded_epochs(session, sweep_id):
        by[(index, metric.epoch)].append(metric)
    out = []
    for c in cells:
        epochs = sorted(e for i, e in by if i == c["index"])
        if not epochs:
            continue
        series = {m: [_point(e, [getattr(x, m) for x in by[(c["index"], e)]]) for e in epochs] for m in CURVE_METRICS}
        out.append({"index": c["index"], "label": c["label"], **series})
    return out


def _point(epoch: int, values: list[float]) -> dict[str, Any]:
    s = summarize(values)
    return {"x": epoch, "mean": s.mean, "std": s.std or 0.0, "n": s.n}


def against_first(cells: list[dict[str, Any]], values: dict[int, list[float]]) -> list[str | None]:
    """Each cell's test accuracy against the first cell's, worded (None for the first)."""
    if not cells:
        return []
    first = cells[0]
    return [None] + [compare(values.get(first["index"], []), values.get(c["index"], []),
                             names=(first["label"], c["label"])).verdict for c in cells[1:]]


def sweep_view(session: Session, sweep: dict[str, Any]) -> dict[str, Any]:
    """The sweep page: GET /sweeps/<id>'s body plus the chart data and comparisons."""
    cells = sweep["cells"]
    jobs = sweeps.sweep_jobs(session, sweep["id"])
    accuracy: dict[int, list[float]] = defaultdict(list)
    for j in jobs:
        if j.status == JobStatus.SUCCEEDED and j.result is not None:
            accuracy[j.cell_index].append(j.result.test_accuracy)
    seeds = {j.id: (j.spec or {}).get("seed") for j in jobs}
    status = {j.id: j.status for j in jobs}
    grid = as_grid(sweep["listed_cells"] if sweep["grid"] is None else sweep["grid"])
    return {"sweep": sweep, "cells": cells, "keys": list(grid), "seeds_of": seeds, "status_of": status,
            "verdicts": against_first(cells, accuracy),
            "chart": metric_chart(grid, cells), "curves": curves(session, sweep["id"], cells),
            "compare_limit": MAX_RUNS}
