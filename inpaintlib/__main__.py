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
from pathlib import Path
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


def _option_value(text: str):
    """``NAME=VALUE`` of ``--option``: the value as a bool, int, float or None where it reads as one."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. particles=16), got {text!r}")
    low = value.lower()
    if low in ("true", "false"):
        return name, low == "true"
    if low == "none":
        return name, None
    for kind in (int, float):
        try:
            return name, kind(value)
        except ValueError:
            pass
    return name, value


def add_config_options(sub: argparse.ArgumentParser, config_class) -> None:
    """One option per field of a configuration dataclass (``train(**config)``: ``TrainConfig``); the
    design's ``--steps`` is ``--timesteps``."""
    import dataclasses

    for field in dataclasses.fields(config_class):
        names = [f"--{field.name}"] + (["--steps"] if field.name == "timesteps" else [])
        sub.add_argument(*names, dest=field.name, type=_parser_type(field.type, field.default), default=field.default,
                         help=f"default: {field.default!r}")


def add_function_options(sub: argparse.ArgumentParser, func, skip=()) -> None:
    for name, param in inspect.signature(func).parameters.items():
        if name in skip:
            continue
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            config_class = getattr(func, "config_class", None)
            if config_class is not None:
                add_config_options(sub, config_class)
            else:  # a sampler's own options
                sub.add_argument("--option", dest=name, type=_option_value, action="append", default=[],
                                 metavar="NAME=VALUE", help="an option of the chosen sampler (repeatable), "
                                 "e.g. --option travel_rounds=2 (samplers.sampler_options)")
            continue
        if param.default is inspect.Parameter.empty:  # a positional argument of the call: a required option
            sub.add_argument(f"--{name}", type=_parser_type(param.annotation, None), required=True)
        elif isinstance(param.default, tuple):  # e.g. mask_kinds, coverage: several values
            sub.add_argument(f"--{name}", type=type(param.default[0]), nargs="+", default=param.default,
                             help=f"default: {' '.join(map(str, param.default))}")
        else:
            sub.add_argument(f"--{name}", type=_parser_type(param.annotation, param.default), default=param.default,
                             help=f"default: {param.default!r}")


def main(argv=None) -> int:
    from .demo import demo
    from .mnist.recipe import eval_cmd, sample_cmd
    from .freeform import inpaint_image, train_inpainting
    from .mnist.recipe import train

    parser = argparse.ArgumentParser(prog="python -m inpaintlib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subs = parser.add_subparsers(dest="command", required=True)
    commands = {"train": train, "sample": sample_cmd, "eval": eval_cmd, "demo": demo,
                "train-inpainting": train_inpainting, "inpaint-image": inpaint_image}
    for name, func in commands.items():
        add_function_options(subs.add_parser(name, help=(func.__doc__ or "").splitlines()[0]), func)
    args = vars(parser.parse_args(argv))
    func = commands[args.pop("command")]
    args.update(dict(args.pop("options", [])))
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
    elif func is demo:
        print(f"{result['n']} MNIST test digits, 12x12 centre hole (hole-only PSNR; identity = fills the shipped "
              f"classifier reads as the true digit)")
        for row in result["rows"]:
            ident = f"{row['identity_hits']:2d}/{result['n']}" if "identity_hits" in row else "  -  "
            extra = f" (+{row['backward_per_image']} backward)" if row.get("backward_per_image") else ""
            print(f"  {row['row']:28s} psnr_hole {row['psnr_hole']:6.2f} dB  identity {ident}  "
                  f"NFE {row['nfe_per_image']}{extra}")
        print(f"figure: {result['panel']}  metrics: {Path(result['panel']).with_name('demo_metrics.json')}")
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
