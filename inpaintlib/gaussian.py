"""A data model whose denoiser is closed-form: a Gaussian fitted to MNIST.

With x_0 ~ N(mu, Sigma) in model space ([-1, 1]) and x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
(DDPM eq. 4), x_0 and x_t are jointly Gaussian, so the ideal denoiser is Gaussian conditioning:
    E[x_0 | x_t] = mu + sqrt(abar_t) Sigma (abar_t Sigma + (1 - abar_t) I)^-1 (x_t - sqrt(abar_t) mu)
(Tweedie's formula says the same: E[x_0 | x_t] = (x_t + (1 - abar_t) grad log p(x_t)) / sqrt(abar_t)).
Sigma = U diag(lam - delta) U^T + delta I, with U the top r principal directions of the data, lam their
variances and delta a small isotropic floor, shares its eigenvectors with abar Sigma + (1 - abar) I,
so the inverse is Woodbury's in closed form: along a direction of variance v the gain is
    g(v) = sqrt(abar) v / (abar v + 1 - abar),
and E[x_0 | x_t] = mu + g(delta) r + U diag(g(lam) - g(delta)) U^T r,  r = x_t - sqrt(abar) mu:
O(D r) per image instead of O(D^3).

``GaussianModel`` wraps it like a network (``.config``, ``forward(x_t, t, x0_prev=None)`` returning its
``pred`` parameterisation), so every sampler runs on it through ``Denoiser``; ``conditional`` gives the
exact answer to inpainting, p(hole | known pixels), which the samplers' samples are tested against
(tests/test_gaussian_posterior.py). Use ``Denoiser(model, schedule, clip=False)``: the Gaussian's
samples are not bounded to [-1, 1].
"""
from __future__ import annotations

import torch
from torch import nn

from dataclasses import dataclass

from .utils import to_model
from .checks import check_choice, check_int, check_number
from .schedule import PREDICTIONS, SCHEDULES, NoiseSchedule


@dataclass(frozen=True)
class AnalyticConfig:
    """What the samplers read of a network's ``config``, for a closed-form data model: the image size
    and channels, the output's parameterisation, T and the schedule. cond="none": like the MNIST
    design's network, it sees only x_t."""

    image_size: int
    channels: int = 1
    pred: str = "eps"
    T: int = 1000
    schedule: str = "linear"
    cond: str = "none"
    self_cond: bool = False

    def __post_init__(self):
        check_choice(self.pred, "pred", PREDICTIONS)
        check_choice(self.schedule, "schedule", SCHEDULES)


def fit_gaussian_parameters(images: torch.Tensor, rank: int = 32, floor: float | None = None):
    """Mean (D,), top-``rank`` principal directions U (D, r), their variances lam (r,) and the floor
    delta of images (N, C, H, W) in [0, 1], in model space. ``floor`` None: the mean variance of the
    discarded directions (so the total variance is kept)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a tensor (N, C, H, W) in [0, 1], got {getattr(images, 'shape', images)!r}")
    x = to_model(images.double()).flatten(1)
    n, d = x.shape
    rank = check_int(rank, "rank (fewer than the images and the pixels)", 1, min(n, d) - 1)
    mean = x.mean(0)
    cov = (x - mean).T @ (x - mean) / (n - 1)
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    evals, evecs = evals.flip(0).clamp(min=0), evecs.flip(1)
    if floor is None:
        floor = float(evals[rank:].mean())
    floor = check_number(floor, "floor", 0, low_open=True)
    lam = evals[:rank].clamp(min=floor)
    return mean.float(), evecs[:, :rank].float().contiguous(), lam.float(), float(floor)


class GaussianModel(nn.Module):
    """x_0 ~ N(mean, U diag(lam - floor) U^T + floor I) as a denoising "network" (see the module
    docstring). ``config`` is an ``AnalyticConfig``: the image size, channels, pred, T and schedule
    the samplers read."""

    def __init__(self, mean: torch.Tensor, basis: torch.Tensor, lam: torch.Tensor, floor: float,
                 image_size: int, channels: int = 1, T: int = 1000, schedule: str = "linear", pred: str = "eps"):
        super().__init__()
        self.config = AnalyticConfig(image_size=image_size, channels=channels, pred=pred, T=T, schedule=schedule)
        d = channels * image_size * image_size
        if mean.shape != (d,) or basis.shape[0] != d or lam.shape != (basis.shape[1],):
            raise ValueError(f"mean (D,), basis (D, r) and lam (r,) must agree with D = {d}, got "
                             f"{tuple(mean.shape)}, {tuple(basis.shape)}, {tuple(lam.shape)}")
        self.mean = nn.Parameter(mean.float(), requires_grad=False)
        self.basis = nn.Parameter(basis.float(), requires_grad=False)
        self.lam = nn.Parameter(lam.float(), requires_grad=False)
        self.floor = float(floor)
        self.register_buffer("alpha_bar", NoiseSchedule(T, schedule).alpha_bar.clone())

    @property
    def shape(self) -> tuple:
        c = self.config
        return (c.channels, c.image_size, c.image_size)

    def covariance(self) -> torch.Tensor:
        """Sigma (D, D) in float64."""
        U, lam = self.basis.double(), self.lam.double()
        return self.floor * torch.eye(len(self.mean), dtype=torch.float64, device=U.device) + (U * (lam - self.floor)) @ U.T

    def posterior_mean(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """E[x_0 | x_t] in closed form (Woodbury, see the module docstring), (B, C, H, W)."""
        a = self.alpha_bar[torch.as_tensor(t, device=x_t.device).long().reshape(-1)].reshape(-1, 1).to(x_t.dtype)

        def gain(v):  # sqrt(abar) v / (abar v + 1 - abar), the conditioning gain along a direction of variance v
            return a.sqrt() * v / (a * v + 1 - a)

        r = x_t.flatten(1) - a.sqrt() * self.mean
        g_floor = gain(self.floor)
        x0 = self.mean + g_floor * r + ((gain(self.lam) - g_floor) * (r @ self.basis)) @ self.basis.T
        return x0.view_as(x_t)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, x0_prev=None, **unused) -> torch.Tensor:
        """The ideal network's output in the ``pred`` parameterisation (eps, x0 or v)."""
        x0 = self.posterior_mean(x_t, t)
        a = self.alpha_bar[torch.as_tensor(t, device=x_t.device).long().reshape(-1)].reshape(-1, 1, 1, 1)
        eps = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
        pred = self.config.pred
        return eps if pred == "eps" else x0 if pred == "x0" else a.sqrt() * eps - (1 - a).sqrt() * x0

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws from the data model itself, (n, C, H, W) in model space (unclipped)."""
        U, lam = self.basis, self.lam
        z = torch.randn(n, len(self.mean), generator=generator, device=U.device)
        w = torch.randn(n, U.shape[1], generator=generator, device=U.device)
        x = self.mean + self.floor ** 0.5 * z + (w * (lam - self.floor).sqrt()) @ U.T
        return x.view(n, *self.shape)

    def conditional(self, y: torch.Tensor, hole: torch.Tensor):
        """The exact answer to inpainting: p(x_hole | x_known = y_known) = N(m, C) with
            m = mu_h + S_hk S_kk^-1 (y_k - mu_k),   C = S_hh - S_hk S_kk^-1 S_kh
        for one image y (C, H, W) or (1, C, H, W) in model space and its hole (1 = fill, broadcast
        over channels). Returns (m (n_h,), C (n_h, n_h)) in float64, the hole's pixels in
        row-major order (``x.flatten()[hole_index]``, see ``hole_index``)."""
        h = self.hole_index(hole)
        k = torch.ones(len(self.mean), dtype=torch.bool, device=h.device)
        k[h] = False
        S, mu, yv = self.covariance(), self.mean.double(), y.reshape(-1).double().to(self.mean.device)
        solve = torch.linalg.solve(S[k][:, k], torch.cat([S[k][:, h], (yv[k] - mu[k]).unsqueeze(1)], dim=1))
        m = mu[h] + S[h][:, k] @ solve[:, -1]
        C = S[h][:, h] - S[h][:, k] @ solve[:, :-1]
        return m, (C + C.T) / 2

    def hole_index(self, hole: torch.Tensor) -> torch.Tensor:
        """Indices of the hole's entries in a flattened (C, H, W) image."""
        full = hole.reshape(1, *hole.shape[-2:]).expand(*self.shape).reshape(-1) > 0.5
        return full.nonzero().squeeze(1).to(self.mean.device)


def fit_gaussian(images: torch.Tensor, rank: int = 32, floor: float | None = None, T: int = 1000,
                 schedule: str = "linear", pred: str = "eps") -> GaussianModel:
    """A ``GaussianModel`` fitted to images (N, C, H, W) in [0, 1] (see ``fit_gaussian_parameters``)."""
    mean, basis, lam, floor = fit_gaussian_parameters(images, rank, floor)
    return GaussianModel(mean, basis, lam, floor, images.shape[-1], images.shape[1], T=T, schedule=schedule, pred=pred)
