"""The classical baselines of the free-form system: OpenCV Telea and a harmonic fill, and the
comparison on the same holes."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..masks import MASK_KINDS

# how inpaint_image samples by default, and so how compare_with_telea scores the model (the reasons, with
# figures, are in inpaint_image's docstring)
DC_REPEATS = 3  # visits per DDIM step
MEAN_OF = 8  # samples averaged into one fill


def model_fill(model, images01: torch.Tensor, hole: torch.Tensor, steps: int, *, seed: int = 0, eta: float = 0.0,
               dc_repeats: int = DC_REPEATS, mean_of: int = MEAN_OF) -> torch.Tensor:
    """The free-form model's fill, as ``inpaint_image`` and ``compare_with_telea`` make it: the guide's
    DDIM (``known="clean"``, start from noise in the hole) with ``dc_repeats`` visits per step, run
    ``mean_of`` times from seeds ``seed``, ``seed + 1``, ... and averaged. images01 (B, 3, S, S) in
    [0, 1] and hole (B, 1, S, S) on the model's device; returns (B, 3, S, S) in [0, 1]."""
    from ..samplers import inpaint

    if getattr(model.config, "objective", "diffusion") == "mmse":
        return mmse_fill(model, images01, hole)
    return sum(inpaint(model, images01, hole, "replace", steps=steps, seed=seed + j, eta=eta, init_from_y=False,
                       known="clean", dc_repeats=dc_repeats) for j in range(mean_of)) / mean_of


@torch.no_grad()
def mmse_fill(model, images01: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """The fill of a regression U-Net (``FreeformConfig.objective="mmse"``): one evaluation on the
    known pixels with an empty hole at t = T - 1, as it was trained (``recipe.hole_loss``), whose
    output is its estimate of E[x_0 | known pixels], the posterior mean. images01 (B, 3, S, S) in
    [0, 1], hole (B or 1, 1, S, S); returns (B, 3, S, S) in [0, 1], the known pixels the input's own."""
    from ..utils import to_model, to_unit

    hole = hole.to(images01.dtype).expand(images01.shape[0], 1, *images01.shape[-2:])
    y = to_model(images01) * (1.0 - hole)
    t = torch.full((images01.shape[0],), model.config.T - 1, dtype=torch.long, device=images01.device)
    was_training = model.training
    model.eval()
    try:
        x0 = model(torch.zeros_like(y), t, y=y, hole=hole).float().clamp(-1.0, 1.0)
    finally:
        model.train(was_training)
    return torch.where(hole.bool(), to_unit(x0), images01)


def telea_inpaint(images01: torch.Tensor, hole: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """OpenCV's Telea inpainting (``cv2.INPAINT_TELEA``, Telea 2004) of (B, 3, H, W) [0, 1] images
    where ``hole`` (B, 1, H, W) is 1; returns (B, 3, H, W) in [0, 1] (uint8 levels)."""
    import cv2
    import numpy as np

    out = []
    for img, h in zip(images01.cpu(), hole.cpu().expand(images01.shape[0], 1, *images01.shape[-2:])):
        rgb = (img.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
        filled = cv2.inpaint(np.ascontiguousarray(rgb), h[0].numpy().astype(np.uint8), radius, cv2.INPAINT_TELEA)
        out.append(torch.from_numpy(filled).permute(2, 0, 1).float() / 255.0)
    return torch.stack(out)


def harmonic_fill(images: torch.Tensor, keep: torch.Tensor, sweeps: int = 100) -> torch.Tensor:
    """The harmonic fill of the hole: the solution of Laplace's equation (each hole pixel the mean
    of its four neighbours) with the known pixels as boundary values. Smooth content (a flat colour,
    a linear gradient) comes back almost exactly; edges and textures are blurred across the hole.

    images  (B, C, H, W) in any range; their values in the hole are ignored
    keep    (B or 1, 1, H, W), 1 = known pixel, 0 = fill
    sweeps  Jacobi sweeps per level (100: a linear ramp across a 40x35 hole comes back to 1e-4)

    Solved coarse to fine, so that a large hole costs no more than a small one: a pyramid of
    mask-weighted 2x2 averages down to one known value per coarsest cell, then at each level, from
    the coarsest up, the coarser solution upsampled (bilinear) as the start and ``sweeps`` Jacobi
    sweeps on the hole pixels. Returns (B, C, H, W): the known pixels unchanged, the hole filled.
    Differentiable, deterministic, pure torch (any device and dtype)."""
    if images.ndim != 4 or keep.ndim != 4 or keep.shape[1] != 1 or keep.shape[-2:] != images.shape[-2:]:
        raise ValueError(f"images must be (B, C, H, W) and keep (B or 1, 1, H, W) of the same H, W; got "
                         f"{tuple(images.shape)} and {tuple(keep.shape)}")
    keep = keep.to(images.dtype).expand(images.shape[0], 1, *images.shape[-2:])
    levels = [(images * keep, keep)]
    while min(levels[-1][1].shape[-2:]) > 1 and levels[-1][1].amin() < 1:
        v, w = levels[-1]
        if v.shape[-1] % 2 or v.shape[-2] % 2:
            break
        levels.append((F.avg_pool2d(v, 2), F.avg_pool2d(w, 2)))
    C = images.shape[1]
    kernel = images.new_tensor([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]]).view(1, 1, 3, 3).repeat(C, 1, 1, 1)
    x = None
    for v, w in reversed(levels):
        known_mean = v / w.clamp_min(1e-12)  # the known pixels' mean in each cell (where it has any)
        start = known_mean if x is None else F.interpolate(x, size=v.shape[-2:], mode="bilinear", align_corners=False)
        fixed = w >= 1.0 - 1e-6  # cells wholly known are boundary values at this level
        if x is None:  # the coarsest level: cells with no known pixel start from the mean of all known ones
            overall = v.sum((2, 3), keepdim=True) / w.sum((2, 3), keepdim=True).clamp_min(1e-12)
            start = torch.where(w > 0, known_mean, overall)
        x = torch.where(fixed, known_mean, start)
        for _ in range(sweeps):
            smooth = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=C)
            x = torch.where(fixed, known_mean, smooth)
    return torch.where(keep.bool(), images, x)


@torch.no_grad()
def compare_with_telea(model, images01: torch.Tensor, mask_kinds=MASK_KINDS, coverage=(0.1, 0.5), steps: int = 50,
                       seed: int = 0, batch_size: int = 32, dc_repeats: int | None = None,
                       mean_of: int | None = None) -> dict:
    """Hole-only PSNR and L1 (``metrics.HoleMetrics``) of the model and of the two classical fills,
    OpenCV Telea and ``harmonic_fill``, per mask kind, on the same images and the same holes.

    For each kind every image gets one hole of that kind (``random_hole``, seeded by ``seed``);
    the model fills it as ``inpaint_image`` does (``known="clean"``, start from noise in the hole,
    ``steps`` DDIM steps, ``dc_repeats`` visits per step, the mean of ``mean_of`` samples; None:
    ``inpaint_image``'s defaults); every result is rounded to uint8 levels, as saved images are.
    Returns {kind: {"model": summary, "telea": summary, "harmonic": summary, "samples": (gt, hole,
    model, telea, harmonic)}} where a summary is ``HoleMetrics.summary()`` and the samples are the
    first 8 images, for plotting."""
    from ..metrics import HoleMetrics
    from ..masks import random_hole

    dc_repeats = DC_REPEATS if dc_repeats is None else dc_repeats
    mean_of = MEAN_OF if mean_of is None else mean_of
    device = next(model.parameters()).device
    size = images01.shape[-1]
    results = {}
    for k, kind in enumerate(mask_kinds):
        generator = torch.Generator().manual_seed(seed * 1000 + k)
        holes = torch.stack([random_hole(kind, size, coverage, generator) for _ in range(len(images01))])
        scores = {"model": HoleMetrics(), "telea": HoleMetrics(), "harmonic": HoleMetrics()}
        samples = None
        for start in range(0, len(images01), batch_size):
            gt, hole = images01[start:start + batch_size], holes[start:start + batch_size]
            ours = model_fill(model, gt.to(device), hole.to(device), steps, seed=seed + start, dc_repeats=dc_repeats,
                              mean_of=mean_of).cpu()
            fills = {"model": ours, "telea": telea_inpaint(gt, hole), "harmonic": harmonic_fill(gt, 1 - hole)}
            fills = {name: (f * 255.0).round() / 255.0 for name, f in fills.items()}
            for name, f in fills.items():
                scores[name].update(f, gt, hole)
            if samples is None:
                samples = (gt[:8], hole[:8], fills["model"][:8], fills["telea"][:8], fills["harmonic"][:8])
        results[kind] = {**{name: m.summary() for name, m in scores.items()}, "samples": samples}
    return results
