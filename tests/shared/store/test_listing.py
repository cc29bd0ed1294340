"""The jobs list's sort keys and its differing-columns rule (shared.store.listing)."""

from __future__ import annotations

import pytest

from shared.lab.specs import PRESETS, resolve
from shared.store.listing import check_sort, departures, differing, flat_spec, page_columns


@pytest.mark.parametrize("sort", ["id", "-created_at", "test_accuracy", "-duration", "lr", "-batch_size",
                                  "model_args.n_feature", "-model_args.n_hidden"])
def test_known_sort_keys(sort):
    assert check_sort(sort) == sort


@pytest.mark.parametrize("sort", ["colour", "--lr", "model_args.", "model_args.a.b", "spec", "model_args"])
def test_unknown_sort_keys_name_the_problem(sort):
    with pytest.raises(ValueError, match="cannot sort by"):
        check_sort(sort)


def test_flat_spec_spreads_model_args():
    assert flat_spec({"lr": 0.1, "model_args": {"n_feature": 6}}) == {"lr": 0.1, "model_args.n_feature": 6}


def test_differing_lists_only_fields_that_differ_in_spec_order():
    specs = [{"model": "cnn", "dataset": "mnist", "lr": 0.01, "seed": 0, "model_args": {"n_feature": 6}},
             {"model": "fc2", "dataset": "mnist", "lr": 0.1, "seed": 0, "model_args": {"n_hidden": 8}},
             {"model": "cnn", "dataset": "cifar10", "lr": 0.01, "seed": 0, "model_args": {"n_feature": 6}}]
    # model and dataset are the list's own columns; a model arg one job lacks differs (None vs a value)
    assert differing(specs) == ["lr", "model_args.n_feature", "model_args.n_hidden"]


def test_nothing_differs_among_one_or_equal_jobs():
    spec = {"model": "cnn", "dataset": "mnist", "lr": 0.01, "mean": [0.1]}
    assert differing([spec]) == [] and differing([spec, dict(spec)]) == [] and differing([]) == []


def _job(preset, **overrides):
    return {"preset": preset, "spec": resolve(preset, overrides).model_dump()}


def test_page_columns_leave_out_what_the_presets_imply():
    """One run of each preset differs in many spec fields, all the presets' own: the page shows the preset alone."""
    lab = [_job(p) for p in PRESETS]
    assert len(differing([j["spec"] for j in lab])) >= 14 and page_columns(lab)[0] == ["preset"]
    sweep = [_job("mnist-cnn", lr=lr, seed=s) for lr in (0.01, 0.05) for s in (0, 1, 2)]
    assert page_columns(sweep)[0] == ["seed", "lr"]  # the most departed first: every job sets its seed, 3 their lr
    mixed = lab + [_job("mnist-fc", dataset="fashion-mnist")]
    columns, apart = page_columns(mixed)
    assert columns[:2] == ["preset", "dataset"] and {"mean", "std"} <= set(columns)
    assert apart[-1] == {"preset", "dataset", "mean", "std"} and apart[0] == {"preset"}


def test_departures_are_the_fields_a_job_sets_apart_from_its_preset():
    assert departures("mnist-cnn", resolve("mnist-cnn", {}).model_dump()) == {"preset"}
    assert departures("mnist-cnn", resolve("mnist-cnn", {"model_args.n_feature": 4}).model_dump()) == \
        {"preset", "model_args.n_feature"}
    assert "lr" in departures(None, resolve("mnist-cnn", {}).model_dump())  # no preset: every field is its own
    assert "lr" in departures("a-preset-since-removed", resolve("mnist-cnn", {}).model_dump())
