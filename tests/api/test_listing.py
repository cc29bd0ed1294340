"""GET /jobs and the jobs page: differing spec columns, sorting, search, filters, and unknown parameters as 422s;
POST /jobs warnings from the submit-time rules. On SQLite and PostgreSQL, over the app's HTTP interface."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from shared.store.db import session_scope
from shared.store.models import Job, Result, utcnow


@pytest.fixture(autouse=True)
def no_queued_leftovers(client, db_url):
    """Cancel the queued jobs a test made: the session's database is shared, and the dispatch tests expect no
    queued job they did not make."""
    with session_scope(db_url) as s:
        last = s.scalar(select(func.max(Job.id))) or 0
    yield
    with session_scope(db_url) as s:
        s.execute(update(Job).where(Job.id > last, Job.status == "queued").values(status="cancelled",
                                                                                 finished_at=utcnow()))


@pytest.fixture
def batch(client, db_url):
    """Four jobs whose names share a fresh tag (so each test sees only its own), with results and durations."""
    tag = uuid.uuid4().hex[:8]
    made = {}
    for name, overrides, acc, minutes in (
            ("lr-small", {"lr": 0.005, "model_args.n_feature": 4}, 0.91, 3),
            ("lr-big", {"lr": 0.2, "model_args.n_feature": 12}, 0.42, 1),
            ("Lr-Mid", {"lr": 0.05, "model_args.n_feature": 8}, None, None),
            ("other", {"lr": 0.01, "model_args.n_feature": 6, "batch_size": 128}, 0.97, 2)):
        r = client.post("/jobs", json={"preset": "mnist-cnn", "overrides": overrides, "name": f"{tag} {name}"})
        assert r.status_code == 201, r.json
        made[name] = r.json["id"]
        if acc is not None:
            _finish(db_url, made[name], acc, minutes)
    return tag, made


def _finish(url: str, job_id: int, accuracy: float, minutes: int) -> None:
    end = utcnow()
    with session_scope(url) as s:
        s.execute(update(Job).where(Job.id == job_id).values(status="succeeded", started_at=end - timedelta(minutes=minutes),
                                                            finished_at=end))
        s.add(Result(job_id=job_id, test_accuracy=accuracy, test_loss=0.3, params=1, epochs=1, train_seconds=1.0,
                     samples_per_second=1.0, data={}, environment={}, details={}))


def names(body: dict, tag: str) -> list[str]:
    return [j["name"].removeprefix(tag + " ") for j in body["items"]]


def test_columns_are_the_spec_fields_that_differ(client, batch):
    tag, _ = batch
    body = client.get(f"/jobs?q={tag}").json
    assert body["columns"] == ["batch_size", "lr", "model_args.n_feature"]
    row = next(j for j in body["items"] if j["name"].endswith("lr-big"))
    assert row["params"] == {"batch_size": 64, "lr": 0.2, "model_args.n_feature": 12}


@pytest.mark.parametrize("sort, expected", [
    ("lr", ["lr-small", "other", "Lr-Mid", "lr-big"]),
    ("-lr", ["lr-big", "Lr-Mid", "other", "lr-small"]),
    ("model_args.n_feature", ["lr-small", "other", "Lr-Mid", "lr-big"]),  # numbers, not text: 12 after 8
    ("-test_accuracy", ["other", "lr-small", "lr-big", "Lr-Mid"]),  # no result: last either way
    ("test_accuracy", ["lr-big", "lr-small", "other", "Lr-Mid"]),
    ("duration", ["lr-big", "other", "lr-small", "Lr-Mid"]),
    ("name", ["Lr-Mid", "lr-big", "lr-small", "other"]),  # the database's own collation: upper case first on both
    ("-id", ["other", "Lr-Mid", "lr-big", "lr-small"]),
])
def test_sort_by_any_column(client, batch, sort, expected):
    tag, _ = batch
    r = client.get(f"/jobs?q={tag}&sort={sort}")
    assert r.status_code == 200, r.json
    got = names(r.json, tag)
    if sort == "name":  # collations differ (PostgreSQL's may ignore case): only check it is sorted as a whole
        assert sorted(got) == sorted(expected) and len(got) == 4
    else:
        assert got == expected


def test_search_is_a_case_insensitive_substring_of_the_name(client, batch):
    tag, _ = batch
    assert sorted(names(client.get(f"/jobs?q={tag} lr-").json, tag)) == ["Lr-Mid", "lr-big", "lr-small"]
    assert client.get(f"/jobs?q={tag} LR-MID").json["total"] == 1
    assert client.get("/jobs?q=%25_no such name_%25").json["total"] == 0  # % and _ are literal, not wildcards


def test_search_finds_tags_too(client, batch):
    tag, _ = batch
    job_id = client.get(f"/jobs?q={tag} lr-big").json["items"][0]["id"]
    word = f"Week-{uuid.uuid4().hex[:8]}"
    assert client.patch(f"/jobs/{job_id}", json={"tags": [word, "Ünïcode"]}).status_code == 200
    assert [j["id"] for j in client.get(f"/jobs?q={word[2:].lower()}").json["items"]] == [job_id]  # a substring
    assert job_id in [j["id"] for j in client.get("/jobs?q=Ünïcode").json["items"]]  # a whole tag, any characters
    client.patch(f"/jobs/{job_id}", json={"tags": []})


def test_filters_by_model_and_dataset(client, batch):
    tag, _ = batch
    r = client.post("/jobs", json={"preset": "mnist-fc", "name": f"{tag} fc"})
    assert r.status_code == 201
    assert names(client.get(f"/jobs?q={tag}&model=fc2").json, tag) == ["fc"]
    assert client.get(f"/jobs?q={tag}&model=cnn&dataset=mnist").json["total"] == 4
    assert client.get(f"/jobs?q={tag}&dataset=cifar10").json["total"] == 0


@pytest.mark.parametrize("query, needle", [
    ("name=x", "name"), ("tags=a", "tags"), ("sort=colour", "cannot sort by 'colour'"), ("sort=--lr", "--lr"),
    ("status=done", "status"), ("limit=0", "limit"), ("q=" + "x" * 201, "q"),
])
def test_unknown_and_bad_parameters_are_a_422_naming_them(client, query, needle):
    r = client.get(f"/jobs?{query}")
    assert r.status_code == 422, r.data
    assert needle in r.json["error"]["message"]
    assert r.json["error"]["details"][0]["field"] == query.split("=")[0]


def test_the_page_refuses_unknown_parameters_too(client):
    r = client.get("/?name=x", headers={"Accept": "application/json"})
    assert r.status_code == 400 and "name" in r.json["error"]["message"]


def test_openapi_lists_the_query_parameters(client):
    params = {p["name"] for p in client.get("/openapi.json").json["paths"]["/jobs"]["get"]["parameters"]}
    assert {"q", "sort", "model", "dataset", "status", "preset", "limit", "offset"} <= params


def test_the_page_shows_differing_columns_and_sort_links(client, batch):
    tag, ids = batch
    html = client.get(f"/?q={tag}&sort=-lr").get_data(as_text=True)
    assert 'data-key="lr"' in html and 'aria-sort="descending"' in html
    assert html.index(f"#{ids['lr-big']}<") < html.index(f"#{ids['lr-small']}<")
    assert "sort=lr" in html  # the sorted header's link flips the order


def test_post_returns_the_rules_warnings_and_the_job_keeps_them(client):
    r = client.post("/jobs", json={"preset": "mnist-fc", "overrides": {"dataset": "cifar10-jpeg", "train_limit": 100}})
    assert r.status_code == 201, r.json
    assert r.json["spec"]["mean"] is None and [w["field"] for w in r.json["warnings"]] == ["mean"]
    again = client.get(f"/jobs/{r.json['id']}").json
    assert again["warnings"] == r.json["warnings"]
    page = client.get(f"/results/{r.json['id']}").get_data(as_text=True)
    assert 'id="warnings"' in page and "cifar10-jpeg uses its own" in page


def test_a_full_spec_response_says_which_defaults_it_used(client):
    r = client.post("/jobs", json={"spec": {"model": "cnn", "dataset": "mnist"}})
    assert r.status_code == 201
    assert {"momentum", "lr", "epochs"} <= {w["field"] for w in r.json["warnings"]}


def test_cuda_is_accepted_with_a_warning_when_the_workers_cannot_be_asked(client):
    """The client fixture's broker is unreachable: the job is stored, and the answer says the workers are unknown."""
    r = client.post("/jobs", json={"preset": "mnist-cnn", "overrides": {"device": "cuda"}})
    assert r.status_code == 201 and r.json["queue"] == "gpu"
    assert [w["field"] for w in r.json["warnings"]] == ["device"] and "gpu" in r.json["warnings"][0]["message"]


def test_pages_of_a_sorted_list_keep_the_order(client, batch):
    tag, _ = batch
    first = client.get(f"/jobs?q={tag}&sort=-lr&limit=2").json
    assert names(first, tag) == ["lr-big", "Lr-Mid"] and "sort=-lr" in first["next"]
    second = client.get(first["next"]).json
    assert names(second, tag) == ["other", "lr-small"] and second["next"] is None
