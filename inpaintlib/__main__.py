"""The three calls from a shell, plus the demo:

    python -m inpaintlib train  --epochs 1 --max_steps 200 ...
    python -m inpaintlib sample --ckpt outputs/inpaint/last.pt --n 16 --steps 50
    python -m inpaintlib eval   --ckpt outputs/inpaint/last.pt --n_eval 500 --steps 50
    python -m inpaintlib demo
    python -m inpaintlib train-inpainting --dataset_path data/patterns --checkpoint_path ckpt/model.pt \
        --num_epochs 10 --batch_size 16 --preset small --image_size 64
    python -m inpaintlib inpaint-image --image_path photo.png --mask_path mask.png \
        --checkpoint_path ckpt/model.pt

The options are the arguments of ``train``, ``sample_cmd``, ``eval_cmd``, ``train_inpainting`` and
``inpaint_image``, under the same names, read from the functions' signatures. Every command runs
under ``torchrun --nproc_per_node=N -m inpaintlib ...`` too; train and train-inpainting then use
DistributedDataParallel.
"""
from __future__ import annotations

import argparse
import os
import inspect
import json
import sys


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _optional(kind):
    def parse(text: str):
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def _parser_type(annotation, default):
    """argparse type for a parameter, from its annotation (strings under postponed evaluation)."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    base = None
    for name, kind in (("bool", _bool), ("int", int), ("float", float), ("str", str)):
        if text.startswith(name):
            base = kind
            break
    if base is None:
        base = type(default) if default not in (None, inspect.Parameter.empty) else str
        base = _bool if base is bool else base
    return _optional(base) if "None" in text or default is None else base


def add_function_options(sub: argparse.ArgumentParser, func, skip=()) -> None:
    for name, param in inspect.signature(func).parameters.items():
        if name in skip:
            continue
        if param.default is inspect.Parameter.empty:  # a positional argument of the call: a required option
            sub.add_argument(f"--{name}", type=_parser_type(param.annotation, None), required=True)
        elif isinstance(param.default, tuple):  # e.g. mask_kinds, coverage: several values
            sub.add_argument(f"--{name}", type=type(param.default[0]), nargs="+", default=param.default,
                             help=f"default: {' '.join(map(str, param.default))}")
        else:
            sub.add_argument(f"--{name}", type=_parser_type(param.annotation, param.default), default=param.default,
                             help=f"default: {param.default!r}")


def demo(out_dir: str = "outputs/demo", n: int = 16, steps: int = 50, model: str = "mnist",
         ckpt: str | None = None, data_root: str = "data", device=None, seed: int = 0,
         guidance: float = 0.0, dc_repeats: int = 1) -> dict:
    """Inpaint the 12x12 centre hole of MNIST test digits with a shipped model (or ``ckpt``);
    write a panel (masked input, inpainted, ground truth) and the hole-only metrics of those digits.
    ``guidance`` > 0: with reconstruction guidance of that weight (``inpaint``; 0: off);
    ``dc_repeats``: resampling rounds per step (``inpaint``; 1: plain DDIM with mask consistency)."""
    from pathlib import Path

    from . import center_hole, inpaint, load_model, load_test_images, pretrained
    from .evaluate import HoleMetrics
    from .utils import check_writable_dir, save_panel

    if ckpt is None:
        try:
            ckpt = pretrained(model)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{err}\nIn one command: python -m inpaintlib train --epochs 1 && "
                                    f"python -m inpaintlib demo --ckpt outputs/inpaint/last.pt") from None
    net = load_model(ckpt, device=device)
    images, _ = load_test_images(data_root, n=n)
    hole = center_hole(28, 12)
    nfe = []
    result = inpaint(net, images, hole, steps=steps, seed=seed, guidance=guidance, dc_repeats=dc_repeats,
                     callback=lambda d: nfe.append(d["nfe"]))
    metrics = HoleMetrics()
    metrics.update(result, images, hole)
    out = check_writable_dir(out_dir, "out_dir")
    panel = save_panel([images * (1 - hole) + 0.5 * hole, result, images], out / "demo_panel.png",
                       row_titles=["masked", "inpainted", "ground truth"],
                       title=f"{Path(ckpt).name}: {steps} DDIM steps"
                       + (f" x {dc_repeats} repeats" if dc_repeats > 1 else "")
                       + (f", guidance={guidance:g}" if guidance else ""))
    summary = {**metrics.summary(), "n": n, "steps": steps, "dc_repeats": dc_repeats, "nfe_per_image": max(nfe),
               "guidance": guidance, "checkpoint": str(ckpt),
               "panel": str(panel), "device": str(next(net.parameters()).device)}
    (out / "demo_metrics.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv=None) -> int:
    from .evaluate import eval_cmd, sample_cmd
    from .freeform import inpaint_image, train_inpainting
    from .train import train

    parser = argparse.ArgumentParser(prog="python -m inpaintlib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subs = parser.add_subparsers(dest="command", required=True)
    commands = {"train": train, "sample": sample_cmd, "eval": eval_cmd, "demo": demo,
                "train-inpainting": train_inpainting, "inpaint-image": inpaint_image}
    for name, func in commands.items():
        add_function_options(subs.add_parser(name, help=(func.__doc__ or "").splitlines()[0]), func)
    args = vars(parser.parse_args(argv))
    func = commands[args.pop("command")]
    try:
        result = func(**args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    if func is train:
        print(json.dumps({"checkpoint": str(result.checkpoint), "panel_final": str(result.panel_final),
                          "history": str(result.history_path), "steps": result.step,
                          "final_loss": result.losses[-1] if result.history else None,
                          "seconds": round(result.seconds, 1)}, indent=2))
    elif func is train_inpainting:
        print(json.dumps({"checkpoint": str(result.checkpoint), "steps": result.step,
                          "final_loss": result.history[-1] if result.history else None,
                          "seconds": round(result.seconds, 1)}, indent=2))
    elif func is inpaint_image:
        print(f"inpainted a {result.size[0]}x{result.size[1]} image: {args['save_result']}")
    elif func is sample_cmd:
        print(f"inpainted {len(result)} images")
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
