"""The classical baseline of the free-form system: OpenCV Telea, and the comparison on the same holes."""
from __future__ import annotations

import torch

from ..masks import MASK_KINDS


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


@torch.no_grad()
def compare_with_telea(model, images01: torch.Tensor, mask_kinds=MASK_KINDS, coverage=(0.1, 0.5), steps: int = 50,
                       seed: int = 0, batch_size: int = 32) -> dict:
    """Hole-only PSNR and L1 (``evaluate.HoleMetrics``) of the model and of Telea, per mask kind,
    on the same images and the same holes.

    For each kind every image gets one hole of that kind (``random_hole``, seeded by ``seed``);
    the model fills it with the guide's DDIM (``known="clean"``, ``steps`` steps); both results
    are rounded to uint8 levels, as saved images are. Returns
    {kind: {"model": summary, "telea": summary, "samples": (gt, hole, model, telea)}} where a
    summary is ``HoleMetrics.summary()`` and the samples are the first 8 images, for plotting."""
    from ..metrics import HoleMetrics
    from ..samplers import inpaint
    from ..masks import random_hole

    device = next(model.parameters()).device
    size = images01.shape[-1]
    results = {}
    for k, kind in enumerate(mask_kinds):
        generator = torch.Generator().manual_seed(seed * 1000 + k)
        holes = torch.stack([random_hole(kind, size, coverage, generator) for _ in range(len(images01))])
        scores = {"model": HoleMetrics(), "telea": HoleMetrics()}
        samples = None
        for start in range(0, len(images01), batch_size):
            gt, hole = images01[start:start + batch_size], holes[start:start + batch_size]
            ours = inpaint(model, gt.to(device), hole.to(device), steps=steps, init_from_y=False, known="clean",
                           seed=seed + start).cpu()
            ours = (ours * 255.0).round() / 255.0
            theirs = telea_inpaint(gt, hole)
            scores["model"].update(ours, gt, hole)
            scores["telea"].update(theirs, gt, hole)
            if samples is None:
                samples = (gt[:8], hole[:8], ours[:8], theirs[:8])
        results[kind] = {"model": scores["model"].summary(), "telea": scores["telea"].summary(), "samples": samples}
    return results
