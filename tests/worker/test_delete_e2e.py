"""DELETE /jobs/<id> end to end: a real worker trains a tiny job; deleting it removes the worker's files."""

from __future__ import annotations


def test_deleting_a_job_a_worker_trained_removes_its_checkpoints_and_log(service):
    """End to end: a real worker trains a tiny job; DELETE takes its directory from the worker's checkpoint dir."""
    r = service.post("/jobs", json={"preset": "mnist-fc", "overrides": {"train_limit": 300, "test_limit": 100}})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    delete = lambda: service.delete(f"/jobs/{job_id}").status_code  # noqa: E731 - with the admin token
    assert delete() == 409  # queued or running: refused (cancel it first)
    job = service.wait(job_id)
    assert job["status"] == "succeeded", job
    folder = service.var / "checkpoints" / str(job_id)
    ckpts = service.get(f"/jobs/{job_id}/checkpoints").json()["items"]
    assert folder.is_dir() and ckpts and (folder / "log.txt").is_file()
    assert delete() == 204
    assert not folder.exists()
    assert service.get(f"/jobs/{job_id}").status_code == 404
