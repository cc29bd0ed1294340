"""Which jobs may train together as one pack (shared.train.packs): specs equal but for the fields the stacked step
carries per member. A sweep's cells that differ only in these (a learning-rate sweep, say) pack together."""

from __future__ import annotations

from typing import Any

# seed: each member's own weights, data order and draws; lr, weight_decay, momentum: a per-member optimizer step
# (SGD and Adam are elementwise); label_smoothing: a per-member loss.
PER_MEMBER = ("seed", "lr", "weight_decay", "momentum", "label_smoothing")


def pack_key(spec: dict[str, Any]) -> dict[str, Any]:
    """What a pack's members share: the spec (a stored dict) without its per-member fields."""
    return {k: v for k, v in spec.items() if k not in PER_MEMBER}
