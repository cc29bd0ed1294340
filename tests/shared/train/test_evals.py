"""Evaluations within epochs: the schedule (plain arithmetic) and what the engine makes of it on real data."""

from __future__ import annotations

import pytest

from shared.lab.specs import resolve
from shared.train import evals
from shared.train.engine import Reporter, fit
from shared.train.evals import EvalPlan, due_within, eval_plan, log_interval, run_samples


def spec(**overrides):
    return resolve("mnist-cnn", overrides)


def test_run_samples_counts_epochs_or_a_step_budget():
    assert run_samples(60_000, 64, 3, None) == 180_000
    # 938 batches an epoch (the last of 32): 1,000 steps = one epoch and 62 batches of 64
    assert run_samples(60_000, 64, 1, 1000) == 60_000 + 62 * 64
    assert run_samples(100, 64, 1, 5) == 2 * 100 + 64  # 2 batches an epoch: two passes and one batch


def test_an_explicit_eval_every_is_kept_and_the_subset_fits_the_test_split():
    assert eval_plan(spec(eval_every=500), 2000, 10_000) == EvalPlan(every=500, subset=1000)
    assert eval_plan(spec(eval_every=500, eval_samples=5000), 2000, 300) == EvalPlan(every=500, subset=300)
    assert eval_plan(spec(eval_every=0), 10**6, 10_000).every == 0


@pytest.mark.parametrize("total, expected", [
    (600_000, EvalPlan(every=30_000, subset=1000)),  # ten MNIST epochs: 20 points on 1,000 images
    (60_000, EvalPlan(every=4000, subset=200)),  # one MNIST epoch: the subset cut to MIN_SUBSET, 15 points
    (20_000, EvalPlan(every=4000, subset=200)),  # fewer points rather than fewer than MIN_SUBSET images
    (1000, EvalPlan(every=0, subset=200)),  # a tiny run: its epoch ends only
])
def test_the_default_plan_keeps_within_the_budget(total, expected):
    plan = eval_plan(spec(), total, 10_000)
    assert plan == expected
    points = total // plan.every if plan.every else 0
    assert points <= evals.POINTS and points * plan.subset <= evals.BUDGET * total


def test_due_within_counts_from_the_epochs_start_and_leaves_its_end_to_the_full_evaluation():
    plan = EvalPlan(every=4000, subset=200)
    assert due_within(plan, 0, 60_000) == list(range(4000, 60_000, 4000))  # 14 inside + the epoch's end = 15
    odd = EvalPlan(every=700, subset=100)
    assert due_within(odd, 0, 1000) == [700]
    assert due_within(odd, 1000, 1000) == [400]  # 1,400 samples in all
    assert due_within(odd, 2000, 1000) == [100, 800]  # 2,100 and 2,800
    assert due_within(EvalPlan(every=0, subset=1), 0, 1000) == []


def test_log_interval_is_about_100_points_unless_given():
    assert log_interval(spec(), 938) == 9
    assert log_interval(spec(), 32) == 1
    assert log_interval(spec(log_every=100), 938) == 100


class Points(Reporter):
    def __init__(self):
        self.points, self.phases = [], []

    def on_eval(self, point):
        self.points.append(point)

    def on_phase(self, phase):
        self.phases.append(phase)


def test_evaluating_within_epochs_leaves_training_unchanged_and_draws_the_points(data_dir, tmp_path):
    base = {"train_limit": 1000, "test_limit": 400, "epochs": 2, "device": "cpu"}
    quiet, busy = Points(), Points()
    plain = fit(spec(**base, eval_every=0), data_root=data_dir, reporter=quiet)
    evaluated = fit(spec(**base, eval_every=300, eval_samples=100), data_root=data_dir, reporter=busy,
                    out_dir=tmp_path)
    train = [(m.train_loss, m.test_loss, m.test_accuracy) for m in plain.history]
    assert train == [(m.train_loss, m.test_loss, m.test_accuracy) for m in evaluated.history]
    assert [(p.samples_seen, p.full) for p in quiet.points] == [(1000, True), (2000, True)]
    # after the step that reaches 300, 600, 900 samples (steps of 64): 320, 640, 960; in epoch 2, 1,200, 1,500 and
    # 1,800 are its samples 200, 500, 800: reached at 256, 512, 832
    seen = [(p.samples_seen, p.full, p.test_samples) for p in busy.points]
    assert seen == [(320, False, 100), (640, False, 100), (960, False, 100), (1000, True, 400),
                    (1256, False, 100), (1512, False, 100), (1832, False, 100), (2000, True, 400)]
    assert [p.epoch for p in busy.points][:4] == [0.32, 0.64, 0.96, 1.0]
    assert [p.step for p in busy.points][:4] == [5, 10, 15, 16]  # 1,000 / 64: 16 steps an epoch
    assert busy.points[-1].test_accuracy == evaluated.test_accuracy
    assert busy.phases == ["evaluating", "saving"] * 2 and quiet.phases == ["evaluating"] * 2
    assert evaluated.eval_seconds > 0 and evaluated.history[0].train_seconds < evaluated.history[0].seconds


def test_large_chunks_give_the_lab_batch_numbers_to_float_rounding(data_dir):
    """The chunk the device gets against the lab's test_batch_size (8 here): same predictions, loss to rounding."""
    import torch

    from shared.train.distributed import World
    from shared.train.engine import setup

    run = setup(spec(test_limit=600, train_limit=100, device="cpu"), World(), torch.device("cpu"), data_dir)
    assert run.eval_batch >= 600  # the whole (limited) test split in one chunk on the CPU
    small = evals.evaluate(run.model, run.test_data, 8)
    large = evals.evaluate(run.model, run.test_data, run.eval_batch)
    assert torch.equal(small.predictions, large.predictions) and small.accuracy == large.accuracy
    assert abs(small.loss - large.loss) <= 1e-6 * small.loss
    a = fit(spec(train_limit=500, test_limit=600, device="cpu", test_batch_size=8), data_root=data_dir)
    b = fit(spec(train_limit=500, test_limit=600, device="cpu", test_batch_size=1000), data_root=data_dir)
    assert a.test_accuracy == b.test_accuracy and abs(a.test_loss - b.test_loss) <= 1e-6 * a.test_loss


def test_the_test_batch_is_honoured_only_where_the_batch_changes_a_number():
    import torch

    from shared.train.evals import batch_dependent, eval_chunk

    cpu = torch.device("cpu")
    lenet = resolve("cifar10-lenet")
    assert lenet.test_batch_size == 8 and eval_chunk(lenet, cpu, (3, 32, 32), 10) > 1000
    assert eval_chunk(lenet, torch.device("cuda"), (3, 32, 32), 10) > eval_chunk(lenet, cpu, (3, 32, 32), 10)
    assert not batch_dependent(torch.nn.BatchNorm2d(4)) and batch_dependent(torch.nn.BatchNorm2d(4, track_running_stats=False))
