"""The parts of airbench94's net (Jordan 2024, arXiv 2404.00498), each switchable for the ablation: identity
(dirac) initialized 3x3 convs, BatchNorm with a fixed scale, conv-pool-BN-GELU groups. `shared.train.nets`
registers the net built from them as `fastnet`."""

from __future__ import annotations

import torch
import torch.nn as nn

WIDTHS = (64, 256, 256)  # output channels of the three groups
BN_MOMENTUM = 0.4  # PyTorch's momentum (weight of the new batch): airbench's 0.6 running-average decay
BN_EPS = 1e-12
LOGIT_SCALE = 1 / 9  # the head's output multiplier (a temperature)


def dirac_(conv: nn.Conv2d) -> nn.Conv2d:
    """Initialize the first C_in output channels of a padded 3x3 `conv` as the identity on its input channels (an
    implicit residual: the net starts close to passing its input through); the rest keep their random init."""
    with torch.no_grad():
        w = conv.weight
        nn.init.dirac_(w[:w.shape[1]])
    return conv


def batchnorm(channels: int, fixed_scale: bool) -> nn.BatchNorm2d:
    """BatchNorm whose scale stays 1 when `fixed_scale` (only the bias trains: the next conv rescales anyway)."""
    bn = nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)
    bn.weight.requires_grad_(not fixed_scale)
    return bn


def conv_group(c_in: int, c_out: int, dirac: bool, fixed_scale: bool) -> nn.Sequential:
    """conv3x3 - maxpool2 - BN - GELU - conv3x3 - BN - GELU (the convs without bias: BN's follows)."""
    convs = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)]
    if dirac:
        convs = [dirac_(c) for c in convs]
    return nn.Sequential(convs[0], nn.MaxPool2d(2), batchnorm(c_out, fixed_scale), nn.GELU(),
                         convs[1], batchnorm(c_out, fixed_scale), nn.GELU())


class Scale(nn.Module):
    """Multiplies by a constant."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor
