"""The ladder of samplers (inpaintlib/samplers.py): known pixels, seeds, NFE, the shipped model, bad input."""
import re

import pytest
import torch

import inpaintlib
from inpaintlib import NoiseSchedule, center_hole, ddim_inpaint, inpaint
from inpaintlib.reverse import nfe_per_image
from inpaintlib.samplers import SAMPLERS, effective_sample_size, systematic_resample

HOLE = center_hole(28, 12)
# each sampler at a few steps, with its own options where it has some
SETTINGS = {
    "replace": dict(dc_repeats=2, eta=0.5),
    "guidance": dict(guidance=10.0, dc_repeats=2),
    "ddnm": dict(eta=0.85, travel_rounds=2, travel_length=2),
    "pigdm": dict(eta=0.5),
    "diffpir": dict(zeta=0.5, sigma_y=0.05),
    "smc": dict(particles=3),
    "mcgdiff": dict(particles=3),
    "tds": dict(particles=3),
}
STEPS = 4


def expected_counts(name, kw, steps=STEPS):
    """(nfe, backward) per image, as the samplers' docstrings give them."""
    nfe = nfe_per_image(steps, kw.get("dc_repeats", kw.get("travel_rounds", 1)), kw.get("particles", 1))
    return nfe, (nfe if name in ("guidance", "pigdm", "tds") else None)


@pytest.fixture(scope="module")
def shipped():
    model = inpaintlib.load_model(inpaintlib.pretrained("mnist"))
    images, _ = inpaintlib.load_test_images("data", n=4)
    return model, images


def test_every_sampler_is_registered_and_documented():
    assert set(SAMPLERS) == set(SETTINGS) == {"replace", "guidance", "ddnm", "pigdm", "diffpir", "smc", "mcgdiff", "tds"}
    for name, func in SAMPLERS.items():
        doc = func.__doc__  # the paper (authors and year) and where in it the step is
        assert re.search(r"et al\. 20\d\d|& \w+ 20\d\d", doc) and re.search(r"eq\. \d|Algorithm \d|Sec\. \d", doc), name


@pytest.mark.parametrize("name", list(SETTINGS))
def test_shipped_model_known_pixels_seed_and_nfe(shipped, name):
    model, images = shipped
    kw = SETTINGS[name]
    frames = []
    a = inpaint(model, images, HOLE, steps=STEPS, seed=3, sampler=name, callback=frames.append, **kw)
    b = inpaint(model, images, HOLE, steps=STEPS, seed=3, sampler=name, **kw)
    c = inpaint(model, images, HOLE, steps=STEPS, seed=4, sampler=name, **kw)
    keep = HOLE.expand_as(images) == 0
    assert torch.equal(a[keep], images[keep])  # the known pixels, bit for bit
    assert a.shape == images.shape and a.min() >= 0 and a.max() <= 1 and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)  # a seed fixes the run
    assert not torch.allclose(a[~keep], images[~keep])  # the hole was filled
    nfe, backward = expected_counts(name, kw)
    assert frames[-1]["nfe"] == nfe and frames[-1].get("backward") == backward
    assert frames[-1]["t_prev"] == -1 and {"x", "i", "t", "x0_pred", "repeat"} <= set(frames[-1])
    assert frames[-1]["x"].shape == images.shape
    assert all(x["nfe"] <= y["nfe"] for x, y in zip(frames, frames[1:]))


def test_default_and_named_replace_and_guidance_are_the_existing_sampler(shipped):
    model, images = shipped
    default = inpaint(model, images, HOLE, steps=3, dc_repeats=2, seed=0)
    assert torch.equal(default, inpaint(model, images, HOLE, steps=3, dc_repeats=2, seed=0, sampler="replace"))
    guided = inpaint(model, images, HOLE, "guidance", steps=3, seed=0, guidance=5.0)
    assert not torch.equal(guided, default)
    with pytest.raises(ValueError, match="sampler='replace' has no option 'guidance'"):
        inpaint(model, images, HOLE, steps=3, seed=0, guidance=5.0)  # one spelling: sampler="guidance"


def test_time_travel_visits_windows_repeatedly(tiny_net, sparse_digits):
    net, x = tiny_net(), sparse_digits(2)
    frames = []
    inpaint(net, x, HOLE, steps=5, seed=0, sampler="ddnm", travel_rounds=2, travel_length=2, callback=frames.append)
    # windows [0, 1], [2, 3], [4], each run twice, re-noised from its end back to its start in between
    assert [f["i"] for f in frames] == [0, 1, 0, 1, 2, 3, 2, 3, 4, 4]
    assert [f["repeat"] for f in frames] == [0, 0, 1, 1, 0, 0, 1, 1, 0, 1]
    assert frames[-1]["nfe"] == 10 == nfe_per_image(5, 2)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_an_oracle_denoiser_lands_on_the_image(name, sparse_digits):
    """A denoiser that knows x0 leaves each sampler nothing to correct: the last step returns x0."""
    s = NoiseSchedule(100)
    x0 = sparse_digits(2) * 2 - 1

    def oracle(x_t, t, x0_prev):
        return x0.repeat_interleave(x_t.shape[0] // x0.shape[0], 0), s.eps_from_x0(
            x_t, t, x0.repeat_interleave(x_t.shape[0] // x0.shape[0], 0))

    kw = {k: v for k, v in SETTINGS[name].items() if k != "sigma_y"}
    out = SAMPLERS[name](oracle, x0 * (1 - HOLE), HOLE, s, 6, generator=torch.Generator().manual_seed(0), **kw)
    assert torch.allclose(out, x0, atol=1e-4)


def test_smc_particles_weights_and_a_conditioned_network(tiny_net, sparse_digits):
    net, x = tiny_net(cond="mask", pred="x0"), sparse_digits(2)
    frames = []
    out = inpaint(net, x, HOLE, steps=6, seed=0, sampler="smc", particles=4, callback=frames.append)
    keep = HOLE.expand_as(x) == 0
    assert torch.equal(out[keep], x[keep])
    f = frames[-2]
    assert f["particles"].shape == (2, 4, 1, 28, 28) and f["log_weights"].shape == (2, 4) and f["ess"].shape == (2,)
    assert ((f["ess"] >= 1 - 1e-4) & (f["ess"] <= 4 + 1e-4)).all()
    assert any(bool(g["resampled"].any()) for g in frames)  # weights that differ do get resampled
    assert frames[-1]["nfe"] == 6 * 4


@pytest.mark.parametrize("cond", ["none", "mask"])
def test_smc_on_one_image_matches_that_image_in_a_batch_of_two(cond, tiny_net, sparse_digits):
    """A batch of one (the widget's) gets its y and hole copied per particle, as a larger batch does:
    the one image's particles see the same observation either way."""
    net, x = tiny_net(cond=cond, pred="x0"), sparse_digits(2)
    one = inpaint(net, x[:1], HOLE, steps=5, seed=3, sampler="smc", particles=3)
    assert one.shape == (1, 1, 28, 28)
    keep = HOLE.expand_as(one) == 0
    assert torch.equal(one[keep], x[:1][keep]) and not torch.equal(one, x[:1])
    frames = []
    inpaint(net, x[:1], HOLE.expand(1, 1, 28, 28), steps=5, seed=3, sampler="smc", particles=3, callback=frames.append)
    assert frames[-2]["particles"].shape == (1, 3, 1, 28, 28) and frames[-1]["nfe"] == 15


def test_systematic_resampling_and_ess():
    log_w = torch.log(torch.tensor([[0.5, 0.25, 0.25, 0.0], [0.25, 0.25, 0.25, 0.25]]))
    idx = systematic_resample(log_w, torch.Generator().manual_seed(0))
    assert torch.equal(torch.bincount(idx[0], minlength=4), torch.tensor([2, 1, 1, 0]))  # K w_k copies each
    assert torch.equal(idx[1], torch.arange(4))
    assert torch.allclose(effective_sample_size(log_w), torch.tensor([1 / 0.375, 4.0]))


@pytest.mark.parametrize("kwargs,match", [
    (dict(sampler="nope"), "sampler must be one of 'replace', 'guidance', 'ddnm', 'pigdm', 'diffpir', 'smc', 'mcgdiff', 'tds'"),
    (dict(sampler=None), "sampler must be one of"),
    (dict(sampler="smc", particles=0), "particles must be an int >= 1"),
    (dict(sampler="smc", particles=2.5), "particles must be an int >= 1"),
    (dict(sampler="smc", dc_repeats=2), "sampler='smc' has no option 'dc_repeats'"),
    (dict(sampler="smc", eta=0.0), r"eta must be a number in \(0, 1\]"),
    (dict(sampler="smc", ess_threshold=2.0), r"ess_threshold must be a number in \[0, 1\]"),
    (dict(sampler="ddnm", known="clean"), "sampler='ddnm' has no option 'known'"),
    (dict(sampler="ddnm", guidance=3.0), r"no option 'guidance'.*\('guidance' is an option of sampler 'guidance', 'pigdm'\)"),
    (dict(sampler="ddnm", dc_repeats=2), "its options are eta, travel_rounds, travel_length"),
    (dict(sampler="ddnm", travel_length=0), "travel_length must be an int >= 1"),
    (dict(sampler="ddnm", particles=4), "has no option 'particles'; its options are eta"),
    (dict(sampler="guidance", guidance=0.0), r"guidance must be a finite number > 0"),
    (dict(sampler="pigdm", sigma_y=-1.0), "sigma_y must be"),
    (dict(sampler="diffpir", zeta=1.5), r"zeta must be a number in \[0, 1\]"),
    (dict(sampler="diffpir", lam=0.0), "lam must be"),
    (dict(sampler="diffpir", eta=0.5), "sampler='diffpir' has no option 'eta'"),
    (dict(sampler="tds", twist_var=0.0), "twist_var must be a finite number > 0"),
])
def test_bad_arguments_are_refused(kwargs, match, tiny_net, sparse_digits):
    with pytest.raises(ValueError, match=match):
        inpaint(tiny_net(), sparse_digits(1), HOLE, steps=2, **kwargs)


@pytest.mark.parametrize("steps", [0, 51, 2.0, True])
def test_bad_steps_are_refused(steps, tiny_net, sparse_digits):
    with pytest.raises(ValueError, match=r"steps must be an int in \[1, 50\]"):  # T = 50
        inpaint(tiny_net(), sparse_digits(1), HOLE, steps=steps)


def test_sampler_options_are_each_samplers_own():
    from inpaintlib.samplers import repeat_option, sampler_options

    assert sampler_options("smc") == {"particles": 8, "eta": 1.0, "ess_threshold": 0.5}
    assert sampler_options("guidance")["guidance"] == 1.0 and "guidance" not in sampler_options("replace")
    assert [repeat_option(k) for k in SAMPLERS] == ["dc_repeats", "dc_repeats", "travel_rounds", "travel_rounds",
                                                    "travel_rounds", None, None, None]


def test_pigdm_under_inference_mode_is_a_clear_error(tiny_net, sparse_digits):
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        inpaint(tiny_net(), sparse_digits(1), HOLE, steps=2, sampler="pigdm")


def test_commands_take_the_sampler(tmp_path, mnist_root):
    from inpaintlib import eval_cmd

    ckpt = str(inpaintlib.pretrained("mnist"))
    out = eval_cmd(ckpt=ckpt, n_eval=2, batch_size=2, steps=2, sampler="smc", particles=2, data_root=mnist_root,
                   out_dir=str(tmp_path))
    assert out["sampler"] == "smc" and out["nfe_per_image"] == 4 and out["args"]["options"] == {"particles": 2}
    out = eval_cmd(ckpt=ckpt, n_eval=2, batch_size=2, steps=2, sampler="pigdm", data_root=mnist_root,
                   out_dir=str(tmp_path))
    assert out["nfe_per_image"] == 2 == out["backward_per_image"]
    with pytest.raises(ValueError, match="particles=2 does not apply to sampler='replace'; it is an option of sampler 'smc'"):
        eval_cmd(ckpt=ckpt, n_eval=2, steps=2, particles=2, data_root=mnist_root, out_dir=str(tmp_path))
    out = eval_cmd(ckpt=ckpt, n_eval=2, batch_size=2, steps=2, sampler="ddnm", travel_rounds=2, data_root=mnist_root,
                   out_dir=str(tmp_path))
    assert out["nfe_per_image"] == 4 and out["args"]["options"] == {"travel_rounds": 2}
    with pytest.raises(ValueError, match="dc_repeats=3 does not apply to sampler='ddnm'"):
        eval_cmd(ckpt=ckpt, n_eval=2, steps=2, sampler="ddnm", dc_repeats=3, data_root=mnist_root, out_dir=str(tmp_path))


def test_tds_twist_var_tends_to_the_default_twist_as_it_grows(tiny_net, sparse_digits):
    """tau_t^2 = sigma_y^2 + v (1 - abar) / (abar v + 1 - abar) tends to the paper's sigma_y^2 + (1 - abar) / abar
    as v grows; at a small v the twist is tighter and the particles end elsewhere."""
    net, y = tiny_net(), sparse_digits(2)
    run = lambda **kw: inpaint(net, y, HOLE, steps=4, sampler="tds", particles=3, seed=0, **kw)
    default = run()
    assert torch.allclose(run(twist_var=1e9), default, atol=1e-4)
    assert not torch.allclose(run(twist_var=0.05), default, atol=1e-3)



def test_tds_says_so_when_a_tiny_twist_var_underflows_every_weight(mnist_root):
    """On the digit mixture (160 known pixels) twist_var = 1e-4 drives every weight to zero or NaN: the sampler
    names the cause instead of failing inside torch.multinomial."""
    from conftest import load_script

    bench = load_script("benchmarks/mixture_posterior.py", "mixture_posterior_bench")
    model, hole, (y,) = bench.digit_problems(mnist_root, 1)
    with pytest.raises(FloatingPointError, match=r"sampler='tds'.*twist_var=0.0001 may be too small"):
        bench.run_sampler(model, NoiseSchedule(), "tds", {"particles": 16, "twist_var": 1e-4}, y, hole, 4, 50, 0)


def test_the_digit_mixture_benchmark_keeps_each_observations_class_counts(mnist_root, tmp_path):
    """The digit protocol's file holds the exact weights and every row's class counts, and its TV is the
    distance between those counts and those weights."""
    from conftest import load_script

    from inpaintlib.gaussian_mixture import histogram_tv

    bench = load_script("benchmarks/mixture_posterior.py", "mixture_posterior_bench")
    report = bench.main(["--protocol", "digits", "--problems", "2", "--runs", "6", "--steps", "5", "--rows", "replace",
                         "--data_root", str(mnist_root), "--out", str(tmp_path / "d.json")])
    table, weights = report["results"]["digits"], report["exact_weights"]
    assert len(weights) == 2 and all(abs(sum(w) - 1) < 1e-9 and max(w) < 0.8 for w in weights)
    for name in ("exact draws", "replace"):
        counts = table[name]["class_counts"]
        assert [sum(c) for c in counts] == [6, 6] and all(len(c) == 10 for c in counts)
        for c, w, tv in zip(counts, weights, table[name]["per_problem"]):
            classes = torch.repeat_interleave(torch.arange(10), torch.tensor(c))
            assert histogram_tv(classes, torch.tensor(w)) == pytest.approx(tv)


def test_the_digit_mixture_benchmark_traces_fps_smc_against_the_exact_filter(mnist_root, tmp_path):
    """--trace: one row per step, the exact filter ending at the observation's exact weights, and no other row
    run; a row that is not FPS-SMC's is refused by name."""
    from conftest import load_script

    bench = load_script("benchmarks/mixture_posterior.py", "mixture_posterior_bench")
    report = bench.main(["--protocol", "digits", "--problems", "2", "--runs", "4", "--steps", "6", "--trace", "smc K=4",
                         "--trace_problem", "1", "--data_root", str(mnist_root), "--out", str(tmp_path / "t.json")])
    trace = report["traces"]["smc K=4"]
    assert list(report["results"]["digits"]) == ["exact draws"]
    assert [r["t"] for r in trace["steps"]][-1] == -1 and len(trace["steps"]) == 6
    assert trace["steps"][-1]["exact"] == pytest.approx(trace["exact_weights"])
    assert trace["exact_weights"] == pytest.approx(sorted(report["exact_weights"][1], reverse=True)[:2])
    with pytest.raises(ValueError, match="--trace"):
        bench.main(["--protocol", "digits", "--trace", "tds K=16", "--out", str(tmp_path / "u.json")])

