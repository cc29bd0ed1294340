"""How a run computes: the autocast dtype of its forward passes, the loss scaler fp16 needs, its memory format.

`precision` (shared.lab.specs): fp32; bf16 (autocast, CPU and CUDA: bfloat16 keeps fp32's exponent range, so no
loss scaling); fp16 (autocast with a GradScaler, CUDA only: float16's range is 6e-8..65504, small gradients
underflow unless the loss is scaled up first); auto (bf16 on CUDA, fp32 on the CPU). Whatever the dtype, the
weights, the optimizer state, the loss and the evaluation's logits stay fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from shared.lab.models import model_facts
from shared.lab.specs import Spec

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def dtype(spec: Spec, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `spec` on `device`; None: plain fp32."""
    name = "bf16" if spec.precision == "auto" and device.type == "cuda" else spec.precision
    return DTYPES.get(name)


def autocast(spec: Spec, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the context every forward pass (training, evaluation, TTA) runs under."""
    half = dtype(spec, device)
    if half is None:
        return contextlib.nullcontext
    # No autocast weight cache: CUDA graph capture cannot use it, and each VGG weight is cast once a step anyway.
    return lambda: torch.autocast(device.type, dtype=half, cache_enabled=False)


def scaler(spec: Spec, device: torch.device) -> torch.amp.GradScaler | None:
    """fp16's loss scaler (dynamic: x2 every 2,000 clean steps, /2 and the step skipped on an inf); else None."""
    return torch.amp.GradScaler(device.type) if dtype(spec, device) is torch.float16 else None


def channels_last(spec: Spec) -> bool:
    """NHWC inputs and weights: `channels_last`, or by default the conv nets (oneDNN's and cuDNN's fast layout;
    on the CPU VGG ~15% faster, LeNet ~7%)."""
    return model_facts(spec.model).convolutional if spec.channels_last is None else spec.channels_last


def memory_format(spec: Spec) -> torch.memory_format:
    return torch.channels_last if channels_last(spec) else torch.contiguous_format
