"""The model catalog: each of the lab's nets by name with the facts other code needs without torch.

`shared.train.nets` registers each net's class against its name here and fails at import where the class and
its entry disagree (constructor defaults, summary); building a net goes through `shared.train.nets.build_model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class ModelFacts:
    """One net of the catalog, as far as a spec, a page or a recipe needs to know it."""

    name: str
    convolutional: bool  # has a `features` trunk: NHWC pays off, the pages draw its filters and maps
    min_size: int  # smallest input height/width in pixels
    summary: str  # the class docstring's first line
    arg_defaults: Mapping[str, Any]  # the constructor's model_args and their defaults: {} and these build one net

    @property
    def first_conv(self) -> str | None:
        """The submodule path of the first convolution (the learned filters the pages show)."""
        return "features.0" if self.convolutional else None


def _facts(name: str, convolutional: bool, min_size: int, summary: str, **arg_defaults: Any) -> ModelFacts:
    return ModelFacts(name, convolutional, min_size, summary, MappingProxyType(arg_defaults))


CATALOG: dict[str, ModelFacts] = {f.name: f for f in (
    _facts("fc2", False, 1, "The lab's FC2Layer: Linear-ReLU-Linear-ReLU-Linear (784-8-8-10: 6,442 params).",
           n_hidden=8),
    _facts("cnn", True, 16, "The lab's CNN: (conv5x5-ReLU-maxpool2) x2, fc 50, fc (6 maps on MNIST: 6,422 params).",
           n_feature=6, n_hidden=50, head="fc", dropout=0.0),
    _facts("lenet", True, 16,
           "The lab's CIFAR-10 `Net`: conv 6, conv 16 (5x5, ReLU, maxpool), fc 120-84-classes (62,006 params).",
           activation="relu", pool="max", dropout=0.0, conv="5x5", residual=False, blocks=0),
    _facts("vgg", True, 32, "The lab's VGG: 3x3 conv-BN-ReLU stages and max-pools, then Linear(512, classes) on "
           "32x32 (9,231,114 params).", cfg=None),
    _facts("fastnet", True, 16, "airbench94's net: 2x2 whitening conv, three conv-pool-BN-GELU groups "
           "(64/256/256), linear x 1/9 (1,972,792 params).",
           widths=None, whiten=True, dirac=True, fixed_bn_scale=True),
)}


def model_names() -> list[str]:
    return sorted(CATALOG)


def model_facts(name: str) -> ModelFacts:
    if name not in CATALOG:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    return CATALOG[name]
