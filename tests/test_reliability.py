"""Nothing lost, bad input refused clearly, several processes with torchrun."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inpaintlib import center_hole, inpaint, train
from inpaintlib.checkpoint import load_checkpoint

HERE = Path(__file__).parent


def small_run(out, mnist_root, **kw):
    args = dict(epochs=3, batch_size=8, sample_every=2, sample_steps=2, steps=20, warmup_steps=2, train_subset=40,
                base_channels=8, out_dir=str(out), data_root=mnist_root, progress=False, seed=3)
    args.update(kw)
    return args


@pytest.mark.slow  # a subprocess or a script end to end: the full suite runs it
def test_killed_run_resumes_to_the_same_weights(tmp_path, mnist_root):
    """SIGKILL a training process after its first checkpoint; the resumed run ends bitwise equal
    to an uninterrupted one (CPU)."""
    args = small_run(tmp_path / "killed", mnist_root, max_steps=14)
    # bitwise equality on the CPU needs the same thread count in both processes (reduction order)
    code = (f"import torch; torch.set_num_threads({torch.get_num_threads()}); "
            f"from inpaintlib import train; train(**{args!r})")
    proc = subprocess.Popen([sys.executable, "-c", code])
    ckpt = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(ckpt)["step"]  # loadable: written atomically
    assert 2 <= killed_at < 14, "the process finished before it could be killed"
    resumed = train(resume=True, **args)
    straight = train(**small_run(tmp_path / "straight", mnist_root, max_steps=14))
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a["step"] == b["step"] == 14
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert resumed.losses == straight.losses


def test_same_seed_bitwise_identical_training(tmp_path, mnist_root):
    a = train(**small_run(tmp_path / "a", mnist_root, max_steps=3))
    b = train(**small_run(tmp_path / "b", mnist_root, max_steps=3))
    c = train(**small_run(tmp_path / "c", mnist_root, max_steps=3, seed=4))
    sa, sb, sc = (load_checkpoint(r.checkpoint)["model"] for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, mnist_root, monkeypatch):
    train_module = sys.modules["inpaintlib.mnist.recipe"]  # the module (the package's ``train`` is the function)
    real = train_module.diffusion_loss
    calls = {"n": 0}

    def loss_turning_nan(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] >= 5 else loss

    monkeypatch.setattr(train_module, "diffusion_loss", loss_turning_nan)
    with pytest.raises(FloatingPointError, match="optimizer step 5.*step 4"):
        train(**small_run(tmp_path, mnist_root, max_steps=10))
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_output_folder_that_cannot_be_written(tmp_path, mnist_root):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="out_dir"):
        train(**small_run(blocker / "sub", mnist_root, max_steps=1))


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo on Windows is not supported here")
@pytest.mark.slow  # a subprocess or a script end to end: the full suite runs it
def test_torchrun_two_processes_gloo(tmp_path, mnist_root):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "ddp_train_script.py"), str(tmp_path), mnist_root]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / "ranks" / f"rank{i}.pt", weights_only=True) for i in (0, 1))
    for key in ("model", "ema"):
        for name in r0[key]:
            assert torch.equal(r0[key][name], r1[key][name]), (key, name)
    assert r0["losses"] == r1["losses"]  # the logged loss is the mean over ranks
    written = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert written == ["history.csv", "last.pt", "panel_final.png"]  # one checkpoint, from rank 0
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["step"] == 3 and ckpt["world_size"] == 2 and len(ckpt["rng"]["ranks"]) == 2
    assert all(torch.equal(ckpt["model"][k], r0["model"][k]) for k in ckpt["model"])


# ----------------------------------------------------------------------------------------------
# property-based: any valid input keeps the known pixels bit for bit; each invalid one gets its own message

T = 20  # the tiny networks' timesteps: steps may be 1..T
NET = dict(base_channels=8, num_heads=2, channel_mults=(1, 2), T=T)


def net_for(tiny_net, cond):
    return tiny_net(**NET, cond=cond, self_cond=cond == "mask")


@st.composite
def images_and_holes(draw):
    """A valid (images, hole) pair: B = 1 or 2 images (B, 1, 28, 28) in [0, 1], including exact 0s and 1s,
    and a binary hole of batch 1 or B, from empty to full."""
    batch = draw(st.integers(1, 2))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    kind = draw(st.sampled_from(["uniform", "binary", "sparse", "constant"]))
    if kind == "uniform":
        images = torch.rand(batch, 1, 28, 28, generator=g)
    elif kind == "binary":
        images = (torch.rand(batch, 1, 28, 28, generator=g) > 0.5).float()
    elif kind == "sparse":
        images = (torch.rand(batch, 1, 28, 28, generator=g) > 0.7).float() * torch.rand(batch, 1, 28, 28, generator=g)
    else:
        images = torch.full((batch, 1, 28, 28), draw(st.sampled_from([0.0, 1.0, 0.5])))
    hole_batch = draw(st.sampled_from([1, batch]))
    shape = draw(st.sampled_from(["scattered", "box", "empty", "full"]))
    if shape == "scattered":
        hole = (torch.rand(hole_batch, 1, 28, 28, generator=g) < draw(st.floats(0.01, 0.99))).float()
    elif shape == "box":
        hole = torch.zeros(hole_batch, 1, 28, 28)
        for b in range(hole_batch):
            top, left = draw(st.integers(0, 27)), draw(st.integers(0, 27))
            hole[b, :, top:top + draw(st.integers(1, 28)), left:left + draw(st.integers(1, 28))] = 1
    else:
        hole = torch.full((hole_batch, 1, 28, 28), float(shape == "full"))
    return images, hole


# each sampler with valid options (the samplers' own ranges)
repeats = st.integers(1, 2)
SAMPLER_OPTIONS = st.one_of(
    st.tuples(st.just("replace"), st.fixed_dictionaries(
        dict(eta=st.floats(0, 1), dc_repeats=repeats, travel_length=repeats, dc_fixed_z=st.booleans(),
             init_from_y=st.booleans(), known=st.sampled_from(["noised", "clean"])))),
    st.tuples(st.just("guidance"), st.fixed_dictionaries(
        dict(eta=st.floats(0, 1), dc_repeats=repeats, guidance=st.floats(0.1, 50), init_from_y=st.booleans()))),
    st.tuples(st.just("ddnm"), st.fixed_dictionaries(dict(eta=st.floats(0, 1), travel_rounds=repeats,
                                                         travel_length=repeats))),
    st.tuples(st.just("pigdm"), st.fixed_dictionaries(dict(eta=st.floats(0, 1), sigma_y=st.floats(0, 0.5),
                                                          guidance=st.floats(0, 2)))),
    st.tuples(st.just("diffpir"), st.fixed_dictionaries(dict(zeta=st.floats(0, 1), lam=st.floats(0.5, 20),
                                                            sigma_y=st.floats(0, 0.5)))),
    st.tuples(st.just("smc"), st.fixed_dictionaries(dict(particles=st.integers(1, 3), eta=st.floats(0.05, 1),
                                                        ess_threshold=st.floats(0, 1)))),
    st.tuples(st.just("mcgdiff"), st.fixed_dictionaries(dict(particles=st.integers(1, 3), eta=st.floats(0.05, 1)))),
    st.tuples(st.just("tds"), st.fixed_dictionaries(dict(particles=st.integers(1, 3), eta=st.floats(0.05, 1)))),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=images_and_holes(), sampler_options=SAMPLER_OPTIONS, steps=st.integers(1, 4),
       cond=st.sampled_from(["none", "mask"]), seed=st.integers(0, 2**31))
def test_inpaint_property(tiny_net, data, sampler_options, steps, cond, seed):
    """Every valid input is inpainted: the known pixels come back bit for bit, the output is finite, in
    [0, 1] and of the images' shape."""
    images, hole = data
    sampler, options = sampler_options
    net = net_for(tiny_net, cond)
    out = inpaint(net, images, hole, sampler, steps=steps, seed=seed, **options)
    keep = (hole == 0).expand_as(images)
    assert torch.equal(out[keep], images[keep])  # known pixels always preserved, bit for bit
    assert out.shape == images.shape and torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_inpaint_property_steps_up_to_T(tiny_net):
    """The longest valid run (steps = T) at both ends of eta, on the edge values 0 and 1."""
    images = torch.tensor([0.0, 1.0]).repeat_interleave(392).reshape(1, 1, 28, 28)
    hole = center_hole(28, 12)
    for eta in (0.0, 1.0):
        out = inpaint(net_for(tiny_net, "none"), images, hole, steps=T, eta=eta, seed=0)
        assert torch.equal(out[hole.expand_as(out) == 0], images[hole.expand_as(images) == 0])


def image(*shape, value=0.5, dtype=torch.float32):
    return torch.full(shape, value, dtype=dtype)


HOLE = center_hole(28, 12)
# (images, hole, sampler, arguments, the message's fragment): each check of inpaint's, one case each
BAD_INPUTS = {
    "images not a tensor": ([[0.5] * 28] * 28, HOLE, "replace", {}, "images must be a torch.Tensor"),
    "images of rank 3": (image(1, 28, 28), HOLE, "replace", {}, "images must have shape (B, C, H, W) (rank 4)"),
    "no images": (image(0, 1, 28, 28), HOLE, "replace", {}, "images must hold at least one image (B >= 1)"),
    "three channels": (image(2, 3, 28, 28), HOLE, "replace", {}, "images must have 1 channel(s) for this model"),
    "27x27 images": (image(1, 1, 27, 27), center_hole(27, 12), "replace", {}, "images must be 28x28 for this model"),
    "integer images": (image(1, 1, 28, 28, value=1, dtype=torch.uint8), HOLE, "replace", {},
                       "images must be a float tensor in [0, 1]"),
    "NaN in images": (image(1, 1, 28, 28, value=float("nan")), HOLE, "replace", {}, "images must be finite"),
    "images below 0": (image(1, 1, 28, 28, value=-0.1), HOLE, "replace", {}, "images must be in [0, 1]"),
    "images above 1": (image(1, 1, 28, 28, value=1.5), HOLE, "replace", {}, "images must be in [0, 1]"),
    "hole not a tensor": (image(1, 1, 28, 28), HOLE.numpy(), "replace", {}, "hole must be a torch.Tensor"),
    "hole of another batch": (image(2, 1, 28, 28), HOLE.repeat(3, 1, 1, 1), "replace", {},
                              "hole must have shape (2 or 1, 1, H, W)"),
    "hole of two channels": (image(1, 1, 28, 28), HOLE.repeat(1, 2, 1, 1), "replace", {},
                             "hole must have shape (1 or 1, 1, H, W)"),
    "hole of rank 2": (image(1, 1, 28, 28), HOLE[0, 0], "replace", {}, "hole must have shape (1 or 1, 1, H, W)"),
    "hole of another size": (image(1, 1, 28, 28), center_hole(14, 4), "replace", {},
                             "hole size (14, 14) differs from the images' size (28, 28)"),
    "hole not binary": (image(1, 1, 28, 28), HOLE * 0.5, "replace", {}, "hole must be binary"),
    "unknown sampler": (image(1, 1, 28, 28), HOLE, "repaint", {}, "sampler must be one of 'replace'"),
    "steps 0": (image(1, 1, 28, 28), HOLE, "replace", dict(steps=0), f"steps must be an int in [1, {T}], got 0"),
    "steps above T": (image(1, 1, 28, 28), HOLE, "replace", dict(steps=T + 1),
                      f"steps must be an int in [1, {T}], got {T + 1}"),
    "steps not an int": (image(1, 1, 28, 28), HOLE, "replace", dict(steps=2.5), "steps must be an int"),
    "eta above 1": (image(1, 1, 28, 28), HOLE, "replace", dict(eta=1.5), "eta must be a number in [0, 1], got 1.5"),
    "eta below 0": (image(1, 1, 28, 28), HOLE, "ddnm", dict(eta=-0.1), "eta must be a number in [0, 1]"),
    "dc_repeats 0": (image(1, 1, 28, 28), HOLE, "replace", dict(dc_repeats=0), "dc_repeats must be an int >= 1"),
    "travel_length 0": (image(1, 1, 28, 28), HOLE, "replace", dict(travel_length=0),
                        "travel_length must be an int >= 1"),
    "unknown known mode": (image(1, 1, 28, 28), HOLE, "replace", dict(known="exact"), "known must be one of"),
    "guidance given to replace": (image(1, 1, 28, 28), HOLE, "replace", dict(guidance=20.0),
                                  "sampler='replace' has no option 'guidance'"),
    "guidance 0": (image(1, 1, 28, 28), HOLE, "guidance", dict(guidance=0.0), "guidance must be a finite number > 0"),
    "dc_repeats given to ddnm": (image(1, 1, 28, 28), HOLE, "ddnm", dict(dc_repeats=2),
                                 "sampler='ddnm' has no option 'dc_repeats'"),
    "travel_rounds 0": (image(1, 1, 28, 28), HOLE, "pigdm", dict(travel_rounds=0), "travel_rounds must be an int >= 1"),
    "negative sigma_y": (image(1, 1, 28, 28), HOLE, "diffpir", dict(sigma_y=-1.0), "sigma_y must be a finite number"),
    "zeta above 1": (image(1, 1, 28, 28), HOLE, "diffpir", dict(zeta=2.0), "zeta must be a number in [0, 1]"),
    "particles 0": (image(1, 1, 28, 28), HOLE, "smc", dict(particles=0), "particles must be an int >= 1"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_inpaint_refuses_bad_input_with_its_own_message(tiny_net, case):
    images, hole, sampler, kwargs, fragment = BAD_INPUTS[case]
    kwargs = {"steps": 2, **kwargs}
    with pytest.raises(ValueError, match=re.escape(fragment)):
        inpaint(net_for(tiny_net, "none"), images, hole, sampler, seed=0, **kwargs)
