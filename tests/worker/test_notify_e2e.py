"""Notifications end to end: a real job through a real worker POSTs once to a real HTTP receiver when it ends;
a failing receiver is retried with backoff; a host off CNNLAB_NOTIFY_HOSTS is refused at submit."""

from __future__ import annotations

import time

TINY = {"preset": "mnist-fc", "overrides": {"train_limit": 500, "test_limit": 200}}


def _delivered(api, path: str, timeout: float = 120) -> dict:
    """Poll a job's or sweep's JSON until its notification is delivered or given up."""
    deadline = time.monotonic() + timeout
    while True:
        out = api.get(path).json()
        if out["notify"]["status"] in ("delivered", "failed"):
            return out
        assert time.monotonic() < deadline, f"{path} notification stuck: {out['notify']}"
        time.sleep(0.2)


def test_a_job_that_ends_posts_exactly_once(lab_service, receiver):
    r = lab_service.post("/jobs", json={**TINY, "name": "hooked", "notify": {"url": receiver.url + "/hook?x=1"}})
    assert r.status_code == 201, r.text
    assert r.json()["notify"]["status"] == "waiting" and r.json()["notify"]["attempts"] == 0
    job_id = r.json()["id"]
    assert lab_service.wait(job_id, timeout=300)["status"] == "succeeded"
    job = _delivered(lab_service, f"/jobs/{job_id}")
    time.sleep(3)  # three more dispatch rounds (CNNLAB_DISPATCH_SECONDS=1): none may send it again
    assert len(receiver.posts) == 1, receiver.posts
    post = receiver.posts[0]
    assert post["path"] == "/hook?x=1" and post["headers"]["X-Cnnlab-Attempt"] == "1"
    assert post["json"]["event"] == "job.ended"
    assert post["json"]["job"] | {"test_accuracy": None} == {
        "id": job_id, "name": "hooked", "status": "succeeded", "preset": "mnist-fc", "model": "fc2",
        "dataset": "mnist", "error": None, "sweep_id": None, "test_accuracy": None}
    assert 0 < post["json"]["job"]["test_accuracy"] <= 1
    n = lab_service.get(f"/jobs/{job_id}").json()["notify"]
    assert (n["status"], n["attempts"], n["last_code"], n["last_error"]) == ("delivered", 1, 200, None)
    assert n["delivered_at"] is not None and job["notify"] == n
    page = lab_service.get(f"/results/{job_id}", headers={"Accept": "text/html"}).text
    assert 'id="notify" data-status="delivered"' in page and receiver.url in page


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(lab_service, receiver):
    receiver.codes = [503, 500, 200]
    r = lab_service.post("/jobs", json={**TINY, "notify": {"url": receiver.url}})
    assert r.status_code == 201, r.text
    job = _delivered(lab_service, f"/jobs/{r.json()['id']}", timeout=300)
    n = job["notify"]
    assert (n["status"], n["attempts"], n["last_code"]) == ("delivered", 3, 200), n
    assert [p["headers"]["X-Cnnlab-Attempt"] for p in receiver.posts] == ["1", "2", "3"]
    assert len({p["json"]["notification_id"] for p in receiver.posts}) == 1
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.posts, receiver.posts[1:], strict=False)]
    assert gaps[0] >= 1 and gaps[1] >= 2, gaps  # CNNLAB_NOTIFY_RETRY_SECONDS=1, doubled after each failure


def test_a_sweep_posts_once_when_its_last_job_ends(lab_service, receiver):
    body = {"name": "hooked sweep", "base": TINY, "grid": {"model_args.n_hidden": [4, 8]}, "seeds": 1,
            "notify": {"url": receiver.url}}
    r = lab_service.post("/sweeps", json=body)
    assert r.status_code == 201, r.text
    sweep = _delivered(lab_service, f"/sweeps/{r.json()['id']}", timeout=300)
    assert sweep["counts"]["succeeded"] == 2 and len(receiver.posts) == 1, receiver.posts
    sent = receiver.posts[0]["json"]
    assert sent["event"] == "sweep.ended" and sent["sweep"]["id"] == sweep["id"]
    assert sent["sweep"]["counts"]["succeeded"] == 2 and sent["sweep"]["counts"]["queued"] == 0
    page = lab_service.get(f"/sweeps/{sweep['id']}", headers={"Accept": "text/html"}).text
    assert 'data-status="delivered"' in page


def test_a_queued_job_cancelled_at_the_api_is_notified_by_the_dispatch_round(lab_service, receiver):
    busy = lab_service.post("/jobs", json={"preset": "mnist-fc", "overrides": {"epochs": 50}}).json()["id"]
    lab_service.wait(busy, statuses=("running",), timeout=120)  # the one worker slot is taken: the next job waits
    r = lab_service.post("/jobs", json={**TINY, "notify": {"url": receiver.url}})
    assert r.status_code == 201, r.text
    assert lab_service.post(f"/jobs/{r.json()['id']}/cancel").status_code == 202
    job = _delivered(lab_service, f"/jobs/{r.json()['id']}")
    assert job["status"] == "cancelled" and job["started_at"] is None
    assert [p["json"]["job"]["status"] for p in receiver.posts] == ["cancelled"]
    lab_service.post(f"/jobs/{busy}/cancel")
    lab_service.wait(busy, timeout=180)


def test_hosts_off_the_allowed_list_are_refused_at_submit(lab_service):
    before = lab_service.get("/jobs").json()["total"]
    for url in ("http://169.254.169.254/latest/meta-data", "http://localhost:6379/", "ftp://127.0.0.1/x",
                "http://user:pw@127.0.0.1/"):
        for path, body in (("/jobs", TINY), ("/sweeps", {"base": TINY, "seeds": 1}), ("/studies/shuffle/run", {})):
            r = lab_service.post(path, json={**body, "notify": {"url": url}})
            assert r.status_code == 422, (path, url, r.text)
            assert [d["field"] for d in r.json()["error"]["details"]] == ["notify.url"], r.text
    assert lab_service.get("/jobs").json()["total"] == before  # nothing was stored
