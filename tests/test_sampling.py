import pytest
import torch

from inpaintlib import NoiseSchedule, center_hole, ddim_inpaint, guidance_inpaint, inpaint
from inpaintlib.reverse import guided_prediction, nfe_per_image


HOLES = {
    "centre": center_hole(28, 12),
    "left_half": torch.cat([torch.ones(1, 1, 28, 14), torch.zeros(1, 1, 28, 14)], dim=3),
    "scattered": (torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(5)) > 0.5).float(),
    "single_pixel": torch.zeros(1, 1, 28, 28).index_put_((torch.tensor([0]),) * 2 + (torch.tensor([3]), torch.tensor([20])), torch.tensor(1.0)),
}


@pytest.mark.parametrize("hole_name", list(HOLES))
@pytest.mark.parametrize("kw", [dict(), dict(self_cond=True, coord_conv=True, pred="v"), dict(cond="mask", pred="x0")])
def test_known_pixels_bit_exact_and_range(hole_name, kw, tiny_net, sparse_digits):
    net, x, hole = tiny_net(**kw), sparse_digits(), HOLES[hole_name]
    out = inpaint(net, x, hole, steps=5, dc_repeats=2, eta=0.5, seed=1)
    keep = hole.expand_as(x) == 0
    assert torch.equal(out[keep], x[keep])
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out[~keep], x[~keep])  # the hole was actually filled


def test_per_image_holes_and_batch_of_one_hole(tiny_net, sparse_digits):
    net, x = tiny_net(), sparse_digits(2)
    holes = torch.stack([HOLES["centre"][0], HOLES["left_half"][0]])
    out = inpaint(net, x, holes, steps=3, seed=0)
    assert torch.equal(out[0][holes[0] == 0], x[0][holes[0] == 0])
    assert torch.equal(out[1][holes[1] == 0], x[1][holes[1] == 0])


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_same_seed_same_output(eta, tiny_net, sparse_digits):
    net, x, hole = tiny_net(self_cond=True), sparse_digits(), HOLES["centre"]
    a = inpaint(net, x, hole, steps=6, eta=eta, dc_repeats=2, dc_fixed_z=False, seed=7)
    b = inpaint(net, x, hole, steps=6, eta=eta, dc_repeats=2, dc_fixed_z=False, seed=7)
    c = inpaint(net, x, hole, steps=6, eta=eta, dc_repeats=2, dc_fixed_z=False, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_oracle_denoiser_recovers_the_image_exactly(sparse_digits):
    """With a denoiser that knows x0, deterministic DDIM must land on x0: checks eq. 12's algebra."""
    s = NoiseSchedule(100)
    x0 = sparse_digits(2) * 2 - 1
    hole = HOLES["centre"]

    def oracle(x_t, t, x0_prev):
        return x0, s.eps_from_x0(x_t, t, x0)

    for steps, repeats in ((1, 1), (10, 1), (7, 3)):
        out = ddim_inpaint(oracle, x0 * (1 - hole), hole, s, steps, eta=0.0, dc_repeats=repeats,
                           generator=torch.Generator().manual_seed(0))
        assert torch.allclose(out, x0, atol=1e-4), (steps, repeats)


def test_mask_consistency_uses_the_noised_observation_with_one_fixed_z(sparse_digits):
    s = NoiseSchedule(50)
    y = sparse_digits(1) * 2 - 1
    hole = HOLES["centre"]
    frames = []
    ddim_inpaint(lambda x, t, p: (torch.zeros_like(x), torch.zeros_like(x)), y, hole, s, 10,
                 generator=torch.Generator().manual_seed(0), callback=frames.append)
    keep = (hole == 0).expand_as(y)
    zs = []
    for f in frames[:-1]:  # x_s at the known pixels = sqrt(abar_s) y + sqrt(1 - abar_s) z
        a = s.abar(torch.tensor([f["t_prev"]]))
        zs.append(((f["x"] - a.sqrt() * y) / (1 - a).sqrt())[keep])
    for z in zs[1:]:
        assert torch.allclose(z, zs[0], atol=1e-4)
    assert torch.equal(frames[-1]["x"][keep], y[keep])  # at t = -1 the known pixels are y itself


def test_callback_and_nfe(tiny_net, sparse_digits):
    net, x, hole = tiny_net(), sparse_digits(2), HOLES["centre"]
    frames = []
    inpaint(net, x, hole, steps=4, dc_repeats=3, seed=0, callback=frames.append)
    assert len(frames) == 12 == nfe_per_image(4, 3)
    assert {"x", "i", "t", "x0_pred", "nfe"} <= set(frames[0])
    assert [f["i"] for f in frames] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert [f["repeat"] for f in frames[:3]] == [0, 1, 2]
    assert frames[-1]["nfe"] == 12 and frames[-1]["t_prev"] == -1
    assert frames[0]["x"].shape == x.shape


def test_empty_hole_returns_input_unchanged(tiny_net, sparse_digits):
    net, x = tiny_net(), sparse_digits(2)
    out = inpaint(net, x, torch.zeros(1, 1, 28, 28), steps=3)
    assert torch.equal(out, x) and out is not x


@pytest.mark.parametrize("images,hole,kwargs,match", [
    (torch.rand(1, 28, 28), center_hole(), {}, "rank 4"),
    (torch.rand(1, 3, 28, 28), center_hole(), {}, "channel"),
    (torch.rand(1, 1, 32, 32), torch.zeros(1, 1, 32, 32), {}, "28x28"),
    (torch.rand(1, 1, 28, 28) * 2, center_hole(), {}, r"\[0, 1\]"),
    (torch.full((1, 1, 28, 28), float("nan")), center_hole(), {}, "finite"),
    (torch.rand(1, 1, 28, 28), center_hole() * 0.5, {}, "binary"),
    (torch.rand(2, 1, 28, 28), torch.zeros(3, 1, 28, 28), {}, "hole must have shape"),
    (torch.rand(1, 1, 28, 28), center_hole(), {"steps": 0}, "steps"),
    (torch.rand(1, 1, 28, 28), center_hole(), {"steps": 51}, "steps"),
    (torch.rand(1, 1, 28, 28), center_hole(), {"dc_repeats": 0}, "dc_repeats"),
    (torch.rand(1, 1, 28, 28), center_hole(), {"eta": 2.0}, "eta"),
    (torch.rand(1, 1, 28, 28), center_hole(), {"sampler": "guidance", "guidance": -1.0}, "guidance must be"),
    (torch.rand(1, 1, 28, 28), center_hole(), {"sampler": "guidance", "guidance": float("nan")}, "guidance must be"),
    (torch.rand(1, 1, 28, 28), center_hole(), {"guidance": 5.0}, "sampler='replace' has no option 'guidance'"),
])
def test_bad_inputs_are_refused(images, hole, kwargs, match, tiny_net):
    with pytest.raises(ValueError, match=match):
        inpaint(tiny_net(), images, hole, **kwargs)


def test_reconstruction_guidance_follows_the_equation():
    """A denoiser that blurs (x0_hat = c * K x_t, K a fixed 3x3 box blur) has a gradient we can write
    by hand: grad_x ||keep (y - c K x)||^2 = -2 c K^T (keep (y - c K x)). The guided x0 must move
    only in the hole, by (w sqrt(abar_t) / 2) times that gradient, and eps must match it."""
    s = NoiseSchedule(100)
    kernel = torch.full((1, 1, 3, 3), 1 / 9)
    blur = lambda x: torch.nn.functional.conv2d(x, kernel, padding=1)  # noqa: E731
    c = 0.7

    def denoise(x_t, t, x0_prev):
        x0 = c * blur(x_t)
        return x0, s.eps_from_x0(x_t, t, x0)

    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(2, 1, 28, 28, generator=g) * 0.3
    y = torch.rand(2, 1, 28, 28, generator=g) - 0.5
    hole = HOLES["centre"].expand(2, 1, 28, 28)
    t, w = torch.tensor([40, 40]), 3.0
    x0_g, eps_g = guided_prediction(denoise, s, x_t, t, None, y, hole, w)

    a = s.abar(t)
    residual = (1 - hole) * (y - c * blur(x_t))
    grad = -2 * c * torch.nn.functional.conv_transpose2d(residual, kernel, padding=1)
    expected = (c * blur(x_t) - (w * a.sqrt() / 2) * hole * grad).clamp(-1, 1)
    assert torch.allclose(x0_g, expected, atol=1e-6)
    assert torch.equal(x0_g[hole == 0], (c * blur(x_t))[hole == 0].clamp(-1, 1))  # known pixels: untouched
    assert not torch.allclose(x0_g[hole == 1], (c * blur(x_t))[hole == 1])  # the hole did move
    assert torch.allclose(a.sqrt() * x0_g + (1 - a).sqrt() * eps_g, x_t, atol=1e-5)  # same DDIM line


def test_guided_sampling_oracle_exact_known_pixels_and_no_weight_gradients(tiny_net, sparse_digits):
    """An oracle denoiser explains the known pixels perfectly, so guidance must not push it off x0;
    a network sampled with guidance (inside inpaint's no_grad) keeps the known pixels bit for bit,
    fills the hole differently from the unguided loop, and leaves no gradient on its weights."""
    s = NoiseSchedule(100)
    x0 = sparse_digits(2) * 2 - 1
    hole = HOLES["centre"]

    def oracle(x_t, t, x0_prev):
        return x0, s.eps_from_x0(x_t, t, x0)

    out = guidance_inpaint(oracle, x0 * (1 - hole), hole, s, 10, dc_repeats=2, guidance=5.0,
                           generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, x0, atol=1e-4)

    for kw in (dict(self_cond=True, coord_conv=True, pred="v"), dict(cond="mask", pred="x0")):
        net, x = tiny_net(**kw), sparse_digits()
        guided = inpaint(net, x, hole, "guidance", steps=4, dc_repeats=2, seed=1, guidance=10.0)
        plain = inpaint(net, x, hole, steps=4, dc_repeats=2, seed=1)
        keep = hole.expand_as(x) == 0
        assert torch.equal(guided[keep], x[keep])
        assert not torch.allclose(guided[~keep], plain[~keep])
        assert all(p.grad is None for p in net.parameters())


def test_guidance_under_inference_mode_is_a_clear_error_and_fine_under_no_grad(tiny_net, sparse_digits):
    net, x, hole = tiny_net(), sparse_digits(1), HOLES["centre"]
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        inpaint(net, x, hole, "guidance", steps=2, guidance=1.0)
    with torch.no_grad():
        assert inpaint(net, x, hole, "guidance", steps=2, guidance=1.0).shape == x.shape
