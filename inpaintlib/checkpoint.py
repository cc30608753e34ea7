"""Checkpoints: written atomically, read with ``weights_only=True``, checked for what they hold.

A checkpoint is a plain dict of tensors and primitives:
    format "inpaintlib", version, kind ("mnist" or "freeform"),
    model_config (dict), train_config (dict), step (int),
    model, ema (state dicts), optimizer (state dict), rng (generator states)
A shipped checkpoint may keep only ``ema`` (fp16) and no optimizer.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .checks import check_choice

FORMAT, VERSION = "inpaintlib", 1
WEIGHTS_DIR = Path(__file__).parent / "weights"  # the shipped models and their cards


def atomic_save(obj, path) -> Path:
    """torch.save to a temporary file in the same folder, flush + fsync, rename over ``path``, fsync the folder.
    A run killed at any moment leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # make the rename itself durable
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder; its rename is durable enough
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path, kind: str | None = None, map_location="cpu") -> dict:
    """Read and check a checkpoint of this library; every failure names the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"checkpoint {str(path)!r} is a folder, expected a .pt file")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {str(path)!r} is empty (0 bytes)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint {str(path)!r} could not be read as a torch file (truncated, corrupt, "
                         f"or not a checkpoint): {type(err).__name__}: {str(err).splitlines()[0][:200]}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not an inpaintlib checkpoint (no format={FORMAT!r} entry)")
    if kind is not None and ckpt.get("kind") != kind:
        raise ValueError(f"checkpoint {str(path)!r} holds a {ckpt.get('kind')!r} model, expected a {kind!r} model")
    for key in ("model_config", "kind"):
        if key not in ckpt:
            raise ValueError(f"checkpoint {str(path)!r} lacks its {key!r} entry")
    if "ema" not in ckpt and "model" not in ckpt:
        raise ValueError(f"checkpoint {str(path)!r} holds no weights (neither 'ema' nor 'model')")
    return ckpt


def load_network(path, builders: dict, device=None, weights: str = "ema"):
    """The trained network of the checkpoint at ``path``, in eval mode on ``device``: the file is read
    once (``load_checkpoint``), its ``kind`` picks the builder of ``builders`` (kind -> a function of
    the ``model_config`` dict that returns the network), and ``restore`` puts the weights in."""
    ckpt = load_checkpoint(path)
    kind = ckpt.get("kind")
    if kind not in builders:
        raise ValueError(f"checkpoint {str(path)!r} holds a {kind!r} model, expected "
                         f"{' or '.join(repr(k) for k in builders)}")
    return restore(builders[kind](ckpt["model_config"]), ckpt, path, weights, device)


def restore(model, ckpt: dict, path, weights: str = "ema", device=None):
    """Put a checkpoint's weights into ``model`` (built from its ``model_config``): the EMA weights
    when ``weights="ema"`` and the file has them, else the raw ones; in eval mode, on ``device``."""
    from .utils import resolve_device

    check_choice(weights, "weights", ("ema", "model"))
    state = ckpt.get(weights) or ckpt.get("model") or ckpt.get("ema")
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as err:
        raise ValueError(f"checkpoint {str(path)!r}: its weights do not fit its own model_config: "
                         f"{str(err).splitlines()[0]}") from err
    model.checkpoint_path = str(path)
    model.train_config = ckpt.get("train_config", {})
    return model.to(resolve_device(device)).eval()
