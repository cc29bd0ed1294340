"""End to end: a sweep over HTTP -> PostgreSQL -> Redis -> a real worker -> per-cell statistics and CSV."""

from __future__ import annotations

import csv
import io

TINY = {"train_limit": 500, "test_limit": 200, "lr": 0.05, "momentum": 0.9}


def test_a_sweep_runs_through_a_worker_and_is_summarized(service):
    body = {"name": "e2e sweep", "base": {"preset": "mnist-fc", "overrides": TINY},
            "grid": {"model_args.n_hidden": [4, 8]}, "seeds": 2}
    r = service.post("/sweeps", json=body)
    assert r.status_code == 201, r.text
    sweep = r.json()
    ids = [i for c in sweep["cells"] for i in c["job_ids"]]
    assert len(ids) == 4
    jobs = [service.wait(i, timeout=600) for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 4, jobs
    assert {j["spec"]["seed"] for j in jobs} == {0, 1}

    out = service.get(f"/sweeps/{sweep['id']}").json()
    assert out["counts"]["succeeded"] == 4 and len(out["cells"]) == 2
    for cell, hidden in zip(out["cells"], (4, 8), strict=True):
        acc = cell["test_accuracy"]
        assert cell["values"] == {"model_args.n_hidden": hidden} and cell["n"] == 2 and cell["succeeded"] == 2
        assert acc["ci95"][0] <= acc["mean"] <= acc["ci95"][1] and 0 < acc["mean"] <= 1
        assert cell["train_seconds"]["mean"] > 0 and cell["test_loss"]["std"] is not None

    rows = list(csv.DictReader(io.StringIO(service.get(f"/sweeps/{sweep['id']}/results.csv").text)))
    assert len(rows) == 4 and [r["model_args.n_hidden"] for r in rows] == ["4", "4", "8", "8"]
    assert all(r["status"] == "succeeded" and 0 < float(r["test_accuracy"]) <= 1 for r in rows)

    page = service.get(f"/sweeps/{sweep['id']}", headers={"Accept": "text/html"})
    assert page.status_code == 200
