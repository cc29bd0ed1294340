"""`cnnlab verdict`: the study rules (shared.lab.verdicts) on a TA's own numbers, one JSON line out.

Imports no torch and no database: it is the stable entry point of the rules.
"""

from __future__ import annotations

import argparse
import json

from shared.lab.verdicts import assess

FIELDS = ("verdict", "diff", "ci", "p_value", "paired", "mde_points", "seeds_needed", "margin", "alpha", "ci_level",
          "hedges_g", "n_a", "n_b", "unpaired")


def _values(raw: str) -> list[float]:
    try:
        return [float(v) for v in raw.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {raw!r}") from None


def add_parser(sub) -> None:
    p = sub.add_parser("verdict", help="a claim's verdict from two samples (one value per seed), as one JSON line")
    p.add_argument("--claim", choices=["higher", "equal"], required=True,
                   help="higher: a is above b; equal: a and b within ±margin")
    p.add_argument("--margin", type=float, required=True, metavar="POINTS", help="in points (after --scale)")
    p.add_argument("--paired", action="store_true", help="a[i] and b[i] come from the same seed")
    p.add_argument("--a", type=_values, required=True, metavar="V,V,...", help="cell a's values, e.g. 0.91,0.92")
    p.add_argument("--b", type=_values, required=True, metavar="V,V,...")
    p.add_argument("--scale", type=float, default=100.0, help="values x scale = points (default 100: fractions)")
    p.add_argument("--look", type=int, default=1, help="which pooled look this is (1: the first run)")


def run(args: argparse.Namespace) -> int:
    """Print the verdict; a bad input (paired samples of unequal length, margin <= 0) is one line on stderr, exit 2."""
    if args.margin <= 0 or args.look < 1:
        raise SystemExit("cnnlab verdict: --margin must be > 0 and --look >= 1")
    a, b = [v * args.scale for v in args.a], [v * args.scale for v in args.b]
    try:
        result = assess(args.claim, args.margin, a, b, paired=args.paired, look=args.look)
    except ValueError as exc:
        raise SystemExit(f"cnnlab verdict: {exc}") from None
    print(json.dumps(result.model_dump(mode="json", include=set(FIELDS))))
    return 0
