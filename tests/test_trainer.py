"""The one training loop: both recipes write one checkpoint schema, and checkpoints written before it
(version 1) still resume."""
from __future__ import annotations

import torch

from inpaintlib import train, train_inpainting
from inpaintlib.checkpoint import atomic_save, load_checkpoint
from inpaintlib.freeform import make_patterns
from inpaintlib.trainer import SCHEMA_VERSION, read_state

SCHEMA = {"format", "version", "kind", "model_config", "train_config", "world_size", "step", "train_seconds",
          "model", "ema", "optimizer", "rng", "history"}


def mnist_args(out, mnist_root, **kw):
    args = dict(epochs=2, batch_size=8, sample_every=2, sample_steps=2, steps=20, warmup_steps=3, train_subset=40,
                base_channels=8, out_dir=str(out), data_root=mnist_root, progress=False, seed=3)
    return {**args, **kw}


def freeform_args(**kw):
    return {**dict(num_epochs=2, batch_size=4, image_size=32, preset="tiny", device="cpu", seed=5, warmup_steps=3,
                   save_every_n_steps=3, progress=False), **kw}


def same_weights(a, b) -> bool:
    return all(torch.equal(a[key][name], b[key][name]) for key in ("model", "ema") for name in a[key])


def test_both_recipes_write_one_schema(tmp_path, mnist_root):
    make_patterns(tmp_path / "p", 8, image_size=32, seed=1)
    mnist = load_checkpoint(train(**mnist_args(tmp_path / "m", mnist_root, max_steps=4)).checkpoint)
    free = load_checkpoint(train_inpainting(str(tmp_path / "p"), str(tmp_path / "f.pt"), max_steps=4,
                                            **freeform_args()).checkpoint)
    for ckpt in (mnist, free):
        assert set(ckpt) - {"scaler"} == SCHEMA and ckpt["version"] == SCHEMA_VERSION
        assert ckpt["world_size"] == 1 and len(ckpt["rng"]["ranks"]) == 1 and set(ckpt["rng"]["ranks"][0]) == {
            "torch", "noise"}
        assert ckpt["history"].shape == (4, 3) and ckpt["history"][:, 0].tolist() == [1, 2, 3, 4]
        assert ckpt["train_seconds"] > 0 and "world_size" not in ckpt["train_config"]
    assert mnist["history"][0, 2] == 2e-4 / 3 and free["history"][0, 2] == 1e-4 / 3  # warmup's first LR


def as_version_1(path, kind: str) -> None:
    """Rewrite a checkpoint in the layout the recipes wrote before the shared trainer."""
    ckpt = torch.load(path, weights_only=True)
    ranks = ckpt["rng"]["ranks"]
    if kind == "mnist":  # rank 0's streams only, world_size in the config, the history in history.csv only
        ckpt["rng"] = {"torch": ranks[0]["torch"], "noise": ranks[0]["noise"],
                       "data_epoch_start": torch.Generator().get_state()}
        ckpt["train_config"]["world_size"] = ckpt.pop("world_size")
    else:  # the losses alone, no learning rate
        ckpt["rng"] = {"torch": ranks[0]["torch"], "noise": ranks[0]["noise"], "ranks": ranks}
        ckpt["loss_history"] = ckpt["history"][:, 1].float()
    del ckpt["history"], ckpt["train_seconds"]
    ckpt["version"] = 1
    atomic_save(ckpt, path)


def test_a_version_1_mnist_checkpoint_resumes(tmp_path, mnist_root):
    first = train(**mnist_args(tmp_path / "old", mnist_root, max_steps=2))
    as_version_1(first.checkpoint, "mnist")
    assert read_state(first.checkpoint, "mnist")["world_size"] == 1
    resumed = train(resume=True, **mnist_args(tmp_path / "old", mnist_root, max_steps=4))
    straight = train(**mnist_args(tmp_path / "new", mnist_root, max_steps=4))
    assert same_weights(load_checkpoint(resumed.checkpoint), load_checkpoint(straight.checkpoint))
    assert resumed.history == straight.history  # the first two rows came back from history.csv
    assert load_checkpoint(resumed.checkpoint)["train_seconds"] is None  # the old run did not record its time


def test_a_version_1_freeform_checkpoint_resumes(tmp_path):
    make_patterns(tmp_path / "p", 8, image_size=32, seed=1)
    data = str(tmp_path / "p")
    train_inpainting(data, str(tmp_path / "old.pt"), max_steps=3, **freeform_args())
    as_version_1(tmp_path / "old.pt", "freeform")
    state = read_state(tmp_path / "old.pt", "freeform", lr_of=lambda s: 1e-4 * min(1.0, (s + 1) / 3))
    assert [round(r["lr"] / 1e-4, 6) for r in state["history"]] == [round(1 / 3, 6), round(2 / 3, 6), 1.0]
    resumed = train_inpainting(data, str(tmp_path / "old.pt"), max_steps=4, resume=True, **freeform_args())
    straight = train_inpainting(data, str(tmp_path / "new.pt"), max_steps=4, **freeform_args())
    assert same_weights(load_checkpoint(resumed.checkpoint), load_checkpoint(straight.checkpoint))
    assert resumed.history == straight.history


def test_a_shipped_model_continues_training(tmp_path, mnist_root):
    """scripts/resume_from_shipped.py makes a weights-only shipped file resumable (a warm restart)."""
    from conftest import load_script

    script = load_script("scripts/resume_from_shipped.py", "resume_from_shipped")
    script.main(["mnist-mask", str(tmp_path)])
    state = load_checkpoint(tmp_path / "last.pt")
    shipped = load_checkpoint(script.pretrained("mnist-mask"))
    assert state["step"] == shipped["step"] and state["version"] == SCHEMA_VERSION
    assert all(torch.equal(state["model"][k], shipped["ema"][k].float()) for k in shipped["ema"])
    tc = state["train_config"]
    run = train(epochs=tc["epochs"], warmup_steps=tc["warmup_steps"], sample_every=tc["sample_every"], cond="mask",
                train_holes="mixed", out_dir=str(tmp_path), data_root=mnist_root, resume=True, progress=False,
                max_steps=state["step"] + 1, sample_steps=2)
    assert run.step == state["step"] + 1 and [r["step"] for r in run.history] == [state["step"] + 1]
    try:
        script.main(["mnist-mask", str(tmp_path)])
    except SystemExit as err:
        assert "--overwrite" in str(err)
    else:
        raise AssertionError("an existing last.pt was replaced without --overwrite")
