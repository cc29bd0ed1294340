"""The jobs list (columns, sort, search, filters), the queue page, the job page's display fixes and the layer
viewer in headless Chromium, over a seeded SQLite database; screenshots go to var/screenshots/."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from support import REDIS_URL, migrate, serve, shot
from support import data_dir_for_tests as data_root

from api import create_app
from shared.lab.specs import resolve
from shared.store.db import session_scope
from shared.store.models import Checkpoint, EpochMetric, Job, Result, utcnow
from shared.train import checkpoint, figures
from shared.train.engine import fit

LONG_MEAN, LONG_STD = [0.13066047430038452], [0.30810779333114624]


def real_artifacts(tmp: Path) -> dict:
    """The artifacts of a tiny real mnist-cnn run: every conv layer drawn."""
    spec = resolve("mnist-cnn", {"train_limit": 500, "test_limit": 200, "device": "cpu"})
    result = fit(spec, data_root=data_root(), out_dir=tmp / "run")
    return figures.compute(spec, checkpoint.path_for(tmp / "run", 1), None, data_root(), result.misclassified)


def add(url: str, name: str, status: str, overrides: dict, accuracy: float | None = None, **extra) -> int:
    spec = resolve("mnist-cnn", overrides).model_dump()
    start = utcnow() - timedelta(minutes=5)
    with session_scope(url) as s:
        job = Job(name=name, preset="mnist-cnn", model="cnn", dataset="mnist", spec=spec, status=status,
                  created_at=start, started_at=start if status != "queued" else None,
                  finished_at=utcnow() if status in ("succeeded", "failed", "cancelled") else None,
                  error=extra.get("error"), warnings=extra.get("warnings"))
        s.add(job)
        s.flush()
        if accuracy is not None:
            s.add(EpochMetric(job_id=job.id, epoch=1, train_loss=0.5, test_loss=0.3, test_accuracy=accuracy,
                              seconds=20, train_seconds=18, samples_per_second=3300))
            s.add(Result(job_id=job.id, test_accuracy=accuracy, test_loss=0.3, params=6422, epochs=1, train_seconds=18,
                         samples_per_second=3300, environment={"torch": "2", "device": "cpu: cpu", "world_size": 1},
                         data={"name": "mnist", "mean": LONG_MEAN, "std": LONG_STD, "classes": [str(i) for i in range(10)],
                               "train_samples": 60000, "test_samples": 10000},
                         details={"artifacts": extra["artifacts"]} if extra.get("artifacts") else {}))
            s.add(Checkpoint(job_id=job.id, epoch=1, key=f"jobs/{job.id}/epoch-001.pt", sha256="ab" * 32,
                             size_bytes=round(108250.1 * 1024)))
        return job.id


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("listing")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_CACHE_DIR", str(tmp / "cache"))
        arts = real_artifacts(tmp)
    url = f"sqlite:///{tmp / 'pages.db'}"
    migrate(url)
    ids = {
        "small": add(url, "lr sweep small", "succeeded", {"lr": 0.005, "model_args.n_feature": 4}, 0.91, artifacts=arts),
        "big": add(url, "lr sweep big", "succeeded", {"lr": 0.2, "model_args.n_feature": 12}, 0.42),
        "mid": add(url, "lr sweep mid", "succeeded", {"lr": 0.05, "model_args.n_feature": 8}, 0.999),
        "failed": add(url, "broken", "failed", {"lr": 0.01}, error="RuntimeError: boom"),
        "cancelled": add(url, "stopped early", "cancelled", {"lr": 0.01}),
        "queued": add(url, "waiting one", "queued", {"lr": 0.01}, warnings=[
            {"field": "mean", "message": "the preset's mean/std are mnist's; fashion-mnist uses its own"}]),
    }
    base, db = REDIS_URL.rsplit("/", 1)  # a Redis database no worker listens on: nobody serves any queue
    base_url, server = serve(create_app({"DATABASE_URL": url, "BROKER_URL": f"{base}/{int(db) - 1}",
                                         "DATA_DIR": data_root()}))
    yield {"base": base_url, "ids": ids}
    server.shutdown()


def row_names(page) -> list[str]:
    return page.eval_on_selector_all("#jobs tbody tr td.name", "tds => tds.map(t => t.textContent.trim().replace(/^#\\d+ /, ''))")


def test_jobs_list_columns_sort_and_search(site, page):
    page.goto(site["base"] + "/?q=lr sweep")
    heads = page.eval_on_selector_all("#jobs thead th.param", "ths => ths.map(t => t.dataset.key)")
    assert heads == ["lr", "model_args.n_feature"]
    assert sorted(row_names(page)) == ["lr sweep big", "lr sweep mid", "lr sweep small"]
    page.click("#jobs thead th[data-key='lr'] a")
    page.wait_for_url("**sort=lr*")
    assert row_names(page) == ["lr sweep small", "lr sweep mid", "lr sweep big"]
    page.click("#jobs thead th[data-key='model_args.n_feature'] a")
    page.wait_for_url("**sort=model_args.n_feature*")
    page.click("#jobs thead th[data-key='model_args.n_feature'] a")  # again: descending
    page.wait_for_url("**sort=-model_args.n_feature*")
    assert row_names(page) == ["lr sweep big", "lr sweep mid", "lr sweep small"]
    assert page.locator("#jobs thead th.sorted").get_attribute("aria-sort") == "descending"
    shot(page, "jobs-columns-sorted")
    page.fill("#filters input[name=q]", "BIG")
    page.click("#filters button")
    page.wait_for_url("**q=BIG*")
    assert row_names(page) == ["lr sweep big"] and "sort=-model_args.n_feature" in page.url  # the order is kept
    page.goto(site["base"] + "/")
    page.select_option("#filters select[name=status]", "failed")
    page.click("#filters button")
    assert row_names(page) == ["broken"]
    assert page.problems == []


def test_queue_page(site, page):
    page.goto(site["base"] + "/queue")
    assert page.locator("#queues tr[data-queue=cpu] td").nth(1).inner_text() == "1"
    assert "none" in page.locator("#queues tr[data-queue=gpu] td").nth(2).inner_text()
    assert page.locator("#waiting tbody tr, #waiting tr").filter(has_text="waiting one").count() == 1
    assert "No live worker answered" in page.inner_text("main")
    shot(page, "queue")
    assert page.problems == []


def test_job_page_display_fixes(site, page):
    page.goto(f"{site['base']}/results/{site['ids']['mid']}")
    text = page.inner_text("main")
    assert "106 MiB" in text and "KiB" not in text
    assert "0.1307 / 0.3081" in text and "0.13066" not in text
    assert page.locator("table.kv tr", has_text="Device").locator("td").inner_text() == "cpu"
    y_max = page.evaluate("Chart.getChart(document.getElementById('chart-acc')).scales.y.max")
    assert y_max <= 100  # 99.9% accuracy: the axis still ends at 100%
    shot(page, "job-display")
    assert page.problems == []


@pytest.mark.parametrize("which, words", [("failed", "the job failed"), ("cancelled", "was cancelled")])
def test_failed_and_cancelled_jobs_say_why_there_are_no_curves(site, page, which, words):
    page.goto(f"{site['base']}/results/{site['ids'][which]}")
    assert page.locator("canvas").count() == 0
    assert words in page.inner_text("#no-curves")
    shot(page, f"job-{which}")
    assert page.problems == []


def test_a_queued_job_shows_its_warnings_and_why_it_waits(site, page):
    page.goto(f"{site['base']}/results/{site['ids']['queued']}")
    assert "no live worker serves the cpu queue; position 1 in the cpu queue" in page.inner_text("#waiting")
    assert "fashion-mnist uses its own" in page.inner_text("#warnings")
    shot(page, "job-queued")
    assert page.problems == []


def visible(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.filter(e => e.offsetParent !== null).map(e => e.alt)")


def test_layer_viewer_shows_every_conv_layer_and_a_chosen_test_image(site, page):
    page.goto(f"{site['base']}/results/{site['ids']['small']}")
    options = page.eval_on_selector_all("#layer-pick option", "os => os.map(o => o.textContent.trim())")
    assert len(options) == 2 and options[1].startswith("conv 2")
    assert visible(page, "#layers .layer img") == ["conv 1 filters", "conv 1 maps of test image 0"]
    cell = page.evaluate("""() => { const img = document.querySelector('#layers .layer:not([hidden]) img.filters');
        return img.getBoundingClientRect().width / img.naturalWidth * 5; }""")  # a 5x5 kernel's drawn size
    assert cell >= 64
    assert page.locator("#layers .colour-scale:visible").count() == 2  # filters and maps
    shot(page, "layers-conv1")
    page.select_option("#layer-pick", "1")
    page.check("#image-pick input[value='3']")
    assert visible(page, "#layers .layer img") == ["conv 2 filters", "conv 2 maps of test image 3"]
    assert "test image" in page.inner_text("#layers .layer:not([hidden]) .maps:not([hidden]) figcaption")
    assert images_sharp(page)
    shot(page, "layers-conv2-image3")
    assert page.problems == []


def images_sharp(page) -> bool:
    """Enlarged pictures are drawn nearest-neighbour (no blur)."""
    return page.eval_on_selector_all("#layers img.pix", "is => is.every(i => getComputedStyle(i).imageRendering "
                                                        "=== 'pixelated')")
