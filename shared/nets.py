"""The seed's networks in a small registry: `build_model(name, in_shape, num_classes, **cfg)`."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

Shape = tuple[int, int, int]  # (channels, height, width) of one input image

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    """Class decorator adding a model constructor to the registry."""

    def wrap(cls):
        _REGISTRY[name] = cls
        return cls

    return wrap


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def build_model(name: str, in_shape: Shape = (1, 28, 28), num_classes: int = 10, **cfg) -> nn.Module:
    """Build a registered model for inputs of `in_shape` (C, H, W) and `num_classes` outputs."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    try:
        return _REGISTRY[name](tuple(in_shape), num_classes, **cfg)
    except TypeError as exc:  # a model_args key the constructor does not take
        raise ValueError(f"bad model_args for {name!r}: {exc}") from None


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@register("fc2")
class FC2Layer(nn.Module):
    """The seed's FC2Layer: Linear-ReLU-Linear-ReLU-Linear, log-softmax (784-8-8-10: 6,442 params)."""

    def __init__(self, in_shape: Shape, num_classes: int, n_hidden: int = 8):
        super().__init__()
        c, h, w = in_shape
        self.network = nn.Sequential(
            nn.Flatten(),  # (B, C, H, W) -> (B, C*H*W), the seed's x.view(-1, input_size)
            nn.Linear(c * h * w, n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, num_classes),
            nn.LogSoftmax(dim=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


@register("cnn")
class CNN(nn.Module):
    """The seed's CNN: (conv5x5-ReLU-maxpool2) x2, fc 50, fc, log-softmax (6 maps on MNIST: 6,422 params)."""

    def __init__(self, in_shape: Shape, num_classes: int, n_feature: int = 6, n_hidden: int = 50):
        super().__init__()
        c, h, w = in_shape
        self.conv1 = nn.Conv2d(c, n_feature, kernel_size=5)
        self.conv2 = nn.Conv2d(n_feature, n_feature, kernel_size=5)
        # Each conv5x5 trims 4 pixels and each pool halves: 28 -> 24 -> 12 -> 8 -> 4; 32 -> 5.
        fh, fw = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
        if fh < 1 or fw < 1:
            raise ValueError(f"cnn needs images of at least 16x16, got {h}x{w}")
        self.fc1 = nn.Linear(n_feature * fh * fw, n_hidden)
        self.fc2 = nn.Linear(n_hidden, num_classes)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """First-block activations (conv, ReLU, pool), what the seed asks students to look at."""
        conv = self.conv1(x)
        relu = F.relu(conv)
        return {"conv": conv, "relu": relu, "pool": F.max_pool2d(relu, 2)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return F.log_softmax(self.fc2(x), dim=1)


@register("lenet")
class LeNet(nn.Module):
    """The seed's CIFAR-10 `Net`: conv 6, conv 16 (5x5, ReLU, maxpool), fc 120-84-classes (62,006 params)."""

    def __init__(self, in_shape: Shape, num_classes: int):
        super().__init__()
        c, h, w = in_shape
        self.conv1 = nn.Conv2d(c, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        fh, fw = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2  # 32x32 -> 5x5
        if fh < 1 or fw < 1:
            raise ValueError(f"lenet needs images of at least 16x16, got {h}x{w}")
        self.fc1 = nn.Linear(16 * fh * fw, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        conv = self.conv1(x)
        relu = F.relu(conv)
        return {"conv": conv, "relu": relu, "pool": self.pool(relu)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)  # logits


# The seed's simplified VGG: output channels of each 3x3 conv (+BN+ReLU), "M" a 2x2 max-pool.
VGG_CFG: list[int | str] = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


@register("vgg")
class VGG(nn.Module):
    """The seed's VGG: the layer table above, then Linear(512, classes) on 32x32 (9,231,114 params)."""

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
            raise ValueError(f"vgg pools its input down 5 times and needs at least 32x32, got {in_shape[1]}x{in_shape[2]}")
        # The seed ends with AvgPool2d(1, 1), an identity, so it is left out.
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c * h * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))  # (B, 512, 1, 1) -> (B, 512) -> logits
