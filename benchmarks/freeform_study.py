"""Why are the free-form model's fills noisy? Sampler-side candidates, measured on held-out patterns.

    OMP_NUM_THREADS=1 python benchmarks/freeform_study.py                 # the shipped pretrained("patterns")
    python benchmarks/freeform_study.py --ckpt outputs/patterns_small/checkpoint.pt --n 24 --variants "guide,guide eta=1"

For each variant (a change to how the shipped network is sampled; the network is the same), on the
same held-out patterns (``make_patterns(..., seed=1)``, none in the training set) and the same holes
of each mask kind, beside OpenCV Telea and the harmonic fill (``harmonic_fill``: Laplace's equation
on the hole):

- PSNR_hole pooled over the images, and the mean of per-image PSNR_hole (the target of issue 16
  is on the per-image figure), also per pattern kind;
- roughness (``metrics.hole_roughness``): the mean absolute 4-neighbour Laplacian inside the hole, divided by the truth's on the
  same pixels (1 = as rough as the truth; the target is at most 1.5);
- seconds per image.

Writes outputs/freeform_study/study.json and prints a table. Nothing is trained here: a variant that
needs a retrained network (loss, parameterisation, EMA, schedule) is measured by training it with
``scripts/train_patterns.py`` and passing its checkpoint with --ckpt.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from benchlib import command_line, hardware, paired_mean_gap, quantise
from inpaintlib import load_model, pretrained
from inpaintlib.metrics import HoleMetrics, hole_roughness
from inpaintlib.freeform import harmonic_fill, telea_inpaint
from inpaintlib.freeform import MASK_KINDS, find_images, load_rgb, make_patterns, random_hole
from inpaintlib.freeform.data import PATTERN_KINDS
from inpaintlib.samplers import inpaint

# name -> inpaint() arguments (sampler "replace", the default, and its options; mean_of: samples averaged here);
# "guide" is inpaint_image's sampler (the architecture guide's algorithm)
VARIANTS = {
    "guide": dict(steps=50, known="clean", init_from_y=False),
    "guide 200 steps": dict(steps=200, known="clean", init_from_y=False),
    "guide 10 steps": dict(steps=10, known="clean", init_from_y=False),
    "guide eta=1": dict(steps=50, known="clean", init_from_y=False, eta=1.0),
    "known noised (MNIST design)": dict(steps=50, known="noised", init_from_y=False),
    "guide + resampling x3": dict(steps=50, known="clean", init_from_y=False, dc_repeats=3),
    "mean of 4 samples": dict(steps=50, known="clean", init_from_y=False, mean_of=4),
    "eta=1 + resampling x3": dict(steps=50, known="clean", init_from_y=False, eta=1.0, dc_repeats=3),
    "eta=1 + resampling x3 25 steps": dict(steps=25, known="clean", init_from_y=False, eta=1.0, dc_repeats=3),
    "resampling 20 steps x5": dict(steps=20, known="clean", init_from_y=False, dc_repeats=5),
    "resampling 10 steps x10": dict(steps=10, known="clean", init_from_y=False, dc_repeats=10),
    "resampling 25 steps x6": dict(steps=25, known="clean", init_from_y=False, dc_repeats=6),
    "resampling x3 + mean of 2": dict(steps=50, known="clean", init_from_y=False, dc_repeats=3, mean_of=2),
    "resampling x3 + mean of 4": dict(steps=50, known="clean", init_from_y=False, dc_repeats=3, mean_of=4),
}


def run_variant(model, images, holes, settings: dict, seed: int) -> tuple:
    settings = dict(settings)
    k = settings.pop("mean_of", 1)
    t0 = time.perf_counter()
    fills = torch.stack([inpaint(model, images, holes, seed=seed + j, **settings) for j in range(k)]).mean(0)
    seconds = (time.perf_counter() - t0) / len(images)
    return quantise(fills), seconds


@torch.no_grad()
def one_shot(model, images, holes, t: int, seed: int) -> torch.Tensor:
    """The network's x0 estimate in one evaluation from the truth noised to timestep t (known pixels
    clean): how well it denoises at that noise level when nothing before it went wrong."""
    from inpaintlib.schedule import NoiseSchedule
    from inpaintlib.utils import to_model, to_unit

    schedule = NoiseSchedule.of(model.config)
    x0 = to_model(images)
    tt = torch.full((len(images),), t, dtype=torch.long)
    x_t = schedule.q_sample(x0, tt, torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed + t)))
    keep = 1 - holes
    out = model(x_t, tt, y=x0 * keep, hole=holes)
    x0_hat, _ = schedule.to_x0_eps(model.config.pred, x_t, tt, out)
    return quantise(to_unit(torch.where(holes.bool(), x0_hat, x0)))


def summary(fills, images, holes) -> dict:
    """Pooled and per-image PSNR_hole, L1, roughness, and the per-image mean for each pattern kind
    (``make_patterns`` cycles through ``PATTERN_KINDS``: image i is of kind i mod 5)."""
    m = HoleMetrics()
    m.update(fills, images, holes)
    s = m.summary()
    per_image = torch.tensor(m.per_image_psnr)
    by_kind = {kind: float(per_image[j::len(PATTERN_KINDS)].mean()) for j, kind in enumerate(PATTERN_KINDS)
               if len(per_image[j::len(PATTERN_KINDS)])}
    return {"psnr_hole": s["psnr_hole"], "psnr_hole_per_image_mean": s["psnr_hole_per_image_mean"],
            "l1_hole": s["l1_hole"], "roughness_vs_truth": hole_roughness(fills, images, holes),
            "per_image_psnr_by_pattern_kind": by_kind, "per_image_psnr": [float(v) for v in per_image]}


def by_kind_text(row: dict) -> str:
    return "  ".join(f"{k} {v:5.2f}" for k, v in row["per_image_psnr_by_pattern_kind"].items())


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", default=None, help="default: the shipped pretrained('patterns')")
    p.add_argument("--n", type=int, default=24, help="held-out patterns per mask kind")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    p.add_argument("--out_dir", default="outputs/freeform_study")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--one_shot_t", default="", help="comma-separated timesteps: also score the network's one-step "
                   "x0 estimate from the truth noised to each (default: none)")
    p.add_argument("--kinds", default=",".join(MASK_KINDS), help="comma-separated mask kinds")
    a = p.parse_args(argv)
    names = [v.strip() for v in a.variants.split(",") if v.strip()]  # may be none (baselines, one-shot rows)
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    ckpt = Path(a.ckpt) if a.ckpt else pretrained("patterns")
    model = load_model(ckpt, device="cpu")
    size = model.config.image_size
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    make_patterns(out / "heldout", a.n, image_size=size, seed=1)
    images = torch.stack([load_rgb(f, size) for f in find_images(out / "heldout")])[:a.n]
    rows = []
    kinds = [k.strip() for k in a.kinds.split(",") if k.strip()]
    if any(k not in MASK_KINDS for k in kinds):
        raise SystemExit(f"--kinds: choose from {list(MASK_KINDS)}, got {kinds}")
    for k, kind in enumerate(MASK_KINDS):
        if kind not in kinds:
            continue
        g = torch.Generator().manual_seed(a.seed * 1000 + k)
        holes = torch.stack([random_hole(kind, size, (0.1, 0.5), g) for _ in range(len(images))])
        telea = {"kind": kind, "method": "OpenCV Telea", **summary(telea_inpaint(images, holes), images, holes)}
        harmonic = quantise(harmonic_fill(images, 1 - holes))
        harmonic = {"kind": kind, "method": "harmonic fill", **summary(harmonic, images, holes)}
        rows += [telea, harmonic]
        rows.append({"kind": kind, "method": "truth", "roughness_vs_truth": 1.0})
        for name in names:
            fills, sec = run_variant(model, images, holes, VARIANTS[name], a.seed)
            rows.append({"kind": kind, "method": name, **summary(fills, images, holes), "seconds_per_image": sec})
            r = rows[-1]
            r["per_image_minus_telea"] = paired_mean_gap(r["per_image_psnr"], telea["per_image_psnr"])
            gap = r["per_image_minus_telea"]
            print(f"{kind:9s} {name:30s} PSNR {r['psnr_hole']:6.2f}  per-image {r['psnr_hole_per_image_mean']:6.2f}  "
                  f"roughness x{r['roughness_vs_truth']:.2f}  ({sec:.2f} s/image)\n{'':41s}{by_kind_text(r)}\n"
                  f"{'':41s}per image minus Telea {gap['mean_db']:+.2f} dB (95% {gap['ci95'][0]:+.2f} to "
                  f"{gap['ci95'][1]:+.2f})", flush=True)
        for ts in [int(v) for v in a.one_shot_t.split(",") if v.strip()]:
            rows.append({"kind": kind, "method": f"one-shot x0 from the truth at t={ts}",
                         **summary(one_shot(model, images, holes, ts, a.seed), images, holes)})
            r = rows[-1]
            print(f"{kind:9s} {r['method']:30s} PSNR {r['psnr_hole']:6.2f}  per-image {r['psnr_hole_per_image_mean']:6.2f}"
                  f"\n{'':41s}{by_kind_text(r)}", flush=True)
        for r in (harmonic, telea):
            print(f"{kind:9s} {r['method']:30s} PSNR {r['psnr_hole']:6.2f}  per-image {r['psnr_hole_per_image_mean']:6.2f}  "
                  f"roughness x{r['roughness_vs_truth']:.2f}\n{'':41s}{by_kind_text(r)}", flush=True)
    result = {"checkpoint": str(ckpt), "n_per_kind": len(images), "image_size": size, "rows": rows,
              "variants": {n: VARIANTS[n] for n in names},
              "hardware": hardware(), "command": command_line("freeform_study.py", argv)}
    (out / "study.json").write_text(json.dumps(result, indent=2, default=lambda x: None if isinstance(x, float)
                                               and math.isnan(x) else x))
    return result


if __name__ == "__main__":
    main()
