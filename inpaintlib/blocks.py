"""The building blocks every U-Net in this package is made of.

Small pieces first: the timestep embedding, the residual block that injects it, self-attention,
and the two resampling layers. ``mnist/model.py`` (the 28x28 MNIST network) and ``freeform/model.py`` (the
128x128 networks of the architecture guide) are both assembled from these.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def group_count(channels: int, preferred: int = 8) -> int:
    """The largest group count <= ``preferred`` that divides ``channels`` (GroupNorm needs one)."""
    for g in range(min(preferred, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1


class SinusoidalEmbeddings(nn.Module):
    """Map integer timesteps t to a ``dim``-vector of sines and cosines at geometric frequencies
    (Transformer positional encoding, Vaswani et al. 2017, sec. 3.5; used for t in DDPM):
        emb[2i] = sin(t / P^(i/half)),  emb[half + i] = cos(t / P^(i/half)),  P = max_period.
    Nearby t get nearby vectors; no weights are learned here (an MLP follows it)."""

    def __init__(self, dim: int, max_period: float = 10000.0):
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even int >= 2, got {dim!r}")
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t.float().reshape(-1, 1) * self.freqs.reshape(1, -1)
        return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def time_mlp(dim: int, hidden: int) -> nn.Sequential:
    """Sinusoidal embedding followed by the two-layer MLP that makes it learnable."""
    return nn.Sequential(SinusoidalEmbeddings(dim), nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))


class ResBlock(nn.Module):
    """Residual block with the timestep added to its features:

        h = Conv(act(GroupNorm(x)))
        h = h + Linear(act(temb))            # time injection, one bias per channel
        h = Conv(act(GroupNorm(Dropout(h))))
        out = h + skip(x)                    # skip is a 1x1 conv when the width changes

    The second conv starts at zero, so a fresh block is the identity on its input."""

    def __init__(self, in_channels: int, out_channels: int | None = None, time_dim: int | None = None,
                 dropout: float = 0.0, groups: int = 8):
        super().__init__()
        out_channels = out_channels or in_channels
        self.norm1 = nn.GroupNorm(group_count(in_channels, groups), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, out_channels) if time_dim else None
        self.dropout = nn.Dropout(dropout)
        self.norm2 = nn.GroupNorm(group_count(out_channels, groups), out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        # Without autograd (sampling, the self-conditioning pass) the block's own fresh intermediates
        # are overwritten in place: the same values bit for bit, fewer large allocations.
        inplace = not torch.is_grad_enabled()
        h = self.conv1(F.silu(self.norm1(x), inplace=inplace))
        if self.time_proj is not None:
            if temb is None:
                raise ValueError("temb (the time embedding) is required by a ResBlock built with time_dim")
            shift = self.time_proj(F.silu(temb))[:, :, None, None]
            h = h.add_(shift) if inplace else h + shift
        h = self.conv2(F.silu(self.norm2(self.dropout(h)), inplace=inplace))
        return h.add_(self.skip(x)) if inplace else h + self.skip(x)


class Attention(nn.Module):
    """Multi-head self-attention over all H*W positions, with a residual connection:
        out = x + W_o softmax(Q K^T / sqrt(d)) V,  Q, K, V = 1x1 convs of GroupNorm(x)."""

    def __init__(self, channels: int, num_heads: int = 4, groups: int = 8):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(group_count(channels, groups), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        # (B, 3, heads, HW, d): per head, one row of d features per position, for Q, K and V.
        qkv = self.qkv(self.norm(x)).reshape(B, 3, self.num_heads, C // self.num_heads, H * W).transpose(-1, -2)
        if qkv.stride(-1) != 1:
            # SDPA's fused kernels (flash attention on the CPU and on CUDA) need unit stride along d, as
            # a channels_last input has it; from NCHW that takes a copy, and without one SDPA falls back
            # to its unfused path, which wrote the full HW x HW matrix: 5x slower at 64x64 on a CPU.
            qkv = qkv.contiguous()
        q, k, v = qkv.unbind(1)
        h = F.scaled_dot_product_attention(q, k, v)
        h = h.transpose(-1, -2).reshape(B, C, H, W)
        return x + self.proj(h)


class Downsample(nn.Module):
    """Halve H and W (rounding up: 7 -> 4) with a stride-2 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Resize to ``size`` (the matching encoder level's H, W) by nearest neighbour, then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))
