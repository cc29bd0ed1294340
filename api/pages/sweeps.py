"""The sweep pages (the list, one sweep) and their view models: the cells table, the metric against the swept value,
curves over seeds, and the parallel coordinates of a sweep over two or more fields."""

from __future__ import annotations

import json
import math
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


# The parallel-coordinates view (SVG user units): one vertical axis per swept field and one for test accuracy.
PC_WIDTH, PC_HEIGHT, PC_TOP, PC_BOTTOM, PC_SIDE = 1000, 320, 28, 44, 70
LOW, HIGH = (37, 99, 235), (220, 38, 38)  # the lines' colours, from the sweep's least to its most accurate cell


def _axis(name: str, values: list[Any]) -> dict[str, Any]:
    """An axis over a field's values: numeric ones by value (log across decades), others evenly in the grid's order."""
    if _numeric(values) and len(set(values)) > 1:
        log = min(values) > 0 and max(values) / min(values) >= 20
        f = (lambda v: math.log10(v)) if log else float
        lo, hi = f(min(values)), f(max(values))
        at = {json.dumps(v): (f(v) - lo) / (hi - lo) for v in values}
    else:
        at = {json.dumps(v): (i / (len(values) - 1) if len(values) > 1 else 0.5) for i, v in enumerate(values)}
    ticks = [{"label": "base" if v is None else (v if isinstance(v, str) else json.dumps(v)), "at": at[json.dumps(v)]}
             for v in values]
    return {"name": name, "at": at, "ticks": ticks}


def _mix(f: float) -> str:
    return "#" + "".join(f"{round(a + (b - a) * f):02x}" for a, b in zip(LOW, HIGH, strict=True))


def parallel(grid: dict[str, list[Any]], cells: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Parallel coordinates of a sweep over two or more fields: each cell a line through its values to its mean test
    accuracy, coloured by it; None for a one-field sweep or before any cell has a result."""
    done = [c for c in cells if c["test_accuracy"]["mean"] is not None]
    if len(grid) < 2 or not done:
        return None
    axes = [_axis(k, list(v)) for k, v in grid.items()]
    means = [c["test_accuracy"]["mean"] * 100 for c in done]
    lo, hi = min(means), max(means)
    pad = (hi - lo) * 0.05 or 0.5  # a percentage point either side when every cell scored the same
    acc = {"name": "test accuracy (%)", "ticks": [{"label": f"{lo - pad + (hi - lo + 2 * pad) * q / 4:.1f}", "at": q / 4}
                                                 for q in range(5)]}
    step = (PC_WIDTH - 2 * PC_SIDE) / len(axes)
    y = lambda at: PC_TOP + (1 - at) * (PC_HEIGHT - PC_TOP - PC_BOTTOM)  # noqa: E731 (higher values drawn higher)
    lines = []
    for c, m in sorted(zip(done, means, strict=True), key=lambda p: p[1]):  # the best drawn last, on top
        share = (m - lo + pad) / (hi - lo + 2 * pad)
        ys = [y(a["at"][json.dumps(c["values"].get(a["name"]))]) for a in axes] + [y(share)]
        points = " ".join(f"{PC_SIDE + i * step:.1f},{v:.1f}" for i, v in enumerate(ys))
        lines.append({"index": c["index"], "points": points, "colour": _mix((m - lo) / (hi - lo) if hi > lo else 1.0),
                      "title": f"{c['label']}: {m:.2f}% (n={c['test_accuracy']['n']})"})
    drawn = [{"name": a["name"], "x": PC_SIDE + i * step, "ticks": [{"label": t["label"], "y": y(t["at"])}
                                                                   for t in a["ticks"]]}
             for i, a in enumerate([*axes, acc])]
    return {"width": PC_WIDTH, "height": PC_HEIGHT, "axes": drawn, "lines": lines, "top": PC_TOP,
            "bottom": PC_HEIGHT - PC_BOTTOM, "missing": len(cells) - len(done)}


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
            "chart": metric_chart(grid, cells), "parallel": parallel(grid, cells), "curves": curves(session, sweep["id"], cells),
            "compare_limit": MAX_RUNS}
