"""A whitening first layer (airbench94, after Jordan 2024): a conv whose filters are the eigenvectors of the
training patches' covariance, scaled by 1/sqrt(eigenvalue), so its outputs are decorrelated with unit variance."""

from __future__ import annotations

import torch
import torch.nn as nn

EPS = 5e-4  # added to each eigenvalue: keeps the near-zero directions from blowing up
SAMPLE = 5000  # training images the covariance is estimated from (airbench's count)


def patches(images: torch.Tensor, k: int) -> torch.Tensor:
    """Every k x k patch of `images` (N, C, H, W) as rows (N * (H-k+1) * (W-k+1), C*k*k), float32."""
    n, c, h, w = images.shape
    p = images.float().unfold(2, k, 1).unfold(3, k, 1)  # (N, C, H-k+1, W-k+1, k, k)
    return p.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)


def whitening_filters(images: torch.Tensor, k: int, eps: float = EPS) -> torch.Tensor:
    """(C*k*k, C, k, k) filters W with W cov W^T = I (up to eps) for the patch covariance of `images`."""
    rows = patches(images, k).double()
    cov = rows.T @ rows / len(rows)  # uncentred, as airbench: the inputs are already normalized to mean ~0
    values, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues
    filters = (vectors.T / torch.sqrt(values.clamp_min(0) + eps)[:, None]).flip(0)  # largest first
    c = images.shape[1]
    return filters.reshape(c * k * k, c, k, k).float()


class Whitening(nn.Conv2d):
    """A k x k valid conv with 2*C*k*k outputs: the whitening filters and their negatives (so a following GELU
    keeps both signs); its weight is frozen, its bias trains (for `whiten_bias_epochs` epochs)."""

    def __init__(self, channels: int = 3, k: int = 2):
        super().__init__(channels, 2 * channels * k * k, kernel_size=k, bias=True)
        nn.init.zeros_(self.bias)
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        """Set the filters from normalized training images (N, C, H, W)."""
        w = whitening_filters(images[:SAMPLE].float(), self.kernel_size[0]).to(self.weight)
        self.weight.copy_(torch.cat([w, -w]))


class BiasFreeze:
    """A step hook: the whitening layer's bias trains for the first `epochs` epochs, then is frozen."""

    def __init__(self, layer: Whitening, epochs: int, steps_per_epoch: int):
        self.layer, self.until = layer, epochs * steps_per_epoch

    def begin(self, done: int) -> None:
        self.layer.bias.requires_grad_(done < self.until)

    def __call__(self, done: int) -> None:
        if done >= self.until:
            self.layer.bias.requires_grad_(False)
