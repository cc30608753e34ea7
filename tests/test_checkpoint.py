import pytest
import torch

from inpaintlib import DenoiserUNet, ModelConfig, load_model
from inpaintlib.checkpoint import FORMAT, VERSION, atomic_save, load_checkpoint


def write_valid(path):
    cfg = ModelConfig(base_channels=16)
    net = DenoiserUNet(cfg)
    atomic_save({"format": FORMAT, "version": VERSION, "kind": "mnist", "model_config": cfg.to_dict(),
                 "ema": net.state_dict(), "step": 0}, path)
    return net


def test_round_trip(tmp_path):
    net = write_valid(tmp_path / "ok.pt")
    loaded = load_model(tmp_path / "ok.pt", device="cpu")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in net.state_dict().items())
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


@pytest.mark.parametrize("make,match", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("hello, I am a text file"), "could not be read"),
    (lambda p: torch.save({"weights": torch.zeros(3)}, p), "not an inpaintlib checkpoint"),
    (lambda p: torch.save([1, 2, 3], p), "not an inpaintlib checkpoint"),
])
def test_broken_files_name_the_file(tmp_path, make, match):
    path = tmp_path / "broken.pt"
    make(path)
    with pytest.raises((ValueError, FileNotFoundError), match=match) as info:
        load_model(path)
    assert "broken.pt" in str(info.value)


def test_truncated_file(tmp_path):
    write_valid(tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pt.*could not be read"):
        load_model(tmp_path / "cut.pt")


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"format": FORMAT, "payload": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt"):
        load_model(tmp_path / "evil.pt")


def test_wrong_kind_and_mismatched_weights(tmp_path):
    write_valid(tmp_path / "ok.pt")
    with pytest.raises(ValueError, match="holds a 'mnist' model, expected a 'freeform' model"):
        load_checkpoint(tmp_path / "ok.pt", kind="freeform")
    ckpt = load_checkpoint(tmp_path / "ok.pt")
    ckpt["model_config"]["base_channels"] = 32
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="mismatch.pt.*do not fit"):
        load_model(tmp_path / "mismatch.pt")


def test_shipped_mnist_models_load_with_their_configs():
    """pretrained("mnist") is the design's cond="none" model, "mnist-mask" the cond="mask" one; both
    small (fp16 EMA weights only) and both keep known pixels exactly on real digits."""
    import inpaintlib
    from inpaintlib import center_hole, inpaint, load_model, load_test_images

    images, _ = load_test_images("data", n=2)
    hole = center_hole(28, 12)
    for name, cond in (("mnist", "none"), ("mnist-mask", "mask")):
        path = inpaintlib.pretrained(name)
        assert path.stat().st_size < 5e6
        model = load_model(path, device="cpu")
        assert model.config.cond == cond and model.config.image_size == 28
        out = inpaint(model, images, hole, steps=3, seed=0)
        assert torch.equal(out * (1 - hole), images * (1 - hole))
        assert not torch.equal(out, images * (1 - hole))  # the hole was filled


@pytest.mark.slow  # the shipped networks sample real digits: the full suite runs it
def test_shipped_mnist_models_fill_the_hole_better_than_the_mean_digit():
    """The shipped weights really inpaint (a broken export or a wrong config would not): on 64 shipped
    test digits the mask model at 10 steps, and the default with the sampler its card recommends, both
    beat filling the hole with the mean of the 1000 shipped digits."""
    import inpaintlib
    from inpaintlib import center_hole, inpaint, load_model, load_test_images, psnr_hole

    images, _ = load_test_images("data", n=1000)
    hole = center_hole(28, 12)
    digits = images[-64:]  # the quality table uses the first test digits; these are others
    mean_fill = torch.where(hole.bool(), images.mean(0, keepdim=True), digits)
    floor = psnr_hole(mean_fill, digits, hole)
    mask_model = load_model(inpaintlib.pretrained("mnist-mask"), device="cpu")
    got = psnr_hole(inpaint(mask_model, digits, hole, steps=10, seed=0), digits, hole)
    assert got > floor + 1.0, (got, floor)
    default = load_model(inpaintlib.pretrained("mnist"), device="cpu")
    got = psnr_hole(inpaint(default, digits, hole, "guidance", steps=10, dc_repeats=3, guidance=30, seed=0), digits, hole)
    assert got > floor + 0.5, (got, floor)
