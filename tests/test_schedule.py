import math

import pytest
import torch

from inpaintlib import NoiseSchedule, ddim_timesteps


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("T", [10, 400, 1000])
def test_alpha_bar_strictly_decreasing_in_unit_interval(kind, T):
    s = NoiseSchedule(T, kind)
    assert s.alpha_bar.shape == (T,)
    assert (s.alpha_bar[1:] < s.alpha_bar[:-1]).all()
    assert 0 < s.alpha_bar[-1] and s.alpha_bar[0] < 1
    assert torch.allclose(s.alphas, 1 - s.betas)


def test_linear_betas_endpoints_and_cumprod():
    s = NoiseSchedule(1000, "linear")
    assert s.betas[0].item() == pytest.approx(1e-4)
    assert s.betas[-1].item() == pytest.approx(0.02)
    expected = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    assert torch.allclose(s.alpha_bar.double(), expected, rtol=1e-6)
    # the DDPM value: alpha_bar_T for the linear 1000-step schedule is about 4e-5
    assert s.alpha_bar[-1].item() == pytest.approx(4.036e-5, rel=1e-2)


def test_cosine_matches_closed_form():
    T, sft = 1000, 0.008
    s = NoiseSchedule(T, "cosine")
    f = lambda t: math.cos((t / T + sft) / (1 + sft) * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 250, 500, 900):
        assert s.alpha_bar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-4)


def test_abar_minus_one_is_clean():
    s = NoiseSchedule(100)
    assert s.abar(torch.tensor([-1])).item() == 1.0
    assert s.abar(torch.tensor([0, 99])).flatten().tolist() == pytest.approx([s.alpha_bar[0].item(), s.alpha_bar[-1].item()])


@pytest.mark.parametrize("t", [0, 100, 399])
def test_q_sample_statistics(t):
    s = NoiseSchedule(400)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 1, 2, 2), 0.6)
    noise = torch.randn(x0.shape, generator=g)
    xt = s.q_sample(x0, torch.full((20000,), t), noise)
    a = s.alpha_bar[t].item()
    assert xt.mean().item() == pytest.approx(math.sqrt(a) * 0.6, abs=0.01)
    assert xt.var().item() == pytest.approx(1 - a, rel=0.03, abs=2e-4)


def test_eps_x0_v_round_trips():
    s = NoiseSchedule(400, "cosine")
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(8, 1, 5, 5, generator=g) * 2 - 1
    eps = torch.randn(8, 1, 5, 5, generator=g)
    t = torch.randint(0, 400, (8,), generator=g)
    xt = s.q_sample(x0, t, eps)
    assert torch.allclose(s.x0_from_eps(xt, t, eps), x0, atol=1e-3)
    assert torch.allclose(s.eps_from_x0(xt, t, x0), eps, atol=1e-3)
    v = s.v_from(x0, eps, t)
    assert torch.allclose(s.x0_from_v(xt, t, v), x0, atol=1e-4)
    for pred in ("eps", "x0", "v"):
        out = s.target(pred, x0, eps, t)
        x0_hat, eps_hat = s.to_x0_eps(pred, xt, t, out, clip=False)
        assert torch.allclose(x0_hat, x0, atol=1e-3), pred
        assert torch.allclose(eps_hat, eps, atol=2e-3), pred


def test_renoise_composes_to_q_sample_variance():
    s = NoiseSchedule(100)
    g = torch.Generator().manual_seed(2)
    x0 = torch.zeros(50000, 1, 1, 1)
    xs = s.q_sample(x0, torch.full((50000,), 20), torch.randn(x0.shape, generator=g))
    xt = s.renoise(xs, torch.tensor([20]), torch.tensor([60]), torch.randn(x0.shape, generator=g))
    assert xt.var().item() == pytest.approx(1 - s.alpha_bar[60].item(), rel=0.03)


def test_ddim_timesteps():
    assert ddim_timesteps(400, 400) == list(range(399, -1, -1))
    ts = ddim_timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 999 and ts[-1] == 0 and ts == sorted(set(ts), reverse=True)
    assert ddim_timesteps(10, 1) == [9]
    for bad in (0, 11, 2.5, True):
        with pytest.raises(ValueError, match="steps"):
            ddim_timesteps(10, bad)


@pytest.mark.parametrize("kwargs,match", [({"T": 1}, "steps"), ({"kind": "sigmoid"}, "schedule")])
def test_bad_schedule_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NoiseSchedule(**kwargs)


@pytest.mark.parametrize("c", [0.25, 4.0, 16.0])
def test_snr_scale_multiplies_the_snr_and_stays_variance_preserving(c):
    """NoiseSchedule(snr_scale=c): SNR'_t = c SNR_t at every step, alpha_bar' in (0, 1) and decreasing, and the
    betas and alphas are the ones whose cumulative product is alpha_bar'."""
    plain, shifted = NoiseSchedule(1000, "linear"), NoiseSchedule(1000, "linear", snr_scale=c)
    t = torch.arange(1000)
    torch.testing.assert_close(shifted.snr(t), c * plain.snr(t), rtol=3e-3, atol=0)  # float32 tables near abar = 1
    a = shifted.alpha_bar
    assert ((a > 0) & (a < 1)).all() and (a[1:] < a[:-1]).all()
    torch.testing.assert_close(torch.cumprod(shifted.alphas.double(), 0).float(), a, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(shifted.betas, 1 - shifted.alphas)
    assert "snr_scale=" in repr(shifted) and "snr_scale" not in repr(plain)


@pytest.mark.parametrize("c", [0.25, 16.0])
def test_snr_shift_is_the_process_of_the_scaled_signal(c):
    """The module's notation: q'(x_t | x_0) at snr_scale c is the plain schedule's q(x_t | sqrt(c) x_0) with x_t
    divided by sqrt(1 + (c - 1) alpha_bar_t), for any x_0 and the same noise draw."""
    plain, shifted = NoiseSchedule(1000, "linear"), NoiseSchedule(1000, "linear", snr_scale=c)
    g = torch.Generator().manual_seed(4)
    x0, eps = torch.randn(6, 3, 4, 4, generator=g), torch.randn(6, 3, 4, 4, generator=g)
    t = torch.tensor([0, 20, 250, 500, 800, 999])
    abar = plain.alpha_bar[t].view(-1, 1, 1, 1).double()
    scaled = plain.q_sample(c ** 0.5 * x0, t, eps).double() / (1 + (c - 1) * abar).sqrt()
    torch.testing.assert_close(shifted.q_sample(x0, t, eps).double(), scaled, rtol=1e-4, atol=1e-5)


def test_schedule_of_a_configuration_reads_its_snr_scale():
    from inpaintlib.freeform.model import freeform_config
    from inpaintlib.mnist.model import ModelConfig

    cfg = freeform_config("tiny", snr_scale=9.0)
    torch.testing.assert_close(NoiseSchedule.of(cfg).alpha_bar, NoiseSchedule(cfg.T, cfg.schedule, 9.0).alpha_bar)
    mnist = ModelConfig()
    torch.testing.assert_close(NoiseSchedule.of(mnist).alpha_bar, NoiseSchedule(mnist.T, mnist.schedule).alpha_bar)
    for bad in (0, -1.0, float("nan"), "2"):
        with pytest.raises(ValueError, match="snr_scale"):
            NoiseSchedule(10, snr_scale=bad)
        with pytest.raises(ValueError, match="snr_scale"):
            freeform_config("tiny", snr_scale=bad)
