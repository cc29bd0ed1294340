"""The jobs list's sort keys and its differing-columns rule (shared.store.listing)."""

from __future__ import annotations

import pytest

from shared.store.listing import check_sort, differing, flat_spec


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
