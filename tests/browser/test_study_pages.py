"""The study and report pages in a real headless Chromium: cells with CIs, the chart's error bars, verdicts.

Needs Debian's `chromium` and `playwright`, as tests/browser/test_browser.py; screenshots go to var/screenshots/.
"""

from __future__ import annotations

import pytest
from support import DRAWN, migrate, serve, shot

from api import create_app
from shared.lab.studies import get_study
from shared.store import report, studies
from shared.store.db import session_scope
from shared.store.models import Job, JobStatus, Result

NORMALIZATION = ((0.985, 0.987, 0.986), (0.975, 0.978, 0.976), (0.984, 0.986, 0.983))  # per cell, per seed
RECIPES = {"mnist-fc": (0.905, 0.907, 0.906), "mnist-cnn": (0.972, 0.975, 0.973),
           "mnist-fc-permuted": (0.906, 0.905, 0.907), "mnist-cnn-permuted": (0.93, 0.935, 0.931)}


def succeed(s, job: Job, accuracy: float) -> None:
    job.status = JobStatus.SUCCEEDED
    s.add(Result(job_id=job.id, test_accuracy=accuracy, test_loss=1 - accuracy, params=6422, epochs=1,
                 train_seconds=40.0, samples_per_second=1500.0, data={}, environment={}, details={}))


@pytest.fixture(scope="module")
def site(tmp_path_factory, data_root):
    url = f"sqlite:///{tmp_path_factory.mktemp('studies') / 'pages.db'}"
    migrate(url)
    with session_scope(url) as s:
        sweep = studies.run_study(s, get_study("normalization"), "quick", 3, data_root=data_root)
        for job in sweep.jobs:
            succeed(s, job, NORMALIZATION[job.cell_index][job.spec["seed"]])
        runs = report.run_missing(s, 3, list(RECIPES), data_root)
        s.flush()
        assert runs[1]["had"] == 3 and runs[1]["sweep_id"] is None  # the study's mean/std cell is mnist-cnn's recipe
        for item in runs[:1] + runs[2:]:
            for job in s.get(type(sweep), item["sweep_id"]).jobs:
                succeed(s, job, RECIPES[item["preset"]][job.spec["seed"]])
    base, server = serve(create_app({"DATABASE_URL": url}))
    yield {"base": base}
    server.shutdown()





def test_study_page_draws_the_cells_with_error_bars_and_states_the_verdicts(site, page):
    page.goto(site["base"] + "/studies")
    page.click("#studies a[href$='/studies/normalization']")
    page.wait_for_selector("#chart-metric")
    assert page.locator("#cells tbody tr").count() == 3
    assert "98.60%" in page.locator("#cells tbody tr").first.inner_text()
    assert page.locator("#claims .verdict").all_inner_texts() == ["holds", "does not hold"]  # 0.2 points < 1
    claims = page.locator("#claims").inner_text()
    assert "95% CI" in claims and "paired over 3 seeds" in claims and "margin 1 point" in claims
    assert "Holm-adjusted" in claims and "detectable at 80% power" in claims and page.locator("#size-note").count() == 0
    assert page.locator("#cells tbody tr td.per-seed").first.inner_text() == "0: 98.50%, 1: 98.70%, 2: 98.60%"
    chart = page.evaluate(DRAWN, "chart-metric")
    assert chart["points"] == [3] and chart["bars"] == 3 and chart["ink"] > 1000, chart
    assert page.locator("#run button").is_visible()
    shot(page, "study")
    assert page.problems == []


def test_a_quick_study_without_runs_says_what_it_cannot_show(site, page):
    page.goto(site["base"] + "/studies/lenet-vs-vgg?size=quick")
    assert "cannot show" in page.locator("#size-note").inner_text()
    assert page.locator("#no-data").is_visible() and page.locator("#claims .verdict").all_inner_texts() == [
        "not shown"]  # the quick size cannot show VGG's edge: no verdict
    shot(page, "study-quick-empty")
    assert page.problems == []


def test_report_page_pools_the_recipe_runs(site, page):
    page.goto(site["base"] + "/report")
    assert page.locator(".verdict").all_inner_texts() == ["holds", "holds", "holds", "inconclusive"]
    assert page.locator("form.report-run button").count() == 3
    first = page.locator("section.report").first.inner_text()
    assert "paired over 3 seeds" in first and "margin 1 point: a reseed" in first
    shot(page, "report-pooled")
    assert page.problems == []
