"""A data model with several modes whose denoiser and inpainting posterior are both closed form: a mixture
of Gaussians, each low rank plus an isotropic floor (the ``GaussianModel`` of ``gaussian.py``, K times).

With x_0 ~ sum_k pi_k N(mu_k, Sigma_k) and x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (DDPM eq. 4),
x_t is itself a mixture, x_t ~ sum_k pi_k N(sqrt(abar_t) mu_k, abar_t Sigma_k + (1 - abar_t) I), and
the ideal denoiser is each component's Gaussian conditioning weighted by its responsibility at x_t:
    E[x_0 | x_t] = sum_k r_k(x_t) E_k[x_0 | x_t],
    r_k(x_t) = pi_k N(x_t; sqrt(abar_t) mu_k, abar_t Sigma_k + (1 - abar_t) I) / sum_j (the same for j)
where E_k is ``GaussianModel.posterior_mean`` (Woodbury: Sigma_k shares its eigenvectors with
abar Sigma_k + (1 - abar) I, so the log-density and the gain are O(D r) per image).

Inpainting is exact too. With known pixels y_k (index set "k") and the hole "h":
    p(component | y) ∝ pi_c N(y_k; mu_c[k], Sigma_c[k, k])
    p(x_h | y, c)    = N(mu_c[h] + Sigma_c[h, k] Sigma_c[k, k]^-1 (y_k - mu_c[k]),
                         Sigma_c[h, h] - Sigma_c[h, k] Sigma_c[k, k]^-1 Sigma_c[k, h])
so the posterior is a mixture with the weights ``posterior_weights`` and the components of
``component_conditional``, and ``exact_draws`` samples it. ``assign`` reads the component a sample
belongs to (its most probable one, p(c | x_0)), so a sampler's histogram of components can be set beside
the exact weights.

``GaussianMixtureModel`` wraps it like a network (``config``, ``forward(x_t, t, x0_prev=None)``
returning its ``pred`` parameterisation), so every sampler runs on it through ``reverse.Denoiser``
(with ``clip=False``: its samples are not bounded to [-1, 1]). Its images are (C, H, W) =
``shape``; ``mcgdiff_mixture`` builds the 25-component benchmark of MCGdiff's paper (Cardoso et al. 2024)
with shape (1, 1, d).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .checks import check_int, check_number
from .gaussian import AnalyticConfig, fit_gaussian_parameters
from .schedule import NoiseSchedule


class GaussianMixtureModel(nn.Module):
    """x_0 ~ sum_k pi_k N(mu_k, U_k diag(lam_k - floor_k) U_k^T + floor_k I) as a denoising "network".

    means (K, D), bases (K, D, r) (r may be 0: isotropic components), lams (K, r), floors (K,),
    weights (K,) (normalised here); ``shape`` (C, H, W) with C H W = D."""

    def __init__(self, means, bases, lams, floors, weights, shape: tuple, T: int = 1000, schedule: str = "linear",
                 pred: str = "eps"):
        super().__init__()
        K, D = means.shape
        if tuple(bases.shape[:2]) != (K, D) or tuple(lams.shape) != (K, bases.shape[2]) or floors.shape != (K,) \
                or weights.shape != (K,) or math.prod(shape) != D:
            raise ValueError(f"means (K, D), bases (K, D, r), lams (K, r), floors (K,), weights (K,) and shape "
                             f"(C, H, W) with C*H*W = D must agree, got {tuple(means.shape)}, {tuple(bases.shape)}, "
                             f"{tuple(lams.shape)}, {tuple(floors.shape)}, {tuple(weights.shape)}, {shape}")
        if not (floors > 0).all() or not (weights >= 0).all() or not weights.sum() > 0:
            raise ValueError("floors must be > 0 and weights >= 0 with a positive sum")
        self.shape = tuple(shape)
        self.config = AnalyticConfig(image_size=shape[-1], channels=shape[0], pred=pred, T=T, schedule=schedule)
        self.means = nn.Parameter(means.double(), requires_grad=False)
        self.bases = nn.Parameter(bases.double(), requires_grad=False)
        self.lams = nn.Parameter(lams.double(), requires_grad=False)
        self.floors = nn.Parameter(floors.double(), requires_grad=False)
        self.log_weights = nn.Parameter((weights.double() / weights.sum()).log(), requires_grad=False)
        self.register_buffer("alpha_bar", NoiseSchedule(T, schedule).alpha_bar.clone().double())

    @property
    def K(self) -> int:
        return self.means.shape[0]

    @property
    def weights(self) -> torch.Tensor:
        return self.log_weights.exp()

    def covariance(self, k: int) -> torch.Tensor:
        """Sigma_k (D, D) in float64."""
        U, lam, f = self.bases[k], self.lams[k], self.floors[k]
        return f * torch.eye(self.means.shape[1], dtype=torch.float64, device=U.device) + (U * (lam - f)) @ U.T

    def _abar(self, t, like: torch.Tensor) -> torch.Tensor:
        return self.alpha_bar[torch.as_tensor(t, device=like.device).long().reshape(-1)].reshape(-1, 1, 1)

    def responsibilities(self, x_t: torch.Tensor, t) -> tuple:
        """(log r (B, K), each component's E_k[x_0 | x_t] (B, K, D)), float64."""
        return self._terms(x_t, self._abar(t, x_t))

    def _terms(self, x_t: torch.Tensor, a: torch.Tensor) -> tuple:
        """``responsibilities`` at abar = a (B, 1, 1); a = 1 is the clean data's density."""
        x = x_t.flatten(1).double()[:, None, :]  # (B, 1, D)
        D = x.shape[-1]
        var_f = a * self.floors[None, :, None] + 1 - a  # (B, K, 1): along the floor directions
        var_u = a * self.lams[None] + 1 - a  # (B, K, r): along each component's principal directions
        r = x - a.sqrt() * self.means[None]  # (B, K, D)
        proj = torch.einsum("bkd,kdr->bkr", r, self.bases)  # (B, K, r)
        maha = (r.square().sum(-1) / var_f[..., 0]) + (proj.square() * (1 / var_u - 1 / var_f)).sum(-1)
        logdet = var_u.log().sum(-1) + (D - self.bases.shape[2]) * var_f[..., 0].log()
        log_r = torch.log_softmax(self.log_weights[None] - 0.5 * (maha + logdet), dim=1)
        # E_k[x_0 | x_t] = mu_k + g(f) r + U diag(g(lam) - g(f)) U^T r,  g(v) = sqrt(a) v / (a v + 1 - a)
        g_f = a.sqrt() * self.floors[None, :, None] / var_f
        g_u = a.sqrt() * self.lams[None] / var_u
        x0_k = self.means[None] + g_f * r + torch.einsum("bkr,kdr->bkd", (g_u - g_f) * proj, self.bases)
        return log_r, x0_k

    def posterior_mean(self, x_t: torch.Tensor, t, chunk: int = 2 ** 22) -> torch.Tensor:
        """E[x_0 | x_t] in closed form (the module docstring), shaped like x_t; computed in chunks of rows
        so that the (rows, K, D) terms stay below ``chunk`` entries."""
        t = torch.as_tensor(t, device=x_t.device).long().reshape(-1).expand(x_t.shape[0])
        rows = max(1, chunk // (self.K * self.means.shape[1]))
        out = []
        for start in range(0, x_t.shape[0], rows):
            log_r, x0_k = self.responsibilities(x_t[start:start + rows], t[start:start + rows])
            out.append((log_r.exp()[..., None] * x0_k).sum(1))
        return torch.cat(out).to(x_t.dtype).view_as(x_t)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, x0_prev=None, **unused) -> torch.Tensor:
        """The ideal network's output in the ``pred`` parameterisation (eps, x0 or v)."""
        x0 = self.posterior_mean(x_t, t)
        a = self._abar(t, x_t).to(x_t.dtype).view(-1, *([1] * (x_t.ndim - 1)))
        eps = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
        pred = self.config.pred
        return eps if pred == "eps" else x0 if pred == "x0" else a.sqrt() * eps - (1 - a).sqrt() * x0

    def _component_draws(self, k: torch.Tensor, generator) -> torch.Tensor:
        """One draw of N(mu_k, Sigma_k) for each entry of k (n,), (n, D) float64."""
        U, lam, f = self.bases[k], self.lams[k], self.floors[k]
        z = torch.randn(len(k), self.means.shape[1], generator=generator, dtype=torch.float64)
        w = torch.randn(len(k), U.shape[2], generator=generator, dtype=torch.float64)
        return self.means[k] + f.sqrt()[:, None] * z + torch.einsum("nr,ndr->nd", w * (lam - f[:, None]).sqrt(), U)

    def sample(self, n: int, generator: torch.Generator | None = None, return_components: bool = False):
        """n draws from the mixture itself, (n, C, H, W) float32 (and their components (n,))."""
        k = torch.multinomial(self.weights.float(), check_int(n, "n"), replacement=True, generator=generator)
        x = self._component_draws(k, generator).float().view(n, *self.shape)
        return (x, k) if return_components else x

    def log_component_posterior(self, x0: torch.Tensor) -> torch.Tensor:
        """log p(c | x_0) for every component c, (B, K) float64: the responsibilities at abar = 1."""
        return self._terms(x0, torch.ones(x0.shape[0], 1, 1, dtype=torch.float64, device=x0.device))[0]

    def assign(self, x0: torch.Tensor) -> torch.Tensor:
        """The most probable component of each sample x_0 (B, ...): argmax_c p(c | x_0), (B,)."""
        return self.log_component_posterior(x0).argmax(1)

    # --- inpainting, exactly ------------------------------------------------------------------

    def hole_index(self, hole: torch.Tensor) -> torch.Tensor:
        """Indices of the hole's entries in a flattened (C, H, W) image (hole broadcast over channels)."""
        full = hole.reshape(1, *hole.shape[-2:]).expand(*self.shape).reshape(-1) > 0.5
        return full.nonzero().squeeze(1).to(self.means.device)

    def _blocks(self, c: int, y: torch.Tensor, h: torch.Tensor):
        k = torch.ones(self.means.shape[1], dtype=torch.bool, device=h.device)
        k[h] = False
        S, mu, yv = self.covariance(c), self.means[c], y.reshape(-1).double().to(self.means.device)
        return S, mu, yv, k

    def posterior_weights(self, y: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """p(component | known pixels of y), (K,) float64, for one image y (C, H, W) or (1, C, H, W)."""
        return self.known_pixel_weights(y.reshape(1, *self.shape), hole)[0]

    def known_pixel_weights(self, x_t: torch.Tensor, hole: torch.Tensor, t: int | None = None) -> torch.Tensor:
        """p(component | known pixels of x_t) for a batch x_t (B, C, H, W), (B, K) float64: the components'
        weights under the mixture's marginal at level t seen on the known pixels alone,
            p(c | x_t[k]) ∝ pi_c N(x_t[k]; sqrt(abar_t) mu_c[k], abar_t Sigma_c[k, k] + (1 - abar_t) I),
        t = None the clean data (abar = 1: ``posterior_weights``). Along a path of noised observations
        y_t = x_t[k] (FPS-SMC's) this is the exact filter's p(c | y_t): what the particles' weighted share of
        each component should be at that step."""
        h = self.hole_index(hole)
        k = torch.ones(self.means.shape[1], dtype=torch.bool, device=h.device)
        k[h] = False
        a = 1.0 if t is None else float(self.alpha_bar[check_int(t, "t", 0, len(self.alpha_bar) - 1)])
        x = x_t.reshape(x_t.shape[0], -1).double().to(self.means.device)[:, k]
        eye = torch.eye(int(k.sum()), dtype=torch.float64, device=h.device)
        logp = []
        for c in range(self.K):
            cov = a * self.covariance(c)[k][:, k] + (1 - a) * eye
            dist = torch.distributions.MultivariateNormal(a ** 0.5 * self.means[c][k], covariance_matrix=cov)
            logp.append(self.log_weights[c] + dist.log_prob(x))
        return torch.softmax(torch.stack(logp, 1), 1)

    def component_conditional(self, c: int, y: torch.Tensor, hole: torch.Tensor):
        """p(x_hole | known pixels of y, component c) = N(m, C): (m (n_h,), C (n_h, n_h)) float64, the
        hole's entries in the order of ``hole_index``."""
        h = self.hole_index(hole)
        S, mu, yv, k = self._blocks(c, y, h)
        solve = torch.linalg.solve(S[k][:, k], torch.cat([S[k][:, h], (yv[k] - mu[k]).unsqueeze(1)], dim=1))
        m = mu[h] + S[h][:, k] @ solve[:, -1]
        C = S[h][:, h] - S[h][:, k] @ solve[:, :-1]
        return m, (C + C.T) / 2

    def exact_draws(self, y: torch.Tensor, hole: torch.Tensor, n: int, generator: torch.Generator | None = None,
                    return_components: bool = False):
        """n exact draws of the inpainting posterior: (n, C, H, W) float32 with y's known pixels (and the
        components they were drawn from (n,))."""
        w = self.posterior_weights(y, hole)
        comps = torch.multinomial(w.float(), check_int(n, "n"), replacement=True, generator=generator)
        h = self.hole_index(hole)
        out = y.reshape(1, -1).double().to(self.means.device).repeat(n, 1)
        for c in comps.unique().tolist():
            rows = (comps == c).nonzero().squeeze(1)
            m, C = self.component_conditional(c, y, hole)
            L = torch.linalg.cholesky(C + 1e-10 * torch.eye(len(m), dtype=C.dtype))
            z = torch.randn(len(rows), len(m), generator=generator, dtype=torch.float64)
            out[rows[:, None], h[None, :]] = m + z @ L.T
        out = out.float().view(n, *self.shape)
        return (out, comps) if return_components else out


class FilterTrace:
    """A sampler callback that sets FPS-SMC's particles, step by step, beside the exact filter of a mixture.

    FPS-SMC's particles share their known pixels, the noised observation y_s of its path, so what their
    weighted set should carry at step s is p(c | y_s) (``known_pixel_weights``). Each call records, for the
    ``classes`` asked for: the particles' weighted share (the weighted mean over an image's particles of
    p(c | x_s), the denoiser's responsibilities; p(c | x_0) after the last step), the exact filter's
    p(c | y_s), both averaged over the images (runs), and the mean effective sample size. ``rows`` holds one
    dict per step: t (the timestep reached, -1 the denoised estimate), particles, exact (tensors
    (len(classes),)), ess."""

    def __init__(self, model: "GaussianMixtureModel", hole: torch.Tensor, classes):
        self.model, self.hole, self.classes, self.rows = model, hole, list(classes), []

    def __call__(self, info: dict) -> None:
        if "particles" not in info or "log_weights" not in info:
            raise ValueError("FilterTrace follows a particle sampler: its callback dict has no 'particles' "
                             "and 'log_weights' (use sampler='smc')")
        s, P = info["t_prev"], info["particles"]  # (B, K, C, H, W)
        B, K = P.shape[:2]
        known = (self.hole.reshape(1, *self.hole.shape[-2:]) < 0.5).expand(P.shape[2:])
        if not torch.equal(P[..., known], P[:, :1][..., known].expand(B, K, -1)):
            raise ValueError("FilterTrace needs particles that share their known pixels (FPS-SMC, sampler='smc')")
        flat = P.reshape(B * K, *P.shape[2:])
        t = None if s < 0 else s
        log_r = (self.model.log_component_posterior(flat) if t is None else
                 self.model.responsibilities(flat, torch.full((B * K,), t))[0])
        w = torch.softmax(info["log_weights"].double(), 1)
        share = (w[..., None] * log_r.exp().view(B, K, -1)).sum(1).mean(0)
        exact = self.model.known_pixel_weights(P[:, 0], self.hole, t).mean(0)
        self.rows.append({"t": s, "particles": share[self.classes], "exact": exact[self.classes],
                          "ess": float(info["ess"].double().mean())})


def mcgdiff_mixture(d: int, seed: int = 0, T: int = 1000, schedule: str = "linear", pred: str = "eps"):
    """The Gaussian-mixture benchmark of MCGdiff's paper (Cardoso et al. 2024, Sec. 4.1): 25 components in
    dimension d (even), means (8i, 8j, 8i, 8j, ...) for i, j in {-2, ..., 2}, identity covariances, and
    weights drawn at random (uniform in [0, 1], normalised; ``seed``). Images have shape (1, 1, d)."""
    d = check_int(d, "d", 2)
    if d % 2:
        raise ValueError(f"d must be even (the means alternate 8i and 8j), got {d}")
    grid = torch.tensor([(8.0 * i, 8.0 * j) for i in range(-2, 3) for j in range(-2, 3)], dtype=torch.float64)
    means = grid.repeat(1, d // 2)  # (25, d)
    weights = torch.rand(25, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return GaussianMixtureModel(means, torch.zeros(25, d, 0, dtype=torch.float64), torch.zeros(25, 0, dtype=torch.float64),
                                torch.ones(25, dtype=torch.float64), weights, (1, 1, d), T=T, schedule=schedule, pred=pred)


def fit_mixture(images: torch.Tensor, labels: torch.Tensor, rank: int = 8, floor: float | None = None,
                T: int = 1000, schedule: str = "linear", pred: str = "eps") -> GaussianMixtureModel:
    """One low-rank Gaussian per label (``gaussian.fit_gaussian_parameters`` on that label's images),
    weighted by the labels' frequencies. images (N, C, H, W) in [0, 1]; the model is in model space."""
    check_number(rank, "rank", 1, images.shape[1] * images.shape[2] * images.shape[3] - 1)
    classes = labels.unique().tolist()
    parts = [fit_gaussian_parameters(images[labels == c], rank, floor) for c in classes]
    means = torch.stack([p[0] for p in parts])
    bases = torch.stack([p[1] for p in parts])
    lams = torch.stack([p[2] for p in parts])
    floors = torch.tensor([p[3] for p in parts], dtype=torch.float64)
    weights = torch.tensor([float((labels == c).sum()) for c in classes], dtype=torch.float64)
    return GaussianMixtureModel(means, bases, lams, floors, weights, tuple(images.shape[1:]), T=T, schedule=schedule,
                                pred=pred)


def spread_observations(model: GaussianMixtureModel, hole: torch.Tensor, n: int, max_weight: float = 0.8,
                        seed: int = 0, tries: int = 100_000) -> list:
    """n observations whose exact posterior over components is spread: draws of the mixture with the hole
    zeroed, kept when their largest ``posterior_weights`` is below ``max_weight`` (the digit protocol of
    ``benchmarks/mixture_posterior.py``). A list of (1, C, H, W) tensors, the same for the same seed."""
    n = check_int(n, "n")
    max_weight = check_number(max_weight, "max_weight", 0.0, 1.0, low_open=True)
    g, out = torch.Generator().manual_seed(seed), []
    for _ in range(tries):
        if len(out) == n:
            break
        y = model.sample(1, g) * (1 - hole)
        if model.posterior_weights(y, hole).max() < max_weight:
            out.append(y)
    if len(out) < n:
        raise ValueError(f"max_weight={max_weight:g}: only {len(out)} of {tries} draws had their largest posterior "
                         f"weight below it, {n} asked for; raise max_weight")
    return out


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 500, seed: int = 0) -> float:
    """The sliced 2-Wasserstein distance between two equal-sized samples (n, ...): the root mean over
    ``projections`` random unit directions of the squared W2 of the 1-D projections (sorted, paired)."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    if a.shape != b.shape:
        raise ValueError(f"a and b must be samples of the same size and dimension, got {tuple(a.shape)}, {tuple(b.shape)}")
    dirs = torch.randn(a.shape[1], projections, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa, pb = (a @ dirs).sort(0).values, (b @ dirs).sort(0).values
    return float((pa - pb).square().mean().sqrt())


def histogram_tv(components: torch.Tensor, weights: torch.Tensor) -> float:
    """Total variation between the histogram of ``components`` (n,) and the probabilities ``weights`` (K,)."""
    hist = torch.bincount(components.reshape(-1), minlength=len(weights)).double() / components.numel()
    return 0.5 * float((hist - weights.double().cpu()).abs().sum())
