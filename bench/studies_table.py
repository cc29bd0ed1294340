"""The README's study table, rendered from bench/results/studies.json with the current rules (never by hand).

    python -m bench.studies_table            # print the table
    python -m bench.studies_table --write    # replace it in README.md, between the studies-table markers

Each claim is re-decided by shared.store.studies.judge (Holm over the study's shown claims, one look, the
current catalog's sizes withholding what their notes disown). Where the bench stored every seed's value
(`per_seed`, bench/studies.py since v2 of the rules) the claims pair by seed; the run of 2026-11-28 stored only
n, mean and the 95% interval per cell, so its samples are rebuilt with exactly that n, mean and sd: Welch's
test depends on nothing else, pairing cannot be recovered, and the table says "unpaired".
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

from shared.lab.studies import STUDIES
from shared.store.studies import judge

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "studies.json"
BEGIN, END = "<!-- studies-table:begin (python -m bench.studies_table --write) -->", "<!-- studies-table:end -->"


def rebuilt(cell: dict, index: int) -> dict[int, float]:
    """seed -> value: the stored per-seed values, else n values with the stored mean and sd (from the 95% CI)."""
    if cell.get("per_seed"):
        return {v["seed"]: v["test_accuracy"] for v in cell["per_seed"]}
    n, mean = cell["n"], cell["mean"]
    if n < 2 or cell["ci95"] is None:
        return {i: mean for i in range(n)}
    sd = (cell["ci95"][1] - cell["ci95"][0]) / 2 / stats.t.ppf(0.975, n - 1) * math.sqrt(n)
    z = np.linspace(-1, 1, n)
    z = (z - z.mean()) / z.std(ddof=1)
    # Each cell's made-up seeds apart from the other cells' so nothing pairs: the rebuilt values are no real seeds.
    return {index * 1000 + i: float(mean + sd * v) for i, v in enumerate(z)}


def verdicts(result: dict) -> list[str]:
    """'**verdict**: claim' per claim of the current catalog whose cells this run measured."""
    study = STUDIES[result["study"]]
    cells = {c["label"]: (i, c) for i, c in enumerate(result["cells"])}
    missing = [c for c in study.claims if c.a not in cells or c.b not in cells]
    if missing:
        return [f"not re-measured: v{study.version} changed the cells (run `python -m bench.studies --only "
                f"{study.name}`)"]
    samples = [(rebuilt(*cells[c.a][::-1]), rebuilt(*cells[c.b][::-1])) for c in study.claims]
    stored = result.get("version", 1)  # the 2026-11-28 run predates stored versions: all its studies were v1
    note = [] if stored == study.version else [f"(measured at v{stored}; v{study.version} changed the design or "
                                               f"what the quick size shows: rerun to refresh)"]
    answers = judge(study.claims, samples, reduced=study.reduced("quick"), size="quick", shown=study.shown("quick"))
    out = []
    for a in answers:
        word = a.verdict.replace("_", " ") if a.shown else "not shown"
        detail = "" if a.diff is None else f" ({a.diff:+.2f} {a.unit}, {'paired' if a.paired else 'unpaired'})"
        out.append(f"**{word}**: {a.text}{detail}")
    return out + note


def table(report: dict) -> str:
    rows = ["| study | jobs | wall | the lab's answer | verdicts from the data (quick size, 5 seeds, current rules) |",
            "| --- | --- | --- | --- | --- |"]
    for r in report["results"]:
        answer = STUDIES[r["study"]].lab_answer
        answer = answer if len(answer) <= 160 else answer[:157].rsplit(" ", 1)[0] + "…"
        jobs = sum(r["counts"].values())
        rows.append(f"| `{r['study']}` | {jobs} | {r['wall_s']:.0f} s | {answer} | {'<br>'.join(verdicts(r))} |")
    return "\n".join(rows)


def write(readme: Path, text: str) -> None:
    """Replace the table between the markers (the README's other parts are left as they are)."""
    body = readme.read_text()
    start, end = body.index(BEGIN) + len(BEGIN), body.index(END)
    readme.write_text(body[:start] + "\n" + text + "\n" + body[end:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--write", action="store_true", help="replace the table in README.md")
    args = ap.parse_args()
    text = table(json.loads(args.results.read_text()))
    if args.write:
        write(REPO / "README.md", text)
    print(text)


if __name__ == "__main__":
    main()
