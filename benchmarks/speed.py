"""How fast inpaintlib trains and samples, side by side with Hugging Face diffusers, and how far
each figure is from what the hardware could do.

    python benchmarks/speed.py --quick        # a few minutes on a 2-core CPU: small batches, few repeats
    python benchmarks/speed.py                # the full set (on a GPU: every preset at full size)
    python benchmarks/speed.py --threads 2 --out benchmarks/results/speed_cpu.json --compile

Jobs (each one done by inpaintlib and by diffusers, on the same batch at the same NFE):
  train      one optimizer step. Ours: ``train.train_step`` (MNIST; the design default adds a
             self-conditioning forward on about half the batch, so it is also run with
             self_cond=False, the equal-work comparison) or the step of ``train_inpainting``
             (hole_loss, backward, clip, Adam, EMA) for the 128x128 presets. Diffusers: the step of
             its train_unconditional example: DDPMScheduler.add_noise, UNet2DModel, MSE, backward,
             clip, AdamW, EMAModel.
  sample     a whole inpainting run at 50 DDIM steps. Ours: ``inpaint(...)`` as a user calls it
             (dc_repeats=1, and dc_repeats=2 for resampling). Diffusers: DDIMScheduler with
             inpainting by replacement (the known region noised to the current level with
             ``add_noise`` before every step), and RePaintScheduler (step/undo_step, jump_length=1,
             jump_n_sample=2: 99 NFE against our 100, so that job's times are compared per NFE).
The diffusers network is a UNet2DModel built from a config (nothing is downloaded) with ours'
resolution levels, ResBlocks per level and attention at the same levels as ours (the MNIST
network: the lowest only), its widths scaled until its parameter count is within a few percent
of ours. On CUDA both sides run under the same autocast dtype (``--amp``; ours through
``inpaint(..., amp=True)`` and train's default); elsewhere each runs with its library's defaults
(ours: channels_last for sampling on the CPU, see inpaintlib/accel.py).

    speedup vs diffusers (<job>): X.XX     X = their seconds / our seconds (per NFE where NFEs differ)

Quality (hole PSNR, pooled over images as CONVENTIONS.md defines it): the sampling *algorithms*
compared on one trained network, the shipped MNIST model, on MNIST test digits with the 12x12
centre hole: ours (``inpaint``) against DDIMScheduler-replacement and RePaintScheduler driving
the same network (v-prediction, our betas as ``trained_betas``; self-conditioning fed the
previous x0 estimate, as our sampler does).

Hardware bound: FLOPs per image are counted with ``torch.utils.flop_counter.FlopCounterMode``
(convolutions, matmuls and attention; elementwise work is not counted) on the meta device; the
peak is measured on the CPU (torch.mm of two 2048x2048 fp32 matrices, best of 10) and read from
a table of datasheet dense peaks on CUDA (measured the same way for an unknown GPU).
Also: time against image size, batch and number of steps; the share of a training step spent
loading data; peak memory. Timings: warm-up first, then repeats interleaved between the two
libraries (ours, theirs, ours, ...), median reported. Output: a table on stdout and JSON at
benchmarks/results/speed_<device>.json (``--out``).
"""
from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inpaintlib import (DenoiserUNet, HoleMetrics, InpaintingUNET, ModelConfig, NoiseSchedule,  # noqa: E402
                        center_hole, count_parameters, inpaint, load_model, pretrained)
from inpaintlib.accel import amp_context, resolve_amp  # noqa: E402
from inpaintlib.mnist.data import TensorBatches, load_mnist, load_test_images  # noqa: E402
from inpaintlib.utils import to_model, to_unit  # noqa: E402
from inpaintlib.freeform import PRESETS, hole_loss  # noqa: E402
from inpaintlib.freeform import InpaintingDataset, make_patterns  # noqa: E402
from inpaintlib.mnist.recipe import TrainConfig, train_step  # noqa: E402
from inpaintlib.trainer import apply_gradients, ema_decay_at, update_ema  # noqa: E402

PRED_TO_DIFFUSERS = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}
SAMPLE_STEPS = 50  # the sampling figure: images/s at 50 DDIM steps
JSON_KEYS = ("meta", "jobs", "speedups", "quality", "scaling", "data_loading")

# Datasheet dense peaks (no sparsity), TFLOP/s, by a substring of torch.cuda.get_device_name().
# First match wins, so the PCIe H100 comes before the SXM one.
GPU_PEAK_TFLOPS = (
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.0}),
    ("H100", {"bf16": 989.0, "fp16": 989.0, "tf32": 494.0, "fp32": 67.0}),
    ("H200", {"bf16": 989.0, "fp16": 989.0, "tf32": 494.0, "fp32": 67.0}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    ("T4", {"fp16": 65.0, "fp32": 8.1}),
)


# ----------------------------------------------------------------------------------------------
# sizes of a run


@dataclass
class Sizes:
    """Batch sizes, repeats and set sizes of one run (``--quick``, full, or ``--smoke`` for tests)."""

    name: str
    repeats: int  # timed repeats per implementation (median reported)
    mnist_sample_batch: int
    mnist_train_batch: int
    train_steps_timed: int  # optimizer steps per timed repeat
    quality_images: int
    quality_batch: int
    presets: dict  # preset -> {"train_batch", "sample_batch", "sample_steps" (timed; extrapolated to 50)}
    resample_presets: tuple  # presets whose dc_repeats=2 / RePaint job is run
    scaling_sizes: tuple = (28, 64, 128)
    scaling_batches: tuple = (1, 4, 16, 64)
    scaling_steps: tuple = (10, 25, 50)
    scaling_batch: int = 4  # batch of the image-size and steps tables
    scaling_nfe: int = 5  # DDIM steps per run of the image-size and batch tables
    loader_batches: int = 4  # batches drawn to time data loading


def run_sizes(mode: str, device: torch.device) -> Sizes:
    gpu = device.type == "cuda"
    if mode == "smoke":  # every code path at the smallest size: for the tests, not for figures
        return Sizes("smoke", repeats=1, mnist_sample_batch=2, mnist_train_batch=4, train_steps_timed=1,
                     quality_images=4, quality_batch=4,
                     presets={"tiny": {"train_batch": 2, "sample_batch": 1, "sample_steps": 2}},
                     resample_presets=("tiny",), scaling_sizes=(28,), scaling_batches=(1, 2), scaling_steps=(2, 3),
                     scaling_batch=1, scaling_nfe=2, loader_batches=1)
    if mode == "quick":
        presets = {"tiny": {"train_batch": 8, "sample_batch": 8, "sample_steps": 20},
                   "small": {"train_batch": 8, "sample_batch": 4, "sample_steps": 20},
                   "default": {"train_batch": 1, "sample_batch": 1, "sample_steps": 3}}
        if gpu:
            presets["default"] = {"train_batch": 8, "sample_batch": 8, "sample_steps": 50}
        return Sizes("quick", 3, 16, 32, 1, 64, 64, presets, ("tiny", "small") + (("default",) if gpu else ()))
    presets = {"tiny": {"train_batch": 32, "sample_batch": 16, "sample_steps": 50},
               "small": {"train_batch": 16, "sample_batch": 16, "sample_steps": 50},
               "default": {"train_batch": 1, "sample_batch": 1, "sample_steps": 5}}
    if gpu:
        presets["default"] = {"train_batch": 16, "sample_batch": 16, "sample_steps": 50}
    return Sizes("full", 5, 16, 128, 3, 300, 100, presets, ("tiny", "small") + (("default",) if gpu else ()),
                 scaling_batches=(1, 4, 16, 64, 256), scaling_steps=(10, 25, 50, 100), scaling_batch=16,
                 scaling_nfe=10, loader_batches=8)


# ----------------------------------------------------------------------------------------------
# measuring: time, memory, FLOPs, the hardware's peak


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    """Seconds for one call of ``fn``, the device drained before and after."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved_times(fns: dict, device: torch.device, repeats: int) -> dict:
    """{name: [seconds, ...]}: the callables run in turn, ``repeats`` rounds, so that a slow
    moment of a shared machine falls on both sides alike."""
    out = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            out[name].append(timed(fn, device))
    return out


class PeakMemory:
    """Peak memory that what runs inside adds, in MB: activations, gradients, workspaces (weights
    and optimizer state allocated before are not counted). CUDA: ``torch.cuda.max_memory_allocated``
    over the allocation on entry. CPU: the resident set's peak over its size on entry, sampled
    every 2 ms from /proc/self/statm (None where /proc is absent)."""

    def __init__(self, device: torch.device):
        self.device, self.mb = device, None
        self._stop, self._thread, self._peak, self._base = threading.Event(), None, 0, 0

    @staticmethod
    def _rss_bytes() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._rss_bytes())
            self._stop.wait(0.002)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        elif os.path.exists("/proc/self/statm"):
            self._base = self._peak = self._rss_bytes()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._rss_bytes())
            self.mb = (self._peak - self._base) / 2**20
        return False


def count_flops(fn) -> int:
    """FLOPs of the convolutions, matmuls and attention ``fn`` runs (torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def on_meta(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` on the meta device: shapes only, so counting FLOPs costs nothing."""
    return copy.deepcopy(model).to("meta")


def matmul_tflops(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Measured throughput of torch.mm on two n x n matrices, TFLOP/s: the best of ``repeats``
    (a peak is what the hardware can do, so the fastest run, not the typical one)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    seconds = min(timed(lambda: torch.mm(a, b), device) for _ in range(repeats))
    return 2 * n ** 3 / seconds / 1e12


def hardware_peak(device: torch.device, compute: str) -> dict:
    """{"tflops", "source"}: the peak to compare achieved FLOP/s with, for ``compute`` in
    "fp32", "tf32", "bf16", "fp16"."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, peaks in GPU_PEAK_TFLOPS:
            if key in name and compute in peaks:
                return {"tflops": peaks[compute], "source": f"datasheet dense {compute} peak of the {key}"}
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(compute, torch.float32)
        return {"tflops": matmul_tflops(device, dtype, 4096),
                "source": f"measured: torch.mm 4096x4096 {compute}, best of 10 (GPU not in the table)"}
    return {"tflops": matmul_tflops(device, torch.float32),
            "source": f"measured: torch.mm 2048x2048 fp32 on {torch.get_num_threads()} thread(s), best of 10"}


def compute_kind(device: torch.device, amp: bool) -> str:
    """The arithmetic the convolutions run in: what the peak is read for."""
    if device.type != "cuda":
        return "fp32"
    if amp:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "tf32" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp32"


# ----------------------------------------------------------------------------------------------
# the diffusers side: a UNet2DModel matched to ours, its schedulers, its training step


def diffusers_modules():
    import diffusers
    from diffusers import DDIMScheduler, DDPMScheduler, RePaintScheduler, UNet2DModel

    diffusers.utils.logging.set_verbosity_error()
    return UNet2DModel, DDIMScheduler, RePaintScheduler, DDPMScheduler


def unet_layout(model) -> dict:
    """Our network's resolution levels, as diffusers' UNet2DModel would describe them: widths
    per level, ResBlocks per level, and where ours has attention (encoder levels from the top,
    decoder levels from the bottom, and the middle)."""
    cfg = model.config
    if isinstance(model, DenoiserUNet):  # attention at the lowest level only
        n = len(cfg.channel_mults)
        return {"widths": [cfg.base_channels * m for m in cfg.channel_mults], "layers_per_block": cfg.num_res_blocks,
                "heads": cfg.num_heads, "in_channels": cfg.channels, "out_channels": cfg.channels,
                "size": cfg.image_size, "down_attention": [False] * (n - 1) + [True],
                "up_attention": [True] + [False] * (n - 1), "mid_attention": True}
    # free-form UNET: an encoder layer (2 ResBlocks) at each of num_down resolutions, the bottleneck
    # below them, a decoder layer at each but the top resolution, then the head at the top
    k = cfg.num_down
    return {"widths": list(cfg.widths[:k + 1]), "layers_per_block": 2, "heads": cfg.num_heads,
            "in_channels": cfg.channels + (1 if cfg.cond == "mask" else 0), "out_channels": cfg.channels,
            "size": cfg.image_size, "down_attention": list(cfg.attentions[:k]) + [False],
            "up_attention": list(cfg.attentions[k:]) + [False], "mid_attention": cfg.bottleneck_attention}


def unet2d_config(layout: dict, scale: float, unit: int = 8) -> dict:
    """A UNet2DModel config with the layout's levels, blocks per level and attention placement,
    widths = ours x ``scale`` rounded to multiples of ``unit`` (8 or more: GroupNorm of 8 groups).
    One head size for all attention layers (diffusers' rule): ours at the lowest level if it
    divides them all, else their common divisor."""
    ch = tuple(max(unit, int(round(w * scale / unit)) * unit) for w in layout["widths"])
    attended = [c for c, a in zip(ch, layout["down_attention"]) if a]
    attended += [c for c, a in zip(reversed(ch), layout["up_attention"]) if a]
    attended += [ch[-1]] if layout["mid_attention"] else []
    head_dim = ch[-1] // layout["heads"]
    if not attended or any(c % head_dim for c in attended):
        head_dim = math.gcd(*attended) if attended else 8
    return {"sample_size": layout["size"], "in_channels": layout["in_channels"],
            "out_channels": layout["out_channels"], "block_out_channels": ch,
            "layers_per_block": layout["layers_per_block"],
            "down_block_types": tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in layout["down_attention"]),
            "up_block_types": tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in layout["up_attention"]),
            "add_attention": layout["mid_attention"], "norm_num_groups": 8, "attention_head_dim": head_dim}


def matched_unet_config(model) -> dict:
    """The UNet2DModel config whose parameter count is nearest ours (bisection on the width scale;
    counted on the meta device, so nothing is allocated). Widths are rounded to multiples of 32,
    else 16, else 8: the coarsest rounding that stays within 5% of our count (larger heads)."""
    UNet2DModel = diffusers_modules()[0]
    layout, target = unet_layout(model), count_parameters(model)

    def params(scale: float, unit: int) -> int:
        with torch.device("meta"):
            return count_parameters(UNet2DModel(**unet2d_config(layout, scale, unit)))

    for unit in (32, 16, 8):
        lo, hi = 0.25, 4.0
        for _ in range(12):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if params(mid, unit) < target else (lo, mid)
        best = min((lo, hi, 1.0), key=lambda s: abs(params(s, unit) - target))
        if abs(params(best, unit) / target - 1) < 0.05 or unit == 8:
            return unet2d_config(layout, best, unit)


def build_unet(config: dict, device: torch.device):
    torch.manual_seed(0)
    return diffusers_modules()[0](**config).to(device)


def diffusers_scheduler(kind: str, schedule: NoiseSchedule, pred: str):
    """DDIM, RePaint or DDPM scheduler with our betas and our network's prediction type."""
    _, DDIMScheduler, RePaintScheduler, DDPMScheduler = diffusers_modules()
    betas = schedule.betas.cpu().numpy()
    if kind == "repaint":  # RePaint reads the model output as eps (we convert v and x0 to it)
        return RePaintScheduler(num_train_timesteps=schedule.T, trained_betas=betas, eta=0.0, clip_sample=True)
    cls = DDIMScheduler if kind == "ddim" else DDPMScheduler
    return cls(num_train_timesteps=schedule.T, trained_betas=betas, clip_sample=True,
               prediction_type=PRED_TO_DIFFUSERS[pred])


@torch.no_grad()
def diffusers_ddim_inpaint(predict, y, keep, scheduler, steps: int, generator) -> tuple:
    """Plain DDIM inpainting by replacement with diffusers' DDIMScheduler (eta = 0): before each
    step the known region is replaced by the observation noised to the current level
    (``scheduler.add_noise``); the start is pure noise. ``predict(x, t, x0_prev)`` gives the
    network output. Returns (x_0 in model space, NFE)."""
    scheduler.set_timesteps(steps, device=y.device)
    randn = lambda: torch.randn(y.shape, generator=generator, device=y.device)  # noqa: E731
    x, x0_prev, nfe = randn(), None, 0
    for t in scheduler.timesteps:
        x = keep * scheduler.add_noise(y, randn(), t.reshape(1)) + (1 - keep) * x
        out = predict(x, t.expand(len(x)), x0_prev)
        nfe += 1
        step = scheduler.step(out, t, x, eta=0.0)
        x, x0_prev = step.prev_sample, step.pred_original_sample
    return keep * y + (1 - keep) * x, nfe


@torch.no_grad()
def diffusers_repaint_inpaint(predict, to_eps, y, keep, scheduler, steps: int, generator,
                              jump_length: int = 1, jump_n_sample: int = 2) -> tuple:
    """RePaint with diffusers' RePaintScheduler, the loop of its RePaintPipeline: a step back in t
    calls the network and ``scheduler.step``; a step forward is ``scheduler.undo_step``.
    ``to_eps(out, x, t)`` turns the network output into eps. Returns (x_0, NFE)."""
    scheduler.set_timesteps(steps, jump_length, jump_n_sample, device=y.device)
    x = torch.randn(y.shape, generator=generator, device=y.device)
    x0_prev, nfe, t_last = None, 0, scheduler.timesteps[0] + 1
    for t in scheduler.timesteps:
        if t < t_last:
            t_batch = t.expand(len(x))
            eps = to_eps(predict(x, t_batch, x0_prev), x, t_batch)
            nfe += 1
            step = scheduler.step(eps, t, x, y, keep, generator=generator)
            x, x0_prev = step.prev_sample, step.pred_original_sample
        else:
            x = scheduler.undo_step(x, t_last, generator=generator)
        t_last = t
    return keep * y + (1 - keep) * x, nfe


def eps_converter(schedule: NoiseSchedule, pred: str):
    """(out, x_t, t) -> eps, with the schedule's own conversion (no clipping)."""
    if pred == "eps":
        return lambda out, x, t: out
    return lambda out, x, t: schedule.to_x0_eps(pred, x, t, out, clip=False)[1]


def optimizer_update(loss, optimizer, params: list, scaler=None, clip: float = 1.0) -> None:
    """backward (scaled for fp16), then ``train.apply_gradients``: unscale, clip, step, zero."""
    (loss if scaler is None else scaler.scale(loss)).backward()
    apply_gradients(optimizer, params, clip, scaler)


def diffusers_train_step(unet, schedule: NoiseSchedule, pred: str, batches, device, amp: bool):
    """The step of diffusers' train_unconditional example: x_t = DDPMScheduler.add_noise, MSE
    against eps or v (``get_velocity``), backward, clip 1.0, AdamW, EMAModel.step. ``batches``
    yields (x0, keep or None); keep is fed as a 4th input channel, as inpainting UNets take it."""
    from diffusers.training_utils import EMAModel

    ddpm = diffusers_scheduler("ddpm", schedule, pred)
    params = list(unet.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    ema = EMAModel(params, decay=0.999)
    ema.to(device)
    autocast, scaler = amp_context(device, amp)
    gen = torch.Generator(device=device).manual_seed(0)
    unet.train()

    def step():
        x0, keep = next(batches)
        noise = torch.randn(x0.shape, generator=gen, device=device)
        t = torch.randint(0, schedule.T, (len(x0),), generator=gen, device=device)
        x_t = ddpm.add_noise(x0, noise, t)
        with autocast():
            out = unet(x_t if keep is None else torch.cat([x_t, keep], 1), t).sample
        target = noise if pred == "eps" else ddpm.get_velocity(x0, noise, t)
        optimizer_update(F.mse_loss(out.float(), target), optimizer, params, scaler)
        ema.step(params)

    return step


# ----------------------------------------------------------------------------------------------
# our side: the MNIST step of ``train``, the 128x128 step of ``train_inpainting``


def mnist_train_step(cfg: TrainConfig, batches, device, amp: bool, compile: bool = False):
    """One call = one optimizer step of ``train`` (``train.train_step``) on ``batches``, set up
    as ``train`` sets it up (weights seeded, Adam, EMA, autocast and channels_last on CUDA)."""
    torch.manual_seed(cfg.seed)
    model = DenoiserUNet(cfg.model_config()).to(device)
    autocast, scaler = amp_context(device, amp)
    if amp:
        model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    net = torch.compile(model) if compile else model
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = NoiseSchedule(cfg.steps, cfg.schedule).to(device)
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    params, ema_params = list(model.parameters()), list(ema.parameters())
    counter = itertools.count()
    model.train()

    def step():
        train_step(net, net, optimizer, schedule, cfg, batches, noise_gen, next(counter), params, ema_params,
                   autocast, scaler)

    return step, model


def freeform_train_step(model, batches, device, amp: bool):
    """One call = the loop body of ``train_inpainting``: hole_loss (the loss inside the hole),
    backward, clip 1.0, Adam (foreach), EMA. ``batches`` yields (x0, keep)."""
    schedule = NoiseSchedule(model.config.T, model.config.schedule).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    params, ema_params = list(model.parameters()), list(ema.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-4, foreach=True)
    autocast, scaler = amp_context(device, amp)
    gen = torch.Generator(device=device).manual_seed(1)
    counter = itertools.count()
    model.train()

    def step():
        x0, keep = next(batches)
        optimizer_update(hole_loss(model, schedule, x0, keep, gen, autocast), optimizer, params, scaler)
        update_ema(ema_params, params, ema_decay_at(next(counter), 0.999))

    return step


# ----------------------------------------------------------------------------------------------
# jobs: one measurement of both sides, recorded as rows


@dataclass
class Row:
    """One measured line of the table (and of the JSON's "jobs")."""

    job: str
    impl: str  # "inpaintlib", "diffusers", or a variant such as "inpaintlib+compile"
    kind: str  # "train" or "sample"
    model: str
    batch: int
    nfe_per_image: int | None  # sampling: network evaluations per image in one run
    steps_timed: int | None  # sampling: DDIM steps of the timed run (figures scaled to 50 steps)
    seconds: float  # median seconds per optimizer step (train) or per run at 50 steps (sample)
    seconds_all: list
    images_per_s: float
    steps_per_s: float | None  # optimizer steps per second (train)
    params: int
    flops_per_image: float  # per optimizer step per image (train) or per run at 50 steps per image
    achieved_tflops: float
    fraction_of_peak: float
    peak_mem_mb: float | None
    first_call_seconds: float | None = None  # the warm-up call (includes compilation for +compile rows)
    note: str = ""


class Bench:
    """Holds the run's settings and collects rows, speedups and tables."""

    def __init__(self, device: torch.device, sizes: Sizes, amp: bool, compile: bool):
        self.device, self.sizes, self.amp, self.compile = device, sizes, amp, compile
        self.peak = hardware_peak(device, compute_kind(device, amp))
        self.rows: list[Row] = []
        self.speedups: list[dict] = []

    def row(self, **kw) -> Row:
        flops_per_s = kw["flops_per_image"] * kw["images_per_s"]
        row = Row(**kw, achieved_tflops=flops_per_s / 1e12,
                  fraction_of_peak=flops_per_s / (self.peak["tflops"] * 1e12))
        self.rows.append(row)
        return row

    def speedup(self, job: str, ours: Row, theirs: Row, note: str = "") -> float:
        """Their time over ours, per NFE when the two runs' NFEs differ."""
        ratio = theirs.seconds / ours.seconds
        if ours.nfe_per_image and theirs.nfe_per_image and ours.nfe_per_image != theirs.nfe_per_image:
            ratio *= ours.nfe_per_image / theirs.nfe_per_image
            note = (note + "; " if note else "") + f"per NFE ({ours.nfe_per_image} vs {theirs.nfe_per_image})"
        self.speedups.append({"job": job, "speedup": ratio, "batch": ours.batch, "nfe_ours": ours.nfe_per_image,
                              "nfe_diffusers": theirs.nfe_per_image, "seconds_ours": ours.seconds,
                              "seconds_diffusers": theirs.seconds, "note": note})
        print(f"speedup vs diffusers ({job}): {ratio:.2f}" + (f"   [{note}]" if note else ""), flush=True)
        return ratio

    # -- training ---------------------------------------------------------------------------

    def train_job(self, job: str, model_name: str, steps: dict, batch: int, flops: dict, params: dict) -> dict:
        """Time optimizer steps: ``steps`` maps impl -> a step callable. Warm-up: 2 steps each
        (memory measured on the second); then ``repeats`` interleaved rounds of k steps."""
        k = self.sizes.train_steps_timed
        mem, first = {}, {}
        for impl, step in steps.items():
            first[impl] = timed(step, self.device)
            with PeakMemory(self.device) as pm:
                step()
            mem[impl] = pm.mb
        many = {impl: (lambda s=step: [s() for _ in range(k)]) for impl, step in steps.items()}
        times = interleaved_times(many, self.device, self.sizes.repeats)
        rows = {}
        for impl, ts in times.items():
            per_step = [s / k for s in ts]
            sec = statistics.median(per_step)
            rows[impl] = self.row(job=job, impl=impl, kind="train", model=model_name, batch=batch,
                                  nfe_per_image=None, steps_timed=None, seconds=sec, seconds_all=per_step,
                                  images_per_s=batch / sec, steps_per_s=1 / sec, params=params[impl],
                                  flops_per_image=flops[impl], peak_mem_mb=mem[impl], first_call_seconds=first[impl])
        return rows

    # -- sampling -----------------------------------------------------------------------------

    def sample_job(self, job: str, model_name: str, runs: dict, batch: int, steps: int, nfe: dict,
                   flops_per_nfe: dict, params: dict, note: str = "") -> dict:
        """Time sampling runs: ``runs`` maps impl -> fn(steps) running a whole inpainting of the
        batch, ``nfe`` impl -> fn(steps) giving its NFE per image. Warm-up: a 2-step run each
        (memory measured on it); then ``repeats`` interleaved runs of ``steps`` steps. Seconds,
        images/s and FLOPs are given for 50 steps (scaled by the NFE ratio when fewer were timed;
        noted)."""
        mem, first = {}, {}
        for impl, run in runs.items():
            with PeakMemory(self.device) as pm:
                first[impl] = timed(lambda: run(min(2, steps)), self.device)
            mem[impl] = pm.mb
        times = interleaved_times({impl: (lambda r=run: r(steps)) for impl, run in runs.items()}, self.device,
                                  self.sizes.repeats)
        if steps != SAMPLE_STEPS:
            note = (note + "; " if note else "") + f"timed at {steps} steps, scaled to {SAMPLE_STEPS}"
        rows = {}
        for impl, ts in times.items():
            nfe_50 = nfe[impl](SAMPLE_STEPS)
            per_run = [s * nfe_50 / nfe[impl](steps) for s in ts]
            sec = statistics.median(per_run)
            rows[impl] = self.row(job=job, impl=impl, kind="sample", model=model_name, batch=batch,
                                  nfe_per_image=nfe_50, steps_timed=steps, seconds=sec, seconds_all=per_run,
                                  images_per_s=batch / sec, steps_per_s=None, params=params[impl],
                                  flops_per_image=flops_per_nfe[impl] * nfe_50, peak_mem_mb=mem[impl],
                                  first_call_seconds=first[impl], note=note)
        return rows


def nfe_counts(dc_repeats: int, impls) -> dict:
    """impl -> fn(steps) = NFE per image: ours steps x dc_repeats; diffusers' DDIM one per step,
    its RePaint (jump_length=1, jump_n_sample=2) every timestep twice but the first: 2S - 1."""
    counts = {impl: (lambda S: dc_repeats * S) for impl in impls}
    counts["diffusers"] = (lambda S: S) if dc_repeats == 1 else (lambda S: 2 * S - 1)
    return counts


def sampling_runs(bench: Bench, ours, unet, predict_theirs, images01, hole, schedule, pred, dc_repeats: int,
                  known: str = "noised", init_from_y: bool = True) -> dict:
    """impl -> fn(steps) for one sampling job: ``inpaint`` against the diffusers scheduler loop
    (DDIM replacement for dc_repeats=1, RePaint for 2) on the matched UNet2DModel."""
    device = bench.device
    y = to_model(images01) * (1 - hole)
    keep = 1 - hole.expand(len(images01), 1, *images01.shape[-2:])
    autocast, _ = amp_context(device, bench.amp)
    scheduler = diffusers_scheduler("ddim" if dc_repeats == 1 else "repaint", schedule, pred)
    to_eps = eps_converter(schedule, pred)

    def theirs(steps: int):
        gen = torch.Generator(device=device).manual_seed(0)
        with torch.no_grad(), autocast():
            if dc_repeats == 1:
                return diffusers_ddim_inpaint(predict_theirs, y, keep, scheduler, steps, gen)
            return diffusers_repaint_inpaint(predict_theirs, to_eps, y, keep, scheduler, steps, gen)

    def ours_run(net):  # amp: the same autocast as theirs (on CUDA, unless --amp off)
        return lambda steps: inpaint(net, images01, hole, steps=steps, dc_repeats=dc_repeats, seed=0, known=known,
                                     init_from_y=init_from_y, amp=bench.amp)

    runs = {"inpaintlib": ours_run(ours), "diffusers": theirs}
    if bench.compile:
        runs["inpaintlib+compile"] = ours_run(torch.compile(ours))
    return runs


def forward_flops(model, batch_inputs) -> float:
    """Counted FLOPs of one forward pass per image (meta device)."""
    meta = on_meta(model)
    inputs = [x.to("meta") if isinstance(x, torch.Tensor) else x for x in batch_inputs[0]]
    kwargs = {k: v.to("meta") for k, v in batch_inputs[1].items()}
    with torch.no_grad():
        return count_flops(lambda: meta(*inputs, **kwargs)) / inputs[0].shape[0]


def train_flops(model, batch_inputs, extra_forward_share: float = 0.0) -> float:
    """Counted FLOPs per image of forward + backward (meta device), plus ``extra_forward_share``
    of a forward (the self-conditioning pass, run without gradient on about half the batch)."""
    meta = on_meta(model).train()
    inputs = [x.to("meta") if isinstance(x, torch.Tensor) else x for x in batch_inputs[0]]
    kwargs = {k: v.to("meta") for k, v in batch_inputs[1].items()}

    def fwd_bwd():
        out = meta(*inputs, **kwargs)
        (out.sample if hasattr(out, "sample") else out).float().square().mean().backward()

    per_image = count_flops(fwd_bwd) / inputs[0].shape[0]
    return per_image + extra_forward_share * forward_flops(model, batch_inputs)


# ----------------------------------------------------------------------------------------------
# the jobs


def mnist_jobs(bench: Bench, data_root: str, shipped) -> None:
    """MNIST (28x28): training (design default and equal work) and sampling (DDIM, resampling)."""
    device, sizes = bench.device, bench.sizes
    unet_cfg = matched_unet_config(shipped)
    unet = build_unet(unet_cfg, device)
    n_ours, n_theirs = count_parameters(shipped), count_parameters(unet)
    print(f"MNIST: inpaintlib DenoiserUNet {n_ours:,} parameters; diffusers UNet2DModel {n_theirs:,} "
          f"({n_theirs / n_ours - 1:+.1%}), block_out_channels {unet_cfg['block_out_channels']}, "
          f"layers_per_block {unet_cfg['layers_per_block']}", flush=True)

    # training: real MNIST batches drawn ahead of time (data loading is measured on its own)
    images, _ = load_mnist(data_root, train=True)
    B = sizes.mnist_train_batch
    source = TensorBatches(images[:max(4 * B, 512)], B, 0, device)
    prefetched = list(itertools.islice(iter(source), 4))
    x_in = torch.zeros(B, 1, 28, 28, device=device)
    t_in = torch.zeros(B, dtype=torch.long, device=device)
    for self_cond, label in ((False, "equal work: self_cond=False"), (True, "design default: self_cond=True")):
        cfg = TrainConfig(batch_size=B, self_cond=self_cond)
        ours_step, ours_model = mnist_train_step(cfg, itertools.cycle(prefetched), device, bench.amp)
        theirs_unet = build_unet(unet_cfg, device)
        steps = {"inpaintlib": ours_step,
                 "diffusers": diffusers_train_step(theirs_unet, NoiseSchedule(cfg.steps), cfg.pred,
                                                   ((x, None) for x in itertools.cycle(prefetched)), device, bench.amp)}
        flops = {"inpaintlib": train_flops(ours_model, ((x_in, t_in, x_in if self_cond else None), {}),
                                           0.5 if self_cond else 0.0),
                 "diffusers": train_flops(theirs_unet, ((x_in, t_in), {}))}
        params = {"inpaintlib": count_parameters(ours_model), "diffusers": count_parameters(theirs_unet)}
        if bench.compile:
            steps["inpaintlib+compile"] = mnist_train_step(cfg, itertools.cycle(prefetched), device, bench.amp,
                                                           compile=True)[0]
            flops["inpaintlib+compile"], params["inpaintlib+compile"] = flops["inpaintlib"], params["inpaintlib"]
        job = f"mnist train, {label}"
        rows = bench.train_job(job, "mnist", steps, B, flops, params)
        bench.speedup(job, rows["inpaintlib"], rows["diffusers"],
                      "" if not self_cond else "ours does more work: an extra forward on ~half the batch")

    # sampling: the first test digits, the 12x12 centre hole, the shipped network
    Bs = sizes.mnist_sample_batch
    images01, _ = load_test_images(data_root, n=Bs)
    images01, hole = images01.to(device), center_hole(28, 12).to(device)
    schedule = NoiseSchedule(shipped.config.T, shipped.config.schedule).to(device)
    t_s = torch.zeros(Bs, dtype=torch.long, device=device)
    fl_ours = forward_flops(shipped, ((images01, t_s, images01), {}))
    fl_theirs = forward_flops(unet, ((images01, t_s), {}))
    unet.eval()
    for dc, name in ((1, "ddim"), (2, "resampling: dc_repeats=2 vs RePaint")):
        runs = sampling_runs(bench, shipped, unet, lambda x, t, x0_prev: unet(x, t).sample, images01, hole,
                             schedule, shipped.config.pred, dc)
        flops = {impl: fl_ours for impl in runs} | {"diffusers": fl_theirs}
        params = {impl: n_ours for impl in runs} | {"diffusers": n_theirs}
        job = f"mnist sample {name}"
        rows = bench.sample_job(job, "mnist", runs, Bs, SAMPLE_STEPS, nfe_counts(dc, runs), flops, params)
        bench.speedup(job, rows["inpaintlib"], rows["diffusers"])


def preset_batches(preset_size: int, batch: int, folder: Path, device, n_batches: int = 3) -> list:
    """(x0, keep) batches of generated patterns with free-form masks, from ``InpaintingDataset``."""
    dataset = InpaintingDataset(folder, preset_size, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0)
    out = []
    for item in itertools.islice(itertools.cycle(loader), n_batches):
        out.append((item["image"].to(device), item["mask"].to(device)))
    return out


def freeform_jobs(bench: Bench, workdir: Path) -> None:
    """The 128x128 system's presets: training step and sampling, ours against diffusers."""
    device, sizes = bench.device, bench.sizes
    for preset, conf in sizes.presets.items():
        torch.manual_seed(0)
        model = InpaintingUNET(preset=preset).to(device)
        cfg = model.config
        S, n_ours = cfg.image_size, count_parameters(model)
        unet_cfg = matched_unet_config(model)
        unet = build_unet(unet_cfg, device)
        n_theirs = count_parameters(unet)
        print(f"{preset} ({S}x{S}): inpaintlib InpaintingUNET {n_ours:,} parameters; diffusers UNet2DModel "
              f"{n_theirs:,} ({n_theirs / n_ours - 1:+.1%}), block_out_channels {unet_cfg['block_out_channels']}",
              flush=True)
        folder = workdir / f"patterns_{S}"
        if not folder.exists():
            make_patterns(folder, max(8, 2 * max(conf["train_batch"], conf["sample_batch"])), S)
        schedule = NoiseSchedule(cfg.T, cfg.schedule).to(device)
        note = "quick mode: small batch" if sizes.name == "quick" and device.type != "cuda" else ""

        Bt = conf["train_batch"]
        batches = preset_batches(S, Bt, folder, device)
        x, keep = batches[0]
        t = torch.zeros(Bt, dtype=torch.long, device=device)
        steps = {"inpaintlib": freeform_train_step(model, itertools.cycle(batches), device, bench.amp),
                 "diffusers": diffusers_train_step(unet, schedule, cfg.pred, itertools.cycle(batches), device,
                                                   bench.amp)}
        flops = {"inpaintlib": train_flops(model, ((x, t), {"y": x, "hole": 1 - keep})),
                 "diffusers": train_flops(unet, ((torch.cat([x, keep], 1), t), {}))}
        job = f"{preset} train"
        rows = bench.train_job(job, preset, steps, Bt, flops, {"inpaintlib": n_ours, "diffusers": n_theirs})
        bench.speedup(job, rows["inpaintlib"], rows["diffusers"], note)

        Bs = conf["sample_batch"]
        x_s, keep_s = preset_batches(S, Bs, folder, device, 1)[0]
        images01, hole = to_unit(x_s), 1 - keep_s
        t = torch.zeros(Bs, dtype=torch.long, device=device)
        fl_ours = forward_flops(model, ((images01, t), {"y": images01, "hole": hole}))
        fl_theirs = forward_flops(unet, ((torch.cat([images01, keep_s], 1), t), {}))
        model.eval()
        unet.eval()
        for dc, name in ((1, "ddim"), (2, "resampling: dc_repeats=2 vs RePaint")):
            if dc == 2 and preset not in sizes.resample_presets:
                print(f"skipped: {preset} sample {name} (about twice the DDIM job's time on this device; "
                      f"run on a GPU)", flush=True)
                continue
            runs = sampling_runs(bench, model, unet,
                                 lambda x, t, x0_prev: unet(torch.cat([x, keep_s], 1), t).sample,
                                 images01, hole, schedule, cfg.pred, dc, known="clean", init_from_y=False)
            runs.pop("inpaintlib+compile", None)  # compile rows: MNIST only
            job = f"{preset} sample {name}"
            rows = bench.sample_job(job, preset, runs, Bs, conf["sample_steps"], nfe_counts(dc, runs),
                                    {"inpaintlib": fl_ours, "diffusers": fl_theirs},
                                    {"inpaintlib": n_ours, "diffusers": n_theirs}, note)
            bench.speedup(job, rows["inpaintlib"], rows["diffusers"], note)


# ----------------------------------------------------------------------------------------------
# quality: the sampling algorithms on one trained network


def quality(bench: Bench, data_root: str, shipped) -> dict:
    """Hole PSNR / L1 of our sampler and of diffusers' DDIM-replacement and RePaint loops, all
    driving the shipped MNIST network, on the first N test digits with the 12x12 centre hole.
    Ours also with dc_fixed_z=False (a fresh noise draw for the known pixels at every step, as
    diffusers' loops do), to tell the design's one fixed draw apart from the rest of the sampler."""
    device, sizes = bench.device, bench.sizes
    n = sizes.quality_images
    images, _ = load_test_images(data_root, n=n)
    hole = center_hole(28, 12).to(device)
    schedule = NoiseSchedule(shipped.config.T, shipped.config.schedule).to(device)
    pred = shipped.config.pred
    to_eps = eps_converter(schedule, pred)
    ddim, repaint = diffusers_scheduler("ddim", schedule, pred), diffusers_scheduler("repaint", schedule, pred)

    def predict(x, t, x0_prev):  # our network, fed its previous x0 estimate (self-conditioning)
        return shipped(x, t, x0_prev).float()

    methods = {
        "inpaintlib ddim (dc_repeats=1)": lambda gt, k: (inpaint(shipped, gt, hole, steps=SAMPLE_STEPS, seed=k),
                                                         SAMPLE_STEPS),
        "inpaintlib ddim, dc_fixed_z=False": lambda gt, k: (inpaint(shipped, gt, hole, steps=SAMPLE_STEPS,
                                                                    dc_fixed_z=False, seed=k), SAMPLE_STEPS),
        "inpaintlib resampling (dc_repeats=2)": lambda gt, k: (inpaint(shipped, gt, hole, steps=SAMPLE_STEPS,
                                                                       dc_repeats=2, seed=k), 2 * SAMPLE_STEPS),
        "diffusers DDIMScheduler replacement": lambda gt, k: unit_result(diffusers_ddim_inpaint(
            predict, to_model(gt) * (1 - hole), 1 - hole, ddim, SAMPLE_STEPS,
            torch.Generator(device=device).manual_seed(k)), gt, hole),
        "diffusers RePaintScheduler (jump 1, n_sample 2)": lambda gt, k: unit_result(diffusers_repaint_inpaint(
            predict, to_eps, to_model(gt) * (1 - hole), 1 - hole, repaint, SAMPLE_STEPS,
            torch.Generator(device=device).manual_seed(k)), gt, hole),
    }
    rows = []
    shipped.eval()
    for name, method in methods.items():
        metrics, t0, nfe = HoleMetrics(), time.perf_counter(), 0
        for k, start in enumerate(range(0, n, sizes.quality_batch)):
            gt = images[start:start + sizes.quality_batch].to(device)
            with torch.no_grad():
                result, nfe = method(gt, 1000 + k)
            metrics.update(result, gt, hole)
        sync(device)
        rows.append({"method": name, "nfe_per_image": nfe, **metrics.summary(),
                     "seconds_wall": time.perf_counter() - t0})  # not a timing: order and load differ
        print(f"quality: {name:48s} NFE {nfe:4d}  PSNR_hole {rows[-1]['psnr_hole']:6.2f} dB  "
              f"L1_hole {rows[-1]['l1_hole']:.4f}", flush=True)
    return {"n_images": n, "hole": "12x12 centre", "checkpoint": "pretrained('mnist')", "steps": SAMPLE_STEPS,
            "rows": rows}


def unit_result(result_nfe: tuple, gt01, hole) -> tuple:
    """(x_0 in model space, nfe) -> ([0, 1] image with the known pixels of ``gt01``, nfe)."""
    x, nfe = result_nfe
    return torch.where(hole.bool(), to_unit(x), gt01), nfe


# ----------------------------------------------------------------------------------------------
# scaling tables and data loading


def scaling(bench: Bench, shipped) -> dict:
    """Sampling time against image size (the MNIST architecture at 28, 64, 128), batch and number
    of DDIM steps; ours and diffusers (DDIM replacement) side by side."""
    device, sizes = bench.device, bench.sizes
    tables = {"image_size": [], "batch": [], "steps": []}

    def measure(model, unet, B: int, steps: int, size: int) -> dict:
        images01 = torch.rand(B, 1, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        hole = center_hole(size, size * 3 // 7).to(device)
        schedule = NoiseSchedule(model.config.T, model.config.schedule).to(device)
        runs = sampling_runs(bench, model, unet, lambda x, t, x0_prev: unet(x, t).sample, images01, hole,
                             schedule, model.config.pred, 1)
        runs.pop("inpaintlib+compile", None)
        for run in runs.values():
            run(min(2, steps))
        times = {k: statistics.median(v) for k, v in interleaved_times(
            {k: (lambda r=r: r(steps)) for k, r in runs.items()}, device, max(1, sizes.repeats - 1)).items()}
        t = torch.zeros(B, dtype=torch.long, device=device)
        gflop = forward_flops(model, ((images01, t, images01), {})) / 1e9
        return {"batch": B, "steps": steps, "image_size": size, "gflop_per_image_nfe": gflop,
                "ms_per_nfe_ours": 1000 * times["inpaintlib"] / steps,
                "ms_per_nfe_diffusers": 1000 * times["diffusers"] / steps,
                "speedup": times["diffusers"] / times["inpaintlib"],
                "fraction_of_peak_ours": gflop * 1e9 * B * steps / times["inpaintlib"] / (bench.peak["tflops"] * 1e12)}

    shipped_unet = build_unet(matched_unet_config(shipped), device).eval()
    for size in sizes.scaling_sizes:
        if size == shipped.config.image_size:
            model, unet = shipped, shipped_unet
        else:
            torch.manual_seed(0)
            model = DenoiserUNet(ModelConfig(**{**shipped.config.to_dict(), "image_size": size})).to(device).eval()
            unet = build_unet(matched_unet_config(model), device).eval()
        tables["image_size"].append(measure(model, unet, sizes.scaling_batch, sizes.scaling_nfe, size))
    for B in sizes.scaling_batches:
        tables["batch"].append(measure(shipped, shipped_unet, B, sizes.scaling_nfe, 28))
    for steps in sizes.scaling_steps:
        tables["steps"].append(measure(shipped, shipped_unet, sizes.scaling_batch, steps, 28))
    return tables


def data_loading(bench: Bench, data_root: str, workdir: Path) -> list:
    """Seconds per batch spent producing training batches, against the step's time (from the
    training rows): MNIST's in-memory ``TensorBatches``, and ``InpaintingDataset`` through a
    DataLoader with train_inpainting's CPU default of 0 workers (pinned memory and 4 workers on CUDA)."""
    device, sizes = bench.device, bench.sizes
    out = []

    def step_seconds(job: str):
        return next((r.seconds for r in bench.rows if r.job == job and r.impl == "inpaintlib"), None)

    images, _ = load_mnist(data_root, train=True)
    B = sizes.mnist_train_batch
    batches = TensorBatches(images, B, 0, device)
    it = iter(batches)
    next(it)
    sec = statistics.median(timed(lambda: next(it), device) for _ in range(sizes.loader_batches))
    out.append({"loader": "mnist TensorBatches (in device memory)", "batch": B, "seconds_per_batch": sec,
                "step_seconds": step_seconds("mnist train, design default: self_cond=True")})
    workers = 4 if device.type == "cuda" else 0
    for preset, conf in sizes.presets.items():
        S = PRESETS[preset].get("image_size", 128)
        folder = workdir / f"patterns_{S}"
        if not folder.exists():
            continue
        dataset = InpaintingDataset(folder, S, seed=0)
        loader = torch.utils.data.DataLoader(dataset, batch_size=conf["train_batch"], shuffle=True,
                                             num_workers=workers, pin_memory=device.type == "cuda")
        it = (batch for _ in itertools.count() for batch in loader)  # epoch after epoch (cycle would replay a cache)
        next(it)

        def fetch():
            item = next(it)
            item["image"].to(device, non_blocking=True), item["mask"].to(device, non_blocking=True)

        sec = statistics.median(timed(fetch, device) for _ in range(sizes.loader_batches))
        out.append({"loader": f"{preset} InpaintingDataset, DataLoader num_workers={workers}",
                    "batch": conf["train_batch"], "seconds_per_batch": sec,
                    "step_seconds": step_seconds(f"{preset} train")})
    for entry in out:
        step = entry["step_seconds"]
        entry["share_of_step"] = entry["seconds_per_batch"] / (entry["seconds_per_batch"] + step) if step else None
    return out


# ----------------------------------------------------------------------------------------------
# output


def fmt(value, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def print_table(headers: list, rows: list) -> None:
    """Columns aligned: text left, numbers right."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) for i in range(len(headers))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print(line(r))
    print(flush=True)


def report(result: dict) -> None:
    meta = result["meta"]
    print(f"\n== {meta['device_name']} ({meta['device']}), {meta['compute']} compute, torch {meta['torch']}, "
          f"diffusers {meta['diffusers']}, {meta['threads']} thread(s), mode {meta['mode']}")
    print(f"   peak {meta['peak_tflops']:.3g} TFLOP/s ({meta['peak_source']}); load average at start "
          f"{meta['load_average_start']}, at end {meta['load_average_end']}\n")
    print_table(["job", "impl", "batch", "NFE/img", "s (median)", "img/s", "steps/s", "GFLOP/img", "GFLOP/s",
                 "% of peak", "peak MB", "1st call s", "note"],
                [[r["job"], r["impl"], r["batch"], r["nfe_per_image"], r["seconds"], r["images_per_s"],
                  r["steps_per_s"], r["flops_per_image"] / 1e9, 1000 * r["achieved_tflops"],
                  100 * r["fraction_of_peak"], r["peak_mem_mb"], r["first_call_seconds"], r["note"]]
                 for r in result["jobs"]])
    if result["quality"]:
        q = result["quality"]
        print(f"Hole quality on {q['n_images']} MNIST test digits ({q['hole']} hole, {q['checkpoint']}, "
              f"{q['steps']} steps):")
        print_table(["method", "NFE/img", "PSNR_hole dB", "L1_hole", "per-image PSNR dB"],
                    [[r["method"], r["nfe_per_image"], r["psnr_hole"], r["l1_hole"], r["psnr_hole_per_image_mean"]]
                     for r in q["rows"]])
    titles = {"image_size": "Sampling time against image size (MNIST architecture)",
              "batch": "Sampling time against batch (MNIST, 28x28)",
              "steps": "Sampling time against DDIM steps (MNIST, 28x28)"}
    for key, rows in (result["scaling"] or {}).items():
        print(titles[key] + ":")
        print_table(["image size", "batch", "steps", "GFLOP/img/NFE", "ms/NFE ours", "ms/NFE diffusers", "speedup",
                     "% of peak (ours)"],
                    [[r["image_size"], r["batch"], r["steps"], r["gflop_per_image_nfe"], r["ms_per_nfe_ours"],
                      r["ms_per_nfe_diffusers"], r["speedup"], 100 * r["fraction_of_peak_ours"]] for r in rows])
    if result["data_loading"]:
        print("Data loading (seconds per training batch, and its share of loading + step):")
        print_table(["loader", "batch", "s/batch", "step s", "share"],
                    [[r["loader"], r["batch"], r["seconds_per_batch"], r["step_seconds"], r["share_of_step"]]
                     for r in result["data_loading"]])
    for s in result["speedups"]:
        print(f"speedup vs diffusers ({s['job']}): {s['speedup']:.2f}" + (f"   [{s['note']}]" if s["note"] else ""))


def device_label(device: torch.device) -> str:
    if device.type != "cuda":
        return device.type
    name = torch.cuda.get_device_name(device).lower()
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


# ----------------------------------------------------------------------------------------------
# main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small batches and few repeats (minutes on a 2-core CPU)")
    p.add_argument("--smoke", action="store_true",
                   help="every code path at the smallest size (for the tests; its figures mean nothing)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if available)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's own, which follows OMP_NUM_THREADS)")
    p.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                   help="autocast on CUDA for both libraries (auto: on for CUDA)")
    p.add_argument("--compile", action="store_true", help="also time our MNIST jobs under torch.compile")
    p.add_argument("--skip", nargs="*", default=(), choices=("mnist", "freeform", "quality", "scaling", "data"),
                   help="parts to leave out")
    p.add_argument("--presets", nargs="*", default=None, help="128x128-system presets (default: all)")
    p.add_argument("--data_root", default=str(REPO / "data"))
    p.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/speed_<device>.json)")
    return p.parse_args(argv)


def run(args) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = resolve_amp({"auto": None, "on": True, "off": False}[args.amp], device)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes = run_sizes(mode, device)
    if args.presets is not None:
        unknown = set(args.presets) - set(PRESETS)
        if unknown:
            raise SystemExit(f"--presets: unknown {sorted(unknown)}; choose from {list(PRESETS)}")
        sizes.presets = {k: v for k, v in sizes.presets.items() if k in args.presets}
    import diffusers

    load_start = load_average()
    bench = Bench(device, sizes, amp, args.compile)
    meta = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else cpu_name(), "compute": compute_kind(device, amp), "amp": amp, "torch": torch.__version__,
            "diffusers": diffusers.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "mode": mode, "compile": args.compile,
            "peak_tflops": bench.peak["tflops"], "peak_source": bench.peak["source"],
            "load_average_start": load_start, "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"device {meta['device_name']} ({device}), compute {meta['compute']}, torch {meta['torch']}, "
          f"diffusers {meta['diffusers']}, threads {meta['threads']}, mode {mode}; peak "
          f"{meta['peak_tflops']:.3g} TFLOP/s ({meta['peak_source']})", flush=True)
    result = {key: None for key in JSON_KEYS}
    t_start = time.perf_counter()
    shipped = load_model(pretrained("mnist"), device=device)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "mnist" not in args.skip:
            mnist_jobs(bench, args.data_root, shipped)
        if "freeform" not in args.skip:
            freeform_jobs(bench, workdir)
        if "quality" not in args.skip:
            result["quality"] = quality(bench, args.data_root, shipped)
        if "scaling" not in args.skip:
            result["scaling"] = scaling(bench, shipped)
        if "data" not in args.skip:
            result["data_loading"] = data_loading(bench, args.data_root, workdir)
    meta.update(load_average_end=load_average(), seconds=time.perf_counter() - t_start)
    result.update(meta=meta, jobs=[asdict(r) for r in bench.rows], speedups=bench.speedups)
    return result


def main(argv=None) -> dict:
    args = parse_args(argv)
    result = run(args)
    report(result)
    device = torch.device(result["meta"]["device"])
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"speed_{device_label(device)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))
    print(f"\nwrote {out} ({result['meta']['seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
