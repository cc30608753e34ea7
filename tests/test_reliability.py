"""Nothing lost, bad input refused clearly, several processes with torchrun."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inpaintlib import DenoiserUNet, ModelConfig, inpaint, train
from inpaintlib.checkpoint import load_checkpoint

HERE = Path(__file__).parent


def small_run(out, mnist_root, **kw):
    args = dict(epochs=3, batch_size=8, sample_every=2, sample_steps=2, steps=20, warmup_steps=2, train_subset=40,
                base_channels=8, out_dir=str(out), data_root=mnist_root, progress=False, seed=3)
    args.update(kw)
    return args


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
# property-based: random shapes, holes and arguments never fail but with the documented errors

_NET = {}


def tiny_net(cond):
    if cond not in _NET:
        torch.manual_seed(0)
        net = DenoiserUNet(ModelConfig(base_channels=8, num_heads=2, channel_mults=(1, 2), T=20, cond=cond,
                                       self_cond=cond == "mask"))
        for p in net.parameters():
            torch.nn.init.normal_(p, std=0.02)
        _NET[cond] = net.eval()
    return _NET[cond]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.integers(0, 3), hole_batch=st.sampled_from(["1", "B", "other"]), size=st.sampled_from([28, 27, 14]),
       channels=st.sampled_from([1, 3]), rank=st.sampled_from([4, 3]), hole_density=st.floats(0, 1),
       hole_value=st.sampled_from([1.0, 0.5]), lo=st.sampled_from([0.0, -0.1]), steps=st.integers(-1, 22),
       eta=st.sampled_from([0.0, 0.7, 1.5]), repeats=st.integers(0, 2), cond=st.sampled_from(["none", "mask"]),
       init_from_y=st.booleans(), dc_fixed_z=st.booleans(), seed=st.integers(0, 2**31))
def test_inpaint_property(batch, hole_batch, size, channels, rank, hole_density, hole_value, lo, steps, eta, repeats,
                          cond, init_from_y, dc_fixed_z, seed):
    g = torch.Generator().manual_seed(seed)
    images = lo + (1 - lo) * torch.rand(batch, channels, size, size, generator=g)
    if rank == 3:
        images = images[:, 0] if batch else torch.rand(1, size, size)
    hb = {"1": 1, "B": max(batch, 1), "other": batch + 2}[hole_batch]
    hole = (torch.rand(hb, 1, size, size, generator=g) < hole_density).float() * hole_value
    try:
        out = inpaint(tiny_net(cond), images, hole, steps=steps, eta=eta, dc_repeats=repeats, seed=seed,
                      init_from_y=init_from_y, dc_fixed_z=dc_fixed_z)
    except ValueError as err:
        assert any(word in str(err) for word in ("images", "hole", "steps", "eta", "dc_repeats")), str(err)
        return
    keep = (hole == 0).expand_as(images)
    assert torch.equal(out[keep], images[keep])  # known pixels always preserved, bit for bit
    assert out.shape == images.shape and torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
