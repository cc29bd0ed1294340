"""Studies through the JSON API on both databases, and listed-cell sweeps (Flask's test client; broker recorded)."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select
from support import succeed

from shared.lab.studies import get_study
from shared.store import fleet
from shared.store.db import session_scope
from shared.store.models import Job, Sweep

LISTED = {"name": "listed", "base": {"preset": "mnist-cnn", "overrides": {"train_limit": 300}},
          "cells": [{"mean": [0.1307], "std": [0.3081]}, {"mean": [0.5], "std": [0.5]}, {"lr": 0.1}], "seeds": 2}




def test_listed_cells_sweep_is_stored_summarized_and_exported(client, sent):
    r = client.post("/sweeps", json=LISTED)
    assert r.status_code == 201, r.json
    sweep = r.json
    assert sweep["grid"] is None and sweep["listed_cells"] == LISTED["cells"] and sweep["jobs"] == 6 and len(sent) == 6
    assert [c["values"] for c in sweep["cells"]] == LISTED["cells"]
    job = client.get(f"/jobs/{sweep['cells'][1]['job_ids'][1]}").json
    assert job["spec"]["mean"] == [0.5] and job["spec"]["seed"] == 1 and job["cell"] == {"mean": [0.5], "std": [0.5]}
    again = client.get(f"/sweeps/{sweep['id']}").json
    assert again["listed_cells"] == LISTED["cells"] and len(again["cells"]) == 3
    rows = list(csv.DictReader(io.StringIO(client.get(f"/sweeps/{sweep['id']}/results.csv").get_data(as_text=True))))
    assert list(rows[0])[:4] == ["mean", "std", "lr", "seed"]  # the union of the cells' fields
    assert [r["lr"] for r in rows] == ["", "", "", "", "0.1", "0.1"] and rows[2]["mean"] == "[0.5]"
    page = client.get(f"/sweeps/{sweep['id']}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "listed" in page.get_data(as_text=True)
    assert "3 listed cells" in client.get("/sweeps", headers={"Accept": "text/html"}).get_data(as_text=True)


@pytest.mark.parametrize("change, needle, field", [
    ({"cells": [{"lr": 0.1}, {"lr": -1}]}, "cell 1 (lr=-1)", "lr"),
    ({"cells": [{"lr": 0.1}, {"lr": 0.1}]}, "repeats cell 0", "cells.1"),
    ({"cells": []}, "at least one", "cells"),
    ({"cells": [{"seed": 3}]}, "seeds", "cells.0.seed"),
    ({"grid": {"lr": [0.1]}}, "not both", "cells"),
])
def test_bad_listed_cells_are_422_and_store_nothing(client, sent, db_url, change, needle, field):
    with session_scope(db_url) as s:
        before = len(s.scalars(select(Job.id)).all())
    r = client.post("/sweeps", json=LISTED | change)
    assert r.status_code == 422, r.json
    assert any(d["field"] == field and needle in d["message"] for d in r.json["error"]["details"]), r.json
    with session_scope(db_url) as s:
        assert len(s.scalars(select(Job.id)).all()) == before and not sent


def test_studies_list_names_sizes_with_notes(client):
    items = client.get("/studies").json["items"]
    assert len(items) == 10 and items[0]["name"] == "fc-vs-cnn"
    vgg = next(i for i in items if i["name"] == "lenet-vs-vgg")
    assert [z["name"] for z in vgg["sizes"]] == ["quick", "full"] and "epochs" in vgg["sizes"][0]["note"]
    assert vgg["sizes"][0]["reduced"] and not vgg["sizes"][1]["reduced"]


def test_run_a_study_then_its_answer_pools_runs_with_fresh_seeds(client, sent, db_url):
    r = client.post("/studies/normalization/run", json={"seeds": 2, "size": "quick", "priority": 2})
    assert r.status_code == 201, r.json
    first = r.json
    assert first["study"] == "normalization" and first["size"] == "quick" and first["study_version"] == 1
    assert first["listed_cells"] is not None and first["seeds"] == [0, 1] and first["jobs"] == 6 and len(sent) == 6
    second = client.post("/studies/normalization/run", json={"seeds": 1}).json
    assert second["seeds"] == [2]  # seeds never repeat across runs of a size and version
    cells = {c["index"]: c["job_ids"] for c in first["cells"]} | {}
    succeed(db_url, cells[0] + [second["cells"][0]["job_ids"][0]], [0.98, 0.981, 0.979])
    succeed(db_url, cells[1], [0.95, 0.952])
    out = client.get("/studies/normalization?size=quick").json
    answer = out["answer"]
    assert [r["id"] for r in answer["runs"]] == [first["id"], second["id"]] and "2 runs" in answer["pooled"]
    mean_std = answer["cells"][0]
    assert mean_std["n"] == 3 and mean_std["seeds"] == [0, 1, 2] and mean_std["test_accuracy"]["ci95"] is not None
    claim = answer["claims"][0]
    assert claim["verdict"] == "holds" and claim["n_a"] == 3 and claim["n_b"] == 2 and claim["paired"]
    assert claim["diff"] == pytest.approx(2.95, abs=1e-6)  # paired on seeds 0 and 1, the seeds both cells have
    assert claim["unpaired"]["diff"] == pytest.approx(2.9, abs=1e-6) and claim["p_value"] < 0.01
    assert claim["look"] == 2 and claim["alpha"] == 0.0125 and claim["p_adjusted"] == claim["p_value"]  # 1 tested
    assert {"ci", "mde_points", "seeds_needed", "margin", "margin_why", "hedges_g"} <= set(claim)
    assert [v["seed"] for v in mean_std["per_seed"]] == [0, 1, 2] and mean_std["per_seed"][2]["test_accuracy"] == 0.979
    assert claim["sentence"].startswith("Holds:")  # quick is the lab's recipe on MNIST: no "quick" prefix
    assert answer["claims"][1]["verdict"] == "inconclusive" and "not enough runs" in answer["claims"][1]["sentence"]
    assert client.get("/studies/normalization?size=full").json["answer"]["runs"] == []  # sizes never mix


def test_a_reduced_size_says_so_in_every_sentence(client):
    out = client.get("/studies/residual").json
    assert out["answer"]["reduced"] and "may not show" in out["answer"]["note"]
    assert all(c["sentence"].startswith("Quick size") and c["shown"] for c in out["answer"]["claims"])


def test_a_size_that_cannot_show_the_claim_withholds_the_verdict(client):
    out = client.get("/studies/lenet-vs-vgg").json
    assert out["answer"]["reduced"] and "cannot show" in out["answer"]["note"]
    claim = out["answer"]["claims"][0]
    assert claim["verdict"] == "inconclusive" and not claim["shown"] and claim["sentence"].startswith("Not shown")
    full = client.get("/studies/lenet-vs-vgg?size=full").json["answer"]["claims"][0]
    assert full["shown"] and not full["sentence"].startswith("Not shown")


@pytest.mark.parametrize("path, body, status, needle", [
    ("/studies/nope/run", {"seeds": 2}, 404, "unknown study 'nope'"),
    ("/studies/shuffle/run", {"size": "huge"}, 422, "unknown size 'huge'"),
    ("/studies/shuffle/run", {"seeds": 0}, 422, "seeds"),
    ("/studies/shuffle/run", {"seeds": 2, "colour": 1}, 422, "colour"),
])
def test_bad_study_runs_are_4xx_naming_the_problem(client, sent, path, body, status, needle):
    r = client.post(path, json=body)
    assert r.status_code == status and needle in str(r.json), r.json
    assert not sent


def test_unknown_study_and_size_on_get(client):
    assert client.get("/studies/nope").status_code == 404
    r = client.get("/studies/shuffle?size=huge")
    assert r.status_code == 422 and "unknown size 'huge'" in r.json["error"]["message"]
    assert client.get("/studies/nope", headers={"Accept": "text/html"}).status_code == 404


def test_study_pages_render(client, db_url):
    html = client.get("/studies", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "Studies" in html and "/studies/residual" in html
    page = client.get("/studies/lenet-vs-vgg", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert get_study("lenet-vs-vgg").question in page and 'id="size-note"' in page and 'id="run"' in page


def test_openapi_lists_the_study_routes(client):
    doc = client.get("/openapi.json").json
    for path in ("/studies", "/studies/{name}", "/studies/{name}/run"):
        assert path in doc["paths"], path
    assert {"StudyOut", "StudyList", "StudyRun"} <= set(doc["components"]["schemas"])


def test_a_cifar_study_runs_on_the_jpeg_copy_where_the_original_is_missing(client, sent):
    r = client.post("/studies/lenet-1989/run", json={"seeds": 1, "size": "quick"})
    assert r.status_code == 201, r.json
    assert r.json["base"]["dataset"] == "cifar10-jpeg" and r.json["base"]["train_limit"] == 20000
    answer = client.get("/studies/lenet-1989").json["answer"]
    assert answer["dataset"] == "cifar10-jpeg" and "on cifar10-jpeg" in answer["pooled"] and len(answer["runs"]) == 1


def test_one_seed_run_three_ways_counts_once_in_the_report_and_in_a_study(client, sent, db_url):
    """A plain job, a sweep and a listed-cell sweep (model_args spelled out) of mnist-cnn, seed 4242: one run."""
    seed = 4242
    ids = [client.post("/jobs", json={"preset": "mnist-cnn", "overrides": {"seed": seed}}).json["id"]]
    for extra in ({}, {"cells": [{"model_args.n_feature": 6}]}):
        sweep = client.post("/sweeps", json={"name": "copy", "base": {"preset": "mnist-cnn"}, "seeds": [seed],
                                             **extra}).json
        ids += [j for c in sweep["cells"] for j in c["job_ids"]]
    assert len(ids) == 3
    before = client.get("/report?format=json").json["tables"][0]["rows"][1]
    succeed(db_url, ids, [0.97, 0.971, 0.972])
    row = client.get("/report?format=json").json["tables"][0]["rows"][1]
    assert row["preset"] == "mnist-cnn" and row["seeds"].count(seed) == 1 and row["n"] == before["n"] + 1
    assert row["copies_folded"] == before["copies_folded"] + 2 and "copies folded" in client.get("/report").get_data(
        as_text=True)
    before = client.get("/studies/normalization").json["answer"]["cells"][0]  # the database may hold earlier runs
    run = client.post("/studies/normalization/run", json={"seeds": 1}).json  # a study cell with a copy of its seed
    with session_scope(db_url) as s:
        first = s.scalars(select(Job).where(Job.sweep_id == run["id"], Job.cell_index == 0)).one()
        copy = s.get(Job, first.id)
        s.add(Job(**{c.name: getattr(copy, c.name) for c in Job.__table__.columns if c.name not in ("id", "name")},
                  name="copy"))
    with session_scope(db_url) as s:
        jobs = list(s.scalars(select(Job.id).where(Job.sweep_id == run["id"], Job.cell_index == 0)))
    succeed(db_url, jobs, [0.98, 0.99])
    cell = client.get("/studies/normalization").json["answer"]["cells"][0]
    (new,) = run["seeds"]
    assert cell["n"] == before["n"] + 1 and cell["copies_folded"] == before["copies_folded"] + 1
    assert [v["test_accuracy"] for v in cell["per_seed"] if v["seed"] == new] == [0.98]  # the first copy counts


def test_study_jobs_carry_the_preset_their_cell_equals(client, sent):
    sweep = client.post("/studies/fc-vs-cnn/run", json={"seeds": 2, "size": "quick"}).json["id"]
    by_preset = {p: client.get(f"/jobs?sweep_id={sweep}&preset={p}&limit=100").json["items"]
                 for p in ("mnist-fc", "mnist-cnn")}
    assert {j["model"] for j in by_preset["mnist-cnn"]} == {"cnn"} and len(by_preset["mnist-cnn"]) == 2
    assert {j["model"] for j in by_preset["mnist-fc"]} == {"fc2"} and len(by_preset["mnist-fc"]) == 2
    every = client.get(f"/jobs?sweep_id={sweep}&limit=100").json["items"]
    permuted = [j for j in every if "permute_pixels=true" in j["name"]]  # a new permutation per seed: no preset is that
    assert len(every) == 8 and len(permuted) == 4 and {j["preset"] for j in permuted} == {None}


def test_a_study_or_the_handout_on_a_dataset_no_live_worker_has_is_refused(client, sent, db_url, monkeypatch):
    """As for jobs and sweeps (the heartbeats' end to end test is tests/worker/test_heartbeat.py): a live worker
    reports only cifar10-jpeg, so MNIST studies are 422 naming the dataset, and nothing is stored or sent."""
    monkeypatch.setattr(fleet, "reports", lambda url: [{"name": "w", "queues": ["cpu", "gpu"], "data_dir": "d",
                                                        "datasets": ["cifar10-jpeg"]}])
    before = _stored(db_url)
    study = client.post("/studies/fc-vs-cnn/run", json={"seeds": 2, "size": "quick"})
    handout = client.post("/handout/run", json={})
    for r in (study, handout):
        assert r.status_code == 422, r.json
        assert "no live worker of the cpu queue has dataset 'mnist'" in r.json["error"]["details"][0]["message"]
    assert _stored(db_url) == before and sent == []


def _stored(db_url) -> tuple[int, int]:
    """How many sweeps and jobs the module's database holds."""
    with session_scope(db_url) as s:
        return len(s.scalars(select(Sweep.id)).all()), len(s.scalars(select(Job.id)).all())
