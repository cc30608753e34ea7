"""The timestep-conditioned U-Net for 28x28 MNIST inpainting.

Read top-down: the configuration, how the input channels are assembled (x_t, then the optional
self-conditioning, coordinate and observation channels), then the network.

    x_t ──┐
    x0_prev (self_cond) ──┤ concat ─ conv_in ─ [ResBlock x n, Down] x levels ─ mid (Res, Attn, Res)
    coords (coord_conv) ──┤                     ─ [ResBlock x (n+1) with skips, Up] x levels ─ out
    y, hole (cond="mask") ┘
    t ─ SinusoidalEmbeddings ─ MLP ─ added in every ResBlock

The network predicts eps, x0 or v (``pred``); the conversion to x0 and eps is the schedule's job.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from ..blocks import Attention, Downsample, ResBlock, Upsample, group_count, time_mlp
from ..checks import check_bool, check_choice
from ..schedule import PREDICTIONS, SCHEDULES

CONDITIONS = ("none", "mask")


@dataclass
class ModelConfig:
    """Everything needed to rebuild the network and read its output. Saved in every checkpoint."""

    image_size: int = 28
    channels: int = 1
    base_channels: int = 32
    channel_mults: tuple = (1, 2, 2)  # widths 32, 64, 64 at 28x28, 14x14, 7x7
    num_res_blocks: int = 1
    num_heads: int = 4
    dropout: float = 0.0
    pred: str = "eps"  # what the network outputs: "eps", "x0" or "v"
    self_cond: bool = False  # extra input: the previous x0 estimate (Chen et al. 2022, "Analog Bits")
    coord_conv: bool = False  # extra inputs: x and y coordinates in [-1, 1] (Liu et al. 2018)
    cond: str = "none"  # "none": sees x_t only; "mask": also sees the observed image and the hole
    T: int = 1000  # number of diffusion timesteps the network was trained on
    schedule: str = "linear"

    def __post_init__(self):
        self.channel_mults = tuple(self.channel_mults)
        check_choice(self.pred, "pred", PREDICTIONS)
        check_choice(self.cond, "cond", CONDITIONS)
        check_choice(self.schedule, "schedule", SCHEDULES)
        for name in ("self_cond", "coord_conv"):
            check_bool(getattr(self, name), name)

    @property
    def in_channels(self) -> int:
        """x_t, plus x0_prev (self_cond), plus 2 coordinates (coord_conv), plus y and hole (cond="mask")."""
        c = self.channels
        c += self.channels if self.self_cond else 0
        c += 2 if self.coord_conv else 0
        c += self.channels + 1 if self.cond == "mask" else 0
        return c

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"model config has unknown keys {sorted(unknown)}")
        return cls(**d)


def coordinate_channels(batch: int, height: int, width: int, device, dtype) -> torch.Tensor:
    """Two channels holding each pixel's x and y position, scaled to [-1, 1] (CoordConv)."""
    ys = torch.linspace(-1, 1, height, device=device, dtype=dtype)
    xs = torch.linspace(-1, 1, width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y]).expand(batch, 2, height, width)


class DenoiserUNet(nn.Module):
    """U-Net predicting ``config.pred`` from (x_t, t) and the optional conditioning inputs.

    forward(x_t, t, x0_prev=None, y=None, hole=None)
        x_t      (B, C, H, W) noisy image in [-1, 1]-ish model space
        t        (B,) integer timesteps in [0, T)
        x0_prev  (B, C, H, W) previous x0 estimate, only with self_cond (zeros when absent)
        y        (B, C, H, W) observed image in [-1, 1] with the hole set to 0, only with cond="mask"
        hole     (B, 1, H, W) 1 = pixel to fill, only with cond="mask"
    """

    def __init__(self, config: ModelConfig | None = None, **overrides):
        super().__init__()
        config = config or ModelConfig(**overrides)
        self.config = config
        ch = [config.base_channels * m for m in config.channel_mults]
        time_dim = 4 * config.base_channels
        self.time_embed = time_mlp(config.base_channels, time_dim)
        self.conv_in = nn.Conv2d(config.in_channels, ch[0], 3, padding=1)

        # encoder: at each level n ResBlocks (attention at the lowest level), then a downsample
        self.down = nn.ModuleList()
        skip_widths, width = [ch[0]], ch[0]
        lowest = len(ch) - 1
        for level, c in enumerate(ch):
            for _ in range(config.num_res_blocks):
                block = nn.ModuleList([ResBlock(width, c, time_dim, config.dropout)])
                if level == lowest:
                    block.append(Attention(c, config.num_heads))
                self.down.append(block)
                width = c
                skip_widths.append(width)
            if level != lowest:
                self.down.append(nn.ModuleList([Downsample(width)]))
                skip_widths.append(width)

        self.mid = nn.ModuleList([ResBlock(width, width, time_dim, config.dropout),
                                  Attention(width, config.num_heads),
                                  ResBlock(width, width, time_dim, config.dropout)])

        # decoder: mirror image, each ResBlock eating one skip; upsample between levels
        self.up = nn.ModuleList()
        for level in reversed(range(len(ch))):
            c = ch[level]
            for _ in range(config.num_res_blocks + 1):
                block = nn.ModuleList([ResBlock(width + skip_widths.pop(), c, time_dim, config.dropout)])
                if level == lowest:
                    block.append(Attention(c, config.num_heads))
                self.up.append(block)
                width = c
            if level != 0:
                self.up.append(nn.ModuleList([Upsample(width)]))

        self.norm_out = nn.GroupNorm(group_count(width), width)
        self.conv_out = nn.Conv2d(width, config.channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def assemble_input(self, x_t, x0_prev=None, y=None, hole=None) -> torch.Tensor:
        """Concatenate x_t with the conditioning channels this configuration asks for."""
        cfg, parts = self.config, [x_t]
        B, _, H, W = x_t.shape
        if cfg.self_cond:
            parts.append(torch.zeros_like(x_t) if x0_prev is None else x0_prev)
        if cfg.coord_conv:
            parts.append(coordinate_channels(B, H, W, x_t.device, x_t.dtype))
        if cfg.cond == "mask":
            if y is None or hole is None:
                raise ValueError('a cond="mask" model needs y (the observed image) and hole')
            parts += [y, hole.to(x_t.dtype).expand(B, 1, H, W)]
        return torch.cat(parts, dim=1)

    def forward(self, x_t, t, x0_prev=None, y=None, hole=None) -> torch.Tensor:
        temb = self.time_embed(t)
        h = self.conv_in(self.assemble_input(x_t, x0_prev, y, hole))
        skips = [h]
        for block in self.down:
            if isinstance(block[0], Downsample):
                h = block[0](h)
            else:
                for layer in block:
                    h = layer(h, temb)
            skips.append(h)
        for layer in self.mid:
            h = layer(h, temb)
        for block in self.up:
            if isinstance(block[0], Upsample):
                h = block[0](h, size=skips[-1].shape[-2:])
            else:
                h = torch.cat([h, skips.pop()], dim=1)
                for layer in block:
                    h = layer(h, temb)
        return self.conv_out(torch.nn.functional.silu(self.norm_out(h)))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_mnist_model(model_config: dict) -> DenoiserUNet:
    """The network a checkpoint's ``model_config`` describes (``checkpoint.load_network`` restores its weights)."""
    return DenoiserUNet(ModelConfig.from_dict(model_config))
