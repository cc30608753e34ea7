"""train_inpainting: killed and resumed to the same weights, several processes with torchrun."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from inpaintlib.checkpoint import load_checkpoint
from inpaintlib.freeform import train_inpainting
from inpaintlib.trainer import EpochBatches
from inpaintlib.freeform import make_patterns

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def patterns(tmp_path_factory):
    root = tmp_path_factory.mktemp("patterns")
    make_patterns(root, 20, image_size=32, seed=1)
    return root


def run_args(data, path, **kw):
    # 20 images in batches of 4: 5 steps per epoch, so the checkpoints every 3 steps fall mid-epoch
    args = dict(num_epochs=3, batch_size=4, max_steps=12, image_size=32, preset="tiny", device="cpu", seed=5,
                save_every_n_steps=3, warmup_steps=2, progress=False)
    args.update(kw)
    return (str(data), str(path)), args


@pytest.mark.slow  # a subprocess or a script end to end: the full suite runs it
def test_killed_train_inpainting_resumes_to_the_same_weights(tmp_path, patterns):
    """SIGKILL train_inpainting after its first mid-epoch checkpoint; the resumed run ends bitwise
    equal to an uninterrupted one (CPU, same thread count)."""
    (data, path), args = run_args(patterns, tmp_path / "killed.pt")
    code = (f"import torch; torch.set_num_threads({torch.get_num_threads()}); "
            f"from inpaintlib import train_inpainting; train_inpainting({data!r}, {path!r}, **{args!r})")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 300
    while not Path(path).exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(path, kind="freeform")["step"]  # loadable: written atomically
    assert 3 <= killed_at < 12, "the process finished before it could be killed"
    resumed = train_inpainting(data, path, resume=True, **args)
    straight = train_inpainting(data, str(tmp_path / "straight.pt"), **args)
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a["step"] == b["step"] == 12 and resumed.steps_per_epoch == 5
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert resumed.history == straight.history and len(straight.history) == 12


def test_checkpoints_every_n_steps_hold_the_step_and_history(tmp_path, patterns):
    (data, path), args = run_args(patterns, tmp_path / "partial.pt", max_steps=7)
    result = train_inpainting(data, path, **args)
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == result.step == 7 and len(ckpt["history"]) == 7 and ckpt["history"][:, 0].tolist() == list(range(1, 8))
    assert len(ckpt["rng"]["ranks"]) == 1 and ckpt["world_size"] == 1
    with pytest.raises(ValueError, match="save_every_n_steps"):
        train_inpainting(data, tmp_path / "x.pt", **{**args, "save_every_n_steps": 0})


def test_epoch_batches_shard_like_a_distributed_sampler():
    single = EpochBatches(24, 4, seed=3)
    shards = [EpochBatches(24, 2, seed=3, rank=r, world_size=2) for r in (0, 1)]
    assert single.batches_per_epoch == shards[0].batches_per_epoch == 6
    for whole, part0, part1 in zip(single, *shards):
        assert sorted(part0 + part1) == sorted(whole) and not set(part0) & set(part1)
    shards[1].skip = 4  # resuming mid-epoch: the rest of the same order
    assert list(shards[1]) == list(EpochBatches(24, 2, seed=3, rank=1, world_size=2))[4:]


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo on Windows is not supported here")
@pytest.mark.slow  # a subprocess or a script end to end: the full suite runs it
def test_train_inpainting_torchrun_two_processes_gloo(tmp_path, patterns):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "ddp_train_inpainting_script.py"), str(patterns), str(tmp_path)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / "ranks" / f"rank{i}.pt", weights_only=True) for i in (0, 1))
    for key in ("model", "ema"):  # DDP kept the ranks in step
        for name in r0[key]:
            assert torch.equal(r0[key][name], r1[key][name]), (key, name)
    assert r0["losses"] == r1["losses"] and len(r0["losses"]) == 4  # the logged loss: the mean over ranks
    assert r0["steps_per_epoch"] == 20 // (2 * 2)  # an optimizer step sees batch_size x 2 processes
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["model.pt"]  # one file, from rank 0
    ckpt = load_checkpoint(tmp_path / "run" / "model.pt", kind="freeform")
    assert ckpt["step"] == 4 and ckpt["world_size"] == 2 and len(ckpt["rng"]["ranks"]) == 2
    assert all(torch.equal(ckpt["model"][k], r0["model"][k]) for k in ckpt["model"])
    # the two ranks drew different noise: their saved RNG streams differ
    assert not torch.equal(ckpt["rng"]["ranks"][0]["noise"], ckpt["rng"]["ranks"][1]["noise"])
