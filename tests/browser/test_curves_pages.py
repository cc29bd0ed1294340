"""Curves, progress and the log panel in a real headless Chromium: the axis switch, curves and log lines arriving
while a job runs, and /compare lining up batch sizes on samples seen. Screenshots go to var/screenshots/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support import migrate, serve, shot

from api import create_app
from shared.lab.specs import resolve
from shared.store.db import session_scope
from shared.store.models import EpochMetric, EvalMetric, Job, StepLoss, utcnow

N = 6000  # training images an epoch in the seeded jobs


def add_job(url: str, status: str, batch: int = 64, epochs: int = 2, done: float = 2.0, name: str = "") -> int:
    """A job as the worker leaves it `done` epochs in: test points every 500 samples, a loss every 4 steps."""
    spec = resolve("mnist-cnn", {"epochs": epochs, "batch_size": batch, "train_limit": N}).model_dump()
    start = utcnow() - timedelta(minutes=3)
    steps = -(-N // batch)
    with session_scope(url) as s:
        job = Job(name=name, preset="mnist-cnn", model="cnn", dataset="mnist", spec=spec, status=status,
                  created_at=start, started_at=start, finished_at=None if status == "running" else utcnow(),
                  progress={"phase": "training", "epoch": int(done) + 1, "epochs": epochs, "step": 40, "steps": steps,
                            "global_step": int(done * steps), "total_steps": epochs * steps, "fraction": done / epochs,
                            "eta_seconds": 90.0, "reported_at": utcnow().isoformat()})
        s.add(job)
        s.flush()
        add_points(s, job.id, 0, done, batch)
        return job.id


def add_points(s, job_id: int, after: float, upto: float, batch: int) -> None:
    """Test points and step losses between `after` and `upto` epochs; epoch metrics for the epochs completed."""
    for seen in range(int(after * N) + 500, int(upto * N) + 1, 500):
        e, full = seen / N, seen % N == 0
        acc = 0.95 - 0.5 / (1 + 4 * e * (64 / batch) ** 0.3)
        s.add(EvalMetric(job_id=job_id, samples_seen=seen, epoch=e, step=seen // batch, test_loss=1.6 * (1 - acc),
                         test_accuracy=acc, test_samples=10_000 if full else 1000, full=full))
        if full:
            s.add(EpochMetric(job_id=job_id, epoch=int(e), train_loss=1.7 * (1 - acc), test_loss=1.6 * (1 - acc),
                              test_accuracy=acc, seconds=20, train_seconds=18, samples_per_second=3300))
    steps = -(-N // batch)
    for g in range(int(after * steps) + 4, int(upto * steps) + 1, 4):
        epoch, step = (g - 1) // steps + 1, (g - 1) % steps + 1
        seen = (epoch - 1) * N + min(step * batch, N)
        s.add(StepLoss(job_id=job_id, epoch=epoch, step=step, global_step=g, samples_seen=seen,
                       loss=2.3 / (1 + 3 * seen / N)))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The app on a real socket over a seeded SQLite database; job logs under a directory of its own."""
    tmp = tmp_path_factory.mktemp("curves")
    url = f"sqlite:///{tmp / 'pages.db'}"
    migrate(url)
    ids = {"running": add_job(url, "running", done=0.5, name="live one"),
           "logged": add_job(url, "running", done=0.5, name="logged one")}
    ids |= {b: add_job(url, "succeeded", batch=b, name=f"batch {b}") for b in (16, 64, 512)}
    ids["failed"] = add_job(url, "failed", done=0.0, name="failed at once")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_CHECKPOINT_DIR", str(tmp / "jobs"))
        base, server = serve(create_app({"DATABASE_URL": url}))
        yield {"base": base, "db": url, "ids": ids, "jobs": tmp / "jobs"}
        server.shutdown()


def xs(pg, chart: str, dataset: int = 0) -> list[float]:
    return pg.evaluate(f"Chart.getChart('{chart}').data.datasets[{dataset}].data.map(p => p.x)")


def test_live_curves_switch_between_samples_and_epochs(site, page):
    job_id = site["ids"]["running"]
    page.goto(f"{site['base']}/results/{job_id}")
    assert xs(page, "chart-acc") == [500, 1000, 1500, 2000, 2500, 3000]  # the subset's points, by samples seen
    assert xs(page, "chart-acc", 1) == []  # half an epoch in: no whole-test-set point yet
    assert page.evaluate("Chart.getChart('chart-acc').options.scales.x.title.text") == "training samples seen"
    assert page.evaluate("Chart.getChart('chart-acc').options.scales.x.max") == pytest.approx(2 * N)  # the plan
    assert "first 1,000 test images" in page.evaluate("Chart.getChart('chart-acc').data.datasets[0].label")
    phase = page.locator("#phase").inner_text()
    assert "training" in phase and "step 47/188" in phase and "elapsed" in phase and "left" in phase, phase
    shot(page, "curves-running-samples")

    page.check("input[name=axis][value=epochs]")
    assert page.evaluate("Chart.getChart('chart-steps').options.scales.x.title.text") == "epochs"
    assert xs(page, "chart-acc") == pytest.approx([500 / N * k for k in range(1, 7)])
    steps = xs(page, "chart-steps")
    assert steps == sorted(steps) and steps[0] > 0 and steps[-1] <= 0.5 + 1e-9

    with session_scope(site["db"]) as s:  # the worker goes on to the end of epoch 1
        add_points(s, job_id, 0.5, 1.0, 64)
    page.wait_for_function("Chart.getChart('chart-acc').data.datasets[1].data.length == 1", timeout=10_000)
    assert xs(page, "chart-acc", 1) == [1.0] and len(xs(page, "chart-acc")) == 11
    shot(page, "curves-running-epochs")
    assert page.evaluate("sessionStorage.getItem('cnnlab.axis')") == "epochs"  # the next page opens on it
    assert page.problems == []


def test_the_log_panel_follows_a_running_job_until_it_ends(site, page):
    job_id = site["ids"]["logged"]
    log = site["jobs"] / str(job_id) / "log.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("==== cnnlab: training process started ====\n2026-11-28 20:00:00 job: loading mnist\n")
    page.goto(f"{site['base']}/results/{job_id}")
    page.wait_for_function("document.getElementById('log').textContent.includes('loading mnist')", timeout=10_000)
    assert page.locator("#log-state").inner_text() in ("following…", "")
    with open(log, "a") as f:
        f.write("2026-11-28 20:00:05 epoch 1/2: train loss 0.41, test accuracy 91.20%\n")
    page.wait_for_function("document.getElementById('log').textContent.includes('epoch 1/2')", timeout=10_000)
    shot(page, "log-panel-running")
    with open(log, "a") as f:
        f.write("2026-11-28 20:00:09 done: test accuracy 93.00%\n")
    with session_scope(site["db"]) as s:
        job = s.get(Job, job_id)
        job.status, job.finished_at = "failed", utcnow()  # no result row: the page shows the log it ended with
    page.wait_for_selector("#live", state="hidden", timeout=20_000)  # the page reloaded once the log ended
    page.wait_for_function("document.getElementById('log').textContent.includes('done: test accuracy')",
                           timeout=10_000)
    assert page.locator("#log").inner_text().count("loading mnist") == 1
    shot(page, "log-panel-ended")
    assert page.problems == []


def test_compare_overlays_batch_sizes_on_samples_seen(site, page):
    ids = [site["ids"][b] for b in (16, 64, 512)]
    page.goto(f"{site['base']}/compare?ids={','.join(map(str, ids))}")
    ends = [xs(page, "chart-acc", i)[-1] for i in range(3)]
    assert ends == [2 * N] * 3  # the same samples whatever the batch: one x axis for all three
    steps_end = [xs(page, "chart-steps", i)[-1] for i in range(3)]
    assert max(steps_end) <= 2 * N and min(steps_end) > 1.8 * N
    shot(page, "compare-batch-samples")
    page.check("input[name=axis][value=epochs]")
    assert [xs(page, "chart-acc", i)[-1] for i in range(3)] == [2.0] * 3
    assert page.problems == []


def test_jobs_list_shows_progress_in_words(site, page):
    page.goto(site["base"] + "/")
    cell = page.locator(f"#jobs tbody tr:has(a[href='/results/{site['ids']['running']}']) td:nth-child(3)")
    text = cell.inner_text()
    assert "running" in text and "left" in text, text
    assert page.problems == []


def test_a_job_that_recorded_no_points_draws_no_empty_charts(site, page):
    page.goto(f"{site['base']}/results/{site['ids']['failed']}")
    assert page.locator("canvas").count() == 0
    assert "No curves" in page.locator("#no-curves").inner_text()
    assert page.problems == []
