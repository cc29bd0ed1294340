"""The sweep pages in a real headless Chromium: the cells table, the CI chart, curves with bands, no console errors.

Needs Debian's `chromium` and `playwright`, as tests/browser/test_browser.py; screenshots go to var/screenshots/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import DRAWN, migrate, serve, shot

from api import create_app
from shared.lab.sweeps import SweepRequest
from shared.store.db import session_scope
from shared.store.models import EpochMetric, Job, Result
from shared.store.sweeps import create_sweep

REPO = Path(__file__).resolve().parents[2]
ACCURACY = {4: (0.80, 0.83, 0.78), 8: (0.88, 0.90, 0.89), 16: (0.93, 0.925, 0.935)}  # per n_hidden, per seed


def finish(s, job: Job, accuracy: float, epochs: int = 3) -> None:
    """A succeeded job: its per-epoch curve rising to `accuracy`, and its result."""
    job.status = "succeeded"
    for e in range(1, epochs + 1):
        s.add(EpochMetric(job_id=job.id, epoch=e, train_loss=0.9 / e, test_loss=0.6 / e + (1 - accuracy),
                          test_accuracy=accuracy - 0.06 / e, seconds=2, train_seconds=1.8, samples_per_second=3000))
    s.add(Result(job_id=job.id, test_accuracy=accuracy, test_loss=1 - accuracy, params=6442, epochs=epochs,
                 train_seconds=5.4, samples_per_second=3000, data={}, environment={}, details={}))


@pytest.fixture(scope="module")
def site(tmp_path_factory, data_root):
    url = f"sqlite:///{tmp_path_factory.mktemp('sweeps') / 'pages.db'}"
    migrate(url)
    request = SweepRequest(name="hidden units", base={"preset": "mnist-fc", "overrides": {"epochs": 3}},
                           grid={"model_args.n_hidden": [4, 8, 16]}, seeds=3)
    with session_scope(url) as s:
        sweep = create_sweep(s, request, data_root=data_root)
        for job in sweep.jobs[:-1]:  # the last seed of the last cell is still queued
            finish(s, job, ACCURACY[job.cell["model_args.n_hidden"]][job.spec["seed"]])
        sweep_id, ids = sweep.id, [j.id for j in sweep.jobs]
    base, server = serve(create_app({"DATABASE_URL": url}))
    yield {"base": base, "sweep": sweep_id, "ids": ids}
    server.shutdown()






def test_sweep_page_draws_cells_error_bars_and_bands(site, page):
    page.goto(f"{site['base']}/sweeps/{site['sweep']}")
    rows = page.locator("#cells tbody tr")
    assert rows.count() == 3
    assert "92.75%" in rows.nth(2).inner_text() and "1 to come" in rows.nth(2).inner_text()  # 2 of 3 seeds done
    assert "is ahead by" in rows.nth(2).inner_text()  # 16 hidden units against 4: clear at 2-3 seeds
    metric, acc, loss = (page.evaluate(DRAWN, i) for i in ("chart-metric", "chart-acc", "chart-loss"))
    assert metric["points"] == [3] and metric["bars"] == 3 and metric["ink"] > 1000, metric
    assert acc["sets"] == loss["sets"] == 9 and min(acc["points"]) == 3 and acc["ink"] > 1000, acc
    shot(page, "sweep")
    assert page.problems == []


def test_sweeps_list_links_the_sweep_and_jobs_link_back(site, page):
    page.goto(site["base"] + "/sweeps")
    page.click(f"#sweeps a[href$='/sweeps/{site['sweep']}']")
    page.wait_for_selector("#chart-metric")
    page.goto(f"{site['base']}/?sweep_id={site['sweep']}")
    assert page.locator("#jobs tbody tr").count() == 9
    assert page.locator(f"#jobs a[href$='/sweeps/{site['sweep']}']").count() == 9
    assert page.problems == []


def test_compare_groups_jobs_by_cell(site, page):
    ids = site["ids"][:6]  # cells 0 and 1, three seeds each
    page.goto(f"{site['base']}/compare?ids={','.join(map(str, ids))}")
    assert page.locator("#groups tr").count() == 3
    diff = page.locator("#differences li").inner_text()
    assert "model_args.n_hidden=8" in diff and "is ahead by" in diff and "95% CI" in diff, diff
    shot(page, "compare-cells")
    assert page.problems == []
