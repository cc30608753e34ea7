"""DDIM sampling with mask consistency: the inpainting sampler.

One flat sampler function with a uniform signature and a ``callback`` called at every proposal
with a dict (``x``, ``i``, ``t``, ``x0_pred``, ...); animations and the widget hang off that
callback. ``inpaint`` is the public, validated entry point on [0, 1] images.

The reverse step (DDIM, Song et al. 2021, eq. 12), from t to the previous visited timestep s:
    x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)
    sigma  = eta * sqrt((1 - abar_s) / (1 - abar_t)) * sqrt(1 - abar_t / abar_s)       (eq. 16)
    x_s    = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z
Mask consistency (the design document's step), with hole M (1 = fill):
    x_s    = (1 - M) * q_sample(y, s) + M * x_s
so the known pixels always carry the observation at exactly the current noise level.
Optional reconstruction guidance (``guidance`` = w > 0; Ho et al. 2022, "Video Diffusion Models",
eq. 7), before the step: the hole's x0_hat moves down the gradient of how badly x0_hat(x_t) misses
the observation on the known pixels,
    x0_hat <- x0_hat - (w sqrt(abar_t) / 2) * M * grad_{x_t} || (1 - M) * (y - x0_hat(x_t)) ||^2
    eps_hat <- (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t)
Replacement alone tells the hole about the known pixels only through the network's next input;
the gradient tells it at once which way its content must change for the whole image to agree.
It costs a backward pass through the network per evaluation: 50 guided steps took 1.8x the time of
50 plain ones in benchmarks/quality.py's run (MNIST, one CPU thread).

The other samplers of the ladder (DDNM, PiGDM, DiffPIR, a particle filter) are in ``samplers.py``;
they share this file's ``Denoiser``, ``ddim_step``, ``paste_known`` (the mask-consistency step) and
``SamplerRun`` (timesteps, random draws, NFE counts, callback and the time loop with RePaint/DDNM
time travel). The public entry point, ``inpaint(model, images, hole, ..., sampler=name)``, is at the
end of ``samplers.py``, above both.
"""
from __future__ import annotations

from typing import Callable

import torch

from .schedule import NoiseSchedule, ddim_timesteps

KNOWN_MODES = ("noised", "clean")


class Denoiser:
    """Wrap a network as x_t, t, x0_prev -> (x0_hat, eps_hat), counting network evaluations.

    ``y`` (model space, hole zeroed) and ``hole`` are passed to networks that condition on them;
    an x_t batch of B*K rows (K particles per image, image-major: rows b*K .. b*K+K-1 are image b's,
    as in ``samplers.smc_inpaint``) gets each image's y and hole repeated K times.
    ``nfe`` counts batched calls (one call adds 1; the samplers count evaluations per image).
    ``clip`` clamps x0_hat to the data range [-1, 1]; pass False for a model whose data are not
    bounded (the Gaussian of ``gaussian.py``)."""

    def __init__(self, model, schedule: NoiseSchedule, y=None, hole=None, clip: bool = True):
        self.model, self.schedule, self.clip = model, schedule, clip
        self.pred = model.config.pred
        self.cond_kwargs = {"y": y, "hole": hole} if model.config.cond == "mask" else {}
        self.nfe = 0

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, x0_prev: torch.Tensor | None = None):
        self.nfe += 1
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


def check_guidance(guidance) -> float:
    """The reconstruction-guidance weight as a float, or a ValueError naming what is expected."""
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0.0 <= guidance < float("inf"):
        raise ValueError(f"guidance must be a finite number >= 0 (0 = off), got {guidance!r}")
    return float(guidance)


def check_int(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def check_number(value, name: str, low: float, high: float, low_open: bool = False) -> float:
    """A float in [low, high] (or (low, high] with ``low_open``), or a ValueError naming the range."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and low <= value <= high
    if not ok or (low_open and value == low):
        raise ValueError(f"{name} must be a number in {'(' if low_open else '['}{low:g}, {high:g}], got {value!r}")
    return float(value)


def check_autograd(name: str) -> None:
    if torch.is_inference_mode_enabled():
        raise RuntimeError(f"{name} differentiates through the network, which torch.inference_mode() forbids: "
                           "call it under torch.no_grad() or neither")


def guided_prediction(denoise: Callable, schedule: NoiseSchedule, x_t, t, x0_prev, y, hole, weight: float):
    """(x0_hat, eps_hat) with reconstruction guidance of ``weight`` (see the module docstring): one
    evaluation with autograd on, and the gradient with respect to x_t of the known pixels' squared
    error. Only the hole's x0_hat moves; the result is clipped to [-1, 1] like the network's own
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


def ddim_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int,
                 eta: float = 0.0, dc_repeats: int = 1, dc_fixed_z: bool = True, init_from_y: bool = True,
                 known: str = "noised", generator: torch.Generator | None = None,
                 callback: Callable[[dict], None] | None = None, guidance: float = 0.0,
                 travel_length: int = 1) -> torch.Tensor:
    """Fill ``hole`` in ``y`` by DDIM with mask consistency (sampler "replace", the design's; with
    ``guidance`` > 0 also sampler "guidance"). Tensors in model space ([-1, 1]). The step is DDIM's
    (Song et al. 2021, eq. 12 and 16) followed by the design's replacement of the known pixels by the
    observation noised to the new level; with dc_repeats > 1 it is RePaint (Lugmayr et al. 2022,
    Algorithm 1).

    denoise      callable (x_t, t, x0_prev) -> (x0_hat, eps_hat), e.g. a ``Denoiser``
    y            (B, C, H, W) observation; its values inside the hole are ignored
    hole         (B or 1, 1, H, W), 1 = pixel to fill, 0 = known
    steps        number of DDIM steps S <= T (timesteps evenly spaced from T-1 to 0)
    eta          0 = deterministic DDIM, 1 = DDPM-like ancestral noise
    dc_repeats   visits per timestep: after each proposal but the last, re-noise x_s back to x_t
                 (q(x_t | x_s)) and propose again (RePaint's resampling, Lugmayr et al. 2022)
    dc_fixed_z   noise the observation with one fixed draw z for all timesteps (else a fresh draw)
    init_from_y  start from q_sample(y, T_start) rather than from pure noise
    known        "noised": known pixels = observation forward-noised to the current t (MNIST design)
                 "clean": known pixels = the clean observation, also pasted into x0_hat
                 (the architecture guide's algorithm)
    callback     called after every proposal with a dict: x, i, t, t_prev, repeat, x0_pred, nfe
                 (and backward, with guidance)
    guidance     reconstruction-guidance weight w (0 = off, the design's sampler); each evaluation
                 then also takes a backward pass through the network
    travel_length  RePaint's jump length: re-noise after windows of this many steps (1 = every step)
    Returns the final x_0 with the known pixels pasted back from ``y``.
    """
    if known not in KNOWN_MODES:
        raise ValueError(f"known must be one of {KNOWN_MODES}, got {known!r}")
    check_int(dc_repeats, "dc_repeats")
    check_int(travel_length, "travel_length")
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta!r}")
    guidance = check_guidance(guidance)
    if guidance > 0:
        check_autograd("guidance > 0")
    run = SamplerRun(schedule, y, hole, steps, generator, callback, counts_backward=guidance > 0)
    keep, hole = run.keep, run.hole
    z_obs = run.randn() if dc_fixed_z else None

    def observed_at(t: torch.Tensor) -> torch.Tensor:
        """The known pixels at the noise level of timestep t."""
        if known == "clean":
            return y
        return schedule.q_sample(y, t, z_obs if dc_fixed_z else run.randn())

    t0 = run.t(0)
    x = schedule.q_sample(keep * y, t0, run.randn()) if init_from_y else run.randn()
    x = paste_known(x, observed_at(t0), keep, hole)
    x0_prev = None

    def step(x, i, r):
        nonlocal x0_prev
        t, s = run.t(i), run.t(i + 1)
        if guidance > 0:
            x0, eps = guided_prediction(denoise, schedule, x, t, x0_prev, y, hole, guidance)
            run.backward += 1
        else:
            x0, eps = denoise(x, t, x0_prev)
        run.nfe += 1
        x0_prev = x0
        if known == "clean":
            x0 = paste_known(x0, y, keep, hole)  # the guide: keep known regions in the x0 estimate too
        x_s = ddim_step(schedule, x, x0, eps, t, s, eta, run.randn() if eta > 0 else None)
        x_s = paste_known(x_s, observed_at(s), keep, hole)  # mask consistency
        run.report(x_s, i, r, x0)
        return x_s

    x = run.loop(x, step, dc_repeats, travel_length)
    return keep * y + hole * x


def nfe_per_image(steps: int, dc_repeats: int = 1, particles: int = 1) -> int:
    """Network evaluations per image for one sampler run: every sampler evaluates the network once
    per visit and particle (``smc`` holds ``particles`` per image and takes no repeats)."""
    return steps * dc_repeats * particles
