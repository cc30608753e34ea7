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
# with the MNIST design's training command ([docs/sources.md](../docs/sources.md)), called from a cell:
# `train(...)` (`inpaintlib/mnist/recipe.py`, on the shared loop of `inpaintlib/trainer.py`).
#
# 1. the loss, written out and checked against the library's;
# 2. the training run: the loss curve and the sample panels it writes;
# 3. what each knob of the command does, each with a short demonstration: P2 weighting, `hole_weight`,
#    EMA, warmup, gradient accumulation.
#
# **Fast mode.** With `FAST = True` in the first cell (the default) the run is a smoke test of the same
# code: a few dozen optimizer steps on a small subset, so its samples are still noise. Section 2 therefore
# also shows the **shipped model's recorded run**: the loss history of the run that trained
# `pretrained("mnist")` with these arguments, and that model's fills. With `FAST = False` the cell trains
# the design's full 25 epochs into `outputs/inpaint/`; to inpaint with your model in notebooks 04 and 05,
# set `CKPT = "outputs/inpaint/last.pt"` there (they use the shipped model).

# %%
# FAST = True: small sizes and the same code, a few minutes on a CPU (the README's table has the times).
# FAST = False: the full sizes, the design's 25 epochs (11,700 training steps): hours on a CPU, unmeasured on a GPU.
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
import csv
import dataclasses

import matplotlib.pyplot as plt
import torch
from IPython.display import Image, display

from inpaintlib import (DESIGN, DenoiserUNet, HoleMetrics, NoiseSchedule, TrainConfig, center_hole, inpaint,
                        load_model, load_test_images, pretrained, train)
from inpaintlib.mnist.recipe import diffusion_loss
from inpaintlib.notebook import FAST_CKPT, LEARNER_CKPT, sizes
from inpaintlib.trainer import ema_decay_at, lr_at, update_ema
from inpaintlib.utils import to_model

# the run's sizes: full = the design's (TrainConfig's defaults), fast = a smoke run of the same code,
# written to its own folder so that it is never mistaken for a trained model
S = sizes(fast=dict(epochs=1, batch_size=16, sample_every=20, sample_steps=10, warmup_steps=20, max_steps=40,
                    train_subset=1024, out_dir=str(FAST_CKPT.parent)),
          full=dict(epochs=25, batch_size=128, sample_every=400, sample_steps=50, warmup_steps=1000, max_steps=None,
                    train_subset=None, out_dir=str(LEARNER_CKPT.parent)))
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
cfg = TrainConfig(self_cond=False)  # the design's configuration, self-conditioning off for this check
schedule = NoiseSchedule(cfg.timesteps, cfg.schedule)
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
# The design's command is `TrainConfig`'s defaults, written once in `inpaintlib/mnist/recipe.py` and
# printed here argument by argument (`timesteps` is the design's `steps=400`, the number of diffusion
# timesteps $T$; `train(steps=400)` still works). The size arguments come from `S`, printed above: in full
# mode they are the design's values (`epochs=25`, `batch_size=128`, `sample_every=400`, `sample_steps=50`,
# `warmup_steps=1000`, no caps, `out_dir="outputs/inpaint"`). Fast mode shrinks them, caps the run with
# `max_steps` and `train_subset`, and writes to `outputs/inpaint_fast/`. Nothing else changes between the modes.
#
# `resume=True` makes the cell safe to run again: it continues `last.pt` in `out_dir` if there is one (or
# finds it already finished), instead of refusing to overwrite it. Change an argument that alters the
# model or the data and it stops with a message; pass `overwrite=True` or another `out_dir` then.
# The library picks the GPU when there is one (`device=None`).

# %%
design = dataclasses.asdict(TrainConfig())  # the design's command: TrainConfig's defaults
print(", ".join(f"{name}={value!r}" for name, value in design.items()))
# the sizes from S (in fast mode: smaller, capped, and written to outputs/inpaint_fast/)
result = train(**{**design, **vars(S)}, resume=True, progress=False)
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
# ### The shipped model's recorded run
#
# What the same command gives when it runs to the end: `pretrained("mnist")` was trained with exactly these
# arguments, the design's 25 epochs (11,700 optimizer steps of batch 128) on a CPU. Its loss history is kept in
# `runs/mnist_default/history.csv` for steps 4,501 to 11,700 (the history of the earlier steps was not kept; the
# model card, `inpaintlib/weights/mnist_default.md`, tells the run's story). Below: that recorded curve, then the
# shipped model's fills of the same 8 test digits with the design's sampler (`DESIGN`: replacement, 50 steps,
# `dc_repeats=2`). These are **not** this notebook's run: they are read from the repository.

# %%
with open("runs/mnist_default/history.csv") as f:
    recorded = [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]
rec_steps = torch.tensor([s for s, _ in recorded])
rec_loss = torch.tensor([l for _, l in recorded])
rec_window = 100
rec_smooth = torch.nn.functional.avg_pool1d(rec_loss[None, None], rec_window, stride=1)[0, 0]

shipped = load_model(pretrained("mnist"))
digits8 = load_test_images("data", n=8)[0]
box8 = center_hole(28, 12)
design_sampler = dict(DESIGN)
shipped_fills = inpaint(shipped, digits8, box8, sampler=design_sampler.pop("sampler"), seed=0, **design_sampler)
shipped_metrics = HoleMetrics()
shipped_metrics.update(shipped_fills, digits8, box8)

fig = plt.figure(figsize=(12, 6.4))
ax = fig.add_subplot(5, 1, (1, 2))
ax.plot(rec_steps, rec_loss, color="C0", alpha=0.25, label="loss per optimizer step (recorded)")
ax.plot(rec_steps[rec_window - 1:], rec_smooth, color="C0", label=f"running mean over {rec_window} steps")
ax.set(title="The shipped model's recorded run: runs/mnist_default/history.csv (steps 4,501 to 11,700)",
       xlabel="optimizer step", ylabel="weighted v-loss")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
for c in range(8):
    for r, img in enumerate((digits8[c] * (1 - box8[0]) + 0.5 * box8[0], shipped_fills[c], digits8[c])):
        sub = fig.add_subplot(5, 8, 17 + 8 * r + c)
        sub.imshow(img[0], cmap="gray", vmin=0, vmax=1)
        sub.set_xticks([])
        sub.set_yticks([])
        if c == 0:
            sub.set_ylabel(("masked", "shipped\nmodel", "ground\ntruth")[r], fontsize=8)
fig.suptitle(f"pretrained('mnist') with the design's sampler: hole PSNR {shipped_metrics.summary()['psnr_hole']:.1f} dB "
             "on these 8 digits (read from the repository, not trained here)", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# Over these 7,200 steps the running mean falls only from about 0.227 to 0.222: by then most of the loss is
# the noise that no network can predict, so a nearly flat curve late in training is expected, not a sign
# that nothing is learned. The fills are the design's sampler on the fully trained network; compare each one
# with the ground truth under it and look for a fill that draws a different digit. Notebook 04 shows why that
# happens with replacement, and what fixes it.
#
# ## 3. The knobs, one at a time
#
# ### P2 weighting: `p2_k`, `p2_gamma`
#
# **What is computed.** The library multiplies the **$v$-loss** at step $t$ by
# $w_t = (k + \mathrm{SNR}_t)^{-\gamma}$ (`p2_gamma=0` switches it off). With the design's $k = \gamma = 1$
# that has an exact reading. Since $\hat x_0 - x_0 = -\sqrt{1-\bar\alpha_t}\,(\hat v - v)$ and
# $1 + \mathrm{SNR}_t = 1/(1-\bar\alpha_t)$,
#
# $$\frac{(\hat v - v)^2}{1 + \mathrm{SNR}_t} = (\hat x_0 - x_0)^2:$$
#
# the weighted $v$-loss is exactly the squared error of the predicted clean image, the same at every $t$.
#
# **How it relates to the paper.** Perception-prioritised weighting (Choi et al. 2022) applies
# $(k + \mathrm{SNR}_t)^{-\gamma}$ to the **$\epsilon$-loss**, $L_\text{simple}$. The three losses differ by
# powers of the SNR: $(\hat\epsilon-\epsilon)^2 = \mathrm{SNR}_t\,(\hat x_0-x_0)^2$ and
# $(\hat v-v)^2 = (1+\mathrm{SNR}_t)\,(\hat x_0-x_0)^2$. So per unit of error in $\hat x_0$, the published P2
# weighs step $t$ by $\mathrm{SNR}_t/(1+\mathrm{SNR}_t)$ and this project by 1: at low noise the two agree, at
# high noise this project puts $1 + 1/\mathrm{SNR}_t$ times more weight on a step than the paper would.
# The cell plots both weightings in $x_0$ units, prints that ratio at the noisiest step and checks the identity.

# %%
t_all = torch.arange(cfg.timesteps)
snr = schedule.snr(t_all).flatten()
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
for gamma in (0.0, 0.5, 1.0):
    label = f"p2_gamma={gamma}, p2_k=1" + ("  (the design)" if gamma == 1 else "")
    axes[0].plot(t_all, 1.0 / (1.0 + snr) ** gamma, label=label)
axes[0].set(title="weight on the v-loss, w_t = (k + SNR_t)^(-gamma)", xlabel="timestep t", ylabel="w_t",
            yscale="log")
# per unit of squared error in x0_hat: this project's weight is 1, the published P2's SNR / (1 + SNR)
axes[1].plot(t_all, torch.ones_like(snr), label="this project: P2 on the v-loss (= x0-MSE)")
axes[1].plot(t_all, snr / (1 + snr), label="Choi et al.: P2 on the eps-loss")
axes[1].set(title="the same weights in units of (x0_hat - x0)^2", xlabel="timestep t", ylabel="weight", yscale="log")
for ax in axes:
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
print(f"at t = {cfg.timesteps - 1} this project weighs the step {1 + 1 / snr[-1].item():.1f} times more than "
      f"the published P2 (1 + 1/SNR_t); at t = 0, {1 + 1 / snr[0].item():.4f} times")

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
design_cfg = TrainConfig()  # the design's defaults: lr=2e-4, warmup_steps=1000
s_axis = list(range(0, 3000))
library_lr = [lr_at(s, design_cfg) for s in s_axis]
our_lr = [design_cfg.lr * min(1.0, (s + 1) / design_cfg.warmup_steps) for s in s_axis]
assert all(abs(a - b) < 1e-12 for a, b in zip(library_lr, our_lr))

fig, ax = plt.subplots(figsize=(8, 3.4))
ax.plot(s_axis, library_lr, label=f"warmup_steps={design_cfg.warmup_steps} (the design)")
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
t8 = torch.randint(0, cfg.timesteps, (8,), generator=gen)
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
# * `timesteps=400` (the design's `steps=400`): the number of diffusion timesteps $T$ (notebook 01);
#   `pred="v"`: the target (notebook 01).
# * `self_cond=True`, `coord_conv=True`: the extra input channels (notebook 02).
# * `clip_grad=1.0`: the gradient's norm is clipped to 1 before each step, a guard against rare huge batches.
# * `sample_every`, `sample_steps`, `dc_repeats`, `dc_fixed_z`, `eta`: only the panels use them; they are
#   the sampler's settings, and notebook 04 is about exactly those.
# * `seed=42`: the same arguments give the same run (weights, batch order, noise draws).
#
# Next, **04_ddim_inpainting**: the sampler that turns the trained network into filled holes.

# %% [markdown]
# ## Exercises
#
# 1. Train in fast mode with `p2_gamma=0` (pass `**{**design, **vars(S), "p2_gamma": 0.0, "out_dir":
#    "outputs/inpaint_p2off"}`): how does the loss curve's level change, and why (section 3's identity)?
# 2. Set `hole_weight=1` in the loss check of section 1: by how much does the loss change, and which pixels
#    lost weight?
# 3. In the EMA demonstration, set `ema_decay_at`'s decay to 0.99 and to 0.9999: which one tracks the trend,
#    which one lags, and what would the lag mean for the panels of a short run?
