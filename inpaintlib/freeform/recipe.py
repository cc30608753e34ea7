"""``train_inpainting``: the architecture guide's training recipe, on the shared loop of
``inpaintlib/trainer.py``. It supplies the loss (inside the hole only) and the batches (images with a
fresh free-form mask each, ``InpaintingDataset``); the trainer does the rest.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .. import distributed as dist
from ..checkpoint import load_checkpoint
from ..checks import check_bool, check_int, check_number, check_optional_int
from ..schedule import NoiseSchedule
from ..trainer import EpochBatches, Trainer, check_resume
from ..utils import check_writable_dir, resolve_device
from ..masks import MASK_KINDS, check_coverage, check_mask_kinds
from .data import InpaintingDataset
from .model import FreeformConfig, InpaintingUNET, freeform_config


def checkpoint_file(path) -> Path:
    """The checkpoint file for ``path``: a path with no suffix gets ".pt" appended, so the guide's
    ``checkpoint_path='checkpoints/model'`` means ``checkpoints/model.pt`` (both when training
    and in ``inpaint_image``)."""
    if not isinstance(path, (str, Path)) or not str(path):
        raise ValueError(f"checkpoint_path must be a non-empty str or Path, got {path!r}")
    path = Path(path)
    return path.with_name(path.name + ".pt") if path.suffix == "" else path


@dataclass
class InpaintingTrainConfig:
    """The arguments of ``train_inpainting`` that define a run; saved in the checkpoint."""

    dataset_path: str
    num_epochs: int
    batch_size: int
    lr: float = 1e-4
    image_size: int = 128
    save_every_n_epochs: int = 100
    max_steps: int | None = None
    seed: int = 0
    ema_decay: float = 0.999
    warmup_steps: int = 100
    clip_grad: float = 1.0
    mask_kinds: tuple = MASK_KINDS
    coverage: tuple = (0.1, 0.5)
    amp: bool = True
    save_every_n_steps: int | None = 500

    def __post_init__(self):
        for name in ("num_epochs", "batch_size", "image_size", "save_every_n_epochs"):
            setattr(self, name, check_int(getattr(self, name), name))
        for name in ("max_steps", "save_every_n_steps"):
            setattr(self, name, check_optional_int(getattr(self, name), name))
        self.seed = check_int(self.seed, "seed", 0)
        check_number(self.lr, "lr", 0, low_open=True)
        if not isinstance(self.ema_decay, (int, float)) or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        for name in ("warmup_steps", "clip_grad"):
            check_number(getattr(self, name), name, 0)
        self.mask_kinds = check_mask_kinds(self.mask_kinds)
        self.coverage = check_coverage(self.coverage)
        check_bool(self.amp, "amp")


# train_config keys that may differ when a run is resumed (they extend or reschedule it)
RESUMABLE_CHANGES = {"num_epochs", "max_steps", "save_every_n_epochs", "save_every_n_steps", "dataset_path", "amp"}


@dataclass
class InpaintingTrainResult:
    """What ``train_inpainting`` made."""

    checkpoint: Path
    step: int
    steps_per_epoch: int
    history: list = field(default_factory=list)  # the loss of every optimizer step of the run, resumed ones included
    seconds: float = 0.0
    model: nn.Module | None = field(default=None, repr=False)  # the trained network (this rank's copy)
    ema_model: nn.Module | None = field(default=None, repr=False)  # its EMA, the weights inpaint_image uses

    @property
    def losses(self) -> list:
        return list(self.history)


def hole_loss(model, schedule: NoiseSchedule, x0: torch.Tensor, keep: torch.Tensor, generator, autocast,
              pred: str | None = None, objective: str | None = None) -> torch.Tensor:
    """The guide's loss on one batch: the prediction error (eps, or x0 / v per ``config.pred``)
    inside the hole only, averaged over the hole's pixels: L = sum(M (net - target)^2) / (C sum(M)),
    M = hole (module docstring).

    objective="mmse" (a regression U-Net, ``FreeformConfig.objective``): t = T - 1 and a hole of zeros
    for every image, so the input says nothing about the hole and the minimiser of the x0 loss is
    E[x_0 | known pixels]."""
    B, C = x0.shape[:2]
    hole = 1.0 - keep
    if (objective or model.config.objective) == "mmse":
        t = torch.full((B,), schedule.T - 1, dtype=torch.long, device=x0.device)
        eps = torch.zeros_like(x0)
        x_t = torch.zeros_like(x0)
    else:
        t = torch.randint(0, schedule.T, (B,), generator=generator, device=x0.device)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device)
        x_t = schedule.q_sample(x0, t, eps)  # x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
    with autocast():
        out = model(x_t, t, y=x0 * keep, hole=hole)  # sees keep * x_0 + hole * x_t, and the mask
    target = schedule.target(pred or model.config.pred, x0, eps, t)  # pred: for a DDP-wrapped model
    return (hole * (out.float() - target) ** 2).sum() / (C * hole.sum()).clamp(min=1.0)


def _model_config_for(preset, image_size: int) -> FreeformConfig:
    if preset is None or isinstance(preset, str):
        return freeform_config(preset or "default", image_size=image_size)
    cfg = FreeformConfig.from_dict(preset) if isinstance(preset, dict) else preset
    if not isinstance(cfg, FreeformConfig):
        raise ValueError(f"preset must be None, a preset name, a FreeformConfig or a dict, got {type(preset).__name__}")
    if cfg.image_size != image_size:
        raise ValueError(f"image_size ({image_size}) differs from the given model config's image_size "
                         f"({cfg.image_size}); pass the same value")
    if cfg.cond != "mask":
        raise ValueError(f"train_inpainting trains an InpaintingUNET: the model config needs cond='mask', got {cfg.cond!r}")
    return cfg


def train_inpainting(dataset_path, checkpoint_path, num_epochs: int, batch_size: int, lr: float = 1e-4,
                     image_size: int = 128, save_every_n_epochs: int = 100, *, preset=None, device=None,
                     max_steps: int | None = None, seed: int = 0, ema_decay: float = 0.999, warmup_steps: int = 100,
                     clip_grad: float = 1.0, mask_kinds=MASK_KINDS, coverage=(0.1, 0.5), amp: bool = True,
                     save_every_n_steps: int | None = 500, resume: bool = False, overwrite: bool = False,
                     num_workers: int | None = None, progress: bool = True, init_from=None) -> InpaintingTrainResult:
    """Train an ``InpaintingUNET`` on the images under ``dataset_path`` (the guide's loop).

    Each step: a batch of images with random free-form masks (``InpaintingDataset``), t ~ U{0..T-1},
    eps ~ N(0, I), x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, the network on
    keep * x_0 + hole * x_t and the mask, the loss inside the hole only (module docstring), Adam
    (linear warm-up over ``warmup_steps``, gradient norm clipped at ``clip_grad``; 0 = off), then an
    EMA of the weights (``ema_decay``). Mixed precision (bf16, else fp16 with a GradScaler) on
    CUDA when ``amp``; full precision elsewhere.

    dataset_path         folder of images (searched recursively)
    checkpoint_path      the checkpoint file; with no suffix, ".pt" is appended ('checkpoints/model'
                         -> 'checkpoints/model.pt'). It holds model, ema, optimizer, every rank's RNG
                         state, step and the configurations, written atomically every
                         ``save_every_n_epochs`` epochs, every ``save_every_n_steps`` optimizer steps
                         (None: only at epoch boundaries) and at the end. An existing file is refused
                         unless ``resume`` (continue it exactly, mid-epoch too; same arguments, except
                         num_epochs, max_steps, save_every_n_epochs, save_every_n_steps, dataset_path,
                         amp) or ``overwrite`` (start afresh). resume=True with no file starts afresh.
    num_epochs, batch_size, lr, image_size, save_every_n_epochs   the guide's arguments
    preset               None (the guide's model), "small", "tiny", or a FreeformConfig / dict; a
                         preset's architecture is used at ``image_size``
    max_steps            cap on the total number of optimizer steps
    device               None: the best CUDA device, else the CPU
    num_workers          DataLoader workers (None: 4 on CUDA, else 0)
    init_from            a fine-tune: a trained or shipped checkpoint (e.g. ``pretrained("patterns")``) whose
                         EMA weights start the network, its architecture used at ``image_size`` (the network
                         is convolutional: weights trained at 64x64 run at 128x128); preset must then be None.
                         Step, optimizer and EMA start afresh; a resumed run keeps its own weights
    Returns an ``InpaintingTrainResult`` (checkpoint path, step, loss history, seconds).

    Several processes: under ``torchrun --nproc_per_node=N`` each process takes the GPU of its
    LOCAL_RANK (NCCL; gloo on the CPU), DistributedDataParallel averages the gradients, and only
    rank 0 writes the checkpoint. ``batch_size`` is per process: one optimizer step sees
    batch_size x N images, and an epoch has N times fewer steps.
    """
    for name, value in (("resume", resume), ("overwrite", overwrite), ("progress", progress)):
        check_bool(value, name)
    if resume and overwrite:
        raise ValueError("resume and overwrite cannot both be True")
    cfg = InpaintingTrainConfig(str(dataset_path), num_epochs, batch_size, lr, image_size, save_every_n_epochs,
                                max_steps, seed, ema_decay, warmup_steps, clip_grad, mask_kinds, coverage, amp,
                                save_every_n_steps)
    init_weights = None
    if init_from is not None:
        if preset is not None:
            raise ValueError("pass preset or init_from, not both: init_from brings its own architecture")
        init = load_checkpoint(init_from, kind="freeform")
        if "ema" not in init:
            raise ValueError(f"init_from {str(init_from)!r} holds no EMA weights")
        model_cfg = _model_config_for(dict(init["model_config"], image_size=image_size), image_size)
        init_weights = {k: v.float() if v.is_floating_point() else v for k, v in init["ema"].items()}
    else:
        model_cfg = _model_config_for(preset, image_size)
    ckpt_path = checkpoint_file(checkpoint_path)
    if ckpt_path.is_dir():
        raise ValueError(f"checkpoint_path {str(ckpt_path)!r} is a folder, expected a file path")
    check_writable_dir(ckpt_path.parent, "checkpoint_path's folder")
    if ckpt_path.exists() and not (resume or overwrite):
        raise FileExistsError(f"checkpoint {str(ckpt_path)!r} already exists: pass resume=True to continue it, "
                              f"overwrite=True to replace it, or choose another checkpoint_path")
    num_workers = check_optional_int(num_workers, "num_workers", 0)
    info, device = dist.setup_distributed(resolve_device(device))
    try:
        return _train_inpainting(cfg, model_cfg, ckpt_path, info, device, resume, num_workers, progress, init_weights)
    finally:
        dist.cleanup(info)


def _train_inpainting(cfg: InpaintingTrainConfig, model_cfg: FreeformConfig, ckpt_path: Path, info: dist.DistInfo,
                      device, resume: bool, num_workers, progress: bool,
                      init_weights: dict | None = None) -> InpaintingTrainResult:
    num_workers = (4 if device.type == "cuda" else 0) if num_workers is None else num_workers
    dataset = InpaintingDataset(cfg.dataset_path, cfg.image_size, cfg.mask_kinds, cfg.coverage, seed=cfg.seed)
    sampler = EpochBatches(len(dataset), cfg.batch_size, cfg.seed, info.rank, info.world_size)
    steps_per_epoch = sampler.batches_per_epoch
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size ({cfg.batch_size}) x processes ({info.world_size}) is larger than the "
                         f"dataset ({len(dataset)} images in {cfg.dataset_path!r})")
    total_steps = cfg.num_epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(cfg.max_steps, total_steps)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                                         pin_memory=device.type == "cuda", persistent_workers=False)

    torch.manual_seed(cfg.seed)  # weight init (the same on every rank) and, with one process, dropout
    model = InpaintingUNET(model_cfg)
    if init_weights is not None:
        model.load_state_dict(init_weights)  # before the Trainer copies it into the EMA
    model = model.to(device)
    trainer = Trainer(model, kind="freeform", cfg=cfg, model_config=model_cfg.to_dict(), train_config=asdict(cfg),
                      info=info, device=device, amp=cfg.amp, noise_seed=cfg.seed + 1 + 1000 * info.rank,
                      dropout_seed=cfg.seed + 1000 * info.rank if info.enabled else None)
    schedule = NoiseSchedule.of(model_cfg).to(device)
    if ckpt_path.exists() and resume:
        def same_model(ckpt):
            saved = FreeformConfig.from_dict(ckpt["model_config"]).to_dict()  # fields added since take their defaults
            check_resume(saved, model_cfg.to_dict(), set(), ckpt_path, what="model configuration")

        trainer.resume(ckpt_path, RESUMABLE_CHANGES, extra_check=same_model)

    def batches(epoch: int, skip: int):
        dataset.set_epoch(epoch)
        sampler.epoch, sampler.skip = epoch, skip
        for batch in loader:
            yield batch["image"].to(device, non_blocking=True), batch["mask"].to(device, non_blocking=True)

    def loss_fn(net, batch):
        x0, keep = batch
        return hole_loss(net, schedule, x0, keep, trainer.noise_gen, trainer.autocast, model_cfg.pred,
                         model_cfg.objective)

    def save_due(step: int) -> bool:
        if cfg.save_every_n_steps is not None and step % cfg.save_every_n_steps == 0:
            return True
        return step % steps_per_epoch == 0 and (step // steps_per_epoch) % cfg.save_every_n_epochs == 0

    run = trainer.fit(loss_fn, batches, steps_per_epoch, total_steps,
                      lambda step, final, seconds: trainer.save(ckpt_path, seconds), save_due, ckpt_path, progress,
                      desc="train_inpainting")
    return InpaintingTrainResult(checkpoint=ckpt_path, step=run.step, steps_per_epoch=steps_per_epoch,
                                 history=[row["loss"] for row in run.history], seconds=run.seconds,
                                 model=model, ema_model=trainer.ema_model)
