"""Every hole and keep mask of the package, in one place.

Masks are named for what their ones mean (the project's convention, docs/how-it-works.md): a ``hole`` is 1 where a pixel is to be
filled, a ``keep`` mask 1 where it is known, so ``keep = 1 - hole``. The architecture guide's public
``mask`` (``inpaint_image``, ``InpaintingDataset``) is a keep mask, converted at that boundary.

    center_hole(size, box)            the MNIST design's centred box
    random_box_holes(batch, size, ...) random axis-aligned boxes (MNIST training with train_holes="mixed")
    random_hole(kind, size, coverage)  free-form holes of a chosen coverage: rectangles, circles, strokes
    random_keep_mask(...)              the same as the guide's keep mask

How a free-form hole of a chosen coverage is drawn. Every hole kind is a sub-level set of a distance field:
    d(p) = min_j  dist_j(p) / s_j            (j over 1..3 shapes, s_j their relative sizes)
    dist_j = Chebyshev distance to a centre (rectangles), Euclidean distance to a centre
             (circles), Euclidean distance to a random polyline (brush strokes)
Growing the threshold grows every shape at once, so cutting d at its k-th smallest value gives a
hole of exactly k pixels: a coverage c ~ U(lo, hi) becomes k = round(c H W), and the fraction of
pixels to fill is within [lo, hi] by construction, for any image size, even where a shape is
clipped by the border. (Ties on the last level set are broken in raster order.)
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .checks import check_choice, check_int, check_int_pair

MASK_KINDS = ("rectangle", "circle", "stroke")
# what a training run may draw (InpaintingDataset, train_inpainting's mask_kinds): random_hole's kinds, and
# "thin_stroke" (thin_stroke_hole: a fixed brush 4 to 8 pixels wide at 64x64, its coverage whatever it covers)
TRAINING_MASK_KINDS = MASK_KINDS + ("thin_stroke",)


def check_binary(hole: torch.Tensor, name: str = "hole") -> torch.Tensor:
    """``hole`` itself if every value is 0 or 1, else a ValueError naming ``name``."""
    if not ((hole == 0) | (hole == 1)).all():
        raise ValueError(f"{name} must be binary: 1 = pixel to fill, 0 = known (found other values)")
    return hole


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
    return check_binary(hole.float(), name)[None, None]


def center_hole(size: int = 28, box: int = 12) -> torch.Tensor:
    """A (1, 1, size, size) hole with a centred ``box`` x ``box`` square of ones (1 = fill)."""
    box = check_int(box, "center_box", 1, size)
    hole = torch.zeros(1, 1, size, size)
    start = (size - box) // 2
    hole[..., start:start + box, start:start + box] = 1.0
    return hole


def random_box_holes(batch: int, size: int, generator, device, min_side: int = 4, max_side: int = 18):
    """Random axis-aligned boxes, one per image (for train_holes="mixed")."""
    sides = torch.randint(min_side, max_side + 1, (batch, 2), generator=generator, device=device)
    starts = (torch.rand(batch, 2, generator=generator, device=device) * (size - sides + 1)).floor().long()
    ar = torch.arange(size, device=device)
    rows = (ar[None] >= starts[:, :1]) & (ar[None] < starts[:, :1] + sides[:, :1])
    cols = (ar[None] >= starts[:, 1:]) & (ar[None] < starts[:, 1:] + sides[:, 1:])
    return (rows[:, :, None] & cols[:, None, :]).float().unsqueeze(1)


# ----------------------------------------------------------------------------------------------
# free-form holes


def check_coverage(coverage) -> tuple:
    """``coverage`` = (lo, hi): the fraction of pixels to fill, 0 < lo <= hi < 1."""
    try:
        lo, hi = (float(c) for c in coverage)
    except (TypeError, ValueError):
        raise ValueError(f"coverage must be a pair (lo, hi) with 0 < lo <= hi < 1, got {coverage!r}") from None
    if not (0.0 < lo <= hi < 1.0):
        raise ValueError(f"coverage must be a pair (lo, hi) with 0 < lo <= hi < 1, got {coverage!r}")
    return lo, hi


def _rand(generator, *shape) -> torch.Tensor:
    return torch.rand(shape or (1,), generator=generator, dtype=torch.float64)


def _uniform(generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * _rand(generator).item()


def _pixel_centres(H: int, W: int):
    """(H, W) grids of pixel-centre coordinates, in pixels."""
    ys = torch.arange(H, dtype=torch.float64) + 0.5
    xs = torch.arange(W, dtype=torch.float64) + 0.5
    return torch.meshgrid(ys, xs, indexing="ij")


def _segment_distance(py, px, a, b) -> torch.Tensor:
    """Euclidean distance from every pixel (py, px) to the segment a-b (points as (y, x))."""
    dy, dx = b[0] - a[0], b[1] - a[1]
    length2 = max(dy * dy + dx * dx, 1e-12)
    u = (((py - a[0]) * dy + (px - a[1]) * dx) / length2).clamp(0.0, 1.0)  # projection onto a-b
    return torch.hypot(py - (a[0] + u * dy), px - (a[1] + u * dx))


def _distance_field(kind: str, H: int, W: int, generator) -> torch.Tensor:
    """The field d(p) of the module docstring for one random draw of ``kind``."""
    py, px = _pixel_centres(H, W)
    n_shapes = int(torch.randint(1, 4, (1,), generator=generator).item())
    fields = []
    for _ in range(n_shapes):
        scale = _uniform(generator, 0.5, 1.0)  # relative size s_j of this shape
        cy, cx = _uniform(generator, 0, H), _uniform(generator, 0, W)
        if kind == "rectangle":
            aspect = math.exp(_uniform(generator, -math.log(3), math.log(3)))  # width / height
            # Chebyshev distance with axes scaled by the aspect: its level sets are rectangles
            d = torch.maximum((py - cy).abs() * math.sqrt(aspect), (px - cx).abs() / math.sqrt(aspect))
        elif kind == "circle":
            d = torch.hypot(py - cy, px - cx)
        else:  # a brush stroke: a polyline of 3..7 vertices with a smoothly turning direction
            n_vertices = int(torch.randint(3, 8, (1,), generator=generator).item())
            angle = _uniform(generator, 0, 2 * math.pi)
            points = [(cy, cx)]
            for _ in range(n_vertices - 1):
                angle += _uniform(generator, -math.pi / 2, math.pi / 2)
                step = _uniform(generator, 0.15, 0.4) * max(H, W)
                y = min(max(points[-1][0] + step * math.sin(angle), 0.0), float(H))
                x = min(max(points[-1][1] + step * math.cos(angle), 0.0), float(W))
                points.append((y, x))
            d = torch.stack([_segment_distance(py, px, a, b) for a, b in zip(points[:-1], points[1:])]).amin(0)
        fields.append(d / scale)
    return torch.stack(fields).amin(0)


def random_hole(kind: str, size, coverage=(0.1, 0.5), generator: torch.Generator | None = None) -> torch.Tensor:
    """A random free-form hole, (1, H, W) float32 with 1 = pixel to fill, 0 = known.

    kind      "rectangle", "circle" or "stroke" (brush strokes); 1 to 3 shapes of that kind
    size      int or (H, W)
    coverage  (lo, hi): the filled fraction is drawn uniformly in [lo, hi] and met exactly
              (to the pixel; see the module docstring)
    generator a CPU torch.Generator for reproducible draws (None: torch's global RNG)"""
    check_choice(kind, "kind", MASK_KINDS)
    H, W = check_int_pair(size, "size", 2)
    lo, hi = check_coverage(coverage)
    N = H * W
    k_min, k_max = math.ceil(lo * N - 1e-9), math.floor(hi * N + 1e-9)
    if k_min > k_max:
        raise ValueError(f"coverage {coverage!r} is too narrow for a {H}x{W} image (no whole pixel count fits)")
    k = min(max(round(_uniform(generator, lo, hi) * N), k_min), k_max)
    d = _distance_field(kind, H, W, generator).reshape(-1)
    hole = torch.zeros(N, dtype=torch.float32)
    hole[torch.argsort(d, stable=True)[:k]] = 1.0  # the k pixels nearest the shapes
    return hole.reshape(1, H, W)


def thin_stroke_hole(size, width=(4.0, 8.0), generator: torch.Generator | None = None) -> torch.Tensor:
    """A hand-drawn-looking thin stroke, (1, H, W) float32 with 1 = fill: one polyline of 3 to 7
    vertices (the turning walk of ``random_hole``'s strokes) drawn with a brush of a width drawn
    uniformly in ``width`` pixels. Unlike ``random_hole("stroke", ...)``, whose width grows until a
    coverage is met, the width is fixed and the coverage is whatever the stroke covers (a few % at
    64x64): the scratches and wires a user paints over."""
    H, W = check_int_pair(size, "size", 2)
    lo, hi = width
    if not 0 < lo <= hi:
        raise ValueError(f"width must be (lo, hi) with 0 < lo <= hi, got {width!r}")
    brush = _uniform(generator, lo, hi)
    py, px = _pixel_centres(H, W)
    angle = _uniform(generator, 0, 2 * math.pi)
    points = [(_uniform(generator, 0.2 * H, 0.8 * H), _uniform(generator, 0.2 * W, 0.8 * W))]
    for _ in range(int(torch.randint(3, 8, (1,), generator=generator).item()) - 1):
        angle += _uniform(generator, -math.pi / 2, math.pi / 2)
        step = _uniform(generator, 0.15, 0.4) * max(H, W)
        points.append((min(max(points[-1][0] + step * math.sin(angle), 0.0), float(H)),
                       min(max(points[-1][1] + step * math.cos(angle), 0.0), float(W))))
    d = torch.stack([_segment_distance(py, px, a, b) for a, b in zip(points[:-1], points[1:])]).amin(0)
    return (d <= brush / 2).float().reshape(1, H, W)


def check_mask_kinds(kinds, name: str = "mask_kinds") -> tuple:
    """``kinds`` (one name or several) as a tuple, if it is a non-empty subset of ``TRAINING_MASK_KINDS``."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not kinds or any(k not in TRAINING_MASK_KINDS for k in kinds):
        raise ValueError(f"{name} must be a non-empty subset of {TRAINING_MASK_KINDS}, got {kinds!r}")
    return kinds


def training_hole(kind: str, size, coverage=(0.1, 0.5), generator: torch.Generator | None = None) -> torch.Tensor:
    """A hole of one of ``TRAINING_MASK_KINDS``, (1, H, W), 1 = fill: ``random_hole(kind, size, coverage)``, or
    for "thin_stroke" ``thin_stroke_hole`` with its width scaled from 4 to 8 pixels at 64x64 to the image size
    (``coverage`` does not apply to it)."""
    check_choice(kind, "kind", TRAINING_MASK_KINDS)
    if kind != "thin_stroke":
        return random_hole(kind, size, coverage, generator)
    H, W = check_int_pair(size, "size", 2)
    scale = max(H, W) / 64
    return thin_stroke_hole((H, W), (4.0 * scale, 8.0 * scale), generator)


def random_keep_mask(kind: str, size, coverage=(0.1, 0.5), generator: torch.Generator | None = None) -> torch.Tensor:
    """The guide's mask convention, (1, H, W) with 1 = keep, 0 = fill: ``1 - random_hole(...)``."""
    return 1.0 - random_hole(kind, size, coverage, generator)
