"""Speed settings shared by training and sampling: mixed precision, TF32, channels_last.

What each one does, and where it is on by default:
    autocast        CUDA only: convolutions and matmuls in bf16 where the GPU supports it
                    (Ampere and newer), else fp16 (T4-class GPUs), with a GradScaler when training
                    in fp16 (``amp_context``, shared by ``train`` and ``train_inpainting``).
    TF32            CUDA only: fp32 matmuls and convolutions on tensor cores (Ampere and newer);
                    set for the duration of a call and restored afterwards.
Training (``train``, ``train_inpainting``) uses autocast and TF32 on CUDA by default; ``inpaint``
only when asked (``amp=True``), so that its default result on a GPU is the plain fp32 loop's.
    channels_last   NHWC activations and weights. On CUDA with autocast (tensor-core kernels read
                    NHWC). On the CPU for sampling only: oneDNN's NHWC convolutions ran a forward
                    pass 1.1x to 1.6x faster on each network of this package (one thread, during
                    development; ``benchmarks/speed.py`` measures the whole sampler).
                    CPU training keeps NCHW: channels_last made its steps no faster (MNIST) or
                    slower (the 128x128 ``default`` preset).
None of these changes a parameter's name or shape: checkpoints are the same either way.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from itertools import chain

import torch

from .checks import check_bool


def amp_context(device, enabled: bool = True):
    """(autocast factory, GradScaler or None) for ``device``: bf16 autocast on CUDA where supported,
    else fp16 with a GradScaler; a no-op context and no scaler on the CPU or when not ``enabled``."""
    device = torch.device(device)
    if not enabled or device.type != "cuda":
        return nullcontext, None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def resolve_amp(amp, device) -> bool:
    """``amp`` None means: on for CUDA, off elsewhere. Anything but None/True/False is refused."""
    if amp is not None:
        check_bool(amp, "amp (None: auto, on for CUDA)")
    return torch.device(device).type == "cuda" if amp is None else amp and torch.device(device).type == "cuda"


@contextmanager
def cuda_tf32(device, enabled: bool = True):
    """TF32 for fp32 matmuls and cuDNN convolutions on CUDA while inside; the flags are restored on exit."""
    if torch.device(device).type != "cuda" or not enabled:
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextmanager
def channels_last(model: torch.nn.Module, enabled: bool = True):
    """Hold ``model``'s 4-D weights in channels_last (NHWC) while inside; on exit every parameter
    and buffer gets back its original tensor, untouched (values, strides and storage)."""
    swapped = []
    if enabled:
        with torch.no_grad():
            for tensor in chain(model.parameters(), model.buffers()):
                if tensor.dim() == 4 and not tensor.is_contiguous(memory_format=torch.channels_last):
                    swapped.append((tensor, tensor.data))
                    tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        for tensor, original in swapped:
            tensor.data = original


def sampling_channels_last(device, amp: bool) -> bool:
    """Whether sampling runs in channels_last: always on the CPU (measured faster), with autocast on CUDA."""
    kind = torch.device(device).type
    return kind == "cpu" or (kind == "cuda" and amp)


def backward_cost(model: torch.nn.Module, batch: int = 200, repeats: int = 5, hole_size: int = 12) -> float:
    """What one backward pass through ``model`` to its input (as reconstruction guidance and PiGDM take
    it) costs in forward passes on this machine: (time of forward + backward - time of forward) / time
    of forward, each the fastest of ``repeats`` timed calls (the least disturbed by other processes) on
    ``batch`` noise images at t = T/2, in the memory format the samplers use (channels_last on the CPU).
    Counting a sampler's cost in forward-equivalents (NFE + this * backward passes) uses it."""
    import time

    cfg = model.config
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cfg.channels, cfg.image_size, cfg.image_size, generator=g).to(device)
    t = torch.full((batch,), cfg.T // 2, device=device, dtype=torch.long)
    extra = {}
    if cfg.cond == "mask":
        from .masks import center_hole

        h = center_hole(cfg.image_size, hole_size).to(device).expand(batch, 1, -1, -1)
        extra = dict(y=x * (1 - h), hole=h)

    def fastest(f):
        f()  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            f()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        return min(times)

    def forward():
        with torch.no_grad():
            model(x, t, **extra)

    def forward_backward():
        xg = x.clone().requires_grad_(True)
        torch.autograd.grad(model(xg, t, **extra).square().sum(), xg)

    with channels_last(model, sampling_channels_last(device, False)):
        f, fb = fastest(forward), fastest(forward_backward)
    return max(fb - f, 0.0) / f

