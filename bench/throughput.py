"""Training throughput: the seed-style loop (bench/handout_loop.py) against the engine, same machine, same run.

For each preset both sides train the same network with the same batch size and optimizer settings for the same
number of timed steps, warmup excluded:
  seed   -- torchvision dataset + transforms + DataLoader and the lab's loop; the first WARMUP batches untimed;
  engine -- shared.train.engine.fit, as `cnnlab train` runs it, on the first `steps` batches of the training set for
            two epochs; epoch 1 is the warmup, epoch 2 is timed (its own train_seconds, evaluation excluded).
The two sides alternate for `--rounds` rounds and the best round of each counts (other processes on a small
machine only ever slow a round down); every round's figure is kept in the JSON as well.

With --eval-overhead the two sides are instead the engine with its default evaluations within epochs (about 20
points a run on a test subset, shared/train/evals.py) and the engine with `eval_every: 0` (epoch ends only), one
epoch of `steps` batches and 2,000 test images: the timed figure is the wall time of the epoch's training loop from
its second step, evaluations within it included (the end-of-epoch evaluation, the same on both sides, left out);
the ratio is with / without, per round (the sides alternate which goes first). On a busy machine two runs differ
by far more than 5%, so each run with evaluations also times its own evaluations (from the step before each to its
point): loop / (loop - evaluations) is the slowdown measured within one run, both parts under the same load.

    python -m bench.throughput                       # mnist-fc mnist-cnn cifar10-lenet cifar10-vgg
    python -m bench.throughput mnist-cnn --steps 300 --rounds 5
    python -m bench.throughput mnist-cnn --steps 300 --rounds 4 --eval-overhead   # -> results/eval_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.handout_loop import DEFAULT_DATA, handout_throughput, seed_loader_throughput
from shared.lab.specs import resolve
from shared.train.distributed import World
from shared.train.engine import Reporter, fit, make_optimizer
from shared.train.environment import environment
from shared.train.nets import build_model
from shared.train.precision import memory_format

RESULTS = Path(__file__).resolve().parent / "results"
# Engine/seed ratios the engine is held to on a 2-core CPU.
TARGETS = {"mnist-fc": 10.0, "mnist-fc-permuted": 10.0, "mnist-cnn": 3.0, "mnist-cnn-permuted": 3.0,
           "cifar10-lenet": 4.0, "cifar10-vgg": 1.1}
# Timed steps per preset: most of an epoch where cheap, 40 batches for VGG (a few hundred samples/s on CPU).
STEPS = {"mnist-fc": 900, "mnist-fc-permuted": 900, "mnist-cnn": 600, "mnist-cnn-permuted": 600,
         "cifar10-lenet": 500, "cifar10-vgg": 40}
WARMUP = {"cifar10-vgg": 3}  # seed-side untimed batches (default 5); VGG's first batches are slow but few
ROUNDS = {"cifar10-vgg": 2}  # default 3
CIFAR_DATASET = "cifar10-jpeg"  # the original release is not on this machine; the seed loop reads the same JPEGs


def engine_spec(preset: str, steps: int, device: str = "cpu", test_limit: int = 256):
    """The preset as the engine runs it, cut to `steps` batches an epoch, for two epochs."""
    spec = resolve(preset)
    overrides = {"device": device, "epochs": 2, "train_limit": steps * spec.batch_size, "test_limit": test_limit}
    if spec.dataset == "cifar10":
        overrides["dataset"] = CIFAR_DATASET
    return resolve(preset, overrides)


def engine_throughput(preset: str, data_dir: Path, steps: int, device: str = "cpu") -> dict:
    """shared.train.engine.fit on the first `steps` batches, two epochs; the second epoch's training is timed.

    Decoding (cached) and the move to the device are paid once per run, outside the timed epoch, as in a real run."""
    result = fit(engine_spec(preset, steps, device), data_root=data_dir)
    timed = result.history[-1]
    return {"samples": round(timed.samples_per_second * timed.train_seconds), "steps": steps,
            "seconds": timed.train_seconds, "samples_per_second": timed.samples_per_second,
            "train_loss": timed.train_loss}


def model_throughput(preset: str, steps: int, device: str = "cpu", warmup: int = 3) -> dict:
    """Forward + backward + optimizer step alone, on one fixed batch, set up as fit() sets it up (memory format,
    optimizer): the compute ceiling that neither loop can pass."""
    spec = engine_spec(preset, steps, device)
    dev = torch.device(device)
    shape = (1, 28, 28) if spec.dataset == "mnist" else (3, 32, 32)
    fmt = memory_format(spec)  # as engine.setup
    torch.manual_seed(0)
    model = build_model(spec.model, shape, 10, **spec.model_args).to(dev, memory_format=fmt).train()
    opt = make_optimizer(spec, model.parameters())
    x = torch.randn(spec.batch_size, *shape, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (spec.batch_size,), device=dev)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    loss.item()
    seconds = time.perf_counter() - start
    return {"samples_per_second": steps * spec.batch_size / seconds, "steps": steps}


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    env = environment(torch.device("cpu"), World())
    try:  # engine code measured = the commit plus these uncommitted changes
        import subprocess
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "shared", "worker", "api"], capture_output=True, text=True,
                               cwd=Path(__file__).resolve().parents[1], timeout=10).stdout.split("\n")
        dirty = [line[3:] for line in dirty if line.strip()]
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {"shared_uncommitted": dirty, "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "commit": env.commit, "load_average": [round(v, 2) for v in os.getloadavg()]}


def wait_quiet(limit: float = 90.0, idle: float = 0.85) -> bool:
    """Wait (up to `limit` s) until the CPUs were at least `idle` idle over one second: on a small shared machine
    other processes (a test suite, say) would otherwise land in one side's timing. False if it never got quiet."""
    def snapshot():
        try:
            return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except (OSError, ValueError):
            return None
    end = time.monotonic() + limit
    while time.monotonic() < end:
        a = snapshot()
        time.sleep(1.0)
        b = snapshot()
        if a is None or b is None:
            return True
        d = [y - x for x, y in zip(a, b, strict=False)]
        if d[3] / max(sum(d), 1) >= idle:
            return True
    return False


def load() -> list[float]:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def measure(preset: str, data_dir: Path, steps: int | None, rounds: int | None, device: str) -> dict:
    n = steps or STEPS.get(preset, 300)
    warm = WARMUP.get(preset, 5)
    rounds = rounds or ROUNDS.get(preset, 3)
    seed_runs, engine_runs, noisy = [], [], 0
    for r in range(rounds):
        print(f"{preset} round {r + 1}/{rounds}: seed-style loop, {n} steps ...", file=sys.stderr, flush=True)
        noisy += not wait_quiet()
        seed = handout_throughput(preset, data_dir, steps=n, warmup=warm, device=device)
        seed_runs.append(seed["samples_per_second"])
        print(f"  seed   {seed['samples_per_second']:>10,.0f} samples/s", file=sys.stderr, flush=True)
        noisy += not wait_quiet()
        eng = engine_throughput(preset, data_dir, n, device)
        engine_runs.append(eng["samples_per_second"])
        print(f"  engine {eng['samples_per_second']:>10,.0f} samples/s", file=sys.stderr, flush=True)
    # Ceilings, for what bounds each side: the lab's DataLoader alone, and the model's step alone.
    wait_quiet()
    loader_only = seed_loader_throughput(preset, data_dir, steps=min(n, 200), warmup=warm)["samples_per_second"]
    wait_quiet()
    model_only = max(model_throughput(preset, min(n, 300), device)["samples_per_second"] for _ in range(2))
    best_seed, best_engine = max(seed_runs), max(engine_runs)
    ratio = best_engine / best_seed
    target = TARGETS.get(preset)
    spec = engine_spec(preset, n, device)
    print(f"  ratio {ratio:.2f} (target {target})", file=sys.stderr, flush=True)
    return {
        "seed_samples_per_second": round(best_seed, 1),
        "engine_samples_per_second": round(best_engine, 1),
        "ratio": round(ratio, 2), "target_ratio": target,
        "meets_target": None if target is None else ratio >= target,
        "median_ratio": round(statistics.median(engine_runs) / statistics.median(seed_runs), 2),
        "seed_loader_only_samples_per_second": round(loader_only, 1),
        "model_step_only_samples_per_second": round(model_only, 1),
        "engine_share_in_model_step": round(best_engine / model_only, 3),
        "steps": n, "batch_size": spec.batch_size, "seed_warmup_steps": warm, "engine_warmup": "1 epoch of the same steps",
        "rounds": rounds, "rounds_started_busy": noisy, "seed_rounds": [round(v, 1) for v in seed_runs],
        "engine_rounds": [round(v, 1) for v in engine_runs],
        "seed_num_workers": seed["num_workers"],
        "seed_data": "torchvision MNIST (IDX)" if spec.dataset == "mnist" else f"ImageFolder {CIFAR_DATASET}/train",
        "engine_data": spec.dataset, "device": device,
    }


class LoopTimer(Reporter):
    """Times an epoch's training loop: from its first step to its end-of-epoch evaluation."""

    def __init__(self, epoch: int):
        self.epoch, self.start, self.end, self.points = epoch, None, None, 0
        self.stepped, self.evaluating = 0.0, 0.0  # the last step's end; seconds spent evaluating within the loop

    def on_step(self, epoch, step, steps, loss):
        self.stepped = time.perf_counter()
        if epoch == self.epoch and step == 1:
            self.start = self.stepped

    def on_phase(self, phase):
        if phase == "evaluating" and self.start is not None and self.end is None:
            self.end = time.perf_counter()

    def on_eval(self, point):
        if not point.full and self.start is not None:
            self.points += 1
            self.evaluating += time.perf_counter() - self.stepped


def loop_seconds(preset: str, data_dir: Path, steps: int, device: str,
                 eval_every: int | None) -> tuple[float, int, float]:
    """One epoch's training loop (steps 2..end, evaluations within it included) in seconds, the points it made, and
    the seconds they took."""
    spec = engine_spec(preset, steps, device).model_copy(update={"epochs": 1, "test_limit": 2000,
                                                                 "eval_every": eval_every})
    timer = LoopTimer(epoch=1)
    fit(spec, data_root=data_dir, reporter=timer)
    return timer.end - timer.start, timer.points, timer.evaluating


def eval_overhead(preset: str, data_dir: Path, steps: int | None, rounds: int | None, device: str) -> dict:
    """The default evaluations within epochs against none, alternating; ratio of the loops' wall times."""
    n, rounds = steps or STEPS.get(preset, 300), rounds or 4
    with_eval, without, within, points, busy = [], [], [], 0, 0
    for r in range(rounds):
        for side, every in (("without", 0), ("with", None)) if r % 2 == 0 else (("with", None), ("without", 0)):
            busy += not wait_quiet(limit=5.0)
            seconds, made, evaluating = loop_seconds(preset, data_dir, n, device, every)
            (with_eval if side == "with" else without).append(seconds)
            if side == "with":
                within.append(seconds / (seconds - evaluating))
            points = max(points, made)
            print(f"{preset} round {r + 1}/{rounds} {side:>7} eval: {seconds:.3f} s ({made} points, "
                  f"{evaluating:.3f} s)", file=sys.stderr, flush=True)
    ratios = [w / o for w, o in zip(with_eval, without, strict=True)]
    return {"steps": n, "batch_size": engine_spec(preset, n, device).batch_size, "rounds": rounds,
            "points_within_the_epoch": points, "with_eval_seconds": [round(v, 3) for v in with_eval],
            "without_eval_seconds": [round(v, 3) for v in without], "round_ratios": [round(v, 4) for v in ratios],
            "ratio_best": round(min(with_eval) / min(without), 4), "ratio_median": round(statistics.median(ratios), 4),
            "ratio_spread": [round(min(ratios), 4), round(max(ratios), 4)], "rounds_started_busy": busy,
            "within_run_ratios": [round(v, 4) for v in within], "within_run_ratio_median": round(statistics.median(within), 4),
            "target": "ratio <= 1.05", "device": device}


def run(presets: list[str], data_dir: Path, steps: int | None, rounds: int | None, device: str,
        overhead: bool = False) -> dict:
    method = __doc__.split("\n\n")[2 if overhead else 1]
    out = {"machine": machine(), "data_dir": str(data_dir), "load_before": load(), "method": method, "presets": {}}
    for preset in presets:
        out["presets"][preset] = (eval_overhead if overhead else measure)(preset, data_dir, steps, rounds, device)
    out["load_after"] = load()
    out["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("presets", nargs="*", default=["mnist-fc", "mnist-cnn", "cifar10-lenet", "cifar10-vgg"])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--steps", type=int, help="timed steps for every preset (default: per preset)")
    ap.add_argument("--rounds", type=int, help="alternating seed/engine rounds (default: per preset)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--eval-overhead", action="store_true", help="time evaluations within epochs against none")
    ap.add_argument("--out", type=Path, help="default results/throughput.json (results/eval_overhead.json)")
    args = ap.parse_args()
    args.out = args.out or RESULTS / ("eval_overhead.json" if args.eval_overhead else "throughput.json")
    result = run(args.presets, args.data_dir.resolve(), args.steps, args.rounds, args.device, args.eval_overhead)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    keys = ("ratio_best", "ratio_median", "ratio_spread", "within_run_ratios") if args.eval_overhead else \
        ("seed_samples_per_second", "engine_samples_per_second", "ratio", "target_ratio", "meets_target")
    print(json.dumps({p: {k: r[k] for k in keys} for p, r in result["presets"].items()}, indent=1))


if __name__ == "__main__":
    main()
