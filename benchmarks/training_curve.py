"""Quality against training step: does more training help the design's sampler, or only the better ones?

    OMP_NUM_THREADS=1 python benchmarks/training_curve.py --model mnist \
        --ckpt outputs/mnist_default/step4500.pt outputs/mnist_default/step5000.pt ...
    python benchmarks/training_curve.py --model mnist-mask --ckpt outputs/mnist_cond_mask/step*.pt

Each checkpoint (an EMA snapshot of a training run; the run's ``last.pt`` works too) fills the 12x12
centre hole of the same test digits with the design's sampler (``registry.DESIGN``) and with the
model's recommended sampler (``registry.RECOMMENDED``), same seeds. A row's ``sampler`` names its
settings ("design: 50 steps x2", "guidance 20: 10 steps x3"), so a curve measured with an earlier
recommendation stays a separate line when the recommendation changes. Per row: the step, PSNR_hole
with its 95% bootstrap interval, and digit identity (the shipped classifier). Rows are appended to
``--out`` (JSON, default benchmarks/results/training_curve_<model>.json), so a curve grows as a run
trains; a figure is written beside it. Settings saved before the sampler's name was part of them
(``{"steps": 50, "dc_repeats": 2, "guidance": 0.0}``) read as today's (``benchlib.current_settings``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchlib import command_line, current_settings, sampler_samples
from inpaintlib import center_hole, load_model, load_test_images
from inpaintlib.checkpoint import load_checkpoint
from inpaintlib.classifier import digit_classifier, digit_identity
from inpaintlib.metrics import HoleMetrics
from inpaintlib.registry import DESIGN, RECOMMENDED


def measure(ckpt, settings: dict, images, labels, classifier, batch: int, seed: int) -> dict:
    model = load_model(ckpt, device="cpu")
    hole = center_hole(28, 12)
    t0 = time.perf_counter()
    settings = dict(settings)
    fills, _ = sampler_samples(model, images, hole, settings.pop("sampler"), settings, seed, batch, "cpu")
    m = HoleMetrics()
    m.update(fills, images, hole)
    s = m.summary()
    return {"psnr_hole": s["psnr_hole"], "psnr_hole_ci95": s["psnr_hole_ci95"], "l1_hole": s["l1_hole"],
            "digit_identity": digit_identity(classifier, fills, labels),
            "seconds_per_image": (time.perf_counter() - t0) / len(images)}


def sampler_name(settings: dict, design: bool = False) -> str:
    """How a curve names a sampler: by its settings, so lines with different settings never merge
    ("design: 50 steps x2", "guidance 20: 10 steps x3", "replace: 10 steps x10", "ddnm: 10 steps x10")."""
    settings = current_settings(settings)
    rounds = settings.get("dc_repeats", settings.get("travel_rounds", settings.get("particles", 1)))
    run = f"{settings['steps']} steps x{rounds}"
    if design:
        return f"design: {run}"
    if settings["sampler"] == "guidance":
        return f"guidance {settings.get('guidance', 1.0):g}: {run}"
    return f"{settings['sampler']}: {run}"


def figure(rows: list, path: Path, model: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 2)
    for sampler in sorted({r["sampler"] for r in rows}):
        pts = sorted((r["step"], r) for r in rows if r["sampler"] == sampler)
        steps = [s for s, _ in pts]
        axes[0].plot(steps, [r["psnr_hole"] for _, r in pts], "o-", label=sampler)
        axes[0].fill_between(steps, [r["psnr_hole_ci95"][0] for _, r in pts],
                             [r["psnr_hole_ci95"][1] for _, r in pts], alpha=0.2)
        axes[1].plot(steps, [r["digit_identity"] for _, r in pts], "o-", label=sampler)
    axes[0].set(xlabel="optimizer step", ylabel="PSNR_hole (dB)", title=f"{model}: hole PSNR (95% interval)")
    axes[1].set(xlabel="optimizer step", ylabel="digit identity", title="fills read as the true digit")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(RECOMMENDED), required=True, help="whose recommended sampler to use")
    p.add_argument("--ckpt", nargs="+", required=True)
    p.add_argument("--n", type=int, default=256, help="test digits (the first n of the test split)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data_root", default="data")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    out = Path(a.out or f"benchmarks/results/training_curve_{a.model}.json")
    result = json.loads(out.read_text()) if out.exists() else {"model": a.model, "n": a.n, "rows": []}
    if result["n"] != a.n:
        raise SystemExit(f"{out} holds rows on {result['n']} digits; pass --n {result['n']} or another --out")
    images, labels = load_test_images(a.data_root, n=a.n)
    classifier = digit_classifier()
    command = command_line("training_curve.py", argv)
    result.setdefault("commands", [])
    if command not in result["commands"]:
        result["commands"].append(command)  # each run that added rows, in order
    for r in result["rows"]:  # rows of an earlier version were named "design" / "recommended"
        r["sampler"] = sampler_name(r["settings"], design=current_settings(r["settings"]) == DESIGN)
    samplers = {sampler_name(DESIGN, design=True): DESIGN}
    if RECOMMENDED[a.model] != DESIGN:
        samplers[sampler_name(RECOMMENDED[a.model])] = RECOMMENDED[a.model]
    for path in a.ckpt:
        step = int(load_checkpoint(path)["step"])
        for name, settings in samplers.items():
            if any(r["step"] == step and r["sampler"] == name for r in result["rows"]):
                continue
            row = {"step": step, "sampler": name, "settings": settings, "checkpoint": str(path),
                   **measure(path, settings, images, labels, classifier, a.batch, a.seed)}
            result["rows"].append(row)
            print(f"step {step:6d} {name:26s} PSNR {row['psnr_hole']:.2f} dB "
                  f"({row['psnr_hole_ci95'][0]:.2f} to {row['psnr_hole_ci95'][1]:.2f})  identity "
                  f"{row['digit_identity']:.3f}", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=2))
    result["rows"].sort(key=lambda r: (r["sampler"], r["step"]))
    out.write_text(json.dumps(result, indent=2))
    figure(result["rows"], out.with_suffix(".png"), a.model)
    return result


if __name__ == "__main__":
    main()
