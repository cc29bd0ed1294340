"""Seeds trained together: each seed as if alone, members that end alone, checkpoints that resume alone."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.io import write_png

from shared.lab.results import FitResult
from shared.lab.specs import resolve
from shared.train import checkpoint, engine, packs
from shared.train.distributed import World
from shared.train.engine import Reporter, Stopped, fit

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

SMALL = {"train_limit": 1000, "test_limit": 500, "device": "cpu"}


def fc_spec(**kw):
    return resolve("mnist-fc", {**SMALL, **kw})


def alone(spec, seed, data_root, **kw) -> FitResult:
    return fit(spec.model_copy(update={"seed": seed}), data_root=data_root, **kw)


def assert_close_runs(a: FitResult, b: FitResult, accuracy: float = 0.003, loss: float = 1e-4):
    """Metrics of two runs of one seed, epoch by epoch: accuracy within `accuracy`, losses within `loss` (relative)."""
    assert len(a.history) == len(b.history)
    for x, y in zip(a.history, b.history, strict=True):
        assert x.epoch == y.epoch
        assert abs(x.test_accuracy - y.test_accuracy) <= accuracy
        assert math.isclose(x.train_loss, y.train_loss, rel_tol=loss)
        assert math.isclose(x.test_loss, y.test_loss, rel_tol=loss)
    assert a.test_accuracy == a.history[-1].test_accuracy and a.spec == b.spec


def tiny_imagefolder(root, n_train=24, n_test=8):
    """A 32x32 RGB ImageFolder of random pixels, two classes: enough for lenet and vgg to run."""
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for cls in ("a", "b"):
            d = root / "tiny" / split / cls
            d.mkdir(parents=True)
            for k in range(n):
                write_png(torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8), str(d / f"{k}.png"))
    return root


def test_each_seed_matches_the_seed_alone(data_dir):
    spec = fc_spec(epochs=2)
    together = packs.fit_seeds(spec, [0, 1, 5], data_root=data_dir, strategy="vmap")
    assert list(together) == [0, 1, 5]
    for s, result in together.items():
        assert isinstance(result, FitResult) and result.spec.seed == s
        assert_close_runs(result, alone(spec, s, data_dir))
    # different seeds did train differently, and the pack's training time is every member's
    assert together[0].test_loss != together[1].test_loss
    assert together[0].train_seconds == together[5].train_seconds > 0


def test_adam_augmentation_and_convs_match_alone(tmp_path):
    """lenet with Adam and crop/flip, forced through vmap (auto would run CPU convs one by one)."""
    root = tiny_imagefolder(tmp_path / "data")
    spec = resolve("cifar10-lenet", {"dataset": "tiny", "batch_size": 8, "test_batch_size": 16, "augment": True,
                                     "epochs": 2, "device": "cpu"})
    together = packs.fit_seeds(spec, [3, 4], data_root=root, strategy="vmap")
    for s in (3, 4):
        assert_close_runs(together[s], alone(spec, s, root), loss=1e-3)


def test_initial_weights_are_the_seeds_own(data_dir):
    spec = resolve("mnist-cnn", SMALL)
    pack = packs.Pack.setup([packs.seeded(spec, s) for s in (2, 7)], torch.device("cpu"), data_dir,
                            [None] * 2, [None] * 2, [None] * 2)
    for i, s in enumerate((2, 7)):
        own = engine.setup(spec.model_copy(update={"seed": s}), World(), torch.device("cpu"), data_dir)
        for name, p in own.model.named_parameters():
            assert torch.equal(pack.stack.params[name][i], p)


class Counting(Reporter):
    """Counts steps; stops (via should_stop) or fails (raises) after `after` steps when told to."""

    def __init__(self, after: int | None = None, fail: bool = False):
        self.steps, self.after, self.fail, self.epochs = 0, after, fail, []

    def on_step(self, epoch, step, steps, loss):
        self.steps += 1
        if self.fail and self.steps == self.after:
            raise RuntimeError("reporter broke")

    def on_epoch(self, metrics):
        self.epochs.append(metrics)

    def stop(self) -> bool:
        return self.after is not None and not self.fail and self.steps >= self.after


def test_a_cancel_or_a_failure_ends_that_member_only(data_dir):
    spec = fc_spec(epochs=2)
    baseline = packs.fit_seeds(spec, [0, 1, 2], data_root=data_dir, strategy="vmap")
    cancel, broken, fine = Counting(after=5), Counting(after=20, fail=True), Counting()
    reporters = {0: cancel, 1: broken, 2: fine}
    out = packs.fit_seeds(spec, [0, 1, 2], data_root=data_dir, strategy="vmap", reporters=reporters,
                          should_stop={0: cancel.stop})
    assert isinstance(out[0], Stopped) and "epoch 1 step 5" in str(out[0])
    assert isinstance(out[1], RuntimeError) and "reporter broke" in str(out[1])
    assert cancel.steps == 5 and broken.steps == 20 and not cancel.epochs and len(broken.epochs) == 1
    assert len(fine.epochs) == 2 and fine.steps == 2 * 16  # 1000 samples in batches of 64: 16 steps an epoch
    assert_close_runs(out[2], baseline[2], accuracy=0.0, loss=1e-6)


def test_a_nan_ends_that_member_only(data_dir):
    spec = fc_spec(epochs=2, log_every=4)
    baseline = packs.fit_seeds(spec, [0, 1, 2], data_root=data_dir, strategy="vmap")
    pack = packs.Pack.setup([packs.seeded(spec, s) for s in (0, 1, 2)], torch.device("cpu"), data_dir, [None] * 3, [None] * 3,
                            [None] * 3)
    with torch.no_grad():
        pack.stack.params["classifier.1.weight"][1, 0, 0] = float("nan")  # seed 1 only
    out = pack.train()
    assert isinstance(out[1], packs.Diverged) and "seed 1" in str(out[1]) and "nan" in str(out[1])
    for s in (0, 2):
        assert_close_runs(out[s], baseline[s], accuracy=0.0, loss=1e-6)


def test_a_packed_checkpoint_resumes_alone(data_dir, tmp_path):
    spec = fc_spec(epochs=2)
    dirs = {s: tmp_path / f"seed-{s}" for s in (0, 1)}
    together = packs.fit_seeds(spec, [0, 1], data_root=data_dir, out_dirs=dirs, strategy="vmap")
    state = checkpoint.load(checkpoint.path_for(dirs[1], 1))
    solo_dir = tmp_path / "solo"
    alone(spec.model_copy(update={"epochs": 1}), 1, data_dir, out_dir=solo_dir)
    solo = checkpoint.load(checkpoint.path_for(solo_dir, 1))
    assert state.keys() == solo.keys() and {**state["spec"], "epochs": 1} == solo["spec"] and state["epoch"] == 1
    assert torch.equal(state["rng"]["torch"], solo["rng"]["torch"])
    for name, w in solo["model"].items():
        assert torch.allclose(state["model"][name], w, atol=1e-6)
    for k, v in solo["optimizer"]["state"].items():
        assert torch.allclose(state["optimizer"]["state"][k]["momentum_buffer"], v["momentum_buffer"], atol=1e-6)
    resumed = alone(spec, 1, data_dir, out_dir=dirs[1], resume=checkpoint.path_for(dirs[1], 1))
    assert_close_runs(resumed, together[1])


def test_a_packed_vgg_seed_matches_the_seed_alone_running_statistics_included(tmp_path):
    root = tiny_imagefolder(tmp_path / "data", n_train=16, n_test=8)
    # SGD: Adam turns the rounding noise of a conv bias's gradient before BatchNorm (zero in exact arithmetic,
    # ~1e-9 here) into lr-sized steps, which the running mean then carries (test losses ~1e-4 apart either way).
    spec = resolve("cifar10-vgg", {"dataset": "tiny", "batch_size": 8, "epochs": 2, "device": "cpu",
                                   "optimizer": "sgd", "lr": 0.01, "momentum": 0.5,
                                   "model_args": {"cfg": [8, "M", 8, "M"]}})
    models = {}

    class Keep(Reporter):
        def __init__(self, key):
            self.key = key

        def on_done(self, run):
            models[self.key] = {k: v.clone() for k, v in run.model.state_dict().items()}

    together = packs.fit_seeds(spec, [0, 1], data_root=root, strategy="vmap",
                               reporters={s: Keep(("pack", s)) for s in (0, 1)})
    for s in (0, 1):
        assert_close_runs(together[s], alone(spec, s, root, reporter=Keep(("alone", s))), accuracy=0.0, loss=1e-4)
        mean = "features.1.running_mean"  # the first BatchNorm's: each member's own statistics
        assert torch.allclose(models[("pack", s)][mean], models[("alone", s)][mean], atol=1e-5)
        assert models[("pack", s)]["features.1.num_batches_tracked"] == 8  # 2 epochs of 4 batches (32 images)
    assert not torch.allclose(models[("pack", 0)][mean], models[("pack", 1)][mean])


def test_batchnorm_nets_fall_back_to_one_run_per_seed(tmp_path):
    root = tiny_imagefolder(tmp_path / "data", n_train=8, n_test=4)
    spec = resolve("cifar10-vgg", {"dataset": "tiny", "batch_size": 8, "test_batch_size": 8, "epochs": 1,
                                   "device": "cpu", "model_args": {"cfg": [8, "M", 8, "M"]}})
    assert packs.pick_strategy(spec, torch.device("cpu")) == "sequential"
    assert packs.pick_strategy(fc_spec(), torch.device("cuda")) == "vmap"
    assert packs.pick_strategy(fc_spec(), torch.device("cpu")) == "vmap"
    cnn = resolve("mnist-cnn", SMALL)
    assert packs.pick_strategy(cnn, torch.device("cpu")) == "sequential"  # measured: grouped convs lose on CPU
    assert packs.pick_strategy(cnn, torch.device("cuda")) == "vmap"
    out = packs.fit_seeds(spec, [0, 1], data_root=root)
    for s in (0, 1):
        assert_close_runs(out[s], alone(spec, s, root), accuracy=0.0, loss=0.0)


def test_bad_input_raises_before_training(data_dir, tmp_path):
    with pytest.raises(ValueError, match="repeat"):
        packs.fit_seeds(fc_spec(), [1, 1], data_root=data_dir)
    with pytest.raises(ValueError, match="no seeds"):
        packs.fit_seeds(fc_spec(), [], data_root=data_dir)
    for strategy in ("vmap", "sequential"):
        with pytest.raises(Exception, match="MNIST"):
            packs.fit_seeds(fc_spec(), [0, 1], data_root=tmp_path / "nothing", strategy=strategy)


@pytest.mark.parametrize("override", [{"lr_schedule": "cosine"}, {"shuffle": False},
                                      {"sort_by_class": True}, {"steps": 20}])
def test_fields_the_stack_does_not_implement_train_one_seed_at_a_time(override):
    spec = resolve("mnist-fc", override)
    assert packs.pick_strategy(spec, torch.device("cpu")) == "sequential"
    with pytest.raises(ValueError, match=next(iter(override))):
        packs.fit_seeds(spec, [0, 1], strategy="vmap")


@pytest.mark.parametrize("preset, overrides, members", [
    ("mnist-fc", {}, [{"lr": 0.05}, {"lr": 0.01, "weight_decay": 1e-3}, {"momentum": 0.9, "seed": 3},
                      {"label_smoothing": 0.1}]),
    ("cifar10-lenet", {"dataset": "tiny", "batch_size": 8, "augment": True},
     [{"lr": 3e-3}, {"lr": 1e-3, "weight_decay": 1e-2}, {"label_smoothing": 0.2, "seed": 1}]),
])
def test_members_with_their_own_lr_weight_decay_momentum_and_smoothing_match_their_lone_runs(
        preset, overrides, members, data_dir, tmp_path):
    root = tiny_imagefolder(tmp_path / "data") if preset.startswith("cifar") else data_dir
    specs = [resolve(preset, {**SMALL, **overrides, "epochs": 2, **m}) for m in members]
    dirs = [tmp_path / f"m{i}" for i in range(len(specs))]
    together = packs.fit_pack(specs, data_root=root, out_dirs=dirs, strategy="vmap")
    for spec, result, out in zip(specs, together, dirs, strict=True):
        assert result.spec == spec
        assert_close_runs(result, fit(spec, data_root=root), accuracy=0.003, loss=1e-4 if preset == "mnist-fc" else 1e-3)
        group = checkpoint.load(checkpoint.path_for(out, 2))["optimizer"]["param_groups"][0]
        assert (group["lr"], group["weight_decay"]) == (spec.lr, spec.weight_decay)  # its own, for a lone resume
    assert len({r.test_loss for r in together}) == len(specs)  # the settings did train differently


def test_packed_members_draw_their_curves_together(data_dir):
    spec = fc_spec(eval_every=320, eval_samples=200)
    points = {(k, s): [] for k in ("pack", "alone") for s in (0, 1)}

    class Points(Reporter):
        def __init__(self, key):
            self.key = key

        def on_eval(self, point):
            points[self.key].append(point)

    together = packs.fit_seeds(spec, [0, 1], data_root=data_dir, strategy="vmap",
                               reporters={s: Points(("pack", s)) for s in (0, 1)})
    for s in (0, 1):
        alone(spec, s, data_dir, reporter=Points(("alone", s)))
        packed, lone = points[("pack", s)], points[("alone", s)]
        assert [(p.samples_seen, p.full, p.test_samples) for p in packed] == \
            [(p.samples_seen, p.full, p.test_samples) for p in lone] and len(lone) == 4  # 3 on 200 images, the end
        for a, b in zip(packed, lone, strict=True):
            assert abs(a.test_accuracy - b.test_accuracy) <= 0.005 and math.isclose(a.test_loss, b.test_loss, rel_tol=1e-4)
        assert together[s].eval_seconds > 0


def test_members_that_differ_beyond_the_per_member_fields_do_not_pack(data_dir):
    with pytest.raises(ValueError, match="batch_size differ"):
        packs.fit_pack([fc_spec(), fc_spec(batch_size=32)], data_root=data_dir)
    with pytest.raises(ValueError, match="repeat"):
        packs.fit_pack([fc_spec(lr=0.1), fc_spec(lr=0.1)], data_root=data_dir)
