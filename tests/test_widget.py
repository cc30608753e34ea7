"""The interactive widget's Python side (``inpaintlib/widget/``), without a browser.

The core first (no ipywidgets needed): the painted canvas layer -> hole tensor, with brush, erase,
clear and the centre box; the PNG data URLs the canvas sends; the frames the sampler's callback
produces; the GIF. Then the widgets themselves, with their traits set the way the browser sets them.
The browser itself is exercised by ``tests/test_browser.py``.
"""
from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from inpaintlib.masks import center_hole
from inpaintlib.widget import (PNG_PREFIX, CanvasMask, decode_png_data_url, hole_from_painted, image_to_tensor,
                               run_inpainting, uploaded_files, write_gif)


@pytest.fixture(scope="module")
def tiny_model(tiny_net):
    return tiny_net(base_channels=8, init_std=None)  # PyTorch's initialisation


def canvas_png(draw_fn, size=(280, 280)) -> str:
    """A layer as the browser sends it: RGBA, red where painted, transparent elsewhere."""
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw_fn(ImageDraw.Draw(img))
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return PNG_PREFIX + base64.b64encode(buffer.getvalue()).decode()


# ----------------------------------------------------------------------------------------------
# painted mask -> hole tensor


def test_hole_from_painted_thresholds_each_block_at_half():
    painted = np.zeros((40, 40), dtype=np.float32)  # a 4x4 image at scale 10
    painted[0:10, 0:5] = 1.0  # pixel (0, 0): exactly half painted -> hole
    painted[0:10, 10:14] = 1.0  # pixel (0, 1): 40 % -> known
    painted[10:20, 10:20] = 0.6  # pixel (1, 1): every canvas pixel 60 % painted -> hole
    painted[30:40, 30:40] = 1.0  # pixel (3, 3): fully painted -> hole
    hole = hole_from_painted(painted, scale=10)
    assert hole.shape == (1, 1, 4, 4) and hole.dtype == torch.float32
    expected = torch.zeros(4, 4)
    expected[0, 0] = expected[1, 1] = expected[3, 3] = 1
    assert torch.equal(hole[0, 0], expected)
    assert hole_from_painted(painted, scale=10, threshold=0.4)[0, 0, 0, 1] == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(painted=np.zeros((25, 30)), scale=10), "multiples of scale"),
    (dict(painted=np.zeros((30, 30)), scale=0), "scale"),
    (dict(painted=np.zeros((30, 30)), scale=10, threshold=0.0), "threshold"),
    (dict(painted=np.zeros((3, 30, 30)), scale=10), "2-d"),
])
def test_hole_from_painted_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hole_from_painted(**kwargs)


def test_brush_stroke_paints_a_capsule_in_image_pixels():
    layer = CanvasMask(28, scale=10)
    assert layer.canvas_shape == (280, 280)
    layer.stroke([(4, 14), (24, 14)], brush=2)  # 2 px wide along y = 14: rows 13 and 14
    hole = layer.to_hole()[0, 0]
    rows, cols = hole.nonzero()[:, 0].unique(), hole.nonzero()[:, 1].unique()
    assert rows.tolist() == [13, 14]
    assert cols.tolist() == list(range(3, 25))  # the round caps cover most of columns 3 and 24
    assert hole.sum() == 2 * 22


def test_brush_dot_and_brush_size():
    small = CanvasMask(28, 10).stroke([(14, 14)], brush=2).to_hole()[0, 0]
    big = CanvasMask(28, 10).stroke([(14, 14)], brush=6).to_hole()[0, 0]
    assert small.sum() == 4 and torch.equal(small[13:15, 13:15], torch.ones(2, 2))  # a 2x2 dot
    assert big.sum() > small.sum() and (big >= small).all()
    assert torch.equal(big, big.flip(0)) and torch.equal(big, big.flip(1))  # round: symmetric about (14, 14)


def test_erase_removes_only_what_it_covers():
    layer = CanvasMask(28, 10).stroke([(2, 10), (26, 10)], brush=4)
    full = layer.to_hole()[0, 0].clone()
    layer.stroke([(2, 10), (14, 10)], brush=6, erase=True)
    left_erased = layer.to_hole()[0, 0]
    assert left_erased[:, :14].sum() == 0
    assert torch.equal(left_erased[:, 17:], full[:, 17:])
    layer.stroke([(2, 10), (26, 10)], brush=6, erase=True)
    assert layer.to_hole().sum() == 0


def test_clear_and_centre_box():
    layer = CanvasMask(28, 10).stroke([(0, 0), (27, 27)], brush=3)
    assert layer.to_hole().sum() > 0
    assert layer.clear().to_hole().sum() == 0
    assert torch.equal(layer.centre_box(12).to_hole(), center_hole(28, 12))  # the design's hole exactly
    assert torch.equal(layer.centre_box(5).to_hole(), center_hole(28, 5))  # replaces, does not add
    with pytest.raises(ValueError, match="center_box"):
        layer.centre_box(40)


def test_stroke_rejects_bad_input():
    layer = CanvasMask(28, 10)
    with pytest.raises(ValueError, match="points"):
        layer.stroke([], brush=2)
    with pytest.raises(ValueError, match="brush"):
        layer.stroke([(1, 1)], brush=0)
    with pytest.raises(ValueError, match="size"):
        CanvasMask(0, 10)


def test_set_hole_round_trip_and_validation():
    hole = torch.zeros(28, 28)
    hole[3:9, 20:26] = 1
    layer = CanvasMask(28, 10)
    for given in (hole, hole[None, None], hole.numpy()):
        assert torch.equal(layer.set_hole(given).to_hole()[0, 0], hole)
    with pytest.raises(ValueError, match="hole must be binary"):
        layer.set_hole(hole * 0.5)
    with pytest.raises(ValueError, match="hole must have shape"):
        layer.set_hole(torch.zeros(14, 14))
    with pytest.raises(ValueError, match="hole must be a torch.Tensor"):
        layer.set_hole([[0, 1]])


def test_png_round_trip_between_kernel_and_canvas():
    layer = CanvasMask(28, 10).stroke([(5, 5), (20, 22)], brush=3)
    url = layer.to_png()
    assert url.startswith(PNG_PREFIX)
    rgba = decode_png_data_url(url)
    assert rgba.shape == (280, 280, 4) and (rgba[rgba[..., 3] > 0][:, :3] == (255, 0, 0)).all()
    again = CanvasMask(28, 10).load_png(url)
    assert np.array_equal(again.painted, layer.painted)
    assert again.load_png("").to_hole().sum() == 0  # "" = empty layer


def test_a_canvas_drawing_becomes_the_hole_the_kernel_sees():
    # a rectangle drawn by the browser in canvas pixels x in [55, 150), y in [100, 130)
    url = canvas_png(lambda d: d.rectangle([55, 100, 149, 129], fill=(255, 0, 0, 255)))
    hole = CanvasMask(28, 10).load_png(url).to_hole()[0, 0]
    expected = torch.zeros(28, 28)
    expected[10:13, 5:15] = 1  # column 5 is exactly half painted: a hole pixel
    assert torch.equal(hole, expected)
    # anti-aliased edges (alpha < 255) count by their alpha
    faint = canvas_png(lambda d: d.rectangle([0, 0, 9, 9], fill=(255, 0, 0, 100)))
    assert CanvasMask(28, 10).load_png(faint).to_hole().sum() == 0


def test_load_png_rejects_other_sizes_and_garbage():
    with pytest.raises(ValueError, match="280x280"):
        CanvasMask(28, 10).load_png(canvas_png(lambda d: None, size=(100, 100)))
    with pytest.raises(ValueError, match="PNG data URL"):
        CanvasMask(28, 10).load_png("data:image/jpeg;base64,AAAA")
    with pytest.raises(ValueError, match="could not be decoded"):
        CanvasMask(28, 10).load_png(PNG_PREFIX + base64.b64encode(b"not a png").decode())


def test_ink_layer_is_area_averaged_into_a_grey_digit():
    ink = CanvasMask(28, 10, colour=(255, 255, 255))
    ink.painted[100:105, :] = 1.0  # half of row 10
    image = ink.to_image()
    assert image.shape == (1, 1, 28, 28)
    assert torch.allclose(image[0, 0, 10], torch.full((28,), 0.5)) and image.sum() == pytest.approx(14.0)


# ----------------------------------------------------------------------------------------------
# frames from the sampler's callback


@pytest.mark.parametrize("steps, dc_repeats, every", [(6, 1, 2), (7, 1, 3), (4, 2, 3), (5, 1, 1), (3, 1, 10)])
def test_frames_every_k_proposals(tiny_model, labelled_digits, steps, dc_repeats, every):
    image, hole = labelled_digits[0][:1], center_hole(28, 12)
    seen = []
    run = run_inpainting(tiny_model, image, hole, steps=steps, dc_repeats=dc_repeats, every=every, seed=0,
                         on_frame=seen.append)
    total = steps * dc_repeats
    assert len(run.frames) == math.ceil(total / every) == len(seen)
    assert [f["step"] for f in run.frames] == sorted({*range(every, total + 1, every), total})
    assert run.frames[-1]["step"] == total and run.frames[-1]["t_prev"] == -1
    assert run.nfe == total and run.hole_pixels == 144
    for f in run.frames:
        assert f["x"].shape == f["x0_pred"].shape == (1, 1, 28, 28)
        assert f["x"].device.type == "cpu" and f["total"] == total
        assert torch.isfinite(f["x"]).all()
        assert f["x0_pred"].min() >= -1 and f["x0_pred"].max() <= 1  # model space, clipped x0 estimate
    assert run.result.shape == (1, 1, 28, 28) and 0 <= run.result.min() and run.result.max() <= 1


def test_known_pixels_unchanged_and_the_hole_filled(tiny_model, labelled_digits):
    image = labelled_digits[0][1:2]
    hole = CanvasMask(28, 10).stroke([(3, 3), (25, 20)], brush=4).to_hole()
    run = run_inpainting(tiny_model, image, hole, steps=5, every=2, seed=0)
    keep = hole == 0
    assert torch.equal(run.result[keep], image[keep])
    assert not torch.equal(run.result[~keep], image[~keep])
    # the last frame's x is the result inside the hole (model space -> [0, 1] by to_unit)
    from inpaintlib.utils import to_unit

    assert torch.allclose(to_unit(run.frames[-1]["x"])[~keep], run.result[~keep], atol=1e-6)


def test_same_seed_same_frames(tiny_model, labelled_digits):
    a = run_inpainting(tiny_model, labelled_digits[0][:1], center_hole(), steps=4, eta=0.5, every=1, seed=3)
    b = run_inpainting(tiny_model, labelled_digits[0][:1], center_hole(), steps=4, eta=0.5, every=1, seed=3)
    assert torch.equal(a.result, b.result) and all(torch.equal(p["x"], q["x"]) for p, q in zip(a.frames, b.frames))


@pytest.mark.parametrize("kwargs, match", [
    (dict(hole=torch.zeros(1, 1, 28, 28)), "hole is empty"),
    (dict(every=0), "every"),
    (dict(steps=0), "steps"),
    (dict(steps=51), "steps"),
    (dict(dc_repeats=0), "dc_repeats"),
    (dict(sampler="guidance", guidance=-1.0), "guidance must be"),
    (dict(sampler="nope"), "sampler must be one of 'replace', 'guidance', 'ddnm', 'pigdm', 'diffpir', 'smc', 'mcgdiff', 'tds'"),
    (dict(sampler="smc", particles=0), "particles"),
    (dict(image=torch.rand(2, 1, 28, 28)), "image must be"),
    (dict(image=torch.rand(1, 3, 28, 28)), "image must be"),
])
def test_run_inpainting_rejects_bad_input(tiny_model, kwargs, match):
    args = dict(image=torch.rand(1, 1, 28, 28), hole=center_hole(), steps=3, every=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        run_inpainting(tiny_model, **args)


# ----------------------------------------------------------------------------------------------
# the GIF


def test_gif_has_one_frame_per_kept_step_plus_the_result(tiny_model, labelled_digits, tmp_path):
    image, hole = labelled_digits[0][:1], center_hole()
    run = run_inpainting(tiny_model, image, hole, steps=7, every=2, seed=0)
    path = write_gif(tmp_path / "sub" / "run.gif", run.frames, image, hole, run.result, image, scale=3)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == len(run.frames) + 1 == 5
        width, height = gif.size
        assert width > 3 * 28 * 3 and height > 28 * 3
        gif.seek(gif.n_frames - 1)
        assert gif.info["duration"] == 1500  # the result is held


def test_gif_rejects_bad_input(tiny_model, labelled_digits, tmp_path):
    image, hole = labelled_digits[0][:1], center_hole()
    run = run_inpainting(tiny_model, image, hole, steps=2, every=1, seed=0)
    with pytest.raises(ValueError, match="frames"):
        write_gif(tmp_path / "a.gif", [], image, hole, run.result)
    with pytest.raises(ValueError, match=r"\.gif"):
        write_gif(tmp_path / "a.png", run.frames, image, hole, run.result)


# ----------------------------------------------------------------------------------------------
# images for the free-form widget


def test_image_to_tensor_crops_and_resizes(tmp_path):
    rgb = np.zeros((40, 80, 3), dtype=np.uint8)
    rgb[:, 20:60] = 255  # the centre square is white, the sides black
    Image.fromarray(rgb).save(tmp_path / "wide.png")
    for given in (tmp_path / "wide.png", (tmp_path / "wide.png").read_bytes(), Image.fromarray(rgb)):
        x = image_to_tensor(given, 32)
        assert x.shape == (1, 3, 32, 32) and x.min() > 0.95  # only the white centre square is left
    assert image_to_tensor(torch.rand(3, 16, 16), 32).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="could not be read"):
        image_to_tensor(b"not an image", 32)
    with pytest.raises(ValueError, match="not a file"):
        image_to_tensor(tmp_path / "missing.png", 32)


def test_uploaded_files_reads_ipywidgets_7_and_8():
    v8 = ({"name": "a.png", "type": "image/png", "size": 3, "content": memoryview(b"abc")},)
    v7 = {"a.png": {"metadata": {"name": "a.png", "size": 3}, "content": b"abc"}}
    assert uploaded_files(v8) == uploaded_files(v7) == [("a.png", b"abc")]
    assert uploaded_files(()) == [] and uploaded_files({}) == []


def data_url(rgb: np.ndarray, fmt: str = "PNG", mime: str = "image/png") -> str:
    """An image file as the browser's FileReader.readAsDataURL hands it over."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt)
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


def test_image_to_tensor_reads_an_uploaded_data_url():
    rgb = np.zeros((40, 60, 3), dtype=np.uint8)
    rgb[:, 30:] = (0, 0, 255)  # right half blue: after the centre crop, the right half of the square
    for url in (data_url(rgb), data_url(rgb, "JPEG", "image/jpeg")):
        x = image_to_tensor(url, 20)
        assert x.shape == (1, 3, 20, 20)
        assert x[0, 2, :, 15:].mean() > 0.9 and x[0, 2, :, :5].mean() < 0.1
    assert torch.equal(image_to_tensor(data_url(rgb), 20), image_to_tensor(base64.b64decode(data_url(rgb).split(",")[1]), 20))
    with pytest.raises(ValueError, match="base64 data URL"):
        image_to_tensor("data:image/png,not-base64", 20)
    with pytest.raises(ValueError, match="not valid base64"):
        image_to_tensor("data:image/png;base64,@@@", 20)


# ----------------------------------------------------------------------------------------------
# the widgets, driven the way the browser drives them (traits) and from code

ipywidgets = pytest.importorskip("ipywidgets")
anywidget = pytest.importorskip("anywidget")

from inpaintlib.widget import FreeformInpaintWidget, InpaintWidget  # noqa: E402


@pytest.fixture()
def widget(tiny_model, labelled_digits, tmp_path):
    images, labels = labelled_digits
    return InpaintWidget(tiny_model, images, labels, steps=4, every=2, gif_path=tmp_path / "w.gif")


def test_widget_starts_on_the_centre_box(widget, labelled_digits):
    assert torch.equal(widget.hole, center_hole(28, 12))
    assert widget.hole_label.value.startswith("hole: 144 of 784 pixels")
    assert torch.equal(CanvasMask(28, 10).load_png(widget.canvas.hole_png).to_hole(), center_hole(28, 12))
    assert torch.equal(widget.image, labelled_digits[0][:1]) and torch.equal(widget.truth, labelled_digits[0][:1])
    assert (widget.canvas.width, widget.canvas.height, widget.canvas.scale) == (28, 28, 10)
    assert widget.canvas.image_png.startswith(PNG_PREFIX)
    assert widget.result_view.value and widget.live_view.value
    # the views reach the browser as PNG data URLs (str), the PNG bytes stay in the kernel
    for view in (widget.result_view, widget.live_view):
        assert isinstance(view.src, str) and view.src == PNG_PREFIX + base64.b64encode(view.value).decode()
        assert "value" not in view.keys and "src" in view.keys  # value is not synced, src is


def test_widget_receives_the_browser_stroke(widget):
    # what canvas.js does after a stroke: set hole_png to the layer's PNG data URL
    widget.canvas.hole_png = canvas_png(lambda d: d.rectangle([0, 0, 49, 29], fill=(255, 0, 0, 255)))
    expected = torch.zeros(1, 1, 28, 28)
    expected[..., :3, :5] = 1
    assert torch.equal(widget.hole, expected)
    assert widget.hole_label.value.startswith("hole: 15 of 784")
    # a stale canvas of another size is ignored, with a message, and the hole is kept
    widget.canvas.hole_png = canvas_png(lambda d: None, size=(64, 64))
    assert torch.equal(widget.hole, expected) and "ignored" in widget.status.value


def test_widget_buttons_clear_and_centre_box(widget):
    widget.clear_button.click()
    assert widget.hole_pixels == 0 and CanvasMask(28, 10).load_png(widget.canvas.hole_png).to_hole().sum() == 0
    widget.box_button.click()
    assert torch.equal(widget.hole, center_hole(28, 12))
    widget.brush.value = 5.0
    widget.tool.value = "erase"
    assert widget.canvas.brush == 5.0 and widget.canvas.tool == "erase"  # the canvas paints with these
    widget.paint([(14, 14)], erase=True)  # from code: the slider's brush, erasing
    assert widget.hole_pixels < 144 and widget.hole[0, 0, 14, 14] == 0


def test_widget_run_from_code(widget, tmp_path):
    before = widget.result_view.value
    widget.clear_hole().paint([(4, 4), (20, 10)], brush=3)
    hole = widget.hole.clone()
    result = widget.run(steps=5, every=2, seed=1)
    assert widget.steps.value == 5 and len(widget.frames) == 3
    keep = hole == 0
    assert torch.equal(result[keep], widget.image[keep]) and not torch.equal(result[~keep], widget.image[~keep])
    assert widget.result_view.value != before and widget.status.value.startswith("done")
    assert f"filled {int(hole.sum())} hole pixels" in widget.status.value
    path = widget.save_gif()
    with Image.open(path) as gif:
        assert path == tmp_path / "w.gif" and gif.n_frames == 4
    widget.gif_button.click()
    assert widget.status.value == f"saved {path}"
    # a new stroke: the result view no longer shows a result for another hole, and says so
    after_run = widget.result_view.value
    widget.paint([(25, 25)], brush=2)
    assert widget.result_view.value != after_run
    assert widget.save_gif(tmp_path / "still.gif").is_file()  # the last run can still be saved


def test_widget_run_button_reports_errors_in_the_widget(widget):
    widget.clear_hole()
    widget.run_button.click()
    assert widget.status.value.startswith("error: hole is empty") and not widget.run_button.disabled
    with pytest.raises(ValueError, match="no run"):
        widget.save_gif()


def test_widget_run_is_the_same_as_run_inpainting(widget, tiny_model, labelled_digits, monkeypatch):
    widget.show_digit(2)
    widget.set_hole(center_hole(28, 8))
    ours = widget.run(steps=3, eta=0.3, dc_repeats=2, seed=5, every=1)
    direct = run_inpainting(tiny_model, labelled_digits[0][2:3], center_hole(28, 8), steps=3, eta=0.3, dc_repeats=2,
                            seed=5, every=1)
    assert torch.equal(ours, direct.result) and len(widget.frames) == 6
    assert widget.index.description == "digit (1)"
    import inpaintlib.samplers

    seen, real = [], inpaintlib.samplers.inpaint
    monkeypatch.setattr(inpaintlib.samplers, "inpaint", lambda *a, **kw: seen.append(kw["guidance"]) or real(*a, **kw))
    guided = widget.run(sampler="guidance", guidance=20.0)  # the other controls stay where the last run left them
    assert widget.guidance.value == 20.0 and seen == [20.0]  # the slider's value reaches the sampler
    assert torch.equal(guided, run_inpainting(tiny_model, labelled_digits[0][2:3], center_hole(28, 8), steps=3, eta=0.3,
                                              dc_repeats=2, seed=5, every=1, guidance=20.0, sampler="guidance").result)


def test_widget_draw_mode(widget):
    widget.source.value = "draw"
    assert widget.image.sum() == 0 and widget.canvas.image_png == "" and widget.tool.value == "ink"
    assert "ink" in dict(widget.tool.options).values()
    widget.draw([(14, 4), (14, 24)], brush=3)
    assert widget.image.sum() > 0 and torch.equal(widget.truth, widget.image)
    # the browser's ink layer arrives the same way as the hole
    widget.canvas.ink_png = canvas_png(lambda d: d.rectangle([100, 0, 129, 279], fill=(255, 255, 255, 255)))
    expected = torch.zeros(28, 28)
    expected[:, 10:13] = 1  # a vertical bar, columns 10 to 12
    assert torch.equal(widget.image[0, 0], expected)
    widget.run()
    assert torch.equal(widget.result[widget.hole == 0], widget.image[widget.hole == 0])
    widget.source.value = "test"
    assert widget.image.sum() > 0 and widget.tool.options == (("paint hole", "hole"), ("erase hole", "erase"))


def test_widget_rejects_bad_arguments(tiny_model, labelled_digits):
    with pytest.raises(ValueError, match="source"):
        InpaintWidget(tiny_model, labelled_digits[0], source="camera")
    with pytest.raises(ValueError, match="images"):
        InpaintWidget(tiny_model, labelled_digits[0][:, :, :14])
    with pytest.raises(ValueError, match="steps"):
        InpaintWidget(tiny_model, labelled_digits[0], steps=0)
    with pytest.raises(ValueError, match="index"):
        InpaintWidget(tiny_model, labelled_digits[0], index=3)


# the controls each sampler takes (the others are disabled and not passed to it), written out
SAMPLER_CONTROLS = {"replace": {"eta", "dc_repeats"}, "guidance": {"eta", "dc_repeats", "guidance"},
                    "ddnm": {"eta", "dc_repeats"}, "pigdm": {"eta", "dc_repeats", "guidance"}, "diffpir": {"dc_repeats"},
                    "smc": {"eta", "particles"}, "mcgdiff": {"eta", "particles"}, "tds": {"eta", "particles"}}
@pytest.mark.parametrize("sampler", list(SAMPLER_CONTROLS))
def test_widget_runs_every_sampler_from_its_dropdown(widget, sampler):
    from inpaintlib.samplers import SAMPLERS

    assert set(SAMPLERS) == set(SAMPLER_CONTROLS) and list(widget.sampler.options) == list(SAMPLERS)
    widget.clear_hole().paint([(4, 4), (20, 10)], brush=3)
    keep = widget.hole == 0
    # the user's sliders stay where they are (dc_repeats 2, particles 4): what a sampler does not take is left out
    result = widget.run(sampler=sampler, steps=3, dc_repeats=2, every=1, seed=2)
    assert widget.sampler.value == sampler
    assert torch.equal(result[keep], widget.image[keep]) and not torch.equal(result[~keep], widget.image[~keep])
    nfe = 3 * (2 if "dc_repeats" in SAMPLER_CONTROLS[sampler] else widget.particles.value)
    status = widget.status.value
    assert status.startswith("done in ") and f"sampler {sampler}:" in status and f"NFE {nfe}" in status
    assert ("backward" in status) == (sampler in ("guidance", "pigdm", "tds")) and widget.last_run.nfe == nfe
    if sampler in ("guidance", "pigdm", "tds"):
        assert f"(+{nfe} backward passes)" in status and widget.last_run.backward == nfe


def test_widget_smc_takes_particles_and_eta_not_dc_repeats(widget, tiny_model, labelled_digits):
    widget.dc_repeats.value = 2  # a slider smc does not take: no "does not apply" error
    result = widget.run(sampler="smc", particles=1, steps=3, every=1, seed=4)
    assert widget.eta.value == 1.0  # smc's weights need eta > 0: the dropdown moved it off 0
    assert widget.status.value.startswith("done") and "sampler smc:" in widget.status.value
    assert widget.last_run.nfe == 3 and len(widget.frames) == 3
    assert torch.equal(result, run_inpainting(tiny_model, widget.image, widget.hole, steps=3, eta=1.0, seed=4,
                                              every=1, sampler="smc", particles=1).result)


def test_disabled_controls_follow_the_sampler_dropdown(widget):
    assert widget.sampler.value == "replace" and widget.particles.disabled and widget.guidance.disabled
    for sampler, takes in SAMPLER_CONTROLS.items():
        widget.sampler.value = sampler
        disabled = {name for name in ("eta", "dc_repeats", "guidance", "particles") if getattr(widget, name).disabled}
        assert disabled == {"eta", "dc_repeats", "guidance", "particles"} - takes, sampler
    # switching to "guidance" with the guidance slider at 0 gives it the weight RECOMMENDED for the mnist network,
    # and to "pigdm" that sampler's own default weight
    from inpaintlib.registry import RECOMMENDED
    from inpaintlib.samplers import sampler_options

    widget.guidance.value = 0.0
    widget.sampler.value = "guidance"
    assert widget.guidance.value == RECOMMENDED["mnist"]["guidance"]
    widget.guidance.value = 0.0
    widget.sampler.value = "pigdm"
    assert widget.guidance.value == sampler_options("pigdm")["guidance"]
    # ... and guidance 0 set by hand afterwards is a clear message in the status line, not a silent run
    widget.sampler.value = "guidance"
    widget.guidance.value = 0.0
    widget.run_button.click()
    assert widget.status.value.startswith("error: guidance must be a finite number > 0")


def test_widget_is_built_on_its_sampler_and_rejects_a_bad_name(tiny_model, labelled_digits, sent):
    images, labels = labelled_digits
    smc = InpaintWidget(tiny_model, images, labels, sampler="smc", particles=6, steps=3)
    assert sent == []  # built with its state (Colab), the disabled controls included
    assert smc.sampler.get_state()["index"] == list(smc.sampler.options).index("smc")
    assert smc.particles.value == 6 and not smc.particles.get_state()["disabled"]
    assert smc.dc_repeats.get_state()["disabled"] and smc.guidance.get_state()["disabled"] and smc.eta.value == 1.0
    from inpaintlib.registry import RECOMMENDED

    assert InpaintWidget(tiny_model, images, sampler="guidance").guidance.value == RECOMMENDED["mnist"]["guidance"]
    for bad in ("DDNM", "repaint", None):
        with pytest.raises(ValueError, match=r"sampler must be one of 'replace', .*'smc', 'mcgdiff', 'tds', got"):
            InpaintWidget(tiny_model, images, sampler=bad)
    with pytest.raises(ValueError, match=r"sampler must be one of .*got 'dps'"):
        smc.run(sampler="dps")
    assert smc.sampler.value == "smc"  # a bad name changes nothing


def test_a_recommended_sampler_is_the_default_one(labelled_digits, monkeypatch):
    from inpaintlib import registry

    images, labels = labelled_digits
    monkeypatch.setitem(registry.RECOMMENDED, registry.BEST, dict(steps=20, travel_rounds=3, sampler="ddnm"))
    w = InpaintWidget(None, images, labels)
    assert (w.sampler.value, w.steps.value, w.dc_repeats.value) == ("ddnm", 20, 3) and w.guidance.disabled
    # another sampler than the recommended one keeps only the recommended steps
    other = InpaintWidget(None, images, labels, sampler="replace")
    assert (other.sampler.value, other.steps.value, other.dc_repeats.value) == ("replace", 20, 1)


def test_freeform_widget(tmp_path, tiny_model):
    from inpaintlib.freeform import InpaintingUNET, freeform_config

    torch.manual_seed(0)
    model = InpaintingUNET(freeform_config("tiny", T=50)).eval()
    w = FreeformInpaintWidget(model, n_patterns=3, steps=3, every=1, gif_path=tmp_path / "ff.gif")
    assert w.images.shape == (3, 3, 32, 32) and w.canvas.scale == 10
    assert torch.equal(w.image, w.images[:1]) and w.hole_pixels == 10 * 10
    w.show_pattern(2).clear_hole().paint([(2, 2), (30, 28)], brush=4)
    result = w.run()
    assert "sampler replace:" in w.status.value
    keep = (w.hole == 0).expand_as(result)
    assert torch.equal(result[keep], w.images[2:3][keep]) and len(w.frames) == 3
    assert w.save_gif().is_file()
    # an upload: the browser sets the upload button's data_url (a string, as FileReader.readAsDataURL writes)
    w.upload.name, w.upload.data_url = "mine.png", data_url(np.full((50, 70, 3), (10, 200, 30), dtype=np.uint8))
    assert w.source.value == "upload" and "mine.png" in w.status.value
    assert torch.allclose(w.image[0, :, 0, 0], torch.tensor([10, 200, 30]) / 255.0, atol=1 / 255)
    assert w.upload.data_url == ""  # read and emptied: the same file chosen again is a new change
    w.upload.name, w.upload.data_url = "bad.png", "data:image/png;base64," + base64.b64encode(b"garbage").decode()
    assert w.status.value.startswith("error: bad.png: image could not be read") and w.upload.data_url == ""
    with pytest.raises(ValueError, match="3 channels"):
        FreeformInpaintWidget(tiny_model)
    # the architecture guide's sampler only: no dropdown in its UI, and no other sampler
    assert w.sampler_names == ("replace",) and w.sampler.value == "replace"
    shown = all_widgets(w.ui)
    assert not any(c is w.sampler or c is w.particles for c in shown) and any(c is w.steps for c in shown)
    with pytest.raises(ValueError, match="sampler must be one of 'replace', got 'ddnm'"):
        FreeformInpaintWidget(model, n_patterns=1, sampler="ddnm")


def test_freeform_widget_compares_the_fills_of_notebook_07():
    """compare fills: the harmonic fill, Telea, this run's sample, inpaint_image's default fill and the MMSE
    reference, each scored on the widget's image (the truth), shown in the compare view."""
    from PIL import Image

    from inpaintlib import load_model, pretrained
    from inpaintlib.widget.core import compare_fills

    w = FreeformInpaintWidget(load_model(pretrained("patterns")), n_patterns=2, steps=2, every=1)
    w.clear_hole().paint([(20, 30), (44, 34)], brush=6)
    fills = w.compare()  # no run yet for this hole: compare runs one first
    assert list(fills) == ["harmonic", "Telea", "one sample", "default fill", "MMSE reference"]
    assert torch.equal(fills["one sample"][0], (w.last_run.result.clamp(0, 1) * 255).round() / 255)
    hole = w._run_hole.bool().expand_as(w.image)
    for name, (fill, psnr) in fills.items():
        assert torch.equal(fill[~hole], ((w.image[~hole] * 255).round() / 255)), name  # known pixels kept
        assert 5.0 < psnr < 100.0, (name, psnr)
    assert w.status.value.startswith("compared: harmonic ") and "MMSE reference" in w.status.value
    panel = Image.open(io.BytesIO(w.compare_view.value))
    assert panel.size[0] > 6 * 64  # seven tiles: input, five fills, truth
    # on a flat image the harmonic fill is exact (capped at 100 dB), and so is Telea to 8-bit rounding
    flat = torch.full((1, 3, 64, 64), 0.4)
    exact = compare_fills(w.model, flat, w._run_hole, flat, steps=1)
    assert exact["harmonic"][1] == 100.0 and exact["Telea"][1] > 40.0 and "MMSE reference" not in exact


# ----------------------------------------------------------------------------------------------
# what Colab needs: state in the constructor, strings not binary buffers, Colab's ipywidgets kept


def all_widgets(root) -> list:
    """Every widget reachable from ``root`` through its traits (children, layout, style, ...)."""
    seen, todo = {}, [root]
    while todo:
        w = todo.pop()
        if id(w) in seen:
            continue
        seen[id(w)] = w
        for name in w.keys:
            value = getattr(w, name)
            for item in (value if isinstance(value, (tuple, list)) else (value,)):
                if isinstance(item, ipywidgets.Widget):
                    todo.append(item)
    return list(seen.values())


@pytest.fixture()
def sent(monkeypatch):
    """Every message the widgets send once they exist in the front end (an open comm), after the one
    that creates them: (widget, the state keys it updates, its binary buffers)."""
    messages = []
    real = ipywidgets.Widget._send

    def _send(self, msg, buffers=None):
        if self.comm is not None:
            messages.append((self, sorted(msg.get("state", {})), list(buffers or [])))
        return real(self, msg, buffers=buffers)

    monkeypatch.setattr(ipywidgets.Widget, "_send", _send)
    return messages


def make_widgets(tiny_model, labelled_digits, tmp_path):
    from inpaintlib.freeform import InpaintingUNET, freeform_config

    images, labels = labelled_digits
    ff_model = InpaintingUNET(freeform_config("tiny", T=50)).eval()
    return [InpaintWidget(tiny_model, images, labels, index=1, steps=4, gif_path=tmp_path / "w.gif"),
            InpaintWidget(tiny_model, images, labels, source="draw", steps=4),
            FreeformInpaintWidget(ff_model, n_patterns=2, index=1, steps=3)]


def test_widgets_are_built_with_their_state(tiny_model, labelled_digits, tmp_path, sent):
    # Colab can lose a message sent to a widget before its view exists: building a widget must send
    # no update at all, each widget's first message (its state when created) carries everything
    mnist, drawing, ff = make_widgets(tiny_model, labelled_digits, tmp_path)
    assert sent == [], f"updates sent while building: {[(type(w).__name__, keys) for w, keys, _ in sent]}"
    state = mnist.canvas.get_state()
    assert state["image_png"] == mnist.canvas.image_png and decode_png_data_url(state["image_png"]).shape == (28, 28, 4)
    assert torch.equal(CanvasMask(28, 10).load_png(state["hole_png"]).to_hole(), center_hole(28, 12))
    assert state["tool"] == "hole" and state["brush"] == 3.0
    assert torch.equal(mnist.image, labelled_digits[0][1:2]) and mnist.index.get_state()["value"] == 1
    assert mnist.index.get_state()["description"] == "digit (2)"
    assert mnist.hole_label.get_state()["value"].startswith("hole: 144 of 784")
    assert "inpaint-run" in mnist.run_button.get_state()["_dom_classes"]
    assert {"inpaint-widget", "inpaint-mnist"} <= set(mnist.ui.get_state()["_dom_classes"])
    result = mnist.result_view.get_state()
    assert result["img_class"] == "inpaint-result" and result["src"].startswith(PNG_PREFIX)
    assert decode_png_data_url(result["src"]).shape[1] > 3 * 28 * 6  # the [input | result | truth] panel
    # the drawing source starts on an empty canvas with the ink brush, the free-form on its pattern
    d = drawing.canvas.get_state()
    assert d["image_png"] == "" and d["tool"] == "ink" and drawing.image.sum() == 0
    assert drawing.source.value == "draw" and drawing.source.get_state()["index"] == 1  # its state: an index
    assert drawing.index.get_state()["disabled"]
    assert drawing.clear_ink_button.layout.display == "" and drawing.status.value.startswith("draw a digit")
    assert "ink" in [value for _, value in drawing.tool.options]
    assert torch.equal(ff.image, ff.images[1:2]) and ff.index.get_state()["value"] == 1 and ff.hole_pixels == 100
    # the recorder does see updates: the ones sent later, once the widget is shown
    mnist.status.value = "something else"
    assert [(w, keys) for w, keys, _ in sent] == [(mnist.status, ["value"])]


def test_nothing_reaches_the_browser_as_a_binary_buffer(tiny_model, labelled_digits, tmp_path, sent):
    from ipywidgets.widgets.widget import _remove_buffers

    for w in make_widgets(tiny_model, labelled_digits, tmp_path):
        for part in all_widgets(w.ui):  # each widget's state when it is created
            _, paths, buffers = _remove_buffers(part.get_state())
            assert buffers == [], f"{type(part).__name__} sends binary buffers at {paths}"
        w.clear_hole().paint([(4, 4), (20, 10)], brush=3)
        w.run(steps=4, every=1)
    views = [m for m in sent if isinstance(m[0], type(w.live_view))]
    assert len(views) >= 4 and all(keys == ["src"] for _, keys, _ in views)  # every frame, as a string
    assert all(buffers == [] for _, _, buffers in sent), "an update was sent with binary buffers"
    assert w.live_view.src == PNG_PREFIX + base64.b64encode(w.live_view.value).decode()


def test_widget_libraries_never_replace_colabs_ipywidgets(monkeypatch):
    import importlib.metadata
    import importlib.util
    import subprocess
    import sys
    import types

    import inpaintlib.widget.components as wmod

    have = importlib.metadata.version("ipywidgets")
    cmd = wmod.widget_install_command(["anywidget"])
    assert cmd[-2:] == ["anywidget>=0.9", f"ipywidgets=={have}"], cmd  # installed ipywidgets held where it is
    assert wmod.widget_install_command(["ipywidgets", "anywidget"])[-2:] == ["anywidget>=0.9", "ipywidgets>=7.7"]
    # on "Colab" with anywidget missing: pip is asked for anywidget alone, Colab's ipywidgets pinned
    ran, real_find_spec = [], importlib.util.find_spec
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "anywidget" and not ran else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: ran.append(cmd))
    wmod.widget_libraries()
    assert len(ran) == 1 and [a for a in ran[0] if "widget" in a] == ["anywidget>=0.9", f"ipywidgets=={have}"]


def test_a_view_that_renders_asks_for_and_gets_the_whole_state(tiny_model, labelled_digits, tmp_path, sent):
    # Colab can lose updates sent before a view exists (notebook 06 drives the widget from code in the
    # next cell): each component's view sends {"type": "sync"} when it renders, and the kernel answers
    # with its whole state, as strings (no binary buffers)
    mnist, _, ff = make_widgets(tiny_model, labelled_digits, tmp_path)
    mnist.set_hole(center_hole(28, 6)).run(steps=2, every=1)  # changes "before the view" exists
    sent.clear()
    for component in (mnist.canvas, mnist.live_view, mnist.result_view, ff.upload):
        component._handle_custom_msg({"type": "sync"}, [])
        (w, keys, buffers), = [m for m in sent if m[0] is component]
        assert keys == sorted(component.get_state()), f"{type(component).__name__} re-sent only {keys}"
        assert buffers == [], f"{type(component).__name__} re-sent its state with binary buffers"
    assert torch.equal(CanvasMask(28, 10).load_png(mnist.canvas.get_state()["hole_png"]).to_hole(), center_hole(28, 6))
    assert mnist.result_view.get_state()["src"] == PNG_PREFIX + base64.b64encode(mnist.result_view.value).decode()
    sent.clear()
    mnist.canvas._handle_custom_msg({"type": "something else"}, [])
    assert sent == []


def test_inpaint_widget_defaults_to_the_best_shipped_model_at_its_recommended_settings(labelled_digits):
    from inpaintlib.registry import load_model
    from inpaintlib.registry import BEST, pretrained, recommended

    images, labels = labelled_digits
    best = recommended(BEST)
    w = InpaintWidget(None, images, labels)
    shipped = load_model(pretrained(BEST))
    assert w.model.config == shipped.config and w.model.config.cond == "mask"
    assert all(torch.equal(a, b) for a, b in zip(w.model.state_dict().values(), shipped.state_dict().values()))
    assert (w.steps.value, w.dc_repeats.value) == (best["steps"], best["dc_repeats"])
    assert w.sampler.value == best["sampler"] and w.guidance.value == best.get("guidance", 0.0)
    # a setting the caller passes wins; the design's model and sampler are one argument away
    assert InpaintWidget(images=images, dc_repeats=1, guidance=10.0).dc_repeats.value == 1
    design = InpaintWidget(load_model(pretrained("mnist")), images, labels, dc_repeats=2, guidance=0)
    assert design.model.config.cond == "none" and (design.dc_repeats.value, design.guidance.value) == (2, 0.0)
    # any other model starts on the sampler's own defaults
    other = InpaintWidget(shipped, images, labels)
    assert (other.dc_repeats.value, other.guidance.value) == (1, 0.0)
