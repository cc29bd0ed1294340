"""The lab's networks, each registered against its entry of the model catalog (shared.lab.models):
`build_model(name, in_shape, num_classes, **args)`.

Every net returns logits (the loss is `cross_entropy`, which is the lab's log_softmax + nll_loss in one).
Every convolutional net keeps its convolutional trunk in `features` (an nn.Sequential whose first layer is a
conv) and its head in `classifier`, as in timm's and torchvision's VGG.
"""

from __future__ import annotations

import importlib
import inspect

import torch
import torch.nn as nn

from shared.lab.models import model_facts
from shared.train import fastnet
from shared.train.whitening import Whitening

Shape = tuple[int, int, int]  # (channels, height, width) of one input image


_CLASSES: dict[str, type[nn.Module]] = {}  # catalog name -> the class that builds it


def register(name: str):
    """Class decorator: the class builds the catalog's model `name` (shared.lab.models); raises at import where
    the name is not in the catalog, already has a class, or the class disagrees with its facts."""

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        _check(name, cls)
        if name in _CLASSES:
            raise TypeError(f"{name!r} is registered twice: {_CLASSES[name].__name__} and {cls.__name__}")
        _CLASSES[name] = cls
        return cls

    return wrap


def _check(name: str, cls: type[nn.Module]) -> None:
    """The class agrees with the catalog's facts of `name`: its docstring's first line and constructor defaults."""
    facts = model_facts(name)  # ValueError off the catalog
    summary = (cls.__doc__ or "").strip().partition("\n")[0]
    params = list(inspect.signature(cls).parameters.values())[2:]  # after in_shape, num_classes
    defaults = {p.name: p.default for p in params}
    if (summary, defaults) != (facts.summary, dict(facts.arg_defaults)):
        raise TypeError(f"{cls.__name__} disagrees with the catalog's {name!r}: summary {summary!r} and "
                        f"defaults {defaults}, the catalog {facts.summary!r} and {dict(facts.arg_defaults)}")


def _net_class(name: str) -> type[nn.Module]:
    """The class that builds `name`: a built-in's, or an allowed package's (imported and checked on first use)."""
    facts = model_facts(name)
    if name in _CLASSES or facts.builder is None:
        if name not in _CLASSES:
            raise RuntimeError(f"{name!r} is in the model catalog but no class is registered for it")
        return _CLASSES[name]
    module, _, attr = facts.builder.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise RuntimeError(f"{name!r} (package {facts.package}): cannot load {facts.builder}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"{name!r} (package {facts.package}): {facts.builder} is not an nn.Module class")
    _check(name, cls)
    _CLASSES[name] = cls
    return cls


def build_model(name: str, in_shape: Shape = (1, 28, 28), num_classes: int = 10, **args) -> nn.Module:
    """Build a catalog model for inputs of `in_shape` (C, H, W) and `num_classes` outputs."""
    facts = model_facts(name)
    _, h, w = in_shape
    if min(h, w) < facts.min_size:
        raise ValueError(f"{name} needs images of at least {facts.min_size}x{facts.min_size}, got {h}x{w}")
    cls = _net_class(name)
    try:
        model = cls(tuple(in_shape), num_classes, **args)
    except TypeError as exc:  # a model_args key the constructor does not take
        raise ValueError(f"bad model_args for {name!r}: {exc}") from None
    if isinstance(getattr(model, "features", None), nn.Sequential) != facts.convolutional:
        raise TypeError(f"{name}: the catalog says convolutional={facts.convolutional}, the net's `features` disagree")
    return model


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _after_two_conv5_pools(size: int) -> int:
    """Each 5x5 conv trims 4 pixels and each 2x2 pool halves: 28 -> 24 -> 12 -> 8 -> 4; 32 -> 5."""
    return ((size - 4) // 2 - 4) // 2


@register("fc2")
class FC2Layer(nn.Module):
    """The lab's FC2Layer: Linear-ReLU-Linear-ReLU-Linear (784-8-8-10: 6,442 params)."""

    def __init__(self, in_shape: Shape, num_classes: int, n_hidden: int = 8):
        super().__init__()
        c, h, w = in_shape
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, C, H, W) -> (B, C*H*W), the lab's x.view(-1, input_size)
            nn.Linear(c * h * w, n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
POOLS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def _choice(arg: str, value, options) -> None:
    """A clear ValueError (a 4xx at the API) for a model_args value outside its choices."""
    if value not in options:
        raise ValueError(f"{arg} must be one of {', '.join(map(repr, options))}, got {value!r}")


def _dropout_layers(p: float) -> list[nn.Module]:
    """Dropout(p) where asked for, nothing at 0: the default nets keep their layer indices and state_dict keys."""
    if not (isinstance(p, (int, float)) and 0 <= p < 1):
        raise ValueError(f"dropout must be a probability in [0, 1), got {p!r}")
    return [nn.Dropout(p)] if p > 0 else []


@register("cnn")
class CNN(nn.Module):
    """The lab's CNN: (conv5x5-ReLU-maxpool2) x2, fc 50, fc (6 maps on MNIST: 6,422 params).

    head="conv1x1": the classifier is a 1x1 convolution to the classes + global average pooling
    (6 maps on MNIST: 1,062 in the trunk + 70 in the head = 1,132 params; 16 maps: 7,002); head="gap_fc":
    global average pooling then one fc to the classes (the same pooling and parameters as conv1x1).
    dropout > 0 drops the fc head's hidden units, or the trunk's maps before the 1x1 head.
    """

    def __init__(self, in_shape: Shape, num_classes: int, n_feature: int = 6, n_hidden: int = 50,
                 head: str = "fc", dropout: float = 0.0):
        super().__init__()
        _choice("head", head, ("fc", "conv1x1", "gap_fc"))
        drop = _dropout_layers(dropout)
        c, h, w = in_shape
        self.features = nn.Sequential(
            nn.Conv2d(c, n_feature, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(n_feature, n_feature, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
        )
        if head == "conv1x1":  # (B, n, 4, 4) -> (B, classes, 4, 4) -> mean over the map -> (B, classes)
            self.classifier = nn.Sequential(*drop, nn.Conv2d(n_feature, num_classes, kernel_size=1),
                                            nn.AdaptiveAvgPool2d(1), nn.Flatten())
            return
        if head == "gap_fc":  # (B, n, 4, 4) -> mean over the map -> (B, n) -> (B, classes)
            self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), *drop,
                                            nn.Linear(n_feature, num_classes))
            return
        fh, fw = _after_two_conv5_pools(h), _after_two_conv5_pools(w)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(n_feature * fh * fw, n_hidden), nn.ReLU(), *drop, nn.Linear(n_hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # (B, n, 4, 4) on MNIST -> logits (B, classes)


class Residual(nn.Module):
    """body(x) + shortcut(x): the shortcut crops x to the body's output (valid convolutions trim `crop` pixels
    a side: each output pixel is centred on the input pixel it is added to) and, where the width changes,
    projects it with a 1x1 convolution (c_in x c_out weights, no bias: the body's conv has one)."""

    def __init__(self, body: nn.Module, c_in: int, c_out: int, crop: int = 0):
        super().__init__()
        self.body = body
        self.shortcut = nn.Conv2d(c_in, c_out, kernel_size=1, bias=False) if c_in != c_out else nn.Identity()
        self.crop = crop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.crop
        return self.body(x) + self.shortcut(x[..., k:-k, k:-k] if k else x)


def _lenet_stage(c_in: int, c_out: int, conv: str, act: type[nn.Module], residual: bool, blocks: int) -> list:
    """One stage before its pooling: a 5x5 conv (or two 3x3, the same 4-pixel trim) [+ shortcut], activation,
    then `blocks` padded 3x3 convs keeping the size (each with an identity shortcut when residual)."""
    entry = [nn.Conv2d(c_in, c_out, 5)] if conv == "5x5" else [nn.Conv2d(c_in, c_out, 3), act(), nn.Conv2d(c_out, c_out, 3)]
    layers = [Residual(nn.Sequential(*entry) if len(entry) > 1 else entry[0], c_in, c_out, crop=2)] if residual \
        else entry
    layers.append(act())
    for _ in range(blocks):
        layer = nn.Conv2d(c_out, c_out, 3, padding=1)
        layers += [Residual(layer, c_out, c_out) if residual else layer, act()]
    return layers


@register("lenet")
class LeNet(nn.Module):
    """The lab's CIFAR-10 `Net`: conv 6, conv 16 (5x5, ReLU, maxpool), fc 120-84-classes (62,006 params).

    model_args, each default the lab's: activation relu | sigmoid | tanh (everywhere), pool max | avg,
    dropout (before the two hidden fc layers' outputs go on), conv "5x5" | "3x3x2" (two 3x3 convs in place of
    each 5x5: 62,832 params), residual (a shortcut around each stage's convs, 1x1-projected: +114 params),
    blocks (extra padded 3x3 convs per stage, for depth: +330 and +2,320 params each).
    """

    def __init__(self, in_shape: Shape, num_classes: int, activation: str = "relu", pool: str = "max",
                 dropout: float = 0.0, conv: str = "5x5", residual: bool = False, blocks: int = 0):
        super().__init__()
        _choice("activation", activation, tuple(ACTIVATIONS))
        _choice("pool", pool, tuple(POOLS))
        _choice("conv", conv, ("5x5", "3x3x2"))
        _choice("residual", residual, (False, True))
        if not isinstance(blocks, int) or isinstance(blocks, bool) or not 0 <= blocks <= 8:
            raise ValueError(f"blocks must be an integer from 0 to 8, got {blocks!r}")
        act, drop = ACTIVATIONS[activation], _dropout_layers(dropout)
        c, h, w = in_shape
        self.features = nn.Sequential(
            *_lenet_stage(c, 6, conv, act, residual, blocks), POOLS[pool](2, 2),
            *_lenet_stage(6, 16, conv, act, residual, blocks), POOLS[pool](2, 2),
        )
        fh, fw = _after_two_conv5_pools(h), _after_two_conv5_pools(w)  # 32x32 -> 5x5
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * fh * fw, 120), act(), *drop, nn.Linear(120, 84), act(), *drop,
            nn.Linear(84, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# The lab's simplified VGG: output channels of each 3x3 conv (+BN+ReLU), "M" a 2x2 max-pool.
VGG_CFG: list[int | str] = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


@register("vgg")
class VGG(nn.Module):
    """The lab's VGG: 3x3 conv-BN-ReLU stages and max-pools, then Linear(512, classes) on 32x32 (9,231,114 params).

    The stages are VGG_CFG above (a number: a conv's output channels; "M": a 2x2 max-pool).
    """

    def __init__(self, in_shape: Shape, num_classes: int, cfg: list[int | str] | None = None):
        super().__init__()
        c, h, w = in_shape
        layers: list[nn.Module] = []
        for x in cfg or VGG_CFG:
            if x == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                h, w = h // 2, w // 2
            else:
                layers += [nn.Conv2d(c, int(x), kernel_size=3, padding=1), nn.BatchNorm2d(int(x)), nn.ReLU(inplace=True)]
                c = int(x)
        if h < 1 or w < 1:
            raise ValueError(f"vgg's layer table pools its input to nothing: {in_shape[1]}x{in_shape[2]} is too small")
        # The seed ends with AvgPool2d(1, 1), an identity, so it is left out.
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c * h * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))  # (B, 512, 1, 1) -> (B, 512) -> logits


@register("fastnet")
class FastNet(nn.Module):
    """airbench94's net: 2x2 whitening conv, three conv-pool-BN-GELU groups (64/256/256), linear x 1/9 (1,972,792 params).

    model_args: widths (the three groups' channels), whiten (false: the first conv is learned, default-initialized),
    dirac (identity-initialized 3x3 convs), fixed_bn_scale (BatchNorm's scale frozen at 1).
    """

    def __init__(self, in_shape: Shape, num_classes: int, widths: list[int] | None = None, whiten: bool = True,
                 dirac: bool = True, fixed_bn_scale: bool = True):
        super().__init__()
        widths = list(widths or fastnet.WIDTHS)
        if len(widths) != 3 or not all(isinstance(w, int) and 1 <= w <= 4096 for w in widths):
            raise ValueError(f"widths must be three channel counts from 1 to 4096, got {widths!r}")
        for arg, value in (("whiten", whiten), ("dirac", dirac), ("fixed_bn_scale", fixed_bn_scale)):
            _choice(arg, value, (False, True))
        c = in_shape[0]
        first = Whitening(c, 2) if whiten else nn.Conv2d(c, 2 * c * 4, kernel_size=2)
        groups, c_in = [], first.out_channels
        for w in widths:
            groups.append(fastnet.conv_group(c_in, w, dirac, fixed_bn_scale))
            c_in = w
        # (B, 3, 32, 32) -> 31 -> 15 -> 7 -> 3 -> global max -> (B, widths[-1]); airbench's MaxPool2d(3) on 32x32
        self.features = nn.Sequential(first, nn.GELU(), *groups, nn.AdaptiveMaxPool2d(1))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c_in, num_classes, bias=False),
                                        fastnet.Scale(fastnet.LOGIT_SCALE))

    def prepare(self, images: torch.Tensor) -> None:
        """Before training: fit the whitening filters to normalized training images (N, C, H, W)."""
        if isinstance(self.features[0], Whitening):
            self.features[0].fit(images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
