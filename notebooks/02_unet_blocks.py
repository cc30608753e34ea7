# ---
# jupyter:
#   accelerator: GPU
#   jupytext:
#     cell_metadata_filter: -all
#     notebook_metadata_filter: kernelspec,accelerator,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · The U-Net, block by block
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/inpaintlib/inpaintlib/blob/main/notebooks/02_unet_blocks.ipynb)
#
# <small>The badge's address is built from `inpaintlib.notebook.REPO_URL`, the one place the repository's
# public address is written; a test checks that this copy agrees with it.</small>
#
# Notebook 01 fixed the corruption; now the network that undoes it. It reads a noisy image $x_t$ and the
# timestep $t$ and outputs $v$ (or $\epsilon$, or $x_0$). The MNIST design
# ([docs/sources.md](../docs/sources.md)) calls for a small **timestep-conditioned U-Net** for 28×28 digits. We build it up from its parts, all in
# `inpaintlib/blocks.py`, then assemble the real network (`inpaintlib/mnist/model.py: DenoiserUNet`):
#
# 1. sinusoidal timestep embeddings;
# 2. the residual block, and how the timestep gets into it;
# 3. self-attention;
# 4. the whole U-Net: a table of tensor shapes through every level, and parameter counts;
# 5. the extra input channels: coordinates (coord-conv) and the previous estimate (self-conditioning).
#
# Nothing is trained here, so the notebook runs in seconds in fast mode and in full mode alike.

# %%
# FAST = True: small sizes and the same code, a few minutes on a CPU (the README's table has the times).
# FAST = False: the full sizes, the same as fast mode (this notebook has no sizes to shrink).
# The environment variable INPAINTLIB_FAST (1 or 0), when set, overrides this line.
FAST = True

# Set-up: on Colab, fetch the repository and install it without touching Colab's torch and
# torchvision; elsewhere, use the checkout this notebook is in. Safe to run again (Run all).
import os
import subprocess
import sys

REPO_URL = "https://github.com/inpaintlib/inpaintlib"  # = inpaintlib.notebook.REPO_URL; a fork: the README says how
if "google.colab" in sys.modules:
    REPO_DIR = "/content/inpaintlib"
    if not os.path.isdir(os.path.join(REPO_DIR, ".git")):
        clone = subprocess.run(["git", "clone", "--depth", "1", REPO_URL, REPO_DIR], capture_output=True, text=True,
                               env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))
        if clone.returncode != 0:
            git_says = (clone.stderr.strip().splitlines() or ["no message"])[-1]
            raise SystemExit(f"Could not clone {REPO_URL} ({git_says}). If this notebook comes from a "
                             "fork, set REPO_URL above to the fork's address; else check the runtime's network.")
elif os.path.isfile(os.path.join("..", "inpaintlib", "__init__.py")):
    REPO_DIR = os.path.abspath("..")  # started from notebooks/ in a checkout
else:
    REPO_DIR = os.getcwd()
if REPO_DIR not in sys.path:
    sys.path.insert(0, REPO_DIR)

from inpaintlib.notebook import setup

env = setup(REPO_DIR, fast=FAST)

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from inpaintlib import (Attention, DenoiserUNet, ModelConfig, NoiseSchedule, ResBlock, SinusoidalEmbeddings,
                        count_parameters, load_test_images)
from inpaintlib.blocks import Downsample, Upsample
from inpaintlib.utils import to_model

torch.manual_seed(0)
T = 400  # the MNIST design's number of diffusion timesteps (docs/sources.md)

# %% [markdown]
# ## 1. Sinusoidal timestep embeddings
#
# The network must know *how noisy* its input is: at $t = 10$ it should touch up a few pixels, at $t = 390$ it
# must invent a digit. An integer is a poor input for a neural network, so $t$ is first spread over a vector of
# sines and cosines at geometrically spaced frequencies, the positional encoding of the Transformer
# (Vaswani et al. 2017, §3.5), used for timesteps since DDPM:
#
# $$\mathrm{emb}(t)_i = \sin(\omega_i t),\qquad \mathrm{emb}(t)_{h+i} = \cos(\omega_i t),\qquad
# \omega_i = P^{-i/h},\quad i = 0,\dots,h-1,\ \ h = d/2,\ \ P = 10000.$$
#
# Low-index components turn fast (they tell neighbouring $t$ apart), high-index ones slowly (they tell early
# from late). No weights are learned here; a two-layer MLP follows (`inpaintlib/blocks.py: time_mlp`). Below,
# the formula written out, checked against `SinusoidalEmbeddings`.

# %%
dim = 32  # the embedding width of the design's network (= base_channels)
t = torch.arange(T)
half = dim // 2
omega = 10000.0 ** (-torch.arange(half, dtype=torch.float32) / half)
ours = torch.cat([torch.sin(t[:, None] * omega), torch.cos(t[:, None] * omega)], dim=1)
library = SinusoidalEmbeddings(dim)(t)
assert torch.allclose(ours, library, atol=1e-5), (ours - library).abs().max()
print(f"embedding of {T} timesteps: shape {tuple(library.shape)}; agrees with SinusoidalEmbeddings")

unit = library / library.norm(dim=1, keepdim=True)
similarity = unit @ unit.T  # cosine similarity between the embeddings of every pair of timesteps

fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), gridspec_kw={"width_ratios": [1.4, 1, 1]})
im = axes[0].imshow(library.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
axes[0].set(title="emb(t): sines (rows 0-15), cosines (rows 16-31)", xlabel="timestep t", ylabel="component")
fig.colorbar(im, ax=axes[0])
for i in (3, 5, 8, 11):
    axes[1].plot(t, library[:, i], label=rf"$\sin(\omega_{{{i}}} t)$, period {2 * math.pi / omega[i].item():.0f}")
axes[1].set(title="Four sine components: fast ones resolve nearby t, slow ones the coarse t",
            xlabel="timestep t", ylabel="value")
axes[1].legend(fontsize=7, loc="lower left")
im = axes[2].imshow(similarity, cmap="viridis", origin="lower")
axes[2].set(title="Cosine similarity of emb(t) and emb(t')", xlabel="timestep t", ylabel="timestep t'")
fig.colorbar(im, ax=axes[2])
fig.tight_layout()
plt.show()

# %% [markdown]
# The right panel is the point: nearby timesteps get similar vectors, distant ones dissimilar, so the MLP
# that follows can treat "how noisy" as a smooth quantity.
#
# ## 2. The residual block, with the timestep injected
#
# Every block of the U-Net is a `ResBlock` (`inpaintlib/blocks.py`), the block of DDPM's network (itself from
# Wide ResNets), with $\tau$ = the MLP's time embedding:
#
# $$h = \mathrm{Conv}_{3\times3}\big(\mathrm{SiLU}(\mathrm{GN}(x))\big) + W_\tau\,\mathrm{SiLU}(\tau),\qquad
# \mathrm{out} = \mathrm{Conv}_{3\times3}\big(\mathrm{SiLU}(\mathrm{GN}(h))\big) + \mathrm{skip}(x)$$
#
# GN is GroupNorm (per image, so the batch size never matters), and `skip` is a 1×1 convolution when the
# width changes, the identity otherwise. The time enters as **one learned bias per channel**, the same at
# every pixel: it tells every feature map how much noise to expect. The second convolution starts at zero,
# so a fresh block is exactly its skip path; a freshly built deep network starts close to the identity
# and trains stably. The next cell writes the block's forward pass out and checks it, and checks the zero start.

# %%
time_dim = 128  # 4 x base_channels: the width of the time MLP's output
block = ResBlock(32, 64, time_dim=time_dim)
x = torch.randn(2, 32, 14, 14)
tau = torch.randn(2, time_dim)

fresh = ResBlock(64, 64, time_dim=time_dim)
x64 = torch.randn(2, 64, 14, 14)
assert torch.equal(fresh(x64, tau), x64), "a fresh block with equal widths is the identity"

torch.nn.init.normal_(block.conv2.weight, std=0.05)  # pretend it has trained, so every path matters
h = block.conv1(F.silu(block.norm1(x)))
time_bias = block.time_proj(F.silu(tau))  # (B, 64): one number per channel
h = h + time_bias[:, :, None, None]  # ... added at every pixel
out = block.conv2(F.silu(block.norm2(h))) + block.skip(x)
assert torch.allclose(out, block(x, tau), atol=1e-5)
print(f"ResBlock(32 -> 64): input {tuple(x.shape)} -> output {tuple(out.shape)}, skip = {block.skip}")
print("the forward pass written out agrees with ResBlock; a fresh 64 -> 64 block returns its input exactly")

# %%
net = DenoiserUNet(ModelConfig(pred="v", self_cond=True, coord_conv=True, T=T))  # the design's network
with torch.no_grad():
    tau_all = net.time_embed(torch.arange(T))  # sinusoidal embedding + MLP: (T, 128)
    shift = net.mid[0].time_proj(F.silu(tau_all))  # the per-channel bias of the first middle block

fig, ax = plt.subplots(figsize=(9, 3.4))
im = ax.imshow(shift.T, aspect="auto", cmap="RdBu", interpolation="nearest")
ax.set(title="Time injection in one ResBlock: the bias each channel receives at each t (initial weights)",
       xlabel="timestep t", ylabel="channel")
fig.colorbar(im, ax=ax, label="added to the feature map")
plt.show()

# %% [markdown]
# ## 3. Self-attention
#
# Convolutions see a 3×3 neighbourhood; filling a 12×12 hole in a 28×28 digit needs the far side of the digit
# too. At the lowest resolution (7×7) the network adds multi-head self-attention over all positions
# (`inpaintlib/blocks.py: Attention`):
#
# $$Q, K, V = W_{qkv}\,\mathrm{GN}(x),\qquad
# \mathrm{out} = x + W_o\,\mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt d}\right) V,$$
#
# per head, with $d$ = channels per head. Its cost grows with the square of the number of positions:
# $49^2$ weights per head at 7×7, but $784^2$ at 28×28, which is why it lives only at the bottom of the U.
# Like the ResBlock, the output projection $W_o$ starts at zero, so a fresh attention layer is the identity.

# %%
attn = Attention(64, num_heads=4)
torch.nn.init.normal_(attn.proj.weight, std=0.05)  # leave the zero start, so the output shows attention
feat = torch.randn(1, 64, 7, 7)

B, C, H, W = feat.shape
heads, d = attn.num_heads, C // attn.num_heads
qkv = attn.qkv(attn.norm(feat)).reshape(B, 3, heads, d, H * W)
q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # each (B, heads, d, HW)
weights = torch.softmax(torch.einsum("bhdi,bhdj->bhij", q, k) / math.sqrt(d), dim=-1)  # (B, heads, HW, HW)
mixed = torch.einsum("bhij,bhdj->bhdi", weights, v).reshape(B, C, H, W)
ours = feat + attn.proj(mixed)
assert torch.allclose(ours, attn(feat), atol=1e-5)
print(f"attention over {H * W} positions, {heads} heads of {d} channels: agrees with Attention")

query = 3 * 7 + 3  # the centre position
fig, axes = plt.subplots(1, heads, figsize=(3 * heads, 3))
for head in range(heads):
    ax = axes[head]
    im = ax.imshow(weights[0, head, query].reshape(7, 7).detach(), cmap="magma")
    ax.plot(3, 3, "c+", ms=12)
    ax.set(title=f"head {head}", xlabel="column", ylabel="row")
fig.suptitle("Where the centre position (+) looks: softmax(QK^T/sqrt(d)) of each head, random 7x7 features")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. The whole U-Net
#
# `DenoiserUNet` (`inpaintlib/mnist/model.py`) chains these pieces into a U: an encoder that halves the resolution
# twice (28 → 14 → 7) while widening the features (32 → 64 → 64), a middle (ResBlock, attention, ResBlock),
# and a decoder that mirrors the encoder. Each decoder ResBlock also eats the matching encoder activation,
# concatenated along the channels (the *skip connections* that give the U-Net its fine detail). The time
# embedding goes to every ResBlock.
#
# Rather than trust a diagram, we attach a **forward hook** to every layer of the real network and print what
# flows through it. The configuration is the design's: `pred="v"`, `self_cond=True`, `coord_conv=True`.

# %%
model = DenoiserUNet(ModelConfig(pred="v", self_cond=True, coord_conv=True, T=T)).eval()
rows, hooks = [], []


def record(name):
    def hook(module, args, output):
        rows.append((name, type(module).__name__, tuple(args[0].shape), tuple(output.shape)))
    return hook


for name, module in model.named_modules():
    if isinstance(module, (ResBlock, Attention, Downsample, Upsample)) or name in ("time_embed", "conv_in", "conv_out"):
        hooks.append(module.register_forward_hook(record(name)))

x_t = torch.randn(2, 1, 28, 28)
with torch.no_grad():
    prediction = model(x_t, torch.tensor([10, 300]), x0_prev=torch.zeros_like(x_t))
for hook in hooks:
    hook.remove()
assert prediction.shape == x_t.shape and not prediction.any()  # the last conv starts at zero: output 0

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'layer':<11} {'kind':<21} {'input':<18} {'output':<18} resolution")
for name, kind, shape_in, shape_out in rows:
    size = f"{shape_out[-1]}x{shape_out[-2]}" if len(shape_out) == 4 else "(vector)"
    print(f"{name:<11} {kind:<21} {str(shape_in):<18} {str(shape_out):<18} {size}")

# %% [markdown]
# Read it top to bottom: `conv_in` turns the 4 input channels (section 5 explains them) into 32 features at
# 28×28; each `Downsample` halves the resolution (a stride-2 convolution); the decoder's ResBlocks take
# 128 = 64 + 64, 96 = 64 + 32 or 64 = 32 + 32 channels in, because a skip was concatenated; `conv_out`
# returns one channel, the predicted $v$. A fresh network outputs exactly zero (its last convolution starts at zero): for $v$, that
# means $\hat x_0 = \sqrt{\bar\alpha_t}\,x_t$, a harmless first guess.

# %%
level_of = {28: 0, 14: 1, 7: 2}
order = [(name, shape_out) for name, kind, shape_in, shape_out in rows if len(shape_out) == 4]
fig, ax = plt.subplots(figsize=(12, 3.6))
ax.plot(range(len(order)), [level_of[s[-1]] for _, s in order], "-", color="lightgray", zorder=0)
sc = ax.scatter(range(len(order)), [level_of[s[-1]] for _, s in order], c=[s[1] for _, s in order],
                s=[3 * s[1] for _, s in order], cmap="viridis", zorder=1)
ax.set_xticks(range(len(order)), [name for name, _ in order], rotation=60, fontsize=7)
ax.set_yticks([0, 1, 2], ["28x28", "14x14", "7x7"])
ax.invert_yaxis()
ax.set(title="The U: resolution of each layer's output, in the order the data flows", xlabel="layer",
       ylabel="resolution")
fig.colorbar(sc, ax=ax, label="channels")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Parameter counts
#
# Where do the weights sit? Mostly in the lower, wider levels and in the decoder, whose ResBlocks are wider
# at their input (the skips) and one more per level than the encoder's.

# %%
# NBVAL_CHECK_OUTPUT
groups = {"time embedding MLP": [model.time_embed], "input conv": [model.conv_in], "encoder (down)": list(model.down),
          "middle (res, attn, res)": [model.mid], "decoder (up)": list(model.up),
          "output norm + conv": [model.norm_out, model.conv_out]}
counts = {name: sum(count_parameters(m) for m in mods) for name, mods in groups.items()}
total = count_parameters(model)
assert sum(counts.values()) == total
for name, n in counts.items():
    print(f"{name:<26} {n:>9,d}  {100 * n / total:5.1f}%")
print(f"{'total':<26} {total:>9,d}")
n_attn = sum(count_parameters(m) for m in model.modules() if isinstance(m, Attention))
n_res = sum(count_parameters(m) for m in model.modules() if isinstance(m, ResBlock))
print(f"of which in ResBlocks {n_res:,d}, in attention layers {n_attn:,d}")

# %%
fig, ax = plt.subplots(figsize=(8, 3))
ax.barh(list(counts), list(counts.values()), color="C0")
ax.invert_yaxis()
ax.set(title=f"Where the {total:,d} parameters of the design's U-Net are", xlabel="parameters")
for i, n in enumerate(counts.values()):
    ax.text(n, i, f" {n:,d}", va="center", fontsize=8)
ax.set_xlim(0, 1.2 * max(counts.values()))
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. What goes in: coordinates and self-conditioning
#
# The network's input is not just $x_t$. `DenoiserUNet.assemble_input` stacks, along the channels:
#
# * $x_t$, the noisy image (1 channel);
# * with `self_cond=True`: $\hat x_0^{\text{prev}}$, the network's **own previous estimate** of the clean image
#   (self-conditioning, Chen et al. 2022, "Analog Bits"). While sampling, each step hands its estimate to the
#   next (`inpaintlib/samplers/replacement.py: ddim_inpaint`); in training, half of each batch gets an estimate made by a
#   first, gradient-free pass and the other half zeros, as at the first sampling step
#   (`inpaintlib/mnist/recipe.py: diffusion_loss`). The network learns to refine rather than start over;
# * with `coord_conv=True`: two channels holding each pixel's $x$ and $y$ position in $[-1, 1]$
#   (CoordConv, Liu et al. 2018). A convolution is the same everywhere in the image; the coordinates let it
#   know *where* it is, which matters when the hole is always the centre box;
# * with `cond="mask"` (an option beyond the design): the observed image $y$ (hole set to 0) and the hole
#   itself, so the network sees the known pixels directly instead of only through $x_t$.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'self_cond':<10} {'coord_conv':<11} {'cond':<6} in_channels")
for cond in ("none", "mask"):
    for self_cond in (False, True):
        for coord_conv in (False, True):
            cfg = ModelConfig(self_cond=self_cond, coord_conv=coord_conv, cond=cond)
            print(f"{str(self_cond):<10} {str(coord_conv):<11} {cond:<6} {cfg.in_channels}")

# %%
schedule = NoiseSchedule(T, "linear")
digit = to_model(load_test_images("data", n=1)[0])
hole = torch.zeros(1, 1, 28, 28)
hole[..., 8:20, 8:20] = 1  # the design's 12x12 centre hole
t_demo = torch.tensor([150])
x_t = schedule.q_sample(digit, t_demo, torch.randn(digit.shape, generator=torch.Generator().manual_seed(0)))
x0_prev = (digit * 0.7).clamp(-1, 1)  # stands in for a previous (imperfect) estimate
y = digit * (1 - hole)

configs = {"design: self_cond + coord_conv": ModelConfig(self_cond=True, coord_conv=True),
           'with cond="mask" as well': ModelConfig(self_cond=True, coord_conv=True, cond="mask")}
names = ["x_t (t=150)", "x0_prev", "coordinate x", "coordinate y", "y (observed)", "hole"]
fig, axes = plt.subplots(len(configs), len(names), figsize=(2 * len(names), 4.6))
for row, (title, cfg) in enumerate(configs.items()):
    stacked = DenoiserUNet(cfg).assemble_input(x_t, x0_prev, y=y, hole=hole)
    assert stacked.shape[1] == cfg.in_channels
    for col in range(len(names)):
        ax = axes[row][col]
        ax.set_xticks([])
        ax.set_yticks([])
        if col < stacked.shape[1]:
            ax.imshow(stacked[0, col], cmap="gray", vmin=-1, vmax=1)
            ax.set_title(f"channel {col}: {names[col]}", fontsize=8)
        else:
            ax.axis("off")
    axes[row][0].set_ylabel(title, fontsize=8)
fig.suptitle("The input channels the U-Net sees (values in [-1, 1], black = -1)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What to take away
#
# * The timestep enters as a smooth embedding and, inside every ResBlock, as one bias per channel.
# * Residual blocks and attention both start as the identity, and the network as a whole starts by
#   predicting zero.
# * The forward hooks show the U exactly: 28×28×32 → 14×14×64 → 7×7×64 and back, with skips concatenated on
#   the way up, about 1.1 million parameters in all.
# * Coordinates and the previous estimate are extra input channels, nothing more.
#
# Next, **03_training**: teaching this network to predict $v$.

# %% [markdown]
# ## Exercises
#
# 1. Set `dim = 8` in section 1 and look at the similarity matrix again: which timesteps can the network no
#    longer tell apart?
# 2. Build `DenoiserUNet(ModelConfig(base_channels=16))` and count its parameters: how does the count scale
#    with the width, and why roughly that way?
# 3. Feed the untrained network the same $x_t$ at $t = 0$ and $t = 399$: is its output different? What does
#    that say about where the timestep enters at initialisation?
