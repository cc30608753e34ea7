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
# # 01 · The noise schedule: how diffusion destroys an image
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/inpaintlib/inpaintlib/blob/main/notebooks/01_noise_schedule.ipynb)
#
# <small>The badge's address is built from `inpaintlib.notebook.REPO_URL`, the one place the repository's
# public address is written; a test checks that this copy agrees with it.</small>
#
# A diffusion model learns to undo a fixed, hand-designed corruption: a little Gaussian noise added
# at each of $T$ steps until nothing of the image is left. Before any network appears, this notebook
# looks at that corruption, the *forward process*:
#
# 1. the schedule: $\beta_t$, $\alpha_t$ and $\bar\alpha_t$ for the linear and cosine schedules;
# 2. $\bar\alpha_t$ and the signal-to-noise ratio against $t$;
# 3. one MNIST digit noised at several $t$;
# 4. a statistical check that the one-jump formula `q_sample` gives the same distribution as $t$ small steps;
# 5. the three things a network can predict ($\epsilon$, $x_0$, $v$), and why this project predicts $v$.
#
# Everything here is implemented once in `inpaintlib/schedule.py`; the notebook imports it, and where it
# writes a formula out itself it checks that its version agrees with the library's. The sizes and choices
# come from **the MNIST design**, the short design document this project started from;
# [docs/sources.md](../docs/sources.md) says what it specified and where the project departs from it.

# %%
# FAST = True: small sizes and the same code, a few minutes on a CPU (the README's table has the times).
# FAST = False: the full sizes, 20,000 Monte Carlo chains instead of 2,000 (seconds more).
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

from inpaintlib import NoiseSchedule, load_test_images
from inpaintlib.notebook import sizes
from inpaintlib.utils import to_model, to_unit

# fast mode (FAST in the first cell) only shrinks the Monte Carlo sample of section 4
S = sizes(fast=dict(n_samples=2_000), full=dict(n_samples=20_000))
T = 400  # the MNIST design trains with steps=400 diffusion timesteps (docs/sources.md)

# %% [markdown]
# ## 1. The schedule: $\beta_t$, $\alpha_t$, $\bar\alpha_t$
#
# DDPM (Ho et al. 2020) adds noise in small Gaussian steps, **eq. (2)**:
#
# $$q(x_t \mid x_{t-1}) = \mathcal N\!\left(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\right).$$
#
# With $\alpha_t = 1-\beta_t$ and $\bar\alpha_t = \prod_{s\le t}\alpha_s$, the steps compose into one jump,
# **eq. (4)**:
#
# $$q(x_t \mid x_0) = \mathcal N\!\left(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\right)
# \quad\Longleftrightarrow\quad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ \ \epsilon\sim\mathcal N(0, I).$$
#
# So the whole schedule is one decreasing curve, $\bar\alpha_t$: how much of the image survives at step $t$.
# Two common choices:
#
# * **linear** (DDPM §4): $\beta_t$ rises linearly from $10^{-4}$ to $0.02$;
# * **cosine** (Nichol & Dhariwal 2021, **eq. (17)**): $\bar\alpha_t = f(t)/f(0)$ with
#   $f(t) = \cos^2\!\left(\frac{t/T + s}{1+s}\cdot\frac{\pi}{2}\right)$, $s = 0.008$, and $\beta_t$ clipped at $0.999$.
#
# The library indexes steps from 0: $t = 0, \dots, T-1$, and $x_{-1}$ is the clean image
# (`inpaintlib/schedule.py: linear_betas, cosine_betas, NoiseSchedule`). Below, both schedules are
# written out again in a few lines and checked against the library.

# %%
linear = NoiseSchedule(T, "linear")
cosine = NoiseSchedule(T, "cosine")

# the two schedules written out here, in float64, to compare with the library's tables
betas_linear = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
s = 0.008
f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
abar_cosine = f[1:] / f[0]  # alpha_bar at t = 0 .. T-1 (the library's t is the paper's t + 1)
betas_cosine = (1 - f[1:] / f[:-1]).clamp(max=0.999)

for name, lib, betas in (("linear", linear, betas_linear), ("cosine", cosine, betas_cosine)):
    alphas = 1 - betas
    abar = torch.cumprod(alphas, dim=0)  # alpha_bar_t = prod_{s <= t} alpha_s
    assert torch.allclose(lib.betas.double(), betas, rtol=1e-6, atol=1e-9), name
    assert torch.allclose(lib.alphas.double(), alphas, rtol=1e-6), name
    assert torch.allclose(lib.alpha_bar.double(), abar, rtol=1e-5, atol=1e-9), name
# the cosine schedule's cumulative product reproduces f(t)/f(0) wherever the beta clip is not active
assert torch.allclose(torch.cumprod(1 - betas_cosine, 0)[:-1], abar_cosine[:-1], rtol=1e-9)
print("our betas, alphas and alpha_bars agree with inpaintlib.NoiseSchedule for both schedules")

# %%
# NBVAL_CHECK_OUTPUT
print(f"T = {T}")
print(f"{'t':>5} | {'linear beta':>11} {'alpha_bar':>9} {'SNR':>10} | {'cosine beta':>11} {'alpha_bar':>9} {'SNR':>10}")
for t in (0, 50, 100, 200, 300, 399):
    row = []
    for sched in (linear, cosine):
        a = sched.alpha_bar[t].item()
        row.append(f"{sched.betas[t].item():11.4f} {a:9.4f} {a / (1 - a):10.4g}")
    print(f"{t:5d} | " + " | ".join(row))

# %% [markdown]
# Read the last row: with $T = 400$ the **linear** schedule ends at $\bar\alpha_{T-1}\approx 0.017$, so the
# last noisy image still holds $\sqrt{0.017}\approx 13\%$ of the digit. The linear schedule's endpoints were
# chosen for $T = 1000$, where $\bar\alpha_{T-1}\approx 4\cdot10^{-5}$. The **cosine** schedule reaches
# (almost) zero whatever $T$ is. Keep this in mind for notebook 04: when the inpainting sampler starts at
# $t = T-1$, the known pixels it is given (the observation, noised to that level) still carry 13% of the
# digit.
#
# ## 2. $\bar\alpha_t$ and the signal-to-noise ratio
#
# The signal-to-noise ratio of $x_t$ is $\mathrm{SNR}_t = \bar\alpha_t / (1-\bar\alpha_t)$
# (`NoiseSchedule.snr`). On a log scale it shows where each schedule spends its steps.

# %%
t_axis = torch.arange(T)
snr_linear = linear.snr(t_axis).flatten()
snr_cosine = cosine.snr(t_axis).flatten()
assert torch.allclose(snr_linear, linear.alpha_bar / (1 - linear.alpha_bar))

fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
for sched, color in ((linear, "C0"), (cosine, "C1")):
    axes[0].plot(t_axis, sched.betas, color=color, label=sched.kind)
    axes[1].plot(t_axis, sched.alpha_bar, color=color, label=sched.kind)
    axes[2].plot(t_axis, torch.log10(sched.snr(t_axis).flatten()), color=color, label=sched.kind)
axes[0].set(title=r"$\beta_t$: noise added at step $t$", xlabel="timestep t", ylabel=r"$\beta_t$", yscale="log")
axes[1].set(title=r"$\bar\alpha_t$: fraction of signal power left", xlabel="timestep t", ylabel=r"$\bar\alpha_t$")
axes[2].set(title=r"signal-to-noise ratio $\bar\alpha_t/(1-\bar\alpha_t)$", xlabel="timestep t",
            ylabel=r"$\log_{10}\,\mathrm{SNR}_t$")
axes[2].axhline(0, color="gray", lw=0.8, ls="--")
for ax in axes:
    ax.legend()
    ax.grid(alpha=0.3)
fig.suptitle(f"Linear vs cosine schedule, T = {T}")
fig.tight_layout()
plt.show()

# %% [markdown]
# Over most of the range the two are close on the log scale. The differences are at the ends: the cosine
# schedule adds noise more gently at first ($\bar\alpha_t$ stays higher for small $t$), and at the very end it
# drives the SNR to almost zero, where the linear schedule stops at 0.018. With $T = 1000$ the linear schedule
# would spend its last few hundred steps on near-pure noise, the waste that motivated the cosine schedule
# (Nichol & Dhariwal 2021).
#
# ## 3. One digit, noised at several $t$
#
# `NoiseSchedule.q_sample(x0, t, noise)` is eq. (4) in one line. The model works on pixels in $[-1, 1]$
# (`inpaintlib/utils.py: to_model`); for display we map back to $[0, 1]$ (`to_unit`, which clips). The same
# $\epsilon$ is used in every panel, so only $\bar\alpha_t$ changes from left to right.

# %%
digits, labels = load_test_images("data", n=1)  # falls back to the sample shipped with the package
x0 = to_model(digits)  # (1, 1, 28, 28) in [-1, 1]
eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
shown_t = [0, 25, 50, 100, 150, 200, 300, 399]

fig, axes = plt.subplots(2, len(shown_t), figsize=(1.6 * len(shown_t), 3.8))
for row, sched in enumerate((linear, cosine)):
    for col, t in enumerate(shown_t):
        x_t = sched.q_sample(x0, torch.tensor([t]), eps)
        ax = axes[row][col]
        ax.imshow(to_unit(x_t)[0, 0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"t={t}\n" + r"$\bar\alpha$=" + f"{sched.alpha_bar[t].item():.3f}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row][0].set_ylabel(sched.kind)
fig.suptitle(f"q(x_t | x_0) for the digit '{labels[0].item()}' (same noise draw in every panel)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Does the one-jump formula match $t$ small steps? A statistical check
#
# Eq. (4) is a claim about distributions: running eq. (2) step by step from $x_{-1} = x_0$ to $x_t$ and
# jumping there directly with `q_sample` must give the same Gaussian, with mean $\sqrt{\bar\alpha_t}\,x_0$ and
# variance $1-\bar\alpha_t$ per pixel. We draw many independent chains of the digit above, stop them at a few
# timesteps, and compare the per-pixel sample mean and standard deviation with the closed form, and with as
# many `q_sample` draws. The tolerance is five standard errors.

# %%
gen = torch.Generator().manual_seed(1)
N = S.n_samples
checkpoints = (20, 100, 250, 399)
chain = x0.expand(N, 1, 28, 28).clone()  # N copies of x_{-1} = x_0
chain_at = {}
for t in range(max(checkpoints) + 1):
    beta = linear.betas[t]
    chain = (1 - beta).sqrt() * chain + beta.sqrt() * torch.randn(chain.shape, generator=gen)  # DDPM eq. (2)
    if t in checkpoints:
        chain_at[t] = chain.clone()

worst = 0.0
for t in checkpoints:
    abar = linear.alpha_bar[t]
    mean_theory, std_theory = abar.sqrt() * x0[0], (1 - abar).sqrt()
    jump = linear.q_sample(x0.expand(N, 1, 28, 28), torch.full((N,), t), torch.randn((N, 1, 28, 28), generator=gen))
    for name, samples in (("step by step", chain_at[t]), ("q_sample", jump)):
        mean_err = (samples.mean(0) - mean_theory).abs().max() / (std_theory / math.sqrt(N))
        std_err = (samples.std(0) - std_theory).abs().max() / (std_theory / math.sqrt(2 * N))
        worst = max(worst, mean_err.item(), std_err.item())
        assert mean_err < 5 and std_err < 5, (t, name, mean_err, std_err)
print(f"{N} chains x 784 pixels x {len(checkpoints)} timesteps: largest deviation {worst:.2f} standard errors (< 5)")

# %%
t_show = 100
abar = linear.alpha_bar[t_show]
pixel = divmod(int(x0[0, 0].argmax()), 28)  # (row, column) of a pixel on the stroke
centre = (abar.sqrt() * x0[0, 0][pixel]).item()
jump = linear.q_sample(x0.expand(N, 1, 28, 28), torch.full((N,), t_show), torch.randn((N, 1, 28, 28), generator=gen))
grid = torch.linspace(centre - 4, centre + 4, 200)
pdf = torch.exp(-((grid - centre) ** 2) / (2 * (1 - abar))) / torch.sqrt(2 * math.pi * (1 - abar))

fig, ax = plt.subplots(figsize=(7, 3.6))
row, col = pixel
ax.hist(chain_at[t_show][:, 0, row, col], bins=60, density=True, alpha=0.5, label=f"{t_show + 1} small steps (eq. 2)")
ax.hist(jump[:, 0, row, col], bins=60, density=True, alpha=0.5, label="one jump, q_sample (eq. 4)")
ax.plot(grid, pdf, "k", lw=1.5, label=r"$\mathcal{N}(\sqrt{\bar\alpha_t}x_0,\ 1-\bar\alpha_t)$")
ax.set(title=f"Pixel {pixel} at t = {t_show}: {N} samples each way", xlabel="pixel value of $x_t$ (model space)",
       ylabel="density")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 5. Three things a network can predict: $\epsilon$, $x_0$ or $v$
#
# Given $x_t$ and $t$, knowing any one of $\epsilon$, $x_0$ or $v$ gives the other two, so a network may be
# trained to output any of them (`ModelConfig.pred`):
#
# * $\epsilon$ (DDPM): $\hat x_0 = \dfrac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon}{\sqrt{\bar\alpha_t}}$
#   (the "predicted $x_0$" of DDIM, **eq. (9)**; `NoiseSchedule.x0_from_eps`);
# * $x_0$ directly;
# * $v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0$ (Salimans & Ho 2022, §4; `NoiseSchedule.v_from`),
#   from which $\hat x_0 = \sqrt{\bar\alpha_t}\,x_t - \sqrt{1-\bar\alpha_t}\,\hat v$ (`x0_from_v`).
#
# A picture helps: write $\sqrt{\bar\alpha_t} = \cos\phi_t$ and $\sqrt{1-\bar\alpha_t} = \sin\phi_t$. Then
# $x_t = \cos\phi\,x_0 + \sin\phi\,\epsilon$ is a rotation of the pair $(x_0, \epsilon)$ by the angle $\phi$,
# and $v = \cos\phi\,\epsilon - \sin\phi\,x_0 = \mathrm dx_t/\mathrm d\phi$ is the direction the image moves as
# the noise level turns. The check below writes the three conversions out and compares them with the library.

# %%
t = torch.tensor([0, 120, 399])
x0_b = to_model(load_test_images("data", n=3)[0])
eps_b = torch.randn(x0_b.shape, generator=torch.Generator().manual_seed(2))
ab = linear.alpha_bar[t].reshape(-1, 1, 1, 1)
x_t = ab.sqrt() * x0_b + (1 - ab).sqrt() * eps_b  # eq. (4), written out
v = ab.sqrt() * eps_b - (1 - ab).sqrt() * x0_b

assert torch.allclose(x_t, linear.q_sample(x0_b, t, eps_b), atol=1e-6)
assert torch.allclose(v, linear.v_from(x0_b, eps_b, t), atol=1e-6)
assert torch.allclose((x_t - (1 - ab).sqrt() * eps_b) / ab.sqrt(), linear.x0_from_eps(x_t, t, eps_b), atol=1e-5)
assert torch.allclose(ab.sqrt() * x_t - (1 - ab).sqrt() * v, linear.x0_from_v(x_t, t, v), atol=1e-6)
# every parameterisation leads back to the same (x0, eps): the round trip the sampler relies on
for pred, out in (("eps", eps_b), ("x0", x0_b), ("v", v)):
    x0_hat, eps_hat = linear.to_x0_eps(pred, x_t, t, out, clip=False)
    assert torch.allclose(x0_hat, x0_b, atol=1e-3) and torch.allclose(eps_hat, eps_b, atol=1e-3), pred
print("q_sample, v_from, x0_from_eps, x0_from_v and to_x0_eps agree with the formulas written out here")

# %% [markdown]
# ### Why $v$?
#
# A trained network is never exact. Suppose its output is off by an error of size $\delta$ per pixel. What
# matters for sampling is the error in $\hat x_0$, and the conversions above scale $\delta$ differently:
#
# | predicts | error in $\hat x_0$ | at low noise ($\bar\alpha\to1$) | at high noise ($\bar\alpha\to0$) |
# |---|---|---|---|
# | $\epsilon$ | $\delta\,\sqrt{(1-\bar\alpha_t)/\bar\alpha_t} = \delta/\sqrt{\mathrm{SNR}_t}$ | tiny | **explodes** |
# | $x_0$ | $\delta$ | no help from $x_t$, which already shows $x_0$ almost exactly | fine |
# | $v$ | $\delta\,\sqrt{1-\bar\alpha_t}$ | tiny | $\le\delta$ |
#
# $v$ takes the better half of each: it never amplifies an error (with the cosine schedule, where
# $\bar\alpha_{T-1}\approx 0$, the $\epsilon$ column's factor is unbounded), and its target is never tiny nor
# huge: its variance $\bar\alpha_t + (1-\bar\alpha_t)\,\mathrm{Var}[x_0]$ slides from that of $\epsilon$ to that of
# $x_0$. This is why the MNIST design trains with `pred="v"`. We measure both effects below: perturb
# the exact target by noise of size $\delta = 0.1$, convert with the library (`to_x0_eps`, no clipping), and
# compare the error in $\hat x_0$ with the formulas in the table.

# %%
t_all = torch.arange(0, T, 8)
x0_many = to_model(load_test_images("data", n=64)[0])
gen = torch.Generator().manual_seed(3)
delta = 0.1
measured = {p: [] for p in ("eps", "x0", "v")}
target_std = {p: [] for p in ("eps", "x0", "v")}
for t_int in t_all.tolist():
    t_b = torch.full((len(x0_many),), t_int)
    e = torch.randn(x0_many.shape, generator=gen)
    x_t = linear.q_sample(x0_many, t_b, e)
    for pred in measured:
        target = linear.target(pred, x0_many, e, t_b)
        noisy_output = target + delta * torch.randn(target.shape, generator=gen)
        x0_hat, _ = linear.to_x0_eps(pred, x_t, t_b, noisy_output, clip=False)
        measured[pred].append(((x0_hat - x0_many).std() / delta).item())
        target_std[pred].append(target.std().item())

abar_all = linear.alpha_bar[t_all]
theory = {"eps": ((1 - abar_all) / abar_all).sqrt(), "x0": torch.ones_like(abar_all), "v": (1 - abar_all).sqrt()}
for pred in measured:
    assert torch.allclose(torch.tensor(measured[pred]), theory[pred], rtol=0.1), pred

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for pred, color in (("eps", "C3"), ("x0", "C2"), ("v", "C0")):
    axes[0].plot(t_all, theory[pred], color=color, label=f"pred={pred!r}: formula")
    axes[0].plot(t_all, measured[pred], "o", ms=3, color=color, label=f"pred={pred!r}: measured")
    axes[1].plot(t_all, target_std[pred], color=color, label=f"pred={pred!r}")
axes[0].set(title=r"Error in $\hat x_0$ per unit of network error $\delta$", xlabel="timestep t",
            ylabel=r"std$(\hat x_0 - x_0)\ /\ \delta$", yscale="log")
axes[1].set(title="Scale of the training target (64 digits)", xlabel="timestep t", ylabel="std of the target")
for ax in axes:
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
fig.suptitle(f"Linear schedule, T = {T}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What to take away
#
# * The forward process is fixed and cheap: one line, $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\epsilon$
#   (`NoiseSchedule.q_sample`), and the sampled step-by-step chain agrees with it.
# * The schedule decides how quickly the signal dies; with $T = 400$ the linear schedule leaves a trace of the
#   image at the last step.
# * $\epsilon$, $x_0$ and $v$ carry the same information; $v$ keeps the network's errors from being amplified.
#
# Next, **02_unet_blocks**: the network that reads $x_t$ and $t$ and outputs $v$.

# %% [markdown]
# ## Exercises
#
# 1. Build `NoiseSchedule(1000, "linear")` and read its last row in the table of section 1: how much of the
#    digit survives at $t = T-1$ now, and why does that matter for a sampler that starts there?
# 2. Change `t_show` in section 4 to 5 and to 399: where do the histograms of the chain and of the one-jump
#    formula sit, and does the check still pass?
# 3. In the last cell, change `delta` to 0.5 and plot the cosine schedule instead of the linear one: which
#    parameterisation's error grows without bound at the last step, and by how much?
