"""A job's machine use on its page: a real worker samples its trainer, the page charts the samples and shows their
mean and peak (headless Chromium, 1280 px)."""

from __future__ import annotations

import pytest
import redis
from support import DRAWN, LiveAPI, WorkerProcess, drop_postgres_database, private_backends, service_env, shot


@pytest.fixture
def sampled(data_root, cache_root, tmp_path):
    """A real job, trained by a worker of its own that samples every half second."""
    url, broker = private_backends()
    env = service_env(url, broker, tmp_path, data_root, cache_root, CNNLAB_SYSTEM_SAMPLE_SECONDS="0.5")
    api = LiveAPI(url, broker, data_root)
    worker = WorkerProcess(env, tmp_path / "worker.log", "sampler@localhost")
    job = api.post("/jobs", json={"preset": "mnist-cnn", "overrides": {
        "epochs": 2, "train_limit": 2000, "test_limit": 200}}).json()
    yield api, api.wait(job["id"], timeout=240)
    worker.stop()
    api.close()
    drop_postgres_database(url)
    redis.Redis.from_url(broker).flushdb()


def test_the_job_page_charts_its_machine_use_and_summarizes_it(sampled, page):
    api, job = sampled
    assert job["status"] == "succeeded", job
    samples = api.get(f"/jobs/{job['id']}/system").json()["samples"]
    assert len(samples) >= 2, samples
    page.goto(f"{api.url}/results/{job['id']}")
    page.wait_for_function("() => Chart.getChart(document.getElementById('system-cpu'))")
    cpu, memory = page.evaluate(DRAWN, "system-cpu"), page.evaluate(DRAWN, "system-memory")
    assert cpu["sets"] == 2 and cpu["points"][0] == len(samples) and cpu["ink"] > 0, cpu  # CPU % and host load
    assert memory["sets"] == 1 and memory["points"] == [len(samples)] and memory["ink"] > 0, memory
    text = page.inner_text("main")
    assert "Resident memory (mean / peak)" in text and "Host load at its end" in text, text
    page.locator("#system").scroll_into_view_if_needed()
    shot(page, "system-metrics")
    assert page.problems == []
