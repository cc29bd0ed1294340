"""The study fields: shuffle, sort_by_class, steps, lr_schedule, label_smoothing (defaults train as before)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shared.lab.specs import SpecError, resolve
from shared.train import checkpoint
from shared.train.batches import EpochPlan, class_order
from shared.train.checkpoint import CheckpointError
from shared.train.engine import Stopped, check_resume, fit, make_scheduler, planned_epochs, total_steps
from shared.train.steps import EagerStep

CPU = torch.device("cpu")
SMALL = {"train_limit": 600, "test_limit": 200}
NEW_DEFAULTS = {"shuffle": True, "sort_by_class": False, "steps": None, "lr_schedule": "none", "label_smoothing": 0.0}
METRICS = ("epoch", "train_loss", "test_loss", "test_accuracy")


def metrics(result) -> list[dict]:
    return [m.model_dump(include=set(METRICS)) for m in result.history]


@pytest.mark.parametrize("preset, model_defaults", [
    ("mnist-fc", {}),
    ("mnist-cnn", {"model_args.head": "fc", "model_args.dropout": 0.0}),
])
def test_new_fields_at_their_defaults_train_exactly_as_before(data_dir, preset, model_defaults):
    plain = fit(resolve(preset, {**SMALL, "epochs": 2}), data_root=data_dir)
    explicit = fit(resolve(preset, {**SMALL, "epochs": 2, **NEW_DEFAULTS, **model_defaults}), data_root=data_dir)
    assert metrics(plain) == metrics(explicit)
    assert plain.confusion == explicit.confusion and plain.params == explicit.params


def test_plan_defaults_are_the_old_plan():
    """The default plan is torch.randperm on the (seed, epoch) generator, as before the new fields."""
    g = torch.Generator().manual_seed((3 * 1_000_003 + 2) % 2**63)
    assert torch.equal(EpochPlan.make(50, 3, 2, False, CPU).order, torch.randperm(50, generator=g))


def test_no_shuffle_keeps_the_stored_order_and_the_same_augmentation():
    shuffled = EpochPlan.make(40, 1, 1, True, CPU)
    for epoch in (1, 2):
        assert torch.equal(EpochPlan.make(40, 1, epoch, False, CPU, shuffle=False).order, torch.arange(40))
    stored = EpochPlan.make(40, 1, 1, True, CPU, shuffle=False)
    assert torch.equal(stored.offsets, shuffled.offsets) and torch.equal(stored.flips, shuffled.flips)


def test_class_sorted_order():
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 0])
    base = class_order(labels)
    assert base.tolist() == [1, 3, 6, 2, 5, 0, 4]  # all 0s, then 1s, then 2s; stored order within a class
    plan = EpochPlan.make(7, 0, 1, False, CPU, shuffle=False, base=base)
    assert labels[plan.order].tolist() == [0, 0, 0, 1, 1, 2, 2]
    mixed = EpochPlan.make(7, 0, 1, False, CPU, shuffle=True, base=base).order
    assert sorted(mixed.tolist()) == list(range(7)) and labels[mixed].tolist() != [0, 0, 0, 1, 1, 2, 2]
    again = EpochPlan.make(7, 0, 1, False, CPU, shuffle=True, base=base).order
    assert torch.equal(mixed, again)  # still a pure function of seed and epoch


def test_order_changes_what_is_learned(data_dir):
    base = {"train_limit": 2000, "test_limit": 500, "lr": 0.05}
    runs = {name: fit(resolve("mnist-fc", {**base, **over}), data_root=data_dir) for name, over in {
        "shuffled": {}, "stored": {"shuffle": False}, "sorted": {"shuffle": False, "sort_by_class": True},
        "sorted+shuffled": {"sort_by_class": True}}.items()}
    losses = {name: r.history[0].train_loss for name, r in runs.items()}
    assert len(set(losses.values())) == 4
    # An epoch of all 0s, then all 1s, ...: the net forgets the early classes and predicts only a few classes.
    predicted = [sum(1 for j in range(10) if sum(row[j] for row in r.confusion)) for r in runs.values()]
    assert predicted[2] <= 3 < predicted[0]
    assert runs["sorted"].test_accuracy < runs["shuffled"].test_accuracy


def test_steps_replace_epochs(data_dir):
    spec = resolve("mnist-fc", {**SMALL, "batch_size": 100, "steps": 15})
    assert (planned_epochs(spec, 6), total_steps(spec, 6)) == (3, 15)
    result = fit(spec, data_root=data_dir)
    assert result.epochs == 3
    samples = sum(round(m.samples_per_second * m.train_seconds) for m in result.history)
    assert samples == 15 * 100  # two full passes of 600 and half of the third
    assert resolve("mnist-fc", {"epochs": 4}).steps is None


def scheduled(kind: str, steps: int = 10) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make_scheduler(resolve("mnist-fc", {"lr_schedule": kind, "lr": 0.1}), opt, steps)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
    return lrs


def test_lr_schedules():
    assert scheduled("none") == [0.1] * 10
    cosine = scheduled("cosine")
    assert cosine[0] == pytest.approx(0.1) and cosine[-1] < 0.01 and cosine == sorted(cosine, reverse=True)
    onecycle = scheduled("onecycle")
    assert max(onecycle) == pytest.approx(0.1, rel=0.05) and onecycle[0] < 0.01 and onecycle[-1] < 1e-3


@pytest.mark.parametrize("kind", ["cosine", "onecycle"])
def test_a_resumed_schedule_continues_where_it_stopped(data_dir, tmp_path, kind):
    spec = resolve("mnist-cnn", {**SMALL, "epochs": 3, "lr_schedule": kind, "keep_checkpoints": 3})
    straight = fit(spec, data_root=data_dir, out_dir=tmp_path / "s")
    calls = {"n": 0}

    def stop_in_epoch_two() -> bool:  # 10 steps an epoch at 600 samples, batch 64
        calls["n"] += 1
        return calls["n"] > 12

    with pytest.raises(Stopped):
        fit(spec, data_root=data_dir, out_dir=tmp_path / "r", should_stop=stop_in_epoch_two)
    resumed = fit(spec, data_root=data_dir, out_dir=tmp_path / "r", resume=checkpoint.path_for(tmp_path / "r", 1))
    assert metrics(resumed) == metrics(straight)
    state = checkpoint.load(checkpoint.path_for(tmp_path / "r", 3))
    assert state["scheduler"]["last_epoch"] == 30
    with pytest.raises(CheckpointError, match="epochs differ"):  # a schedule spans the planned epochs
        fit(spec.model_copy(update={"epochs": 4}), data_root=data_dir, resume=checkpoint.path_for(tmp_path / "r", 1))


def test_checkpoints_from_before_the_new_fields_resume():
    spec = resolve("mnist-fc")
    old = {k: v for k, v in spec.model_dump().items() if k not in NEW_DEFAULTS}
    check_resume(spec, {"spec": old})  # no error: the missing fields train as their defaults
    with pytest.raises(CheckpointError, match="shuffle differ"):
        check_resume(spec.model_copy(update={"shuffle": False}), {"spec": old})


class _Data:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def batch(self, idx, offsets=None, flips=None):
        return self.x[idx], self.y[idx]


def test_label_smoothing_is_in_the_training_loss_only():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    expected = F.cross_entropy(model(x), y, label_smoothing=0.2).item()
    step = EagerStep(model, torch.optim.SGD(model.parameters(), lr=0.0), _Data(x, y), label_smoothing=0.2)
    assert step(torch.arange(8)).item() == pytest.approx(expected)
    assert expected != pytest.approx(F.cross_entropy(model(x), y).item())


def test_label_smoothing_leaves_the_evaluation_loss_plain(data_dir):
    result = fit(resolve("mnist-fc", {**SMALL, "label_smoothing": 0.3}), data_root=data_dir)
    # smoothed targets keep the training loss far from 0; the test loss is plain cross-entropy, on the same scale
    assert result.history[0].train_loss > 1.0 and result.test_loss > 0


@pytest.mark.parametrize("field, value", [
    ("label_smoothing", 0.5), ("label_smoothing", -0.1), ("lr_schedule", "step"), ("steps", 0), ("shuffle", "maybe"),
    ("sort_by_class", "sometimes"),
])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(SpecError) as exc:
        resolve("mnist-fc", {field: value})
    assert [e["field"] for e in exc.value.errors] == [field]
