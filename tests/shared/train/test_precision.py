"""precision and channels_last: autocast in every forward pass (training, evaluation, TTA, packs), the loss in fp32,
fp16's loss scaler (its CPU twin runs the same code), checkpoints that resume (the refusal of fp16 off CUDA: test_specs)."""

from __future__ import annotations

import pytest
import torch

from shared.lab.specs import resolve
from shared.train import checkpoint, engine, packs, precision
from shared.train.batches import DevicePipeline
from shared.train.data import Split
from shared.train.engine import Reporter
from shared.train.steps import EagerStep, make_optimizer

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
SMALL = {"train_limit": 600, "test_limit": 200, "device": "cpu"}
FAST_TINY = {"dataset": "cifar10-jpeg", "train_limit": 256, "test_limit": 100, "epochs": 5, "batch_size": 64,
             "test_batch_size": 50, "model_args.widths": [8, 16, 16], "device": "cpu"}


def test_precision_and_memory_format_resolve_per_device():
    spec = resolve("cifar10-fast")
    assert precision.dtype(spec, CUDA) is torch.bfloat16 and precision.dtype(spec, CPU) is None  # auto
    assert precision.channels_last(spec) and not precision.channels_last(resolve("mnist-fc"))  # conv nets only
    assert not precision.channels_last(resolve("cifar10-fast", {"channels_last": False}))
    assert precision.dtype(resolve("mnist-fc", {"precision": "bf16"}), CPU) is torch.bfloat16
    assert precision.dtype(resolve("mnist-fc", {"precision": "fp32"}), CUDA) is None
    fp16 = resolve("mnist-fc", {"precision": "fp16", "device": "cuda"})
    assert precision.dtype(fp16, CUDA) is torch.float16 and precision.scaler(spec, CUDA) is None
    assert isinstance(precision.scaler(fp16, CPU), torch.amp.GradScaler)  # CPU: a CUDA one warns without a GPU
    assert packs.unstackable(fp16) == ["precision"]  # one loss scale cannot serve a stack of seeds


def pipeline(n: int = 32) -> DevicePipeline:
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8),
                  torch.randint(0, 10, (n,), generator=g), [str(i) for i in range(10)], {"name": "random"})
    return DevicePipeline(split, CPU, [0.5] * 3, [0.25] * 3, channels_last=True)


def conv_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 10)).to(
        memory_format=torch.channels_last)


def test_the_forward_runs_under_autocast_and_the_loss_is_fp32():
    spec = resolve("mnist-fc", {"precision": "bf16"})
    net = conv_net()
    seen = []
    net[0].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    step = EagerStep(net, make_optimizer(spec, net), pipeline(), precision.autocast(spec, CPU))
    loss = step(torch.arange(16))
    assert seen == [torch.bfloat16] and loss.dtype is torch.float32 and torch.isfinite(loss)


def test_fp16_steps_are_loss_scaled_and_an_overflow_is_skipped():
    """The GradScaler path of EagerStep, on the CPU's fp16 autocast (the service runs it on CUDA only)."""
    spec = resolve("mnist-fc", {"lr": 0.1})
    nets = [conv_net(), conv_net()]
    plain = EagerStep(nets[0], make_optimizer(spec, nets[0]), pipeline())
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    half = EagerStep(nets[1], make_optimizer(spec, nets[1]), pipeline(),
                     lambda: torch.autocast("cpu", dtype=torch.float16, cache_enabled=False), scaler=scaler)
    idx = torch.arange(16)
    plain(idx), half(idx)
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.allclose(a, b, atol=2e-3)  # the same update as fp32, to fp16's precision
    assert scaler.get_scale() == 2.0**10
    before = [p.detach().clone() for p in nets[1].parameters()]
    half.data.images[:16] = 0
    half.data.scale = torch.full_like(half.data.scale, float("inf"))  # inputs inf: every gradient overflows
    half(idx)
    assert all(torch.equal(p, q) for p, q in zip(before, nets[1].parameters(), strict=True))  # the step skipped
    assert scaler.get_scale() == 2.0**9


class KeepRun(Reporter):
    run = None

    def on_done(self, run):
        self.run = run


def test_bf16_on_the_cpu_trains_close_to_fp32(data_dir):
    runs = {p: engine.fit(resolve("mnist-cnn", {**SMALL, "train_limit": 2000, "lr": 0.05, "epochs": 2, "precision": p}),
                          data_root=data_dir)
            for p in ("fp32", "bf16")}
    assert runs["fp32"].test_loss != runs["bf16"].test_loss  # bf16 did compute
    assert abs(runs["fp32"].test_accuracy - runs["bf16"].test_accuracy) <= 0.03
    assert runs["bf16"].history[-1].test_accuracy == runs["bf16"].test_accuracy > 0.5


def test_bf16_packs_train_each_seed_close_to_its_lone_run(data_dir):
    spec = resolve("mnist-fc", {**SMALL, "precision": "bf16"})
    together = packs.fit_seeds(spec, [0, 1], data_root=data_dir, strategy="vmap")
    for seed, result in together.items():
        lone = engine.fit(spec.model_copy(update={"seed": seed}), data_root=data_dir)
        assert abs(result.test_accuracy - lone.test_accuracy) <= 0.03 and result.spec.precision == "bf16"


@pytest.mark.parametrize("half", ["bf16", "fp16"])
def test_the_fast_recipe_in_half_precision_evaluates_with_tta_and_resumes(data_dir, tmp_path, half):
    """fp16 on the CPU goes past the spec's refusal (model_copy does not validate) to run the scaler's code path:
    its state is checkpointed and resumed with the rest."""
    spec = resolve("cifar10-fast", FAST_TINY).model_copy(update={"precision": half})
    kept = KeepRun()
    whole = engine.fit(spec, data_root=data_dir, out_dir=tmp_path, reporter=kept)
    assert (kept.run.step.scaler is not None) == (half == "fp16")
    assert whole.tta.views == 6 and whole.test_accuracy == whole.tta.accuracy
    assert abs(whole.tta.plain_accuracy - whole.history[-1].test_accuracy) < 1e-12
    if half == "fp16":
        assert checkpoint.load(tmp_path / "epoch-004.pt")["scaler"]["scale"] > 0
    resumed = engine.fit(spec, data_root=data_dir, resume=tmp_path / "epoch-004.pt")
    assert (resumed.test_accuracy, resumed.tta.plain_accuracy) == (whole.test_accuracy, whole.tta.plain_accuracy)
    assert resumed.history[-1].test_loss == whole.history[-1].test_loss
