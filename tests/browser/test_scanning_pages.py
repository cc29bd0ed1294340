"""Scanning results at 1280 px in headless Chromium: the jobs list of the lab's jobs (every preset and one seed of
every study cell) fits the window with accuracy up front; /compare of 30 runs draws one mean ± sd band per sweep
cell with its legend outside the plots; a two-field sweep's page has a parallel-coordinates view. Screenshots go
to var/screenshots/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support import migrate, serve, shot

from api import create_app
from shared.lab.specs import PRESETS, resolve
from shared.lab.studies import STUDIES
from shared.lab.sweeps import SweepRequest, cell_label, expand
from shared.store.db import session_scope
from shared.store.models import EpochMetric, EvalMetric, Job, Result, StepLoss, Sweep, utcnow

N_TRAIN = 60_000


def store_sweep(s, request: SweepRequest, study: str | None = None, age_hours: float = 0.5) -> list[Job]:
    """A sweep and its queued jobs as POST /sweeps stores them (no data check: CIFAR-10 need not be here)."""
    plan = expand(request)
    sweep = Sweep(name=request.name, preset=request.base.preset, base=plan.base.model_dump(),
                  grid=request.stored_grid(), seeds=plan.seeds, study=study, priority=request.priority)
    s.add(sweep)
    s.flush()
    jobs = [Job(name=f"{sweep.name} [{cell_label(cell.values)}] seed {seed}"[:200], preset=sweep.preset,
                model=spec.model, dataset=spec.dataset, spec=spec.model_dump(), status="queued", sweep_id=sweep.id,
                cell_index=cell.index, cell=cell.values, created_at=utcnow() - timedelta(hours=age_hours))
            for cell, seed, spec in plan.jobs()]
    s.add_all(jobs)
    s.flush()
    return jobs


def finish(s, job: Job, accuracy: float, epochs: int = 2) -> None:
    """A succeeded job with test points against samples seen (3 on the subset, 1 on the whole set per epoch)."""
    job.status, job.started_at, job.finished_at = "succeeded", job.created_at, job.created_at + timedelta(seconds=95)
    for epoch in range(1, epochs + 1):
        for q in (0.25, 0.5, 0.75, 1.0):
            e = epoch - 1 + q
            s.add(EvalMetric(job_id=job.id, samples_seen=int(e * N_TRAIN), epoch=e, step=int(e * 938),
                             test_loss=0.5 / e, test_accuracy=accuracy - 0.05 / e, test_samples=1000, full=q == 1))
            s.add(StepLoss(job_id=job.id, epoch=epoch, step=int(q * 938), global_step=int(e * 938), loss=0.8 / e,
                           samples_seen=int(e * N_TRAIN)))
        s.add(EpochMetric(job_id=job.id, epoch=epoch, train_loss=0.8 / epoch, test_loss=0.5 / epoch,
                          test_accuracy=accuracy - 0.05 / epoch, seconds=40, train_seconds=36, samples_per_second=1700))
    s.add(Result(job_id=job.id, test_accuracy=accuracy, test_loss=0.5 / epochs, params=6442, epochs=epochs,
                 train_seconds=72, samples_per_second=1700, data={"train_samples": N_TRAIN}, environment={},
                 details={}))


def lab_jobs(s) -> None:
    """The lab's jobs: one run of each preset, and one seed of every study cell at its quick size."""
    for i, preset in enumerate(PRESETS):
        spec = resolve(preset, {})
        job = Job(name=f"{preset} (the lab's recipe)", preset=preset, model=spec.model, dataset=spec.dataset,
                  spec=spec.model_dump(), status="queued", created_at=utcnow() - timedelta(minutes=10 + i))  # first page
        s.add(job)
        s.flush()
        finish(s, job, 0.9 - i / 100)
    for name, study in STUDIES.items():
        jobs = store_sweep(s, SweepRequest.model_validate(study.sweep_body("quick", 1)), study=name)
        for k, job in enumerate(jobs[:-1]):
            if name != "raise-accuracy" or k < 4:  # the last study is under way: queued jobs
                finish(s, job, 0.8 + k / 100)
        running = jobs[-1]  # and each study's last job trains
        running.status, running.started_at = "running", utcnow() - timedelta(seconds=50)
        running.progress = {"phase": "training", "epoch": 1, "epochs": 2, "fraction": 0.4, "eta_seconds": 80}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('scanning') / 'pages.db'}"
    migrate(url)
    with session_scope(url) as s:
        lab_jobs(s)
        grid = {"model_args.n_hidden": [4, 8, 16], "lr": [0.01, 0.05]}  # 6 cells x 5 seeds
        request = SweepRequest(name="width and lr", base={"preset": "mnist-fc", "overrides": {"epochs": 2}},
                               grid=grid, seeds=5)
        runs = store_sweep(s, request, age_hours=5)  # older: the list's first page is the lab's 50 jobs
        for job in runs:
            cell = job.cell
            finish(s, job, 0.80 + cell["model_args.n_hidden"] / 200 + cell["lr"] + job.spec["seed"] / 500)
        two = {"sweep": runs[0].sweep_id, "ids": [j.id for j in runs]}
    base, server = serve(create_app({"DATABASE_URL": url}))
    yield {"base": base, **two}
    server.shutdown()


def test_the_lab_jobs_fit_1280_px_with_accuracy_up_front(site, page):
    page.goto(site["base"] + "/")
    assert page.locator("#jobs tbody tr").count() == 50
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] == 1280, width  # no sideways scroll
    table = page.evaluate("(() => { const t = document.getElementById('jobs'); "
                          "return [t.scrollWidth, t.getBoundingClientRect().right]; })()")
    assert table[0] <= 1280 and table[1] <= 1280, table
    heads = page.eval_on_selector_all("#jobs thead th", "ths => ths.map(t => t.textContent.trim())")
    assert heads.index("Accuracy") < 4 and heads[:5] == ["", "Name", "Status", "Accuracy", "Duration"], heads
    assert heads[5] == "preset" and len(heads) <= 12, heads  # the differing fields, then the rest in one cell
    lines = page.eval_on_selector_all("#jobs tbody td.created time", "ts => ts.map(t => t.getClientRects().length)")
    assert set(lines) == {1}  # a created time on one line
    hover = page.get_attribute("#jobs tbody tr:first-child td.created time", "title")
    assert hover.endswith(" UTC") and len(hover) == len("2026-12-07 17:02:57 UTC"), hover
    assert page.inner_text("#jobs tbody tr:first-child td.created").endswith("ago")
    recipe = page.locator("#jobs tbody tr", has_text="mnist-cnn (the lab's recipe)")
    assert recipe.locator("td.more").inner_text().strip() == ""  # a preset's own values are no difference
    shot(page, "jobs-lab-1280")
    assert page.problems == []


# Per chart: its datasets and their points, the plot area, and whether each group's band has width somewhere.
PLOT = """id => {
  const chart = Chart.getChart(document.getElementById(id)), box = chart.canvas.getBoundingClientRect();
  const sets = chart.data.datasets, a = chart.chartArea;
  const bands = [];
  for (let i = 0; i + 2 < sets.length; i += 3)
    bands.push(sets[i + 1].data.some((p, j) => p.y - sets[i + 2].data[j].y > 1e-6));
  return {sets: sets.length, points: sets.map(d => d.data.length), height: a.bottom - a.top, bands,
          legend: chart.options.plugins.legend.display,
          area: {top: box.top + a.top, bottom: box.top + a.bottom, left: box.left + a.left, right: box.left + a.right}};
}"""


def overlaps(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def test_compare_30_runs_draws_a_band_per_cell_with_the_legend_outside(site, page):
    page.goto(f"{site['base']}/compare?ids={','.join(map(str, site['ids']))}")
    assert page.locator("#groups tbody tr, #groups tr[data-group]").count() == 6  # 6 cells x 5 seeds
    assert "n_hidden=16, lr=0.05" in page.inner_text("#groups")
    legend = page.evaluate("(() => { const r = document.getElementById('legend').getBoundingClientRect(); "
                           "return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; })()")
    assert page.locator("#legend button").count() == 6
    for chart in ("chart-acc", "chart-loss", "chart-steps"):
        drawn = page.evaluate(PLOT, chart)
        assert drawn["sets"] == 18 and min(drawn["points"]) >= 8, drawn  # mean, +sd, -sd per cell; not 30 lines
        assert drawn["legend"] is False and not overlaps(legend, drawn["area"]), (legend, drawn)
        assert drawn["height"] >= 150, drawn  # the plot keeps its height
    assert all(page.evaluate(PLOT, "chart-acc")["bands"])  # 5 seeds apart: every cell's band has width
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width  # no table runs past the right edge
    assert page.locator("#runs tr[data-group]").count() == 30
    shot(page, "compare-30-runs")
    page.click("#legend button[data-group='0']")  # hide a cell on every chart
    assert page.evaluate("Chart.getChart('chart-loss').isDatasetVisible(0)") is False
    assert page.problems == []


def test_a_two_field_sweep_has_parallel_coordinates(site, page):
    page.goto(f"{site['base']}/sweeps/{site['sweep']}")
    axes = page.eval_on_selector_all("#parallel g.axis", "gs => gs.map(g => g.dataset.name)")
    assert axes == ["model_args.n_hidden", "lr", "test accuracy (%)"]
    lines = page.eval_on_selector_all("#parallel polyline.cell", """ls => ls.map(l => {
        const pts = [...l.points]; return {cell: +l.dataset.cell, n: pts.length, y: pts[pts.length - 1].y,
                                           title: l.querySelector('title').textContent}; })""")
    assert len(lines) == 6 and {line["n"] for line in lines} == {3}  # a line per cell through 3 axes
    best = min(lines, key=lambda line: line["y"])  # drawn highest on the accuracy axis
    assert best["title"].startswith("model_args.n_hidden=16, lr=0.05: 93.40%"), best
    box = page.evaluate("(() => { const r = document.getElementById('parallel').getBoundingClientRect(); "
                        "return [r.right, r.height]; })()")
    assert box[0] <= 1280 and box[1] >= 200, box
    shot(page, "sweep-parallel")
    page.click("#compare-all")  # every cell's runs on /compare, 30 of them
    page.wait_for_selector("#legend")
    assert page.locator("#groups tr[data-group]").count() == 6
    assert page.problems == []
