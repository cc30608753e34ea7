"""A tiny train -> sample_cmd -> eval_cmd run on a small subset; every file and key checked."""
import csv
import json
import math
import subprocess
import sys

import pytest
import torch

from inpaintlib import eval_cmd, load_model, sample_cmd, train
from inpaintlib.checkpoint import load_checkpoint

EVAL_KEYS = {"psnr_hole", "l1_hole", "n_eval", "steps", "nfe_per_image", "seconds", "images_per_second", "device"}


def test_train_writes_everything(tiny_run):
    r = tiny_run
    assert r.step == 4
    names = {p.name for p in r.out_dir.iterdir()}
    assert {"last.pt", "panel_2.png", "panel_final.png", "history.csv"} <= names
    assert [p.name for p in r.panels] == ["panel_2.png"]  # the final step writes panel_final, not panel_4
    assert [row["step"] for row in r.history] == [1, 2, 3, 4]
    assert all(math.isfinite(x) and x > 0 for x in r.losses)
    with open(r.history_path) as fh:
        rows = list(csv.DictReader(fh))
    assert [float(row["loss"]) for row in rows] == pytest.approx(r.losses)
    assert float(rows[0]["lr"]) == pytest.approx(2e-4 / 2)  # linear warmup over 2 steps
    ckpt = load_checkpoint(r.checkpoint)
    assert {"model", "ema", "optimizer", "step", "train_config", "model_config", "rng"} <= set(ckpt)
    assert ckpt["step"] == 4 and ckpt["model_config"]["T"] == 50 and ckpt["train_config"]["timesteps"] == 50
    assert ckpt["model_config"]["pred"] == "v" and ckpt["model_config"]["self_cond"] is True
    # the EMA differs from the raw weights after training
    assert any(not torch.equal(ckpt["model"][k], ckpt["ema"][k]) for k in ckpt["model"])


def test_sample_cmd(tiny_run, mnist_root):
    ckpt = str(tiny_run.checkpoint)
    images = sample_cmd(ckpt=ckpt, n=5, steps=50, center_box=12, dc_repeats=2, dc_fixed_z=True, pred="v",
                        self_cond=True, init_from_y=True, eta=0.0, coord_conv=True, data_root=mnist_root)
    assert images.shape == (5, 1, 28, 28)
    assert (tiny_run.out_dir / "samples.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="pred='eps' but the checkpoint was trained with pred='v'"):
        sample_cmd(ckpt=ckpt, n=2, steps=5, pred="eps", data_root=mnist_root)
    with pytest.raises(ValueError, match="coord_conv"):
        sample_cmd(ckpt=ckpt, n=2, steps=5, coord_conv=False, data_root=mnist_root)
    with pytest.raises(ValueError, match="steps"):
        sample_cmd(ckpt=ckpt, n=2, steps=51, data_root=mnist_root)


def test_eval_cmd(tiny_run, mnist_root):
    ckpt = str(tiny_run.checkpoint)
    out = eval_cmd(ckpt=ckpt, batch_size=8, n_eval=20, steps=5, center_box=12, dc_repeats=2, dc_fixed_z=True,
                   pred="v", self_cond=True, init_from_y=True, eta=0.0, coord_conv=True, seed=123,
                   data_root=mnist_root)
    assert EVAL_KEYS <= set(out)
    assert out["n_eval"] == 20 and out["nfe_per_image"] == 10 and out["steps"] == 5
    assert 0 < out["l1_hole"] < 1 and math.isfinite(out["psnr_hole"])
    assert out["args"]["batch_size"] == 8 and out["args"]["seed"] == 123
    saved = json.loads((tiny_run.out_dir / "eval.json").read_text())
    assert saved["psnr_hole"] == pytest.approx(out["psnr_hole"])
    again = eval_cmd(ckpt=ckpt, batch_size=8, n_eval=20, steps=5, seed=123, data_root=mnist_root)
    assert again["psnr_hole"] == out["psnr_hole"]  # deterministic for a seed
    with pytest.raises(ValueError, match="n_eval"):
        eval_cmd(ckpt=ckpt, n_eval=10001, steps=5, data_root=mnist_root)


def test_timesteps_and_the_designs_name_for_it():
    from inpaintlib import TrainConfig
    from inpaintlib.mnist.recipe import upgrade_train_config

    assert TrainConfig.from_arguments({"steps": 7, "sample_steps": 5}).timesteps == 7  # the design's train(steps=...)
    assert TrainConfig().timesteps == 400 and upgrade_train_config({"steps": 400, "lr": 1.0}) == {"timesteps": 400, "lr": 1.0}
    with pytest.raises(ValueError, match="timesteps or steps"):
        TrainConfig.from_arguments({"steps": 7, "timesteps": 7})
    with pytest.raises(ValueError, match="unknown argument.*sampling_steps"):
        train(sampling_steps=3)


def test_load_model_returns_the_ema_network(tiny_run):
    net = load_model(tiny_run.checkpoint)
    ckpt = load_checkpoint(tiny_run.checkpoint)
    assert not net.training
    assert all(torch.equal(net.state_dict()[k], v) for k, v in ckpt["ema"].items())
    raw = load_model(tiny_run.checkpoint, weights="model")
    assert all(torch.equal(raw.state_dict()[k], v) for k, v in ckpt["model"].items())


def test_existing_run_is_not_overwritten_and_resume_checks_config(tiny_run, mnist_root):
    before = tiny_run.checkpoint.read_bytes()
    common = dict(epochs=1, batch_size=16, sample_every=2, sample_steps=4, steps=50, warmup_steps=2,
                  train_subset=64, base_channels=8, out_dir=str(tiny_run.out_dir), data_root=mnist_root, progress=False)
    with pytest.raises(FileExistsError, match="resume=True"):
        train(max_steps=4, **common)
    with pytest.raises(ValueError, match="lr: checkpoint 0.0002 vs now 0.001"):
        train(max_steps=6, resume=True, **{**common, "lr": 1e-3})
    assert tiny_run.checkpoint.read_bytes() == before


def test_resume_continues_to_the_same_weights(tmp_path, mnist_root):
    common = dict(epochs=2, batch_size=16, sample_every=3, sample_steps=2, steps=20, warmup_steps=2,
                  train_subset=48, base_channels=8, data_root=mnist_root, progress=False)  # 3 steps per epoch
    straight = train(max_steps=5, out_dir=str(tmp_path / "a"), **common)
    train(max_steps=3, out_dir=str(tmp_path / "b"), **common)
    seconds_3 = load_checkpoint(tmp_path / "b" / "last.pt")["train_seconds"]
    resumed = train(max_steps=5, out_dir=str(tmp_path / "b"), resume=True, **common)
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert b["step"] == 5
    # the wall time adds up over the runs (a model card reads it); unknown stays unknown
    assert b["train_seconds"] > seconds_3 > 0
    legacy = torch.load(straight.checkpoint, weights_only=False)
    del legacy["train_seconds"]  # as written by an inpaintlib that did not record it
    torch.save(legacy, straight.checkpoint)
    train(max_steps=6, out_dir=str(tmp_path / "a"), resume=True, **common)
    assert load_checkpoint(straight.checkpoint)["train_seconds"] is None
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
        assert torch.equal(a["ema"][k], b["ema"][k]), k
    assert resumed.losses == straight.losses


@pytest.mark.parametrize("kwargs,match", [
    ({"pred": "score"}, "pred"), ({"cond": "text"}, "cond"), ({"batch_size": 0}, "batch_size"),
    ({"steps": 1}, "steps"), ({"sample_steps": 500}, "sample_steps"), ({"ema_decay": 1.0}, "ema_decay"),
    ({"self_cond": "yes"}, "self_cond"), ({"lr": -1.0}, "lr"), ({"schedule": "quadratic"}, "schedule"),
])
def test_train_refuses_bad_arguments(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        train(out_dir=str(tmp_path), **kwargs)


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tvm

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tvm, "download_and_extract_archive", no_network)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "empty" / "MNIST" / "raw")):
        train(out_dir=str(tmp_path / "out"), data_root=str(tmp_path / "empty"), max_steps=1)


@pytest.mark.slow  # a subprocess or a script end to end: the full suite runs it
def test_command_line_runs_the_three_calls(tmp_path, mnist_root):
    run = lambda *a: subprocess.run([sys.executable, "-m", "inpaintlib", *a], capture_output=True, text=True)  # noqa: E731
    out = str(tmp_path)
    r = run("train", "--epochs", "1", "--batch_size", "16", "--max_steps", "2", "--steps", "20", "--sample_every",
            "100", "--sample_steps", "2", "--train_subset", "32", "--base_channels", "8", "--self_cond", "false", "--out_dir", out,
            "--data_root", mnist_root, "--progress", "false")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["steps"] == 2
    assert load_checkpoint(tmp_path / "last.pt")["model_config"]["self_cond"] is False
    r = run("eval", "--ckpt", f"{out}/last.pt", "--n_eval", "8", "--steps", "2", "--data_root", mnist_root)
    assert r.returncode == 0, r.stderr
    plain = json.loads(r.stdout)
    assert plain["n_eval"] == 8 and plain["args"]["options"] == {"dc_repeats": 2, "dc_fixed_z": True, "init_from_y": True}
    r = run("eval", "--ckpt", f"{out}/last.pt", "--n_eval", "8", "--steps", "2", "--data_root", mnist_root,
            "--sampler", "guidance", "--guidance", "5", "--json_name", "guided.json")
    assert r.returncode == 0, r.stderr
    guided = json.loads(r.stdout)
    assert guided["args"]["options"]["guidance"] == 5.0 and guided["nfe_per_image"] == plain["nfe_per_image"]
    assert guided["psnr_hole"] != plain["psnr_hole"]
    r = run("sample", "--ckpt", f"{out}/last.pt", "--n", "3", "--steps", "2", "--data_root", mnist_root)
    assert r.returncode == 0 and (tmp_path / "samples.png").exists()
    r = run("eval", "--ckpt", f"{out}/last.pt", "--pred", "eps", "--steps", "2", "--data_root", mnist_root)
    assert r.returncode == 2 and "pred='eps'" in r.stderr
    r = run("demo", "--ckpt", f"{out}/last.pt", "--out_dir", f"{out}/demo", "--n", "4", "--steps", "2")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "demo" / "demo_metrics.json").read_text())["n"] == 4
    r = run("demo", "--ckpt", f"{out}/last.pt", "--out_dir", f"{out}/demo", "--n", "4", "--steps", "2",
            "--dc_repeats", "3", "--sampler", "guidance", "--guidance", "5")
    assert r.returncode == 0, r.stderr
    resampled = json.loads((tmp_path / "demo" / "demo_metrics.json").read_text())
    row = resampled["rows"][0]
    assert len(resampled["rows"]) == 1 and row["checkpoint"].endswith("last.pt")
    assert row["dc_repeats"] == 3 and row["nfe_per_image"] == 2 * 3 and row["guidance"] == 5.0
    assert row["backward_per_image"] == 2 * 3 and resampled["nfe_per_image"] == 2 * 3
