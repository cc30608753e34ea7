"""The Gaussian-mixture data model: its closed forms against dense algebra, its exact draws against its
exact weights, and every sampler bounded on a posterior with several modes (the particle samplers' error
falling as K grows)."""
import math

import pytest
import torch

from inpaintlib.gaussian_mixture import (FilterTrace, GaussianMixtureModel, histogram_tv, mcgdiff_mixture,
                                        sliced_wasserstein, spread_observations)
from inpaintlib.reverse import Denoiser
from inpaintlib.samplers import SAMPLERS
from inpaintlib.schedule import NoiseSchedule


def small_mixture(seed=0, K=3, D=6, r=2):
    g = torch.Generator().manual_seed(seed)
    means = 2 * torch.randn(K, D, generator=g, dtype=torch.float64)
    bases = torch.linalg.qr(torch.randn(K, D, r, generator=g, dtype=torch.float64)).Q
    lams = 0.5 + torch.rand(K, r, generator=g, dtype=torch.float64)
    floors = 0.05 + 0.1 * torch.rand(K, generator=g, dtype=torch.float64)
    weights = 0.2 + torch.rand(K, generator=g, dtype=torch.float64)
    return GaussianMixtureModel(means, bases, lams, floors, weights, (1, 2, D // 2))


def dense_denoiser(model, x_t, t, schedule):
    """E[x0 | x_t] by dense Gaussian algebra: responsibilities from full covariances, dense conditioning."""
    a = schedule.alpha_bar[t].double()
    x = x_t.flatten().double()
    logs, means = [], []
    for k in range(model.K):
        S, mu = model.covariance(k), model.means[k]
        cov_t = a * S + (1 - a) * torch.eye(len(mu), dtype=torch.float64)
        logs.append(model.log_weights[k] + torch.distributions.MultivariateNormal(a.sqrt() * mu, cov_t).log_prob(x))
        means.append(mu + a.sqrt() * S @ torch.linalg.solve(cov_t, x - a.sqrt() * mu))
    r = torch.softmax(torch.stack(logs), 0)
    return (r[:, None] * torch.stack(means)).sum(0)


def test_the_closed_forms_against_dense_algebra():
    model, schedule = small_mixture(), NoiseSchedule(1000)
    x_t = torch.randn(3, 1, 2, 3, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([5, 400, 950])
    got = model.posterior_mean(x_t, t).double()
    for b in range(3):
        assert torch.allclose(got[b].flatten(), dense_denoiser(model, x_t[b], t[b], schedule), atol=1e-6)
    # the inpainting posterior: each component's conditional and weight by dense formulas
    hole = torch.zeros(1, 1, 2, 3)
    hole[..., 0, :2] = 1
    y = model.sample(1, torch.Generator().manual_seed(2)) * (1 - hole)
    w = model.posterior_weights(y, hole)
    h, k = model.hole_index(hole), (1 - hole).expand(1, 1, 2, 3).flatten().bool()
    logs = []
    for c in range(model.K):
        S, mu = model.covariance(c), model.means[c]
        logs.append(model.log_weights[c] + torch.distributions.MultivariateNormal(mu[k], S[k][:, k]).log_prob(
            y.flatten().double()[k]))
        m, C = model.component_conditional(c, y, hole)
        joint_inv = torch.linalg.inv(S)[h][:, h]  # the conditional's precision is the joint precision's block
        assert torch.allclose(torch.linalg.inv(C), joint_inv, atol=1e-6)
    assert torch.allclose(w, torch.softmax(torch.stack(logs), 0), atol=1e-9)


def test_the_known_pixels_weights_at_a_noise_level():
    """p(c | x_t[k]): with nothing to fill it is the denoiser's responsibilities at x_t (another code path,
    Woodbury on the whole image); at t = None it is ``posterior_weights``; at t = T - 1 nearly the prior."""
    model, schedule = small_mixture(seed=4), NoiseSchedule(1000)
    x0 = model.sample(3, torch.Generator().manual_seed(6))
    no_hole = torch.zeros(1, 1, 2, 3)
    for t in (3, 300, 700):
        x_t = schedule.q_sample(x0, torch.full((3,), t), torch.randn(x0.shape, generator=torch.Generator().manual_seed(t)))
        log_r, _ = model.responsibilities(x_t, torch.full((3,), t))
        assert torch.allclose(model.known_pixel_weights(x_t, no_hole, t), log_r.exp(), atol=1e-9)
    hole = torch.zeros(1, 1, 2, 3)
    hole[..., 1, 1:] = 1
    y = x0 * (1 - hole)
    clean = model.known_pixel_weights(y, hole)
    assert clean.shape == (3, model.K)
    for b in range(3):
        assert torch.allclose(clean[b], model.posterior_weights(y[b], hole), atol=1e-12)
    late = model.known_pixel_weights(schedule.q_sample(y, torch.full((3,), 999), torch.randn(y.shape)), hole, 999)
    assert (late - model.weights).abs().max() < 0.1
    with pytest.raises(ValueError, match="t"):
        model.known_pixel_weights(y, hole, 1000)


def test_spread_observations_are_spread_and_repeatable():
    model = mcgdiff_mixture(8, seed=2)
    hole = torch.ones(1, 1, 1, 8)
    hole[..., 0] = 0
    ys = spread_observations(model, hole, 3, max_weight=0.6, seed=7)
    assert len(ys) == 3 and all(model.posterior_weights(y, hole).max() < 0.6 for y in ys)
    assert all(torch.equal(y[..., 1:], torch.zeros_like(y[..., 1:])) for y in ys)  # the hole zeroed
    assert all(torch.equal(a, b) for a, b in zip(ys, spread_observations(model, hole, 3, max_weight=0.6, seed=7)))
    with pytest.raises(ValueError, match="max_weight"):
        spread_observations(model, hole, 1, max_weight=1e-6, tries=50)


def test_filter_trace_follows_fps_smc_and_refuses_other_samplers():
    """FilterTrace: one row a step; the exact filter starts near the prior's weights and ends at the exact
    posterior's; the particles' share is a distribution's; MCGdiff (its particles' known pixels differ) and
    replacement (no particles) are refused by name."""
    model, schedule = small_mixture(seed=5), NoiseSchedule(1000)
    hole = torch.zeros(1, 1, 2, 3)
    hole[..., 0, :] = 1
    y = model.sample(1, torch.Generator().manual_seed(8)) * (1 - hole)
    trace = FilterTrace(model, hole, range(model.K))
    ys = y.expand(5, -1, -1, -1).contiguous()
    SAMPLERS["smc"](Denoiser(model, schedule, clip=False), ys, hole, schedule, 8, particles=6,
                    generator=torch.Generator().manual_seed(0), callback=trace)
    assert [r["t"] for r in trace.rows][-1] == -1 and len(trace.rows) == 8
    assert torch.allclose(trace.rows[-1]["exact"], model.posterior_weights(y, hole), atol=1e-9)
    assert (trace.rows[0]["exact"] - model.weights).abs().max() < 0.15
    assert all(abs(float(r["particles"].sum()) - 1) < 1e-6 and 0 < r["ess"] <= 6 + 1e-9 for r in trace.rows)
    for name, match in (("mcgdiff", "share their known pixels"), ("replace", "particle sampler")):
        options = {"particles": 4} if name == "mcgdiff" else {}
        with pytest.raises(ValueError, match=match):
            SAMPLERS[name](Denoiser(model, schedule, clip=False), ys, hole, schedule, 4,
                           generator=torch.Generator().manual_seed(0), callback=FilterTrace(model, hole, [0]), **options)


def test_exact_draws_follow_the_exact_weights_and_keep_the_known_pixels():
    model = mcgdiff_mixture(8, seed=3)
    hole = torch.ones(1, 1, 1, 8)
    hole[..., 0] = 0
    y = model.sample(1, torch.Generator().manual_seed(4)) * (1 - hole)
    w = model.posterior_weights(y, hole)
    assert (w > 0.05).sum() >= 2  # one coordinate observed: several modes remain
    draws, comps = model.exact_draws(y, hole, 4000, torch.Generator().manual_seed(5), return_components=True)
    assert torch.equal(draws[..., 0], y[..., 0].expand(4000, 1, 1))
    assert histogram_tv(comps, w) < 0.03 and histogram_tv(model.assign(draws), w) < 0.03
    # a component's draws have its conditional mean and unit variance in the hole
    c = int(w.argmax())
    m, C = model.component_conditional(c, y, hole)
    mine = draws.flatten(1)[comps == c][:, 1:].double()
    assert torch.allclose(mine.mean(0), m, atol=0.1) and torch.allclose(mine.var(0), C.diag(), atol=0.15)


def test_sliced_wasserstein_separates_and_matches():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2000, 5, generator=g), torch.randn(2000, 5, generator=g)
    assert sliced_wasserstein(a, b) < 0.1 < sliced_wasserstein(a, b + 1.0)
    with pytest.raises(ValueError, match="same size"):
        sliced_wasserstein(a, b[:10])


# every sampler at its defaults on a 25-mode posterior; exact draws' TV is about 0.02 here
BOUNDS = {"replace": 0.95, "guidance": 0.95, "ddnm": 0.95, "pigdm": 0.95, "diffpir": 0.95, "smc": 0.35,
          "mcgdiff": 0.15, "tds": 0.15}


@pytest.fixture(scope="module")
def problem():
    model = mcgdiff_mixture(8, seed=1)
    hole = torch.ones(1, 1, 1, 8)
    hole[..., 1] = 0  # one coordinate observed
    y = model.sample(1, torch.Generator().manual_seed(11)) * (1 - hole)
    return model, NoiseSchedule(1000), hole, y, model.posterior_weights(y, hole)


def run(problem, name, n=300, steps=40, seed=0, **kw):
    model, schedule, hole, y, _ = problem
    return SAMPLERS[name](Denoiser(model, schedule, clip=False), y.expand(n, -1, -1, -1).contiguous(), hole, schedule,
                          steps, generator=torch.Generator().manual_seed(seed), **kw)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BOUNDS))
def test_every_sampler_is_bounded_on_the_mixture(problem, name):
    model, _, hole, y, w = problem
    out = run(problem, name, **({"guidance": 1.0} if name == "guidance" else {}))
    assert torch.equal(out[..., 1], y[..., 1].expand(len(out), 1, 1))
    assert histogram_tv(model.assign(out), w) < BOUNDS[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smc", "mcgdiff", "tds"])
def test_particle_samplers_error_falls_from_one_to_sixteen_particles(problem, name):
    model, _, hole, y, w = problem
    tv = {K: histogram_tv(model.assign(run(problem, name, particles=K, seed=K)), w) for K in (1, 16)}
    assert tv[16] < tv[1] - 0.1, tv


def test_mcgdiff_starts_from_its_first_target():
    """MCGdiff's first target is p_T g_T (p_T = N(0, I), g_T = N(sqrt(abar_T) y, v_T) on the known pixels): the
    particles' known pixels at the first evaluation are drawn from that product, of variance v_T / (1 + v_T)
    (about 1/2), and the hole's from N(0, I), with equal weights."""
    K, D = 64, 2000
    y, hole = torch.randn(1, 1, 1, D), torch.zeros(1, 1, 1, D)
    hole[..., :500] = 1
    schedule, first = NoiseSchedule(1000), []

    def denoise(x_t, t, x0_prev=None):
        if not first:
            first.append(x_t.clone())
        return torch.zeros_like(x_t), x_t / (1 - schedule.abar(t)).sqrt()

    SAMPLERS["mcgdiff"](denoise, y, hole, schedule, 5, particles=K, generator=torch.Generator().manual_seed(0))
    a = float(schedule.abar(torch.tensor([999])))
    v = 1 - (1 - 1e-4) * a
    known, free = first[0][..., 500:], first[0][..., :500]
    assert known.var().item() == pytest.approx(v / (1 + v), rel=0.03)
    assert free.var().item() == pytest.approx(1.0, rel=0.03)
    torch.testing.assert_close(known.mean(0), a ** 0.5 * y[..., 500:][0] / (1 + v), atol=0.4, rtol=0)


def test_mcgdiff_mixture_protocol():
    model = mcgdiff_mixture(80, seed=0)
    assert model.K == 25 and model.shape == (1, 1, 80) and math.isclose(float(model.weights.sum()), 1.0)
    assert torch.equal(model.means[8, :4], torch.tensor([-8.0, 8.0, -8.0, 8.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="d must be even"):
        mcgdiff_mixture(7)
