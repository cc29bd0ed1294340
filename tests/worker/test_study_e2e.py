"""End to end: a study run over HTTP -> PostgreSQL -> Redis -> a real worker -> the study's answer, at the smoke size."""

from __future__ import annotations


def test_a_study_runs_through_a_worker_and_is_answered(service):
    r = service.post("/studies/normalization/run", json={"seeds": 2, "size": "smoke"})
    assert r.status_code == 201, r.text
    sweep = r.json()
    assert sweep["study"] == "normalization" and sweep["size"] == "smoke" and sweep["jobs"] == 6
    ids = [i for c in sweep["cells"] for i in c["job_ids"]]
    jobs = [service.wait(i, timeout=900) for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 6, jobs
    assert {j["spec"]["train_limit"] for j in jobs} == {300} and {j["spec"]["test_limit"] for j in jobs} == {200}

    out = service.get("/studies/normalization?size=smoke").json()
    answer = out["answer"]
    assert [r["id"] for r in answer["runs"]] == [sweep["id"]] and answer["reduced"]
    for cell in answer["cells"]:
        acc = cell["test_accuracy"]
        assert cell["n"] == 2 and cell["seeds"] == [0, 1] and 0 < acc["mean"] <= 1
        assert acc["ci95"] is None or acc["ci95"][0] <= acc["mean"] <= acc["ci95"][1]
    for claim in answer["claims"]:
        assert claim["verdict"] in ("holds", "does_not_hold", "reversed", "inconclusive")
        assert claim["sentence"].startswith("Smoke size") and claim["n_a"] == 2 and claim["paired"]
    assert service.get("/studies/normalization?size=quick").json()["answer"]["runs"] == []  # never counted there
    page = service.get("/studies/normalization?size=smoke", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Smoke size" in page.text
