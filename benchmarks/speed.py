"""How fast inpaintlib trains and samples, side by side with Hugging Face diffusers, and how far
each figure is from what the hardware could do.

    python benchmarks/speed.py --quick        # a few minutes on a 2-core CPU: small batches, few repeats
    python benchmarks/speed.py                # the full set (on a GPU: every preset at full size)
    python benchmarks/speed.py --threads 2 --out benchmarks/results/speed_cpu.json --compile

Jobs (each one done by inpaintlib and by diffusers, on the same batch at the same NFE):
  train      one optimizer step. Ours: the package's own step, ``trainer.optimizer_step`` on a
             ``Trainer`` set up as the recipe sets it up, with the recipe's loss: for MNIST that of
             ``train`` (``mnist.recipe.training_holes`` and ``diffusion_loss``; the design default adds a
             self-conditioning forward on about half the batch, so it is also run with
             self_cond=False, the equal-work comparison), for the 128x128 presets that of
             ``train_inpainting`` (``freeform.recipe.hole_loss``); then backward, clip, Adam, EMA.
             Diffusers: the step of its train_unconditional example: DDPMScheduler.add_noise,
             UNet2DModel, MSE, backward, clip, AdamW, EMAModel.
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

Quality (hole PSNR of the MSE pooled over every hole pixel of every image, as docs/quality.md reports it): the sampling *algorithms*
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

This script holds the jobs; ``speed_harness.py`` the timing harness (time, memory, FLOPs, peak, rows),
``speed_diffusers.py`` the diffusers side (the matched UNet2DModel, its scheduler loops, its training step).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from inpaintlib import (DenoiserUNet, HoleMetrics, InpaintingUNET, ModelConfig, NoiseSchedule, center_hole,
                        count_parameters, inpaint, load_model, pretrained)
from inpaintlib.accel import amp_context, resolve_amp
from inpaintlib.distributed import DistInfo
from inpaintlib.freeform import PRESETS, InpaintingDataset, hole_loss, make_patterns
from inpaintlib.freeform.recipe import InpaintingTrainConfig
from inpaintlib.mnist.data import TensorBatches, load_mnist, load_test_images
from inpaintlib.mnist.recipe import TrainConfig, diffusion_loss, training_holes
from inpaintlib.trainer import Trainer, optimizer_step
from inpaintlib.utils import to_model, to_unit
from speed_diffusers import (build_unet, diffusers_ddim_inpaint, diffusers_repaint_inpaint, diffusers_scheduler,
                             diffusers_train_step, eps_converter, matched_unet_config)
from speed_harness import (SAMPLE_STEPS, Bench, compute_kind, cpu_name, device_label, forward_flops, interleaved_times,
                           load_average, print_table, sync, timed, train_flops)

REPO = Path(__file__).resolve().parents[1]
JSON_KEYS = ("meta", "jobs", "speedups", "quality", "scaling", "data_loading")


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
# our side: the package's own training steps


def package_step(trainer: Trainer, cfg, batches, loss_fn):
    """One call = one optimizer step of the package's loop: ``trainer.optimizer_step`` (what
    ``Trainer.fit`` runs: the warmed-up LR, ``grad_accum`` micro-batches, backward, clip, Adam, EMA) with
    ``loss_fn(net, batch)``, the recipe's loss, on micro-batches drawn from the iterator ``batches``."""
    params, ema_params = list(trainer.model.parameters()), list(trainer.ema_model.parameters())
    counter = itertools.count()
    trainer.model.train()

    def step():
        optimizer_step(trainer.net, trainer.optimizer, params, ema_params, cfg, next(counter), batches,
                       loss_fn, trainer.scaler)

    return step


def mnist_train_step(cfg: TrainConfig, batches, device, amp: bool, compile: bool = False):
    """One call = one optimizer step of ``train`` on ``batches`` (x0 tensors), set up as ``train`` sets it
    up (weights seeded, a ``Trainer``: Adam, EMA, autocast; channels_last with amp), with its loss:
    ``training_holes`` and ``diffusion_loss`` (``mnist.recipe``). Returns (step, the network)."""
    torch.manual_seed(cfg.seed)
    model = DenoiserUNet(cfg.model_config()).to(device)
    if amp:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if compile else model
    trainer = Trainer(model, kind="mnist", cfg=cfg, model_config=cfg.model_config().to_dict(), train_config=asdict(cfg),
                      info=DistInfo(), device=device, net=net, amp=amp, dropout_seed=cfg.seed, noise_seed=cfg.seed + 1)
    schedule = NoiseSchedule.of(cfg).to(device)

    def loss_fn(net_, x0):
        hole = training_holes(cfg, x0.shape[0], trainer.noise_gen, x0.device)
        return diffusion_loss(net_, schedule, cfg, x0, hole, trainer.noise_gen, raw=net, autocast=trainer.autocast)

    return package_step(trainer, cfg, batches, loss_fn), model


def freeform_train_step(model, batches, device, amp: bool):
    """One call = one optimizer step of ``train_inpainting`` on ``batches`` ((x0, keep) pairs), on a
    ``Trainer`` with its configuration's defaults (``InpaintingTrainConfig``: lr 1e-4, clip 1.0, EMA 0.999),
    with its loss: ``hole_loss`` (``freeform.recipe``), the loss inside the hole."""
    cfg = InpaintingTrainConfig(dataset_path="", num_epochs=1, batch_size=1, image_size=model.config.image_size,
                                amp=amp)
    trainer = Trainer(model, kind="freeform", cfg=cfg, model_config=model.config.to_dict(), train_config=asdict(cfg),
                      info=DistInfo(), device=device, amp=amp, noise_seed=cfg.seed + 1)
    schedule = NoiseSchedule.of(model.config).to(device)

    def loss_fn(net, batch):
        x0, keep = batch
        return hole_loss(net, schedule, x0, keep, trainer.noise_gen, trainer.autocast, model.config.pred,
                         model.config.objective)

    return package_step(trainer, cfg, batches, loss_fn)


# ----------------------------------------------------------------------------------------------
# sampling: ``inpaint`` against the diffusers scheduler loops


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
        return lambda steps: inpaint(net, images01, hole, "replace", steps=steps, dc_repeats=dc_repeats, seed=0,
                                     known=known, init_from_y=init_from_y, amp=bench.amp)

    runs = {"inpaintlib": ours_run(ours), "diffusers": theirs}
    if bench.compile:
        runs["inpaintlib+compile"] = ours_run(torch.compile(ours))
    return runs


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
                 "diffusers": diffusers_train_step(theirs_unet, NoiseSchedule(cfg.timesteps), cfg.pred,
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
    schedule = NoiseSchedule.of(shipped.config).to(device)
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
        schedule = NoiseSchedule.of(cfg).to(device)
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


def sampler_quality(bench: Bench, data_root: str, shipped) -> dict:
    """Hole PSNR / L1 of our sampler and of diffusers' DDIM-replacement and RePaint loops, all
    driving the shipped MNIST network, on the first N test digits with the 12x12 centre hole.
    Ours also with dc_fixed_z=False (a fresh noise draw for the known pixels at every step, as
    diffusers' loops do), to tell the design's one fixed draw apart from the rest of the sampler."""
    device, sizes = bench.device, bench.sizes
    n = sizes.quality_images
    images, _ = load_test_images(data_root, n=n)
    hole = center_hole(28, 12).to(device)
    schedule = NoiseSchedule.of(shipped.config).to(device)
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
        schedule = NoiseSchedule.of(model.config).to(device)
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
# output and main


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
            result["quality"] = sampler_quality(bench, args.data_root, shipped)
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
