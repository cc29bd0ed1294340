"""A TA's own net from an installed package (tests/fixtures/cnnlab_example_nets, pip-installed by the fixture),
trained end to end through the service; refused at submit where its package is not allowed."""

from __future__ import annotations

TINY = {"train_limit": 500, "test_limit": 200, "lr": 0.05, "momentum": 0.9}


def test_an_entry_point_net_trains_through_the_service(lab_service):
    listed = {m["name"]: m for m in lab_service.get("/models").json()["items"]}
    assert list(listed) == ["cnn", "fastnet", "fc2", "lenet", "tinyconv", "vgg"] and listed["cnn"]["package"] is None
    assert listed["tinyconv"] | {"summary": ""} == {"name": "tinyconv", "convolutional": True, "min_size": 8,
                                                    "summary": "", "arg_defaults": {"width": 4},
                                                    "package": "cnnlab-example-nets"}
    r = lab_service.post("/jobs", json={"preset": "mnist-cnn", "overrides": {**TINY, "model": "tinyconv",
                                                                               "model_args.width": 6}})
    assert r.status_code == 201, r.text
    job = lab_service.wait(r.json()["id"], timeout=300)
    assert job["status"] == "succeeded", (job, lab_service.worker.log.read_text()[-3000:])
    assert job["model"] == "tinyconv" and job["spec"]["model_args"] == {"width": 6}
    assert job["result"]["params"] == 6 * 9 + 6 + 6 * 10 + 10  # conv3x3 1->6, fc 6->10
    assert 0 < job["result"]["test_accuracy"] <= 1
    page = lab_service.get(f"/results/{job['id']}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "learned filters" in page.text  # convolutional: its filters are drawn


def test_a_net_whose_package_is_not_allowed_is_refused_at_submit(lab_service, monkeypatch):
    monkeypatch.setenv("CNNLAB_MODEL_PACKAGES", "[]")
    assert "tinyconv" not in {m["name"] for m in lab_service.get("/models").json()["items"]}
    r = lab_service.post("/jobs", json={"preset": "mnist-cnn", "overrides": {**TINY, "model": "tinyconv"}})
    assert r.status_code == 422, r.text
    detail = r.json()["error"]["details"]
    assert [d["field"] for d in detail] == ["model"]
    assert "cnnlab-example-nets" in detail[0]["message"] and "CNNLAB_MODEL_PACKAGES" in detail[0]["message"]
    r = lab_service.post("/sweeps", json={"base": {"preset": "mnist-cnn", "overrides": {**TINY, "model": "tinyconv"}},
                                         "seeds": 1})
    assert r.status_code == 422 and "CNNLAB_MODEL_PACKAGES" in r.text, r.text


def test_model_args_of_an_entry_point_net_are_checked_at_submit(lab_service):
    r = lab_service.post("/jobs", json={"preset": "mnist-cnn", "overrides": {"model": "tinyconv",
                                                                               "model_args.depth": 3}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "model_args", r.text
