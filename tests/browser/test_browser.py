"""The results pages in a real headless Chromium: no console errors, charts drawn, live updates, screenshots.

Needs Debian's `chromium` package (/usr/bin/chromium) and `playwright` (Python); `playwright install` is never
needed. Screenshots go to var/screenshots/ (or $CNNLAB_SCREENSHOT_DIR) for a person to look at.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from support import DRAWN, REPO, serve, shot
from support import data_dir_for_tests as data_root

from api import create_app
from shared.lab.specs import resolve
from shared.store.db import session_scope
from shared.store.models import EpochMetric, EvalMetric, Job, Result, StepLoss, utcnow
from shared.train import checkpoint, figures
from shared.train.engine import fit


def artifacts_for(tmp: Path) -> dict[str, dict]:
    """Real artifacts of tiny mnist-cnn and mnist-fc runs, and the cnn's drawn as a permuted job."""
    out = {}
    for preset in ("mnist-cnn", "mnist-fc"):
        spec = resolve(preset, {"train_limit": 600, "test_limit": 300, "device": "cpu"})
        result = fit(spec, data_root=data_root(), out_dir=tmp / preset)
        path = checkpoint.path_for(tmp / preset, 1)
        out[preset] = figures.compute(spec, path, None, data_root(), result.misclassified)
        permuted = spec.model_copy(update={"permute_pixels": True})
        out[preset + "-permuted"] = figures.compute(permuted, path, None, data_root(), result.misclassified)
    return out


def add_job(url: str, preset: str, status: str, accuracy: float | None, artifacts: dict | None, epochs: int = 3,
            name: str | None = None) -> int:
    spec = resolve(preset, {"epochs": epochs}).model_dump()
    start = utcnow() - timedelta(minutes=5)
    with session_scope(url) as s:
        job = Job(name=name, preset=preset, model=spec["model"], dataset=spec["dataset"], spec=spec, status=status,
                  created_at=start, started_at=start, finished_at=utcnow() if status == "succeeded" else None,
                  progress={"phase": "training", "epoch": 2, "epochs": epochs, "fraction": 0.45})
        s.add(job)
        s.flush()
        done = epochs if status == "succeeded" else 1
        base = accuracy or 0.9
        for e in range(1, done + 1):
            s.add(EpochMetric(job_id=job.id, epoch=e, train_loss=0.9 / e, test_loss=0.6 / e,
                              test_accuracy=base - 0.06 / e, seconds=20, train_seconds=18, samples_per_second=3300))
            add_points(s, job.id, e, base)
        for g in range(1, done * 9 + 1):
            s.add(StepLoss(job_id=job.id, epoch=(g - 1) // 9 + 1, step=(g - 1) % 9 * 100 + 100, global_step=g * 100,
                           loss=2.3 / (1 + g * (accuracy or 0.9) / 3), samples_seen=g * 6400))
        if status == "succeeded":
            add_result(s, job, accuracy, artifacts)
        return job.id


def add_points(s, job_id: int, epoch: int, base: float, n: int = 60_000) -> None:
    """An epoch's test points as the worker records them: three on the test subset, one on the whole test set."""
    for q in (0.25, 0.5, 0.75, 1.0):
        e = epoch - 1 + q
        s.add(EvalMetric(job_id=job_id, samples_seen=int(e * n), epoch=e, step=int(e * 938), test_loss=0.6 / e,
                         test_accuracy=base - 0.06 / e, test_samples=10_000 if q == 1 else 1000, full=q == 1))


def add_result(s, job: Job, accuracy: float, artifacts: dict | None) -> None:
    k = 10
    correct = round(100 * accuracy)
    s.add(Result(job_id=job.id, test_accuracy=accuracy, test_loss=0.2, params=6422 if job.model == "cnn" else 6442,
                 epochs=job.spec["epochs"], train_seconds=54, samples_per_second=3300,
                 data={"name": "mnist", "source": "torchvision MNIST (original IDX files)", "fingerprint": "9f" * 32,
                       "train_samples": 60000, "test_samples": 10000, "classes": [str(i) for i in range(k)],
                       "mean": [0.1307], "std": [0.3081]},
                 environment={"torch": "2.14.1", "device": "cpu: x86_64", "world_size": 1, "threads": 2,
                              "python": "3.11", "host": "lab", "commit": "0123abcd"},
                 details={"confusion": [[correct if i == j else (100 - correct) // (k - 1) for j in range(k)]
                                        for i in range(k)], "misclassified": [], "history": [],
                          **({"artifacts": artifacts} if artifacts else {})}))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The app on a real socket over a seeded SQLite database."""
    tmp = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_CACHE_DIR", str(tmp / "cache"))
        arts = artifacts_for(tmp)
    url = f"sqlite:///{tmp / 'pages.db'}"
    cfg = Config(str(REPO / "alembic.ini"))
    cfg.attributes.update(url=url, configure_logger=False)
    command.upgrade(cfg, "head")
    ids = {p: add_job(url, p, "succeeded", acc, arts[p], name=f"seed {p}") for p, acc in (
        ("mnist-fc", 0.912), ("mnist-cnn", 0.972), ("mnist-fc-permuted", 0.905), ("mnist-cnn-permuted", 0.941))}
    ids["running"] = add_job(url, "mnist-cnn", "running", None, None, name="live one")
    with session_scope(url) as s:  # a custom spec: when it finishes it must not change the report
        s.get(Job, ids["running"]).preset = None
    base, server = serve(create_app({"DATABASE_URL": url}))
    yield {"base": base, "db": url, "ids": ids}
    server.shutdown()






def charts_drawn(pg, *ids) -> dict:
    out = {i: pg.evaluate(DRAWN, i) for i in ids}
    for i, c in out.items():
        assert min(c["points"]) > 0 and c["ink"] > 1000, (i, c)
    return out


def images_loaded(pg) -> int:
    sizes = pg.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
    assert all(sizes), sizes
    return len(sizes)


def test_jobs_list_picks_jobs_to_compare(site, page):
    page.goto(site["base"] + "/")
    assert page.locator("#jobs tbody tr").count() == 5
    assert page.locator("#jobs tbody progress").count() == 1
    shot(page, "jobs")
    for preset in ("mnist-fc", "mnist-cnn", "mnist-cnn-permuted"):
        page.check(f"#jobs input[value='{site['ids'][preset]}']")
    page.wait_for_timeout(2300)  # one refresh of the rows (a job is running): the ticks must survive it
    assert page.locator("#jobs input:checked").count() == 3
    page.click("#compare")
    page.wait_for_url("**/compare?ids=*")
    chosen = [site["ids"][p] for p in ("mnist-fc", "mnist-cnn", "mnist-cnn-permuted")]
    assert page.url.endswith("ids=" + ",".join(map(str, chosen)))
    drawn = charts_drawn(page, "chart-acc", "chart-loss", "chart-steps")
    assert all(c["sets"] == 9 for c in drawn.values())  # three recipes: a mean and a band each
    assert page.locator("tr.differs th").all_inner_texts() == ["preset", "model", "permute_pixels",
                                                               "model_args.n_hidden", "model_args.n_feature"]
    shot(page, "compare")
    assert page.problems == []


@pytest.mark.parametrize("preset", ["mnist-cnn", "mnist-fc-permuted", "mnist-cnn-permuted"])
def test_result_page_draws_curves_and_images(site, page, preset):
    page.goto(f"{site['base']}/results/{site['ids'][preset]}")
    charts_drawn(page, "chart-loss", "chart-acc", "chart-steps")
    assert images_loaded(page) >= (7 if "cnn" in preset else 2)
    assert page.locator("table.confusion tr").count() == 11
    if "permuted" in preset:
        assert page.get_by_text("The same 20 images, normal and with the job's fixed pixel permutation").count() == 1
    shot(page, f"result-{preset}")
    assert page.problems == []


def test_result_page_follows_a_running_job_until_it_ends(site, page):
    job_id = site["ids"]["running"]
    page.goto(f"{site['base']}/results/{job_id}")
    assert page.locator("#live").is_visible()
    assert page.evaluate("Chart.getChart('chart-acc').data.datasets[1].data.length") == 1  # whole test set
    shot(page, "result-running")
    with session_scope(site["db"]) as s:  # the worker finishes epoch 2
        s.add(EpochMetric(job_id=job_id, epoch=2, train_loss=0.4, test_loss=0.3, test_accuracy=0.95, seconds=20,
                          train_seconds=18, samples_per_second=3300))
        add_points(s, job_id, 2, 0.95)
    page.wait_for_function("Chart.getChart('chart-acc').data.datasets[1].data.length == 2", timeout=10_000)
    with session_scope(site["db"]) as s:  # ... and the job ends
        job = s.get(Job, job_id)
        job.status, job.finished_at = "succeeded", utcnow()
        add_result(s, job, 0.95, None)
    page.wait_for_selector("#live", state="hidden", timeout=10_000)  # the page reloaded with the result
    assert page.locator("table.kv", has_text="95.00%").count() == 1
    assert page.problems == []


def test_report_page(site, page):
    page.goto(site["base"] + "/report")
    verdicts = page.locator(".verdict").all_inner_texts()
    assert verdicts == ["inconclusive"] * 4  # one run per preset at most: no verdict (tests/browser/test_study_pages.py)
    shot(page, "report")
    assert page.problems == []
