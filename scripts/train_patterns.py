"""Train, ship and evaluate the "patterns" checkpoint (inpaintlib/weights/patterns_small.pt).

    python scripts/train_patterns.py --overwrite      # generate, train, ship, evaluate (defaults below)
    python scripts/train_patterns.py --eval_only      # evaluate the shipped checkpoint again
    python scripts/train_patterns.py --init_from inpaintlib/weights/patterns_small.pt --out outputs/patterns_ft \
        --lr 1e-4 --ema_decay 0.999 --max_steps 20000 --ship outputs/patterns_ft/patterns_small.pt
                                                      # continue a shipped (EMA-only) model with new settings

1. ``make_patterns``: ``--n_train`` training images (seed 0) and ``--n_eval`` held-out images
   (seed 1: different images) at ``--image_size`` under ``--out``.
2. ``train_inpainting`` with the ``--preset`` architecture; the full checkpoint (resumable: run the
   same command again to continue an interrupted run) is ``<out>/checkpoint.pt``.
3. Ship: the EMA weights only, in fp16, with the configurations, to ``--ship`` (a few MB). An existing
   file there (by default the package's own ``patterns_small.pt``) is replaced only with ``--overwrite``;
   the script checks before it trains, not after.
4. Evaluate the shipped file: hole-only PSNR and L1 per mask kind, against OpenCV Telea on the
   same held-out images and holes (``compare_with_telea``); writes ``<out>/eval.json`` and
   ``<out>/eval_panel.png`` and prints a markdown table for the model card.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from inpaintlib.checkpoint import FORMAT, VERSION, atomic_save, load_checkpoint
from inpaintlib.freeform import MASK_KINDS, compare_with_telea, find_images, load_rgb, make_patterns, train_inpainting
from inpaintlib.freeform.model import FreeformConfig, freeform_config
from inpaintlib.masks import TRAINING_MASK_KINDS
from inpaintlib.freeform.recipe import InpaintingTrainConfig
from inpaintlib.registry import load_model
from inpaintlib.trainer import warm_restart_state
from inpaintlib.utils import save_panel

ROOT = Path(__file__).resolve().parents[1]


def ship(checkpoint: Path, target: Path) -> Path:
    """Write the EMA weights of ``checkpoint`` in fp16 with its configurations (no optimizer)."""
    ckpt = load_checkpoint(checkpoint, kind="freeform")
    slim = {"format": FORMAT, "version": VERSION, "kind": "freeform", "model_config": ckpt["model_config"],
            "train_config": ckpt["train_config"], "step": ckpt["step"],
            "ema": {k: v.half() if v.is_floating_point() else v for k, v in ckpt["ema"].items()}}
    return atomic_save(slim, target)


def check_ship_target(target: Path, overwrite: bool) -> None:
    """Refuse, before any training, to replace a file at ``--ship`` that ``--overwrite`` does not allow."""
    if target.exists() and not overwrite:
        raise SystemExit(f"--ship {str(target)!r} exists; pass --overwrite to replace it, "
                         "or --ship a new path (for example under --out)")


def with_base_net(ckpt: dict, base_weights: Path, model_config: dict) -> dict:
    """``ckpt`` (EMA weights of a diffusion network) with the frozen regression U-Net of ``base_weights``
    added as its ``base_net`` (``FreeformConfig.base="mmse"``); that file's network must be the one
    ``model_config``'s ``base_config()`` describes."""
    want = FreeformConfig.from_dict(model_config).base_config().to_dict()
    base = load_checkpoint(base_weights, kind="freeform")
    have = FreeformConfig.from_dict(base["model_config"]).to_dict()
    if have != want:
        differ = sorted(k for k in want if have.get(k) != want[k])
        raise ValueError(f"--base_weights {str(base_weights)!r}: not the regression U-Net base='mmse' needs "
                         f"(differs in {differ})")
    ema = {k: v for k, v in ckpt["ema"].items() if not k.startswith("base_net.")}
    ema.update({f"base_net.{k}": v for k, v in base["ema"].items()})
    return dict(ckpt, ema=ema)


def warm_start(src: Path, ckpt_path: Path, cfg: InpaintingTrainConfig, model_config: dict | None = None,
               base_weights: Path | None = None) -> dict:
    """A resumable checkpoint at ``ckpt_path`` that starts from the EMA weights of ``src`` (a shipped,
    weights-only file) and carries ``cfg`` as its training configuration, so ``train_inpainting(...,
    resume=True)`` with the same arguments continues from it (a warm restart:
    ``inpaintlib.trainer.warm_restart_state``). ``model_config`` (default: src's) may differ from src's
    only in ``base`` (the same weights, a new reading of the hole: ``FreeformConfig.base``), ``pred`` and
    ``objective``; where the output changes meaning (``pred``), the last convolution starts at zero again, as
    in a fresh network, and the rest keeps the learned features."""
    from dataclasses import asdict

    ckpt = load_checkpoint(src, kind="freeform")
    saved = FreeformConfig.from_dict(ckpt["model_config"]).to_dict()  # fields added since take their defaults
    model_config = dict(saved if model_config is None else model_config)
    free = {"base", "pred", "objective", "snr_scale"}
    differ = sorted(k for k in set(model_config) | set(saved) if k not in free and model_config.get(k) != saved.get(k))
    if differ:
        raise ValueError(f"--init_from {str(src)!r}: its network differs from the one asked for in {differ}")
    if model_config["pred"] != saved["pred"]:
        ckpt = dict(ckpt, ema={k: torch.zeros_like(v) if k.startswith("conv_out.") else v
                               for k, v in ckpt["ema"].items()})
    if model_config["base"] == "mmse":
        if base_weights is None:
            raise ValueError("base='mmse' needs --base_weights (the regression U-Net, e.g. "
                             "inpaintlib/weights/patterns_mmse.pt)")
        ckpt = with_base_net(ckpt, base_weights, model_config)
    state = warm_restart_state(ckpt, src, kind="freeform", train_config=asdict(cfg), model_config=model_config)
    atomic_save(state, ckpt_path)
    return state


def evaluate(weights: Path, heldout: Path, out: Path, steps: int, coverage, seed: int) -> dict:
    model = load_model(weights, device="cpu")
    size = model.config.image_size
    images = torch.stack([load_rgb(p, size) for p in find_images(heldout)])
    t0 = time.perf_counter()
    results = compare_with_telea(model, images, MASK_KINDS, coverage, steps=steps, seed=seed)
    seconds = time.perf_counter() - t0
    rows, table = [], {}
    keys = ("psnr_hole", "l1_hole", "psnr_hole_per_image_mean")
    for kind, r in results.items():
        gt, hole, ours, telea, harmonic = r["samples"]
        rows += [gt * (1 - hole) + 0.5 * hole, ours, telea, harmonic, gt]
        table[kind] = {name: {k: r[name][k] for k in keys} for name in ("model", "telea", "harmonic")}
    titles = [f"{kind}: {what}" for kind in results for what in ("input", "model", "Telea", "harmonic", "truth")]
    save_panel(rows, out / "eval_panel.png", row_titles=titles,
               title=f"{weights.name}: {steps} DDIM steps vs OpenCV Telea and the harmonic fill, held-out patterns")
    report = {"weights": str(weights), "n_images": len(images), "ddim_steps": steps, "coverage": list(coverage),
              "seed": seed, "seconds": seconds, "per_kind": table}
    (out / "eval.json").write_text(json.dumps(report, indent=2))
    print("\n| mask | PSNR_hole model / Telea / harmonic (dB) | L1_hole model / Telea / harmonic "
          "| per-image mean PSNR model / Telea / harmonic (dB) |")
    print("|---|---|---|---|")
    for kind, r in table.items():
        cell = lambda key, f: " / ".join(format(r[name][key], f) for name in ("model", "telea", "harmonic"))
        print(f"| {kind} | {cell('psnr_hole', '.2f')} | {cell('l1_hole', '.4f')} | {cell('psnr_hole_per_image_mean', '.2f')} |")
    print(f"\n{len(images)} held-out images, {steps} DDIM steps, {seconds:.0f} s on {platform.processor() or 'CPU'}")
    return report


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="outputs/patterns_small")
    p.add_argument("--ship", default=str(ROOT / "inpaintlib" / "weights" / "patterns_small.pt"))
    p.add_argument("--preset", default="small")
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--base", default="none", choices=("none", "harmonic", "mmse"),
                   help="diffuse the hole itself (none) or its residual from the harmonic fill or from a frozen "
                        "regression U-Net's fill (mmse: needs --init_from and --base_weights; FreeformConfig.base)")
    p.add_argument("--base_weights", default=None,
                   help="with --base mmse: the regression U-Net whose fill the residual is taken from")
    p.add_argument("--pred", default=None, choices=("eps", "x0", "v"),
                   help="the network's output (default: the preset's; FreeformConfig.pred)")
    p.add_argument("--objective", default="diffusion", choices=("diffusion", "mmse"),
                   help="a diffusion model, or the MMSE regression U-Net of the same architecture (needs --pred x0)")
    p.add_argument("--snr_scale", type=float, default=1.0,
                   help="diffuse at this many times the schedule's SNR (FreeformConfig.snr_scale; a warm start keeps "
                        "the network's function: its time input is the original schedule's step of the same SNR)")
    p.add_argument("--mask_kinds", nargs="+", default=list(MASK_KINDS), choices=list(TRAINING_MASK_KINDS),
                   help="the holes training draws from (thin_stroke: masks.thin_stroke_hole)")
    p.add_argument("--n_train", type=int, default=2000)
    p.add_argument("--n_eval", type=int, default=50)
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--max_steps", type=int, default=5000)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--ema_decay", type=float, default=0.995)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval_steps", type=int, default=50)
    p.add_argument("--eval_coverage", type=float, nargs=2, default=(0.1, 0.5))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (1 is fastest on a CPU shared with other jobs)")
    p.add_argument("--eval_only", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file at --ship")
    p.add_argument("--init_from", default=None,
                   help="start from this EMA-only checkpoint's weights (a warm restart with the settings given "
                        "here) when <out>/checkpoint.pt does not exist yet")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    out = Path(args.out)
    heldout = out / "heldout"
    if not args.eval_only:
        check_ship_target(Path(args.ship), args.overwrite)
        t0 = time.perf_counter()
        make_patterns(out / "train", args.n_train, args.image_size, seed=0)
        make_patterns(heldout, args.n_eval, args.image_size, seed=1)
        extra = {"pred": args.pred} if args.pred else {}
        model_cfg = freeform_config(args.preset, image_size=args.image_size, base=args.base,
                                    objective=args.objective, snr_scale=args.snr_scale, **extra)
        if args.init_from and not (out / "checkpoint.pt").exists():
            cfg = InpaintingTrainConfig(str(out / "train"), args.epochs, args.batch_size, args.lr, args.image_size, 1,
                                        args.max_steps, args.seed, args.ema_decay, mask_kinds=tuple(args.mask_kinds))
            state = warm_start(Path(args.init_from), out / "checkpoint.pt", cfg, model_cfg.to_dict(),
                               Path(args.base_weights) if args.base_weights else None)
            print(f"warm start from {args.init_from} at step {state['step']}")
        result = train_inpainting(out / "train", out / "checkpoint.pt", num_epochs=args.epochs,
                                  batch_size=args.batch_size, lr=args.lr, image_size=args.image_size,
                                  save_every_n_epochs=1, preset=model_cfg, device=args.device,
                                  max_steps=args.max_steps, seed=args.seed, ema_decay=args.ema_decay,
                                  mask_kinds=tuple(args.mask_kinds), resume=True)
        (out / "train.json").write_text(json.dumps({"step": result.step, "seconds": time.perf_counter() - t0,
                                                    "threads": torch.get_num_threads(),
                                                    "losses": result.history}, indent=1))
        print(f"trained {result.step} steps in {(time.perf_counter() - t0) / 60:.1f} min")
        ship(result.checkpoint, Path(args.ship))
        print(f"shipped {args.ship} ({Path(args.ship).stat().st_size / 1e6:.2f} MB)")
    elif not heldout.exists():
        make_patterns(heldout, args.n_eval, args.image_size, seed=1)
    evaluate(Path(args.ship), heldout, out, args.eval_steps, tuple(args.eval_coverage), args.seed)


if __name__ == "__main__":
    main()
