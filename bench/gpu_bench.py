"""On a GPU: the cifar10-vgg preset for 10 epochs with the engine, the seed-style loop for one epoch, a DDP smoke.

    python bench/gpu_bench.py --data-dir /tmp/data --out bench/results/gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.handout_loop import handout_throughput  # noqa: E402
from shared.lab.specs import resolve  # noqa: E402
from shared.train.data import load_split  # noqa: E402
from shared.train.engine import Reporter, fit  # noqa: E402


class Epochs(Reporter):
    def __init__(self):
        self.rows = []

    def on_epoch(self, m):
        m = m.model_dump()
        self.rows.append(m)
        print(f"epoch {m['epoch']}: acc {m['test_accuracy']:.4f} train {m['train_seconds']:.2f}s "
              f"({m['samples_per_second']:,.0f}/s) epoch {m['seconds']:.2f}s", flush=True)


def vgg_run(data_dir: Path, dataset: str, epochs: int, seed: int = 0) -> dict:
    t = time.perf_counter()
    load_split(dataset, True, data_dir), load_split(dataset, False, data_dir)  # decode + cache outside the timing
    decode = time.perf_counter() - t
    spec = resolve("cifar10-vgg", {"dataset": dataset, "epochs": epochs, "device": "cuda", "seed": seed})
    rep = Epochs()
    t = time.perf_counter()
    result = fit(spec, data_root=data_dir, reporter=rep)
    wall = time.perf_counter() - t
    return {"spec": spec.model_dump(), "wall_seconds": wall, "train_seconds": result.train_seconds,
            "epoch_seconds": sum(m["seconds"] for m in rep.rows), "decode_seconds_first_time": decode,
            "test_accuracy": result.test_accuracy, "samples_per_second": result.samples_per_second,
            "lab_reported_accuracy": 0.8287, "target_seconds_10_epochs_h100": 20, "epochs": rep.rows,
            "data": result.data.model_dump(include={"name", "source", "fingerprint"}),
            "environment": result.environment.model_dump()}


VARIANT = """
import json, os, sys, torch
sys.path.insert(0, '.')
os.environ['CNNLAB_CUDA_GRAPHS'] = '{graphs}'
from shared.train import engine
from shared.lab.specs import resolve
engine.CUDNN_BENCHMARK = {benchmark}
spec = resolve('cifar10-vgg', {{'dataset': '{dataset}', 'epochs': {epochs}, 'device': 'cuda'}})
r = engine.fit(spec, data_root='{data_dir}')
print(json.dumps([round(m.train_seconds, 3) for m in r.history] + [r.test_accuracy]))
"""


def variants(data_dir: Path, dataset: str, epochs: int = 3) -> list[dict]:
    """Each setting in a fresh process (cuDNN's autotuning and lazy CUDA init are per process)."""
    out = []
    for graphs in (False, True):
        for benchmark in (True, False):
            code = VARIANT.format(graphs=graphs, benchmark=benchmark, dataset=dataset, epochs=epochs, data_dir=data_dir)
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
            row = {"cuda_graphs": graphs, "cudnn_benchmark": benchmark}
            if proc.returncode == 0:
                *secs, acc = json.loads(proc.stdout.strip().splitlines()[-1])
                row |= {"epoch_train_seconds": secs, "test_accuracy": acc}
            else:
                row["error"] = proc.stderr[-1500:]
            print(row, flush=True)
            out.append(row)
    return out


def ddp_smoke(data_dir: Path, dataset: str) -> dict:
    gpus = torch.cuda.device_count()
    device = "cuda" if gpus >= 2 else "cpu"  # NCCL needs one GPU per rank; one GPU: gloo ranks on the CPU
    cmd = [sys.executable, "-m", "shared.cli", "train", "cifar10-lenet", "--data-dir", str(data_dir),
           "--out", "/tmp/ddp-smoke", "--set", f"dataset={dataset}", "--set", "world_size=2", "--set", f"device={device}",
           "--set", "epochs=1", "--set", "train_limit=4000", "--set", "test_limit=1000"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out = {"command": " ".join(cmd[2:]), "returncode": proc.returncode, "seconds": time.perf_counter() - t}
    if proc.returncode == 0:
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        out |= {"test_accuracy": r["test_accuracy"], "environment": r["environment"]}
    else:
        out["stderr_tail"] = proc.stderr[-2000:]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CNNLAB_DATA_DIR", "data")))
    ap.add_argument("--dataset", default="cifar10-jpeg")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("bench/results/gpu.json"))
    ap.add_argument("--more-seeds", type=int, default=2, help="extra VGG runs with seeds 1..N for the accuracy spread")
    ap.add_argument("--variants", action="store_true", help="first time CUDA graphs / cuDNN autotuning on and off")
    args = ap.parse_args()
    report = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    load_split(args.dataset, True, args.data_dir), load_split(args.dataset, False, args.data_dir)
    if args.variants:
        report["variants_3_epochs"] = variants(args.data_dir, args.dataset)
    report["engine_vgg"] = vgg_run(args.data_dir, args.dataset, args.epochs)
    if args.more_seeds:  # one run's accuracy moves by about a point: show the spread over seeds
        accs = [report["engine_vgg"]["test_accuracy"]] + [
            vgg_run(args.data_dir, args.dataset, args.epochs, seed)["test_accuracy"] for seed in range(1, 1 + args.more_seeds)]
        report["vgg_accuracy_over_seeds"] = {"seeds": list(range(len(accs))), "test_accuracy": accs,
                                             "mean": sum(accs) / len(accs), "min": min(accs), "max": max(accs)}
        print("VGG accuracy over seeds:", accs, flush=True)
    seed = handout_throughput("cifar10-vgg", args.data_dir, steps=None, device="cuda")
    engine_sps = report["engine_vgg"]["samples_per_second"]
    report["seed_vgg_one_epoch"] = seed | {"ratio_engine_over_seed": engine_sps / seed["samples_per_second"]}
    print(f"seed-style: {seed['samples_per_second']:,.0f}/s; engine {engine_sps:,.0f}/s", flush=True)
    report["ddp_smoke"] = ddp_smoke(args.data_dir, args.dataset)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("gpu", "torch")} | {
        "vgg_10_epoch_train_seconds": report["engine_vgg"]["train_seconds"],
        "vgg_wall_seconds": report["engine_vgg"]["wall_seconds"],
        "vgg_accuracy": report["engine_vgg"]["test_accuracy"],
        "vgg_accuracy_over_seeds": report.get("vgg_accuracy_over_seeds", {}).get("test_accuracy"),
        "seed_ratio": report["seed_vgg_one_epoch"]["ratio_engine_over_seed"],
        "ddp_rc": report["ddp_smoke"]["returncode"]}))


if __name__ == "__main__":
    main()
