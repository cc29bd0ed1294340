"""POST /report/run: each recipe's missing seeds as sweeps; the report page counts them once they succeed."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from support import succeed

from shared.store.db import session_scope
from shared.store.models import Job


def test_report_runs_the_missing_seeds_of_each_recipe(client, sent, db_url):
    r = client.post("/report/run", json={"seeds": 5, "presets": ["mnist-fc", "cifar10-lenet"]})
    assert r.status_code == 201, r.json
    fc, lenet = r.json["items"]
    had = fc["had"]  # the session's database may hold recipe runs from other tests (POST /jobs mnist-fc)
    assert fc["preset"] == "mnist-fc" and fc["dataset"] == "mnist" and len(fc["seeds"]) == 5 - had > 0
    assert lenet["dataset"] == "cifar10-jpeg" and r.json["jobs"] == len(fc["seeds"]) + len(lenet["seeds"])
    assert client.post("/report/run", json={"seeds": 5, "presets": ["mnist-fc"]}).json["jobs"] == 0
    with session_scope(db_url) as s:  # the queued runs are the recipe: once they succeed the report counts them
        ids = list(s.scalars(select(Job.id).where(Job.sweep_id == fc["sweep_id"])))
        before = client.get("/report?format=json").json["tables"][0]["rows"][0]["n"]
    succeed(db_url, ids, [0.9 + 0.001 * i for i in range(len(ids))])
    row = client.get("/report?format=json").json["tables"][0]["rows"][0]
    assert row["preset"] == "mnist-fc" and row["n"] == before + len(ids) and set(fc["seeds"]) <= set(row["seeds"])


@pytest.mark.parametrize("body, needle", [({"presets": ["nope"]}, "not a preset of the report"),
                                          ({"seeds": 6}, "seeds"), ({"seeds": 1, "x": 1}, "x")])
def test_bad_report_runs_are_422(client, sent, body, needle):
    r = client.post("/report/run", json=body)
    assert r.status_code == 422 and needle in str(r.json) and not sent
