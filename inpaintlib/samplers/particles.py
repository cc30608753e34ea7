"""The particle samplers: K chains per image, weighted by how well they explain the known pixels and
resampled, so that their weighted set converges to the model's exact posterior as K grows. FPS-SMC,
MCGdiff and TDS; each a flat function of the signature of ``samplers`` (the package's docstring)."""
from __future__ import annotations

from typing import Callable

import torch

from ..checks import check_int, check_number
from ..reverse import SamplerRun, ddim_sigma, ddim_step, paste_known
from ..schedule import NoiseSchedule

# ----------------------------------------------------------------------------------------------
# sequential Monte Carlo: FPS-SMC


def systematic_resample(log_w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices (B, K) of systematic resampling (Kitagawa 1996) of each row's K normalised weights:
    one uniform u per row, the K points (u + k) / K, each mapped through the weights' CDF."""
    B, K = log_w.shape
    cdf = torch.softmax(log_w, dim=1).cumsum(1)
    cdf[:, -1] = 1.0  # rounding must not let the last point fall past the end
    u = (torch.rand((B, 1), generator=generator, device=log_w.device, dtype=log_w.dtype)
         + torch.arange(K, device=log_w.device, dtype=log_w.dtype)) / K
    return torch.searchsorted(cdf, u).clamp(max=K - 1)


def effective_sample_size(log_w: torch.Tensor) -> torch.Tensor:
    """ESS = 1 / sum_k w_k^2 of each row's normalised weights, (B,)."""
    return 1.0 / torch.softmax(log_w, dim=1).square().sum(1)


def smc_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                particles: int = 8, eta: float = 1.0, ess_threshold: float = 0.5,
                generator: torch.Generator | None = None,
                callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """FPS-SMC (Dou & Song 2024, "Diffusion Posterior Sampling for Linear Inverse Problem Solving: A
    Filtering Perspective", ICLR; the particle filter of their Sec. 3): K = ``particles`` samples per
    image whose weighted set converges to the model's exact posterior p(x_0 | y) as K grows.

    Why FPS-SMC and not TDS (Wu et al. 2023): for a linear observation with Gaussian (here: no)
    noise, FPS's weights and proposals are closed-form Gaussians, so it needs no backward pass
    through the network (NFE = K per step, backward = 0, where TDS takes a backward pass per particle
    and step for its twisting functions), and for inpainting it reduces to the design's replacement
    step plus a reweighting: the SMC is a small, readable change of the sampler the notebooks teach.

    The construction (noiseless inpainting, H = keep): the known pixels of the forward process,
    y_t = H x_t, form their own diffusion, independent of the hole given y_0 = y, so first a path
    y_T, ..., y_0 = y is drawn backwards with the same DDIM kernel the sampler uses,
        y_T = sqrt(abar_T) y + sqrt(1 - abar_T) z,   y_s = DDIM(y_t, x0 = y, eps = (y_t - sqrt(abar_t) y) / sqrt(1 - abar_t)) + sigma z,
    (DDIM eq. 7: its marginals are q(y_t | y) at every t), and then the particles target
    p(x_{T..0} | y_{T..0}) with the model's kernel p(x_s | x_t) = N(mu(x_t), sigma^2 I) (DDIM, eq. 12/16):
      proposal  the hole of x_s from N(mu, sigma^2), the known pixels set to y_s (replacement);
      weight    w *= p(known pixels of x_s = y_s | x_t) = N(y_s; keep mu(x_t), sigma^2 I),
    resampled (systematic) whenever an image's ESS < ``ess_threshold`` * K. The last step (to t = -1,
    sigma = 0) takes x0_hat and is not reweighted. ``eta`` > 0 is required (the weights need the
    kernel's noise); eta = 1 is DDPM's ancestral kernel. The result holds one particle per image,
    drawn by the final weights; all of them are in the callback's dict.

    Particles: rows b*K .. b*K + K-1 of the network's batch are image b's (``Denoiser`` repeats a
    conditioned network's y and hole). Callback extras: ``particles`` (B, K, C, H, W),
    ``log_weights`` (B, K), ``ess`` (B,), ``resampled`` (B,) bool; ``x`` and ``x0_pred`` are each
    image's heaviest particle. NFE per image = steps * particles; no time travel (it would break the
    weights)."""
    K = check_int(particles, "particles")
    eta = check_number(eta, "eta", 0.0, 1.0, low_open=True)
    ess_threshold = check_number(ess_threshold, "ess_threshold", 0.0, 1.0)
    run = SamplerRun(schedule, y, hole, steps, generator, callback)
    B, n = y.shape[0], len(run.timesteps)

    def rep(v):  # one copy per particle, image-major
        return v.repeat_interleave(K, 0) if v.shape[0] == B else v  # a (1, ...) hole broadcasts

    keep, hole_k, y_k = rep(run.keep), rep(run.hole), rep(y)
    y_t = schedule.q_sample(y, run.t(0), run.randn())  # the observation's path starts at q(y_T | y)
    x = paste_known(run.randn(y_k), rep(y_t), keep, hole_k)
    log_w = torch.zeros(B, K, device=y.device, dtype=torch.float32)
    x0_prev = None
    rows = torch.arange(B, device=y.device).unsqueeze(1) * K

    def step(x, i, r):
        nonlocal x0_prev, y_t, log_w
        t, s = run.t(i, B * K), run.t(i + 1, B * K)
        x0, eps = denoise(x, t, x0_prev)
        run.nfe += K
        sigma = ddim_sigma(schedule, t, s, eta)
        a_s = schedule.abar(s)
        mean = a_s.sqrt() * x0 + (1 - a_s - sigma ** 2).clamp(min=0).sqrt() * eps  # mu(x_t), DDIM eq. 12
        # the observation's next point: y_s ~ q(y_s | y_t, y), the same DDIM kernel with x0 = y
        tb, sb = run.t(i, B), run.t(i + 1, B)
        y_s = ddim_step(schedule, y_t, y, schedule.eps_from_x0(y_t, tb, y), tb, sb, eta, run.randn())
        y_t = y_s
        if i + 1 < n:  # w *= N(y_s; keep mu(x_t), sigma^2 I)   (the constant factors cancel per image)
            sq = (keep * (rep(y_s) - mean)).square().flatten(1).sum(1)
            log_w = log_w + (-0.5 * sq / sigma.flatten() ** 2).float().view(B, K)
            x_s = paste_known(mean + sigma * run.randn(mean), rep(y_s), keep, hole_k)
        else:
            x_s = paste_known(mean, y_k, keep, hole_k)
        if i + 1 < n:  # resample the images whose ESS fell below the threshold (no host sync)
            log_w, (x_s, x0), resampled, ess = _gather(log_w, run.generator, ess_threshold, x_s, x0)
        else:  # the last step is not reweighted: the final draw (_one_per_image) uses these weights
            ess, resampled = effective_sample_size(log_w), torch.zeros(B, dtype=torch.bool, device=y.device)
        x0_prev = x0
        if run.callback is not None:
            best = rows.squeeze(1) + log_w.argmax(1)
            run.report(x_s[best], i, r, x0[best], particles=x_s.view(B, K, *x_s.shape[1:]),
                       log_weights=log_w.clone(), ess=ess, resampled=resampled)
        return x_s

    x = run.loop(x, step)
    return run.keep * y + run.hole * _one_per_image(x, log_w, run.generator, "smc")


def _gather(log_w: torch.Tensor, generator, threshold: float, *tensors):
    """Resample (systematic) the rows of every image whose ESS is below ``threshold`` * K: returns
    (log_w with those rows reset to 0, the tensors (B*K, ...) gathered by the new ancestors, the mask of
    resampled images (B,), the ESS (B,))."""
    B, K = log_w.shape
    ess = effective_sample_size(log_w)
    resampled = ess < threshold * K
    idx = torch.where(resampled.unsqueeze(1), systematic_resample(log_w, generator),
                      torch.arange(K, device=log_w.device).expand(B, K))
    flat = (torch.arange(B, device=log_w.device).unsqueeze(1) * K + idx).reshape(-1)
    log_w = torch.where(resampled.unsqueeze(1), torch.zeros_like(log_w), log_w)
    return log_w, [v[flat] for v in tensors], resampled, ess


def _one_per_image(x: torch.Tensor, log_w: torch.Tensor, generator, sampler: str, hint: str = "") -> torch.Tensor:
    """One particle per image, drawn by the final weights: (B*K, ...) -> (B, ...). Weights that became NaN or
    all zero for an image stay so to the end (resampling leaves such a row alone), so one check here, after
    the loop, catches them without a host sync per step."""
    B, K = log_w.shape
    if (torch.isnan(log_w).any(1) | ~torch.isfinite(log_w).any(1)).any():
        raise FloatingPointError(f"sampler={sampler!r}: the particles' weights became NaN or all zero" + hint)
    pick = torch.multinomial(torch.softmax(log_w.float(), 1), 1, generator=generator).squeeze(1)
    return x.view(B, K, *x.shape[1:])[torch.arange(B, device=x.device), pick]


# ----------------------------------------------------------------------------------------------
# MCGdiff: SMC on a path of noised observations, fully adapted on the known pixels


def mcgdiff_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                    particles: int = 16, eta: float = 1.0, kappa: float = 1e-4, generator: torch.Generator | None = None,
                    callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """MCGdiff (Cardoso, Janati, Le Corff & Moulines 2024, "Monte Carlo guided Diffusion for Bayesian
    linear inverse problems", ICLR; its noiseless inpainting form): K = ``particles`` chains per image,
    no backward pass, consistent as K grows.

    The intermediate targets are p_t(x_t) g_t(x_t) with a potential on the known pixels (index set k)
    that follows the observation noised to each level,
        g_t(x_t) = N(x_t[k]; sqrt(abar_t) y[k], v_t I),   v_t = 1 - (1 - kappa) abar_t,
    so that g at the end (abar = 1) is N(x_0[k]; y[k], kappa I): as kappa -> 0, the model's exact
    posterior p(x_0 | y). The first target, p_T g_T with p_T = N(0, I), is drawn exactly: the hole from
    N(0, I), the known pixels from the product N(0, 1) g_T, all weights equal. With the model's kernel
    p(x_s | x_t) = N(mu(x_t), sigma^2 I) (DDIM eq. 12/16) each step is an auxiliary particle filter that is
    fully adapted on the known pixels:
      weight    w(x_t) = N(mu(x_t)[k]; sqrt(abar_s) y[k], (sigma^2 + v_s) I) / g_t(x_t)
                (the predictive likelihood of the next potential, over the current one), then resample
                (multinomial by systematic draws, every step);
      proposal  the hole from N(mu, sigma^2); the known pixels from the product of the kernel and g_s,
                N(K_s sqrt(abar_s) y + (1 - K_s) mu, K_s v_s),   K_s = sigma^2 / (sigma^2 + v_s).
    After the last step the particles carry equal weights; one per image is returned, with y's known
    pixels pasted. ``eta`` > 0 (the kernel's noise carries the proposal): 1 is DDPM's kernel. NFE per
    image = steps * particles, no backward pass. Callback extras as ``smc_inpaint``'s."""
    K = check_int(particles, "particles")
    eta = check_number(eta, "eta", 0.0, 1.0, low_open=True)
    kappa = check_number(kappa, "kappa", 0.0, 1.0, low_open=True)
    run = SamplerRun(schedule, y, hole, steps, generator, callback)
    B = y.shape[0]

    def rep(v):  # one copy per particle, image-major
        return v.repeat_interleave(K, 0) if v.shape[0] == B else v

    keep, hole_k, y_k = rep(run.keep), rep(run.hole), rep(y)
    # the first target p_T g_T, drawn exactly (p_T = N(0, I)): the hole from N(0, I), the known pixels from
    # the product N(0, 1) N(sqrt(abar_T) y, v_T) = N(sqrt(abar_T) y / (1 + v_T), v_T / (1 + v_T)); equal weights
    a_T = schedule.abar(run.t(0, B * K))
    v_T = 1 - (1 - kappa) * a_T
    x = paste_known(run.randn(y_k), a_T.sqrt() * y_k / (1 + v_T) + (v_T / (1 + v_T)).sqrt() * run.randn(y_k),
                    keep, hole_k)
    log_w = torch.zeros(B, K, device=y.device, dtype=torch.float64)
    x0_prev = None

    def log_gauss(x_known, centre, var):  # per particle, up to a constant shared by an image's particles
        return (-0.5 * (keep * (x_known - centre)).square().flatten(1).sum(1) / var.flatten()).double().view(B, K)

    def step(x, i, r):
        nonlocal x0_prev, log_w
        t, s = run.t(i, B * K), run.t(i + 1, B * K)
        x0, eps = denoise(x, t, x0_prev)
        run.nfe += K
        a_t, a_s = schedule.abar(t), schedule.abar(s)
        sigma = ddim_sigma(schedule, t, s, eta)
        mean = a_s.sqrt() * x0 + (1 - a_s - sigma ** 2).clamp(min=0).sqrt() * eps
        v_t, v_s = 1 - (1 - kappa) * a_t, 1 - (1 - kappa) * a_s
        log_w = log_w + log_gauss(mean, a_s.sqrt() * y_k, sigma ** 2 + v_s) - log_gauss(x, a_t.sqrt() * y_k, v_t)
        log_w, (mean, x0), resampled, ess = _gather(log_w, run.generator, 1.0 + 1e-9, mean, x0)  # every step
        gain = sigma ** 2 / (sigma ** 2 + v_s)
        known = gain * a_s.sqrt() * y_k + (1 - gain) * mean + (gain * v_s).sqrt() * run.randn(mean)
        x_s = paste_known(mean + sigma * run.randn(mean), known, keep, hole_k)
        x0_prev = x0
        if run.callback is not None:
            first = torch.arange(B, device=y.device) * K
            run.report(x_s[first], i, r, x0[first], particles=x_s.view(B, K, *x_s.shape[1:]),
                       log_weights=log_w.clone(), ess=ess, resampled=resampled)
        return x_s

    x = run.loop(x, step)
    return run.keep * y + run.hole * _one_per_image(x, log_w, run.generator, 'mcgdiff')


# ----------------------------------------------------------------------------------------------
# TDS: twisted SMC with the gradient of a twisting function


def tds_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                particles: int = 16, eta: float = 1.0, sigma_y: float = 0.05, ess_threshold: float = 0.5,
                twist_var: float | None = None, generator: torch.Generator | None = None,
                callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """TDS (Wu, Trippe, Naesseth, Blei & Cunningham 2023, "Practical and Asymptotically Exact Conditional
    Sampling in Diffusion Models", NeurIPS; Algorithm 1): twisted SMC, K = ``particles`` chains per
    image, one backward pass per particle and step.

    The twisting function approximates p(y | x_t) through the network's denoised estimate,
        p~_t(y | x_t) = N(y[k]; x0_hat(x_t)[k], tau_t^2 I),   tau_t^2 = sigma_y^2 + (1 - abar_t) / abar_t
    (the variance of x_t / sqrt(abar_t) about x_0, plus the observation's; at the end tau^2 = sigma_y^2,
    the likelihood the weights finally correct to). With ``twist_var`` = v the twist takes instead the
    posterior variance of x_0 given x_t under a N(., v I) prior on x_0, as PiGDM does (Song et al. 2023):
        tau_t^2 = sigma_y^2 + v (1 - abar_t) / (abar_t v + 1 - abar_t),
    equal to the default as v grows and never above v, so that at mid t the twist no longer reads the known
    pixels as far noisier than the denoised estimate is. On the digit mixture (``docs/quality.md``) v = 0.1
    takes TDS's TV from 0.29 to 0.20 at 64 particles; much smaller v makes the weights degenerate. Each step:
      proposal  x_s ~ N(mu(x_t) + sigma^2 grad_{x_t} log p~_t(y | x_t), sigma^2 I)  (the kernel, moved up
                the twist's gradient);
      weight    w = p(x_s | x_t) p~_s(y | x_s) / (p~_t(y | x_t) q(x_s | x_t, y)), its p~_s factor applied
                at the next step, where x0_hat(x_s) is computed anyway; resampled (systematic) whenever an
                image's ESS < ``ess_threshold`` * K.
    The last step (sigma = 0) takes x0_hat; the final weights include p~ at t = 0, and one particle per
    image is drawn by them, y's known pixels pasted. ``eta`` > 0 is required. NFE per image = steps *
    particles, and as many backward passes. Callback extras as ``smc_inpaint``'s."""
    from ..reverse import check_autograd

    K = check_int(particles, "particles")
    eta = check_number(eta, "eta", 0.0, 1.0, low_open=True)
    sigma_y = check_number(sigma_y, "sigma_y", 0.0, float("inf"), low_open=True)
    ess_threshold = check_number(ess_threshold, "ess_threshold", 0.0, 1.0)
    if twist_var is not None:
        twist_var = check_number(twist_var, "twist_var", 0.0, float("inf"), low_open=True)
    check_autograd("sampler='tds'")
    run = SamplerRun(schedule, y, hole, steps, generator, callback, counts_backward=True)
    B, n = y.shape[0], len(run.timesteps)

    def rep(v):
        return v.repeat_interleave(K, 0) if v.shape[0] == B else v

    keep, hole_k, y_k = rep(run.keep), rep(run.hole), rep(y)
    x = run.randn(y_k)
    log_w = torch.zeros(B, K, device=y.device, dtype=torch.float64)
    pending = torch.zeros_like(log_w)  # log p(x_t | x_prev) - log q(x_t | x_prev, y) - log p~_prev(y | x_prev)
    x0_prev = None

    def twist(x_t, t):
        """(x0_hat, eps_hat, log p~_t(y | x_t) per particle, its gradient with respect to x_t)."""
        a_t = schedule.abar(t)
        if twist_var is None:
            tau2 = sigma_y ** 2 + (1 - a_t) / a_t
        else:
            tau2 = sigma_y ** 2 + twist_var * (1 - a_t) / (twist_var * a_t + 1 - a_t)
        with torch.enable_grad():
            x_in = x_t.detach().requires_grad_(True)
            x0, eps = denoise(x_in, t, x0_prev)
            log_p = -0.5 * (keep * (y_k - x0)).square().flatten(1).sum(1) / tau2.flatten()
            grad = torch.autograd.grad(log_p.sum(), x_in, allow_unused=True)[0] if log_p.requires_grad else None
        return x0.detach(), eps.detach(), log_p.detach().double().view(B, K), \
            torch.zeros_like(x_t) if grad is None else grad

    def step(x, i, r):
        nonlocal x0_prev, log_w, pending
        t, s = run.t(i, B * K), run.t(i + 1, B * K)
        x0, eps, log_p, grad = twist(x, t)
        run.nfe += K
        run.backward += K
        log_w = log_w + pending + log_p
        log_w, (x, x0, eps, grad, log_p_rows), resampled, ess = _gather(
            log_w, run.generator, ess_threshold, x, x0, eps, grad, log_p.reshape(-1))
        a_s = schedule.abar(s)
        sigma = ddim_sigma(schedule, t, s, eta)
        mean = a_s.sqrt() * x0 + (1 - a_s - sigma ** 2).clamp(min=0).sqrt() * eps
        if i + 1 < n:
            shift = sigma ** 2 * grad
            x_s = mean + shift + sigma * run.randn(mean)
            # log p(x_s | x_t) - log q(x_s | x_t, y): two Gaussians of variance sigma^2, centred at mean, mean + shift
            ratio = ((x_s - mean - shift).square() - (x_s - mean).square()).flatten(1).sum(1) / (2 * sigma.flatten() ** 2)
            pending = ratio.double().view(B, K) - log_p_rows.view(B, K)
        else:  # the last step: x0_hat, weighted by p~ at t = 0 (tau = sigma_y) over the twist it replaces
            x_s = mean
            final = -0.5 * (keep * (y_k - x_s)).square().flatten(1).sum(1) / sigma_y ** 2
            log_w = log_w + final.double().view(B, K) - log_p_rows.view(B, K)
        x0_prev = x0
        if run.callback is not None:
            first = torch.arange(B, device=y.device) * K
            run.report(x_s[first], i, r, x0[first], particles=x_s.view(B, K, *x_s.shape[1:]),
                       log_weights=log_w.clone(), ess=ess, resampled=resampled)
        return x_s

    x = run.loop(x, step)
    hint = "" if twist_var is None else f"; twist_var={twist_var:g} may be too small"
    return run.keep * y + run.hole * _one_per_image(x, log_w, run.generator, "tds", hint)
