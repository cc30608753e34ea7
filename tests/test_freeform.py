"""The 128x128 free-form system of the architecture guide: model, masks, dataset, training, inference.

CPU only and small: the guide's default network is built once and run once on a single image;
everything that trains uses the "tiny" preset (32x32) for a few steps.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import inpaintlib
from inpaintlib.checkpoint import load_checkpoint
from inpaintlib.registry import load_model
from inpaintlib.metrics import l1_hole
from inpaintlib.freeform import (PRESETS, DDPM_Scheduler, FreeformConfig, InpaintingUNET, UNET, UnetLayer,
                                 build_freeform_model, freeform_config, inpaint_image, train_inpainting)
from inpaintlib.freeform import MASK_KINDS, InpaintingDataset, load_rgb, make_patterns, random_hole
from inpaintlib.mnist.model import count_parameters
from inpaintlib.samplers import inpaint
from inpaintlib.schedule import NoiseSchedule

TINY = dict(image_size=32, preset="tiny", device="cpu", progress=False)


@pytest.fixture(autouse=True)
def one_thread():
    """These networks are small: on a CPU shared with other jobs one thread is several times
    faster than two (no OpenMP contention). Runs after conftest's thread setting; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------------
# the model and the schedule


def test_default_model_is_the_guides_and_predicts_noise_of_the_image_shape():
    model = InpaintingUNET()
    cfg = model.config
    assert cfg.image_size == 128 and cfg.channels == 3
    assert cfg.widths == (64, 128, 256, 512, 512, 384)
    attended = {w for w, a in zip(cfg.widths, cfg.attentions) if a}
    assert attended == {128, 512}
    assert len(model.encoder) == 3 and len(model.decoder) == 3  # encoder (3 layers), decoder (3 layers)
    assert 40e6 <= count_parameters(model) <= 50e6
    x, keep = torch.randn(1, 3, 128, 128), torch.ones(1, 1, 128, 128)
    keep[..., 32:96, 32:96] = 0
    with torch.no_grad():
        out = model.eval()(x, torch.tensor([500]), keep)
    assert out.shape == (1, 3, 128, 128) and torch.isfinite(out).all()


def test_presets_are_smaller_and_rebuild_from_their_dict():
    sizes = {name: count_parameters(InpaintingUNET(preset=name)) for name in ("small", "tiny")}
    assert 1e6 <= sizes["small"] <= 5e6 and sizes["tiny"] < sizes["small"]
    model = InpaintingUNET(preset="tiny")
    rebuilt = build_freeform_model(model.config.to_dict())
    assert isinstance(rebuilt, InpaintingUNET) and rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())  # same architecture, key for key
    plain = build_freeform_model({**model.config.to_dict(), "cond": "none"})
    assert type(plain) is UNET
    assert plain(torch.randn(2, 3, 32, 32), torch.tensor([1, 2])).shape == (2, 3, 32, 32)


def test_guide_call_and_sampler_call_see_the_same_input():
    torch.manual_seed(0)
    model = InpaintingUNET(preset="tiny").eval()
    for p in model.conv_out.parameters():  # a fresh output conv is zero: make the output depend on the input
        torch.nn.init.normal_(p, std=0.1)
    x0, x_t = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    hole = torch.zeros(2, 1, 32, 32)
    hole[..., 8:20, 4:28] = 1
    t = torch.tensor([100, 700])
    with torch.no_grad():
        guide = model(hole * x_t + (1 - hole) * x0, t, 1 - hole)  # x_in = keep x_0 + hole x_t, mask = keep
        sampler = model(x_t, t, y=x0 * (1 - hole), hole=hole)
        other_known = model(x_t + 5 * (1 - hole), t, y=x0 * (1 - hole), hole=hole)  # x_t outside the hole: unused
        moved_hole = model(x_t, t, y=x0 * (1 - hole), hole=hole.roll(6, dims=-1))
    torch.testing.assert_close(guide, sampler)
    torch.testing.assert_close(other_known, sampler)
    assert not torch.allclose(moved_hole, sampler)  # the mask channel matters


def test_unet_layer_resamples_and_returns_its_skip():
    down = UnetLayer(16, 32, upscale=False, attention=True, time_dim=64)
    up = UnetLayer(16, 8, upscale=True, attention=False, time_dim=64)
    x, temb = torch.randn(2, 16, 8, 8), torch.randn(2, 64)
    out, skip = down(x, temb)
    assert out.shape == (2, 32, 4, 4) and skip.shape == (2, 16, 8, 8)
    out, skip = up(x, temb)
    assert out.shape == (2, 8, 16, 16) and skip.shape == (2, 16, 8, 8)


def test_ddpm_scheduler_is_the_shared_linear_schedule():
    s = DDPM_Scheduler()
    assert isinstance(s, NoiseSchedule) and s.num_time_steps == 1000 and s.beta.shape == (1000,)
    assert s.beta[0].item() == pytest.approx(1e-4) and s.beta[-1].item() == pytest.approx(0.02)
    torch.testing.assert_close(s.alpha, 1 - s.beta)
    torch.testing.assert_close(s.alpha_bar, torch.cumprod(s.alpha.double(), 0).float())
    torch.testing.assert_close(s.alpha_bar, NoiseSchedule(1000, "linear").alpha_bar)


@pytest.mark.parametrize("overrides, name", [
    ({"widths": (64, 128, 256)}, "widths"),
    ({"upscales": (True, False, False, True, True, True)}, "upscales"),
    ({"attentions": (True,)}, "attentions"),
    ({"image_size": 100}, "image_size"),
    ({"pred": "noise"}, "pred"),
    ({"widths": (64, 128, 256, 512, 200, 384)}, "widths"),
])
def test_config_errors_name_the_field(overrides, name):
    with pytest.raises(ValueError, match=name):
        FreeformConfig(**overrides)
    with pytest.raises(ValueError, match="preset"):
        freeform_config("huge")


# ----------------------------------------------------------------------------------------------
# masks and patterns


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_mask_coverage_is_within_bounds(kind):
    g = torch.Generator().manual_seed(3)
    for size, lo, hi in (((32, 32), 0.1, 0.5), ((24, 40), 0.2, 0.3), ((128, 128), 0.05, 0.6)):
        covers = []
        for _ in range(60 if size[0] < 100 else 8):
            hole = random_hole(kind, size, (lo, hi), g)
            assert hole.shape == (1, *size) and set(hole.unique().tolist()) <= {0.0, 1.0}
            covers.append(hole.mean().item())
        assert lo - 1e-6 <= min(covers) and max(covers) <= hi + 1e-6, (kind, size, min(covers), max(covers))
        if size == (32, 32):
            assert max(covers) - min(covers) > 0.2  # the coverage is drawn, not fixed
    a = random_hole(kind, 32, (0.1, 0.5), torch.Generator().manual_seed(7))
    b = random_hole(kind, 32, (0.1, 0.5), torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert random_hole(kind, 32, (0.25, 0.25), g).sum().item() == 256  # exact coverage, to the pixel


def test_mask_arguments_are_checked():
    with pytest.raises(ValueError, match="kind"):
        random_hole("triangle", 32)
    with pytest.raises(ValueError, match="coverage"):
        random_hole("circle", 32, (0.6, 0.2))
    with pytest.raises(ValueError, match="coverage"):
        random_hole("circle", 4, (0.3, 0.31))  # no pixel count of a 4x4 image fits
    with pytest.raises(ValueError, match="size"):
        random_hole("circle", 1)


def test_make_patterns_is_seeded(tmp_path):
    paths = make_patterns(tmp_path / "a", 5, image_size=32, seed=4)
    again = make_patterns(tmp_path / "b", 5, image_size=32, seed=4)
    other = make_patterns(tmp_path / "c", 5, image_size=32, seed=5)
    assert [p.name for p in paths] == [f"pattern_{i:05d}.png" for i in range(5)]
    for p, q, r in zip(paths, again, other):
        img = Image.open(p)
        assert img.size == (32, 32) and img.mode == "RGB"
        assert p.read_bytes() == q.read_bytes() and p.read_bytes() != r.read_bytes()
    assert len({np.asarray(Image.open(p)).std().round(3) for p in paths}) == 5  # five different images
    with pytest.raises(ValueError, match="n must"):
        make_patterns(tmp_path / "d", 0)


# ----------------------------------------------------------------------------------------------
# the dataset


def _image_folder(root: Path) -> Path:
    make_patterns(root / "patterns", 3, image_size=40, seed=0)
    (root / "nested" / "deeper").mkdir(parents=True)
    Image.fromarray(np.full((20, 30), 90, np.uint8)).save(root / "nested" / "gray.JPG")  # grayscale, upper case
    Image.fromarray(np.full((16, 16, 4), 200, np.uint8), "RGBA").save(root / "nested" / "deeper" / "alpha.webp")
    (root / "nested" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (root / "notes.txt").write_text("not an image")
    return root


def test_dataset_skips_a_corrupt_file_and_reports_it_once(tmp_path):
    ds = InpaintingDataset(_image_folder(tmp_path), image_size=32, seed=0)
    assert len(ds) == 6  # 3 patterns, gray.JPG, alpha.webp, bad.png; not notes.txt
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = []
        for epoch in range(2):
            ds.set_epoch(epoch)
            for i in range(len(ds)):
                item = ds[i]
                paths.append(item["path"])
                assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
                assert item["image"].min() >= -1 and item["image"].max() <= 1
                assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
                torch.testing.assert_close(item["masked_image"], item["image"] * item["mask"])
        loader = torch.utils.data.DataLoader(ds, batch_size=3)
        assert sum(len(b["path"]) for b in loader) == len(ds)  # a whole epoch runs through a DataLoader
    reports = [w for w in caught if "bad.png" in str(w.message)]
    assert len(reports) == 1
    assert not any(p.endswith("bad.png") for p in paths)
    gray = ds[ds.files.index(next(f for f in ds.files if f.name == "gray.JPG"))]["image"]
    assert torch.allclose(gray[0], gray[1]) and torch.allclose(gray[1], gray[2])  # grayscale -> RGB


def test_dataset_masks_are_seeded_per_epoch(tmp_path):
    make_patterns(tmp_path, 2, image_size=32)
    a, b = InpaintingDataset(tmp_path, 32, seed=1), InpaintingDataset(tmp_path, 32, seed=1)
    assert torch.equal(a[0]["mask"], b[0]["mask"])
    b.set_epoch(1)
    assert not torch.equal(a[0]["mask"], b[0]["mask"])
    only_circles = InpaintingDataset(tmp_path, 32, mask_kinds=("circle",), coverage=(0.3, 0.4))
    assert 0.3 <= 1 - only_circles[1]["mask"].mean().item() <= 0.4


def test_dataset_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        InpaintingDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(ValueError, match="empty"):
        InpaintingDataset(tmp_path / "empty")
    make_patterns(tmp_path / "ok", 1, image_size=16)
    with pytest.raises(ValueError, match="mask_kinds"):
        InpaintingDataset(tmp_path / "ok", mask_kinds=("square",))


# ----------------------------------------------------------------------------------------------
# training and inference, end to end


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Twelve generated patterns and a tiny model trained on them for 4 steps."""
    torch.set_num_threads(1)  # set up before the function-scoped one_thread of the first test using it
    root = tmp_path_factory.mktemp("freeform")
    make_patterns(root / "data", 12, image_size=32, seed=0)
    result = train_inpainting(root / "data", root / "ckpt" / "model", num_epochs=2, batch_size=4, max_steps=4,
                              **TINY)
    return root, result


def test_train_inpainting_writes_a_resumable_checkpoint(trained):
    root, result = trained
    assert result.checkpoint == root / "ckpt" / "model.pt"  # no suffix: ".pt" appended
    assert result.step == 4 and result.steps_per_epoch == 3 and len(result.losses) == 4
    assert all(np.isfinite(result.losses)) and 0.05 < result.losses[0] < 5
    ckpt = load_checkpoint(result.checkpoint, kind="freeform")
    for key in ("model", "ema", "optimizer", "rng", "model_config", "train_config", "step"):
        assert key in ckpt
    assert ckpt["step"] == 4 and ckpt["model_config"]["image_size"] == 32
    model = load_model(result.checkpoint, device="cpu")
    assert isinstance(model, InpaintingUNET) and model.config.widths == PRESETS["tiny"]["widths"]
    with pytest.raises(FileExistsError, match="model.pt"):
        train_inpainting(root / "data", root / "ckpt" / "model", num_epochs=2, batch_size=4, max_steps=4, **TINY)


def test_resume_continues_exactly_where_the_run_stopped(trained, tmp_path):
    root, straight = trained
    path = tmp_path / "resumed.pt"
    first = train_inpainting(root / "data", path, num_epochs=2, batch_size=4, max_steps=2, **TINY)
    assert first.step == 2
    second = train_inpainting(root / "data", path, num_epochs=2, batch_size=4, max_steps=4, resume=True, **TINY)
    assert second.step == 4
    np.testing.assert_allclose(second.losses, straight.losses, rtol=1e-5)
    a, b = load_checkpoint(path), load_checkpoint(straight.checkpoint)
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="lr"):
        train_inpainting(root / "data", path, num_epochs=2, batch_size=4, lr=3e-4, resume=True, **TINY)


@pytest.mark.parametrize("kwargs, name", [
    ({"num_epochs": 0}, "num_epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": -1.0}, "lr"),
    ({"image_size": 30}, "image_size"), ({"save_every_n_epochs": 0}, "save_every_n_epochs"),
    ({"max_steps": 0}, "max_steps"), ({"ema_decay": 1.0}, "ema_decay"), ({"coverage": (0.5, 0.1)}, "coverage"),
    ({"mask_kinds": ("square",)}, "mask_kinds"), ({"preset": "huge"}, "preset"), ({"batch_size": 64}, "batch_size"),
    ({"num_workers": -1}, "num_workers"),
])
def test_train_inpainting_bad_arguments_name_themselves(trained, tmp_path, kwargs, name):
    root, _ = trained
    args = {"num_epochs": 1, "batch_size": 4, **TINY, **kwargs}
    with pytest.raises(ValueError, match=name):
        train_inpainting(root / "data", tmp_path / "x.pt", **args)
    assert not (tmp_path / "x.pt").exists()


def _photo_and_mask(folder: Path):
    """A non-square 75x41 image and a 50x27 mask (a different size) with a box and a stroke to fill."""
    image = Image.open(sorted((folder / "data").glob("*.png"))[1]).convert("RGB").resize((75, 41))
    mask = Image.new("L", (50, 27), 255)
    draw = ImageDraw.Draw(mask)
    draw.rectangle([5, 4, 18, 15], fill=0)
    draw.line([(25, 3), (45, 22)], fill=0, width=2)
    return image, mask


def test_inpaint_image_leaves_the_callers_matplotlib_backend_alone(trained, tmp_path, monkeypatch):
    """Its comparison figure is a standalone Figure: a notebook's inline backend (and so every figure after
    the call) survives. Selecting a backend, or creating a pyplot figure, would be seen here."""
    import matplotlib
    import matplotlib.pyplot as plt

    root, result = trained
    image, mask = _photo_and_mask(root)
    image.save(tmp_path / "image.png")
    mask.save(tmp_path / "mask.png")
    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: pytest.fail(f"matplotlib.use{a} was called"))
    before = plt.get_fignums()
    inpaint_image(tmp_path / "image.png", tmp_path / "mask.png", root / "ckpt" / "model", num_denoising_steps=2,
                  save_result=tmp_path / "out.png", mean_of=1, dc_repeats=1)
    assert (tmp_path / "out_comparison.png").is_file() and plt.get_fignums() == before


def test_inpaint_image_end_to_end_keeps_known_pixels_bit_for_bit(trained, tmp_path):
    root, result = trained
    image, mask = _photo_and_mask(root)
    image.save(tmp_path / "image.png")
    mask.save(tmp_path / "mask.png")
    out = inpaint_image(tmp_path / "image.png", tmp_path / "mask.png", root / "ckpt" / "model",
                        num_denoising_steps=4, save_result=tmp_path / "out" / "result.png")
    assert isinstance(out, Image.Image) and out.size == (75, 41) and out.mode == "RGB"
    before, after = np.asarray(image), np.asarray(out)
    keep = np.asarray(mask.resize((75, 41), Image.Resampling.NEAREST)) >= 128
    assert 0.05 < (~keep).mean() < 0.5
    assert np.array_equal(after[keep], before[keep])  # known pixels untouched
    assert (after[~keep] != before[~keep]).any()  # the hole was filled
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "result.png")), after)
    comparison = Image.open(tmp_path / "out" / "result_comparison.png")
    assert comparison.size[0] > 2 * comparison.size[1]  # three panels side by side

    # the hole's old content is never read: paint it white and the result is the same
    painted = before.copy()
    painted[~keep] = 255
    Image.fromarray(painted).save(tmp_path / "painted.png")
    again = inpaint_image(tmp_path / "painted.png", tmp_path / "mask.png", result.checkpoint,
                          num_denoising_steps=4, save_result=None)
    assert np.array_equal(np.asarray(again)[~keep], after[~keep])


def test_inpaint_image_mean_of_averages_the_samples_of_consecutive_seeds(trained, tmp_path):
    root, result = trained
    image, mask = _photo_and_mask(root)
    image.save(tmp_path / "image.png")
    mask.save(tmp_path / "mask.png")
    keep = np.asarray(mask.resize((75, 41), Image.Resampling.NEAREST)) >= 128
    run = lambda **kw: np.asarray(inpaint_image(tmp_path / "image.png", tmp_path / "mask.png", result.checkpoint,
                                                num_denoising_steps=3, save_result=None, dc_repeats=1, **kw),
                                  dtype=np.float64)
    one, two = run(seed=5, mean_of=1), run(seed=6, mean_of=1)
    both = run(seed=5, mean_of=2)
    assert np.abs(one - two)[~keep].mean() > 5  # the two samples differ ...
    # ... and mean_of=2 is their average (up to 8-bit rounding and the bicubic resize's clipping)
    assert np.abs(both - (one + two) / 2)[~keep].mean() < 1.0
    assert np.array_equal(both[keep], np.asarray(image, dtype=np.float64)[keep])


def test_inpaint_image_refuses_bad_arguments_and_never_overwrites_inputs(trained, tmp_path):
    root, result = trained
    image, mask = _photo_and_mask(root)
    image.save(tmp_path / "image.png")
    mask.save(tmp_path / "mask.png")
    original = (tmp_path / "image.png").read_bytes()
    for target in ("image.png", "mask.png"):
        with pytest.raises(ValueError, match="overwrite"):
            inpaint_image(tmp_path / "image.png", tmp_path / "mask.png", result.checkpoint, 2,
                          save_result=tmp_path / target)
    assert (tmp_path / "image.png").read_bytes() == original
    with pytest.raises(ValueError, match="num_denoising_steps"):
        inpaint_image(tmp_path / "image.png", tmp_path / "mask.png", result.checkpoint, 0, save_result=None)
    with pytest.raises(ValueError, match="dc_repeats"):
        inpaint_image(tmp_path / "image.png", tmp_path / "mask.png", result.checkpoint, 2, save_result=None,
                      dc_repeats=0)
    with pytest.raises(ValueError, match="mean_of"):
        inpaint_image(tmp_path / "image.png", tmp_path / "mask.png", result.checkpoint, 2, save_result=None,
                      mean_of=0)
    with pytest.raises(FileNotFoundError, match="nothere.png"):
        inpaint_image(tmp_path / "image.png", tmp_path / "nothere.png", result.checkpoint, 2, save_result=None)
    with pytest.raises(FileNotFoundError, match="nope"):
        inpaint_image(tmp_path / "image.png", tmp_path / "mask.png", tmp_path / "nope", 2, save_result=None)
    with pytest.raises(ValueError, match="save_result"):
        inpaint_image(tmp_path / "image.png", tmp_path / "mask.png", result.checkpoint, 2,
                      save_result=tmp_path / "result.notanimage")


def test_package_exports_the_guides_interface():
    for name in ("InpaintingUNET", "UNET", "UnetLayer", "DDPM_Scheduler", "ResBlock", "Attention",
                 "SinusoidalEmbeddings", "InpaintingDataset", "train_inpainting", "inpaint_image", "make_patterns",
                 "random_hole", "set_seed", "setup_cuda_device", "display_reverse"):
        assert hasattr(inpaintlib, name), name


def test_shipped_patterns_checkpoint_loads_and_is_small(tmp_path):
    from inpaintlib.registry import WEIGHTS_DIR, MODELS

    path = WEIGHTS_DIR / MODELS["patterns"]
    if not path.exists():
        pytest.skip("inpaintlib/weights/patterns_small.pt is not in this checkout")
    assert path.stat().st_size < 8e6
    ckpt = load_checkpoint(path, kind="freeform")
    assert "optimizer" not in ckpt and all(v.dtype == torch.float16 for v in ckpt["ema"].values()
                                           if v.is_floating_point())
    model = load_model(inpaintlib.pretrained("patterns"), device="cpu")
    assert isinstance(model, InpaintingUNET) and model.config.image_size == 64
    # it is a trained model: on six fresh patterns its fills are far closer than mid grey or noise
    images = torch.stack([load_rgb(p) for p in make_patterns(tmp_path, 6, image_size=64, seed=123)])
    hole = torch.stack([random_hole("circle", 64, (0.2, 0.3), torch.Generator().manual_seed(i)) for i in range(6)])
    filled = inpaint(model, images, hole, steps=10, init_from_y=False, known="clean", seed=0)
    grey = images * (1 - hole) + 0.5 * hole
    assert l1_hole(filled, images, hole) < 0.75 * l1_hole(grey, images, hole)


# ----------------------------------------------------------------------------------------------
# the harmonic fill and base="harmonic"


def test_harmonic_fill_keeps_the_known_pixels_and_restores_smooth_content():
    from inpaintlib.freeform import harmonic_fill

    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    ramp = torch.stack([0.3 * x + 0.5 * y, 1 - x, 0.2 + 0 * x])[None]  # linear in each channel
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 10:50, 5:40] = 1.0
    filled = harmonic_fill(ramp * (1 - hole) + 7.0 * hole, 1 - hole)  # the hole's old values are ignored
    assert torch.equal(filled * (1 - hole), ramp * (1 - hole))
    assert (filled - ramp).abs().max() < 1e-3  # a linear function is harmonic: it comes back
    # an edge is not: the fill blurs it, so a textured image is not restored
    step = (x > 0.5).float()[None, None].repeat(1, 3, 1, 1)
    assert (harmonic_fill(step, 1 - hole) - step).abs().max() > 0.2
    with pytest.raises(ValueError, match="keep"):
        harmonic_fill(ramp, (1 - hole)[0])


class _PassImage(torch.nn.Module):
    def forward(self, x_in, mask):
        return x_in


def test_base_harmonic_predicts_the_residual_and_reads_out_the_images_target():
    """With base="harmonic" the U-Net works on r = x0 - B (B: the harmonic fill); its output is turned back
    into the image's target, so an inner network that is exact on r is exact on x0 for every pred."""
    from inpaintlib.freeform import harmonic_fill
    from inpaintlib.freeform.model import InpaintingUNET, freeform_config

    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    hole = torch.zeros(2, 1, 32, 32)
    hole[..., 8:24, 4:20] = 1.0
    keep = 1 - hole
    t = torch.tensor([5, 700])
    eps = torch.randn(x0.shape, generator=g)
    schedule = NoiseSchedule(1000, "linear")
    x_t = schedule.q_sample(x0, t, eps)
    base = harmonic_fill(x0 * keep, keep)
    r0 = x0 - base
    for pred in ("eps", "x0", "v"):
        model = InpaintingUNET(freeform_config("tiny", pred=pred, base="harmonic")).eval()
        seen = {}

        def exact(h, temb, pred=pred):  # the inner network: returns the residual's true target
            seen["input"] = h
            return schedule.target(pred, r0, eps, t)

        model.unet = exact
        model.input_stage = _PassImage()
        with torch.no_grad():
            out = model(x_t, t, y=x0 * keep, hole=hole)
        torch.testing.assert_close(hole * out, hole * schedule.target(pred, x0, eps, t), atol=1e-5, rtol=1e-5)
        # the input holds the clean known pixels and, in the hole, the residual at the noise level of t
        r_t = schedule.q_sample(r0, t, eps)
        torch.testing.assert_close(seen["input"], keep * x0 + hole * r_t, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="base"):
        FreeformConfig(base="telea")
    assert FreeformConfig.from_dict({k: v for k, v in FreeformConfig().to_dict().items() if k != "base"}).base == "none"


def test_base_mmse_diffuses_the_residual_from_a_frozen_regression_unet():
    """base="mmse": the hole's residual is taken from the fill of a regression U-Net held inside the model
    (``base_net``, its own configuration ``base_config()``): frozen, in eval mode, saved with the model, and
    its fill is what the model reads out where the inner network predicts a zero residual."""
    from inpaintlib.freeform import mmse_fill
    from inpaintlib.freeform.model import InpaintingUNET, build_freeform_model, freeform_config
    from inpaintlib.utils import to_model, to_unit

    cfg = freeform_config("tiny", pred="x0", base="mmse")
    assert cfg.base_config().objective == "mmse" and cfg.base_config().base == "harmonic"
    model = InpaintingUNET(cfg)
    torch.manual_seed(0)
    for p in model.base_net.parameters():  # a regression U-Net with some output (conv_out starts at zero)
        p.data.normal_(0.0, 0.05)
    model.train()
    assert not model.base_net.training and not any(p.requires_grad for p in model.base_net.parameters())
    assert all(p.requires_grad for name, p in model.named_parameters() if not name.startswith("base_net."))
    assert any(k.startswith("base_net.") for k in model.state_dict())
    again = build_freeform_model(cfg.to_dict())
    again.load_state_dict(model.state_dict())  # saved and rebuilt with it

    g = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 32, 32, generator=g)
    hole = torch.zeros(2, 1, 32, 32)
    hole[..., 6:20, 10:26] = 1.0
    expected = mmse_fill(model.base_net, images, hole)  # what the frozen U-Net alone fills
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32, generator=g), torch.tensor([3, 900]), y=to_model(images) * (1 - hole),
                    hole=hole)  # the inner network starts at zero: a zero residual, so x0 = the base fill
    torch.testing.assert_close(hole * to_unit(out), hole * expected, atol=1e-5, rtol=1e-5)
    assert (hole * (expected - images)).abs().sum() > 0  # not trivially the truth
    with pytest.raises(ValueError, match="base_config"):
        freeform_config("tiny", base="harmonic").base_config()
    with pytest.raises(ValueError, match="objective"):
        freeform_config("tiny", pred="x0", base="mmse", objective="mmse")


def test_init_from_fine_tunes_a_trained_network_at_another_size(trained, tmp_path):
    """train_inpainting(init_from=...) starts from that checkpoint's EMA weights, with its architecture at the
    new image_size (weights trained at 32x32 run at 64x64); step and optimizer start afresh."""
    root, result = trained
    start = load_checkpoint(result.checkpoint, kind="freeform")
    make_patterns(tmp_path / "big", 8, image_size=64, seed=5)
    tuned = train_inpainting(tmp_path / "big", tmp_path / "tuned.pt", num_epochs=1, batch_size=4, max_steps=1,
                             lr=1e-9, image_size=64, init_from=result.checkpoint, progress=False)
    saved = load_checkpoint(tuned.checkpoint, kind="freeform")
    assert saved["step"] == 1 and saved["model_config"]["image_size"] == 64
    assert {k: v for k, v in saved["model_config"].items() if k != "image_size"} == \
        {k: v for k, v in start["model_config"].items() if k != "image_size"}
    for key, value in start["ema"].items():  # one step at lr 1e-9: the starting weights, to rounding
        torch.testing.assert_close(saved["model"][key].float(), value.float(), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="init_from"):
        train_inpainting(tmp_path / "big", tmp_path / "other.pt", 1, 4, image_size=64, preset="tiny",
                         init_from=result.checkpoint)


def test_compare_with_telea_scores_the_model_as_inpaint_image_fills_and_both_classical_fills(trained):
    from inpaintlib.freeform import compare_with_telea

    root, result = trained
    model = load_model(result.checkpoint, device="cpu")
    flat = torch.rand(3, 3, 1, 1, generator=torch.Generator().manual_seed(0)).expand(3, 3, 32, 32).clone()
    flat = (flat * 255).round() / 255  # flat colours, on 8-bit levels
    one = compare_with_telea(model, flat, ("rectangle",), steps=2, dc_repeats=1, mean_of=1)["rectangle"]
    two = compare_with_telea(model, flat, ("rectangle",), steps=2, dc_repeats=1, mean_of=2)["rectangle"]
    gt, hole, ours, telea, harmonic = one["samples"]
    assert gt.shape == ours.shape == telea.shape == harmonic.shape == (3, 3, 32, 32) and hole.shape == (3, 1, 32, 32)
    assert torch.equal(ours * (1 - hole), gt.mul(255).round().div(255) * (1 - hole))  # known pixels kept
    # a flat colour is harmonic: the harmonic fill restores it, unlike this 4-step model; the baselines
    # do not depend on the model's sampler settings
    assert one["harmonic"]["psnr_hole"] > 40 > one["model"]["psnr_hole"]
    assert one["harmonic"] == two["harmonic"] and one["telea"] == two["telea"]
    assert not torch.equal(two["samples"][2], ours)  # mean_of=2 averages a second sample in


@pytest.mark.parametrize("c", [16.0, 0.5])
def test_snr_scale_keeps_a_warm_started_networks_function(c):
    """FreeformConfig.snr_scale = c: the network is told the step of the unshifted schedule with the same SNR,
    so the same weights read at step t of the shifted schedule compute what they computed at that step of the
    old one, on the same input (a warm start loses nothing); the shifted step is interpolated, not rounded."""
    from inpaintlib.freeform.model import InpaintingUNET, freeform_config

    plain_cfg = freeform_config("tiny", base="harmonic")
    torch.manual_seed(0)
    plain = InpaintingUNET(plain_cfg)
    for p in plain.parameters():
        p.data.normal_(0.0, 0.05)
    shifted = InpaintingUNET(freeform_config("tiny", base="harmonic", snr_scale=c))
    shifted.load_state_dict(plain.state_dict())
    plain.eval(), shifted.eval()
    new, old = NoiseSchedule.of(shifted.config), NoiseSchedule.of(plain_cfg)
    lam_old = old.snr(torch.arange(1000)).log().flatten()
    g = torch.Generator().manual_seed(2)
    images = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    hole = torch.zeros(3, 1, 32, 32)
    hole[..., 8:24, 4:20] = 1.0
    x = torch.randn(3, 3, 32, 32, generator=g)
    for step in (200, 500, 900):
        t = torch.full((3,), step)
        target = new.snr(t).log().flatten()[0]
        k = int((lam_old > target).sum())  # the old steps just before and after the same SNR
        frac = float((lam_old[k - 1] - target) / (lam_old[k - 1] - lam_old[k]))
        with torch.no_grad():
            out = shifted(x, t, y=images * (1 - hole), hole=hole)
            before = plain(x, torch.full((3,), k - 1), y=images * (1 - hole), hole=hole)
            after = plain(x, torch.full((3,), k), y=images * (1 - hole), hole=hole)
        assert 0.0 <= frac <= 1.0
        gap = (hole * (after - before)).abs().max()
        err = (hole * (out - ((1 - frac) * before + frac * after))).abs().max()
        assert err <= 0.3 * gap + 1e-5, (step, float(err), float(gap))  # nearer than either neighbour
        with torch.no_grad():
            unshifted = plain(x, t, y=images * (1 - hole), hole=hole)
        assert (hole * (out - unshifted)).abs().max() > 3 * max(float(err), 1e-4)  # not step t itself


def test_training_can_draw_thin_strokes():
    """mask_kinds may name "thin_stroke" for training (masks.TRAINING_MASK_KINDS): InpaintingDataset draws
    masks.thin_stroke_hole, its width scaled with the image size; an unknown kind names the choices."""
    from inpaintlib.freeform.recipe import InpaintingTrainConfig
    from inpaintlib.masks import TRAINING_MASK_KINDS, thin_stroke_hole, training_hole

    assert TRAINING_MASK_KINDS[:len(MASK_KINDS)] == MASK_KINDS and "thin_stroke" in TRAINING_MASK_KINDS
    hole = training_hole("thin_stroke", 64, generator=torch.Generator().manual_seed(4))
    same = thin_stroke_hole(64, (4.0, 8.0), torch.Generator().manual_seed(4))
    assert torch.equal(hole, same) and 0.0 < hole.mean() < 0.2
    big = torch.stack([training_hole("thin_stroke", 128, generator=torch.Generator().manual_seed(s))
                       for s in range(8)]).mean()
    small = torch.stack([training_hole("thin_stroke", 64, generator=torch.Generator().manual_seed(s))
                         for s in range(8)]).mean()
    assert 0.7 < float(big / small) < 1.4  # the same share of the image at twice the size: the brush scales
    assert torch.equal(training_hole("circle", 32, (0.2, 0.3), torch.Generator().manual_seed(1)),
                       random_hole("circle", 32, (0.2, 0.3), torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="thin_stroke"):
        training_hole("scribble", 32)
    InpaintingTrainConfig("d", 1, 2, mask_kinds=("rectangle", "thin_stroke"))
    with pytest.raises(ValueError, match="mask_kinds"):
        InpaintingTrainConfig("d", 1, 2, mask_kinds=("scribble",))
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        make_patterns(root, 4, image_size=32, seed=0)
        data = InpaintingDataset(root, 32, mask_kinds="thin_stroke", seed=0)
        keeps = torch.stack([data[i]["mask"] for i in range(4)])
        assert ((keeps == 0) | (keeps == 1)).all() and 0.6 < keeps.mean() < 1.0
