"""Results pages on a migrated SQLite database, and the artifacts the worker draws for them (shared/train/figures.py)."""

from __future__ import annotations

import base64
import io
import json
import re
from datetime import timedelta

import numpy as np
import pytest
import torch
from alembic import command
from alembic.config import Config
from PIL import Image
from support import REPO, succeed
from support import data_dir_for_tests as data_root

from api import create_app
from shared.lab.specs import resolve
from shared.store.db import session_scope
from shared.store.jobs import create_job
from shared.store.models import Checkpoint, EpochMetric, Job, Result, StepLoss, utcnow
from shared.train import checkpoint, figures
from shared.train.engine import Reporter, fit
from worker import trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny mnist-cnn trained for real (500 samples), its checkpoint, fit result, trained run and page artifacts."""
    tmp = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_CACHE_DIR", str(tmp / "cache"))
        spec = resolve("mnist-cnn", {"train_limit": 500, "test_limit": 200, "device": "cpu", "log_every": 2})
        kept = KeepRun()
        result = fit(spec, data_root=data_root(), out_dir=tmp / "ckpt", reporter=kept)
        path = checkpoint.path_for(tmp / "ckpt", 1)
        sha = checkpoint.sha256_file(path)
        arts = figures.compute(spec, path, sha, data_root(), result.misclassified)
    return {"spec": spec, "result": result, "path": path, "sha256": sha, "artifacts": arts, "tmp": tmp,
            "run": kept.run}


class KeepRun(Reporter):
    """Keeps the trained run the engine hands over at the end, as the worker's reporter does."""

    run = None

    def on_done(self, run):
        self.run = run


def test_the_images_drawn_from_the_trained_run_are_those_of_its_checkpoint(trained):
    """The worker draws from the model and data it holds (figures.of_run), with no reload: the same images, byte
    for byte, as drawn from the checkpoint and the data loaded again."""
    assert trained["run"] is not None
    assert figures.of_run(trained["run"], trained["result"].misclassified) == trained["artifacts"]


@pytest.fixture
def db_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'pages.db'}"
    cfg = Config(str(REPO / "alembic.ini"))
    cfg.attributes.update(url=url, configure_logger=False)
    command.upgrade(cfg, "head")
    return url


@pytest.fixture
def client(db_url):
    return create_app({"DATABASE_URL": db_url}).test_client()


def add_job(url, preset="mnist-cnn", status="succeeded", accuracy=0.97, name=None, overrides=None, epochs=2,
            artifacts=None, age_minutes=0, **extra) -> int:
    """A job row as the worker leaves it: metrics per epoch and step, a checkpoint, and a result if it succeeded."""
    spec = resolve(preset, {"epochs": epochs, **(overrides or {})}).model_dump()
    created = utcnow() - timedelta(minutes=age_minutes)
    done = status in ("succeeded", "failed", "cancelled")
    with session_scope(url) as s:
        job = Job(name=name, preset=preset, model=spec["model"], dataset=spec["dataset"], spec=spec, status=status,
                  created_at=created, started_at=created + timedelta(seconds=5),
                  finished_at=created + timedelta(seconds=65) if done else None,
                  progress={"phase": "training", "epoch": 1, "epochs": epochs, "fraction": 0.4}, **extra)
        s.add(job)
        s.flush()
        for e in range(1, epochs + 1):
            s.add(EpochMetric(job_id=job.id, epoch=e, train_loss=1.0 / e, test_loss=0.8 / e,
                              test_accuracy=accuracy - 0.05 / e, seconds=30, train_seconds=28,
                              samples_per_second=2000))
            s.add(StepLoss(job_id=job.id, epoch=e, step=100, global_step=100 * e, loss=1.2 / e))
            s.add(Checkpoint(job_id=job.id, epoch=e, key=f"jobs/{job.id}/epoch-{e:03d}.pt", sha256=f"{e:064x}",
                             size_bytes=26000))
        if status == "succeeded":
            s.add(Result(job_id=job.id, test_accuracy=accuracy, test_loss=0.1, params=6422, epochs=epochs,
                         train_seconds=56, samples_per_second=2000,
                         data={"name": spec["dataset"], "source": "torchvision MNIST (original IDX files)",
                               "fingerprint": "ab" * 32, "train_samples": 60000, "test_samples": 10000,
                               "classes": [str(i) for i in range(10)], "mean": [0.1307], "std": [0.3081]},
                         environment={"torch": "2.14.1", "device": "cpu: x86_64", "world_size": 1, "commit": "c0ffee"},
                         details={"confusion": [[9 if i == j else 1 for j in range(10)] for i in range(10)],
                                  "misclassified": [], "history": [],
                                  **({"artifacts": artifacts} if artifacts else {})}))
        return job.id


def rows_order(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<input type="checkbox" value="(\d+)"', html)]


def test_index_lists_newest_first_with_progress_and_filters(client, db_url):
    old = add_job(db_url, accuracy=0.975, name="first", age_minutes=10)
    run = add_job(db_url, status="running", preset="mnist-fc", age_minutes=5)
    new = add_job(db_url, status="queued", preset="mnist-fc")
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert rows_order(html) == [new, run, old]
    assert "97.50%" in html and "first" in html and "1m 00s" in html
    assert html.count('<progress max="1" value="0.4">') == html.count("<progress") == 1  # the running job's bar
    assert 'href="/compare"' in html and 'data-active="2"' in html
    assert rows_order(client.get("/?status=running").get_data(as_text=True)) == [run]
    assert rows_order(client.get("/?preset=mnist-cnn").get_data(as_text=True)) == [old]
    part = client.get("/?partial=rows&status=succeeded")
    assert part.headers["X-Active-Jobs"] == "2" and "<html" not in part.get_data(as_text=True)


def test_index_pages_through_many_jobs(client, db_url):
    for i in range(55):
        add_job(db_url, age_minutes=i, epochs=1)
    first = client.get("/").get_data(as_text=True)
    assert len(rows_order(first)) == 50 and "older →" in first and "← newer" not in first
    second = client.get("/?offset=50").get_data(as_text=True)
    assert len(rows_order(second)) == 5 and "← newer" in second and "51–55 of 55" in second


@pytest.mark.parametrize("query", ["status=bogus", "offset=-1", "limit=0", "limit=x"])
def test_index_rejects_bad_filters_with_a_page(client, query):
    page = client.get(f"/?{query}")
    assert page.status_code == 400 and "Cannot show that" in page.get_data(as_text=True)


def test_result_page_shows_provenance_curves_confusion_and_artifacts(client, db_url, trained):
    job_id = add_job(db_url, artifacts=trained["artifacts"], name="tiny")
    html = client.get(f"/results/{job_id}").get_data(as_text=True)
    for text in ("torchvision MNIST (original IDX files)", "ab" * 32, "2.14.1", "c0ffee", "97.00%", "6,422",
                 f"/jobs/{job_id}/checkpoints/2", f"{2:064x}", 'id="chart-loss"', 'id="chart-steps"',
                 "Confusion matrix", "50.0%", "Dataset samples", "6 learned filters", "after ReLU",
                 "after 2×2 max-pooling", "Misclassified test images"):
        assert text in html, text
    data = json.loads(re.search(r'id="page-data">(.*?)</script>', html, re.DOTALL).group(1))
    assert data["status"] == "succeeded" and [e["epoch"] for e in data["metrics"]["epochs"]] == [1, 2]
    assert html.count("data:image/png;base64,") >= 6
    assert 'id="live" hidden' in html


def test_result_page_shows_the_tta_accuracy_beside_the_plain_one(client, db_url):
    tta = {"level": 2, "views": 6, "accuracy": 0.9412, "loss": 0.2, "plain_accuracy": 0.9325, "plain_loss": 0.25,
           "seconds": 0.4}
    job_id, plain_id = add_job(db_url, "cifar10-fast", accuracy=0.9412), add_job(db_url, "mnist-cnn")
    with session_scope(db_url) as s:
        s.get(Result, job_id).details = {**s.get(Result, job_id).details, "tta": tta}
    html = client.get(f"/results/{job_id}").get_data(as_text=True)
    metrics = re.search(r"<h2>Final metrics</h2>(.*?)</table>", html, re.DOTALL).group(1)
    assert "Test accuracy (TTA, 6 views)</th><td>94.12%" in metrics
    assert "Plain accuracy (no TTA)</th><td>93.25%" in metrics
    plain = client.get(f"/results/{plain_id}").get_data(as_text=True)
    assert "Test accuracy</th><td>97.00%" in plain and "TTA" not in plain


def test_feature_map_captions_name_the_nets_activation_and_pooling(client, db_url, trained):
    """The 1989 LeNet's maps: captions say sigmoid and average pooling, never ReLU and max."""
    arts = {**trained["artifacts"], "feature_maps": {**trained["artifacts"]["feature_maps"],
                                                     "activation": "Sigmoid", "pooling": "average"}}
    html = client.get(f"/results/{add_job(db_url, artifacts=arts)}").get_data(as_text=True)
    assert "after sigmoid" in html and "after 2×2 average-pooling" in html and "pooling averages" in html
    assert "after ReLU" not in html and "max-pooling" not in html


def test_feature_maps_without_a_pooling_stage_show_two_stages(client, db_url, trained):
    """fastnet's first block (whitening conv, GELU) has no pooling of its own: no pooling caption, no error."""
    maps = {k: v for k, v in trained["artifacts"]["feature_maps"].items() if k != "pool"}
    arts = {**trained["artifacts"], "feature_maps": {**maps, "activation": "GELU", "pooling": None}}
    html = client.get(f"/results/{add_job(db_url, artifacts=arts)}").get_data(as_text=True)
    assert "after GELU" in html and "after convolution" in html
    assert "pooling" not in html.split("What the first convolution learned")[1].split("</p>")[0]


def test_result_page_of_a_running_job_follows_it(client, db_url):
    job_id = add_job(db_url, status="running")
    html = client.get(f"/results/{job_id}").get_data(as_text=True)
    assert "No result yet." in html and 'id="live" hidden' not in html and 'value="0.4"' in html
    assert "Dataset samples" not in html  # drawn by the worker when the job ends


def test_pages_cope_with_sparse_results(client, db_url):
    """Results written by older versions, or by hand, may lack any of the optional fields."""
    job_id = add_job(db_url, "mnist-fc", epochs=1)
    with session_scope(db_url) as s:
        r = s.get(Result, job_id)
        r.data, r.environment, r.details = {}, {}, {}
    for path in (f"/results/{job_id}", f"/compare?ids={job_id}", "/report", "/"):
        assert client.get(path).status_code == 200, path


def test_a_result_stored_in_another_shape_shows_what_it_can(client, db_url):
    """Details written by an older version (other keys, a field of another shape) load with that field left out."""
    job_id = add_job(db_url, "mnist-fc", epochs=1)
    with session_scope(db_url) as s:
        s.get(Result, job_id).details = {"confusion": [[7, 3]] + [[0] * 2], "misclassified": [{"index": 4}],
                                         "history": "?", "written_by": "0.1"}
    html = client.get(f"/results/{job_id}").get_data(as_text=True)
    assert "Confusion matrix" in html and "70.0%" in html  # per class from the confusion matrix: 7 of 10


def test_missing_job_page_is_a_friendly_404(client):
    page = client.get("/results/999")
    assert page.status_code == 404 and "job 999 not found" in page.get_data(as_text=True)
    api = client.get("/results/999", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json["error"]["message"] == "job 999 not found"


def test_compare_highlights_differing_spec_fields(client, db_url):
    a = add_job(db_url, accuracy=0.96)
    b = add_job(db_url, accuracy=0.95, overrides={"lr": 0.05})
    html = client.get(f"/compare?ids={a},{b}").get_data(as_text=True)
    assert '<tr class="differs"><th>lr</th><td><code>0.01</code>, <code>0.05</code></td>' in html
    assert "<dt>batch_size</dt><dd><code>64</code></dd>" in html  # shared by both: said once
    assert html.count('<tr data-group="') == 4  # two groups (lr=0.01, lr=0.05), two runs
    assert "96.00%" in html and "95.00%" in html
    series = json.loads(re.search(r'id="page-data">(.*?)</script>', html, re.DOTALL).group(1))["series"]
    assert [s["id"] for s in series] == [a, b] and len(series[0]["steps"]) == 2


@pytest.mark.parametrize("ids,status", [("", 400), ("abc", 400), ("1,x", 400), ("1,999", 404),
                                        (",".join(map(str, range(1, 102))), 400)])
def test_compare_bad_ids_are_4xx_never_500(client, db_url, ids, status):
    add_job(db_url)
    assert client.get(f"/compare?ids={ids}").status_code == status
    api = client.get(f"/compare?ids={ids}", headers={"Accept": "application/json"})
    assert api.status_code == status and api.json["error"]["status"] == status


def verdicts(html: str) -> list[str]:
    return re.findall(r'<span class="verdict [\w-]+">([\w ]+)</span>', html)


def recipe_run(url, preset, seed, accuracy, **overrides) -> int:
    """A succeeded run of the preset's recipe (its own epochs) with this seed, unless overrides depart from it."""
    epochs = 10 if preset.startswith("cifar10") else 1
    return add_job(url, preset, accuracy=accuracy, epochs=epochs, overrides={"seed": seed, **overrides})


def test_report_pools_every_run_of_the_recipe_and_keeps_departures_out(client, db_url):
    for seed, acc in enumerate((0.904, 0.906, 0.905)):
        recipe_run(db_url, "mnist-fc", seed, acc)
        recipe_run(db_url, "mnist-fc-permuted", seed, acc - 0.0005 * seed)
    for seed, acc in enumerate((0.97, 0.975, 0.972)):
        recipe_run(db_url, "mnist-cnn", seed, acc, device="cpu")  # where it ran does not matter
        recipe_run(db_url, "mnist-cnn-permuted", seed, acc - 0.04)
    add_job(db_url, "mnist-fc", accuracy=0.99, epochs=1, overrides={"train_limit": 10000})  # departures: kept out
    add_job(db_url, "mnist-fc", accuracy=0.99, epochs=1, overrides={"test_limit": 1000})
    add_job(db_url, "mnist-fc", accuracy=0.99, epochs=2)
    add_job(db_url, "mnist-fc", status="failed", epochs=1)
    recipe_run(db_url, "cifar10-vgg", 0, 0.84, dataset="cifar10-jpeg")
    recipe_run(db_url, "cifar10-vgg", 1, 0.846, dataset="cifar10-jpeg")
    html = client.get("/report").get_data(as_text=True)
    assert verdicts(html) == ["holds", "holds", "holds", "inconclusive"]
    assert "not enough runs to compare" in html and "82.87%" in html and "JPEG (quality 75) re-encoding" in html
    data = client.get("/report?format=json").json
    fc, cnn = data["tables"][0]["rows"]
    assert fc["n"] == 3 and fc["seeds"] == [0, 1, 2] and fc["test_accuracy"]["mean"] == pytest.approx(0.905)
    assert cnn["n"] == 3 and fc["dataset"] == "mnist"
    claim = data["tables"][0]["claims"][0]
    assert claim["verdict"] == "holds" and claim["n_a"] == claim["n_b"] == 3 and claim["paired"]
    assert claim["diff"] == pytest.approx(100 * ((0.97 + 0.975 + 0.972) / 3 - 0.905))
    assert claim["p_value"] < 0.001 and claim["margin"] == 1.0 and claim["margin_why"]
    lenet, vgg = data["tables"][2]["rows"]
    assert lenet["n"] == 0 and lenet["dataset"] == "cifar10-jpeg" and lenet["lab_accuracy"] == 0.63
    assert vgg["dataset"] == "cifar10-jpeg" and vgg["n"] == 2 and vgg["vs_seed"] == pytest.approx(0.843 - 0.8287)


def test_report_says_when_a_claim_does_not_hold_or_nothing_ran(client, db_url):
    assert verdicts(client.get("/report").get_data(as_text=True)) == ["inconclusive"] * 4
    for seed, (acc, permuted) in enumerate(((0.97, 0.9705), (0.972, 0.9718), (0.971, 0.9712))):
        recipe_run(db_url, "mnist-cnn", seed, acc)
        recipe_run(db_url, "mnist-cnn-permuted", seed, permuted)  # within 0.1 point of the CNN: not ahead by 1
    assert verdicts(client.get("/report").get_data(as_text=True))[2] == "does not hold"


def png(uri: str) -> torch.Tensor:
    """Decode a data: URI with Pillow, an independent PNG reader, as (C, H, W)."""
    assert uri.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    image.load()
    pixels = torch.from_numpy(np.asarray(image).copy())
    return pixels.unsqueeze(0) if pixels.dim() == 2 else pixels.permute(2, 0, 1)


def test_artifacts_of_a_trained_cnn(trained):
    arts = trained["artifacts"]
    assert png(arts["samples"]["png"]).shape == (1, 8 * 30 + 2, 5 * 30 + 2)  # 8x5 grid of 28px, 2px gaps
    assert len(arts["samples"]["labels"]) == 40 and "permuted" not in arts["samples"]
    assert arts["filters"]["count"] == trained["spec"].model_args["n_feature"] == 6
    assert png(arts["filters"]["png"]).shape == (1, 7, 6 * 6 + 1)
    maps = arts["feature_maps"]
    assert {"conv", "relu", "pool"} <= set(maps)
    assert maps["conv"]["shape"] == [6, 24, 24] and maps["pool"]["shape"] == [6, 12, 12]
    png(maps["input"]), png(maps["relu"]["png"])
    assert arts["misclassified"]["count"] == len(trained["result"].misclassified) > 0
    assert len(json.dumps(arts)) < 1_000_000


def test_permuted_and_fc_artifacts(trained):
    permuted = trained["spec"].model_copy(update={"permute_pixels": True})
    arts = figures.compute(permuted, trained["path"], trained["sha256"], data_root())
    pair = arts["samples"]["permuted"]
    assert len(pair["labels"]) == 20 and not torch.equal(png(pair["normal"]), png(pair["permuted"]))
    assert arts["misclassified"] is None  # none were passed
    fc = resolve("mnist-fc", {"train_limit": 100, "test_limit": 50, "device": "cpu"})
    fc_out = trained["tmp"] / "fc"
    fit(fc, data_root=data_root(), out_dir=fc_out)
    fc_arts = figures.compute(fc, checkpoint.path_for(fc_out, 1), None, data_root())
    assert "filters" not in fc_arts and "feature_maps" not in fc_arts and fc_arts["samples"]["png"]


def test_a_real_run_stores_artifacts_and_survives_their_failure(client, db_url, trained, tmp_path, monkeypatch):
    """The training child (worker.trainer) as the worker runs it: the result carries the pages' artifacts."""
    for key, value in (("DATABASE_URL", db_url), ("DATA_DIR", data_root()), ("VAR_DIR", tmp_path / "var"),
                       ("CACHE_DIR", trained["tmp"] / "cache")):
        monkeypatch.setenv(f"CNNLAB_{key}", str(value))
    with session_scope(db_url) as s:
        job, _ = create_job(s, preset="mnist-cnn-permuted", overrides={"train_limit": 300, "test_limit": 100,
                                                                       "device": "cpu"})
        job_id = job.id
    assert trainer.run(job_id) == 0
    with session_scope(db_url) as s:
        details = s.get(Result, job_id).details
    assert "artifacts_error" not in details, details.get("artifacts_error")
    assert details["artifacts"]["samples"]["permuted"] and details["artifacts"]["filters"]["count"] == 6
    html = client.get(f"/results/{job_id}").get_data(as_text=True)
    assert "permuted as the model sees it" in html and "after 2×2 max-pooling" in html

    broken = add_job(db_url, status="running")
    trainer.save_result(broken, trained["result"], None)  # no trained model handed over: nothing to draw from
    with session_scope(db_url) as s:
        result = s.get(Result, broken)
        assert "artifacts" not in result.details and "no trained model" in result.details["artifacts_error"]
        assert result.test_accuracy == trained["result"].test_accuracy
    html = client.get(f"/results/{broken}").get_data(as_text=True)
    assert "could not be drawn: RuntimeError: the engine handed over no trained model" in html


def test_compare_pools_seeds_of_each_recipe_and_takes_100_runs(client, db_url):
    """Jobs outside sweeps group by the fields that differ among them, seeds pooled; 100 runs is one page."""
    ids = [add_job(db_url, accuracy=0.9 + lr + s / 1000, epochs=1, overrides={"lr": lr, "seed": s})
           for lr in (0.01, 0.05) for s in range(50)]
    html = client.get(f"/compare?ids={','.join(map(str, ids))}").get_data(as_text=True)
    groups = re.findall(r'<tr data-group="(\d+)"><td class="label">.*?</span> (.*?)</td>', html.split('id="runs"')[0])
    assert groups == [("0", "lr=0.01"), ("1", "lr=0.05")]
    assert "lr=0.05 is ahead by 4.0" in html  # the groups compared (Welch), not 100 runs side by side
    data = json.loads(re.search(r'id="page-data">(.*?)</script>', html, re.DOTALL).group(1))
    assert data["groups"] == ["lr=0.01", "lr=0.05"] and [s["group"] for s in data["series"]] == [0] * 50 + [1] * 50


def test_the_datasets_own_normalization_shows_where_the_spec_leaves_it_null(db_url):
    client = create_app({"DATABASE_URL": db_url}).test_client()
    with session_scope(db_url) as s:  # no mean/std in the spec: the dataset's own
        own = create_job(s, spec={"model": "cnn", "dataset": "mnist", "epochs": 1}, name="own-normalization")[0].id
        fixed = create_job(s, preset="mnist-cnn", name="own-normalization")[0].id
    page = client.get(f"/results/{own}").data.decode()
    assert "the dataset's own, computed from its training set when the job runs" in page
    succeed(db_url, [own, fixed], [0.9, 0.9])
    with session_scope(db_url) as s:
        s.get(Result, own).data = {"mean": [0.286], "std": [0.353]}
    listing = client.get("/jobs?q=own-normalization").json
    assert {"mean", "std"} <= set(listing["columns"])
    by_id = {j["id"]: j for j in listing["items"]}
    assert by_id[own]["normalization"] == {"mean": [0.286], "std": [0.353]} and by_id[fixed]["normalization"] is None
    rows = client.get("/?q=own-normalization", headers={"Accept": "text/html"}).data.decode()
    assert ">0.286</span>" in rows and ">0.353</span>" in rows
    page = client.get(f"/results/{own}").data.decode()
    assert "0.286 <span class=\"muted\">(the dataset's own, computed from its training set)" in page
