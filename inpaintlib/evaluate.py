"""Hole-only metrics, and the design's ``sample_cmd`` and ``eval_cmd``.

With M = 1 inside the hole and images in [0, 1] (the design document's formulas):
    L1_hole   = mean(|x_pred - x_gt| * M) / mean(M)
    MSE_hole  = mean((x_pred - x_gt)^2 * M) / mean(M)
    PSNR_hole = 20 log10(MAX_I) - 10 log10(MSE_hole),  MAX_I = 1
Over a set of images the means run over all of them (pooled): the headline PSNR is taken of the
pooled MSE. The mean of per-image PSNRs is reported beside it, under its own name.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from .checkpoint import load_model
from .data import center_hole, load_test_images
from .sampling import inpaint
from .utils import check_writable_dir, save_panel

PSNR_CAP_DB = 100.0  # per-image PSNR of an exact reconstruction (MSE = 0) is reported as this


# ----------------------------------------------------------------------------------------------
# metrics


def hole_sums(pred: torch.Tensor, gt: torch.Tensor, hole: torch.Tensor):
    """Per-image sums over the hole: squared error, absolute error, and hole pixel count (x channels)."""
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got {tuple(pred.shape)} and {tuple(gt.shape)}")
    m = hole.to(pred.dtype).expand_as(pred)
    diff = (pred - gt) * m
    dims = tuple(range(1, pred.ndim))
    return (diff ** 2).sum(dims), diff.abs().sum(dims), m.sum(dims)


def l1_hole(pred, gt, hole) -> float:
    """mean(|x_pred - x_gt| * M) / mean(M), pooled over the batch."""
    _, abs_sum, count = hole_sums(pred, gt, hole)
    return (abs_sum.sum() / count.sum()).item()


def mse_hole(pred, gt, hole) -> float:
    """mean((x_pred - x_gt)^2 * M) / mean(M), pooled over the batch."""
    sq_sum, _, count = hole_sums(pred, gt, hole)
    return (sq_sum.sum() / count.sum()).item()


def psnr_from_mse(mse: float) -> float:
    """PSNR = 20 log10(1) - 10 log10(MSE) = -10 log10(MSE) for images in [0, 1]."""
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def psnr_hole(pred, gt, hole) -> float:
    """Hole-only PSNR of the pooled MSE (the headline figure)."""
    return psnr_from_mse(mse_hole(pred, gt, hole))


class HoleMetrics:
    """Accumulates hole-only errors over batches; ``summary()`` gives pooled and per-image figures."""

    def __init__(self):
        self._batches = []  # per batch: the per-image hole sums (squared error, absolute error, pixels)

    def update(self, pred, gt, hole) -> None:
        self._batches.append(tuple(v.double().cpu() for v in hole_sums(pred, gt, hole)))

    def _per_image(self):
        """(squared error, absolute error, hole pixels), each (N,) over every image seen so far."""
        if not self._batches:
            return (torch.zeros(0, dtype=torch.float64),) * 3
        return tuple(torch.cat(column) for column in zip(*self._batches))

    @property
    def per_image_psnr(self) -> list:
        """Each image's own hole PSNR (an exact reconstruction counts as PSNR_CAP_DB)."""
        sq, _, n = self._per_image()
        per_mse = (sq / n.clamp(min=1)).clamp(min=10 ** (-PSNR_CAP_DB / 10))
        return (-10.0 * torch.log10(per_mse)).tolist()

    def psnr_interval(self, level: float = 0.95, resamples: int = 1000, seed: int = 0) -> list:
        """Bootstrap interval of the pooled PSNR_hole: the images are drawn again with replacement
        ``resamples`` times (a fixed seed, so the interval is reproducible) and the pooled PSNR of each
        draw is taken; returns the central ``level`` share of those, [low, high] in dB. It says how much
        the figure would move on another set of images of the same size: in benchmarks/quality.py's
        table, +-0.1 to 0.4 dB on 200 test digits, +-0.02 to 0.06 dB on all 10000."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        sq, _, n = self._per_image()
        g = torch.Generator().manual_seed(seed)
        mses = []
        for start in range(0, resamples, 100):  # 100 draws at a time: (100, N) indices stay small for N = 10000
            idx = torch.randint(len(sq), (min(100, resamples - start), len(sq)), generator=g)
            mses.append(sq[idx].sum(1) / n[idx].sum(1).clamp(min=1))
        psnr = -10.0 * torch.log10(torch.cat(mses).clamp(min=10 ** (-PSNR_CAP_DB / 10)))
        q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=psnr.dtype)
        return torch.quantile(psnr, q).tolist()

    def summary(self) -> dict:
        sq, ab, n = (v.sum().item() for v in self._per_image())
        if n == 0:
            raise ValueError("no hole pixels were evaluated (the hole is empty)")
        mse = sq / n
        per_image = self.per_image_psnr
        return {"psnr_hole": psnr_from_mse(mse), "l1_hole": ab / n, "mse_hole": mse,
                "psnr_hole_per_image_mean": sum(per_image) / len(per_image),
                "psnr_hole_ci95": None if mse == 0 else self.psnr_interval(0.95)}


# ----------------------------------------------------------------------------------------------
# the design's commands


def check_model_flags(model, **flags) -> None:
    """Architecture flags passed by the user must agree with the checkpoint (None = take the checkpoint's)."""
    cfg = model.config
    wrong = {k: (v, getattr(cfg, k)) for k, v in flags.items() if v is not None and v != getattr(cfg, k)}
    if wrong:
        text = ", ".join(f"{k}={v!r} but the checkpoint was trained with {k}={c!r}" for k, (v, c) in wrong.items())
        where = getattr(model, "checkpoint_path", "the checkpoint")
        raise ValueError(f"{text} ({where}). Pass the checkpoint's values or leave them out (None).")


def _output_dir(ckpt, out_dir) -> Path:
    """``out_dir`` if given; else beside the checkpoint, except for a shipped checkpoint (inside the
    installed package), whose files go to outputs/<checkpoint name>/ instead."""
    from .pretrained import WEIGHTS_DIR

    if out_dir is None:
        ckpt = Path(ckpt).resolve()
        shipped = WEIGHTS_DIR.resolve() in ckpt.parents
        out_dir = Path("outputs") / ckpt.stem if shipped else ckpt.parent
    return check_writable_dir(out_dir, "out_dir")


def sampler_settings(sampler: str, dc_repeats: int | None, particles: int | None):
    """(dc_repeats, inpaint's sampler options) for the commands: dc_repeats None is the design's 2
    for "replace" and "guidance" and 1 for the other samplers; ``particles`` goes to "smc" only."""
    from .samplers import SAMPLERS

    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(map(repr, SAMPLERS))}, got {sampler!r}")
    if dc_repeats is None:
        dc_repeats = 2 if sampler in ("replace", "guidance") else 1
    if particles is not None and sampler != "smc":
        raise ValueError(f"particles applies to sampler='smc' only, got particles={particles!r} with sampler={sampler!r}")
    return dc_repeats, ({} if particles is None else {"particles": particles})


def sample_cmd(ckpt: str = "outputs/inpaint/last.pt", n: int = 16, steps: int = 50, center_box: int = 12,
               dc_repeats: int | None = None, dc_fixed_z: bool = True, pred: str | None = None,
               self_cond: bool | None = None, init_from_y: bool = True, eta: float | None = None,
               coord_conv: bool | None = None, cond: str | None = None, data_root: str = "data", device=None,
               seed: int = 0, out_dir: str | None = None, guidance: float = 0.0, sampler: str = "replace",
               particles: int | None = None) -> torch.Tensor:
    """Inpaint the centre hole of the first ``n`` MNIST test digits; write samples.png beside the
    checkpoint (or in ``out_dir``; a shipped checkpoint's go to outputs/<name>/); return the
    inpainted images (n, 1, 28, 28) in [0, 1].

    ``steps`` is the number of DDIM steps (at most the checkpoint's T). ``pred``, ``self_cond``,
    ``coord_conv`` and ``cond`` are checked against the checkpoint; None takes the checkpoint's.
    ``guidance`` > 0 adds reconstruction guidance of that weight (``sampling``; 0: the design's sampler).
    ``sampler`` is one of ``samplers.SAMPLERS`` ("replace", the design's, by default); ``particles``
    is "smc"'s K. ``dc_repeats`` None: 2 for "replace" and "guidance" (the design's), 1 for the
    others; ``eta`` None: the sampler's default (0, DDIM; 1 for "smc")."""
    dc_repeats, options = sampler_settings(sampler, dc_repeats, particles)
    model = load_model(ckpt, device=device)
    check_model_flags(model, pred=pred, self_cond=self_cond, coord_conv=coord_conv, cond=cond)
    images, _ = load_test_images(data_root, n=n)
    hole = center_hole(28, center_box)
    result = inpaint(model, images, hole, steps=steps, eta=eta, dc_repeats=dc_repeats, dc_fixed_z=dc_fixed_z,
                     init_from_y=init_from_y, seed=seed, guidance=guidance, sampler=sampler, **options)
    masked = images * (1 - hole) + 0.5 * hole
    path = _output_dir(ckpt, out_dir) / "samples.png"
    save_panel([masked, result, images], path, row_titles=["masked", "inpainted", "ground truth"],
               title=f"{Path(ckpt).name}: {steps} DDIM steps, eta={eta}, dc_repeats={dc_repeats}"
                     + (f", guidance={guidance:g}" if guidance else "")
                     + (f", sampler={sampler}" if sampler != "replace" else "")
                     + (f", particles={particles}" if particles else ""))
    return result


@torch.no_grad()
def eval_cmd(ckpt: str = "outputs/inpaint/last.pt", batch_size: int = 256, n_eval: int = 500, steps: int = 50,
             center_box: int = 12, dc_repeats: int | None = None, dc_fixed_z: bool = True, pred: str | None = None,
             self_cond: bool | None = None, init_from_y: bool = True, eta: float | None = None,
             coord_conv: bool | None = None, seed: int = 123, cond: str | None = None, data_root: str = "data",
             device=None, out_dir: str | None = None, json_name: str = "eval.json", guidance: float = 0.0,
             sampler: str = "replace", particles: int | None = None) -> dict:
    """Hole-only PSNR and L1 on the first ``n_eval`` MNIST test images with the centre hole.

    Writes ``eval.json`` beside the checkpoint (or in ``out_dir``; a shipped checkpoint's go to
    outputs/<name>/) and returns the same dict:
    psnr_hole, l1_hole (pooled over all images), mse_hole, psnr_hole_per_image_mean, n_eval,
    steps, nfe_per_image, seconds, images_per_second, device, and every argument used.
    ``guidance`` > 0 adds reconstruction guidance of that weight (each evaluation then also takes a
    backward pass through the network; ``nfe_per_image`` counts the forward evaluations and
    ``backward_per_image`` the backward passes). ``sampler``, ``particles``, ``dc_repeats`` and
    ``eta``: as in ``sample_cmd`` (the args record dc_repeats as used)."""
    dc_repeats, options = sampler_settings(sampler, dc_repeats, particles)
    args = {k: v for k, v in locals().items() if k != "options"}
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    model = load_model(ckpt, device=device)
    check_model_flags(model, pred=pred, self_cond=self_cond, coord_conv=coord_conv, cond=cond)
    images, _ = load_test_images(data_root, n=n_eval, allow_sample=False)
    hole = center_hole(28, center_box)
    dev = next(model.parameters()).device
    metrics, nfe, backward = HoleMetrics(), 0, 0
    t0 = time.perf_counter()
    for k, start in enumerate(range(0, len(images), batch_size)):
        gt = images[start:start + batch_size].to(dev)
        counter = []
        result = inpaint(model, gt, hole.to(dev), steps=steps, eta=eta, dc_repeats=dc_repeats,
                         dc_fixed_z=dc_fixed_z, init_from_y=init_from_y, seed=seed + k,
                         callback=lambda d: counter.append((d["nfe"], d.get("backward", 0))), guidance=guidance,
                         sampler=sampler, **options)
        nfe = max(c[0] for c in counter) if counter else 0
        backward = max(c[1] for c in counter) if counter else 0
        metrics.update(result, gt, hole.to(dev))
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    cfg = model.config
    out = {**metrics.summary(), "n_eval": len(images), "steps": steps, "nfe_per_image": nfe,
           "backward_per_image": backward, "sampler": sampler,
           "seconds": seconds, "images_per_second": len(images) / seconds, "device": str(dev),
           "model": {"pred": cfg.pred, "self_cond": cfg.self_cond, "coord_conv": cfg.coord_conv,
                     "cond": cfg.cond, "T": cfg.T, "schedule": cfg.schedule},
           "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in args.items()}}
    path = _output_dir(ckpt, out_dir) / json_name
    path.write_text(json.dumps(out, indent=2))
    return out

