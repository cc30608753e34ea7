"""The 128x128 mask-conditioned inpainting system of the architecture guide.

Read top-down: the configuration and its presets, the guide's ``DDPM_Scheduler`` (a name for the
shared linear ``NoiseSchedule``), the network pieces (``UnetLayer``, the mask-conditioned input),
the networks (``UNET``, ``InpaintingUNET``), then ``train_inpainting`` and ``inpaint_image``.
``SinusoidalEmbeddings``, ``ResBlock`` and ``Attention`` are the shared ones of ``blocks.py``;
sampling is the shared ``ddim_inpaint`` with ``known="clean"`` (the guide's DDIM algorithm).

What the network sees. The guide writes ``eps_pred = model(x_t * mask, t, mask)``; read literally,
that multiplies the noisy image by the keep mask and so zeroes exactly the hole pixels the network
has to denoise. Its inference algorithm instead keeps the clean known pixels and the noisy hole:
    x_in = keep * x_0 + hole * x_t,      x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps   (DDPM eq. 4)
which is the sampler's state at every step with known="clean". The network is trained on that
same x_in (plus the mask as a separate input), so training and sampling see the same thing.
Loss (the guide's "loss only in masked regions"), with M = hole:
    L = sum(M * (net - target)^2) / (C * sum(M)),   target = eps (the guide's default, pred="eps"),
                                                    or v for the small presets (see PRESETS)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Attention, ResBlock, group_count, time_mlp
from .freeform_data import MASK_KINDS, InpaintingDataset, check_coverage
from .schedule import PREDICTIONS, SCHEDULES, NoiseSchedule, check_name
from .trainer import EpochBatches, Trainer, check_resume
from . import distributed as dist
from .utils import check_writable_dir, resolve_device

NETWORK_CONDITIONS = ("mask", "none")  # "mask": InpaintingUNET; "none": the plain UNET


# ----------------------------------------------------------------------------------------------
# configuration


@dataclass
class FreeformConfig:
    """Everything needed to rebuild a free-form network and read its output; saved in checkpoints.

    ``widths`` is the guide's "Channels" list, one entry per ``UnetLayer``: the first half are the
    encoder layers (each halves H and W), the second half the decoder layers (each doubles them).
    ``channels`` is the number of image channels (3), as in the MNIST ``ModelConfig``, so the
    shared sampler (``sampling.inpaint``) reads both configurations alike."""

    image_size: int = 128
    channels: int = 3
    widths: tuple = (64, 128, 256, 512, 512, 384)
    attentions: tuple = (False, True, False, True, True, False)  # at the 128- and 512-channel layers
    upscales: tuple = (False, False, False, True, True, True)
    bottleneck_attention: bool = True
    num_heads: int = 4
    dropout: float = 0.1
    pred: str = "eps"  # what the network outputs: "eps" (the guide), "x0" or "v"
    cond: str = "mask"  # "mask": InpaintingUNET (sees the mask); "none": UNET
    T: int = 1000
    schedule: str = "linear"  # the guide: beta linear from 1e-4 to 0.02 over T = 1000 steps

    def __post_init__(self):
        self.widths, self.attentions, self.upscales = tuple(self.widths), tuple(self.attentions), tuple(self.upscales)
        n = len(self.widths)
        if n < 2 or n % 2 or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 2 for w in self.widths):
            raise ValueError(f"widths must be an even number (>= 2) of ints >= 2, got {self.widths!r}")
        if self.widths[0] % 2:
            raise ValueError(f"widths[0] must be even (it is the timestep embedding size), got {self.widths[0]}")
        for name in ("attentions", "upscales"):
            value = getattr(self, name)
            if len(value) != n or not all(isinstance(v, bool) for v in value):
                raise ValueError(f"{name} must hold {n} booleans (one per entry of widths), got {value!r}")
        if self.upscales != (False,) * (n // 2) + (True,) * (n // 2):
            raise ValueError(f"upscales must be {n // 2} x False (encoder) then {n // 2} x True (decoder), "
                             f"got {self.upscales!r}")
        for j in range(n // 2, n - 1):  # each decoder output + its skip must make the next layer's width
            if self.widths[j + 1] <= self.widths[n - 1 - j]:
                raise ValueError(f"widths[{j + 1}] ({self.widths[j + 1]}) must exceed widths[{n - 1 - j}] "
                                 f"({self.widths[n - 1 - j]}): the decoder concatenates that skip")
        attended = [w for w, a in zip(self.widths, self.attentions) if a]
        attended += [self.widths[n // 2]] if self.bottleneck_attention else []
        if any(w % self.num_heads for w in attended):
            raise ValueError(f"num_heads ({self.num_heads}) must divide the width of every attention layer {attended}")
        factor = 2 ** (n // 2)
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size % factor \
                or self.image_size < factor:
            raise ValueError(f"image_size must be a positive multiple of {factor} (2 ** encoder layers), "
                             f"got {self.image_size!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        check_name(self.pred, "pred", PREDICTIONS)
        check_name(self.cond, "cond", NETWORK_CONDITIONS)
        check_name(self.schedule, "schedule", SCHEDULES)

    @property
    def num_down(self) -> int:
        return len(self.widths) // 2

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("widths", "attentions", "upscales"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FreeformConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"free-form model config has unknown keys {sorted(unknown)}")
        return cls(**d)


PRESETS = {
    # the guide's model: 128x128, widths [64, 128, 256, 512, 512, 384], ~47M parameters
    "default": {},
    # trains on a CPU: 64x64, ~1.6M parameters; no attention at the 32x32 layer (1024 positions
    # cost as much as the rest of the network on a CPU), attention kept at 16x16, 8x8 and the bottleneck.
    # pred="v": after a short training, eps-prediction gives useless x0 estimates at high noise
    # (x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) multiplies the eps error by up to 1/0.006),
    # and DDIM carries them to the end; v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0 does not divide.
    "small": {"image_size": 64, "widths": (16, 32, 64, 96, 96, 48),
              "attentions": (False, False, False, True, True, False), "dropout": 0.0, "pred": "v"},
    # for tests and fast mode: 32x32, ~0.8M parameters
    "tiny": {"image_size": 32, "widths": (16, 32, 32, 64, 64, 48), "dropout": 0.0, "pred": "v"},
}


def freeform_config(preset: str = "default", **overrides) -> FreeformConfig:
    """The configuration of a named preset (``PRESETS``), with ``overrides`` applied."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(map(repr, PRESETS))}, got {preset!r}")
    return FreeformConfig(**{**PRESETS[preset], **overrides})


class DDPM_Scheduler(NoiseSchedule):
    """The guide's noise schedule: beta_t linear from 1e-4 to 0.02 over ``num_time_steps`` steps,
        alpha_t = 1 - beta_t,   alpha_bar_t = prod_{s <= t} alpha_s     (DDPM eq. 4)
    It is the shared ``NoiseSchedule(T, "linear")`` under the guide's names; ``add_noise`` is
    ``q_sample``."""

    def __init__(self, num_time_steps: int = 1000):
        super().__init__(num_time_steps, "linear")

    @property
    def num_time_steps(self) -> int:
        return self.T

    @property
    def beta(self) -> torch.Tensor:
        return self.betas

    @property
    def alpha(self) -> torch.Tensor:
        return self.alphas

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
        return self.q_sample(x0, t, noise)


# ----------------------------------------------------------------------------------------------
# network pieces


class UnetLayer(nn.Module):
    """One encoder or decoder step of the guide (its ``unet_layer.py``):

        h = ResBlock(x, temb); [h = Attention(h)]; h = ResBlock(h, temb)
        out = Conv 3x3 stride 2 (h)            encoder: halves H, W
        out = ConvTranspose 4x4 stride 2 (h)   decoder (upscale): doubles H, W
    forward returns (out, h): the resampled features and ``h``, the residual for the skip."""

    def __init__(self, channels: int, out_channels: int, upscale: bool, attention: bool, time_dim: int,
                 dropout: float = 0.0, num_heads: int = 4):
        super().__init__()
        self.res1 = ResBlock(channels, channels, time_dim, dropout)
        self.attention = Attention(channels, num_heads) if attention else None
        self.res2 = ResBlock(channels, channels, time_dim, dropout)
        if upscale:
            self.resample = nn.ConvTranspose2d(channels, out_channels, 4, stride=2, padding=1)
        else:
            self.resample = nn.Conv2d(channels, out_channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor):
        h = self.res1(x, temb)
        if self.attention is not None:
            h = self.attention(h)
        h = self.res2(h, temb)
        return self.resample(h), h


class MaskedInput(nn.Module):
    """The guide's "[Image Conv] + [Mask Conv] -> Combined Features": the image and the keep mask
    go through separate convolutions, and a 1x1 convolution mixes the two feature maps."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.image_conv = nn.Conv2d(channels, width, 3, padding=1)
        self.mask_conv = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1))
        self.combine = nn.Conv2d(2 * width, width, 1)

    def forward(self, x_in: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.combine(F.silu(torch.cat([self.image_conv(x_in), self.mask_conv(keep)], dim=1)))


# ----------------------------------------------------------------------------------------------
# the networks


class UNET(nn.Module):
    """The guide's generic U-Net (its ``unet.py``), predicting ``config.pred`` from (x_t, t).

        x ─ conv ─ UnetLayer (down) x n/2 ─ bottleneck (ResBlock, [Attention], ResBlock)
          ─ UnetLayer (up) x n/2, each output concatenated with the matching encoder skip
          ─ ResBlock ─ GroupNorm, SiLU, conv ─ output
        t ─ SinusoidalEmbeddings ─ MLP ─ added in every ResBlock
    Decoder layer j's upsampled width is widths[j+1] - (its skip's width), so that after the
    concatenation the next layer runs at exactly widths[j+1]; the last one outputs widths[0].

    ``UNET(config)``, ``UNET(preset="small")`` or ``UNET(**fields)``; with no arguments, the
    guide's configuration. forward(x_t, t, x0_prev=None): ``x0_prev`` is accepted for the shared
    sampler's uniform call and unused."""

    def __init__(self, config: FreeformConfig | None = None, preset: str | None = None, **overrides):
        super().__init__()
        if config is not None and (preset is not None or overrides):
            raise ValueError("pass either config or preset/overrides, not both")
        cfg = config if config is not None else freeform_config(preset or "default", **overrides)
        if cfg.cond != self.expected_cond:
            raise ValueError(f"{type(self).__name__} needs cond={self.expected_cond!r}, got {cfg.cond!r}")
        self.config = cfg
        w, n, half = cfg.widths, len(cfg.widths), cfg.num_down
        time_dim = 4 * w[0]
        self.time_embed = time_mlp(w[0], time_dim)
        self.input_stage = self.build_input(cfg)
        self.encoder = nn.ModuleList([
            UnetLayer(w[i], w[i + 1], False, cfg.attentions[i], time_dim, cfg.dropout, cfg.num_heads)
            for i in range(half)])
        mid = w[half]
        self.bottleneck = nn.ModuleList([ResBlock(mid, mid, time_dim, cfg.dropout)]
                                        + ([Attention(mid, cfg.num_heads)] if cfg.bottleneck_attention else [])
                                        + [ResBlock(mid, mid, time_dim, cfg.dropout)])
        up_widths = [w[j + 1] - w[n - 1 - j] for j in range(half, n - 1)] + [w[0]]
        self.decoder = nn.ModuleList([
            UnetLayer(w[j], up_widths[j - half], True, cfg.attentions[j], time_dim, cfg.dropout, cfg.num_heads)
            for j in range(half, n)])
        self.head = ResBlock(2 * w[0], w[0], time_dim, cfg.dropout)
        self.norm_out = nn.GroupNorm(group_count(w[0]), w[0])
        self.conv_out = nn.Conv2d(w[0], cfg.channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    expected_cond = "none"

    def build_input(self, cfg: FreeformConfig) -> nn.Module:
        return nn.Conv2d(cfg.channels, cfg.widths[0], 3, padding=1)

    def unet(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """Encoder, bottleneck and decoder on the input features ``h``."""
        skips = []
        for layer in self.encoder:
            h, skip = layer(h, temb)
            skips.append(skip)
        for layer in self.bottleneck:
            h = layer(h, temb)
        for layer in self.decoder:
            h, _ = layer(h, temb)
            h = torch.cat([h, skips.pop()], dim=1)
        h = self.head(h, temb)
        return self.conv_out(F.silu(self.norm_out(h)))

    def check_input(self, x: torch.Tensor) -> None:
        factor = 2 ** self.config.num_down
        if x.ndim != 4 or x.shape[1] != self.config.channels or x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"x must have shape (B, {self.config.channels}, H, W) with H and W multiples of "
                             f"{factor}, got {tuple(x.shape)}")

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, x0_prev: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(x_t)
        return self.unet(self.input_stage(x_t), self.time_embed(t))


class InpaintingUNET(UNET):
    """The guide's mask-conditioned inpainting U-Net (its ``inpainting_unet.py``): predicts the
    noise (``config.pred``) in the hole from the image with clean known pixels and a noisy hole,
    the timestep, and the mask. ``InpaintingUNET()`` builds the guide's configuration:
    128x128x3 + mask, widths [64, 128, 256, 512, 512, 384], attention at the 128- and 512-channel
    layers and in the bottleneck, about 47M parameters.

    Two ways to call it:
        model(x, t, mask)              the guide's form. ``x`` (B, 3, H, W) is the network input
                                       x_in = keep * x_0 + hole * x_t (known pixels clean, hole
                                       noisy: the sampler's state); ``mask`` (B, 1, H, W), 1 = keep
        model(x_t, t, y=y, hole=hole)  the shared sampler's form (``sampling.Denoiser``): the
                                       input is assembled as x_in = (1 - hole) * y + hole * x_t,
                                       so whatever x_t holds at known pixels is never seen
    See the module docstring for why the input is not the guide's literal ``x_t * mask``."""

    expected_cond = "mask"

    def build_input(self, cfg: FreeformConfig) -> nn.Module:
        return MaskedInput(cfg.channels, cfg.widths[0])

    def forward(self, x: torch.Tensor, t: torch.Tensor, mask: torch.Tensor | None = None, *,
                y: torch.Tensor | None = None, hole: torch.Tensor | None = None,
                x0_prev: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(x)
        if mask is not None and (y is not None or hole is not None):
            raise ValueError("pass either mask (the guide's form) or y and hole (the sampler's form), not both")
        if mask is None:
            if y is None or hole is None:
                raise ValueError("InpaintingUNET needs mask (1 = keep), or y (observed image) and hole (1 = fill)")
            hole = hole.to(x.dtype)
            x = (1.0 - hole) * y + hole * x  # x_in = keep * x_0 + hole * x_t
            mask = 1.0 - hole
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"mask must have shape (B, 1, {x.shape[-2]}, {x.shape[-1]}), got {tuple(mask.shape)}")
        mask = mask.to(x.dtype).expand(x.shape[0], 1, *x.shape[-2:])
        return self.unet(self.input_stage(x, mask), self.time_embed(t))


def build_freeform_model(model_config: dict) -> UNET:
    """The network a checkpoint's ``model_config`` describes (``InpaintingUNET`` for cond="mask")."""
    cfg = FreeformConfig.from_dict(model_config)
    return InpaintingUNET(cfg) if cfg.cond == "mask" else UNET(cfg)


# ----------------------------------------------------------------------------------------------
# training


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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.max_steps is not None and (isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int)
                                           or self.max_steps < 1):
            raise ValueError(f"max_steps must be None or an int >= 1, got {self.max_steps!r}")
        if self.save_every_n_steps is not None and (isinstance(self.save_every_n_steps, bool)
                                                    or not isinstance(self.save_every_n_steps, int)
                                                    or self.save_every_n_steps < 1):
            raise ValueError(f"save_every_n_steps must be None or an int >= 1, got {self.save_every_n_steps!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) \
                or self.lr <= 0:
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not isinstance(self.ema_decay, (int, float)) or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        for name in ("warmup_steps", "clip_grad"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        self.mask_kinds = (self.mask_kinds,) if isinstance(self.mask_kinds, str) else tuple(self.mask_kinds)
        if not self.mask_kinds or any(k not in MASK_KINDS for k in self.mask_kinds):
            raise ValueError(f"mask_kinds must be a non-empty subset of {MASK_KINDS}, got {self.mask_kinds!r}")
        self.coverage = check_coverage(self.coverage)
        if not isinstance(self.amp, bool):
            raise ValueError(f"amp must be True or False, got {self.amp!r}")


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
              pred: str | None = None) -> torch.Tensor:
    """The guide's loss on one batch: the prediction error (eps, or x0 / v per ``config.pred``)
    inside the hole only, averaged over the hole's pixels: L = sum(M (net - target)^2) / (C sum(M)),
    M = hole (module docstring)."""
    B, C = x0.shape[:2]
    hole = 1.0 - keep
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
                     num_workers: int | None = None, progress: bool = True) -> InpaintingTrainResult:
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
    Returns an ``InpaintingTrainResult`` (checkpoint path, step, loss history, seconds).

    Several processes: under ``torchrun --nproc_per_node=N`` each process takes the GPU of its
    LOCAL_RANK (NCCL; gloo on the CPU), DistributedDataParallel averages the gradients, and only
    rank 0 writes the checkpoint. ``batch_size`` is per process: one optimizer step sees
    batch_size x N images, and an epoch has N times fewer steps.
    """
    for name, value in (("resume", resume), ("overwrite", overwrite), ("progress", progress)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
    if resume and overwrite:
        raise ValueError("resume and overwrite cannot both be True")
    cfg = InpaintingTrainConfig(str(dataset_path), num_epochs, batch_size, lr, image_size, save_every_n_epochs,
                                max_steps, seed, ema_decay, warmup_steps, clip_grad, mask_kinds, coverage, amp,
                                save_every_n_steps)
    model_cfg = _model_config_for(preset, image_size)
    ckpt_path = checkpoint_file(checkpoint_path)
    if ckpt_path.is_dir():
        raise ValueError(f"checkpoint_path {str(ckpt_path)!r} is a folder, expected a file path")
    check_writable_dir(ckpt_path.parent, "checkpoint_path's folder")
    if ckpt_path.exists() and not (resume or overwrite):
        raise FileExistsError(f"checkpoint {str(ckpt_path)!r} already exists: pass resume=True to continue it, "
                              f"overwrite=True to replace it, or choose another checkpoint_path")
    if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, int)
                                    or num_workers < 0):
        raise ValueError(f"num_workers must be None or an int >= 0, got {num_workers!r}")
    info, device = dist.setup_distributed(resolve_device(device))
    try:
        return _train_inpainting(cfg, model_cfg, ckpt_path, info, device, resume, num_workers, progress)
    finally:
        dist.cleanup(info)


def _train_inpainting(cfg: InpaintingTrainConfig, model_cfg: FreeformConfig, ckpt_path: Path, info: dist.DistInfo,
                      device, resume: bool, num_workers, progress: bool) -> InpaintingTrainResult:
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
    model = InpaintingUNET(model_cfg).to(device)
    trainer = Trainer(model, kind="freeform", cfg=cfg, model_config=model_cfg.to_dict(), train_config=asdict(cfg),
                      info=info, device=device, amp=cfg.amp, noise_seed=cfg.seed + 1 + 1000 * info.rank,
                      dropout_seed=cfg.seed + 1000 * info.rank if info.enabled else None)
    schedule = NoiseSchedule(model_cfg.T, model_cfg.schedule).to(device)
    if ckpt_path.exists() and resume:
        def same_model(ckpt):
            check_resume(ckpt["model_config"], model_cfg.to_dict(), set(), ckpt_path, what="model configuration")

        trainer.resume(ckpt_path, RESUMABLE_CHANGES, extra_check=same_model)

    def batches(epoch: int, skip: int):
        dataset.set_epoch(epoch)
        sampler.epoch, sampler.skip = epoch, skip
        for batch in loader:
            yield batch["image"].to(device, non_blocking=True), batch["mask"].to(device, non_blocking=True)

    def loss_fn(net, batch):
        x0, keep = batch
        return hole_loss(net, schedule, x0, keep, trainer.noise_gen, trainer.autocast, model_cfg.pred)

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


# ----------------------------------------------------------------------------------------------
# inference on image files


def _read_image(path, name: str):
    """The image at ``path``, turned upright by its EXIF orientation (as viewers show it)."""
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name} {str(path)!r} does not exist (or is not a file)")
    try:
        with Image.open(path) as img:
            return ImageOps.exif_transpose(img)
    except Exception as err:
        raise ValueError(f"{name} {str(path)!r} could not be read as an image: {type(err).__name__}: {err}") from err


def _output_paths(save_result, image_path, mask_path):
    """(result path, comparison path) for ``save_result``, refusing to write over the inputs."""
    from PIL import Image

    if save_result is None:
        return None, None
    result = Path(save_result)
    if result.suffix.lower() not in Image.registered_extensions():
        raise ValueError(f"save_result {str(result)!r} must end in an image extension PIL can write (e.g. .png)")
    comparison = result.with_name(f"{result.stem}_comparison.png")
    inputs = {Path(image_path).resolve(): "image_path", Path(mask_path).resolve(): "mask_path"}
    for name, path in (("save_result", result), ("the comparison image", comparison)):
        if path.resolve() in inputs:
            raise ValueError(f"{name} {str(path)!r} is the same file as {inputs[path.resolve()]}: "
                             f"refusing to overwrite an input")
    if result.parent.is_file():
        raise ValueError(f"save_result {str(result)!r}: its folder is a file")
    return result, comparison


def _save_comparison(path, original, hole, result) -> None:
    """input with the hole in grey | mask (white = keep) | result, side by side, with titles."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    masked = np.where(hole[..., None], 128, original).astype(np.uint8)
    panels = [(masked, "input (hole in grey)"), ((~hole).astype(np.uint8) * 255, "mask (white = keep)"),
              (result, "inpainted")]
    H, W = hole.shape
    fig, axes = plt.subplots(1, 3, figsize=(3 * 3.2, 3.2 * H / W + 0.5))
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def inpaint_image(image_path, mask_path, checkpoint_path, num_denoising_steps: int = 50,
                  save_result="output.png", *, seed: int = 0, device=None, eta: float = 0.0):
    """Fill the black part of ``mask_path`` in ``image_path`` with a trained ``InpaintingUNET``.

    image_path           any image PIL reads (converted to RGB), any size
    mask_path            white = keep, black = fill, thresholded at half (grey >= 128 keeps); any size:
                         resized to the image's size by nearest neighbour
    checkpoint_path      a ``train_inpainting`` checkpoint (no suffix: ".pt" appended), or an
                         already loaded ``InpaintingUNET`` (to skip reloading in a loop)
    num_denoising_steps  DDIM steps (<= the model's T); eta 0 = deterministic DDIM
    save_result          where the result goes (None: write nothing); ``<stem>_comparison.png`` is
                         written beside it (input with the hole in grey, mask, result). Neither may
                         be one of the inputs. A lossy format (.jpg) changes the saved known pixels.

    How. The image is brought to the model's size by area averaging, with the hole zeroed first
    so that the hole's old content can never leak in; at the model's size a pixel is a hole pixel
    when any hole pixel falls in its footprint (a 1-pixel stroke is not lost by the resize, as it
    would be by nearest-neighbour sampling). DDIM with the guide's algorithm fills it
    (``ddim_inpaint(known="clean", init_from_y=False)``: start from noise in the hole, paste the
    clean known pixels into each x0 estimate and each x_{t-1}). The result is resized back to the
    original size (bicubic) and used only inside the hole: every known pixel of the returned
    image is the input's own, bit for bit.

    Returns the inpainted image as an RGB ``PIL.Image.Image`` of the input's original size.
    """
    import numpy as np
    from PIL import Image

    from .checkpoint import load_model
    from .sampling import inpaint

    if isinstance(num_denoising_steps, bool) or not isinstance(num_denoising_steps, int) or num_denoising_steps < 1:
        raise ValueError(f"num_denoising_steps must be an int >= 1, got {num_denoising_steps!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
    result_path, comparison_path = _output_paths(save_result, image_path, mask_path)
    original = np.asarray(_read_image(image_path, "image_path").convert("RGB"), dtype=np.uint8)
    mask_img = _read_image(mask_path, "mask_path").convert("L")
    H, W = original.shape[:2]
    if mask_img.size != (W, H):
        mask_img = mask_img.resize((W, H), Image.Resampling.NEAREST)
    hole = np.asarray(mask_img) < 128  # (H, W) True = fill; white (>= 128) = keep

    if isinstance(checkpoint_path, nn.Module):
        model = checkpoint_path
    else:
        model = load_model(checkpoint_file(checkpoint_path), device=device)
    if not isinstance(model, InpaintingUNET):
        raise ValueError(f"checkpoint_path must hold an InpaintingUNET (a train_inpainting checkpoint), "
                         f"got a {type(model).__name__}")
    if num_denoising_steps > model.config.T:
        raise ValueError(f"num_denoising_steps must be <= the model's T ({model.config.T}), got {num_denoising_steps}")

    result = original.copy()
    if hole.any():
        S = model.config.image_size
        dev = next(model.parameters()).device
        image01 = torch.from_numpy(original.copy()).permute(2, 0, 1).float().div(255.0)[None]
        hole_t = torch.from_numpy(hole).float()[None, None]
        small = F.interpolate(image01 * (1.0 - hole_t), size=(S, S), mode="area")  # hole zeroed: no leak
        hole_small = (F.interpolate(hole_t, size=(S, S), mode="area") > 0).float()  # any hole pixel inside
        filled = inpaint(model, small.to(dev), hole_small.to(dev), steps=num_denoising_steps, eta=float(eta),
                         init_from_y=False, known="clean", seed=seed)
        filled = (filled[0].permute(1, 2, 0).cpu().numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
        filled = np.asarray(Image.fromarray(filled).resize((W, H), Image.Resampling.BICUBIC))
        result[hole] = filled[hole]  # known pixels stay the input's own
    out = Image.fromarray(result)
    if result_path is not None:
        result_path.parent.mkdir(parents=True, exist_ok=True)
        out.save(result_path)
        _save_comparison(comparison_path, original, hole, result)
    return out


# ----------------------------------------------------------------------------------------------
# evaluation against the classical baseline


def telea_inpaint(images01: torch.Tensor, hole: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """OpenCV's Telea inpainting (``cv2.INPAINT_TELEA``, Telea 2004) of (B, 3, H, W) [0, 1] images
    where ``hole`` (B, 1, H, W) is 1; returns (B, 3, H, W) in [0, 1] (uint8 levels)."""
    import cv2
    import numpy as np

    out = []
    for img, h in zip(images01.cpu(), hole.cpu().expand(images01.shape[0], 1, *images01.shape[-2:])):
        rgb = (img.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
        filled = cv2.inpaint(np.ascontiguousarray(rgb), h[0].numpy().astype(np.uint8), radius, cv2.INPAINT_TELEA)
        out.append(torch.from_numpy(filled).permute(2, 0, 1).float() / 255.0)
    return torch.stack(out)


@torch.no_grad()
def compare_with_telea(model, images01: torch.Tensor, mask_kinds=MASK_KINDS, coverage=(0.1, 0.5), steps: int = 50,
                       seed: int = 0, batch_size: int = 32) -> dict:
    """Hole-only PSNR and L1 (``evaluate.HoleMetrics``) of the model and of Telea, per mask kind,
    on the same images and the same holes.

    For each kind every image gets one hole of that kind (``random_hole``, seeded by ``seed``);
    the model fills it with the guide's DDIM (``known="clean"``, ``steps`` steps); both results
    are rounded to uint8 levels, as saved images are. Returns
    {kind: {"model": summary, "telea": summary, "samples": (gt, hole, model, telea)}} where a
    summary is ``HoleMetrics.summary()`` and the samples are the first 8 images, for plotting."""
    from .evaluate import HoleMetrics
    from .freeform_data import random_hole
    from .sampling import inpaint

    device = next(model.parameters()).device
    size = images01.shape[-1]
    results = {}
    for k, kind in enumerate(mask_kinds):
        generator = torch.Generator().manual_seed(seed * 1000 + k)
        holes = torch.stack([random_hole(kind, size, coverage, generator) for _ in range(len(images01))])
        scores = {"model": HoleMetrics(), "telea": HoleMetrics()}
        samples = None
        for start in range(0, len(images01), batch_size):
            gt, hole = images01[start:start + batch_size], holes[start:start + batch_size]
            ours = inpaint(model, gt.to(device), hole.to(device), steps=steps, init_from_y=False, known="clean",
                           seed=seed + start).cpu()
            ours = (ours * 255.0).round() / 255.0
            theirs = telea_inpaint(gt, hole)
            scores["model"].update(ours, gt, hole)
            scores["telea"].update(theirs, gt, hole)
            if samples is None:
                samples = (gt[:8], hole[:8], ours[:8], theirs[:8])
        results[kind] = {"model": scores["model"].summary(), "telea": scores["telea"].summary(), "samples": samples}
    return results
