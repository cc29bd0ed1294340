"""`cnnlab sweep`: the API's sweep run locally, one job after another, with the same expansion and statistics."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from shared.lab.seeds import HELP as SEEDS_HELP
from shared.lab.seeds import parse_seeds
from shared.lab.settings import settings
from shared.lab.specs import PRESETS, SpecError, parse_assignments
from shared.lab.stats import compare, summarize
from shared.lab.sweeps import Expansion, SweepRequest, SweepTooLarge, cell_label, expand

METRICS = ("test_accuracy", "test_loss", "train_seconds")


def add_parser(sub) -> None:
    """Register `cnnlab sweep` on the main parser's subcommands."""
    sw = sub.add_parser("sweep", help="run a grid of specs x seeds locally; print the cells table and one JSON line")
    sw.add_argument("preset", metavar="PRESET", help=f"one of {', '.join(PRESETS)}")
    sw.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                    help="a swept field and its values, e.g. --grid model_args.n_hidden=4,8,16 (or FIELD=[JSON list])")
    sw.add_argument("--seeds", default="3", help=f"{SEEDS_HELP} (default 3)")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a spec field of every cell, e.g. --set train_limit=2000")
    sw.add_argument("--data-dir", type=Path, help="data root (default $CNNLAB_DATA_DIR or ./data)")
    sw.add_argument("--out", type=Path, help="checkpoint directory (default var/sweeps/PRESET)")


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_grid(pairs: list[str]) -> dict[str, list[Any]]:
    """`field=v1,v2` -> {field: [v1, v2]}; values are JSON where they parse; `field=[[0.5],[0.1307]]` for lists."""
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key or not raw:
            raise SpecError([{"field": pair, "message": "expected --grid FIELD=V1,V2"}])
        if key in grid:
            raise SpecError([{"field": key, "message": "given twice in --grid"}])
        whole = _value(raw) if raw.lstrip().startswith("[") else None
        grid[key] = whole if isinstance(whole, list) else [_value(v) for v in raw.split(",")]
    return grid


def plan(args: argparse.Namespace) -> Expansion:
    """The expansion the API would make, every cell validated (and checked against the data) before training."""
    from shared.train.runnable import check_runnable  # torch: the model is built on the meta device

    request = SweepRequest(base={"preset": args.preset, "overrides": parse_assignments(args.overrides) or None},
                           grid=parse_grid(args.grid), seeds=parse_seeds(args.seeds))
    return expand(request, check=lambda spec: check_runnable(spec, args.data_dir))


def cell_rows(expansion: Expansion, results: dict[int, list[dict[str, float]]]) -> list[dict[str, Any]]:
    """Per cell: values, n and each metric's mean/std/ci95; each cell's accuracy against the first cell's."""
    rows = []
    first = [r["test_accuracy"] for r in results.get(0, [])]
    base = cell_label(expansion.cells[0].values)
    for cell in expansion.cells:
        runs = results.get(cell.index, [])
        row = {"index": cell.index, "values": cell.values, "n": len(runs),
               **{m: summarize([r[m] for r in runs]).model_dump(mode="json") for m in METRICS}}
        if cell.index:
            row["vs_first"] = compare(first, [r["test_accuracy"] for r in runs],
                                      names=(base, cell_label(cell.values))).verdict
        rows.append(row)
    return rows


def print_table(expansion: Expansion, rows: list[dict[str, Any]]) -> None:
    """The cells table on stderr: accuracy mean ± the 95% interval's half-width, in percent."""
    labels = [cell_label(c.values) for c in expansion.cells]
    width = max(len(x) for x in [*labels, "cell"])
    print(f"{'cell':<{width}}  {'n':>3}  {'test accuracy (95% CI)':>26}  {'test loss':>9}  {'train s':>8}",
          file=sys.stderr)
    for label, row in zip(labels, rows, strict=True):
        acc, loss, secs = row["test_accuracy"], row["test_loss"], row["train_seconds"]
        if acc["mean"] is None:
            shown = "–"
        elif acc["ci95"]:
            shown = f"{acc['mean']:.2%} ± {(acc['ci95'][1] - acc['ci95'][0]) * 50:.2f} pts"
        else:
            shown = f"{acc['mean']:.2%} (one run)"
        print(f"{label:<{width}}  {row['n']:>3}  {shown:>26}  {_fmt(loss['mean'], '.4f'):>9}  "
              f"{_fmt(secs['mean'], '.1f'):>8}", file=sys.stderr)
    for label, row in zip(labels[1:], rows[1:], strict=True):
        print(f"{label} vs {labels[0]}: {row['vs_first']}", file=sys.stderr)


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def run_jobs(expansion: Expansion, args: argparse.Namespace, stop: dict) -> dict[int, list[dict[str, float]]]:
    """Every job in turn with shared.train's fit; a tqdm bar over the jobs on stderr."""
    from shared.train.engine import fit  # torch: the sweep's plan and --help load without it

    out = args.out or settings().var_dir / "sweeps" / args.preset
    results: dict[int, list[dict[str, float]]] = {}
    with tqdm(total=expansion.size, desc="sweep", unit="job", file=sys.stderr) as bar:
        for cell, seed, spec in expansion.jobs():
            bar.set_postfix(cell=cell.index, seed=seed)
            result = fit(spec, data_root=args.data_dir, out_dir=out / f"cell{cell.index}-seed{seed}",
                         should_stop=lambda: stop["asked"])
            results.setdefault(cell.index, []).append({m: getattr(result, m) for m in METRICS})
            bar.update(1)
    return results


def sweep(args: argparse.Namespace) -> int:
    """Plan, run, then print the table (stderr) and one JSON line (stdout)."""
    # torch: only once the sweep trains here (the errors come from modules that import it)
    from shared.train.checkpoint import CheckpointError  # (torch)
    from shared.train.data import DataError  # (torch)
    from shared.train.distributed import DeviceUnavailable  # (torch)
    from shared.train.engine import Stopped  # (torch)

    stop = {"asked": False}
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("asked", True))  # Ctrl-C: stop at a step boundary
    try:
        expansion = plan(args)
        if any(spec.world_size > 1 for _, _, spec in expansion.jobs()):
            raise SpecError([{"field": "world_size", "message": "cnnlab sweep runs one process per job"}])
        results = run_jobs(expansion, args, stop)
    except (SpecError, SweepTooLarge, DataError, CheckpointError, DeviceUnavailable, ValueError, OSError) as exc:
        print(f"cnnlab: error: {exc}", file=sys.stderr)
        return 2
    except Stopped as exc:
        print(f"cnnlab: {exc}", file=sys.stderr)
        return 130
    rows = cell_rows(expansion, results)
    print_table(expansion, rows)
    print(json.dumps({"preset": args.preset, "grid": parse_grid(args.grid), "seeds": expansion.seeds,
                      "cells": rows}))
    return 0
