"""The model catalog: each of the lab's nets by name with the facts other code needs without torch.

`shared.train.nets` registers each net's class against its name here and fails at import where the class and
its entry disagree (constructor defaults, summary); building a net goes through `shared.train.nets.build_model`.
Installed packages add nets through the `cnnlab.models` entry point group, each entry point naming a torch-free
declaration of the same facts (docs/models.md); only packages listed in `CNNLAB_MODEL_PACKAGES` are loaded.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.lab.settings import settings

ENTRY_POINT_GROUP = "cnnlab.models"
PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFacts:
    """One net of the catalog, as far as a spec, a page or a recipe needs to know it."""

    name: str
    convolutional: bool  # has a `features` trunk: NHWC pays off, the pages draw its filters and maps
    min_size: int  # smallest input height/width in pixels
    summary: str  # the class docstring's first line
    arg_defaults: Mapping[str, Any]  # the constructor's model_args and their defaults: {} and these build one net
    builder: str | None = None  # "module:Class" of a net from an installed package; None for the built-in nets
    package: str | None = None  # the distribution that provides it (normalized name)

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


class NetDeclaration(BaseModel):
    """What a `cnnlab.models` entry point's target declares (a dict in a module that imports no torch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    net: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:Class of the nn.Module")
    convolutional: bool
    min_size: int = Field(ge=1, le=4096)
    summary: str = Field(min_length=1, max_length=300, description="the class docstring's first line")
    arg_defaults: dict[str, Any] = Field(default_factory=dict)


def normalized(package: str) -> str:
    """A distribution's name as PEP 503 compares them (Example_Nets == example-nets)."""
    return re.sub(r"[-_.]+", "-", package).lower()


def _offered() -> list[tuple[str, str, Any]]:
    """(model name, normalized package, entry point) of every installed `cnnlab.models` entry point; loads none."""
    return [(ep.name, normalized(ep.dist.name) if ep.dist else "?", ep) for ep in entry_points(group=ENTRY_POINT_GROUP)]


@lru_cache(maxsize=8)
def _plugins(allowed: frozenset[str], path: tuple[str, ...]) -> Mapping[str, ModelFacts]:
    """The allowed packages' nets, their declarations loaded and checked (`path`: sys.path, the cache's key)."""
    out: dict[str, ModelFacts] = {}
    for name, package, ep in _offered():
        if package not in allowed:
            continue
        try:
            if not PLUGIN_NAME.fullmatch(name) or name in CATALOG or name in out:
                raise ValueError(f"the name must be new and match {PLUGIN_NAME.pattern}")
            d = NetDeclaration.model_validate(ep.load())
        except (ValidationError, ValueError, ImportError, AttributeError) as exc:
            log.warning("skipping model %r of package %s: %s", name, package, exc)
            continue
        out[name] = ModelFacts(name, d.convolutional, d.min_size, d.summary, MappingProxyType(dict(d.arg_defaults)),
                               builder=d.net, package=package)
    return MappingProxyType(out)


def catalog() -> Mapping[str, ModelFacts]:
    """The built-in nets and those of the packages CNNLAB_MODEL_PACKAGES allows."""
    allowed = frozenset(map(normalized, settings().model_packages))
    return {**CATALOG, **_plugins(allowed, tuple(sys.path))} if allowed else CATALOG


def model_names() -> list[str]:
    return sorted(catalog())


def model_facts(name: str) -> ModelFacts:
    known = catalog()
    if name not in known:
        raise ValueError(unknown_model(name))
    return known[name]


def unknown_model(name: str) -> str:
    """Why `name` is no model: unknown, or offered by an installed package the admin has not allowed."""
    offered = sorted({p for n, p, _ in _offered() if n == name})
    if offered:
        return (f"model {name!r} comes from package {', '.join(offered)}, which CNNLAB_MODEL_PACKAGES does not allow "
                f"(or whose declaration is broken); choose one of {', '.join(model_names())}")
    return f"unknown model {name!r}; choose one of {', '.join(model_names())}"
