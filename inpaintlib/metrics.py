"""Hole-only metrics (the design's ``sample_cmd`` and ``eval_cmd`` use them: ``inpaintlib/mnist/recipe.py``).

With M = 1 inside the hole and images in [0, 1] (the design document's formulas):
    L1_hole   = mean(|x_pred - x_gt| * M) / mean(M)
    MSE_hole  = mean((x_pred - x_gt)^2 * M) / mean(M)
    PSNR_hole = 20 log10(MAX_I) - 10 log10(MSE_hole),  MAX_I = 1
Over a set of images the means run over all of them (pooled): the headline PSNR is taken of the
pooled MSE. The mean of per-image PSNRs is reported beside it, under its own name.
"""
from __future__ import annotations

import math

import torch

PSNR_CAP_DB = 100.0  # per-image PSNR of an exact reconstruction (MSE = 0) is reported as this


# ----------------------------------------------------------------------------------------------
# metrics


def hole_sums(pred: torch.Tensor, gt: torch.Tensor, hole: torch.Tensor):
    """Per-image sums over the hole: squared error, absolute error, and hole pixel count (x channels)."""
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got {tuple(pred.shape)} and {tuple(gt.shape)}")
    m = hole.to(pred.dtype).expand_as(pred)
    diff = (pred - gt) * m
    dims = tuple(range(1, pred.ndim))
    return (diff ** 2).sum(dims), diff.abs().sum(dims), m.sum(dims)


def l1_hole(pred, gt, hole) -> float:
    """mean(|x_pred - x_gt| * M) / mean(M), pooled over the batch."""
    _, abs_sum, count = hole_sums(pred, gt, hole)
    return (abs_sum.sum() / count.sum()).item()


def mse_hole(pred, gt, hole) -> float:
    """mean((x_pred - x_gt)^2 * M) / mean(M), pooled over the batch."""
    sq_sum, _, count = hole_sums(pred, gt, hole)
    return (sq_sum.sum() / count.sum()).item()


def psnr_from_mse(mse: float) -> float:
    """PSNR = 20 log10(1) - 10 log10(MSE) = -10 log10(MSE) for images in [0, 1]."""
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def psnr_hole(pred, gt, hole) -> float:
    """Hole-only PSNR of the pooled MSE (the headline figure)."""
    return psnr_from_mse(mse_hole(pred, gt, hole))


class HoleMetrics:
    """Accumulates hole-only errors over batches; ``summary()`` gives pooled and per-image figures."""

    def __init__(self):
        self._batches = []  # per batch: the per-image hole sums (squared error, absolute error, pixels)

    def update(self, pred, gt, hole) -> None:
        self._batches.append(tuple(v.double().cpu() for v in hole_sums(pred, gt, hole)))

    def _per_image(self):
        """(squared error, absolute error, hole pixels), each (N,) over every image seen so far."""
        if not self._batches:
            return (torch.zeros(0, dtype=torch.float64),) * 3
        return tuple(torch.cat(column) for column in zip(*self._batches))

    @property
    def per_image_psnr(self) -> list:
        """Each image's own hole PSNR (an exact reconstruction counts as PSNR_CAP_DB)."""
        sq, _, n = self._per_image()
        per_mse = (sq / n.clamp(min=1)).clamp(min=10 ** (-PSNR_CAP_DB / 10))
        return (-10.0 * torch.log10(per_mse)).tolist()

    def psnr_interval(self, level: float = 0.95, resamples: int = 1000, seed: int = 0) -> list:
        """Bootstrap interval of the pooled PSNR_hole: the images are drawn again with replacement
        ``resamples`` times (a fixed seed, so the interval is reproducible) and the pooled PSNR of each
        draw is taken; returns the central ``level`` share of those, [low, high] in dB. It says how much
        the figure would move on another set of images of the same size: in benchmarks/quality.py's
        table, +-0.1 to 0.4 dB on 200 test digits, +-0.02 to 0.06 dB on all 10000."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        sq, _, n = self._per_image()
        g = torch.Generator().manual_seed(seed)
        mses = []
        for start in range(0, resamples, 100):  # 100 draws at a time: (100, N) indices stay small for N = 10000
            idx = torch.randint(len(sq), (min(100, resamples - start), len(sq)), generator=g)
            mses.append(sq[idx].sum(1) / n[idx].sum(1).clamp(min=1))
        psnr = -10.0 * torch.log10(torch.cat(mses).clamp(min=10 ** (-PSNR_CAP_DB / 10)))
        q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=psnr.dtype)
        return torch.quantile(psnr, q).tolist()

    def summary(self) -> dict:
        sq, ab, n = (v.sum().item() for v in self._per_image())
        if n == 0:
            raise ValueError("no hole pixels were evaluated (the hole is empty)")
        mse = sq / n
        per_image = self.per_image_psnr
        return {"psnr_hole": psnr_from_mse(mse), "l1_hole": ab / n, "mse_hole": mse,
                "psnr_hole_per_image_mean": sum(per_image) / len(per_image),
                "psnr_hole_ci95": None if mse == 0 else self.psnr_interval(0.95)}


def laplacian_abs(images: torch.Tensor) -> torch.Tensor:
    """|4-neighbour Laplacian| per pixel and channel (replicate padding) of images (B, C, H, W)."""
    import torch.nn.functional as F

    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=images.dtype,
                          device=images.device).view(1, 1, 3, 3).repeat(images.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel, groups=images.shape[1]).abs()


def hole_roughness(pred: torch.Tensor, gt: torch.Tensor, hole: torch.Tensor) -> float:
    """How rough a fill is against the truth: the mean |Laplacian| of ``pred`` inside the hole over the
    truth's on the same pixels (1 = as rough as the truth; a blurred fill is below 1, a noisy one above)."""
    m = hole.expand_as(pred)
    return float((laplacian_abs(pred) * m).sum() / (laplacian_abs(gt) * m).sum().clamp_min(1e-12))
