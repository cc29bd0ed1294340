"""The compare page's view model: the picked runs grouped (a sweep's by cell, the others by the recipe fields that
differ among them), each group's accuracy, the groups compared, and what the runs share or not."""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

from shared.lab.specs import IGNORED
from shared.lab.stats import compare, summarize
from shared.lab.sweeps import cell_label
from shared.store import listing
from shared.store.models import Job, JobStatus

MAX_RUNS = 100  # runs on one compare page (the sweep page links cells up to it)
MAX_ALL_PAIRS = 4  # up to this many groups every pair is compared; past it each group against the first


def _show(value: Any) -> str:
    """Spec values as JSON (false, null, [0.5]), strings bare."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _flat(job: Job) -> dict[str, Any]:
    return {"preset": job.preset} | listing.flat_spec(job.spec or {})


def recipe_fields(picked: list[Job]) -> list[str]:
    """The fields (preset and flat spec fields) whose values differ among `picked`, seeds and the like left out."""
    flats = [_flat(j) for j in picked]
    keys = dict.fromkeys(k for f in flats for k in f)
    return [k for k in keys if k not in IGNORED and len({_show(f.get(k)) for f in flats}) > 1]


def _key(job: Job, loose: list[str]) -> tuple:
    if job.sweep_id is not None:
        return ("sweep", job.sweep_id, job.cell_index)
    flat = _flat(job)
    return ("recipe", *(_show(flat.get(k)) for k in loose))


def _label(job: Job, named: list[str], sweeps: int) -> str:
    """A sweep job's cell; another job's preset and values of `named` (the fields a preset does not imply)."""
    if job.sweep_id is not None:
        cell = cell_label(job.cell or {})
        return cell if sweeps == 1 else f"sweep {job.sweep_id} · {cell}"  # one sweep picked: its cells alone
    flat = _flat(job)
    values = {k.removeprefix("model_args."): flat.get(k) for k in named if k != "preset"}
    head = [job.preset or "custom spec"] if "preset" in named else []
    return " · ".join(head + ([cell_label(values)] if values else [])) or job.preset or job.model


def _summary(index: int, label: str, members: list[Job]) -> dict[str, Any]:
    done = [m for m in members if m.status == JobStatus.SUCCEEDED and m.result is not None]
    return {"index": index, "label": label, "ids": [m.id for m in members],
            "values": [m.result.test_accuracy for m in done],
            "stats": summarize([m.result.test_accuracy for m in done]).model_dump(mode="json"),
            "test_loss": summarize([m.result.test_loss for m in done]).mean,
            "train_seconds": summarize([m.result.train_seconds for m in done]).mean}


def groups_of(picked: list[Job]) -> list[dict[str, Any]]:
    """The picked runs in groups, first seen first: a sweep's jobs by cell, other jobs by their differing fields."""
    outside = [j for j in picked if j.sweep_id is None]
    loose = recipe_fields(outside)
    shown, _ = listing.page_columns([{"preset": j.preset, "spec": j.spec} for j in outside])
    named = [k for k in loose if k in shown]  # as the jobs list: a field the presets imply is not named
    sweeps = len({j.sweep_id for j in picked})
    by: dict[tuple, list[Job]] = {}
    for j in picked:
        by.setdefault(_key(j, loose), []).append(j)
    return [_summary(i, _label(members[0], named, sweeps), members) for i, members in enumerate(by.values())]


def pairs_of(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Welch comparisons of the groups with two or more results: every pair for a few groups, else against the first."""
    ready = [g for g in groups if len(g["values"]) >= 2]
    pairs = combinations(ready, 2) if len(ready) <= MAX_ALL_PAIRS else ((ready[0], g) for g in ready[1:])
    return [compare(a["values"], b["values"], names=(a["label"], b["label"])).model_dump(mode="json")
            for a, b in pairs]


def spec_summary(picked: list[Job]) -> dict[str, Any]:
    """What every run shares (field -> value) and, for the fields that differ, the values seen (first seen first)."""
    flats = [_flat(j) for j in picked]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    seen = {k: list(dict.fromkeys(_show(f.get(k)) for f in flats)) for k in keys}
    return {"same": {k: v[0] for k, v in seen.items() if len(v) == 1},
            "differ": {k: v for k, v in seen.items() if len(v) > 1}}
