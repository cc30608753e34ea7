"""The widget's pure core: no browser and no ipywidgets needed (tests drive it directly).

    png_data_url, decode_png_data_url, decode_data_url   pictures <-> the data URLs the browser sends and receives
    CanvasMask            one painted layer at canvas resolution; ``to_hole()``: painted mask -> hole
    run_inpainting        ``inpaint`` with a callback that keeps a frame every k proposals
    check_sampler, sampler_takes, control_options   a sampler's name, which controls it takes, their options
    live_panel, result_panel, write_gif   the pictures (PIL): the live view, the final view, the GIF
    generated_patterns, image_to_tensor, uploaded_files   images for the free-form widget
"""
from __future__ import annotations

import base64
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checks import check_choice, check_int, check_int_pair, check_number
from ..freeform.data import read_image
from ..masks import center_hole, check_hole
from ..utils import to_unit

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


def hole_from_painted(painted: np.ndarray, scale: int, threshold: float = 0.5) -> torch.Tensor:
    """Painted mask at canvas resolution (H * scale, W * scale), values in [0, 1] (the painted
    fraction of each canvas pixel) -> hole (1, 1, H, W), 1 = fill.

    An image pixel is a hole pixel when the mean of its scale x scale block is >= ``threshold``
    (at least half painted, by default)."""
    scale = check_int(scale, "scale", 1)
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    painted = np.asarray(painted, dtype=np.float32)
    if painted.ndim != 2 or painted.shape[0] % scale or painted.shape[1] % scale:
        raise ValueError(f"painted must be a 2-d array whose sides are multiples of scale={scale}, "
                         f"got shape {painted.shape}")
    H, W = painted.shape[0] // scale, painted.shape[1] // scale
    coverage = painted.reshape(H, scale, W, scale).mean(axis=(1, 3))
    return torch.from_numpy((coverage >= float(threshold) - 1e-6).astype(np.float32))[None, None]


class CanvasMask:
    """One painted layer of the canvas, at canvas resolution: ``painted`` (H * scale, W * scale) in
    [0, 1], the painted fraction of each canvas pixel. It holds the hole (``to_hole``) or, in draw
    mode, a hand-drawn image (``to_image``).

    Coordinates are image pixels, continuous: pixel (row i, column j) covers x in [j, j + 1),
    y in [i, i + 1). A brush of size b paints every canvas pixel whose centre lies within b / 2
    of the stroke (a round brush, as the canvas draws it)."""

    def __init__(self, size=28, scale: int = 10, colour=HOLE_COLOUR):
        self.size = check_int_pair(size, "size")
        self.scale = check_int(scale, "scale", 1)
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
        check_number(brush, "brush (its width in image pixels)", 0, low_open=True)
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
        """Replace the layer by the design's centred ``box`` x ``box`` square (``masks.center_hole``)."""
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
    proposal number) and ``total`` (the run's proposals: steps x dc_repeats, or steps for a sampler
    without dc_repeats). ``nfe`` and ``backward``: per image, as the sampler's callback counts them."""

    result: torch.Tensor  # (1, C, H, W) in [0, 1]
    frames: list = field(default_factory=list)
    seconds: float = 0.0
    hole_pixels: int = 0
    nfe: int = 0
    backward: int = 0
    sampler: str = "replace"


def check_model_input(model, image: torch.Tensor) -> None:
    cfg = getattr(model, "config", None)
    if cfg is None or not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a trained inpaintlib network (load_model(path)), got {type(model).__name__}")
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image must be a tensor of shape (1, C, H, W) in [0, 1], got "
                         f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
    if image.shape[1] != cfg.channels or tuple(image.shape[-2:]) != (cfg.image_size, cfg.image_size):
        raise ValueError(f"image must be (1, {cfg.channels}, {cfg.image_size}, {cfg.image_size}) for this model, "
                         f"got {tuple(image.shape)}")


# the widget's sampler controls: each goes to the samplers that have it as an option; "dc_repeats" is the
# repeat control, which goes to the sampler's repeat option (dc_repeats or travel_rounds, samplers.repeat_option)
SAMPLER_CONTROLS = ("eta", "dc_repeats", "guidance", "particles", "known", "init_from_y")


def check_sampler(sampler, names=None) -> str:
    """``sampler`` if it is one of ``names`` (default: every name of ``samplers.SAMPLERS``), else a ValueError."""
    from ..samplers import SAMPLERS

    return check_choice(sampler, "sampler", SAMPLERS if names is None else names)


def sampler_takes(sampler: str) -> frozenset:
    """The names of ``SAMPLER_CONTROLS`` that sampler ``sampler`` takes (its options, ``samplers.sampler_options``)."""
    from ..samplers import repeat_option, sampler_options

    own = set(sampler_options(check_sampler(sampler)))
    return frozenset(name for name in SAMPLER_CONTROLS
                     if name in own or (name == "dc_repeats" and repeat_option(sampler) is not None))


def control_options(sampler: str, **controls) -> dict:
    """The sampler options of the widget's controls: those ``sampler`` takes (``sampler_takes``), the
    repeat control under the sampler's own name for it; None values and the others are left out, as
    the widget leaves its disabled controls out."""
    from ..samplers import repeat_option

    takes = sampler_takes(sampler)
    out = {name: value for name, value in controls.items() if name in takes and value is not None}
    if "dc_repeats" in out:
        out[repeat_option(sampler)] = out.pop("dc_repeats")
    return out


def run_inpainting(model, image: torch.Tensor, hole: torch.Tensor, steps: int = 50, eta: float | None = None,
                   dc_repeats: int = 1, seed: int | None = 0, every: int = 5, on_frame=None,
                   known: str = "noised", init_from_y: bool = True, guidance: float | None = None,
                   sampler: str = "replace", particles: int | None = None) -> RunResult:
    """Inpaint one image with ``samplers.inpaint`` and keep a frame every ``every`` proposals.

    image       (1, C, H, W) in [0, 1]; hole (1, 1, H, W), 1 = fill (must hold at least one pixel)
    every       keep proposal p (1-based, of P = steps x dc_repeats) when p % every == 0, and the
                last one always: ceil(P / every) frames
    on_frame    called with each kept frame as it is made (the live view)
    known, init_from_y   as in ``ddim_inpaint``; the free-form model uses "clean" and False
    sampler     one of ``samplers.SAMPLERS``; ``guidance``: the weight of "guidance" and "pigdm",
                ``particles``: "smc"'s K, ``dc_repeats``: the sampler's repeat option (None: defaults)
    eta         None: the sampler's default (0, DDIM; 1 for "smc")
    Of eta, dc_repeats, guidance, particles, known and init_from_y, the ones ``sampler`` does not
    take are ignored (``control_options``), as the widget ignores its disabled controls.
    Returns a ``RunResult``; outside the hole the result is ``image`` exactly (``inpaint``)."""
    from ..samplers import inpaint

    check_model_input(model, image)
    hole = check_hole(hole, tuple(image.shape[-2:]))
    every = check_int(every, "every", 1)
    steps = check_int(steps, "steps", 1, model.config.T)
    dc_repeats = check_int(dc_repeats, "dc_repeats", 1)
    if not hole.any():
        raise ValueError("hole is empty: paint at least one pixel to fill (or use the centre box)")
    kwargs = control_options(sampler, eta=eta, dc_repeats=dc_repeats, guidance=guidance, known=known,
                             init_from_y=init_from_y, particles=particles)
    total = steps * (dc_repeats if "dc_repeats" in sampler_takes(sampler) else 1)
    frames, count, counts = [], [0], {"nfe": 0, "backward": 0}

    def callback(info: dict) -> None:
        count[0] += 1
        for key in counts:
            counts[key] = max(counts[key], int(info.get(key, 0)))
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
    result = inpaint(model, image.to(device), hole.to(device), sampler, steps=steps, seed=seed, callback=callback,
                     **kwargs).cpu()
    return RunResult(result=result, frames=frames, seconds=time.perf_counter() - start,
                     hole_pixels=int(hole.sum().item()), nfe=counts["nfe"] or total, backward=counts["backward"],
                     sampler=sampler)


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


def compare_fills(model, image01: torch.Tensor, hole: torch.Tensor, one_sample: torch.Tensor, steps: int,
                  seed: int = 0, mmse_model=None) -> dict:
    """The free-form comparison of notebook 07 for one image and hole: {name: (fill (1, 3, S, S), PSNR_hole in
    dB)} for the harmonic fill, OpenCV Telea, ``one_sample`` (the widget's run), ``inpaint_image``'s default
    fill (``freeform.baseline.model_fill`` with its defaults at ``steps``, seeds from ``seed``) and, with
    ``mmse_model`` (a regression U-Net, ``objective="mmse"``), the MMSE reference. Fills are rounded to 8-bit
    levels before scoring, as a saved file is; ``image01`` is the truth."""
    from ..freeform.baseline import harmonic_fill, mmse_fill, model_fill, telea_inpaint
    from ..metrics import HoleMetrics

    device = next(model.parameters()).device
    image = image01.to(device)
    hole = hole.to(device).reshape(1, 1, *image.shape[-2:])
    fills = {"harmonic": harmonic_fill(image * (1 - hole), 1 - hole),
             "Telea": telea_inpaint(image.cpu(), hole.cpu()).to(device),
             "one sample": one_sample.to(device),
             "default fill": model_fill(model, image, hole, steps, seed=seed)}
    if mmse_model is not None:
        fills["MMSE reference"] = mmse_fill(mmse_model, image, hole)
    out = {}
    for name, fill in fills.items():
        fill = (fill.float().clamp(0, 1) * 255).round() / 255
        metrics = HoleMetrics()
        metrics.update(fill, image, hole)
        out[name] = (fill.cpu(), metrics.per_image_psnr[0])
    return out


def comparison_panel(image01: torch.Tensor, hole: torch.Tensor, fills: dict, scale: int):
    """[input, hole in red | each fill, its PSNR in the caption | ground truth]: a PIL image."""
    tiles = [tile(image01, scale, hole, alpha=1.0)] + [tile(f, scale) for f, _ in fills.values()] + [tile(image01, scale)]
    captions = ["input"] + [f"{name}: {psnr:.1f} dB" for name, (_, psnr) in fills.items()] + ["ground truth"]
    return panel(tiles, captions)


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


def picture_png(picture) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def generated_patterns(n: int, size: int, seed: int = 1) -> torch.Tensor:
    """``n`` geometric patterns (``make_patterns``; seed 1 = the held-out set) as (n, 3, size, size)."""
    import tempfile

    from ..freeform import load_rgb, make_patterns

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
    elif isinstance(image, str) and image.startswith("data:"):  # an upload from the browser
        return image_to_tensor(decode_data_url(image, "image")[1], size)
    elif isinstance(image, (str, Path)) and not Path(image).is_file():
        raise ValueError(f"image {str(image)!r} is not a file")
    if isinstance(image, (bytes, bytearray, memoryview, str, Path, Image.Image)):
        image = read_image(image, "image")  # the package's one reader: upright by its EXIF orientation
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


def guidance_start(sampler: str) -> float:
    """Where the guidance slider starts for ``sampler``: for "guidance" the weight recommended for the
    shipped ``mnist`` network (``registry.RECOMMENDED``, the network it was tuned on), for another
    sampler with a guidance option its own default (``samplers.sampler_options``), else 0."""
    from ..registry import RECOMMENDED
    from ..samplers import sampler_options

    if sampler == "guidance":
        return float(RECOMMENDED["mnist"]["guidance"])
    return float(sampler_options(sampler).get("guidance", 0.0))


def load_widget_model(model, name: str):
    """A model as given, loaded from a path, or the default for ``name`` ("mnist": ``pretrained(BEST)``,
    or "patterns")."""
    from ..registry import load_model

    if isinstance(model, torch.nn.Module):
        return model
    if model is None:
        from ..registry import BEST, pretrained

        model = pretrained(BEST if name == "mnist" else name)
    if isinstance(model, (str, Path)):
        return load_model(model)
    raise ValueError(f"model must be a loaded model, a checkpoint path or None, got {type(model).__name__}")
