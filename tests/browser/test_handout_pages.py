"""The handout page in a real headless Chromium: both answers per question, the status lines, the one-click run
button (signed in, through the page's own fetch), the print stylesheet and the one-file export.

Needs Debian's `chromium` and `playwright`, as tests/browser/test_browser.py; screenshots (1280 px wide) go to
var/screenshots/.
"""

from __future__ import annotations

import pytest
from support import migrate, serve, shot

from api import create_app
from shared.lab.studies import get_study
from shared.store import studies
from shared.store.db import session_scope
from shared.store.models import JobStatus, Result

NORMALIZATION = (0.985, 0.955, 0.975)  # per cell (dataset mean/std, none, 0.5): both claims hold


@pytest.fixture(scope="module")
def site(tmp_path_factory, data_root, redis_url):
    url = f"sqlite:///{tmp_path_factory.mktemp('handout') / 'pages.db'}"
    migrate(url)
    with session_scope(url) as s:  # normalization answered at 5 seeds; the other studies not run
        sweep = studies.run_study(s, get_study("normalization"), "quick", 5, data_root=data_root)
        for job in sweep.jobs:
            job.status = JobStatus.SUCCEEDED
            acc = NORMALIZATION[job.cell_index] + 0.001 * job.spec["seed"]
            s.add(Result(job_id=job.id, test_accuracy=acc, test_loss=1 - acc, params=6422, epochs=1, train_seconds=40.0,
                         samples_per_second=1500.0, data={}, environment={}, details={}))
    base, server = serve(create_app({"DATABASE_URL": url, "DATA_DIR": data_root, "BROKER_URL": redis_url}))  # queued to no worker
    yield {"base": base, "url": url}
    server.shutdown()


def test_the_handout_shows_both_answers_and_runs_every_quick_study_in_one_click(site, page, sign_in):
    page.goto(site["base"] + "/")
    assert page.locator("header nav a").first.inner_text() == "Handout"
    page.click("header nav a >> nth=0")
    page.wait_for_selector("#questions")
    assert page.locator(".question h2 .section").all_inner_texts()[:4] == ["1.5", "1.6", "2, 3", "4.1"]
    q42 = page.locator("#q-4-2")
    assert q42.locator(".status-line").inner_text().startswith("answered at 5 seeds")
    assert q42.locator(".data-answer .verdict").all_inner_texts() == ["holds", "holds"]
    assert "(input - mean) / std" in q42.locator(".lab-answer").inner_text()
    assert page.locator("#q-1-5 .status-line").inner_text().startswith("not run")
    shot(page, "handout")
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible() and not page.locator("#run-all").is_visible()
    shot(page, "handout-print")
    page.emulate_media(media="screen")

    page.click("#run-all-button")  # not signed in: the page's fetch is a 401, which sends us to sign in
    page.wait_for_url("**/login?next=%2Fhandout")
    page.problems.clear()  # that 401 was the point
    sign_in(page, site["base"], site["url"])
    page.goto(site["base"] + "/handout")
    plan = page.locator("#plan").inner_text()
    assert "normalization\t0 seeds, 0 jobs" in plan and "fc-vs-cnn\t5 seeds, 20 jobs" in plan
    page.click("#run-all-button")
    page.wait_for_function("document.getElementById('run-status').textContent.includes('queued')")
    assert page.locator("#run-status").inner_text() == "200 jobs queued in 8 sweeps"
    page.wait_for_function("document.querySelector('#q-1-5 .status-line').textContent.startsWith('running')")
    assert page.locator("#q-4-2 .status-line").inner_text().startswith("answered at 5 seeds")
    shot(page, "handout-running")
    assert not page.problems, page.problems


def test_the_exported_file_opens_on_its_own(site, page, tmp_path):
    page.goto(site["base"] + "/handout")
    with page.expect_download() as download:
        page.click("#export")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == "quick-cnnlab-handout.html"
    offline = page.context.browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    local = offline.new_page()
    local.goto(path.as_uri())
    assert local.locator(".question").count() == 11
    assert local.locator("#q-4-2 .data-answer .verdict").all_inner_texts() == ["holds", "holds"]
    assert local.evaluate("getComputedStyle(document.querySelector('.answers')).display") == "grid"  # styled inline
    shot(local, "handout-file")
    offline.close()
    assert not page.problems, page.problems
