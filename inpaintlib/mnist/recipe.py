"""The MNIST design's recipe: its three calls ``train(...)``, ``sample_cmd(...)`` and ``eval_cmd(...)``.

``train`` supplies the design's loss and batches to the shared loop of ``inpaintlib/trainer.py``.

One optimizer step (Algorithm 1 of DDPM, with the design's knobs):
    x_0 ~ data,  t ~ U{0..T-1},  eps ~ N(0, I)
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps                       (DDPM eq. 4)
    target = eps | x_0 | v                                               (pred)
    w_t   = (1 / (p2_k + SNR_t)) ** p2_gamma                             (P2 weighting, Choi et al. 2022)
    w_pix = hole_weight inside the hole, 1 outside
    loss  = mean(w_t * w_pix * (net(x_t, t) - target)^2)
then gradient accumulation, clipping, a linearly warmed-up LR, Adam, and an EMA of the weights.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from .. import distributed as dist
from ..accel import cuda_tf32, resolve_amp
from ..checks import check_bool, check_choice, check_int, check_number, check_optional_int
from ..masks import center_hole, random_box_holes
from ..metrics import HoleMetrics
from ..samplers import inpaint
from ..schedule import PREDICTIONS, SCHEDULES, NoiseSchedule
from ..trainer import Trainer, optimizer_step
from ..utils import check_writable_dir, resolve_device, save_panel
from .data import TensorBatches, load_mnist, load_test_images
from ..checkpoint import load_network
from .model import CONDITIONS, DenoiserUNet, ModelConfig, build_mnist_model

TRAIN_HOLES = ("center", "mixed")
# config keys that may change when a run is resumed (they extend or reschedule the run, nothing else)
RESUMABLE_CHANGES = {"epochs", "max_steps", "sample_every", "sample_steps", "dc_repeats", "dc_fixed_z", "eta"}


@dataclass
class TrainConfig:
    """The design document's training command, with its values as the defaults."""

    epochs: int = 25
    batch_size: int = 128
    lr: float = 2e-4
    timesteps: int = 400  # number of diffusion timesteps T (the design's command calls it steps)
    sample_every: int = 400  # write panel_<step>.png (and last.pt) every this many optimizer steps
    sample_steps: int = 50  # DDIM steps used for the panels
    center_box: int = 12  # side of the centre hole, pixels
    dc_repeats: int = 2  # panels: visits per timestep (RePaint resampling)
    dc_fixed_z: bool = True  # panels: one fixed noise draw for the noised observation
    pred: str = "v"  # network output: "eps", "x0" or "v"
    p2_k: float = 1.0
    p2_gamma: float = 1.0  # 0 turns P2 weighting off
    hole_weight: float = 5.0  # loss weight inside the hole (1 outside)
    seed: int = 42
    clip_grad: float = 1.0  # max gradient norm; 0 turns clipping off
    ema_decay: float = 0.999
    warmup_steps: int = 1000  # linear LR warmup over this many optimizer steps
    self_cond: bool = True
    eta: float = 0.0  # panels: DDIM eta
    coord_conv: bool = True
    grad_accum: int = 1  # micro-batches per optimizer step (effective batch = batch_size * grad_accum)
    cond: str = "none"  # "none": the design (x_t only); "mask": the network also sees y and the hole
    max_steps: int | None = None  # cap on optimizer steps, for quick runs
    train_subset: int | None = None  # use the first N training images
    schedule: str = "linear"  # "linear" (beta 1e-4 .. 0.02) or "cosine"
    base_channels: int = 32  # network width at 28x28 (64 at 14x14 and 7x7)
    train_holes: str = "center"  # "center": the design's fixed box; "mixed": half random boxes

    def __post_init__(self):
        positive_ints = ("epochs", "batch_size", "timesteps", "sample_every", "sample_steps", "center_box",
                         "dc_repeats", "grad_accum", "base_channels")
        for name in positive_ints:
            setattr(self, name, check_int(getattr(self, name), name))
        for name in ("max_steps", "train_subset"):
            setattr(self, name, check_optional_int(getattr(self, name), name))
        if self.timesteps < 2:
            raise ValueError(f"timesteps (the number of diffusion timesteps T) must be >= 2, got {self.timesteps}")
        if self.sample_steps > self.timesteps:
            raise ValueError(f"sample_steps must be <= timesteps (T = {self.timesteps}), got {self.sample_steps}")
        if self.center_box > 28:
            raise ValueError(f"center_box must be in [1, 28], got {self.center_box}")
        for name in ("lr", "hole_weight"):
            check_number(getattr(self, name), name, 0, low_open=True)
        for name in ("p2_k", "p2_gamma", "clip_grad", "warmup_steps"):
            check_number(getattr(self, name), name, 0)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        check_number(self.eta, "eta", 0, 1)
        for name in ("dc_fixed_z", "self_cond", "coord_conv"):
            check_bool(getattr(self, name), name)
        if self.p2_k == 0 and self.p2_gamma > 0:
            raise ValueError("p2_k must be > 0 when p2_gamma > 0 (the P2 weight 1/(p2_k + SNR)^gamma)")
        check_choice(self.pred, "pred", PREDICTIONS)
        check_choice(self.cond, "cond", CONDITIONS)
        check_choice(self.schedule, "schedule", SCHEDULES)
        check_choice(self.train_holes, "train_holes", TRAIN_HOLES)

    @classmethod
    def from_arguments(cls, arguments: dict) -> "TrainConfig":
        """The configuration of ``train(**arguments)``: each field by its name, and ``steps``, the design
        command's name for ``timesteps`` (T; not the sampling steps of ``inpaint``)."""
        arguments = upgrade_train_config(arguments)
        unknown = sorted(set(arguments) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"train got unknown argument(s) {', '.join(unknown)}; its configuration arguments are "
                             f"{', '.join(f.name for f in fields(cls))} (TrainConfig), plus steps (= timesteps)")
        return cls(**arguments)

    def model_config(self) -> ModelConfig:
        return ModelConfig(base_channels=self.base_channels, pred=self.pred, self_cond=self.self_cond,
                           coord_conv=self.coord_conv, cond=self.cond, T=self.timesteps, schedule=self.schedule)


def upgrade_train_config(config: dict) -> dict:
    """A train configuration with ``steps`` (the design's name, and checkpoints' before the rename) read
    as ``timesteps``."""
    config = dict(config)
    if "steps" in config:
        if "timesteps" in config:
            raise ValueError("pass timesteps or steps (its name in the design's command), not both")
        config["timesteps"] = config.pop("steps")
    return config


@dataclass
class TrainResult:
    """What ``train`` made: the paths it wrote and the loss history."""

    out_dir: Path
    checkpoint: Path
    panel_final: Path
    panels: list = field(default_factory=list)
    history_path: Path | None = None
    history: list = field(default_factory=list)  # one dict per optimizer step: step, loss, lr
    step: int = 0
    seconds: float = 0.0
    model: object = None  # the trained network (raw weights), on the training device
    ema_model: object = None  # its EMA copy, in eval mode: the one to sample with

    @property
    def losses(self) -> list:
        return [row["loss"] for row in self.history]


# ----------------------------------------------------------------------------------------------
# pieces of the loop


def training_holes(cfg: TrainConfig, batch: int, generator, device) -> torch.Tensor:
    hole = center_hole(28, cfg.center_box).to(device).expand(batch, 1, 28, 28)
    if cfg.train_holes == "center":
        return hole
    use_random = torch.rand(batch, 1, 1, 1, generator=generator, device=device) < 0.5
    return torch.where(use_random, random_box_holes(batch, 28, generator, device), hole)


def diffusion_loss(model, schedule: NoiseSchedule, cfg: TrainConfig, x0, hole, generator, raw=None,
                   autocast=contextlib.nullcontext) -> torch.Tensor:
    """The weighted denoising loss of one micro-batch (see the module docstring). ``raw`` is the
    unwrapped network for the gradient-free self-conditioning pass (when ``model`` is DDP);
    ``autocast`` a context factory for the network's forward passes (mixed precision on CUDA)."""
    B, device = x0.shape[0], x0.device
    t = torch.randint(0, schedule.T, (B,), generator=generator, device=device)
    eps = torch.randn(x0.shape, generator=generator, device=device)
    x_t = schedule.q_sample(x0, t, eps)
    y = x0 * (1.0 - hole)  # observation (hole zeroed), seen only by cond="mask" networks
    x0_prev = None
    if cfg.self_cond:
        # self-conditioning (Chen et al. 2022): half of the batch gets the network's own x0 estimate,
        # made without gradient from a first pass; the other half gets zeros, as at the first step
        x0_prev = torch.zeros_like(x0)
        use = torch.rand(B, generator=generator, device=device) < 0.5
        if use.any():
            with torch.no_grad():
                with autocast():
                    out = (raw or model)(x_t[use], t[use], None, y[use], hole[use])
                x0_prev[use] = schedule.to_x0_eps(cfg.pred, x_t[use], t[use], out.float())[0]
    with autocast():
        out = model(x_t, t, x0_prev, y, hole)
    out = out.float()
    target = schedule.target(cfg.pred, x0, eps, t)
    w_t = (1.0 / (cfg.p2_k + schedule.snr(t))) ** cfg.p2_gamma if cfg.p2_gamma > 0 else 1.0
    w_pix = 1.0 + (cfg.hole_weight - 1.0) * hole
    return (w_t * w_pix * (out - target) ** 2).mean()


def train_step(net, model, optimizer, schedule: NoiseSchedule, cfg: TrainConfig, batch_iter, noise_gen, step: int,
               params: list, ema_params: list, autocast=contextlib.nullcontext, scaler=None) -> torch.Tensor:
    """One optimizer step of ``train`` (``trainer.optimizer_step`` with this recipe's loss): the
    warmed-up LR, ``grad_accum`` micro-batches from ``batch_iter``, clipping, Adam, EMA.

    ``net`` is the network to train through (DDP-wrapped or compiled, else ``model`` itself);
    ``model`` the plain one (self-conditioning pass). ``scaler``: a GradScaler (fp16 autocast).
    Returns the step's loss as a device tensor (not synced to the host)."""
    def loss_fn(net_, x0):
        hole = training_holes(cfg, x0.shape[0], noise_gen, x0.device)
        return diffusion_loss(net_, schedule, cfg, x0, hole, noise_gen, raw=model, autocast=autocast)

    return optimizer_step(net, optimizer, params, ema_params, cfg, step, batch_iter, loss_fn, scaler)[1]


def write_panel(ema_model, cfg: TrainConfig, images01, hole, path, step) -> Path:
    """Rows: masked input, inpainted with the EMA weights, ground truth."""
    result = inpaint(ema_model, images01, hole, "replace", steps=cfg.sample_steps, seed=cfg.seed, eta=cfg.eta,
                     dc_repeats=cfg.dc_repeats, dc_fixed_z=cfg.dc_fixed_z, init_from_y=True)
    masked = images01 * (1 - hole) + 0.5 * hole  # hole shown in mid grey
    return save_panel([masked, result, images01], path, row_titles=["masked", "inpainted", "ground truth"],
                      title=f"step {step}: EMA weights, {cfg.sample_steps} DDIM steps, dc_repeats={cfg.dc_repeats}")


# ----------------------------------------------------------------------------------------------
# the loop


def train(*, out_dir: str = "outputs/inpaint", data_root: str = "data", device=None, resume: bool = False,
          overwrite: bool = False, progress: bool = True, amp: bool | None = None, compile: bool = False,
          **config) -> TrainResult:
    """Train the MNIST centre-hole diffusion model; write last.pt, panels and the loss history.

    ``config`` is the design document's training command: the fields of ``TrainConfig``, whose
    defaults are the design's values (epochs=25, batch_size=128, lr=2e-4, timesteps=400, pred="v", ...;
    ``steps=`` is the design's name for ``timesteps``, the number T of diffusion timesteps), plus
    ``cond``, ``max_steps``, ``train_subset``, ``schedule``, ``base_channels``, ``train_holes``. Then:
    ``out_dir`` (where files go), ``data_root`` (MNIST root for torchvision), ``device`` (None: CUDA if
    available, else CPU), ``resume`` (continue from out_dir/last.pt; its config must match),
    ``overwrite`` (replace an existing last.pt instead of refusing).

    Speed (CUDA only; on the CPU the step runs in plain fp32 NCHW):
    ``amp`` autocast in bf16, or fp16 with a GradScaler on GPUs without bf16 (None: on for CUDA),
    with the network in channels_last under autocast, and TF32 matmuls and convolutions.
    ``compile`` wraps the network in ``torch.compile`` (off by default: the first steps wait for
    the compilation; see the README's Performance section). Neither is part of the saved config.
    The batches stay on the device (``TensorBatches``): no host-to-device copy per step.
    """
    cfg = TrainConfig.from_arguments(config)
    check_bool(compile, "compile")
    device = resolve_device(device)
    amp = resolve_amp(amp, device)
    info, device = dist.setup_distributed(device)
    try:
        with cuda_tf32(device):
            return _train(cfg, info, device, out_dir, data_root, resume, overwrite, progress, amp, compile)
    finally:
        dist.cleanup(info)


def _train(cfg: TrainConfig, info: dist.DistInfo, device, out_dir, data_root, resume, overwrite, progress,
           amp: bool = False, compile: bool = False):
    out = check_writable_dir(out_dir, "out_dir")
    ckpt_path, history_path = out / "last.pt", out / "history.csv"
    if ckpt_path.exists() and not (resume or overwrite):
        raise FileExistsError(f"{str(ckpt_path)!r} already exists: pass resume=True to continue it, "
                              f"overwrite=True to replace it, or choose another out_dir")

    # data: the training split in memory; the first 8 test digits for the panels
    images, _ = load_mnist(data_root, train=True)
    if cfg.train_subset is not None:
        images = images[:cfg.train_subset]
    if len(images) < cfg.batch_size * info.world_size:
        raise ValueError(f"batch_size ({cfg.batch_size}) x processes ({info.world_size}) is larger than the "
                         f"training set ({len(images)} images)")
    panel_images, _ = load_test_images(data_root, n=8)
    panel_images = panel_images.to(device)
    panel_hole = center_hole(28, cfg.center_box).to(device)

    torch.manual_seed(cfg.seed)  # weight init: the same on every rank
    model = DenoiserUNet(cfg.model_config()).to(device)
    if amp:  # tensor-core convolutions read NHWC; the weights' values and names are unchanged
        model = model.to(memory_format=torch.channels_last)
    net = dist.wrap_model(model, info, device)
    raw = model  # the self-conditioning pass (no gradient) skips DDP
    if compile:
        net = torch.compile(net)
        raw = net if net._orig_mod is model else torch.compile(model)
    train_config = asdict(cfg)
    trainer = Trainer(model, kind="mnist", cfg=cfg, model_config=cfg.model_config().to_dict(),
                      train_config=train_config, info=info, device=device, net=net, amp=amp,
                      dropout_seed=cfg.seed + info.rank, noise_seed=cfg.seed + 1 + 1000 * info.rank)
    schedule = NoiseSchedule(cfg.timesteps, cfg.schedule).to(device)
    batches = TensorBatches(images, cfg.batch_size, cfg.seed, device, info.rank, info.world_size)
    steps_per_epoch = len(batches) // cfg.grad_accum
    if steps_per_epoch < 1:
        raise ValueError(f"grad_accum ({cfg.grad_accum}) exceeds the batches per epoch ({len(batches)})")
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)

    panels = []
    if resume and ckpt_path.exists():
        trainer.resume(ckpt_path, RESUMABLE_CHANGES, legacy_history=lambda: read_history(history_path),
                       upgrade_config=upgrade_train_config)
        panels = sorted(out.glob("panel_[0-9]*.png"))

    def loss_fn(net_, x0):
        hole = training_holes(cfg, x0.shape[0], trainer.noise_gen, x0.device)
        return diffusion_loss(net_, schedule, cfg, x0, hole, trainer.noise_gen, raw=raw, autocast=trainer.autocast)

    def checkpoint(step: int, final: bool, seconds: float) -> None:
        """A panel of the EMA's fills, then last.pt (and history.csv, written first: a kill between the
        two writes leaves a history with extra rows, which resuming cuts at the checkpoint's step)."""
        if info.is_main:
            path = out / ("panel_final.png" if final else f"panel_{step}.png")
            write_panel(trainer.ema_model, cfg, panel_images, panel_hole, path, step)
            if not final:
                panels.append(path)
        trainer.save(ckpt_path, seconds, before_write=lambda: write_history(history_path, trainer.history))

    run = trainer.fit(loss_fn, lambda epoch, skip: batches.set_epoch(epoch, skip * cfg.grad_accum), steps_per_epoch,
                      total_steps, checkpoint, lambda step: step % cfg.sample_every == 0, ckpt_path, progress)
    return TrainResult(out_dir=out, checkpoint=ckpt_path, panel_final=out / "panel_final.png", panels=panels,
                       history_path=history_path, history=run.history, step=run.step, seconds=run.seconds,
                       model=model, ema_model=trainer.ema_model)


train.config_class = TrainConfig  # the command line reads train's configuration options from it


def write_history(path: Path, history: list) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["step", "loss", "lr"])
        writer.writeheader()
        writer.writerows(history)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def read_history(path: Path) -> list:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [{"step": int(r["step"]), "loss": float(r["loss"]), "lr": float(r["lr"])} for r in csv.DictReader(fh)]


# ----------------------------------------------------------------------------------------------
# the design's commands


def check_model_flags(model, **flags) -> None:
    """Architecture flags passed by the user must agree with the checkpoint (None = take the checkpoint's)."""
    cfg = model.config
    wrong = {k: (v, getattr(cfg, k)) for k, v in flags.items() if v is not None and v != getattr(cfg, k)}
    if wrong:
        text = ", ".join(f"{k}={v!r} but the checkpoint was trained with {k}={c!r}" for k, (v, c) in wrong.items())
        where = getattr(model, "checkpoint_path", "the checkpoint")
        raise ValueError(f"{text} ({where}). Pass the checkpoint's values or leave them out (None).")


def _output_dir(ckpt, out_dir) -> Path:
    """``out_dir`` if given; else beside the checkpoint, except for a shipped checkpoint (inside the
    installed package), whose files go to outputs/<checkpoint name>/ instead."""
    from ..checkpoint import WEIGHTS_DIR

    if out_dir is None:
        ckpt = Path(ckpt).resolve()
        shipped = WEIGHTS_DIR.resolve() in ckpt.parents
        out_dir = Path("outputs") / ckpt.stem if shipped else ckpt.parent
    return check_writable_dir(out_dir, "out_dir")


# the commands' own defaults for the arguments they share with the samplers: the design's sampler
# "replace" with dc_repeats=2 (RePaint x2); a sampler that has no such option must leave them here
COMMAND_DEFAULTS = dict(dc_repeats=2, dc_fixed_z=True, init_from_y=True)


def command_options(sampler: str, options: dict, *, dc_repeats, dc_fixed_z, init_from_y, eta, guidance,
                    particles) -> dict:
    """The sampler options of ``sample_cmd`` / ``eval_cmd`` (``samplers.route_options``): ``dc_repeats``
    goes to the samplers that have it (2, the design's, by default); the others take their own repeat
    option from ``options`` (e.g. travel_rounds=2 for "ddnm")."""
    from ..samplers import route_options

    return route_options(sampler, options, COMMAND_DEFAULTS, dc_repeats=dc_repeats, dc_fixed_z=dc_fixed_z,
                         init_from_y=init_from_y, eta=eta, guidance=guidance, particles=particles)


def sample_cmd(ckpt: str = "outputs/inpaint/last.pt", n: int = 16, steps: int = 50, center_box: int = 12,
               dc_repeats: int | None = None, dc_fixed_z: bool = True, pred: str | None = None,
               self_cond: bool | None = None, init_from_y: bool = True, eta: float | None = None,
               coord_conv: bool | None = None, cond: str | None = None, data_root: str = "data", device=None,
               seed: int = 0, out_dir: str | None = None, guidance: float | None = None, sampler: str = "replace",
               particles: int | None = None, **options) -> torch.Tensor:
    """Inpaint the centre hole of the first ``n`` MNIST test digits; write samples.png beside the
    checkpoint (or in ``out_dir``; a shipped checkpoint's go to outputs/<name>/); return the
    inpainted images (n, 1, 28, 28) in [0, 1].

    ``steps`` is the number of DDIM steps (at most the checkpoint's T). ``pred``, ``self_cond``,
    ``coord_conv`` and ``cond`` are checked against the checkpoint; None takes the checkpoint's.
    ``sampler`` is one of ``samplers.SAMPLERS`` ("replace", the design's, by default); ``guidance`` is
    the weight of sampler "guidance" (and "pigdm"), ``particles`` "smc"'s K, and ``options`` any other
    option of the sampler's (``samplers.sampler_options``). ``dc_repeats`` None: the design's 2 for the
    samplers that take it ("replace", "guidance"); ``eta`` and ``guidance`` None: the sampler's
    default (``command_options``)."""
    dc_repeats = COMMAND_DEFAULTS["dc_repeats"] if dc_repeats is None else dc_repeats
    options = command_options(sampler, options, dc_repeats=dc_repeats, dc_fixed_z=dc_fixed_z, init_from_y=init_from_y,
                              eta=eta, guidance=guidance, particles=particles)
    model = load_network(ckpt, {"mnist": build_mnist_model}, device=device)
    check_model_flags(model, pred=pred, self_cond=self_cond, coord_conv=coord_conv, cond=cond)
    images, _ = load_test_images(data_root, n=n)
    hole = center_hole(28, center_box)
    result = inpaint(model, images, hole, sampler, steps=steps, seed=seed, **options)
    masked = images * (1 - hole) + 0.5 * hole
    path = _output_dir(ckpt, out_dir) / "samples.png"
    save_panel([masked, result, images], path, row_titles=["masked", "inpainted", "ground truth"],
               title=f"{Path(ckpt).name}: sampler={sampler}, {steps} steps"
                     + "".join(f", {k}={v}" for k, v in options.items()))
    return result


@torch.no_grad()
def eval_cmd(ckpt: str = "outputs/inpaint/last.pt", batch_size: int = 256, n_eval: int = 500, steps: int = 50,
             center_box: int = 12, dc_repeats: int | None = None, dc_fixed_z: bool = True, pred: str | None = None,
             self_cond: bool | None = None, init_from_y: bool = True, eta: float | None = None,
             coord_conv: bool | None = None, seed: int = 123, cond: str | None = None, data_root: str = "data",
             device=None, out_dir: str | None = None, json_name: str = "eval.json", guidance: float | None = None,
             sampler: str = "replace", particles: int | None = None, **options) -> dict:
    """Hole-only PSNR and L1 on the first ``n_eval`` MNIST test images with the centre hole.

    Writes ``eval.json`` beside the checkpoint (or in ``out_dir``; a shipped checkpoint's go to
    outputs/<name>/) and returns the same dict:
    psnr_hole, l1_hole (pooled over all images), mse_hole, psnr_hole_per_image_mean, n_eval,
    steps, nfe_per_image, seconds, images_per_second, device, and every argument used.
    ``sampler``, ``guidance``, ``particles``, ``options``, ``dc_repeats`` and ``eta``: as in
    ``sample_cmd``; ``args["options"]`` records the sampler's options as used. Samplers that take a
    backward pass through the network ("guidance", "pigdm"): ``nfe_per_image`` counts the forward
    evaluations and ``backward_per_image`` the backward passes."""
    dc_repeats = COMMAND_DEFAULTS["dc_repeats"] if dc_repeats is None else dc_repeats
    options = command_options(sampler, options, dc_repeats=dc_repeats, dc_fixed_z=dc_fixed_z, init_from_y=init_from_y,
                              eta=eta, guidance=guidance, particles=particles)
    args = {k: v for k, v in locals().items()}
    check_int(batch_size, "batch_size")
    model = load_network(ckpt, {"mnist": build_mnist_model}, device=device)
    check_model_flags(model, pred=pred, self_cond=self_cond, coord_conv=coord_conv, cond=cond)
    images, _ = load_test_images(data_root, n=n_eval, allow_sample=False)
    hole = center_hole(28, center_box)
    dev = next(model.parameters()).device
    metrics, nfe, backward = HoleMetrics(), 0, 0
    t0 = time.perf_counter()
    for k, start in enumerate(range(0, len(images), batch_size)):
        gt = images[start:start + batch_size].to(dev)
        counter = []
        result = inpaint(model, gt, hole.to(dev), sampler, steps=steps, seed=seed + k,
                         callback=lambda d: counter.append((d["nfe"], d.get("backward", 0))), **options)
        nfe = max(c[0] for c in counter) if counter else 0
        backward = max(c[1] for c in counter) if counter else 0
        metrics.update(result, gt, hole.to(dev))
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    cfg = model.config
    out = {**metrics.summary(), "n_eval": len(images), "steps": steps, "nfe_per_image": nfe,
           "backward_per_image": backward, "sampler": sampler,
           "seconds": seconds, "images_per_second": len(images) / seconds, "device": str(dev),
           "model": {"pred": cfg.pred, "self_cond": cfg.self_cond, "coord_conv": cfg.coord_conv,
                     "cond": cfg.cond, "T": cfg.T, "schedule": cfg.schedule},
           "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in args.items()}}
    path = _output_dir(ckpt, out_dir) / json_name
    path.write_text(json.dumps(out, indent=2))
    return out
