"""Data for the 128x128 free-form system of the architecture guide: generated patterns and the dataset.

Read top-down: the seeded geometric-patterns generator that lets the whole pipeline run offline,
then ``InpaintingDataset``, which gives every image a fresh free-form hole per epoch
(``inpaintlib/masks.py: training_hole``, where the holes are drawn: ``random_hole``'s kinds, or thin strokes). The guide's public ``mask`` is 1
where a pixel is kept, so ``mask = 1 - hole`` (the project's mask naming, ``inpaintlib/masks.py``).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..checks import check_int, check_optional_int
from ..masks import MASK_KINDS, check_coverage, check_mask_kinds, training_hole
from ..utils import to_model

PATTERN_KINDS = ("shapes", "stripes", "checkers", "gradient", "mixed")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


# ----------------------------------------------------------------------------------------------
# procedural geometric patterns (the guide's checkpoint was trained on geometric patterns)


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A random saturated-ish RGB colour in [0, 1] (HSV with s, v >= 0.25)."""
    h, s, v = rng.uniform(0, 1), rng.uniform(0.25, 1.0), rng.uniform(0.25, 1.0)
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _coords(S: int, rng: np.random.Generator):
    """Pixel coordinates in [0, 1), and their projection u onto a random direction."""
    y, x = np.mgrid[0:S, 0:S] / S
    angle = rng.uniform(0, np.pi)
    return y, x, x * np.cos(angle) + y * np.sin(angle)


def _gradient(S, rng) -> np.ndarray:
    y, x, u = _coords(S, rng)
    if rng.uniform() < 0.5:  # linear along a random direction
        w = (u - u.min()) / (u.max() - u.min())
    else:  # radial from a random centre
        cy, cx = rng.uniform(0, 1, 2)
        w = np.clip(np.hypot(y - cy, x - cx) / rng.uniform(0.5, 1.2), 0, 1)
    return (1 - w)[..., None] * _colour(rng) + w[..., None] * _colour(rng)


def _stripes(S, rng) -> np.ndarray:
    _, _, u = _coords(S, rng)
    period = rng.uniform(1 / 16, 1 / 4)
    on = ((u / period + rng.uniform()) % 1.0) < rng.uniform(0.3, 0.7)
    return np.where(on[..., None], _colour(rng), _colour(rng))


def _checkers(S, rng) -> np.ndarray:
    y, x, _ = _coords(S, rng)
    cell = rng.uniform(1 / 12, 1 / 3)
    if rng.uniform() < 0.5:  # rotated board
        a = rng.uniform(0, np.pi / 2)
        x, y = x * np.cos(a) + y * np.sin(a), -x * np.sin(a) + y * np.cos(a)
    on = (np.floor(x / cell) + np.floor(y / cell)) % 2 == 0
    return np.where(on[..., None], _colour(rng), _colour(rng))


def _draw_shapes(img: np.ndarray, rng, n_min: int, n_max: int) -> np.ndarray:
    """Paint 2..6 circles, ellipses, rectangles and triangles over ``img`` (S, S, 3)."""
    from PIL import Image, ImageDraw

    S = img.shape[0]
    canvas = Image.fromarray((img * 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(n_min, n_max + 1)):
        colour = tuple(int(c) for c in (_colour(rng) * 255).round())
        cx, cy = rng.uniform(0, S, 2)
        r = rng.uniform(0.08, 0.3) * S
        shape = rng.choice(["circle", "ellipse", "rectangle", "triangle"])
        if shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        elif shape == "ellipse":
            draw.ellipse([cx - r, cy - r * rng.uniform(0.3, 0.8), cx + r, cy + r * rng.uniform(0.3, 0.8)], fill=colour)
        elif shape == "rectangle":
            draw.rectangle([cx - r, cy - r * rng.uniform(0.3, 1.0), cx + r * rng.uniform(0.3, 1.0), cy + r], fill=colour)
        else:
            a = rng.uniform(0, 2 * np.pi)
            draw.polygon([(cx + r * np.cos(a + k * 2.094), cy + r * np.sin(a + k * 2.094)) for k in range(3)],
                         fill=colour)
    return np.asarray(canvas, dtype=np.float64) / 255.0


def _pattern(kind: str, S: int, rng: np.random.Generator) -> np.ndarray:
    """One (S, S, 3) pattern in [0, 1] of the given kind."""
    if kind == "gradient":
        return _gradient(S, rng)
    if kind == "stripes":
        return _stripes(S, rng)
    if kind == "checkers":
        return _checkers(S, rng)
    if kind == "shapes":
        background = _gradient(S, rng) if rng.uniform() < 0.5 else np.broadcast_to(_colour(rng), (S, S, 3))
        return _draw_shapes(np.array(background), rng, 2, 6)
    # mixed: two textures split by a random straight line, with a few shapes on top
    _, _, u = _coords(S, rng)
    textures = [_gradient, _stripes, _checkers]
    a, b = (textures[i](S, rng) for i in rng.choice(3, 2, replace=False))
    img = np.where((u < np.median(u) + rng.uniform(-0.2, 0.2))[..., None], a, b)
    return _draw_shapes(img, rng, 1, 3)


def make_patterns(folder, n: int, image_size: int = 128, seed: int = 0, kinds=PATTERN_KINDS) -> list:
    """Write ``n`` seeded geometric-pattern PNGs (``pattern_00000.png`` ...) to ``folder``.

    Kinds cycle through ``kinds``: "shapes" (circles, ellipses, rectangles, triangles on a flat or
    graded background), "stripes", "checkers" (some rotated), "gradient" (linear or radial) and
    "mixed" (two textures split by a line, with shapes on top). Each image is drawn at twice the
    size and downsampled (anti-aliased edges). Image i depends only on (seed, i), not on n.
    Returns the list of written paths."""
    from PIL import Image

    from ..utils import check_writable_dir

    n = check_int(n, "n")
    image_size = check_int(image_size, "image_size", 8)
    seed = check_int(seed, "seed", 0)
    kinds = tuple(kinds) if not isinstance(kinds, str) else (kinds,)
    if not kinds or any(k not in PATTERN_KINDS for k in kinds):
        raise ValueError(f"kinds must be a non-empty subset of {PATTERN_KINDS}, got {kinds!r}")
    out = check_writable_dir(folder, "folder")
    paths = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        big = _pattern(kinds[i % len(kinds)], 2 * image_size, rng)
        img = Image.fromarray((np.clip(big, 0, 1) * 255).round().astype(np.uint8))
        path = out / f"pattern_{i:05d}.png"
        img.resize((image_size, image_size), Image.Resampling.BOX).save(path)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------------------------
# the dataset


def find_images(root) -> list:
    """Image files under ``root`` (recursively; extensions in IMAGE_EXTENSIONS, any case), sorted."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"dataset folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise ValueError(f"dataset folder {str(root)!r} is a file, expected a folder of images")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"dataset folder {str(root)!r} holds no images (looked recursively for "
                         f"{', '.join(IMAGE_EXTENSIONS)}, any case)")
    return files


def read_image(source, name: str = "image"):
    """The one image reader of the package (the free-form system and the widget): a path, encoded
    image bytes or a PIL image -> a loaded PIL image, turned upright by its EXIF orientation (as
    viewers show it). A missing path is a FileNotFoundError and an unreadable file a ValueError, each
    naming ``name``."""
    import io

    from PIL import Image, ImageOps

    if isinstance(source, Image.Image):
        return ImageOps.exif_transpose(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        opened, what = io.BytesIO(bytes(source)), name
    elif isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise FileNotFoundError(f"{name} {str(source)!r} does not exist (or is not a file)")
        opened, what = source, f"{name} {str(source)!r}"
    else:
        raise ValueError(f"{name} must be a path, image bytes or a PIL image, got {type(source).__name__}")
    try:
        with Image.open(opened) as img:
            img.load()
            return ImageOps.exif_transpose(img)
    except Exception as err:
        raise ValueError(f"{what} could not be read as an image: {type(err).__name__}: {err}") from err


def load_rgb(path, size: int | None = None) -> torch.Tensor:
    """An image file as a (3, H, W) float tensor in [0, 1], converted to RGB (grayscale, palette
    and RGBA included), turned upright by its EXIF orientation (``read_image``), resized to
    ``size`` x ``size`` (bicubic) when given."""
    from PIL import Image

    img = read_image(path, "path").convert("RGB")
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    array = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255.0


class InpaintingDataset(torch.utils.data.Dataset):
    """Images found recursively under ``root``, each with a fresh random free-form mask.

    Item i is the guide's dict:
        image         (3, S, S) the clean image in [-1, 1]
        masked_image  (3, S, S) the image with the hole set to 0 (mid grey)
        mask          (1, S, S) 1 = keep, 0 = fill (the guide's convention; hole = 1 - mask)
        path          the file's path (str)
    Images are converted to RGB and resized to ``image_size`` x ``image_size`` (bicubic; the aspect
    ratio is not kept, as ``inpaint_image`` does at inference). The mask kind is drawn uniformly
    from ``mask_kinds``, its coverage (fraction to fill) uniformly within ``coverage``.

    With an int ``seed`` the mask of item i depends only on (seed, epoch, i): reproducible, and
    the same whatever the number of DataLoader workers; call ``set_epoch`` to get new masks each
    epoch. ``seed=None`` draws from torch's global RNG.

    A file that cannot be read is reported once (a warning naming it; once per process when
    DataLoader workers are used) and the next readable image is returned in its place, so an
    epoch never ends on it.
    """

    def __init__(self, root, image_size: int = 128, mask_kinds=MASK_KINDS, coverage=(0.1, 0.5),
                 seed: int | None = 0):
        image_size = check_int(image_size, "image_size", 8)
        mask_kinds = check_mask_kinds(mask_kinds)
        seed = check_optional_int(seed, "seed", 0)
        self.root = Path(root)
        self.files = find_images(self.root)
        self.image_size, self.mask_kinds, self.seed = image_size, mask_kinds, seed
        self.coverage = check_coverage(coverage)
        self.epoch = 0
        self.unreadable: set = set()

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        """Masks are drawn afresh for each epoch (with an int seed)."""
        self.epoch = int(epoch)

    def _generator(self, index: int) -> torch.Generator | None:
        if self.seed is None:
            return None
        return torch.Generator().manual_seed(((self.seed * 1_000_003 + self.epoch) * 1_000_033 + index) % 2**63)

    def _load(self, index: int):
        """The image at ``index`` in [0, 1], or the next readable one (unreadable files skipped)."""
        for k in range(len(self.files)):
            path = self.files[(index + k) % len(self.files)]
            if path in self.unreadable:
                continue
            try:
                return path, load_rgb(path, self.image_size)
            except Exception as err:  # PIL raises OSError, UnidentifiedImageError, ValueError, SyntaxError...
                self.unreadable.add(path)
                warnings.warn(f"InpaintingDataset: skipping unreadable image {str(path)!r} "
                              f"({type(err).__name__}: {str(err)[:120]})", stacklevel=3)
        raise ValueError(f"none of the {len(self.files)} image files under {str(self.root)!r} could be read")

    def __getitem__(self, index: int) -> dict:
        path, image01 = self._load(index)
        generator = self._generator(index)
        kind = self.mask_kinds[int(torch.randint(len(self.mask_kinds), (1,), generator=generator).item())]
        keep = 1.0 - training_hole(kind, self.image_size, self.coverage, generator)
        image = to_model(image01)
        return {"image": image, "masked_image": image * keep, "mask": keep, "path": str(path)}
