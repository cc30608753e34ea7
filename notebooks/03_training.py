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
# # 03 · Training the inpainting diffusion model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/inpaintlib/inpaintlib/blob/main/notebooks/03_training.ipynb)
#
# <small>The badge's address is built from `inpaintlib.notebook.REPO_URL`, the one place the repository's
# public address is written; a test checks that this copy agrees with it.</small>
#
# Notebook 01 built the corruption, notebook 02 the network. Here the network learns to undo the corruption,
# with the design document's training command, called from a cell: `train(...)` (`inpaintlib/mnist/recipe.py`, on the shared loop of `inpaintlib/trainer.py`).
#
# 1. the loss, written out and checked against the library's;
# 2. the training run: the loss curve and the sample panels it writes;
# 3. what each knob of the command does, each with a short demonstration: P2 weighting, `hole_weight`,
#    EMA, warmup, gradient accumulation.
#
# **Fast mode.** With `INPAINTLIB_FAST=1` the run is a smoke test of the same code: a few dozen optimizer
# steps on a small subset, so its samples are still noise. On a Colab GPU, without fast mode, the cell runs
# the design's full 25 epochs; notebooks 04 and 05 then use your model. Until then they use the model
# shipped with the package.

# %%
# Set-up: on Colab, fetch the repository and install it without touching Colab's torch and
# torchvision; elsewhere, use the checkout this notebook is in. Safe to run again (Run all).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    REPO_DIR = "/content/inpaintlib"
    REPO_URL = "https://github.com/inpaintlib/inpaintlib"  # = inpaintlib.notebook.REPO_URL (a test checks)
    if not os.path.isdir(os.path.join(REPO_DIR, ".git")):
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, REPO_DIR], check=True)
elif os.path.isfile(os.path.join("..", "inpaintlib", "__init__.py")):
    REPO_DIR = os.path.abspath("..")  # started from notebooks/ in a checkout
else:
    REPO_DIR = os.getcwd()
if REPO_DIR not in sys.path:
    sys.path.insert(0, REPO_DIR)

from inpaintlib.notebook import setup

env = setup(REPO_DIR)

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import Image, display

from inpaintlib import (DenoiserUNet, HoleMetrics, NoiseSchedule, TrainConfig, center_hole, inpaint, load_model,
                        load_test_images, to_model, train)
from inpaintlib.notebook import TRAIN_SIZES, sizes
from inpaintlib.mnist.recipe import diffusion_loss
from inpaintlib.trainer import ema_decay_at, lr_at, update_ema

S = sizes(**TRAIN_SIZES)  # the run's sizes: the design's in full mode, a smoke run in fast mode
print(vars(S))

# %% [markdown]
# ## 1. The loss
#
# One optimizer step is DDPM's **Algorithm 1** with this project's choices. For a batch of digits $x_0$:
#
# $$t\sim\mathcal U\{0,\dots,T-1\},\quad \epsilon\sim\mathcal N(0,I),\quad
# x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon \quad\text{(DDPM eq. 4)}$$
#
# $$\mathcal L = \operatorname{mean}\Big[\,w_t\; w_{\text{pix}}\;\big(\hat v_\theta(x_t, t) - v\big)^2\Big],\qquad
# v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0,$$
#
# $$w_t = \big(k + \mathrm{SNR}_t\big)^{-\gamma}\ \ \text{(P2 weighting)},\qquad
# w_{\text{pix}} = \begin{cases}\texttt{hole\_weight} & \text{inside the hole}\\ 1 & \text{outside.}\end{cases}$$
#
# With $w_t = w_{\text{pix}} = 1$ and $\epsilon$ as the target this is DDPM's $L_\text{simple}$, **eq. (14)**.
# The library computes it in `inpaintlib/mnist/recipe.py: diffusion_loss`. Below we write it out for one batch and
# check that we get the library's number, drawing $t$ and $\epsilon$ from a generator seeded the same way.
# (Self-conditioning, which adds a gradient-free first pass for half the batch, is switched off for this
# check; notebook 02 explains it.)

# %%
cfg = TrainConfig(self_cond=False, coord_conv=True, pred="v", steps=400, center_box=12, hole_weight=5.0,
                  p2_k=1.0, p2_gamma=1.0)
schedule = NoiseSchedule(cfg.steps, cfg.schedule)
net = DenoiserUNet(cfg.model_config())
torch.nn.init.normal_(net.conv_out.weight, std=0.02)  # a fresh network outputs 0; give it something to say

x0 = to_model(load_test_images("data", n=8)[0])
hole = center_hole(28, cfg.center_box).expand(8, 1, 28, 28)
library_loss = diffusion_loss(net, schedule, cfg, x0, hole, torch.Generator().manual_seed(0))

gen = torch.Generator().manual_seed(0)  # the same draws, in the same order, as diffusion_loss
t = torch.randint(0, schedule.T, (8,), generator=gen)
eps = torch.randn(x0.shape, generator=gen)
abar = schedule.alpha_bar[t].reshape(-1, 1, 1, 1)
x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
v = abar.sqrt() * eps - (1 - abar).sqrt() * x0
w_t = 1.0 / (cfg.p2_k + abar / (1 - abar)) ** cfg.p2_gamma
w_pix = torch.where(hole.bool(), cfg.hole_weight, 1.0)
v_hat = net(x_t, t, None, x0 * (1 - hole), hole)
our_loss = (w_t * w_pix * (v_hat - v) ** 2).mean()
assert torch.allclose(our_loss, library_loss, rtol=1e-5), (our_loss, library_loss)
print(f"loss written out: {our_loss.item():.6f}   inpaintlib diffusion_loss: {library_loss.item():.6f}")

# %% [markdown]
# ## 2. The training run
#
# The design document's command, argument by argument. The size arguments come from `S`, printed above: in
# full mode they are the design's values (`epochs=25`, `batch_size=128`, `sample_every=400`,
# `sample_steps=50`, `warmup_steps=1000`, no caps, `out_dir="outputs/inpaint"`). Fast mode shrinks them,
# caps the run with `max_steps` and `train_subset`, and writes to `outputs/inpaint_fast/`, so that a smoke
# run is never mistaken for your trained model (notebooks 04 and 05 look for `outputs/inpaint/last.pt`).
# Nothing else changes between the modes.
#
# `resume=True` makes the cell safe to run again: it continues `last.pt` in `out_dir` if there is one (or
# finds it already finished), instead of refusing to overwrite it. Change an argument that alters the
# model or the data and it stops with a message; pass `overwrite=True` or another `out_dir` then.
# The library picks the GPU when there is one (`device=None`).

# %%
result = train(
    epochs=S.epochs, batch_size=S.batch_size, lr=2e-4, steps=400, sample_every=S.sample_every,
    sample_steps=S.sample_steps, center_box=12, dc_repeats=2, dc_fixed_z=True, pred="v", p2_k=1.0,
    p2_gamma=1.0, hole_weight=5.0, seed=42, clip_grad=1.0, ema_decay=0.999, warmup_steps=S.warmup_steps,
    self_cond=True, eta=0.0, coord_conv=True, grad_accum=1,
    # beyond the design: where files go, and the fast-mode caps (None in full mode)
    out_dir=S.out_dir, max_steps=S.max_steps, train_subset=S.train_subset, resume=True,
)
print(f"{result.step} optimizer steps in {result.seconds:.0f} s; final loss {result.losses[-1]:.4f}")
print(f"wrote {result.checkpoint}, {result.history_path} and {len(result.panels) + 1} panel(s) in {result.out_dir}")

# %% [markdown]
# ### The loss curve
#
# The loss is noisy from step to step, because every batch draws fresh timesteps and the loss depends
# strongly on $t$; a running mean shows the trend. The learning rate rises linearly over the warmup.

# %%
steps = [row["step"] for row in result.history]
losses = torch.tensor(result.losses)
window = max(1, len(losses) // 20)
smooth = torch.nn.functional.avg_pool1d(losses[None, None], window, stride=1)[0, 0]

fig, ax = plt.subplots(figsize=(10, 3.8))
ax.plot(steps, losses, color="C0", alpha=0.3, label="loss per optimizer step")
ax.plot(steps[window - 1:], smooth, color="C0", label=f"running mean over {window} steps")
ax.set(title=f"Training loss ({result.step} steps, batch {S.batch_size})", xlabel="optimizer step",
       ylabel="weighted v-loss", yscale="log")
ax.grid(alpha=0.3)
ax2 = ax.twinx()
ax2.plot(steps, [row["lr"] for row in result.history], color="C1", label="learning rate")
ax2.set_ylabel("learning rate", color="C1")
fig.legend(loc="upper right", bbox_to_anchor=(0.88, 0.88), fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### The panels
#
# Every `sample_every` optimizer steps, and at the end, `train` inpaints the centre hole of the first 8 test
# digits with the EMA weights (rows: masked input, inpainted, ground truth), using DDIM with mask
# consistency (notebook 04 takes that sampler apart). In fast mode expect noise in the hole: a few dozen
# steps teach the network very little.

# %%
for path in [*result.panels[:: max(1, len(result.panels) // 3)][:3], result.panel_final]:
    print(path)
    display(Image(filename=str(path)))

# %% [markdown]
# ## 3. The knobs, one at a time
#
# ### P2 weighting: `p2_k`, `p2_gamma`
#
# Perception-prioritised weighting (Choi et al. 2022) multiplies the loss at step $t$ by
# $w_t = (k + \mathrm{SNR}_t)^{-\gamma}$. At small $t$ (high SNR) the network only removes noise nobody would
# see; P2 turns those steps down and leaves the middle steps, where the digit's shape is decided, at full
# weight. `p2_gamma=0` switches it off.
#
# With $v$ as the target the design's choice $k = \gamma = 1$ has a neat reading. Since
# $\hat x_0 - x_0 = -\sqrt{1-\bar\alpha_t}\,(\hat v - v)$ and $1 + \mathrm{SNR}_t = 1/(1-\bar\alpha_t)$,
#
# $$\frac{(\hat v - v)^2}{1 + \mathrm{SNR}_t} = (\hat x_0 - x_0)^2:$$
#
# the weighted $v$-loss is exactly the squared error of the predicted clean image. The cell plots the weights
# and checks that identity.

# %%
t_all = torch.arange(cfg.steps)
snr = schedule.snr(t_all).flatten()
fig, ax = plt.subplots(figsize=(8, 3.6))
for gamma in (0.0, 0.5, 1.0):
    label = f"p2_gamma={gamma}, p2_k=1" + ("  (the design)" if gamma == 1 else "")
    ax.plot(t_all, 1.0 / (1.0 + snr) ** gamma, label=label)
ax.set(title="P2 weight w_t = (k + SNR_t)^(-gamma)", xlabel="timestep t", ylabel="loss weight w_t", yscale="log")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

v_hat = v + 0.1 * torch.randn(v.shape, generator=gen)  # any prediction will do
x0_hat = schedule.x0_from_v(x_t, t, v_hat)
w = 1.0 / (1.0 + schedule.snr(t))
assert torch.allclose(w * (v_hat - v) ** 2, (x0_hat - x0) ** 2, atol=1e-5)
print("checked: (v_hat - v)^2 / (1 + SNR_t) equals (x0_hat - x0)^2 for every pixel")

# %% [markdown]
# ### `hole_weight`: where the loss looks
#
# The design trains with the fixed 12×12 centre hole, and its loss counts an error inside the hole
# `hole_weight=5` times. Of the 784 pixels only 144 (18%) are in the hole; with the weight they carry more
# than half of the loss. (The network does not see the hole: with `cond="none"` only the loss knows about it.)

# %%
hole_map = center_hole(28, 12)
w_pix_map = 1.0 + (5.0 - 1.0) * hole_map  # as in diffusion_loss
share = (w_pix_map * hole_map).sum() / w_pix_map.sum()
print(f"share of the loss weight inside the hole: {hole_map.mean().item():.0%} with hole_weight=1, "
      f"{share.item():.0%} with hole_weight=5")

fig, ax = plt.subplots(figsize=(4, 3.6))
im = ax.imshow(w_pix_map[0, 0], cmap="viridis")
ax.set(title="Per-pixel loss weight, hole_weight=5", xlabel="column", ylabel="row")
fig.colorbar(im, ax=ax, label="w_pix")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### EMA: `ema_decay`
#
# The weights that draw the panels are not the trained weights themselves but their exponential moving
# average, updated after every optimizer step (`inpaintlib/trainer.py: update_ema`):
#
# $$\theta_\text{EMA} \leftarrow d\,\theta_\text{EMA} + (1-d)\,\theta, \qquad
# d = \min\!\Big(\texttt{ema\_decay},\ \frac{1+s}{10+s}\Big)\ \text{at step } s \ (\texttt{ema\_decay\_at}).$$
#
# The optimizer's weights jitter around a good region; the average sits in its middle. The second term is a warm-up:
# early on the average spans roughly the steps seen so far instead of dragging the random initial weights
# along for thousands of steps. Below, a jittery one-parameter "training run", averaged by the library's
# `update_ema` and by the formula written out.

# %%
gen_demo = torch.Generator().manual_seed(0)
n_steps = 3000
target_path = 1.0 - torch.exp(-torch.arange(n_steps) / 600.0)  # where training is heading
raw = target_path + 0.15 * torch.randn(n_steps, generator=gen_demo)  # what the optimizer's weight does
ema_lib = [raw[:1].clone()]
ours, ema_trace, ours_trace = raw[0].item(), [], []
for s in range(n_steps):
    param = raw[s:s + 1]
    d = ema_decay_at(s, 0.999)
    update_ema(ema_lib, [param], d)
    ours = d * ours + (1 - d) * param.item()
    ema_trace.append(ema_lib[0].item())
    ours_trace.append(ours)
assert torch.allclose(torch.tensor(ema_trace), torch.tensor(ours_trace), atol=1e-5)

fig, ax = plt.subplots(figsize=(9, 3.6))
ax.plot(raw, color="lightgray", label="raw weight (what the optimizer holds)")
ax.plot(ema_trace, color="C0", label="EMA, ema_decay=0.999 with warm-up")
ax.plot(target_path, "k--", lw=1, label="the trend")
ax.set(title="EMA of a noisy training trajectory", xlabel="optimizer step", ylabel="parameter value")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The checkpoint keeps both sets of weights; `load_model(path)` takes the EMA ones unless asked for
# `weights="model"`. Here are both on the same 8 test digits, with the same seed, from the run above (in fast
# mode both are still poor; on a full run the EMA row is usually the cleaner one).

# %%
digits = load_test_images("data", n=8)[0]
hole8 = center_hole(28, 12)
rows, titles = [digits * (1 - hole8) + 0.5 * hole8], ["masked"]
for weights in ("model", "ema"):
    net_w = load_model(result.checkpoint, weights=weights)
    filled = inpaint(net_w, digits, hole8, steps=S.sample_steps, dc_repeats=2, seed=0)
    metrics = HoleMetrics()
    metrics.update(filled, digits, hole8)
    rows.append(filled)
    titles.append(f"{weights} weights\nPSNR_hole {metrics.summary()['psnr_hole']:.1f} dB")
rows.append(digits)
titles.append("ground truth")

fig, axes = plt.subplots(len(rows), 8, figsize=(10, 1.4 * len(rows)))
for r, images in enumerate(rows):
    for c in range(8):
        axes[r][c].imshow(images[c, 0], cmap="gray", vmin=0, vmax=1)
        axes[r][c].set_xticks([])
        axes[r][c].set_yticks([])
    axes[r][0].set_ylabel(titles[r], fontsize=8)
fig.suptitle(f"Raw vs EMA weights after {result.step} steps ({S.sample_steps} DDIM steps, dc_repeats=2, seed 0)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Warmup: `warmup_steps`
#
# Adam's first updates are made with poor estimates of the gradients' scale; a large learning rate at that
# moment can throw a fresh network somewhere it never recovers from. The learning rate therefore rises
# linearly over the first `warmup_steps` optimizer steps, then stays at `lr` (`inpaintlib/trainer.py: lr_at`):
#
# $$\eta_s = \texttt{lr}\cdot\min\!\Big(1,\ \frac{s+1}{\texttt{warmup\_steps}}\Big).$$

# %%
design = TrainConfig()  # the design's defaults: lr=2e-4, warmup_steps=1000
s_axis = list(range(0, 3000))
library_lr = [lr_at(s, design) for s in s_axis]
our_lr = [design.lr * min(1.0, (s + 1) / design.warmup_steps) for s in s_axis]
assert all(abs(a - b) < 1e-12 for a, b in zip(library_lr, our_lr))

fig, ax = plt.subplots(figsize=(8, 3.4))
ax.plot(s_axis, library_lr, label=f"warmup_steps={design.warmup_steps} (the design)")
ax.plot(s_axis, [lr_at(s, TrainConfig(warmup_steps=S.warmup_steps)) for s in s_axis], "--",
        label=f"warmup_steps={S.warmup_steps} (this run)")
ax.set(title="Learning-rate schedule", xlabel="optimizer step", ylabel="learning rate")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Gradient accumulation: `grad_accum`
#
# With `grad_accum=k`, each optimizer step adds up the gradients of $k$ micro-batches of `batch_size`, each
# loss divided by $k$, before stepping: the step is that of one batch of $k\cdot$`batch_size`, in the memory of
# one micro-batch. It is exact here because GroupNorm normalises each image on its own (BatchNorm's batch
# statistics would break it) and the loss is a mean over equal micro-batches. The check: the gradient of
# one batch of 8 equals the accumulated gradients of two batches of 4.

# %%
small = DenoiserUNet(TrainConfig(base_channels=8, self_cond=False).model_config())
torch.nn.init.normal_(small.conv_out.weight, std=0.02)
t8 = torch.randint(0, 400, (8,), generator=gen)
x_t8 = schedule.q_sample(x0, t8, torch.randn(x0.shape, generator=gen))
target8 = torch.randn(x0.shape, generator=gen)


def loss_of(idx):
    return ((small(x_t8[idx], t8[idx]) - target8[idx]) ** 2).mean()


small.zero_grad()
loss_of(slice(0, 8)).backward()
whole = [p.grad.clone() for p in small.parameters()]
small.zero_grad()
for micro in (slice(0, 4), slice(4, 8)):  # grad_accum=2: two micro-batches, each loss / 2
    (loss_of(micro) / 2).backward()
accumulated = [p.grad.clone() for p in small.parameters()]
worst = max((a - b).abs().max().item() for a, b in zip(whole, accumulated))
assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(whole, accumulated))
print(f"gradients of one batch of 8 vs two accumulated batches of 4: largest difference {worst:.1e}")

# %% [markdown]
# ### The rest of the command
#
# * `steps=400`: the number of diffusion timesteps $T$ (notebook 01); `pred="v"`: the target (notebook 01).
# * `self_cond=True`, `coord_conv=True`: the extra input channels (notebook 02).
# * `clip_grad=1.0`: the gradient's norm is clipped to 1 before each step, a guard against rare huge batches.
# * `sample_every`, `sample_steps`, `dc_repeats`, `dc_fixed_z`, `eta`: only the panels use them; they are
#   the sampler's settings, and notebook 04 is about exactly those.
# * `seed=42`: the same arguments give the same run (weights, batch order, noise draws).
#
# Next, **04_ddim_inpainting**: the sampler that turns the trained network into filled holes.
