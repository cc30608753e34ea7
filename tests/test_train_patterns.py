"""scripts/train_patterns.py --init_from: a warm restart of a shipped, weights-only free-form model."""
import pytest
import torch

from inpaintlib import pretrained
from inpaintlib.checkpoint import load_checkpoint
from inpaintlib.registry import load_model
from inpaintlib.freeform import make_patterns, train_inpainting
from inpaintlib.freeform.recipe import InpaintingTrainConfig

from conftest import load_script


def test_warm_start_continues_the_shipped_weights_with_new_settings_and_refuses_others(tmp_path):
    script = load_script("scripts/train_patterns.py", "train_patterns_script")
    shipped = load_checkpoint(pretrained("patterns"), kind="freeform")
    make_patterns(tmp_path / "train", 4, 64, seed=0)
    ckpt = tmp_path / "checkpoint.pt"
    step0 = int(shipped["step"])
    args = dict(num_epochs=10 ** 6, batch_size=2, lr=1e-4, image_size=64, save_every_n_epochs=1,
                max_steps=step0 + 2, seed=0, ema_decay=0.999)
    cfg = InpaintingTrainConfig(str(tmp_path / "train"), args["num_epochs"], args["batch_size"], args["lr"],
                                args["image_size"], 1, args["max_steps"], args["seed"], args["ema_decay"])
    state = script.warm_start(pretrained("patterns"), ckpt, cfg)
    assert state["step"] == step0 and state["warm_restart"]["step"] == step0
    for k, v in shipped["ema"].items():  # raw and EMA weights both start from the shipped EMA, in fp32
        assert torch.equal(state["model"][k], v.float()) and torch.equal(state["ema"][k], v.float())
    network = shipped["model_config"]  # the shipped network, whatever its base
    result = train_inpainting(tmp_path / "train", ckpt, preset=network, resume=True, progress=False, **args)
    assert result.step == step0 + 2 and len(result.history) == 2
    trained = load_checkpoint(ckpt, kind="freeform")
    assert any(not torch.equal(trained["ema"][k], v.float()) for k, v in shipped["ema"].items())
    # the warm start carries its settings: a resume with another learning rate is refused, by name
    with pytest.raises(ValueError, match="lr"):
        train_inpainting(tmp_path / "train", ckpt, preset=network, resume=True, progress=False,
                         **{**args, "lr": 3e-4, "max_steps": step0 + 3})
    with pytest.raises(ValueError, match="no EMA weights"):
        bare = {k: v for k, v in shipped.items() if k != "ema"}
        torch.save({**bare, "model": shipped["ema"]}, tmp_path / "bare.pt")  # raw weights only
        script.warm_start(tmp_path / "bare.pt", tmp_path / "other.pt", cfg)


def test_warm_start_may_change_only_the_base_of_the_network(tmp_path):
    from inpaintlib.freeform.model import freeform_config

    script = load_script("scripts/train_patterns.py", "train_patterns_script")
    cfg = InpaintingTrainConfig(str(tmp_path / "train"), 10, 2, 3e-4, 64, 1, None, 0, 0.995)
    for base in ("harmonic", "none"):  # either way from the shipped file, whichever base it has
        other = freeform_config("small", image_size=64, base=base).to_dict()
        state = script.warm_start(pretrained("patterns"), tmp_path / f"a_{base}.pt", cfg, other)
        assert state["model_config"]["base"] == base
    wider = freeform_config("small", image_size=64, widths=(16, 32, 64, 128, 128, 48)).to_dict()
    with pytest.raises(ValueError, match="widths"):
        script.warm_start(pretrained("patterns"), tmp_path / "b.pt", cfg, wider)


def test_warm_start_onto_an_mmse_base_takes_the_regression_unet_from_base_weights(tmp_path):
    """--base mmse: the diffusion weights come from --init_from, the frozen base_net's from --base_weights
    (which must be the regression U-Net the configuration describes); without it, a clear refusal."""
    from inpaintlib.freeform.model import freeform_config

    script = load_script("scripts/train_patterns.py", "train_patterns_script")
    cfg = InpaintingTrainConfig(str(tmp_path / "train"), 10, 2, 3e-4, 64, 1, None, 0, 0.995)
    other = freeform_config("small", image_size=64, base="mmse").to_dict()
    with pytest.raises(ValueError, match="base_weights"):
        script.warm_start(pretrained("patterns"), tmp_path / "a.pt", cfg, other)
    with pytest.raises(ValueError, match="regression U-Net"):  # the diffusion model is not a regression U-Net
        script.warm_start(pretrained("patterns"), tmp_path / "a.pt", cfg, other, pretrained("patterns"))
    state = script.warm_start(pretrained("patterns"), tmp_path / "a.pt", cfg, other, pretrained("patterns-mmse"))
    mmse = load_checkpoint(pretrained("patterns-mmse"), kind="freeform")["ema"]
    shipped = load_checkpoint(pretrained("patterns"), kind="freeform")["ema"]
    for key in ("ema", "model"):
        assert torch.equal(state[key]["base_net.conv_out.weight"].float(), mmse["conv_out.weight"].float())
        assert torch.equal(state[key]["conv_out.weight"].float(), shipped["conv_out.weight"].float())
    model = load_model(tmp_path / "a.pt")  # the warm start loads as a model, base_net and all
    assert model.config.base == "mmse" and torch.equal(model.base_net.conv_out.weight.float(),
                                                       mmse["conv_out.weight"].float())


def test_ship_refuses_to_replace_an_existing_file_before_it_trains(tmp_path, monkeypatch):
    script = load_script("scripts/train_patterns.py", "train_patterns_script")
    target = tmp_path / "patterns_small.pt"
    target.write_bytes(b"a user's file")
    trained = []
    monkeypatch.setattr(script, "train_inpainting", lambda *a, **k: trained.append(1))
    with pytest.raises(SystemExit, match="--overwrite"):
        script.main(["--out", str(tmp_path / "run"), "--ship", str(target), "--n_train", "2", "--n_eval", "1"])
    assert target.read_bytes() == b"a user's file" and not trained and not (tmp_path / "run").exists()
    script.check_ship_target(target, overwrite=True)  # allowed when asked
    script.check_ship_target(tmp_path / "new.pt", overwrite=False)  # a new path needs no asking
