"""Sweep expansion without a database: a base spec times a grid of values times seeds, every cell validated.

Shared by the store (POST /sweeps) and the CLI (`cnnlab sweep`): the same request gives the same jobs.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.lab.notify import NotifyRequest
from shared.lab.seeds import seed_list
from shared.lab.specs import Spec, SpecError, apply_overrides, resolve

MAX_JOBS = 1000  # cells x seeds: a bigger sweep is refused (4xx), it would swamp the queue


class SweepTooLarge(ValueError):
    """More jobs than MAX_JOBS."""


class SweepBase(BaseModel):
    """What every cell starts from: a preset with overrides, or a full spec."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, description="a preset name, see GET /presets")
    overrides: dict[str, Any] | None = Field(None, description="spec fields to change; dotted keys reach model_args")
    spec: dict[str, Any] | None = Field(None, description="a full spec instead of a preset")


class SweepRequest(BaseModel):
    """A sweep: one job per grid cell (the cartesian product, in the order given) and seed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$")
    base: SweepBase
    grid: dict[str, list[Any]] | None = Field(None, description="field -> values; dotted keys reach model_args "
                                                              "(model_args.n_feature); `seed` is not a grid key")
    cells: list[dict[str, Any]] | None = Field(None, description="the cells listed instead of a grid (exactly one "
                                                                 "of grid and cells): [{field: value, ...}, ...]")
    seeds: int | list[int] = Field(3, description="N (seeds 0..N-1) or the list of seeds every cell runs")
    priority: int = Field(0, ge=0, le=9, description="9 runs first")
    notify: NotifyRequest | None = Field(None, description="a webhook that gets one JSON POST when every job of "
                                         "the sweep has ended (the service's; `cnnlab sweep` ignores it)")


    def cell_values(self) -> list[dict[str, Any]]:
        """The cells in order: the listed ones, or the grid's product (no grid and no cells: one base cell)."""
        return [dict(c) for c in self.cells] if self.cells is not None else cells(self.grid or {})

    def stored_grid(self) -> dict[str, list[Any]] | list[dict[str, Any]]:
        """What the sweeps table's `grid` column holds: the grid, or the list of listed cells."""
        return [dict(c) for c in self.cells] if self.cells is not None else dict(self.grid or {})


class Cell(BaseModel):
    """One grid cell: its index, its values keyed as in the grid, and its spec (seed 0; each job sets its seed)."""

    index: int
    values: dict[str, Any]
    spec: Spec


class Expansion(BaseModel):
    """A validated sweep: the resolved base spec, the cells and the seeds; jobs = cells x seeds."""

    base: Spec
    cells: list[Cell]
    seeds: list[int]

    @property
    def size(self) -> int:
        return len(self.cells) * len(self.seeds)

    def jobs(self) -> list[tuple[Cell, int, Spec]]:
        """(cell, seed, spec) for every job, cell by cell."""
        return [(c, s, c.spec.model_copy(update={"seed": s})) for c in self.cells for s in self.seeds]


def _error(field: str, message: str) -> SpecError:
    return SpecError([{"field": field, "message": message}])


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def check_grid(grid: dict[str, list[Any]]) -> None:
    """Grid keys and value lists: `seed` is not a grid key, lists are non-empty and without repeats."""
    for field, values in grid.items():
        if field == "seed":
            raise _error("grid.seed", "seed is not a grid key: give the seeds in `seeds`")
        if not field or field.startswith(".") or field.endswith("."):
            raise _error(f"grid.{field}", "not a spec field")
        if not isinstance(values, list) or not values:
            raise _error(f"grid.{field}", "give a non-empty list of values")
        if len({_key(v) for v in values}) != len(values):
            raise _error(f"grid.{field}", "a value is repeated")


def check_cells(listed: list[dict[str, Any]]) -> None:
    """Listed cells: at least one, each an object of fields (not `seed`), no cell repeated."""
    if not listed:
        raise _error("cells", "give at least one cell")
    for index, values in enumerate(listed):
        for field in values:
            if field == "seed":
                raise _error(f"cells.{index}.seed", "seed is not a cell field: give the seeds in `seeds`")
            if not field or field.startswith(".") or field.endswith("."):
                raise _error(f"cells.{index}.{field}", "not a spec field")
    keys = [_key(c) for c in listed]
    if len(set(keys)) != len(keys):
        repeated = next(i for i, k in enumerate(keys) if keys.index(k) != i)
        raise _error(f"cells.{repeated}", f"cell {repeated} repeats cell {keys.index(keys[repeated])}")


def stored_cells(grid: dict[str, list[Any]] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stored sweep's cells in order: its listed cells, or its grid's product."""
    return [dict(c) for c in grid] if isinstance(grid, list) else cells(grid)


def fields_of(grid: dict[str, list[Any]] | list[dict[str, Any]]) -> list[str]:
    """A stored sweep's swept fields: the grid's keys, or the union of the listed cells' fields (first seen first)."""
    return list(dict.fromkeys(k for c in grid for k in c)) if isinstance(grid, list) else list(grid)


def cells(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product in the order given: the last key varies fastest; an empty grid is one cell."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def cell_label(values: dict[str, Any]) -> str:
    """`model_args.n_hidden=4, lr=0.1` (strings bare, other values as JSON)."""
    if not values:
        return "base"
    return ", ".join(f"{k}={v if isinstance(v, str) else _key(v)}" for k, v in values.items())


def _cell_spec(base: SweepBase, values: dict[str, Any]) -> Spec:
    if base.spec is not None:
        return resolve(spec=apply_overrides(base.spec, values)) if values else resolve(spec=base.spec)
    return resolve(base.preset, {**(base.overrides or {}), **values})


def _cell_error(index: int, values: dict[str, Any], exc: SpecError) -> SpecError:
    """The cell's problems, each naming the cell's values and the field (a swept key where it is the culprit)."""
    out = []
    for e in exc.errors:
        field = e["field"]
        culprit = next((k for k in values if k == field or k.startswith(field + ".")
                        or field.startswith(k + ".")), None)
        out.append({"field": culprit or field, "message": f"cell {index} ({cell_label(values)}): {e['message']}",
                    "cell": values})
    return SpecError(out)


def expand(request: SweepRequest, check: Callable[[Spec], None] | None = None) -> Expansion:
    """Validate the base, the grid, the size and every cell's spec (and `check`, e.g. check_runnable)."""
    seeds = seed_list(request.seeds)
    if request.grid is not None and request.cells is not None:
        raise _error("cells", "give either a grid or a list of cells, not both")
    if request.cells is not None:
        check_cells(request.cells)
    check_grid(request.grid or {})
    if "seed" in (request.base.overrides or {}):
        raise _error("base.overrides.seed", "the seeds are given in `seeds`, not as an override")
    n_cells = len(request.cells) if request.cells is not None else math.prod(len(v) for v in (request.grid or {}).values())
    size = n_cells * len(seeds)
    if size > MAX_JOBS:
        raise SweepTooLarge(f"the sweep would make {size:,} jobs (cells x seeds); at most {MAX_JOBS:,}")
    base = resolve(request.base.preset, request.base.overrides, request.base.spec)  # one of preset | spec
    out = []
    for index, values in enumerate(request.cell_values()):
        try:
            spec = _cell_spec(request.base, values)
            if check is not None:
                check(spec)
        except SpecError as exc:
            raise _cell_error(index, values, exc) from None
        out.append(Cell(index=index, values=values, spec=spec.model_copy(update={"seed": 0})))
    return Expansion(base=base, cells=out, seeds=seeds)

