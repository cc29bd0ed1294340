#!/usr/bin/env bash
# Engine throughput of an older revision against this tree's, alternating rounds on the same machine:
#   bench/ab_throughput.sh 12d1367 [rounds]   -> bench/results/ab_throughput.json
# Each side runs `python -m bench.throughput mnist-fc mnist-cnn cifar10-lenet --rounds 1` in its own tree.
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev=${1:?usage: bench/ab_throughput.sh BASE_REV [ROUNDS]}
rounds=${2:-3}
work=$(mktemp -d)
git worktree add -q --detach "$work/base" "$base_rev"
trap 'git worktree remove --force "$work/base"; rm -rf "$work"' EXIT
data=${CNNLAB_TEST_DATA:-$(cd .. && pwd)/shared/data}
for i in $(seq "$rounds"); do
  for side in base new; do
    dir=$PWD; [ "$side" = base ] && dir=$work/base
    (cd "$dir" && "$OLDPWD/.venv/bin/python" -m bench.throughput mnist-fc mnist-cnn cifar10-lenet --rounds 1 \
       --data-dir "$data" --out "$work/$side-$i.json" >/dev/null)
  done
done
.venv/bin/python - "$work" "$base_rev" "$rounds" <<'PY'
import json, statistics, subprocess, sys
work, base_rev, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = {s: [json.load(open(f"{work}/{s}-{i}.json")) for i in range(1, rounds + 1)] for s in ("base", "new")}
presets = {}
for p in runs["new"][0]["presets"]:
    b = [r["presets"][p]["engine_samples_per_second"] for r in runs["base"]]
    n = [r["presets"][p]["engine_samples_per_second"] for r in runs["new"]]
    presets[p] = {"base_samples_per_second": b, "new_samples_per_second": n, "best_ratio": max(n) / max(b),
                  "median_ratio": statistics.median(n) / statistics.median(b),
                  "round_ratios": [y / x for x, y in zip(b, n, strict=True)]}
git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()
out = {"bench": "ab_throughput", "base": git("rev-parse", base_rev), "commit": git("rev-parse", "HEAD"),
       "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
       "machine": runs["new"][0]["machine"], "rounds": rounds, "presets": presets,
       "method": "engine samples/s of bench.throughput's timed epoch, base and new trees alternating"}
open("bench/results/ab_throughput.json", "w").write(json.dumps(out, indent=2) + "\n")
print(json.dumps({p: {k: round(v[k], 3) for k in ("best_ratio", "median_ratio")} for p, v in presets.items()}))
PY
