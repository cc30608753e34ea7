"""The machinery every sampler of ``inpaintlib/samplers/`` shares: the network as a denoiser, the DDIM step, the
mask-consistency step and the time loop. A sampler is then only its step (k-diffusion's shape).

    Denoiser        a network as x_t, t -> (x0_hat, eps_hat), counting evaluations per image
    ddim_step       DDIM's update from t to s (Song et al. 2021, eq. 12 and 16), ``ddim_sigma`` its noise
    paste_known     keep * known + hole * x: replacement in x_t-space, DDNM's projection in x0-space
    guided_prediction   x0_hat moved down the gradient of the known pixels' error (reconstruction guidance)
    SamplerRun      visited timesteps, random draws, NFE and backward counts, callback, the time loop

The reverse step (DDIM, eq. 12), from t to the previous visited timestep s:
    x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)
    sigma  = eta * sqrt((1 - abar_s) / (1 - abar_t)) * sqrt(1 - abar_t / abar_s)       (eq. 16)
    x_s    = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z
"""
from __future__ import annotations

from typing import Callable

import torch

from .schedule import NoiseSchedule, ddim_timesteps


class Denoiser:
    """Wrap a network as x_t, t, x0_prev -> (x0_hat, eps_hat), counting network evaluations.

    ``y`` (model space, hole zeroed) and ``hole`` are passed to networks that condition on them;
    an x_t batch of B*K rows (K particles per image, image-major: rows b*K .. b*K+K-1 are image b's,
    as in ``samplers.smc_inpaint``) gets each image's y and hole repeated K times.
    ``nfe`` counts network evaluations per image: a call on B rows for the B images of ``y`` adds 1, a
    call on B*K rows (K particles each) adds K; without ``y``, ``images`` gives B (None: every call adds 1).
    ``clip`` clamps x0_hat to the data range [-1, 1]; pass False for a model whose data are not
    bounded (the Gaussian of ``gaussian.py``)."""

    def __init__(self, model, schedule: NoiseSchedule, y=None, hole=None, clip: bool = True, images: int | None = None):
        self.model, self.schedule, self.clip = model, schedule, clip
        self.pred = model.config.pred
        self.cond_kwargs = {"y": y, "hole": hole} if model.config.cond == "mask" else {}
        self.images = y.shape[0] if y is not None else images
        self.nfe = 0

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, x0_prev: torch.Tensor | None = None):
        self.nfe += max(1, x_t.shape[0] // self.images) if self.images else 1
        cond = self.cond_kwargs
        if cond and cond["y"].shape[0] != x_t.shape[0]:  # K particles per image: repeat y and hole K times
            k = x_t.shape[0] // cond["y"].shape[0]
            b = cond["y"].shape[0]
            cond = {name: v.repeat_interleave(k, 0) if v.shape[0] == b else v for name, v in cond.items()}
        out = self.model(x_t, t, x0_prev=x0_prev, **cond)
        return self.schedule.to_x0_eps(self.pred, x_t, t, out.float(), clip=self.clip)


def ddim_sigma(schedule: NoiseSchedule, t, s, eta: float) -> torch.Tensor:
    """The DDIM step's noise scale from t to s (eq. 16); eta = 1 is DDPM's posterior std."""
    a_t, a_s = schedule.abar(t), schedule.abar(s)
    return eta * ((1 - a_s) / (1 - a_t)).sqrt() * (1 - a_t / a_s).sqrt()


def ddim_step(schedule: NoiseSchedule, x_t, x0, eps, t, s, eta: float, noise) -> torch.Tensor:
    """One DDIM update from timestep t to s < t (s = -1 is the clean image), eq. 12 and 16."""
    a_s = schedule.abar(s)
    sigma = ddim_sigma(schedule, t, s, eta)
    x_s = a_s.sqrt() * x0 + (1 - a_s - sigma**2).clamp(min=0).sqrt() * eps
    return x_s + sigma * noise if eta > 0 else x_s


def paste_known(x: torch.Tensor, known_values: torch.Tensor, keep: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """The mask-consistency step every sampler shares: known pixels from ``known_values``, the hole
    from ``x``. In x_t-space with the noised observation it is the design's replacement step; in
    x0-space with y itself it is DDNM's range-null-space decomposition A^+ y + (I - A^+ A) x0_hat,
    which for inpainting (A = A^+ = keep) is keep * y + hole * x0_hat."""
    return keep * known_values + hole * x


def check_autograd(name: str) -> None:
    if torch.is_inference_mode_enabled():
        raise RuntimeError(f"{name} differentiates through the network, which torch.inference_mode() forbids: "
                           "call it under torch.no_grad() or neither")


def guided_prediction(denoise: Callable, schedule: NoiseSchedule, x_t, t, x0_prev, y, hole, weight: float):
    """(x0_hat, eps_hat) with reconstruction guidance of ``weight`` w (Ho et al. 2022, "Video Diffusion
    Models", eq. 7): one evaluation with autograd on, and the gradient with respect to x_t of the known
    pixels' squared error moves the hole's x0_hat,
        x0_hat <- x0_hat - (w sqrt(abar_t) / 2) * M * grad_{x_t} || (1 - M) * (y - x0_hat(x_t)) ||^2
        eps_hat <- (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t) Only the hole's x0_hat moves; the result is clipped to [-1, 1] like the network's own
    (unless ``denoise.clip`` is False, as for the Gaussian model of ``gaussian.py``)."""
    with torch.enable_grad():
        x_in = x_t.detach().requires_grad_(True)
        x0, _ = denoise(x_in, t, x0_prev)
        error = ((1.0 - hole) * (y - x0)).square().sum()
        grad = torch.autograd.grad(error, x_in, allow_unused=True)[0] if error.requires_grad else None
    if grad is None:  # an x0_hat that does not depend on x_t (an oracle in a test): nothing to follow
        grad = torch.zeros_like(x_t)
    a_t = schedule.abar(t)
    x0 = x0.detach() - (weight * a_t.sqrt() / 2) * hole * grad
    if getattr(denoise, "clip", True):
        x0 = x0.clamp(-1.0, 1.0)
    return x0, (x_t - a_t.sqrt() * x0) / (1.0 - a_t).sqrt()


# ----------------------------------------------------------------------------------------------
# what every sampler shares: the visited timesteps, the random draws, the counts and the loop


class SamplerRun:
    """The state one sampler call shares with every other sampler: the S visited timesteps (from
    T-1 down to 0, then -1 = the clean image), the masks, the random draws (all from the one
    ``generator``, so a seed fixes the run), the per-image counts of network evaluations (``nfe``)
    and backward passes (``backward``), the callback, and the time loop (``loop``). A sampler is
    then its ``step(x, i, repeat) -> x_s``: one proposal from timestep i to timestep i + 1."""

    def __init__(self, schedule: NoiseSchedule, y: torch.Tensor, hole: torch.Tensor, steps: int,
                 generator: torch.Generator | None, callback: Callable[[dict], None] | None,
                 counts_backward: bool = False):
        self.schedule, self.y, self.generator, self.callback = schedule, y, generator, callback
        self.timesteps = ddim_timesteps(schedule.T, steps)
        self.hole = hole.to(y.dtype)
        self.keep = 1.0 - self.hole
        self.nfe, self.backward, self.counts_backward = 0, 0, counts_backward

    def randn(self, like: torch.Tensor | None = None) -> torch.Tensor:
        ref = self.y if like is None else like
        return torch.randn(ref.shape, generator=self.generator, device=ref.device, dtype=ref.dtype)

    def t_int(self, i: int) -> int:
        """The timestep of visit i; i = S (one past the last) is -1, the clean image."""
        return self.timesteps[i] if i < len(self.timesteps) else -1

    def t(self, i: int, rows: int | None = None) -> torch.Tensor:
        return torch.full((self.y.shape[0] if rows is None else rows,), self.t_int(i), device=self.y.device,
                          dtype=torch.long)

    def report(self, x, i: int, repeat: int, x0, **extra) -> None:
        """Call the callback with the step's dict: x, i, t, t_prev, repeat, x0_pred, nfe (per image so
        far), backward (for samplers that take backward passes), and the sampler's own ``extra``."""
        if self.callback is None:
            return
        info = {"x": x, "i": i, "t": self.t_int(i), "t_prev": self.t_int(i + 1), "repeat": repeat, "x0_pred": x0,
                "nfe": self.nfe}
        if self.counts_backward:
            info["backward"] = self.backward
        self.callback({**info, **extra})

    def loop(self, x: torch.Tensor, step: Callable, repeats: int = 1, travel_length: int = 1) -> torch.Tensor:
        """The time loop of every sampler. The S steps are taken in windows of ``travel_length``;
        each window is run ``repeats`` times, and between runs x is re-noised from the window's end
        back to its start with q(x_t | x_s) (``NoiseSchedule.renoise``): RePaint's resampling
        (Lugmayr et al. 2022, Algorithm 1, jump length = travel_length) and DDNM's time travel
        (Wang et al. 2023, Sec. 3.3). travel_length = 1 re-noises after every step."""
        n = len(self.timesteps)
        for start in range(0, n, travel_length):
            window = range(start, min(start + travel_length, n))
            for r in range(repeats):
                for i in window:
                    x = step(x, i, r)
                if r + 1 < repeats:
                    x = self.schedule.renoise(x, self.t(window[-1] + 1, x.shape[0]), self.t(start, x.shape[0]),
                                              self.randn(x))
        return x


def nfe_per_image(steps: int, dc_repeats: int = 1, particles: int = 1) -> int:
    """Network evaluations per image for one sampler run: every sampler evaluates the network once
    per visit and particle (``smc`` holds ``particles`` per image and takes no repeats)."""
    return steps * dc_repeats * particles
