"""Seeds trained together (shared.train.packs.fit_seeds, vmap) against the same seeds one after another.

CPU (default): for each preset, `--rounds` alternating rounds of
  together   -- fit_seeds(strategy="vmap"): the seeds stacked, one vectorized step for all of them;
  sequential -- fit_seeds(strategy="sequential"): engine.fit for one seed after another, in this same process;
each side's figure is its training time (the pack's train_seconds; the sum of the seeds' train_seconds),
evaluation and setup excluded, and its wall time. Every round keeps its figures (the machine is shared and
noisy: the spread says how much). Each seed's test accuracy and losses together vs alone (the sequential side
is engine.fit, i.e. the seed alone) give the largest difference.

GPU (`--device cuda --seeds 0-63`): together for all seeds against ONE seed alone (target: the pack's
train_seconds <= 2x one seed's), and accuracy together vs alone for the first `--compare` seeds.

    python -m bench.seeds                                  # mnist-fc mnist-cnn, seeds 0-7, train_limit 10000
    python -m bench.seeds mnist-cnn --train-limit 0        # the full 60,000
    python -m bench.seeds mnist-cnn --device cuda --seeds 0-63 --train-limit 0 --out bench/results/seeds-gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

from bench.handout_loop import DEFAULT_DATA
from bench.throughput import load
from shared.lab.seeds import parse_seeds
from shared.lab.specs import resolve
from shared.train import engine
from shared.train.batches import EpochPlan
from shared.train.distributed import World, pick_device
from shared.train.engine import fit
from shared.train.environment import environment
from shared.train.packs import Pack, fit_seeds, pick_strategy

RESULTS = Path(__file__).resolve().parent / "results"


def timed(spec, seeds, data_dir, strategy) -> tuple[dict, float, float]:
    """Results, training seconds of the whole pack, and wall seconds."""
    t0 = time.perf_counter()
    results = fit_seeds(spec, seeds, data_root=data_dir, strategy=strategy)
    wall = time.perf_counter() - t0
    bad = {s: r for s, r in results.items() if isinstance(r, BaseException)}
    if bad:
        raise RuntimeError(f"seeds failed: {bad}")
    train = results[seeds[0]].train_seconds if strategy == "vmap" else sum(r.train_seconds for r in results.values())
    return results, train, wall


def closeness(together: dict, alone: dict) -> dict:
    """Largest differences, over the seeds compared, between a seed together and the seed alone."""
    seeds = [s for s in alone if s in together]
    acc = [abs(together[s].test_accuracy - alone[s].test_accuracy) for s in seeds]
    loss = [abs(together[s].test_loss - alone[s].test_loss) / alone[s].test_loss for s in seeds]
    train = [abs(together[s].history[-1].train_loss - alone[s].history[-1].train_loss) for s in seeds]
    return {"seeds": seeds, "max_accuracy_difference_points": 100 * max(acc), "identical_accuracy": sum(a == 0 for a in acc),
            "max_test_loss_relative_difference": max(loss), "max_train_loss_difference": max(train),
            "accuracy_together": {s: together[s].test_accuracy for s in seeds},
            "accuracy_alone": {s: alone[s].test_accuracy for s in seeds}}


def spread(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "rounds": xs}


def bench_cpu(preset: str, spec, seeds: list[int], data_dir: Path, rounds: int) -> dict:
    together_t, seq_t, together_w, seq_w = [], [], [], []
    together = alone = None
    for r in range(rounds):
        order = ("vmap", "sequential") if r % 2 == 0 else ("sequential", "vmap")  # alternate who goes first
        for strategy in order:
            results, train, wall = timed(spec, seeds, data_dir, strategy)
            if strategy == "vmap":
                together, together_t, together_w = results, together_t + [train], together_w + [wall]
            else:
                alone, seq_t, seq_w = results, seq_t + [train], seq_w + [wall]
        print(f"{preset} round {r + 1}: together {together_t[-1]:.2f} s, sequential {seq_t[-1]:.2f} s", flush=True)
    ratios = [t / s for t, s in zip(together_t, seq_t, strict=True)]
    return {"preset": preset, "seeds": seeds, "train_samples": together[seeds[0]].data.train_samples,
            "auto_strategy": pick_strategy(spec, pick_device(spec.device)),
            "together_train_seconds": spread(together_t), "sequential_train_seconds": spread(seq_t),
            "together_wall_seconds": spread(together_w), "sequential_wall_seconds": spread(seq_w),
            "together_over_sequential": spread(ratios), "steps": step_timing(spec, seeds, data_dir),
            "closeness": closeness(together, alone)}


def step_timing(spec, seeds: list[int], data_dir: Path, blocks: int = 15, steps: int = 20) -> dict:
    """Per-step cost, in alternating short blocks (less exposed to a shared machine's drifting load than whole
    runs): `steps` stacked steps for all seeds vs `steps` steps of each seed's own engine step."""
    device = torch.device(spec.device)
    pack = Pack.setup(spec, seeds, device, data_dir, {}, {}, {})
    runs = [engine.setup(spec.model_copy(update={"seed": s}), World(), device, data_dir) for s in seeds]
    n, b = len(pack.step.data), spec.batch_size
    order = torch.stack([EpochPlan.make(n, s, 1, False, device).order for s in seeds])  # (S, N)
    at = lambda i: slice(i % (n // b) * b, i % (n // b) * b + b)  # noqa: E731 - the i-th full batch

    def stacked():
        for i in range(steps):
            pack.step(order[:, at(i)].reshape(-1))

    def one_by_one():
        for k, run in enumerate(runs):
            for i in range(steps):
                run.step(order[k, at(i)])

    ratios, t_stacked, t_alone = [], [], []
    for blk in range(blocks + 2):  # the first two blocks warm up
        sides = (stacked, one_by_one) if blk % 2 == 0 else (one_by_one, stacked)
        took = {}
        for side in sides:
            t0 = time.perf_counter()
            side()
            took[side] = (time.perf_counter() - t0) * 1e3 / steps  # ms per step (of all seeds)
        if blk >= 2:
            t_stacked.append(took[stacked])
            t_alone.append(took[one_by_one])
            ratios.append(took[stacked] / took[one_by_one])
    return {"ms_per_step_together": spread(t_stacked), "ms_per_step_one_by_one": spread(t_alone),
            "together_over_one_by_one": spread(ratios)}


def bench_gpu(preset: str, spec, seeds: list[int], data_dir: Path, compare: int) -> dict:
    fit(spec.model_copy(update={"seed": seeds[0], "train_limit": 1024}), data_root=data_dir)  # CUDA context, caches
    one = fit(spec.model_copy(update={"seed": seeds[0]}), data_root=data_dir)
    together, train, wall = timed(spec, seeds, data_dir, "vmap")
    alone = {s: fit(spec.model_copy(update={"seed": s}), data_root=data_dir) for s in seeds[:compare]}
    alone[seeds[0]] = alone.get(seeds[0], one)
    return {"preset": preset, "seeds": seeds, "train_samples": one.data.train_samples,
            "one_seed_train_seconds": one.train_seconds, "together_train_seconds": train,
            "together_wall_seconds": wall, "together_over_one_seed": train / one.train_seconds,
            "target_met": train <= 2 * one.train_seconds, "closeness": closeness(together, alone)}


def machine() -> dict:
    """Where and on which code the numbers were measured."""
    env = environment(torch.device("cpu"), World())
    return {"platform": platform.platform(), "cpu": env.device, "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": env.python,
            "commit": env.commit, "tree_dirty": tree_dirty(), "load_average": [round(v, 2) for v in os.getloadavg()]}


def tree_dirty() -> bool | None:
    """Whether the working tree had uncommitted changes (the numbers belong to the commit only if not)."""
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                text=True, cwd=Path(__file__).resolve().parents[1], timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(status.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("presets", nargs="*", default=["mnist-fc", "mnist-cnn"])
    ap.add_argument("--seeds", default="0-7")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--train-limit", type=int, default=10000, help="0: the whole training set")
    ap.add_argument("--test-limit", type=int, default=0, help="0: the whole test set")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compare", type=int, default=8, help="GPU: seeds also trained alone for accuracy")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = parse_seeds(args.seeds)
    out = {"machine": machine(), "device": args.device, "load_before": load(),
           "method": __doc__.split("\n\n")[1], "presets": []}
    for preset in args.presets:
        spec = resolve(preset, {"device": args.device, "train_limit": args.train_limit or None,
                                "test_limit": args.test_limit or None})
        fit(spec.model_copy(update={"train_limit": 640}), data_root=args.data_dir)  # warm: imports, data cache
        row = bench_gpu(preset, spec, seeds, args.data_dir, args.compare) if args.device == "cuda" \
            else bench_cpu(preset, spec, seeds, args.data_dir, args.rounds)
        out["presets"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "closeness"}), flush=True)
        print(json.dumps(row["closeness"]), flush=True)
        out["load_after"] = load()
        path = args.out or RESULTS / ("seeds.json" if args.device == "cpu" else "seeds-gpu.json")
        path.write_text(json.dumps(out, indent=1) + "\n")  # after every preset: a cut-short run keeps what it has
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
