"""Helpers the guide lists (set_seed, setup_cuda_device, display_reverse) and image grids."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch


def to_model(x01: torch.Tensor) -> torch.Tensor:
    """[0, 1] image -> [-1, 1] model space."""
    return x01 * 2.0 - 1.0


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] model space -> [0, 1] image, clamped."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def in_colab() -> bool:
    """Whether this runs on Google Colab (its kernel imports ``google.colab`` before any cell)."""
    import sys

    return "google.colab" in sys.modules


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) for reproducible runs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


seed_all = set_seed  # the MNIST design document's name for it ("Set using: seed_all(seed)")


def setup_cuda_device(verbose: bool = False) -> torch.device:
    """The CUDA device with the most free memory, else the CPU."""
    if not torch.cuda.is_available():
        if verbose:
            print("CUDA is not available: using the CPU")
        return torch.device("cpu")
    best = max(range(torch.cuda.device_count()), key=lambda i: torch.cuda.mem_get_info(i)[0])
    device = torch.device("cuda", best)
    if verbose:
        print(f"using {device} ({torch.cuda.get_device_name(best)})")
    return device


def resolve_device(device=None) -> torch.device:
    """``None`` picks the best CUDA device, else the CPU; a string or torch.device is used as given."""
    if device is None:
        return setup_cuda_device()
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be None, 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was asked for but CUDA is not available on this machine")
    return device


def check_writable_dir(path, name: str = "out_dir") -> Path:
    """Create ``path`` if needed and make sure files can be written in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{name} {str(path)!r} cannot be created: {err}") from err
    if not path.is_dir() or not os.access(path, os.W_OK):
        raise ValueError(f"{name} {str(path)!r} is not a writable folder")
    return path


def save_panel(rows: list, path, row_titles: list | None = None, col_titles: list | None = None,
               title: str | None = None) -> Path:
    """Save a grid of [0, 1] images: ``rows`` is a list of (N, C, H, W) tensors, one per row."""
    # a standalone Figure (no pyplot): works headless and leaves a notebook's inline backend alone
    from matplotlib.figure import Figure

    n_rows, n_cols = len(rows), rows[0].shape[0]
    fig = Figure(figsize=(1.2 * n_cols + 1.2, 1.2 * n_rows + 0.4))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, images in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            img = images[c].detach().float().cpu()
            if img.shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0 and row_titles:
                ax.set_ylabel(row_titles[r], fontsize=8)
            if r == 0 and col_titles:
                ax.set_title(col_titles[c], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def display_reverse(frames: list, n_show: int = 8, path=None, title: str = "reverse diffusion"):
    """The reverse-diffusion strip: ``frames`` is a list of callback dicts (or (x_t, x0) pairs)
    recorded by the sampler; shows x_t (top) and the x0 estimate (bottom) at ``n_show`` evenly
    spaced steps for the first image. Saves to ``path`` if given; returns the matplotlib figure."""
    import matplotlib.pyplot as plt


    if not frames:
        raise ValueError("frames must hold at least one recorded step (got an empty list)")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(n_show, len(frames))).round().astype(int))
    fig, axes = plt.subplots(2, len(picks), figsize=(1.4 * len(picks), 3.2), squeeze=False)
    for col, k in enumerate(picks):
        f = frames[k]
        x, x0, t = (f["x"], f["x0_pred"], f.get("t")) if isinstance(f, dict) else (f[0], f[1], None)
        for row, img in enumerate((x, x0)):
            ax = axes[row][col]
            im = to_unit(img[0].detach().float().cpu())
            ax.imshow(im[0] if im.shape[0] == 1 else im.permute(1, 2, 0), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0][col].set_title(f"t={t}" if t is not None else f"step {k}", fontsize=8)
    axes[0][0].set_ylabel("x_t", fontsize=9)
    axes[1][0].set_ylabel("x0 estimate", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
