"""Every sampler against the exact answer: a Gaussian data model, whose p(hole | known) is known.

The model (inpaintlib/gaussian.py) is fitted to 10000 MNIST training digits pooled to 14x14, rank 16,
isotropic floor 0.01 (in [-1, 1]); the hole is the centre 6x6 (36 pixels). For N samples of the hole
the errors are measured in units that the sample size explains:
    mean error  e_m = rms over the hole's pixels of (mean_hat - m) / sd   (sd = the exact conditional's);
                exact samples give e_m ~ 1 / sqrt(N) (each term is a standard error); we allow 2 / sqrt(N).
    cov error   e_C = ||C_hat - C||_F / ||C||_F; exact samples give about
                se_C = sqrt((||C||_F^2 + tr(C)^2) / N) / ||C||_F (the Wishart spread); we allow 3 se_C.
The samplers are approximations at finite steps, so their errors (their bias) are printed, and only
generous bounds are asserted: each must be much closer to the exact conditional than the prior is;
the SMC sampler's error must shrink from K = 1 to K = 16 particles.
"""
import pytest
import torch

from inpaintlib import NoiseSchedule, center_hole, inpaint
from inpaintlib.reverse import Denoiser
from inpaintlib.gaussian import GaussianModel
from inpaintlib.mnist.data import mnist_gaussian
from inpaintlib.samplers import SAMPLERS

pytestmark = pytest.mark.slow  # a fit to 10000 digits, then thousands of samples per sampler

N = 1000  # samples per sampler
STEPS = 50
HOLE = center_hole(14, 6)
SETTINGS = {  # name -> options, at 50 steps
    "replace": dict(eta=1.0),
    "replace, RePaint x3": dict(eta=1.0, dc_repeats=3),
    "guidance w=5": dict(guidance=5.0),
    "ddnm": dict(eta=1.0),
    "ddnm, time travel x3": dict(eta=1.0, travel_rounds=3, travel_length=5),
    "pigdm": dict(eta=1.0),
    "diffpir": dict(zeta=0.5),
    "smc K=16": dict(particles=16),
}


@pytest.fixture(scope="module")
def gaussian(mnist_root):
    model = mnist_gaussian(mnist_root, size=14, rank=16, n=10000, floor=0.01)
    schedule = NoiseSchedule(model.config.T, model.config.schedule)
    return model, schedule


def observation(model, seed):
    y = model.sample(1, torch.Generator().manual_seed(seed)) * (1 - HOLE)
    m, C = model.conditional(y, HOLE)
    return y, m, C


def errors(model, samples, m, C):
    h = samples.flatten(1)[:, model.hole_index(HOLE)].double()
    e_m = ((h.mean(0) - m) / C.diag().sqrt()).square().mean().sqrt().item()
    e_c = ((torch.cov(h.T) - C).norm() / C.norm()).item()
    return e_m, e_c


def run(model, schedule, name, y, seed, n=N, steps=STEPS, **kw):
    sampler = SAMPLERS[name.split(" ")[0].rstrip(",")]
    return sampler(Denoiser(model, schedule, clip=False), y.expand(n, -1, -1, -1).contiguous(), HOLE, schedule,
                   steps, generator=torch.Generator().manual_seed(seed), **kw)


def test_the_closed_forms(gaussian):
    model, schedule = gaussian
    S = model.covariance()
    # E[x0 | x_t] by Woodbury equals the dense Gaussian conditioning
    x_t, t = torch.randn(3, 1, 14, 14, generator=torch.Generator().manual_seed(0)), torch.tensor([10, 300, 900])
    dense = []
    for b, a in enumerate(schedule.alpha_bar[t].double()):  # mu + sqrt(a) S (a S + (1 - a) I)^-1 (x_t - sqrt(a) mu)
        r = x_t[b].flatten().double() - a.sqrt() * model.mean.double()
        dense.append(model.mean.double() + a.sqrt() * S @ torch.linalg.solve(a * S + (1 - a) * torch.eye(196, dtype=S.dtype), r))
    dense = torch.stack(dense)
    assert torch.allclose(model.posterior_mean(x_t, t).flatten(1).double(), dense, atol=1e-4)
    # the conditional against the precision-matrix form: C = (P_hh)^-1, m = mu_h - (P_hh)^-1 P_hk (y_k - mu_k)
    y, m, C = observation(model, 0)
    P, h = torch.linalg.inv(S), model.hole_index(HOLE)
    k = torch.ones(196, dtype=torch.bool)
    k[h] = False
    C2 = torch.linalg.inv(P[h][:, h])
    m2 = model.mean.double()[h] - C2 @ P[h][:, k] @ (y.flatten().double()[k] - model.mean.double()[k])
    assert torch.allclose(C, C2, atol=1e-6) and torch.allclose(m, m2, atol=1e-6)
    # every parameterisation gives the same x0_hat through the schedule's conversion
    for pred in ("eps", "x0", "v"):
        other = GaussianModel(model.mean, model.basis, model.lam, model.floor, 14, pred=pred)
        x0, _ = schedule.to_x0_eps(pred, x_t, t, other(x_t, t), clip=False)
        assert torch.allclose(x0, model.posterior_mean(x_t, t), atol=1e-4)


def test_exact_draws_pass_the_tolerances(gaussian):
    """The yardstick: draws from the exact conditional itself are within the stated multipliers."""
    model, _ = gaussian
    y, m, C = observation(model, 0)
    g = torch.Generator().manual_seed(1)
    draws = torch.zeros(N, 196, dtype=torch.float64)
    draws[:, model.hole_index(HOLE)] = (m[:, None] + torch.linalg.cholesky(C) @ torch.randn(
        len(m), N, generator=g, dtype=torch.float64)).T
    e_m, e_c = errors(model, draws, m, C)
    se_c = (((C.norm() ** 2 + C.diag().sum() ** 2) / N).sqrt() / C.norm()).item()
    print(f"\nexact draws: e_m = {e_m:.3f} (2/sqrt(N) = {2 / N ** 0.5:.3f}), e_C = {e_c:.3f} (3 se_C = {3 * se_c:.3f})")
    assert e_m < 2 / N ** 0.5 and e_c < 3 * se_c


def test_every_sampler_against_the_exact_conditional(gaussian):
    model, schedule = gaussian
    y, m, C = observation(model, 0)
    prior = model.sample(N, torch.Generator().manual_seed(2))  # what ignoring y gives
    e_m0, e_c0 = errors(model, prior, m, C)
    print(f"\n{'sampler (50 steps, N=1000; smc 300)':32s} {'mean err (sd)':>14s} {'cov err (rel)':>14s}")
    print(f"{'prior (ignores y)':32s} {e_m0:14.3f} {e_c0:14.3f}")
    measured = {}
    for name, kw in SETTINGS.items():
        n = 300 if name.startswith("smc") else N
        out = run(model, schedule, name, y, 1, n=n, **kw)
        keep = (HOLE == 0).expand_as(out)
        assert torch.equal(out[keep], y.expand_as(out)[keep]) and torch.isfinite(out).all()
        measured[name] = errors(model, out, m, C)
        print(f"{name:32s} {measured[name][0]:14.3f} {measured[name][1]:14.3f}")
    for name, (e_m, e_c) in measured.items():  # generous: each uses the observation, none is exact
        assert e_m < 0.5 * e_m0 and e_c < 0.8 * e_c0, name


def test_smc_error_shrinks_with_more_particles(gaussian):
    """Averaged over two observations: K = 16 particles beat K = 1 (replacement with DDPM's kernel)."""
    model, schedule = gaussian
    err = {1: [], 16: []}
    for seed in (0, 3):
        y, m, C = observation(model, seed)
        for K in err:
            e_m, e_c = errors(model, run(model, schedule, "smc", y, 10 + seed, n=300, particles=K), m, C)
            err[K].append(e_m + e_c)
    one, many = sum(err[1]) / 2, sum(err[16]) / 2
    print(f"\nsmc: mean + cov error {one:.3f} at K = 1, {many:.3f} at K = 16")
    assert many < 0.8 * one


def test_the_gaussian_runs_every_sampler_through_inpaint(gaussian):
    model, _ = gaussian
    images = ((model.sample(2, torch.Generator().manual_seed(4)) + 1) / 2).clamp(0, 1)
    for name in SAMPLERS:
        kw = {"guidance": 5.0} if name == "guidance" else {"particles": 2} if name == "smc" else {}
        out = inpaint(model, images, HOLE, steps=5, seed=0, sampler=name, **kw)
        keep = (HOLE == 0).expand_as(images)
        assert torch.equal(out[keep], images[keep]) and out.shape == images.shape, name
