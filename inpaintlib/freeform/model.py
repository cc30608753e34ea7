"""The architecture guide's free-form network: its configuration and presets, the guide's
``DDPM_Scheduler`` (a name for the shared linear ``NoiseSchedule``), the network pieces (``UnetLayer``, the
mask-conditioned input) and the networks (``UNET``, ``InpaintingUNET``). ``SinusoidalEmbeddings``, ``ResBlock``
and ``Attention`` are the shared ones of ``inpaintlib/blocks.py``.

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

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import Attention, ResBlock, group_count, time_mlp
from ..checks import check_choice, check_number, is_int
from ..schedule import PREDICTIONS, SCHEDULES, NoiseSchedule

NETWORK_CONDITIONS = ("mask", "none")  # "mask": InpaintingUNET; "none": the plain UNET
BASES = ("none", "harmonic", "mmse")  # what an InpaintingUNET's hole is diffused relative to (FreeformConfig.base)
OBJECTIVES = ("diffusion", "mmse")  # what an InpaintingUNET is trained for (FreeformConfig.objective)


# ----------------------------------------------------------------------------------------------
# configuration


@dataclass
class FreeformConfig:
    """Everything needed to rebuild a free-form network and read its output; saved in checkpoints.

    ``widths`` is the guide's "Channels" list, one entry per ``UnetLayer``: the first half are the
    encoder layers (each halves H and W), the second half the decoder layers (each doubles them).
    ``channels`` is the number of image channels (3), as in the MNIST ``ModelConfig``, so the
    shared sampler (``samplers.inpaint``) reads both configurations alike."""

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
    base: str = "none"  # "harmonic": the network diffuses the hole's residual from the harmonic fill (InpaintingUNET);
    # "mmse": from the fill of a frozen regression U-Net of the same architecture held inside it (base_config)
    # "mmse": not a diffusion model but a regression U-Net of the same architecture, trained with MSE on the
    # hole from an input that carries nothing in it (t = T - 1, hole zeroed): its one output is E[x_0 | known],
    # the posterior mean, the reference every sampler's PSNR is compared with (freeform.baseline.mmse_fill)
    objective: str = "diffusion"
    # the diffusion runs at snr_scale times the schedule's SNR (NoiseSchedule's snr_scale): for a residual far
    # smaller than the noise's unit scale (base="mmse"), the same as diffusing the residual scaled by sqrt(snr_scale)
    snr_scale: float = 1.0

    def __post_init__(self):
        self.widths, self.attentions, self.upscales = tuple(self.widths), tuple(self.attentions), tuple(self.upscales)
        n = len(self.widths)
        if n < 2 or n % 2 or not all(is_int(w) and w >= 2 for w in self.widths):
            raise ValueError(f"widths must be an even number (>= 2) of ints >= 2, got {self.widths!r}")
        self.widths = tuple(map(int, self.widths))
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
        if not is_int(self.image_size) or self.image_size % factor or self.image_size < factor:
            raise ValueError(f"image_size must be a positive multiple of {factor} (2 ** encoder layers), "
                             f"got {self.image_size!r}")
        self.image_size = int(self.image_size)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        check_choice(self.pred, "pred", PREDICTIONS)
        check_choice(self.cond, "cond", NETWORK_CONDITIONS)
        check_choice(self.schedule, "schedule", SCHEDULES)
        check_choice(self.base, "base", BASES)
        check_choice(self.objective, "objective", OBJECTIVES)
        check_number(self.snr_scale, "snr_scale", 0, low_open=True)
        self.snr_scale = float(self.snr_scale)
        if self.objective == "mmse" and (self.pred != "x0" or self.cond != "mask"):
            raise ValueError(f"objective='mmse' needs pred='x0' and cond='mask' (a regression of the hole on the "
                             f"known pixels), got pred={self.pred!r}, cond={self.cond!r}")
        if self.base != "none" and self.cond != "mask":
            raise ValueError(f"base={self.base!r} needs cond='mask' (the fill is computed from the known pixels)")
        if self.base == "mmse" and self.objective == "mmse":
            raise ValueError("base='mmse' is for a diffusion model on top of a regression U-Net; objective='mmse' "
                             "is that regression U-Net itself (give it base='none' or 'harmonic')")

    def base_config(self) -> "FreeformConfig":
        """base="mmse": the configuration of the frozen regression U-Net whose fill the hole's residual
        is taken from: this network's architecture, trained as ``objective="mmse"`` (pred="x0") on the
        harmonic fill's residual, as ``pretrained("patterns-mmse")`` is."""
        if self.base != "mmse":
            raise ValueError(f"base_config is for base='mmse', this configuration has base={self.base!r}")
        return FreeformConfig.from_dict(dict(self.to_dict(), base="harmonic", objective="mmse", pred="x0",
                                             snr_scale=1.0))

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
    check_choice(preset, "preset", PRESETS)
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

    def time_input(self, t: torch.Tensor) -> torch.Tensor:
        """The time embedding of step ``t``. With ``snr_scale`` c != 1 the network is told the noise level
        by the step of the unshifted schedule with the same SNR (log SNR_t + log c, interpolated, as a
        real number), so a network trained at c = 1 computes the same function at c's steps."""
        if self.config.snr_scale == 1.0:
            return self.time_embed(t)
        table = getattr(self, "_time_table", None)
        if table is None or table.device != t.device:
            plain = NoiseSchedule(self.config.T, self.config.schedule).alpha_bar.double()
            shifted = NoiseSchedule.of(self.config).alpha_bar.double()
            lam = (plain / (1 - plain)).log()  # decreasing in the step
            want = (shifted / (1 - shifted)).log()
            k = torch.searchsorted(-lam, -want).clamp(1, len(lam) - 1)  # lam[k - 1] >= want > lam[k]
            frac = (lam[k - 1] - want) / (lam[k - 1] - lam[k])
            table = self._time_table = (k - 1 + frac).float().to(t.device)  # extrapolated past either end
        return self.time_embed(table[t.long().clamp(0, len(table) - 1)])

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
        return self.unet(self.input_stage(x_t), self.time_input(t))


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
        model(x_t, t, y=y, hole=hole)  the shared sampler's form (``reverse.Denoiser``): the
                                       input is assembled as x_in = (1 - hole) * y + hole * x_t,
                                       so whatever x_t holds at known pixels is never seen
    See the module docstring for why the input is not the guide's literal ``x_t * mask``."""

    expected_cond = "mask"

    def __init__(self, config: FreeformConfig | None = None, preset: str | None = None, **overrides):
        super().__init__(config, preset, **overrides)
        if self.config.base == "mmse":  # the regression U-Net the residual is taken from: frozen, saved with it
            self.base_net = InpaintingUNET(self.config.base_config()).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> "InpaintingUNET":
        super().train(mode)
        if self.config.base == "mmse":
            self.base_net.eval()  # frozen: never in training mode (dropout off)
        return self

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
        if self.config.base == "none":
            return self.unet(self.input_stage(x, mask), self.time_input(t))
        return self._residual_forward(x, t, mask)

    def base_fill(self, x_in: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """B = the fill of the hole from the known pixels of ``x_in`` (known pixels: their own values):
        the harmonic fill (base="harmonic"), or the frozen regression U-Net's estimate of E[x_0 | known]
        (base="mmse", clamped to [-1, 1]). The last one is kept: a sampler calls the network with the
        same observation at every step, so it is computed once per sampling run."""
        from .baseline import harmonic_fill

        known = keep * x_in
        cached = getattr(self, "_base_cache", None)
        if cached is not None and cached[0].shape == known.shape and torch.equal(cached[0], known) \
                and torch.equal(cached[1], keep):
            return cached[2]
        if self.config.base == "mmse":
            with torch.no_grad():
                t_last = torch.full((known.shape[0],), self.config.T - 1, dtype=torch.long, device=known.device)
                mean = self.base_net(torch.zeros_like(known), t_last, y=known, hole=1.0 - keep).float()
            fill = keep * known + (1.0 - keep) * mean.clamp(-1.0, 1.0).to(known.dtype)
        else:
            fill = harmonic_fill(known, keep)
        self._base_cache = (known.detach(), keep.detach(), fill.detach()) if not torch.is_grad_enabled() else None
        return fill

    def _residual_forward(self, x: torch.Tensor, t: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """base="harmonic" or "mmse". With B the base fill and r = x_0 - B the residual, x_t of the image and
        r_t of the residual differ by a known term (same eps): r_t = x_t - sqrt(abar_t) B. The U-Net sees
        the clean known pixels and r_t in the hole and predicts the residual's target; it is returned as
        the image's target, so the samplers and the loss need not know:
            eps:  eps                       (the same noise)
            x0:   x0_r + B
            v:    v_r - sqrt(1 - abar_t) B   (v = sqrt(abar) eps - sqrt(1 - abar) x0)
        Where the truth is smooth, r is near 0 and the network has little to get wrong."""
        base = self.base_fill(x, keep)
        if getattr(self, "_schedule", None) is None or self._schedule.alpha_bar.device != x.device:
            self._schedule = NoiseSchedule.of(self.config).to(x.device)
        abar = self._schedule.abar(t).to(x.dtype).view(-1, 1, 1, 1)
        hole = 1.0 - keep
        r_in = keep * x + hole * (x - abar.sqrt() * base)
        out = self.unet(self.input_stage(r_in, keep), self.time_input(t))
        if self.config.pred == "x0":
            return out + base
        if self.config.pred == "v":
            return out - (1.0 - abar).sqrt() * base
        return out


def build_freeform_model(model_config: dict) -> UNET:
    """The network a checkpoint's ``model_config`` describes (``InpaintingUNET`` for cond="mask")."""
    cfg = FreeformConfig.from_dict(model_config)
    return InpaintingUNET(cfg) if cfg.cond == "mask" else UNET(cfg)
