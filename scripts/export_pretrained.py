"""Turn a training run's last.pt into a shipped MNIST checkpoint and its model card.

    python scripts/export_pretrained.py outputs/mnist_default/last.pt mnist_default \
        --command "python -m inpaintlib train --epochs 4 ..." --hardware "2-core AMD EPYC CPU" \
        --train_seconds 4500 --n_eval 500

Keeps only the EMA weights, stored in fp16 (the sampler reads them back as fp32), with the model
and training configs, then evaluates the exported file with the design's eval_cmd arguments and
writes inpaintlib/weights/<name>.pt and <name>.md. Refuses to replace an existing file unless
--overwrite is given.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from inpaintlib import eval_cmd
from inpaintlib.checkpoint import FORMAT, VERSION, atomic_save, load_checkpoint
from inpaintlib.checkpoint import WEIGHTS_DIR


def export(src, name: str, overwrite: bool = False) -> Path:
    ckpt = load_checkpoint(src, kind="mnist")
    dst = WEIGHTS_DIR / f"{name}.pt"
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")
    atomic_save({"format": FORMAT, "version": VERSION, "kind": "mnist", "model_config": ckpt["model_config"],
                 "train_config": ckpt["train_config"], "step": ckpt["step"],
                 "train_seconds": ckpt.get("train_seconds"),
                 "ema": {k: v.half() if v.is_floating_point() else v for k, v in ckpt["ema"].items()}}, dst)
    return dst


def model_card(name, dst, ckpt, metrics, args) -> str:
    tc, mc = ckpt["train_config"], ckpt["model_config"]
    n_params = sum(v.numel() for v in ckpt["ema"].values())
    lines = [
        f"# `{name}`: MNIST centre-hole diffusion inpainting model", "",
        f"File: `inpaintlib/weights/{dst.name}` ({dst.stat().st_size / 1e6:.2f} MB, EMA weights in fp16). "
        f"Load it with `load_model(pretrained({args.pretrained_name!r}))`.", "",
        "## Configuration", "",
        f"- network: `DenoiserUNet`, {n_params:,} parameters; base_channels {mc['base_channels']}, channel_mults "
        f"{mc['channel_mults']}, {mc['num_res_blocks']} ResBlock(s) per level, attention at 7x7",
        f"- pred={mc['pred']!r}, self_cond={mc['self_cond']}, coord_conv={mc['coord_conv']}, cond={mc['cond']!r}, "
        f"T={mc['T']}, schedule={mc['schedule']!r}",
        f"- trained for {ckpt['step']} optimizer steps of batch {tc['batch_size']} x grad_accum {tc['grad_accum']} "
        f"({ckpt['step'] * tc['batch_size'] * tc['grad_accum']:,} images, "
        f"{ckpt['step'] * tc['batch_size'] * tc['grad_accum'] / 60000:.2f} epochs of the 60k training split)",
        "- training arguments: `" + ", ".join(f"{k}={v!r}" for k, v in tc.items()) + "`", "",
        "## How it was made", "",
        f"    {args.command}", "",
        f"Hardware: {args.hardware}. Wall time: "
        + (f"{args.train_seconds / 60:.0f} minutes" if args.train_seconds >= 120 else f"{args.train_seconds:.0f} seconds")
        + (f" ({args.note})" if args.note else "") + ".", "",
        "Exported with:", "",
        f"    python scripts/export_pretrained.py {args.src} {name} --n_eval {args.n_eval}"
        + (f" --quality_json {args.quality_json} --quality_name {args.quality_name}" if args.quality_json else ""), "",
    ]
    if args.quality_json:
        lines += quality_section(args.quality_json, args.quality_name)
    if metrics is not None:
        lines += eval_section(dst, metrics)
    if args.limitations:
        lines += ["## Limitations", "", args.limitations, ""]
    return "\n".join(lines)


def quality_section(path, names: str) -> list:
    """The model's rows of benchmarks/quality.py's table, beside the baselines and references on the same images.
    ``names``: its name in that table, or several, comma-separated (the same weights under other samplers)."""
    q = json.loads(Path(path).read_text())
    refs = [r for r in q["rows"] if "nfe_per_image" not in r]
    models = [m.strip() for m in names.split(",")]
    mine = []
    for model in models:
        rows = [r for r in q["rows"] if r["method"].startswith(f"{model}:")]
        if not rows:
            raise ValueError(f"--quality_name {model!r}: no rows of that model in {path}")
        mine += rows
    hw = q["hardware"]
    lines = ["## Quality (benchmarks/quality.py)", "",
             f"The first {q['n_diffusion']} MNIST test images (posterior means: the first {q['n_posterior']}), 12x12 "
             f"centre hole, hole-only metrics pooled over images; digit identity read by a CNN of "
             f"{100 * q['classifier_test_accuracy']:.2f}% test accuracy; {hw['gpu'] or hw['cpu'] + ' CPU'}, "
             f"torch {hw['torch']}. Command:", "", f"    {q['command']}", "",
             "| method | NFE/image | PSNR_hole (dB) | 95% interval (dB) | L1_hole | digit identity | gap to MMSE (dB) |",
             "|---|---|---|---|---|---|---|"]
    for r in refs + mine:
        psnr = "inf" if r["psnr_hole"] is None else f"{r['psnr_hole']:.2f}"
        gap = "" if r.get("gap_to_mmse_db") is None else f"{r['gap_to_mmse_db']:.2f}"
        if r.get("ideal_gap_db") is not None:
            gap += f" (ideal {r['ideal_gap_db']:.2f})"
        nfe = str(r.get("nfe_per_image") or "")
        nfe += f" (+{nfe} backward)" if nfe and r.get("guidance") else ""
        ci = f"{r['psnr_hole_ci95'][0]:.2f} to {r['psnr_hole_ci95'][1]:.2f}" if r.get("psnr_hole_ci95") else ""
        lines.append(f"| {r['method']} | {nfe} | {psnr} | {ci} | {r['l1_hole']:.4f} | "
                     f"{r['digit_identity']:.3f} | {gap} |")
    for key in (k for k in q["targets"] for m in models if k == m or k.startswith(f"{m} (")):
        lines += ["", f"The quality targets for `{key}`, on the same images:", "",
                  "| target | value | its 95% interval | threshold | met |", "|---|---|---|---|---|"]
        for name, c in q["targets"][key].items():
            val = c["value"] if isinstance(c["value"], bool) else f"{c['value']:.3f}"
            ci = f"{c['ci95'][0]:.2f} to {c['ci95'][1]:.2f}" if c.get("ci95") else ""
            thr = c["threshold"] if isinstance(c["threshold"], bool) else f"{c['threshold']:.3f}"
            lines.append(f"| {name} | {val} | {ci} | {thr} | {'yes' if c['met'] else '**no**'} |")
    return lines + [""]


def eval_section(dst, metrics) -> list:
    ev = metrics["args"]
    return [
        "## Evaluation (hole-only, pooled over images)", "",
        f"`eval_cmd` on the first {metrics['n_eval']} MNIST test images, 12x12 centre hole, "
        f"{metrics['steps']} DDIM steps, dc_repeats={ev['dc_repeats']}, eta={ev['eta']}, seed={ev['seed']} "
        f"({metrics['nfe_per_image']} network evaluations per image), on {metrics['device']} "
        f"({platform.processor() or platform.machine()}, torch {torch.__version__}):", "",
        "| PSNR_hole (dB) | L1_hole | per-image mean PSNR (dB) | images/s |", "|---|---|---|---|",
        f"| {metrics['psnr_hole']:.2f} | {metrics['l1_hole']:.4f} | {metrics['psnr_hole_per_image_mean']:.2f} | "
        f"{metrics['images_per_second']:.1f} |", "",
        "Repeat with:", "",
        f"    python -m inpaintlib eval --ckpt inpaintlib/weights/{dst.name} --n_eval {metrics['n_eval']} "
        f"--steps {metrics['steps']} --dc_repeats {ev['dc_repeats']} --batch_size {ev['batch_size']} --seed {ev['seed']}", "",
    ]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("name")
    p.add_argument("--pretrained_name", default="mnist")
    p.add_argument("--command", required=True)
    p.add_argument("--hardware", required=True)
    p.add_argument("--train_seconds", type=float, default=None,
                   help="training wall time for the card (default: the one the checkpoint recorded)")
    p.add_argument("--note", default="")
    p.add_argument("--limitations", default="")
    p.add_argument("--n_eval", type=int, default=500, help="eval_cmd images for the card (0: no eval_cmd section)")
    p.add_argument("--quality_json", default=None, help="a benchmarks/quality.py result holding this model's rows")
    p.add_argument("--quality_name", default=None, help="the model's name in that result (--ckpt NAME=...); "
                   "several, comma-separated, for the same weights under other names (other samplers)")
    p.add_argument("--card_only", action="store_true",
                   help="keep inpaintlib/weights/<name>.pt as it is and only write the card again")
    p.add_argument("--data_root", default="data")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    if args.quality_json and not args.quality_name:
        p.error("--quality_json needs --quality_name (the model's name in that file)")
    if args.quality_json:
        quality_section(args.quality_json, args.quality_name)  # a bad file or name fails before anything is written
    if args.train_seconds is None:
        args.train_seconds = load_checkpoint(args.src).get("train_seconds")
        if args.train_seconds is None:
            p.error(f"{args.src} does not record its training time (a run resumed from a checkpoint of an "
                    f"older inpaintlib); give --train_seconds")
    if args.card_only:
        dst = WEIGHTS_DIR / f"{args.name}.pt"
        if not dst.exists():
            p.error(f"--card_only: {dst} does not exist; export it first")
    else:
        dst = export(args.src, args.name, args.overwrite)
    metrics = None
    if args.n_eval > 0:
        metrics = eval_cmd(ckpt=str(dst), batch_size=250, n_eval=args.n_eval, steps=50, dc_repeats=2, seed=123,
                           data_root=args.data_root, out_dir=f"outputs/{args.name}_eval")
        print(json.dumps({k: metrics[k] for k in ("psnr_hole", "l1_hole", "n_eval", "nfe_per_image", "seconds")},
                         indent=2))
    ckpt = load_checkpoint(dst)
    card = WEIGHTS_DIR / f"{args.name}.md"
    card.write_text(model_card(args.name, dst, ckpt, metrics, args))
    print(f"wrote {'' if args.card_only else f'{dst} and '}{card}")


if __name__ == "__main__":
    main()
