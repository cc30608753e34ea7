"""Noise schedules and the algebra of the forward process.

Everything that turns a clean image into a noisy one, or converts between the three things a
network can predict (eps, x0, v), lives here and nowhere else. The model and the sampler import
these functions; they never re-derive them.

Notation (DDPM, Ho et al. 2020; DDIM, Song et al. 2021):
    beta_t             noise added at step t, t = 0 .. T-1 (0-indexed)
    alpha_t            = 1 - beta_t
    alpha_bar_t        = prod_{s <= t} alpha_s              (DDPM eq. 4)
    q(x_t | x_0)       = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
    SNR_t              = alpha_bar_t / (1 - alpha_bar_t)
    v                  = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0   (Salimans & Ho 2022)
    SNR shift by c     SNR'_t = c SNR_t, i.e. alpha_bar'_t = c alpha_bar_t / (1 + (c - 1) alpha_bar_t)
                       (``NoiseSchedule(snr_scale=c)``): exactly the process of sqrt(c) x_0 with x_t divided
                       by sqrt(1 + (c - 1) alpha_bar_t). For a signal far smaller than the noise's unit scale
                       (a residual), the same 50 DDIM steps then spend more of their time where it is still
                       visible above the noise.
"""
from __future__ import annotations

import math

import torch

from .checks import check_choice, check_int, check_number

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "x0", "v")


# ----------------------------------------------------------------------------------------------
# beta schedules


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """beta_t rising linearly from ``beta_start`` to ``beta_end`` over T steps (DDPM sec. 4)."""
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """The cosine schedule of Nichol & Dhariwal 2021, eq. 17:
    alpha_bar(t) = f(t) / f(0),  f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2),
    beta_t = 1 - alpha_bar(t + 1) / alpha_bar(t), clipped at ``max_beta``."""
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


# ----------------------------------------------------------------------------------------------
# the schedule object


class NoiseSchedule:
    """A discrete noise schedule of T steps, with the forward process q(x_t | x_0).

    The tables are computed in float64 once and stored in float32; ``to(device)`` moves them.
    """

    def __init__(self, T: int = 1000, kind: str = "linear", snr_scale: float = 1.0):
        self.T = check_int(T, "steps (the number of diffusion timesteps T)", 2)
        self.kind = check_choice(kind, "schedule", SCHEDULES)
        self.snr_scale = check_number(snr_scale, "snr_scale", 0, low_open=True)
        betas = linear_betas(T) if kind == "linear" else cosine_betas(T)
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, dim=0)  # alpha_bar_t = prod_{s<=t} alpha_s  (DDPM eq. 4)
        if self.snr_scale != 1.0:
            # SNR'_t = snr_scale * SNR_t: alpha_bar' = c abar / (1 + (c - 1) abar). A VP process at c times the
            # SNR is exactly the process of sqrt(c) x_0, with x_t divided by sqrt(1 + (c - 1) abar): worth it for
            # data much smaller than the noise's unit scale (a residual)
            c = float(self.snr_scale)
            alpha_bar = c * alpha_bar / (1.0 + (c - 1.0) * alpha_bar)
            alphas = alpha_bar / torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
            betas = 1.0 - alphas
        self.betas = betas.float()
        self.alphas = alphas.float()
        self.alpha_bar = alpha_bar.float()

    def to(self, device) -> "NoiseSchedule":
        for name in ("betas", "alphas", "alpha_bar"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def __repr__(self) -> str:
        shift = f", snr_scale={self.snr_scale:g}" if self.snr_scale != 1.0 else ""
        return f"NoiseSchedule(T={self.T}, kind={self.kind!r}{shift})"

    @classmethod
    def of(cls, config) -> "NoiseSchedule":
        """The schedule a network's configuration names: its T (``T`` or ``timesteps``), ``schedule`` and
        ``snr_scale`` (1 where the configuration has none)."""
        T = getattr(config, "T", None) or getattr(config, "timesteps")
        return cls(T, config.schedule, getattr(config, "snr_scale", 1.0))

    # -- per-timestep coefficients, shaped to broadcast against images (B, 1, 1, 1) -------------

    def abar(self, t: torch.Tensor) -> torch.Tensor:
        """alpha_bar_t gathered for a batch of integer timesteps, shape (B, 1, 1, 1).
        t = -1 means "before the first step": alpha_bar = 1 (the clean image)."""
        t = torch.as_tensor(t, device=self.alpha_bar.device).long().reshape(-1)
        return self._padded_alpha_bar()[t + 1].reshape(-1, 1, 1, 1)

    def _padded_alpha_bar(self) -> torch.Tensor:
        """[1, alpha_bar_0, ..., alpha_bar_{T-1}] (index 0 <-> t = -1), built once per alpha_bar tensor
        rather than at every call (the sampler gathers from it several times per step)."""
        if getattr(self, "_padded_source", None) is not self.alpha_bar:
            self._padded = torch.cat([self.alpha_bar.new_ones(1), self.alpha_bar])
            self._padded_source = self.alpha_bar
        return self._padded

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """SNR_t = alpha_bar_t / (1 - alpha_bar_t), shape (B, 1, 1, 1)."""
        a = self.abar(t)
        return a / (1 - a)

    # -- the forward process --------------------------------------------------------------------

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Sample q(x_t | x_0): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps   (DDPM eq. 4)."""
        a = self.abar(t)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def renoise(self, x_s: torch.Tensor, s: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Sample q(x_t | x_s) for t > s (used by RePaint-style resampling, Lugmayr et al. 2022):
        x_t = sqrt(abar_t / abar_s) x_s + sqrt(1 - abar_t / abar_s) z."""
        ratio = self.abar(t) / self.abar(s)
        return ratio.sqrt() * x_s + (1 - ratio).sqrt() * noise

    # -- conversions between the three parameterisations, written once ------------------------

    def eps_from_x0(self, x_t, t, x0):
        """eps = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t)."""
        a = self.abar(t)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    def x0_from_eps(self, x_t, t, eps):
        """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)   (DDIM eq. 9, the "predicted x_0")."""
        a = self.abar(t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def v_from(self, x0, eps, t):
        """v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0."""
        a = self.abar(t)
        return a.sqrt() * eps - (1 - a).sqrt() * x0

    def x0_from_v(self, x_t, t, v):
        """x_0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v."""
        a = self.abar(t)
        return a.sqrt() * x_t - (1 - a).sqrt() * v

    def target(self, pred: str, x0, eps, t):
        """What a network with parameterisation ``pred`` is trained to output."""
        check_choice(pred, "pred", PREDICTIONS)
        if pred == "eps":
            return eps
        if pred == "x0":
            return x0
        return self.v_from(x0, eps, t)

    def to_x0_eps(self, pred: str, x_t, t, out, clip: bool = True):
        """Read a network output of parameterisation ``pred`` as (x0, eps).

        With ``clip`` the x0 estimate is clamped to the data range [-1, 1] and eps is recomputed
        from the clamped x0, so the two stay consistent with x_t (the usual "clip denoised")."""
        check_choice(pred, "pred", PREDICTIONS)
        if pred == "eps":
            x0 = self.x0_from_eps(x_t, t, out)
        elif pred == "x0":
            x0 = out
        else:
            x0 = self.x0_from_v(x_t, t, out)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        if pred == "eps" and not clip:
            return x0, out
        return x0, self.eps_from_x0(x_t, t, x0)


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """The S = ``steps`` timesteps a DDIM run visits, from T-1 down to 0, evenly spaced."""
    check_int(steps, "steps (DDIM sampling steps, at most the model's T)", 1, T)
    if steps == 1:
        return [T - 1]
    ts = torch.linspace(T - 1, 0, steps, dtype=torch.float64).round().long().tolist()
    return ts
