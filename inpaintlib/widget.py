"""Interactive inpainting in a notebook: paint a hole with the mouse, press Run, watch DDIM fill it.

Read top-down. First the core, which needs neither a browser nor ipywidgets:
    png_data_url, decode_png_data_url     images <-> the PNG data URLs the canvas sends and receives
    CanvasMask                            one painted layer at canvas resolution (image size x scale):
                                          brush strokes, erase, clear, the centre box, and
                                          ``to_hole()``: painted mask -> hole tensor (1 = fill)
    run_inpainting                        ``inpaint`` with a callback that keeps a frame every k proposals
    live_panel, result_panel, write_gif   the pictures (PIL): the live view, the final view, the GIF
Then the widgets, built on ipywidgets (7.7+ and 8) and two anywidget components:
    MaskCanvas (``canvas_class()``)       the HTML canvas (widget_canvas.js); syncs each layer as a PNG
    PngView (``view_class()``)            a picture (the live and the result view), sent as a data URL
    InpaintWidget                         MNIST: a test digit by index, or a digit drawn by hand
    ImageUpload (``upload_class()``)      a file button that sends the file as a data URL string
    FreeformInpaintWidget                 the free-form model: a generated pattern, or an uploaded image

How the mask travels. The browser paints on a canvas ``scale`` times the image (280 x 280 px for a
28 x 28 digit). After every stroke it sends that layer as a PNG data URL (the ``hole_png`` trait;
red where painted, transparent elsewhere). Python decodes its alpha channel, averages each
scale x scale block (the fraction of an image pixel that is painted) and calls a pixel a hole pixel
when at least half of it is painted. Python sends the layer back the same way after clear, the
centre box or ``set_hole``, and the canvas redraws.

How the pictures are made. ``inpaint``'s callback hands over x_t and the x0 estimate in model space
after every proposal (``sampling.ddim_inpaint``); every ``every``-th one is kept as a frame and
converted with ``to_unit``, the one model -> [0, 1] conversion. The live view shows
[input | x_t | x0 estimate]; the run ends on [input | result | ground truth].

What Colab needs (ipywidgets 7.7.1 in its custom widget manager). That manager drops binary
buffers, so nothing reaches the browser as bytes: every picture travels as a PNG data URL in a
string trait (the canvas's image_png/hole_png/ink_png, a PngView's src). And a message sent to a
widget before its view exists can be lost, so every widget is built with its state as constructor
arguments (image, hole, views, labels, CSS classes): a widget's first message, the one that creates
it in the browser, already carries everything it shows. The anywidget components (the canvas, the
views, the upload button) also ask the kernel for their whole state when their view renders
(``{"type": "sync"}``, answered by ``send_state()``), so that a cell that drives the widget right
after displaying it (``set_hole``, ``run``) is seen even if its updates came before the view. An
uploaded file travels the same way: ``ImageUpload`` reads it in the browser as a data URL string.
"""
from __future__ import annotations

import base64
import io
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .masks import center_hole
from .utils import to_unit
from .sampling import check_guidance

HERE = Path(__file__).parent
HOLE_COLOUR = (255, 0, 0)  # the painted hole, on the canvas and in the pictures
INK_COLOUR = (255, 255, 255)  # a hand-drawn digit: white ink on black, as MNIST
TOOLS = ("hole", "erase", "ink", "ink_erase")


# ----------------------------------------------------------------------------------------------
# PNG data URLs: what the canvas sends and receives

PNG_PREFIX = "data:image/png;base64,"


def png_bytes(array: np.ndarray) -> bytes:
    """A uint8 array (H, W), (H, W, 3) or (H, W, 4) as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_data_url(array: np.ndarray) -> str:
    """A uint8 array as a ``data:image/png;base64,...`` URL."""
    return PNG_PREFIX + base64.b64encode(png_bytes(array)).decode("ascii")


def decode_png_data_url(url: str, name: str = "url") -> np.ndarray:
    """A PNG data URL (as ``canvas.toDataURL()`` writes) as an RGBA uint8 array (H, W, 4)."""
    from PIL import Image

    if not isinstance(url, str) or not url.startswith(PNG_PREFIX):
        raise ValueError(f"{name} must be a PNG data URL starting with {PNG_PREFIX!r}, got {str(url)[:40]!r}")
    try:
        with Image.open(io.BytesIO(base64.b64decode(url[len(PNG_PREFIX):], validate=True))) as img:
            return np.asarray(img.convert("RGBA"), dtype=np.uint8).copy()
    except Exception as err:
        raise ValueError(f"{name} could not be decoded as a PNG image: {type(err).__name__}: {err}") from err


def decode_data_url(url: str, name: str = "url") -> tuple:
    """A base64 data URL (``data:<mime>;base64,<data>``, as the browser's FileReader.readAsDataURL
    writes) -> (mime type, bytes)."""
    head, sep, data = url.partition(",") if isinstance(url, str) else ("", "", "")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise ValueError(f"{name} must be a base64 data URL (data:<type>;base64,...), got {str(url)[:40]!r}")
    try:
        return head[len("data:"):-len(";base64")], base64.b64decode(data, validate=True)
    except Exception as err:
        raise ValueError(f"{name} is not valid base64: {type(err).__name__}: {err}") from err


# ----------------------------------------------------------------------------------------------
# the painted mask


def _check_int(value, name: str, lo: int, hi: int | None = None) -> int:
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo
            or (hi is not None and value > hi)):
        bounds = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an int {bounds}, got {value!r}")
    return int(value)


def _check_size(size) -> tuple:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in size)):
        raise ValueError(f"size must be an int >= 1 or a pair (H, W) of ints >= 1, got {size!r}")
    return int(size[0]), int(size[1])


def hole_from_painted(painted: np.ndarray, scale: int, threshold: float = 0.5) -> torch.Tensor:
    """Painted mask at canvas resolution (H * scale, W * scale), values in [0, 1] (the painted
    fraction of each canvas pixel) -> hole (1, 1, H, W), 1 = fill.

    An image pixel is a hole pixel when the mean of its scale x scale block is >= ``threshold``
    (at least half painted, by default)."""
    scale = _check_int(scale, "scale", 1)
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    painted = np.asarray(painted, dtype=np.float32)
    if painted.ndim != 2 or painted.shape[0] % scale or painted.shape[1] % scale:
        raise ValueError(f"painted must be a 2-d array whose sides are multiples of scale={scale}, "
                         f"got shape {painted.shape}")
    H, W = painted.shape[0] // scale, painted.shape[1] // scale
    coverage = painted.reshape(H, scale, W, scale).mean(axis=(1, 3))
    return torch.from_numpy((coverage >= float(threshold) - 1e-6).astype(np.float32))[None, None]


def check_hole(hole, size: tuple, name: str = "hole") -> torch.Tensor:
    """A binary hole given as a tensor or array of shape (H, W), (1, H, W) or (1, 1, H, W) ->
    a float tensor (1, 1, H, W)."""
    if isinstance(hole, np.ndarray):
        hole = torch.from_numpy(hole.copy())
    if not isinstance(hole, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array of shape (H, W), (1, H, W) or "
                         f"(1, 1, H, W), got {type(hole).__name__}")
    hole = hole.detach().cpu()
    while hole.ndim > 2 and hole.shape[0] == 1:
        hole = hole[0]
    if hole.ndim != 2 or tuple(hole.shape) != tuple(size):
        raise ValueError(f"{name} must have shape {tuple(size)} (or with leading dimensions of 1), "
                         f"got {tuple(hole.shape)} after removing them")
    hole = hole.float()
    if not ((hole == 0) | (hole == 1)).all():
        raise ValueError(f"{name} must be binary: 1 = pixel to fill, 0 = known (found other values)")
    return hole[None, None]


class CanvasMask:
    """One painted layer of the canvas, at canvas resolution: ``painted`` (H * scale, W * scale) in
    [0, 1], the painted fraction of each canvas pixel. It holds the hole (``to_hole``) or, in draw
    mode, a hand-drawn image (``to_image``).

    Coordinates are image pixels, continuous: pixel (row i, column j) covers x in [j, j + 1),
    y in [i, i + 1). A brush of size b paints every canvas pixel whose centre lies within b / 2
    of the stroke (a round brush, as the canvas draws it)."""

    def __init__(self, size=28, scale: int = 10, colour=HOLE_COLOUR):
        self.size = _check_size(size)
        self.scale = _check_int(scale, "scale", 1)
        self.colour = tuple(colour)
        H, W = self.size
        self.painted = np.zeros((H * self.scale, W * self.scale), dtype=np.float32)

    @property
    def canvas_shape(self) -> tuple:
        return self.painted.shape

    def clear(self) -> "CanvasMask":
        self.painted[:] = 0.0
        return self

    def stroke(self, points, brush: float, erase: bool = False) -> "CanvasMask":
        """Paint (or with ``erase``, unpaint) along the polyline ``points`` = [(x, y), ...] in image
        pixels with a round brush ``brush`` image pixels across. One point paints a dot."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2) if len(points) else np.zeros((0, 2))
        if pts.shape[0] == 0 or not np.isfinite(pts).all():
            raise ValueError(f"points must be a non-empty list of finite (x, y) pairs, got {points!r}")
        if isinstance(brush, bool) or not isinstance(brush, (int, float)) or not brush > 0:
            raise ValueError(f"brush must be a number > 0 (its width in image pixels), got {brush!r}")
        s, r = self.scale, brush * self.scale / 2.0
        pts = pts * s
        segments = list(zip(pts[:-1], pts[1:])) if len(pts) > 1 else [(pts[0], pts[0])]
        Hc, Wc = self.painted.shape
        value = 0.0 if erase else 1.0
        for a, b in segments:
            x0 = int(max(0, math.floor(min(a[0], b[0]) - r)))
            x1 = int(min(Wc, math.ceil(max(a[0], b[0]) + r) + 1))
            y0 = int(max(0, math.floor(min(a[1], b[1]) - r)))
            y1 = int(min(Hc, math.ceil(max(a[1], b[1]) + r) + 1))
            if x0 >= x1 or y0 >= y1:
                continue
            px, py = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
            d = b - a
            length2 = float(d @ d)
            # the nearest point of segment a-b to each pixel centre: a + u (b - a), u in [0, 1]
            u = np.zeros_like(px) if length2 == 0 else \
                np.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / length2, 0, 1)
            dist2 = (px - a[0] - u * d[0]) ** 2 + (py - a[1] - u * d[1]) ** 2
            self.painted[y0:y1, x0:x1][dist2 <= r * r] = value
        return self

    def centre_box(self, box: int = 12) -> "CanvasMask":
        """Replace the layer by the design's centred ``box`` x ``box`` square (``data.center_hole``)."""
        H, W = self.size
        if H != W:
            raise ValueError(f"centre_box needs a square image, got size {self.size}")
        return self.set_hole(center_hole(H, box))

    def set_hole(self, hole) -> "CanvasMask":
        """Replace the layer by a binary hole (H, W) / (1, 1, H, W): each hole pixel fully painted."""
        hole = check_hole(hole, self.size)[0, 0].numpy()
        self.painted[:] = np.kron(hole, np.ones((self.scale, self.scale), dtype=np.float32))
        return self

    def set_image(self, image01) -> "CanvasMask":
        """Replace the layer by a grey image (H, W) in [0, 1], each pixel painted with its value."""
        image = torch.as_tensor(image01).detach().cpu().float()
        while image.ndim > 2 and image.shape[0] == 1:
            image = image[0]
        if tuple(image.shape) != self.size:
            raise ValueError(f"image must have shape {self.size}, got {tuple(image.shape)}")
        self.painted[:] = np.kron(image.clamp(0, 1).numpy(), np.ones((self.scale, self.scale), dtype=np.float32))
        return self

    def coverage(self) -> np.ndarray:
        """(H, W): the painted fraction of each image pixel."""
        H, W = self.size
        return self.painted.reshape(H, self.scale, W, self.scale).mean(axis=(1, 3))

    def to_hole(self, threshold: float = 0.5) -> torch.Tensor:
        """The hole (1, 1, H, W), 1 = fill: pixels at least ``threshold`` painted."""
        return hole_from_painted(self.painted, self.scale, threshold)

    def to_image(self) -> torch.Tensor:
        """The layer as a grey image (1, 1, H, W) in [0, 1] (draw mode: the hand-drawn digit), by
        area averaging, as MNIST's own digits were anti-aliased."""
        return torch.from_numpy(self.coverage().astype(np.float32))[None, None].clamp(0, 1)

    def to_png(self) -> str:
        """The layer as the canvas draws it: ``colour`` with alpha = painted, as a PNG data URL."""
        rgba = np.zeros((*self.painted.shape, 4), dtype=np.uint8)
        rgba[..., :3] = self.colour
        rgba[..., 3] = np.round(self.painted * 255.0).astype(np.uint8)
        return png_data_url(rgba)

    def load_png(self, url: str) -> "CanvasMask":
        """Replace the layer by what the canvas sent: the alpha channel of a PNG data URL of the
        canvas size (an empty string clears)."""
        if url == "":
            return self.clear()
        rgba = decode_png_data_url(url, "the canvas layer")
        if rgba.shape[:2] != self.painted.shape:
            raise ValueError(f"the canvas layer must be {self.painted.shape[1]}x{self.painted.shape[0]} px "
                             f"(image size x scale), got {rgba.shape[1]}x{rgba.shape[0]}")
        self.painted[:] = rgba[..., 3].astype(np.float32) / 255.0
        return self


# ----------------------------------------------------------------------------------------------
# running the sampler and keeping frames


@dataclass
class RunResult:
    """What ``run_inpainting`` returns. ``frames`` are callback dicts (first image only, on the CPU,
    model space, as ``utils.display_reverse`` reads them) with two more keys: ``step`` (1-based
    proposal number) and ``total`` (steps x dc_repeats)."""

    result: torch.Tensor  # (1, C, H, W) in [0, 1]
    frames: list = field(default_factory=list)
    seconds: float = 0.0
    hole_pixels: int = 0
    nfe: int = 0


def _check_model_input(model, image: torch.Tensor) -> None:
    cfg = getattr(model, "config", None)
    if cfg is None or not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a trained inpaintlib network (load_model(path)), got {type(model).__name__}")
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image must be a tensor of shape (1, C, H, W) in [0, 1], got "
                         f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
    if image.shape[1] != cfg.channels or tuple(image.shape[-2:]) != (cfg.image_size, cfg.image_size):
        raise ValueError(f"image must be (1, {cfg.channels}, {cfg.image_size}, {cfg.image_size}) for this model, "
                         f"got {tuple(image.shape)}")


def run_inpainting(model, image: torch.Tensor, hole: torch.Tensor, steps: int = 50, eta: float = 0.0,
                   dc_repeats: int = 1, seed: int | None = 0, every: int = 5, on_frame=None,
                   known: str = "noised", init_from_y: bool = True, guidance: float = 0.0) -> RunResult:
    """Inpaint one image with ``samplers.inpaint`` and keep a frame every ``every`` proposals.

    image       (1, C, H, W) in [0, 1]; hole (1, 1, H, W), 1 = fill (must hold at least one pixel)
    every       keep proposal p (1-based, of P = steps x dc_repeats) when p % every == 0, and the
                last one always: ceil(P / every) frames
    on_frame    called with each kept frame as it is made (the live view)
    known, init_from_y   as in ``ddim_inpaint``; the free-form model uses "clean" and False
    guidance    reconstruction-guidance weight (``inpaint``; 0: off)
    Returns a ``RunResult``; outside the hole the result is ``image`` exactly (``inpaint``)."""
    from .samplers import inpaint

    _check_model_input(model, image)
    hole = check_hole(hole, tuple(image.shape[-2:]))
    every = _check_int(every, "every", 1)
    steps = _check_int(steps, "steps", 1, model.config.T)
    dc_repeats = _check_int(dc_repeats, "dc_repeats", 1)
    if not hole.any():
        raise ValueError("hole is empty: paint at least one pixel to fill (or use the centre box)")
    total = steps * dc_repeats
    frames, count = [], [0]

    def callback(info: dict) -> None:
        count[0] += 1
        if count[0] % every and count[0] != total:
            return
        frame = {key: (value[:1].detach().float().cpu().clone() if isinstance(value, torch.Tensor) else value)
                 for key, value in info.items()}
        frame.update(step=count[0], total=total)
        frames.append(frame)
        if on_frame is not None:
            on_frame(frame)

    start = time.perf_counter()
    device = next(model.parameters()).device
    result = inpaint(model, image.to(device), hole.to(device), steps=steps, eta=float(eta), dc_repeats=dc_repeats,
                     seed=seed, callback=callback, known=known, init_from_y=init_from_y, guidance=guidance).cpu()
    return RunResult(result=result, frames=frames, seconds=time.perf_counter() - start,
                     hole_pixels=int(hole.sum().item()), nfe=total)


# ----------------------------------------------------------------------------------------------
# pictures: the live view, the final view, the GIF


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=12)  # Pillow >= 10.1 (a scalable font)
    except TypeError:
        return ImageFont.load_default()


def tile(image01: torch.Tensor, scale: int, hole: torch.Tensor | None = None, alpha: float = 0.55) -> np.ndarray:
    """An image (C, H, W) or (1, C, H, W) in [0, 1] as an RGB uint8 array, each pixel a ``scale`` x
    ``scale`` block; the hole, if given, tinted red."""
    x = image01.detach().float().cpu()
    x = x[0] if x.ndim == 4 else x
    rgb = x.expand(3, *x.shape[-2:]) if x.shape[0] == 1 else x[:3]
    rgb = rgb.clamp(0, 1).permute(1, 2, 0).numpy()
    if hole is not None:
        h = hole.detach().float().cpu().reshape(*x.shape[-2:]).numpy()[..., None]
        rgb = rgb * (1 - alpha * h) + alpha * h * (np.asarray(HOLE_COLOUR, dtype=np.float64) / 255.0)
    rgb = (rgb * 255.0).round().clip(0, 255).astype(np.uint8)
    return np.kron(rgb, np.ones((scale, scale, 1), dtype=np.uint8))


def panel(tiles: list, captions: list, pad: int = 4, caption_height: int = 16):
    """Tiles side by side, each under its caption, on a white background: a PIL RGB image."""
    from PIL import Image, ImageDraw

    if len(tiles) != len(captions) or not tiles:
        raise ValueError(f"tiles and captions must be non-empty lists of one length, "
                         f"got {len(tiles)} and {len(captions)}")
    h, w = tiles[0].shape[:2]
    out = Image.new("RGB", (len(tiles) * (w + pad) + pad, h + caption_height + 2 * pad), "white")
    draw, font = ImageDraw.Draw(out), _font()
    for k, (t, caption) in enumerate(zip(tiles, captions)):
        x = pad + k * (w + pad)
        out.paste(Image.fromarray(t), (x, caption_height + pad))
        draw.text((x, 2), caption, fill="black", font=font)
    return out


def live_panel(frame: dict, image01: torch.Tensor, hole: torch.Tensor, scale: int):
    """[input, the hole in red (what the model is given) | x_t | x0 estimate] for one frame of
    ``run_inpainting``."""
    return panel([tile(image01, scale, hole, alpha=1.0), tile(to_unit(frame["x"]), scale),
                  tile(to_unit(frame["x0_pred"]), scale)],
                 ["input", f"x_t  t={frame['t']}  ({frame['step']}/{frame['total']})", "x0 estimate"])


def result_panel(image01: torch.Tensor, hole: torch.Tensor, result01: torch.Tensor | None,
                 truth01: torch.Tensor | None, scale: int, waiting: str = "press Run"):
    """[input, hole in red | result | ground truth]; a missing image is drawn grey (the result's
    caption then says ``waiting``)."""
    blank = torch.full_like(image01, 0.5)
    return panel([tile(image01, scale, hole, alpha=1.0), tile(result01 if result01 is not None else blank, scale),
                  tile(truth01 if truth01 is not None else blank, scale)],
                 ["input", "result" if result01 is not None else f"result ({waiting})", "ground truth"])


def write_gif(path, frames: list, image01: torch.Tensor, hole: torch.Tensor, result01: torch.Tensor,
              truth01: torch.Tensor | None = None, scale: int = 4, duration_ms: int = 120,
              hold_ms: int = 1500) -> Path:
    """The reverse diffusion as a GIF: one GIF frame per kept frame ([input | x_t | x0 estimate]),
    then the final [input | result | ground truth] held for ``hold_ms``: len(frames) + 1 frames."""
    if not frames:
        raise ValueError("frames must hold at least one frame: run the sampler first")
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"path must end in .gif, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures = [live_panel(f, image01, hole, scale) for f in frames]
    pictures.append(result_panel(image01, hole, result01, truth01, scale))
    durations = [duration_ms] * len(frames) + [hold_ms]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=durations, loop=0, disposal=1)
    return path


def _png(picture) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------
# the widgets: libraries, Colab, the canvas component


def in_colab() -> bool:
    return "google.colab" in sys.modules


def enable_colab_widgets() -> bool:
    """On Colab, turn on the custom widget manager that third-party widgets (the canvas) need, so the
    learner does not have to. Elsewhere does nothing. Returns whether it did something."""
    if not in_colab():
        return False
    from google.colab import output  # type: ignore[import-not-found]

    output.enable_custom_widget_manager()
    return True


def _widget_install_command(missing: list) -> list:
    """The pip command that installs what of ipywidgets and anywidget is ``missing``, and only that:
    an ipywidgets already there (Colab's 7.7.1, which its widget manager is built for) is held at its
    version, so that installing anywidget can never upgrade or replace it."""
    from importlib.metadata import PackageNotFoundError, version

    cmd = [sys.executable, "-m", "pip", "install", "-q"]
    if "anywidget" in missing:
        cmd.append("anywidget>=0.9")
    if "ipywidgets" in missing:
        cmd.append("ipywidgets>=7.7")
    else:
        try:
            cmd.append(f"ipywidgets=={version('ipywidgets')}")
        except PackageNotFoundError:  # importable but not installed by pip: leave it alone
            pass
    return cmd


def _widget_libraries():
    """ipywidgets and anywidget; on Colab, whichever is missing is installed (never replacing Colab's
    ipywidgets, see ``_widget_install_command``). Colab ships both today (ipywidgets 7.7.1, anywidget 0.9)."""
    import importlib
    import importlib.util

    missing = [name for name in ("ipywidgets", "anywidget") if importlib.util.find_spec(name) is None]
    if missing and in_colab():
        import subprocess

        subprocess.run(_widget_install_command(missing), check=True)
        importlib.invalidate_caches()
        missing = [name for name in missing if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"the inpainting widget needs {' and '.join(missing)}: "
                          f"pip install 'ipywidgets>=7.7' 'anywidget>=0.9'")
    import anywidget
    import ipywidgets

    return ipywidgets, anywidget


def _on_view_message(widget, content, buffers) -> None:
    """What a component's view sends the kernel: ``{"type": "sync"}`` when it renders. The kernel
    answers with the widget's whole state (``send_state()``, strings only: no binary buffers), so
    that a view rendered after the kernel changed the widget (a cell that drives it from code right
    after displaying it) shows the latest state even where the front end lost those updates."""
    if isinstance(content, dict) and content.get("type") == "sync":
        widget.send_state()


def _answers_sync(cls):
    """Register ``_on_view_message`` on every instance of the anywidget class ``cls``."""
    init = cls.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.on_msg(_on_view_message)

    cls.__init__ = __init__
    return cls


_CANVAS = None


def canvas_class():
    """The ``MaskCanvas`` anywidget class (built on first use, so the core imports without anywidget).

    Traits (all synced): width, height (image pixels), scale (canvas px per image pixel), brush
    (brush width in image pixels), tool ("hole", "erase", "ink", "ink_erase"), image_png (the image
    shown under the hole, a PNG data URL at image resolution), hole_png and ink_png (the layers,
    PNG data URLs at canvas resolution, "" = empty), hole_opacity, sync_ms (how often a stroke in
    progress is sent), strokes (how many times the browser has sent a layer)."""
    global _CANVAS
    if _CANVAS is not None:
        return _CANVAS
    _, anywidget = _widget_libraries()
    import traitlets

    class MaskCanvas(anywidget.AnyWidget):
        _esm = (HERE / "widget_canvas.js").read_text(encoding="utf-8")
        _css = (HERE / "widget_canvas.css").read_text(encoding="utf-8")
        width = traitlets.Int(28).tag(sync=True)
        height = traitlets.Int(28).tag(sync=True)
        scale = traitlets.Int(10).tag(sync=True)
        brush = traitlets.Float(3.0).tag(sync=True)
        tool = traitlets.Unicode("hole").tag(sync=True)
        image_png = traitlets.Unicode("").tag(sync=True)
        hole_png = traitlets.Unicode("").tag(sync=True)
        ink_png = traitlets.Unicode("").tag(sync=True)
        hole_opacity = traitlets.Float(0.55).tag(sync=True)
        sync_ms = traitlets.Int(250).tag(sync=True)
        strokes = traitlets.Int(0).tag(sync=True)

        @traitlets.validate("tool")
        def _valid_tool(self, proposal):
            if proposal["value"] not in TOOLS:
                raise traitlets.TraitError(f"tool must be one of {TOOLS}, got {proposal['value']!r}")
            return proposal["value"]

    MaskCanvas.__module__ = __name__
    _CANVAS = _answers_sync(MaskCanvas)
    return MaskCanvas


_VIEW = None
_VIEW_ESM = """
// one picture, shown at its own size: an <img> whose src is the PNG data URL in the `src` trait
function render({ model, el }) {
  model.send({ type: "sync" });  // the kernel re-sends the state: nothing sent before this view is lost
  const img = document.createElement("img");
  img.className = model.get("img_class");
  img.alt = model.get("alt");
  const show = () => { img.src = model.get("src"); };
  show();
  el.appendChild(img);
  model.on("change:src", show);
  return () => model.off("change:src", show);
}
export default { render };
"""


def view_class():
    """The ``PngView`` anywidget class: a picture sent to the browser as a string (a PNG data URL in
    the synced ``src`` trait), never as a binary buffer, which Colab's widget manager drops.

    ``value`` (PNG bytes, kernel side only, not synced) is what Python reads and writes, as with
    ``ipywidgets.Image``; setting it updates ``src``. ``img_class`` is the CSS class of the <img>."""
    global _VIEW
    if _VIEW is not None:
        return _VIEW
    _, anywidget = _widget_libraries()
    import traitlets

    class PngView(anywidget.AnyWidget):
        _esm = _VIEW_ESM
        src = traitlets.Unicode("").tag(sync=True)
        img_class = traitlets.Unicode("").tag(sync=True)
        alt = traitlets.Unicode("").tag(sync=True)
        value = traitlets.Bytes(b"")  # not synced: the browser gets src

        def __init__(self, value: bytes = b"", **kwargs):
            super().__init__(value=value, src=_bytes_data_url(value), **kwargs)

        @traitlets.observe("value")
        def _value_to_src(self, change):
            self.src = _bytes_data_url(change["new"])

    PngView.__module__ = __name__
    _VIEW = _answers_sync(PngView)
    return PngView


_UPLOAD = None
_UPLOAD_ESM = """
// a file button whose file reaches the kernel as a string (Colab drops binary buffers, and
// ipywidgets 7's FileUpload sends the file as one): FileReader.readAsDataURL -> the `data_url`
// trait, a base64 data URL; the kernel decodes it (widget.py: image_to_tensor) and empties it
const MAX_BYTES = 2 << 20, MAX_SIDE = 1024;  // larger files are scaled down first (JPEG, <= 1024 px)

function send(model, name, url) {
  model.set("name", name);
  model.set("data_url", url);
  model.save_changes();
}

function shrink(url, done) {
  const img = new Image();
  img.onload = () => {
    const k = Math.min(1, MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
    const c = document.createElement("canvas");
    c.width = Math.max(1, Math.round(img.naturalWidth * k));
    c.height = Math.max(1, Math.round(img.naturalHeight * k));
    c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
    done(c.toDataURL("image/jpeg", 0.92));
  };
  img.onerror = () => done(url);  // not an image the browser reads: the kernel says so
  img.src = url;
}

function render({ model, el }) {
  model.send({ type: "sync" });  // the kernel re-sends the state: nothing sent before this view is lost
  const label = document.createElement("label");
  label.className = "inpaint-upload jupyter-button widget-button";
  const input = document.createElement("input");
  input.type = "file";
  input.className = "inpaint-upload-input";
  input.style.display = "none";
  const text = document.createElement("span");
  const show = () => {
    text.textContent = model.get("description");
    input.accept = model.get("accept");
  };
  show();
  label.append(input, text);
  el.appendChild(label);
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      input.value = "";  // choosing the same file again is a new upload
      if (file.size <= MAX_BYTES) send(model, file.name, reader.result);
      else shrink(reader.result, (url) => send(model, file.name, url));
    };
    reader.readAsDataURL(file);
  });
  model.on("change:description", show);
  model.on("change:accept", show);
  return () => {
    model.off("change:description", show);
    model.off("change:accept", show);
  };
}
export default { render };
"""
_UPLOAD_CSS = """
.inpaint-upload { display: inline-flex; align-items: center; justify-content: center; cursor: pointer;
  padding: 0 10px; user-select: none; box-sizing: border-box; }
"""


def upload_class():
    """The ``ImageUpload`` anywidget class: a file button that sends the chosen file to the kernel as
    a string, never as binary buffers (which Colab's widget manager drops; ipywidgets 7.7.1's
    ``FileUpload`` sends the file as one).

    Traits (synced): accept (the file input's filter), description (the button's text), name (the
    last file's name), data_url (the last file as a base64 data URL, files over 2 MB scaled down to
    1024 px JPEG first; the widget empties it once read)."""
    global _UPLOAD
    if _UPLOAD is not None:
        return _UPLOAD
    _, anywidget = _widget_libraries()
    import traitlets

    class ImageUpload(anywidget.AnyWidget):
        _esm = _UPLOAD_ESM
        _css = _UPLOAD_CSS
        accept = traitlets.Unicode("image/*").tag(sync=True)
        description = traitlets.Unicode("upload").tag(sync=True)
        name = traitlets.Unicode("").tag(sync=True)
        data_url = traitlets.Unicode("").tag(sync=True)

    ImageUpload.__module__ = __name__
    _UPLOAD = _answers_sync(ImageUpload)
    return ImageUpload


def _bytes_data_url(png: bytes) -> str:
    return PNG_PREFIX + base64.b64encode(png).decode("ascii") if png else ""


def _image_data_url(image01: torch.Tensor) -> str:
    """(1, C, H, W) in [0, 1] -> PNG data URL at image resolution (the canvas scales it up)."""
    return png_data_url(tile(image01, 1))


def _default_steps(model) -> int:
    return min(50, model.config.T)


# ----------------------------------------------------------------------------------------------
# the widgets


class _InpaintWidgetBase:
    """What both widgets share: the canvas and its hole layer, the sampler controls, Run, the live
    and final views, the GIF. Subclasses add the image sources.

    Built with its state: ``image01`` (and ``truth01``) is the image it starts on, the hole starts as
    the centre box, and each widget is constructed with its values (see the module docstring)."""

    kind = "base"
    known, init_from_y = "noised", True

    def __init__(self, model, size: int, scale: int, view_scale: int, image01: torch.Tensor,
                 truth01: torch.Tensor | None = None, background: bool = True, steps=None, eta: float = 0.0,
                 dc_repeats: int = 1, seed: int = 0, every: int = 5, brush: float = 3.0, centre_box=None,
                 gif_path="outputs/06_interactive/widget.gif", guidance: float = 0.0):
        self.widgets, _ = _widget_libraries()
        enable_colab_widgets()
        W = self.widgets
        self.model = model
        self.size = _check_int(size, "size", 2)
        self.scale = _check_int(scale, "scale", 1)
        self.view_scale = _check_int(view_scale, "view_scale", 1)
        steps = _default_steps(model) if steps is None else _check_int(steps, "steps", 1, model.config.T)
        self.centre_box_size = max(1, round(self.size * 12 / 28)) if centre_box is None else \
            _check_int(centre_box, "centre_box", 1, self.size)
        self.hole_layer = CanvasMask(self.size, self.scale, HOLE_COLOUR)
        self.hole_layer.centre_box(self.centre_box_size)  # every widget starts on the centre box
        self.image = image01.detach().float().cpu().clamp(0, 1)
        self.truth: torch.Tensor | None = None if truth01 is None else truth01.detach().float().cpu().clamp(0, 1)
        self.last_run: RunResult | None = None
        self._run_hole: torch.Tensor | None = None  # the hole of the last run
        self._busy = False

        # every widget gets its state in its constructor, CSS classes included (not by trait changes
        # afterwards, which Colab may never deliver: they are sent before the widget has a view)
        def control(cls, css_class, **kwargs):
            return cls(_dom_classes=(css_class,), **kwargs)

        tool_options, tool = self._tool_choice()
        self.canvas = canvas_class()(width=self.size, height=self.size, scale=self.scale, brush=float(brush),
                                     tool=tool, image_png=_image_data_url(self.image) if background else "",
                                     hole_png=self.hole_layer.to_png(), ink_png=self._ink_png())
        self.canvas.observe(self._on_canvas_hole, names="hole_png")

        wide = dict(style={"description_width": "90px"}, layout=W.Layout(width="330px"))
        self.tool = W.ToggleButtons(options=tool_options, value=tool, description="brush",
                                    style={"button_width": "90px"})
        self.brush = W.FloatSlider(value=float(brush), min=0.5, max=max(8.0, self.size / 4), step=0.5,
                                   description="brush size", **wide)
        W.link((self.tool, "value"), (self.canvas, "tool"))
        W.link((self.brush, "value"), (self.canvas, "brush"))
        self.clear_button = control(W.Button, "inpaint-clear", description="clear hole", icon="eraser")
        self.box_button = control(W.Button, "inpaint-centre-box", description="centre box", icon="square",
                                  tooltip=f"the centred {self.centre_box_size}x{self.centre_box_size} square")
        self.clear_button.on_click(lambda _: self.clear_hole())
        self.box_button.on_click(lambda _: self.centre_box())
        self.hole_label = control(W.Label, "inpaint-hole-count", value=self._hole_text())

        self.steps = W.IntSlider(value=steps, min=1, max=model.config.T, description="DDIM steps", **wide)
        self.eta = W.FloatSlider(value=float(eta), min=0.0, max=1.0, step=0.05, description="eta", **wide)
        self.dc_repeats = W.IntSlider(value=_check_int(dc_repeats, "dc_repeats", 1), min=1, max=max(5, dc_repeats),
                                      description="dc_repeats", **wide)
        guidance = check_guidance(guidance)
        self.guidance = W.FloatSlider(value=guidance, min=0.0, max=max(100.0, guidance), step=5.0,
                                      description="guidance", **wide)
        self.seed = W.IntText(value=_check_int(seed, "seed", 0), description="seed", **wide)
        self.every = W.IntSlider(value=_check_int(every, "every", 1), min=1, max=max(25, every),
                                 description="view every", **wide)
        self.run_button = control(W.Button, "inpaint-run", description="Run", button_style="success", icon="play")
        self.run_button.on_click(self._on_run_click)
        self.gif_path = W.Text(value=str(gif_path), description="GIF file", **wide)
        self.gif_button = control(W.Button, "inpaint-save-gif", description="save GIF", icon="film")
        self.gif_button.on_click(self._on_gif_click)
        self.status = control(W.Label, "inpaint-status", value=self._start_status())
        # the pictures: PNG data URLs in a string trait (PngView), never binary buffers (Colab drops them);
        # shown at their own size, not stretched (and blurred)
        result_png, live_png = self._view_pngs()
        View = view_class()
        self.live_view = control(View, "inpaint-live-view", value=live_png, img_class="inpaint-live",
                                 alt="live view: x_t and the x0 estimate", layout=W.Layout(align_self="flex-start"))
        self.result_view = control(View, "inpaint-result-view", value=result_png, img_class="inpaint-result",
                                   alt="result", layout=W.Layout(align_self="flex-start"))

        left = W.VBox(self._source_controls() + [self.canvas, self.tool, self.brush,
                                                 W.HBox([self.clear_button, self.box_button] + self._extra_buttons()),
                                                 self.hole_label])
        right = W.VBox([self.steps, self.eta, self.dc_repeats, self.guidance, self.seed, self.every,
                        W.HBox([self.run_button, self.gif_button]), self.gif_path, self.status,
                        W.HTML("<b>live view</b>: x_t and the x0 estimate while DDIM runs"), self.live_view,
                        W.HTML("<b>result</b>"), self.result_view])
        self.ui = W.HBox([left, right], _dom_classes=("inpaint-widget", f"inpaint-{self.kind}"))

    # -- hooks for the subclasses (called while the widgets are built)
    def _source_controls(self) -> list:
        return []

    def _extra_buttons(self) -> list:
        return []

    def _tool_choice(self) -> tuple:
        """The brush's options and the one selected at the start."""
        return [("paint hole", "hole"), ("erase hole", "erase")], "hole"

    def _ink_png(self) -> str:
        return ""

    def _start_status(self) -> str:
        return "paint a hole on the image, then press Run"

    # -- display
    def _ipython_display_(self):
        from IPython.display import display

        display(self.ui)

    # -- the image
    def _show_image(self, image01: torch.Tensor, truth01: torch.Tensor | None, background: bool = True) -> None:
        """Make ``image01`` the image to inpaint (and ``truth01`` the ground truth shown at the end)."""
        self.image = image01.detach().float().cpu().clamp(0, 1)
        self.truth = None if truth01 is None else truth01.detach().float().cpu().clamp(0, 1)
        if background:
            self.canvas.image_png = _image_data_url(self.image)
        self.last_run = None
        self._refresh_views()

    # -- the hole
    @property
    def hole(self) -> torch.Tensor:
        """The current hole (1, 1, H, W), 1 = fill, as the kernel holds it."""
        return self.hole_layer.to_hole()

    @property
    def hole_pixels(self) -> int:
        return int(self.hole.sum().item())

    def _send_hole(self) -> None:
        self.canvas.hole_png = self.hole_layer.to_png()
        self._hole_changed()

    def _on_canvas_hole(self, change) -> None:
        try:
            self.hole_layer.load_png(change["new"])
        except ValueError as err:  # a canvas of another size (a stale view): keep the last good hole
            self.status.value = f"ignored a canvas update: {err}"
            return
        self._hole_changed()

    def _hole_text(self) -> str:
        n, total = self.hole_pixels, self.size * self.size
        return f"hole: {n} of {total} pixels ({n / total:.0%})"

    def _hole_changed(self) -> None:
        self.hole_label.value = self._hole_text()
        self._refresh_views()

    def set_hole(self, hole) -> "_InpaintWidgetBase":
        """Set the hole from code: a binary tensor or array (H, W) or (1, 1, H, W), 1 = fill. The
        canvas shows it."""
        self.hole_layer.set_hole(hole)
        self._send_hole()
        return self

    def clear_hole(self) -> "_InpaintWidgetBase":
        self.hole_layer.clear()
        self._send_hole()
        return self

    def centre_box(self, box: int | None = None) -> "_InpaintWidgetBase":
        """Replace the hole by the centred ``box`` x ``box`` square (the design's hole: 12 on MNIST)."""
        self.hole_layer.centre_box(self.centre_box_size if box is None else box)
        self._send_hole()
        return self

    def paint(self, points, brush: float | None = None, erase: bool = False) -> "_InpaintWidgetBase":
        """Paint a stroke from code, as the mouse would: ``points`` = [(x, y), ...] in image pixels."""
        self.hole_layer.stroke(points, self.brush.value if brush is None else brush, erase=erase)
        self._send_hole()
        return self

    # -- running
    def _view_pngs(self) -> tuple:
        """(the result view's PNG, the live view's PNG or None to leave it as it is)."""
        s = self.view_scale
        hole = self.hole
        # the last result, while it belongs to the hole on the canvas; after a new stroke: "press Run"
        current = self.last_run is not None and torch.equal(hole, self._run_hole)
        result = self.last_run.result if current else None
        result_png = _png(result_panel(self.image, hole, result, self.truth, s))
        if current:
            return result_png, None
        blank = {"x": torch.zeros_like(self.image), "x0_pred": torch.zeros_like(self.image), "t": "-",
                 "step": 0, "total": self.steps.value * self.dc_repeats.value}
        return result_png, _png(live_panel(blank, self.image, hole, s))

    def _refresh_views(self) -> None:
        result_png, live_png = self._view_pngs()
        self.result_view.value = result_png
        if live_png is not None:
            self.live_view.value = live_png

    def _on_frame(self, frame: dict) -> None:
        self.live_view.value = _png(live_panel(frame, self.image, self._live_hole, self.view_scale))
        self.status.value = f"running: proposal {frame['step']}/{frame['total']} (t = {frame['t']})"

    def run(self, steps: int | None = None, eta: float | None = None, dc_repeats: int | None = None,
            seed: int | None = None, every: int | None = None, guidance: float | None = None) -> torch.Tensor:
        """Inpaint the current hole with the current controls (arguments override them and move
        the sliders). Updates the live view every ``every`` proposals, then the result view.
        Returns the result (1, C, H, W) in [0, 1]."""
        for name, value in (("steps", steps), ("eta", eta), ("dc_repeats", dc_repeats), ("seed", seed),
                            ("every", every), ("guidance", guidance)):
            if value is not None:
                getattr(self, name).value = value
        self._prepare_run()
        hole = self._live_hole = self.hole
        self._busy = True
        self.run_button.disabled = True
        self.status.value = "running..."
        self.result_view.value = _png(result_panel(self.image, hole, None, self.truth, self.view_scale, "running"))
        try:
            run = run_inpainting(self.model, self.image, hole, steps=self.steps.value, eta=self.eta.value,
                                 dc_repeats=self.dc_repeats.value, seed=self.seed.value, every=self.every.value,
                                 on_frame=self._on_frame, known=self.known, init_from_y=self.init_from_y,
                                 guidance=self.guidance.value)
        except Exception as err:
            self.status.value = f"error: {err}"
            raise
        finally:
            self._busy = False
            self.run_button.disabled = False
        self.last_run, self._run_hole = run, hole
        self._refresh_views()
        changed = (run.result - self.image).abs().sum().item() / max(1, run.hole_pixels * self.image.shape[1])
        self.status.value = (f"done in {run.seconds:.1f} s: filled {run.hole_pixels} hole pixels, "
                             f"{run.nfe} network evaluations, {len(run.frames)} frames "
                             f"(mean change in the hole {changed:.3f})")
        return run.result

    def _prepare_run(self) -> None:
        """Subclasses: make sure ``self.image`` is up to date before a run."""

    def _on_run_click(self, _button) -> None:
        if self._busy:
            return
        try:
            self.run()
        except Exception:  # run() showed it in the status line; a button's exception would vanish into a log
            pass

    @property
    def frames(self) -> list:
        return [] if self.last_run is None else self.last_run.frames

    @property
    def result(self) -> torch.Tensor | None:
        return None if self.last_run is None else self.last_run.result

    def save_gif(self, path=None, duration_ms: int = 120, hold_ms: int = 1500) -> Path:
        """Save the last run's reverse diffusion as a GIF (one frame per kept step, then the result)."""
        if self.last_run is None:
            raise ValueError("there is no run to save: paint a hole and press Run (or call run()) first")
        path = Path(self.gif_path.value if path is None else path)
        run = self.last_run
        return write_gif(path, run.frames, self.image, self._run_hole, run.result, self.truth,
                         scale=self.view_scale, duration_ms=duration_ms, hold_ms=hold_ms)

    def _on_gif_click(self, _button) -> None:
        try:
            self.status.value = f"saved {self.save_gif()}"
        except Exception as err:
            self.status.value = f"error: {err}"


class InpaintWidget(_InpaintWidgetBase):
    """Draw a hole on an MNIST digit with the mouse and watch the reverse diffusion fill it.

        w = InpaintWidget()                 # the best shipped MNIST model, at its recommended settings
        w                                   # shows it: paint, press Run
        w.set_hole(center_hole(28, 12)); w.run(); w.save_gif("outputs/fill.gif")   # from code
        InpaintWidget(load_model(pretrained("mnist")), dc_repeats=2, guidance=0)  # the design's model and sampler
        InpaintWidget(load_model("outputs/inpaint/last.pt"))                       # yours, from 03_training

    model       a loaded MNIST model, a checkpoint path, or None: ``pretrained(BEST)`` (``BEST`` =
                "mnist-mask", the best shipped MNIST model), whose ``recommended(BEST)`` settings
                (steps, dc_repeats, guidance) are then the sliders' defaults wherever the caller passes
                none. Any other model starts on the sampler's own defaults (dc_repeats=1, guidance=0)
    images      (N, 1, 28, 28) in [0, 1] to choose from by index (None: the first ``n_images``
                MNIST test digits, ``load_test_images``); ``labels`` optional
    source      "test" (a test digit by index) or "draw" (draw a digit by hand on an empty canvas)
    scale       canvas pixels per image pixel (10: a 280 x 280 canvas)
    steps, eta, dc_repeats, seed, guidance   the sampler's controls (``inpaint``); every: live view every k proposals
    """

    kind = "mnist"

    def __init__(self, model=None, images: torch.Tensor | None = None, labels=None, index: int = 0,
                 source: str = "test", data_root="data", n_images: int = 100, scale: int = 10,
                 view_scale: int = 6, **options):
        if model is None:  # the best shipped model; its recommended sampler unless the caller chose
            from .registry import BEST, pretrained, recommended

            model = pretrained(BEST)
            for key, value in recommended(BEST).items():
                options.setdefault(key, value)
        model = _load(model, "mnist")
        if images is None:
            from .mnist.data import load_test_images

            images, labels = load_test_images(data_root, n_images)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"images must be a tensor (N, 1, H, W) in [0, 1], got "
                             f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
        S = model.config.image_size
        if tuple(images.shape[-2:]) != (S, S) or len(images) < 1:
            raise ValueError(f"images must be (N >= 1, 1, {S}, {S}) for this model, got {tuple(images.shape)}")
        if source not in ("test", "draw"):
            raise ValueError(f"source must be 'test' or 'draw', got {source!r}")
        self.images, self.labels = images.float(), labels
        self._start_source, self._start_index = source, _check_int(index, "index", 0, len(images) - 1)
        self.ink_layer = CanvasMask(S, scale, INK_COLOUR)
        if source == "draw":  # an empty canvas to draw on
            image, background = self.ink_layer.to_image(), False
        else:
            image, background = self.images[self._start_index:self._start_index + 1], True
        super().__init__(model, S, scale, view_scale, image, image, background=background, **options)
        self.canvas.observe(self._on_canvas_ink, names="ink_png")
        self.source.observe(self._on_source, names="value")
        self.index.observe(lambda change: self.show_digit(change["new"]), names="value")
        self.clear_ink_button.on_click(lambda _: self.clear_drawing())

    def _source_controls(self) -> list:
        W = self.widgets
        self.source = W.ToggleButtons(options=[("test digit", "test"), ("draw a digit", "draw")],
                                      value=self._start_source, description="image")
        self.index = W.IntSlider(value=self._start_index, min=0, max=len(self.images) - 1,
                                 description=self._digit_description(self._start_index),
                                 disabled=self._start_source == "draw",
                                 style={"description_width": "90px"}, layout=W.Layout(width="330px"))
        return [self.source, self.index]

    def _extra_buttons(self) -> list:
        W = self.widgets
        self.clear_ink_button = W.Button(description="clear drawing", icon="trash",
                                         layout=W.Layout(display="" if self._start_source == "draw" else "none"),
                                         _dom_classes=("inpaint-clear-drawing",))
        return [self.clear_ink_button]

    def _tool_choice(self) -> tuple:
        if self._start_source == "draw":
            return self._draw_tools, "ink"
        return super()._tool_choice()

    def _start_status(self) -> str:
        return self._draw_status if self._start_source == "draw" else super()._start_status()

    _draw_tools = [("paint hole", "hole"), ("erase hole", "erase"), ("draw digit", "ink"), ("erase ink", "ink_erase")]
    _draw_status = "draw a digit (white ink), then paint a hole and press Run"

    def _digit_description(self, index: int) -> str:
        return "test digit" if self.labels is None else f"digit ({int(self.labels[index])})"

    def show_digit(self, index: int) -> "InpaintWidget":
        """Inpaint test digit ``index`` (switches to the test-digit source)."""
        index = _check_int(index, "index", 0, len(self.images) - 1)
        if self.index.value != index:
            self.index.value = index  # comes back here through the observer
            return self
        if self.source.value != "test":
            self.source.value = "test"
            return self
        digit = self.images[index:index + 1]
        self._show_image(digit, digit)
        self.index.description = self._digit_description(index)
        return self

    def _on_source(self, change) -> None:
        W = self.widgets
        if change["new"] == "draw":
            self.tool.options = self._draw_tools
            self.tool.value = "ink"
            self.clear_ink_button.layout = W.Layout(display="")
            self.index.disabled = True
            self.canvas.image_png = ""
            self._from_drawing()
            self.status.value = self._draw_status
        else:
            self.tool.options = [("paint hole", "hole"), ("erase hole", "erase")]
            self.tool.value = "hole"
            self.clear_ink_button.layout = W.Layout(display="none")
            self.index.disabled = False
            self.ink_layer.clear()
            self.canvas.ink_png = ""
            self.show_digit(self.index.value)

    def _on_canvas_ink(self, change) -> None:
        try:
            self.ink_layer.load_png(change["new"])
        except ValueError as err:
            self.status.value = f"ignored a canvas update: {err}"
            return
        if self.source.value == "draw":
            self._from_drawing()

    def _from_drawing(self) -> None:
        drawn = self.ink_layer.to_image()
        self._show_image(drawn, drawn, background=False)

    def _prepare_run(self) -> None:
        if self.source.value == "draw":
            self._from_drawing()

    def draw(self, points, brush: float = 2.5, erase: bool = False) -> "InpaintWidget":
        """Draw a digit stroke from code (switches to the draw source): points in image pixels."""
        if self.source.value != "draw":
            self.source.value = "draw"
        self.ink_layer.stroke(points, brush, erase=erase)
        self.canvas.ink_png = self.ink_layer.to_png()
        self._from_drawing()
        return self

    def clear_drawing(self) -> "InpaintWidget":
        self.ink_layer.clear()
        self.canvas.ink_png = ""
        if self.source.value == "draw":
            self._from_drawing()
        return self


class FreeformInpaintWidget(_InpaintWidgetBase):
    """The same for the free-form model (``InpaintingUNET``, 64x64 or 128x128 RGB): pick a generated
    pattern (``make_patterns``) or upload an image, paint a free-form hole, run.

    The sampler is the architecture guide's algorithm, as in ``inpaint_image``: start from noise in
    the hole, keep the clean known pixels in x_t and in every x0 estimate (``known="clean"``,
    ``init_from_y=False``). An uploaded image is centre-cropped to a square and resized to the
    model's size.

    model       a loaded free-form model, a checkpoint path, or None (``pretrained("patterns")``)
    images      (N, 3, S, S) in [0, 1] to choose from (None: ``n_patterns`` generated patterns)
    """

    kind = "freeform"
    known, init_from_y = "clean", False

    def __init__(self, model=None, images: torch.Tensor | None = None, index: int = 0, n_patterns: int = 24,
                 pattern_seed: int = 1, scale: int | None = None, view_scale: int | None = None, brush=None,
                 **options):
        model = _load(model, "patterns")
        S = model.config.image_size
        if model.config.channels != 3:
            raise ValueError(f"model must be a free-form RGB model (3 channels), "
                             f"got {model.config.channels} channel(s)")
        if images is None:
            images = generated_patterns(_check_int(n_patterns, "n_patterns", 1), S, seed=pattern_seed)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3 \
                or tuple(images.shape[-2:]) != (S, S):
            raise ValueError(f"images must be a tensor (N, 3, {S}, {S}) in [0, 1], got "
                             f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
        self.images = images.float()
        scale = max(1, round(320 / S)) if scale is None else scale
        view_scale = max(1, round(160 / S)) if view_scale is None else view_scale
        brush = max(2.0, S / 10) if brush is None else brush
        options.setdefault("centre_box", S // 3)
        self._start_index = _check_int(index, "index", 0, len(self.images) - 1)
        image = self.images[self._start_index:self._start_index + 1]
        super().__init__(model, S, scale, view_scale, image, image, brush=brush, **options)
        self.source.observe(self._on_source, names="value")
        self.index.observe(lambda change: self.show_pattern(change["new"]), names="value")
        self.upload.observe(self._on_upload, names="data_url")

    def _source_controls(self) -> list:
        W = self.widgets
        self.source = W.ToggleButtons(options=[("pattern", "pattern"), ("upload", "upload")], value="pattern",
                                      description="image")
        self.index = W.IntSlider(value=self._start_index, min=0, max=len(self.images) - 1, description="pattern",
                                 style={"description_width": "90px"}, layout=W.Layout(width="330px"))
        # the file travels as a data URL string (ImageUpload), not as FileUpload's binary buffers
        self.upload = upload_class()(accept="image/*", description="upload", _dom_classes=("inpaint-upload-button",))
        return [self.source, W.HBox([self.index, self.upload])]

    def show_pattern(self, index: int) -> "FreeformInpaintWidget":
        index = _check_int(index, "index", 0, len(self.images) - 1)
        if self.index.value != index:
            self.index.value = index  # comes back here through the observer
            return self
        if self.source.value != "pattern":
            self.source.value = "pattern"
            return self
        image = self.images[index:index + 1]
        self._show_image(image, image)
        return self

    def set_image(self, image) -> "FreeformInpaintWidget":
        """Inpaint ``image``: a path, PIL image, image file bytes, or a tensor (1 or none, 3, H, W) in [0, 1]
        (non-square or other sizes: centre-cropped and resized to the model's size)."""
        tensor = image_to_tensor(image, self.size)
        self._show_image(tensor, tensor)
        return self

    def _on_source(self, change) -> None:
        if change["new"] == "pattern":
            self.show_pattern(self.index.value)
        else:
            self.status.value = "choose an image file with the upload button"

    def _on_upload(self, change) -> None:
        """A file from the upload button: ``upload.data_url`` (a data URL string) -> the image."""
        url = change["new"]
        if not url:
            return
        name = self.upload.name or "upload"
        try:
            self.set_image(url)
        except ValueError as err:
            self.status.value = f"error: {name}: {err}"
            return
        finally:
            self.upload.data_url = ""  # read: the next upload (even of the same file) is a change
        if self.source.value != "upload":
            self.source.unobserve(self._on_source, names="value")
            self.source.value = "upload"
            self.source.observe(self._on_source, names="value")
        self.status.value = f"loaded {name}: paint a hole, then press Run"


# ----------------------------------------------------------------------------------------------
# loading models and images for the widgets


def _load(model, name: str):
    """A model as given, loaded from a path, or the default for ``name`` ("mnist": ``pretrained(BEST)``,
    or "patterns")."""
    from .registry import load_model

    if isinstance(model, torch.nn.Module):
        return model
    if model is None:
        from .registry import BEST, pretrained

        model = pretrained(BEST if name == "mnist" else name)
    if isinstance(model, (str, Path)):
        return load_model(model)
    raise ValueError(f"model must be a loaded model, a checkpoint path or None, got {type(model).__name__}")


def generated_patterns(n: int, size: int, seed: int = 1) -> torch.Tensor:
    """``n`` geometric patterns (``make_patterns``; seed 1 = the held-out set) as (n, 3, size, size)."""
    import tempfile

    from .freeform import load_rgb, make_patterns

    with tempfile.TemporaryDirectory(prefix="inpaintlib_patterns_") as folder:
        paths = make_patterns(folder, n, image_size=size, seed=seed)
        return torch.stack([load_rgb(p) for p in paths])


def image_to_tensor(image, size: int) -> torch.Tensor:
    """A path, PIL image, encoded image bytes, a base64 data URL of an image file (what the upload
    button sends), or (3, H, W) / (1, 3, H, W) tensor in [0, 1] ->
    (1, 3, size, size) in [0, 1]: converted to RGB, centre-cropped to a square, resized (bicubic)."""
    from PIL import Image

    if isinstance(image, torch.Tensor):
        x = image.detach().float().cpu()
        x = x[0] if x.ndim == 4 and x.shape[0] == 1 else x
        if x.ndim != 3 or x.shape[0] != 3 or x.min() < 0 or x.max() > 1:
            raise ValueError(f"image must be a (3, H, W) tensor in [0, 1], got shape {tuple(image.shape)}")
        image = Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    elif isinstance(image, (bytes, bytearray, memoryview)):
        try:
            image = Image.open(io.BytesIO(bytes(image)))
            image.load()
        except Exception as err:
            raise ValueError(f"image could not be read as an image file: {type(err).__name__}: {err}") from err
    elif isinstance(image, str) and image.startswith("data:"):  # an upload from the browser
        return image_to_tensor(decode_data_url(image, "image")[1], size)
    elif isinstance(image, (str, Path)):
        if not Path(image).is_file():
            raise ValueError(f"image {str(image)!r} is not a file")
        with Image.open(image) as img:
            img.load()
            image = img.copy()
    if not isinstance(image, Image.Image):
        raise ValueError(f"image must be a path, PIL image, image bytes or tensor, got {type(image).__name__}")
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    image = image.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
    image = image.resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float()[None] / 255.0


def uploaded_files(value) -> list:
    """``FileUpload.value`` as [(name, bytes)], for ipywidgets 8 (a tuple of dicts) and 7 (a dict
    name -> {"metadata", "content"})."""
    if isinstance(value, dict):  # ipywidgets 7
        items = [{"name": name, **entry} for name, entry in value.items()]
    else:
        items = list(value or ())
    out = []
    for item in items:
        name = item.get("name") or item.get("metadata", {}).get("name", "upload")
        out.append((name, bytes(item["content"])))
    return out
