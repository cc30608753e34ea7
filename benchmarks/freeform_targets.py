"""The free-form model against the classical fills and the MMSE reference, per image, on held-out patterns.

    OMP_NUM_THREADS=1 python benchmarks/freeform_targets.py --n 100 \
        --mmse <regression checkpoint> --out benchmarks/results/freeform_targets_patterns.json

Images: ``make_patterns(..., n, image_size, seed=--seed)`` (seed 0 is the training set's; the default 3 is
a set no run has seen; every fifth image is one pattern kind: shapes, stripes, checkers, gradient, mixed).
One hole per image and mask kind, seeded, the same hole for every method:

    rectangle, circle, stroke   ``random_hole(kind, S, (0.1, 0.5))``, what the model trains on
    thin_stroke                 ``thin_stroke_hole(S, (4, 8))``: one brush stroke 4 to 8 pixels wide (at 64x64)
    large                       ``random_hole`` rectangles and circles, alternately, at 40% to 50% of the image

Methods: the harmonic fill (``harmonic_fill``: Laplace's equation on the hole), OpenCV Telea, the model as
``inpaint_image`` fills by default (``freeform.baseline.model_fill`` with its defaults), one sample of it
(``mean_of=1``, what the widget shows) and, with ``--mmse``, the regression U-Net's posterior mean
(``mmse_fill``). Every fill is rounded to 8-bit levels. Per mask kind, and on the structured subset (the
patterns whose hole must continue a structure: every kind but "gradient"):

- per-image PSNR_hole (mean over images; one image's PSNR is capped at 100 dB) and pooled PSNR_hole;
- the paired difference to the better classical fill per image, with a 95% bootstrap interval (1,000
  resamples of the images);
- roughness: ``metrics.hole_roughness`` of the fill against the truth (1 = as rough as the truth).

Writes the JSON (every per-image value and the command) and prints markdown tables for the model card.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from benchlib import command_line, hardware, paired_mean_gap, quantise
from inpaintlib.freeform import find_images, harmonic_fill, load_rgb, make_patterns, telea_inpaint
from inpaintlib.freeform.baseline import DC_REPEATS, MEAN_OF, mmse_fill, model_fill
from inpaintlib.freeform.data import PATTERN_KINDS
from inpaintlib.masks import random_hole, thin_stroke_hole
from inpaintlib.metrics import HoleMetrics, hole_roughness, psnr_hole
from inpaintlib.registry import load_model, pretrained

MASKS = ("rectangle", "circle", "stroke", "thin_stroke", "large")
STRUCTURED = tuple(k for k in PATTERN_KINDS if k != "gradient")


def holes_for(kind: str, n: int, size: int, seed: int) -> torch.Tensor:
    """(n, 1, S, S) holes of one mask kind, seeded by (seed, kind)."""
    generator = torch.Generator().manual_seed(seed * 1000 + MASKS.index(kind))
    if kind == "thin_stroke":
        return torch.stack([thin_stroke_hole(size, (4.0, 8.0), generator) for _ in range(n)])
    if kind == "large":
        return torch.stack([random_hole(("rectangle", "circle")[i % 2], size, (0.4, 0.5), generator) for i in range(n)])
    return torch.stack([random_hole(kind, size, (0.1, 0.5), generator) for _ in range(n)])


def per_image_psnr(fill: torch.Tensor, truth: torch.Tensor, hole: torch.Tensor) -> list:
    """Each image's PSNR_hole (``HoleMetrics.per_image_psnr``: an exact fill counts as 100 dB)."""
    m = HoleMetrics()
    m.update(fill, truth, hole)
    return m.per_image_psnr


def fills_for(methods: dict, images: torch.Tensor, hole: torch.Tensor, steps: int, seed: int, batch: int) -> dict:
    """Every method's fill of every image, and its seconds per image. A method maps (truth, hole, seed) to
    a dict of named fills with their seconds (the model's samples serve two rows at once)."""
    out, seconds = {}, {}
    classical = {"harmonic": lambda gt, h, s: {"harmonic": (torch.where(h.bool(), harmonic_fill(gt, 1 - h), gt), None)},
                 "telea": lambda gt, h, s: {"telea": (torch.where(h.bool(), telea_inpaint(gt, h), gt), None)}}
    for start in range(0, len(images), batch):
        gt, h = images[start:start + batch], hole[start:start + batch]
        for run in (*classical.values(), *methods.values()):
            t0 = time.perf_counter()
            fills = run(gt, h, seed + start)
            elapsed = time.perf_counter() - t0
            for name, (fill, took) in fills.items():
                out.setdefault(name, []).append(quantise(fill))
                seconds[name] = seconds.get(name, 0.0) + (elapsed if took is None else took)
    return {name: torch.cat(v) for name, v in out.items()}, {k: v / len(images) for k, v in seconds.items()}


def model_rows(model, steps: int, extra: dict, rows: list):
    """The diffusion model's rows from one set of samples: "one sample" is the first of the samples that
    "default" averages (seeds s, s + 1, ...), the same tensors ``model_fill`` makes with ``mean_of=1`` and
    with the default ``mean_of`` (its mean is summed in the same order, so the fill is bit-identical)."""
    n = extra.get("mean_of", MEAN_OF)
    one = {**extra, "mean_of": 1}

    def run(gt, h, s):
        samples, took = [], []
        for j in range(n if "default" in rows else 1):
            t0 = time.perf_counter()
            samples.append(model_fill(model, gt, h, steps, seed=s + j, **one))
            took.append(time.perf_counter() - t0)
        fills = {}
        if "default" in rows:
            fills["default"] = (sum(samples) / n, sum(took))
        if "one sample" in rows:
            fills["one sample"] = (samples[0], took[0])
        return fills
    return run


def summarise(fills: dict, truth: torch.Tensor, hole: torch.Tensor, kinds: list) -> dict:
    psnr = {name: per_image_psnr(f, truth, hole) for name, f in fills.items()}
    best = [max(a, b) for a, b in zip(psnr["harmonic"], psnr["telea"])]
    rows = {}
    subsets = {"all": list(range(len(truth))), "structured": [i for i, k in enumerate(kinds) if k in STRUCTURED]}
    for name, f in fills.items():
        row = {"per_image": psnr[name]}
        for subset, idx in subsets.items():
            a, b = [psnr[name][i] for i in idx], [best[i] for i in idx]
            sel = torch.tensor(idx)
            row[subset] = {"psnr_per_image": sum(a) / len(a), "psnr_pooled": psnr_hole(f[sel], truth[sel], hole[sel]),
                           "minus_best_classical": sum(x - y for x, y in zip(a, b)) / len(a),
                           "minus_best_classical_ci95": paired_mean_gap(a, b)["ci95"],
                           "roughness": hole_roughness(f[sel], truth[sel], hole[sel])}
        rows[name] = row
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=None, help="the diffusion model (default: pretrained('patterns'))")
    p.add_argument("--mmse", default=None, help="a regression U-Net checkpoint (FreeformConfig.objective='mmse')")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=3, help="make_patterns seed of the images (0 is the training set's)")
    p.add_argument("--masks", nargs="+", default=list(MASKS), choices=MASKS)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--dc_repeats", type=int, default=None, help="default: inpaint_image's")
    p.add_argument("--mean_of", type=int, default=None, help="the default fill's samples (default: inpaint_image's)")
    p.add_argument("--eta", type=float, default=None, help="DDIM's eta for the model's rows (default: inpaint_image's)")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--out", default="outputs/freeform_targets/targets.json")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--model_rows", nargs="*", default=["default", "one sample"], choices=("default", "one sample"),
                   help="the diffusion model's rows to run (none: only the classical fills and the MMSE reference)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ckpt = args.ckpt or str(pretrained("patterns"))
    model = load_model(ckpt, device="cpu")
    size = model.config.image_size
    with tempfile.TemporaryDirectory() as tmp:
        make_patterns(tmp, args.n, size, seed=args.seed)
        images = torch.stack([load_rgb(f, size) for f in find_images(tmp)])
    kinds = [PATTERN_KINDS[i % len(PATTERN_KINDS)] for i in range(args.n)]
    extra = {k: v for k, v in (("dc_repeats", args.dc_repeats), ("mean_of", args.mean_of), ("eta", args.eta))
             if v is not None}
    methods = {"model": model_rows(model, args.steps, extra, args.model_rows)} if args.model_rows else {}
    if args.mmse:
        regression = load_model(args.mmse, device="cpu")
        methods["MMSE reference"] = lambda gt, h, s: {"MMSE reference": (mmse_fill(regression, gt, h), None)}
    report = {"command": command_line("freeform_targets.py", argv),
              "ckpt": ckpt, "mmse": args.mmse, "n": args.n, "seed": args.seed, "steps": args.steps, **extra,
              # the settings the model's rows ran at, defaults included (they change between versions)
              "model_settings": {"dc_repeats": extra.get("dc_repeats", DC_REPEATS), "mean_of": extra.get("mean_of", MEAN_OF),
                                 "eta": extra.get("eta", 0.0)},
              **hardware(), "masks": {}}
    for kind in args.masks:
        hole = holes_for(kind, args.n, size, args.seed)
        with torch.no_grad():
            fills, seconds = fills_for(methods, images, hole, args.steps, args.seed, args.batch)
        rows = summarise(fills, images, hole, kinds)
        report["masks"][kind] = {"coverage": float(hole.mean()), "seconds_per_image": seconds, "methods": rows}
        print(f"\n{kind} (coverage {hole.mean():.1%})")
        print("| method | per-image PSNR | minus better classical (95%) | pooled | structured: per image, minus better "
              "classical | roughness |")
        print("|---|---|---|---|---|---|")
        for name, r in rows.items():
            a, s = r["all"], r["structured"]
            print(f"| {name} | {a['psnr_per_image']:.2f} | {a['minus_best_classical']:+.2f} "
                  f"({a['minus_best_classical_ci95'][0]:+.2f} to {a['minus_best_classical_ci95'][1]:+.2f}) | "
                  f"{a['psnr_pooled']:.2f} | {s['psnr_per_image']:.2f}, {s['minus_best_classical']:+.2f} | "
                  f"{a['roughness']:.2f} |")
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
