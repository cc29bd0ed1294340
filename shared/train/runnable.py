"""Submit-time checks: will the spec's model run on its dataset, and does the job fit its queue (ranks, memory).

The API, the store and `cnnlab sweep` ask them before anything is queued or trained; torch loads only when asked."""

from __future__ import annotations

import warnings
from pathlib import Path

from shared.lab.settings import settings
from shared.lab.specs import Spec, SpecError

MAX_PARAMS = 500_000_000  # far beyond the lab's nets (VGG: 9.2M); guards workers against absurd model_args


def check_runnable(spec: Spec, data_root=None) -> None:
    """Refuse specs the model cannot run on the dataset (shape, class count, model_args), before queueing."""
    import torch  # here, not at import: the store imports this module and loads without torch

    from shared.train.data import DataError, describe  # (torch)
    from shared.train.nets import build_model  # (torch)

    root = Path(data_root or settings().data_dir)
    try:
        shape, classes = describe(spec.dataset, root)
    except DataError as exc:  # where it was looked for, as the server's setting, never the server's path
        message = str(exc).replace(str(root.resolve()), "CNNLAB_DATA_DIR").replace(str(root), "CNNLAB_DATA_DIR")
        raise SpecError([{"field": "dataset", "message": message}]) from None
    if spec.mean is not None and len(spec.mean) not in (1, shape[0]):
        raise SpecError([{"field": "mean", "message": f"{spec.dataset} has {shape[0]} channels, "
                                                      f"mean and std give {len(spec.mean)}"}])
    try:
        with torch.device("meta"), warnings.catch_warnings():  # shapes only: no memory, whatever the sizes
            warnings.simplefilter("ignore")
            sizes = [p.numel() for p in build_model(spec.model, shape, len(classes), **spec.model_args).parameters()]
    except (ValueError, TypeError, RuntimeError) as exc:
        raise SpecError([{"field": "model_args", "message": str(exc)}]) from None
    if 0 in sizes:
        raise SpecError([{"field": "model_args", "message": "a layer would have no weights (a size of 0)"}])
    if sum(sizes) > MAX_PARAMS:
        raise SpecError([{"field": "model_args", "message": f"{sum(sizes):,} parameters; at most {MAX_PARAMS:,}"}])
    check_resources(spec, shape, len(classes))


def queue_for(spec: Spec) -> str:
    """The queue a spec's job is routed to, whose limits check_resources applies."""
    return "gpu" if spec.needs_gpu else "cpu"


def check_resources(spec: Spec, shape: tuple[int, int, int], num_classes: int) -> None:
    """Refuse what the target queue cannot hold: more ranks than it offers, more memory than it has."""
    from shared.train.memory import estimate  # torch, like check_runnable's imports

    queue, env = queue_for(spec), settings()
    ranks = env.queue_max_world_size.get(queue, 1)
    if spec.world_size > ranks:
        raise SpecError([{"field": "world_size", "message": f"the {queue} queue runs at most {ranks} ranks "
                                                            f"(CNNLAB_QUEUE_MAX_WORLD_SIZE), got {spec.world_size}"}])
    need, limit = estimate(spec, shape, num_classes), env.queue_memory_gb.get(queue, float("inf"))
    if spec.memory_gb is not None and spec.memory_gb > limit:
        raise SpecError([{"field": "memory_gb", "message": f"the {queue} queue's jobs may use at most {limit:g} GB "
                                                           f"(CNNLAB_QUEUE_MEMORY_GB), got {spec.memory_gb:g}"}])
    limit = spec.memory_gb or limit
    if need.total_gb > limit:
        raise SpecError([{"field": "memory_gb" if spec.memory_gb else "spec", "message": (
            f"needs about {need.total_gb:,.1f} GB (the trainer itself {need.base_bytes / 2**30:,.1f} GB, "
            f"weights, gradients and optimizer state "
            f"{need.weights_bytes / 2**30:,.1f} GB, one batch's activations {need.activations_bytes / 2**30:,.1f} GB, "
            f"data {need.data_bytes / 2**30:,.1f} GB); the job may use {limit:g} GB "
            f"(memory_gb, else the {queue} queue's CNNLAB_QUEUE_MEMORY_GB): lower batch_size or the model's size")}])
