"""Continue training a shipped MNIST model when its full training state is gone.

A shipped file keeps only the EMA weights (fp16). Training state (raw weights, Adam moments, the
noise generator) lives in ``outputs/<run>/last.pt``, which git ignores, so a fresh clone cannot
``--resume`` the run that made the shipped model. This script writes a ``last.pt`` that can:

- raw weights and EMA weights both start from the shipped EMA weights (cast to fp32);
- Adam starts with empty moments (its bias correction makes the first steps well scaled);
- the batch order needs no state: an epoch's order depends only on (seed, epoch) (``EpochBatches``);
- the noise generator (t, eps, holes) is reseeded from ``seed`` and the step, so the noise draws
  differ from an uninterrupted run. The run is therefore a *warm restart*, not a bit-exact resume,
  and the model card says so.

    python scripts/resume_from_shipped.py mnist outputs/mnist_default
    OMP_NUM_THREADS=1 nice python -m inpaintlib train --epochs 25 --warmup_steps 200 --sample_every 250 \
        --out_dir outputs/mnist_default --resume true

Refuses to replace an existing ``last.pt`` unless ``--overwrite`` is given.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, fields
from pathlib import Path


from inpaintlib.checkpoint import atomic_save, load_checkpoint
from inpaintlib.registry import pretrained
from inpaintlib.mnist.recipe import TrainConfig
from inpaintlib.trainer import warm_restart_state


def warm_state(src) -> dict:
    """A resumable training state built from a shipped (EMA-only) MNIST checkpoint."""
    ckpt = load_checkpoint(src, kind="mnist")
    tc = dict(ckpt["train_config"])
    world_size = tc.pop("world_size", 1)
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in tc.items() if k in known})
    return warm_restart_state(ckpt, src, kind="mnist", train_config=asdict(cfg), world_size=world_size)


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a shipped name (mnist, mnist-mask) or the path of an EMA-only checkpoint")
    p.add_argument("out_dir", help="the run folder; last.pt is written there")
    p.add_argument("--overwrite", action="store_true", help="replace an existing last.pt")
    args = p.parse_args(argv)
    src = Path(args.model) if args.model.endswith(".pt") else pretrained(args.model)
    dst = Path(args.out_dir) / "last.pt"
    if dst.exists() and not args.overwrite:
        raise SystemExit(f"{dst} exists; pass --overwrite to replace it (it may hold a run's real state)")
    state = warm_state(src)
    atomic_save(state, dst)
    print(f"wrote {dst}: step {state['step']} from {src} (warm restart: fresh Adam moments and noise draws)")
    return dst


if __name__ == "__main__":
    main()
