"""The sweep pages in a real headless Chromium: the cells table, the CI chart, curves with bands, no console errors.

Needs Debian's `chromium` and `playwright`, as tests/browser/test_browser.py; screenshots go to var/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from support import migrate

from api import create_app
from shared.store.db import session_scope
from shared.store.models import EpochMetric, Job, Result
from shared.store.sweeps import create_sweep
from shared.sweepgrid import SweepRequest

CHROMIUM = os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
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
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, create_app({"DATABASE_URL": url}), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"base": f"http://127.0.0.1:{server.server_port}", "sweep": sweep_id, "ids": ids}
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.problems = []
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(f"console: {m.text}"))
    pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))
    pg.on("response", lambda r: r.status >= 400 and pg.problems.append(f"HTTP {r.status}: {r.url}"))
    yield pg
    ctx.close()


def shot(pg, name: str) -> None:
    folder = Path(os.environ.get("CNNLAB_SCREENSHOT_DIR", REPO / "var" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(folder / f"{name}.png"), full_page=True)


INK = """id => {
  const canvas = document.getElementById(id), chart = Chart.getChart(canvas);
  const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0; for (let i = 3; i < px.length; i += 4) ink += px[i] > 0;
  return {sets: chart.data.datasets.length, points: chart.data.datasets.map(d => d.data.length), ink,
          bars: (chart.data.datasets[0].errorBars || []).filter(Boolean).length};
}"""


def test_sweep_page_draws_cells_error_bars_and_bands(site, page):
    page.goto(f"{site['base']}/sweeps/{site['sweep']}")
    rows = page.locator("#cells tbody tr")
    assert rows.count() == 3
    assert "92.75%" in rows.nth(2).inner_text() and "1 to come" in rows.nth(2).inner_text()  # 2 of 3 seeds done
    assert "is ahead by" in rows.nth(2).inner_text()  # 16 hidden units against 4: clear at 2-3 seeds
    metric, acc, loss = (page.evaluate(INK, i) for i in ("chart-metric", "chart-acc", "chart-loss"))
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
