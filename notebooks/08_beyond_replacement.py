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
# # 08 · Beyond replacement: the ladder of inpainting samplers
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/inpaintlib/inpaintlib/blob/main/notebooks/08_beyond_replacement.ipynb)
#
# <small>The badge's address is built from `inpaintlib.notebook.REPO_URL`, the one place the repository's
# public address is written; a test checks that this copy agrees with it.</small>
#
# Notebook 04 taught one way to inpaint with a network that never saw a hole: after every DDIM step, overwrite
# the known pixels with the noised observation (*replacement*, the MNIST design's sampler; see
# [docs/sources.md](../docs/sources.md)). It is not the only way, and on the shipped default model it often fills
# the hole with the wrong digit. This notebook climbs the ladder of training-free samplers that
# `inpaintlib/samplers/` implements, all with one signature and one callback, **one sampler a section**: where
# the observation enters, the update rule, one step written out by hand and checked against the library, and the
# sampler's fills of one ambiguous digit.
#
# 1. the shared pieces, and the ambiguous digit every section fills;
# 2. replacement; 3. RePaint resampling; 4. reconstruction guidance; 5. DDNM; 6. ΠGDM; 7. DiffPIR; 8. FPS-SMC;
# 9. **exact where the answer is known**: on a Gaussian data model the true p(hole | known pixels) is
#    closed-form, so each sampler's samples can be compared with it;
# 10. **several modes**: a Gaussian mixture, whose exact answer is a histogram over its modes; replacement against
#    three particle samplers as their number of particles grows, and the two newer ones, MCGdiff and TDS,
#    written out and run on the ambiguous digit;
# 11. **quality against compute** on the shipped default model;
# 12. the comparison table: the same ladder on 1,000 test digits, from `benchmarks/quality.py`'s committed results;
# then what to take away, and exercises.
#
# The library has eight samplers (`SAMPLERS`): `replace`, `guidance`, `ddnm`, `pigdm`, `diffpir` and the three
# particle samplers `smc`, `mcgdiff`, `tds`; RePaint is `replace` with `dc_repeats`.

# %%
# FAST = True: small sizes and the same code, a few minutes on a CPU (the README's table has the times).
# FAST = False: the full sizes, 200 digits at 10, 25 and 50 steps a sampler: an hour or more on a CPU.
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
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from inpaintlib import HoleMetrics, NoiseSchedule, center_hole, inpaint, load_model, load_test_images
from inpaintlib.accel import backward_cost
from inpaintlib.classifier import digit_classifier, label_probabilities, masked_digit_classifier, predicted_labels
from inpaintlib.gaussian_mixture import FilterTrace, histogram_tv, mcgdiff_mixture, spread_observations
from inpaintlib.mnist.data import mnist_gaussian, mnist_mixture
from inpaintlib.notebook import sizes
from inpaintlib.registry import RECOMMENDED, pretrained
from inpaintlib.reverse import Denoiser
from inpaintlib.samplers import SAMPLERS, sampler_options
from inpaintlib.utils import to_model

S = sizes(fast=dict(gauss_samples=400, gauss_steps=25, smc_samples=200, mix_runs=500, digit_runs=200,
                    digit_particles=[1, 4, 16], n_search=300, n_ambiguous=8, amb_steps=10, n_digits=8, steps=[5, 25]),
          full=dict(gauss_samples=2000, gauss_steps=50, smc_samples=1000, mix_runs=2000, digit_runs=1000,
                    digit_particles=[1, 4, 16, 64], n_search=1000, n_ambiguous=32, amb_steps=50, n_digits=200,
                    steps=[10, 25, 50]))
OUT = Path("outputs/08_beyond_replacement")  # everything this notebook writes goes here
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)

model = load_model(pretrained("mnist"))  # the shipped default: cond="none", it never sees the hole
cfg = model.config
schedule = NoiseSchedule(cfg.T, cfg.schedule).to(env.device)
hole = center_hole(28, 12)  # (1, 1, 28, 28): 1 = pixel to fill
print(f"pretrained('mnist'): pred={cfg.pred!r}, self_cond={cfg.self_cond}, cond={cfg.cond!r}, T={cfg.T}")
print("samplers:", ", ".join(SAMPLERS))

# %% [markdown]
# ## 1. The shared pieces, and the ambiguous digit
#
# Notation: $M$ the hole (1 = fill), $y$ the observation (hole zeroed), $\hat x_0(x_t)$ and $\hat\epsilon$ the
# network's estimates at $x_t$, $s < t$ the next visited step, and the DDIM step of notebook 04,
# $\mathrm{DDIM}(\hat x_0, \hat\epsilon) = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s-\sigma^2}\,\hat\epsilon + \sigma z$.
# Costs are per image for $S$ steps: NFE = network evaluations, plus backward passes through the network.
#
# Every sampler is a flat function `sampler(denoise, y, hole, schedule, steps, *, options, generator, callback)`
# (`inpaintlib.samplers.SAMPLERS`), and `denoise` is any callable $(x_t, t, \hat x_0^\text{prev}) \mapsto
# (\hat x_0, \hat\epsilon)$. So each section checks its sampler the same way: `trace` wraps the network in a
# recorder, runs the library's sampler for a few steps, and returns what the network said at every call and
# what the sampler made of it (the callback's frames). The hand-written step then starts from the recorded
# network outputs and must land on the recorded frames.
#
# **The ambiguous digit.** With a 12x12 hole some digits really are ambiguous: the ring left around the hole fits
# a 4 as well as a 9. The calibrated masked classifier (`masked_digit_classifier` in `inpaintlib/classifier.py`,
# trained on digits with the hole zeroed and temperature-scaled) estimates $p(\text{label}\mid\text{observed
# pixels})$, which is what an ideal posterior sampler's fills should follow. We search the first test digits for
# one where the top label has less than 0.7 and the runner-up more than 0.2; each section draws several fills of
# it and lets the whole-digit classifier (`digit_classifier`) read them.

# %%
images, labels = load_test_images("data", n=4)
y = to_model(images.to(env.device)) * (1 - hole.to(env.device))  # the observation in [-1, 1], hole zeroed
keep, M = 1 - hole.to(env.device), hole.to(env.device)
denoise = Denoiser(model, schedule)


def trace(name, steps=6, **options):
    """Run sampler ``name`` of the library on the 4 digits above; return the network's calls
    (x_t, t, x0_prev, x0_hat, eps_hat) and the callback's frames."""
    calls, frames = [], []

    def recording(x_t, t, x0_prev=None):
        x0, eps = denoise(x_t, t, x0_prev)
        calls.append(tuple(None if v is None else v.detach().clone() for v in (x_t, t, x0_prev, x0, eps)))
        return x0, eps

    SAMPLERS[name](recording, y, M, schedule, steps, generator=torch.Generator(env.device).manual_seed(0),
                   callback=lambda d: frames.append({k: v.detach().clone() if torch.is_tensor(v) else v
                                                     for k, v in d.items()}), **options)
    return calls, frames


def abar_of(t_int, like):
    return schedule.abar(torch.full((like.shape[0],), t_int, device=like.device))


reader, masked_reader = digit_classifier(env.device), masked_digit_classifier(env.device)
pool, pool_labels = load_test_images("data", n=S.n_search)
p_observed = label_probabilities(masked_reader, (pool * (1 - hole)).to(env.device)).cpu()
top = p_observed.topk(2, dim=1)
candidates = ((top.values[:, 0] < 0.7) & (top.values[:, 1] > 0.2)).nonzero().flatten()
assert len(candidates) > 0, "no ambiguous digit among the first test digits"
pick = int(candidates[0])
print(f"{len(candidates)} ambiguous digits among the first {S.n_search}; using test digit {pick} "
      f"(true label {int(pool_labels[pick])}): p(label | observed) = " +
      ", ".join(f"{int(k)}: {v:.2f}" for v, k in zip(*p_observed[pick].topk(3))))
copies = pool[pick:pick + 1].repeat(S.n_ambiguous, 1, 1, 1).to(env.device)  # each copy gets its own noise
fills, read = {}, {}


def ambiguous_fills(label, **options):
    """Fill the ambiguous digit S.n_ambiguous times with ``inpaint(..., **options)``; draw the fills beside
    the labels the classifier reads in them and what the observed pixels allow."""
    fills[label] = inpaint(model, copies, hole, steps=S.amb_steps, seed=5, **options)
    read[label] = torch.bincount(predicted_labels(reader, fills[label]).cpu(), minlength=10).float() / S.n_ambiguous
    n_show = min(8, S.n_ambiguous)
    fig, axes = plt.subplots(1, n_show + 2, figsize=(1.1 * (n_show + 2) + 1.5, 1.5),
                             gridspec_kw=dict(width_ratios=[1] * (n_show + 1) + [2.5]))
    axes[0].imshow((pool[pick] * (1 - hole[0]) + 0.5 * hole[0])[0], cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("observed", fontsize=7)
    for c in range(n_show):
        axes[c + 1].imshow(fills[label][c, 0].cpu(), cmap="gray", vmin=0, vmax=1)
    for ax in axes[:n_show + 1]:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[-1].bar(range(10), p_observed[pick], color="lightgray", label="p(label | observed)")
    axes[-1].bar(range(10), read[label], width=0.45, color="tab:blue", label="share of fills")
    axes[-1].set_xticks(range(10))
    axes[-1].set_ylim(0, 1)
    axes[-1].tick_params(labelsize=6)
    axes[-1].legend(fontsize=5, loc="upper left")
    fig.suptitle(f"{label}: {S.n_ambiguous} fills of test digit {pick} ({S.amb_steps} steps), and the labels read",
                 fontsize=8)
    fig.tight_layout()
    plt.show()
    print(f"{label}: labels read " + " ".join(f"{k}:{int(c * S.n_ambiguous)}" for k, c in enumerate(read[label]) if c > 0))


# %% [markdown]
# Gray bars in each section's figure: what the masked classifier says the observed pixels allow; blue bars: how
# often each label was drawn. An ideal posterior sampler's blue bars would match the gray ones, up to the
# sampling noise of a few fills. A sampler that ignores the ring puts blue bars on labels the gray ones rule
# out; one that collapses on the likeliest label misses the runner-up.
#
# ## 2. Replacement (`sampler="replace"`, the design's)
#
# Song et al. 2021 (DDIM) with the mask-consistency step. **Where the observation enters: $x_t$.** After the DDIM
# step the known pixels are set to the observation noised to level $s$, with one fixed draw $z$
# (`dc_fixed_z=True`):
#
# $$x_s \leftarrow (1-M)\odot\big(\sqrt{\bar\alpha_s}\,y + \sqrt{1-\bar\alpha_s}\,z\big) + M\odot \mathrm{DDIM}(\hat x_0,\hat\epsilon).$$
#
# The network hears about the ring only through its next input. Cost: $S$ NFE, no backward. The check: the hole
# of every frame is the DDIM step of the recorded outputs, and the known pixels are $y$ noised with **one** $z$.

# %%
calls, frames = trace("replace")
z_seen = []
for (x_t, t, _, x0, eps), frame in zip(calls, frames):
    a_s = abar_of(frame["t_prev"], x_t)
    x_s = a_s.sqrt() * x0 + (1 - a_s).sqrt() * eps  # DDIM, eta = 0
    assert torch.allclose(M * frame["x"], M * x_s, atol=1e-5)
    if frame["t_prev"] >= 0:  # the known pixels: sqrt(abar_s) y + sqrt(1 - abar_s) z, the same z at every step
        z_seen.append(keep * (frame["x"] - a_s.sqrt() * y) / (1 - a_s).sqrt())
assert all(torch.allclose(z, z_seen[0], atol=1e-4) for z in z_seen)
print(f"replacement by hand = the library's frames at all {len(frames)} steps; one z for the known pixels")
ambiguous_fills("replace", sampler="replace")

# %% [markdown]
# ## 3. RePaint resampling (`dc_repeats=r`)
#
# Lugmayr et al. 2022 ("RePaint", Algorithm 1). **Where the observation enters: $x_t$, as replacement, but more
# often.** Each step is proposed $r$ times; between proposals $x_s$ goes back to level $t$ with
# $q(x_t \mid x_s)$: $x_t = \sqrt{\bar\alpha_t/\bar\alpha_s}\,x_s + \sqrt{1-\bar\alpha_t/\bar\alpha_s}\,z$, so that the
# hole gets $r$ chances to agree with the ring. Cost: $rS$ NFE. The check: the network is called $r$ times at
# every timestep, and each call's input is the previous proposal re-noised, so its known pixels carry the
# observation at level $t$ and its hole the previous proposal's hole scaled by $\sqrt{\bar\alpha_t/\bar\alpha_s}$ plus noise.

# %%
r = 3
calls, frames = trace("replace", dc_repeats=r)
visited = [int(c[1][0]) for c in calls]
assert visited == [t for t in dict.fromkeys(visited) for _ in range(r)], visited  # each timestep r times
for k in range(1, len(calls)):
    if visited[k] == visited[k - 1]:  # a repeat: the input is the last proposal pushed back to level t
        a_t, a_s = abar_of(visited[k], y), abar_of(frames[k - 1]["t_prev"], y)
        residual = calls[k][0] - (a_t / a_s).sqrt() * frames[k - 1]["x"]
        z = (residual / (1 - a_t / a_s).sqrt())[M.expand_as(residual).bool()]
        assert abs(z.std().item() - 1) < 0.1 and abs(z.mean().item()) < 0.1  # in the hole: fresh unit noise
print(f"{len(calls)} network calls for {len(set(visited))} timesteps x {r} repeats; every repeat re-noised with q(x_t | x_s)")
ambiguous_fills(f"RePaint x{r}", sampler="replace", dc_repeats=r)

# %% [markdown]
# ## 4. Reconstruction guidance (`sampler="guidance"`)
#
# Ho et al. 2022 ("Video Diffusion Models", eq. 7). **Where the observation enters: a gradient through the
# network, then $x_t$.** Before the step, the hole's estimate follows the gradient of the known pixels' error,
#
# $$\hat x_0 \leftarrow \hat x_0 - \tfrac{w\sqrt{\bar\alpha_t}}{2}\,M\odot\nabla_{x_t}\big\lVert(1-M)\odot(y-\hat x_0(x_t))\big\rVert^2,
# \qquad \hat\epsilon = \frac{x_t - \sqrt{\bar\alpha_t}\,\hat x_0}{\sqrt{1-\bar\alpha_t}},$$
#
# then the DDIM step and replacement as in section 2. Only the hole's $\hat x_0$ moves, by a fixed weight $w$,
# and the known pixels are still replaced. That is **not** DPS (Chung et al. 2023, Algorithm 1), which moves all
# of $x_{t-1}$ by a step normalised by the residual's norm and replaces nothing. Cost: $S$ NFE and $S$ backward
# passes (with `dc_repeats`, $rS$ of each); on this project's CPU a guided step costs 2.08x a plain one
# (`benchmarks/results/quality_ladder11700_cpu.json`). The check recomputes the gradient by hand.

# %%
w = RECOMMENDED["mnist"]["guidance"]
calls, frames = trace("guidance", guidance=w)
for (x_t, t, x0_prev, _, _), frame in zip(calls, frames):
    x_in = x_t.clone().requires_grad_(True)
    x0_net, _ = denoise(x_in, t, x0_prev)
    error = (keep * (y - x0_net)).square().sum()
    grad, = torch.autograd.grad(error, x_in)
    a_t = abar_of(int(t[0]), x_t)
    x0_guided = (x0_net.detach() - w * a_t.sqrt() / 2 * M * grad).clamp(-1, 1)
    assert torch.allclose(frame["x0_pred"], x0_guided, atol=1e-4)
    eps_guided = (x_t - a_t.sqrt() * x0_guided) / (1 - a_t).sqrt()
    a_s = abar_of(frame["t_prev"], x_t)
    assert torch.allclose(M * frame["x"], M * (a_s.sqrt() * x0_guided + (1 - a_s).sqrt() * eps_guided), atol=1e-4)
print(f"guidance (w = {w:g}) by hand = the library's frames at all {len(frames)} steps; "
      f"{frames[-1]['nfe']} NFE and {frames[-1]['backward']} backward passes per image")
rec = {k: v for k, v in RECOMMENDED["mnist"].items() if k != "steps"}
ambiguous_fills(f"guidance w={w:g} x{rec['dc_repeats']}", **rec)

# %% [markdown]
# ## 5. DDNM (`sampler="ddnm"`)
#
# Wang et al. 2023 ("Zero-Shot Image Restoration Using Denoising Diffusion Null-Space Model"). **Where the
# observation enters: $\hat x_0$, not $x_t$.** The range-null-space decomposition
# $\hat x_0 \leftarrow A^\dagger y + (I - A^\dagger A)\hat x_0$ keeps the observation's part and the network's
# null-space part; for inpainting $A = A^\dagger = 1-M$, so $\hat x_0 \leftarrow (1-M)\odot y + M\odot\hat x_0$.
# Then $x_s = \mathrm{DDIM}(\hat x_0, \hat\epsilon)$ with the network's own $\hat\epsilon$. That step is what DDNM's
# released code does; Algorithm 1 as printed in the paper draws $x_{t-1}$ from the DDPM posterior
# $q(x_{t-1}\mid x_t, \hat x_0)$ instead. Time travel (`travel_rounds`, `travel_length`) re-runs windows of steps
# as RePaint does. Starts from pure noise. Cost: $S$ NFE per round, no backward.

# %%
calls, frames = trace("ddnm")
worst = 0.0
for (x_t, t, _, x0, eps), frame in zip(calls, frames):
    x0_ddnm = keep * y + M * x0  # A^+ y + (I - A^+ A) x0_hat, A = keep
    a_s = abar_of(frame["t_prev"], x_t)
    x_s = a_s.sqrt() * x0_ddnm + (1 - a_s).sqrt() * eps  # DDIM with eta = 0
    assert torch.allclose(frame["x0_pred"], x0_ddnm, atol=1e-6) and torch.allclose(frame["x"], x_s, atol=1e-5)
    worst = max(worst, (frame["x"] - x_s).abs().max().item())
print(f"DDNM by hand = the library's callback frames at all {len(frames)} steps (largest difference {worst:.1e}); "
      f"NFE reported {frames[-1]['nfe']}")
ambiguous_fills("DDNM", sampler="ddnm")

# %% [markdown]
# ## 6. ΠGDM (`sampler="pigdm"`)
#
# Song et al. 2023 ("Pseudoinverse-Guided Diffusion Models for Inverse Problems"). **Where the observation enters:
# a vector-Jacobian product through the network, added to $x_s$.** ΠGDM approximates $p(y\mid x_t)$ by the Gaussian
# $\mathcal N(H\hat x_0, r_t^2 HH^\top + \sigma_y^2 I)$ with $r_t^2 = 1-\bar\alpha_t$; its score is
# $g = \big(\partial \hat x_0/\partial x_t\big)^\top (1-M)\odot(y-\hat x_0)/(r_t^2+\sigma_y^2)$, one backward pass. The
# step is
#
# $$x_s = \mathrm{DDIM}(\hat x_0,\hat\epsilon) + w\,\sqrt{\bar\alpha_s}\sqrt{\bar\alpha_t}\;r_t^2\,g,$$
#
# with the coefficient of a public implementation (azula's `PGDMSampler`) rather than the paper's Algorithm 1 as
# printed: the $r_t^2$ in front cancels the one in $g$ when $\sigma_y = 0$, so noiseless inpainting needs no small
# $\sigma_y$ to stay finite. `guidance` = $w$ = 1 is the paper's weight. The known pixels are not replaced during
# the loop, only pasted into the result. Cost: $S$ NFE and $S$ backward passes.

# %%
calls, frames = trace("pigdm")
for (x_t, t, x0_prev, x0, eps), frame in zip(calls, frames):
    a_t, a_s = abar_of(int(t[0]), x_t), abar_of(frame["t_prev"], x_t)
    r2 = 1 - a_t
    x_in = x_t.clone().requires_grad_(True)
    x0_net, _ = denoise(x_in, t, x0_prev)
    g, = torch.autograd.grad(x0_net, x_in, keep * (y - x0_net.detach()) / r2)  # J^T (y - H x0_hat) / r_t^2
    x_s = a_s.sqrt() * x0 + (1 - a_s).sqrt() * eps + a_s.sqrt() * a_t.sqrt() * r2 * g
    assert torch.allclose(frame["x"], x_s, atol=1e-4)
print(f"PiGDM by hand = the library's frames at all {len(frames)} steps; "
      f"{frames[-1]['nfe']} NFE and {frames[-1]['backward']} backward passes per image")
ambiguous_fills("PiGDM", sampler="pigdm")

# %% [markdown]
# ## 7. DiffPIR (`sampler="diffpir"`)
#
# Zhu et al. 2023 ("Denoising Diffusion Models for Plug-and-Play Image Restoration", Algorithm 1). **Where the
# observation enters: $\hat x_0$, through a proximal data step.** $z = \arg\min_z \lVert y - Hz\rVert^2 +
# \rho_t\lVert z-\hat x_0\rVert^2$, per pixel $z = ((1-M)\,y + \rho_t \hat x_0)/((1-M) + \rho_t)$ with
# $\rho_t = \lambda\sigma_y^2\bar\alpha_t/(1-\bar\alpha_t)$; for a noiseless observation ($\sigma_y = 0$) that is
# $z = (1-M)\odot y + M\odot \hat x_0$. Then $\hat\epsilon = (x_t - \sqrt{\bar\alpha_t}\,z)/\sqrt{1-\bar\alpha_t}$ and
# $x_s = \sqrt{\bar\alpha_s}\,z + \sqrt{1-\bar\alpha_s}\,(\sqrt{1-\zeta}\,\hat\epsilon + \sqrt{\zeta}\,\epsilon)$: `zeta`
# mixes fresh noise in. Cost: $S$ NFE, no backward. The check runs with `zeta=0`, where the step is deterministic.

# %%
calls, frames = trace("diffpir", zeta=0.0)
for (x_t, t, _, x0, _), frame in zip(calls, frames):
    a_t, a_s = abar_of(int(t[0]), x_t), abar_of(frame["t_prev"], x_t)
    z = keep * y + M * x0  # the data step with sigma_y = 0
    eps_z = (x_t - a_t.sqrt() * z) / (1 - a_t).sqrt()
    assert torch.allclose(frame["x0_pred"], z, atol=1e-6)
    assert torch.allclose(frame["x"], a_s.sqrt() * z + (1 - a_s).sqrt() * eps_z, atol=1e-5)
print(f"DiffPIR (zeta = 0) by hand = the library's frames at all {len(frames)} steps")
ambiguous_fills("DiffPIR", sampler="diffpir")

# %% [markdown]
# ## 8. FPS-SMC (`sampler="smc"`)
#
# Dou & Song 2024 ("Diffusion Posterior Sampling for Linear Inverse Problem Solving: A Filtering Perspective").
# **Where the observation enters: the particles' weights** (and $x_t$, through a path of the observation). $K$
# particles per image. A path $y_T,\dots,y_0=y$ of the known pixels is drawn backwards with the same DDIM kernel;
# each particle proposes the hole from the model's kernel $\mathcal N(\mu(x_t), \sigma^2 I)$ with the known pixels
# set to $y_s$, and is weighted by
#
# $$w \mathrel{*}= \mathcal N\big(y_s;\,(1-M)\odot\mu(x_t),\,\sigma^2 I\big),$$
#
# resampled when the effective sample size $\mathrm{ESS} = 1/\sum_k w_k^2$ falls below $K/2$. As $K\to\infty$ it
# samples the model's exact posterior. Cost: $KS$ NFE, no backward. The check: at every step all $K$ particles
# of an image share the same known pixels ($y_s$), and the ESS the library reports is the one of its weights.

# %%
K = 4
calls, frames = trace("smc", particles=K)
for frame in frames:
    particles = frame["particles"]  # (B, K, C, H, W)
    known = particles * keep.unsqueeze(1)
    assert torch.allclose(known, known[:, :1].expand_as(known), atol=1e-6)  # one y_s per image
    ess = 1 / torch.softmax(frame["log_weights"], 1).square().sum(1)
    kept = ~frame["resampled"]  # a resampled image's weights start again at 1 (its reported ESS fell below K/2)
    assert torch.allclose(ess[kept], frame["ess"][kept], atol=1e-4) and (frame["ess"][~kept] < K / 2).all()
print(f"FPS-SMC, K = {K}: {len(frames)} steps, the known pixels shared by the particles, the ESS by hand = the "
      f"library's; resampled at {sum(int(f['resampled'].sum()) for f in frames)} image-steps; NFE {frames[-1]['nfe']}")
ambiguous_fills(f"FPS-SMC K={K}", sampler="smc", particles=K)

# %% [markdown]
# ## 9. Exact where the answer is known
#
# On real digits nobody knows the true p(hole | known pixels). For a Gaussian data model everybody does. Fit
# $x_0 \sim \mathcal N(\mu, \Sigma)$ to 10000 MNIST training digits pooled to 14x14 (rank 16 plus a small
# isotropic floor, as `tests/test_gaussian_posterior.py` does); its ideal denoiser $E[x_0\mid x_t]$ is
# closed-form, so it can stand in for the network (`GaussianModel` in `inpaintlib/gaussian.py`), and
# `conditional(y, hole)` gives the exact answer $\mathcal N(m, C)$ for the hole (the centre 6x6 here).
# Every sampler then gets the *perfect* denoiser, so what is left is the sampler's own error.
#
# Two numbers per sampler, from $N$ samples of the hole: the mean error $e_m$ = rms over the hole's pixels of
# $(\hat m - m)/\mathrm{sd}$ (exact samples give about $1/\sqrt N$), and the covariance error
# $e_C = \lVert\hat C - C\rVert_F / \lVert C\rVert_F$. The first rows are the yardsticks: exact draws, and the
# prior (ignoring $y$ altogether).

# %%
gauss = mnist_gaussian("data", size=14, rank=16, n=10000, floor=0.01).to(env.device)
g_schedule = NoiseSchedule(gauss.config.T, gauss.config.schedule).to(env.device)
g_hole = center_hole(14, 6).to(env.device)
g_y = gauss.sample(1, torch.Generator(env.device).manual_seed(0)) * (1 - g_hole)  # one observation
m_exact, C_exact = gauss.conditional(g_y, g_hole)
h_index = gauss.hole_index(g_hole)


def errors(samples):
    h = samples.flatten(1)[:, h_index].double()
    e_m = ((h.mean(0) - m_exact) / C_exact.diag().sqrt()).square().mean().sqrt().item()
    e_c = ((torch.cov(h.T) - C_exact).norm() / C_exact.norm()).item()
    return e_m, e_c


def gaussian_run(name, n, seed=1, **options):
    """n samples of the hole from sampler ``name`` with the Gaussian's exact denoiser."""
    costs = []
    out = SAMPLERS[name](Denoiser(gauss, g_schedule, clip=False), g_y.expand(n, -1, -1, -1).contiguous(), g_hole,
                         g_schedule, S.gauss_steps, generator=torch.Generator(env.device).manual_seed(seed),
                         callback=lambda d: costs.append((d["nfe"], d.get("backward", 0))), **options)
    return out, costs[-1]


N = S.gauss_samples
exact = torch.zeros(N, gauss.mean.numel(), dtype=torch.float64, device=env.device)
exact[:, h_index] = (m_exact[:, None] + torch.linalg.cholesky(C_exact) @ torch.randn(
    len(m_exact), N, generator=torch.Generator(env.device).manual_seed(2), dtype=torch.float64, device=env.device)).T
rows = [("exact draws (the yardstick)", N, errors(exact), "-"),
        ("prior (ignores y)", N, errors(gauss.sample(N, torch.Generator(env.device).manual_seed(3))), "-")]
gauss_settings = [("replace", "replace", dict(eta=1.0)),
                  ("RePaint x3", "replace", dict(eta=1.0, dc_repeats=3)),
                  ("guidance w=5", "guidance", dict(guidance=5.0)),
                  ("DDNM", "ddnm", dict(eta=1.0)),
                  ("DDNM, time travel x3", "ddnm", dict(eta=1.0, travel_rounds=3, travel_length=5)),
                  ("PiGDM", "pigdm", dict(eta=1.0)),
                  ("DiffPIR zeta=0.5", "diffpir", dict(zeta=0.5)),
                  ("FPS-SMC K=16", "smc", dict(particles=16))]
with torch.no_grad():
    for label, name, options in gauss_settings:
        n = S.smc_samples if name == "smc" else N
        out, (nfe, backward) = gaussian_run(name, n, **options)
        rows.append((label, n, errors(out), f"{nfe} + {backward} bw"))
print(f"Gaussian 14x14, 6x6 hole, {S.gauss_steps} steps; 1/sqrt(N) = {N ** -0.5:.3f}")
print(f"{'sampler':30s} {'N':>5s} {'mean err (sd)':>14s} {'cov err (rel)':>14s} {'NFE':>12s}")
for label, n, (e_m, e_c), cost in rows:
    print(f"{label:30s} {n:5d} {e_m:14.3f} {e_c:14.3f} {cost:>12s}")
gauss_errors = {label: e for label, _, e, _ in rows}
for label, (e_m, e_c) in gauss_errors.items():  # each sampler uses the observation: far closer than the prior
    if label not in ("exact draws (the yardstick)", "prior (ignores y)"):
        assert e_m < 0.5 * gauss_errors["prior (ignores y)"][0], label

# %% [markdown]
# With the perfect denoiser, every rung lands far closer to the exact conditional than the prior, but none at
# the exact draws' noise floor: at a finite number of steps each one is biased, and its covariance error is
# larger than its mean error (the fills are too narrow or too wide, not just off-centre). The extra work each rung
# buys (RePaint's resampling, DDNM's time travel, the guidance gradient, more particles) shows up as a smaller
# error. What separates the samplers on real digits is how they cope with an *imperfect* network and a
# multimodal posterior (sections 2 to 8, 10 and 11).
#
# **FPS-SMC and the number of particles.** With $K = 1$ the particle filter is replacement with DDPM's kernel;
# its weights are what make it exact as $K$ grows. Below, the same observation, two seeds averaged, at
# $K = 1, 4, 16$; the sum $e_m + e_C$ should shrink (the exact draws' row is the floor it can reach with this $N$).

# %%
smc_error = {}
with torch.no_grad():
    for K in (1, 4, 16):
        errs = [sum(errors(gaussian_run("smc", S.smc_samples, seed=10 + seed, particles=K)[0])) for seed in (0, 1)]
        smc_error[K] = sum(errs) / len(errs)
floor = sum(errors(exact[:S.smc_samples]))
assert smc_error[16] < smc_error[1], smc_error  # the particles' weights at work
print(f"FPS-SMC, N = {S.smc_samples} samples, mean + cov error: " +
      ", ".join(f"K={K}: {e:.3f}" for K, e in smc_error.items()) + f"  (exact draws: {floor:.3f})")
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot(list(smc_error), list(smc_error.values()), "o-", label="FPS-SMC")
ax.axhline(floor, color="gray", ls="--", label="exact draws, same N")
ax.set_xscale("log", base=2)
ax.set_xlabel("particles K")
ax.set_ylabel("mean err + cov err")
ax.legend(fontsize=8)
ax.set_title("More particles, closer to the exact posterior", fontsize=9)
fig.tight_layout()
fig.savefig(OUT / "smc_particles.png", dpi=120)
plt.show()

# %% [markdown]
# ## 10. Several modes: a Gaussian mixture, and two more particle samplers
#
# The Gaussian of section 9 has one mode, and so has its posterior: a sampler that lands near the right mean with
# about the right spread looks good there. The ambiguous digit's posterior has several modes (each digit that fits the ring), and
# the hard part is to visit each as often as it deserves. A **mixture of Gaussians** has modes and keeps the closed
# form: with $x_0 \sim \sum_c \pi_c\,\mathcal N(\mu_c, \Sigma_c)$, $x_t$ is again a mixture, its ideal denoiser is
# each component's Gaussian denoiser weighted by the component's responsibility at $x_t$, and the inpainting
# posterior is a mixture with the weights
#
# $$p(c \mid y) \propto \pi_c\,\mathcal N\big(y_k;\,\mu_c[k],\,\Sigma_c[k,k]\big)$$
#
# ($k$ the known pixels; `GaussianMixtureModel` in `inpaintlib/gaussian_mixture.py`). So the exact answer is a
# histogram: in which component each sample falls (`assign`: its most probable component) against $p(c \mid y)$,
# compared by their total variation (TV, half the sum of the absolute differences: 0 is a perfect match, 1 no overlap).
#
# The test problem is MCGdiff's (Cardoso et al. 2024, Sec. 4.1; `mcgdiff_mixture`): 25 unit-variance components in
# dimension 8 with means $(8i, 8j, 8i, 8j, \dots)$ for $i, j \in \{-2,\dots,2\}$ (component $5(i+2) + (j+2)$) and
# random weights. Coordinate 0 is observed, the other seven are the hole. The observation pins the grid row $i$
# and says nothing about $j$: five modes keep all but a negligible share of the weight, each with the prior's
# weight renormalised within the row. Every run returns one sample (a particle sampler's is drawn by its final
# weights), so $N$ independent runs make the histogram; the exact draws' row shows the TV that $N$ samples of the
# right answer have by chance.

# %%
threads = torch.get_num_threads()
torch.set_num_threads(1)  # rows of 8 numbers: more threads only add overhead (restored in section 10.4)
mix = mcgdiff_mixture(8, seed=0)  # 25 components; images of shape (1, 1, 8), on the CPU
mix_schedule = NoiseSchedule(mix.config.T, mix.config.schedule)
mix_hole = torch.ones(1, 1, 1, 8)
mix_hole[..., 0] = 0  # coordinate 0 observed, the other seven to fill
mix_y = mix.sample(1, torch.Generator().manual_seed(1000)) * (1 - mix_hole)  # its value: one draw of the mixture
exact_w = mix.posterior_weights(mix_y, mix_hole)  # p(component | y), (25,)
allowed = exact_w > 1e-6  # the modes the observation allows
MIX_STEPS = 50


def mixture_components(name, **options):
    """S.mix_runs independent runs of sampler ``name`` on the mixture, one sample each: their components."""
    out = SAMPLERS[name](Denoiser(mix, mix_schedule, clip=False), mix_y.expand(S.mix_runs, -1, -1, -1).contiguous(),
                         mix_hole, mix_schedule, MIX_STEPS, generator=torch.Generator().manual_seed(0), **options)
    return mix.assign(out)


comps = {"exact draws": mix.assign(mix.exact_draws(mix_y, mix_hole, S.mix_runs, torch.Generator().manual_seed(1))),
         "replace": mixture_components("replace")}
for name in ("smc", "mcgdiff", "tds"):
    for K in (1, 4, 16):
        comps[f"{name} K={K}"] = mixture_components(name, particles=K)
mix_tv = {label: histogram_tv(c, exact_w) for label, c in comps.items()}
print(f"observed coordinate 0 = {mix_y[0, 0, 0, 0]:.2f}; p(component | y) = " + ", ".join(
    f"{int(c)}: {exact_w[c]:.2f}" for c in allowed.nonzero().flatten()) + f"; {S.mix_runs} runs a row, {MIX_STEPS} steps")
print(f"{'':14s} {'TV to p(c | y)':>14s} {'TV to the prior':>15s} {'in a mode y allows':>19s}")
for label, c in comps.items():
    print(f"{label:14s} {mix_tv[label]:14.3f} {histogram_tv(c, mix.weights):15.3f} {allowed[c].double().mean():19.2f}")
for name in ("smc", "mcgdiff", "tds"):
    assert mix_tv[f"{name} K=16"] < mix_tv[f"{name} K=1"], name  # more particles, closer to the exact weights
assert mix_tv["replace"] > 2 * max(mix_tv[f"{name} K=16"] for name in ("smc", "mcgdiff", "tds"))
assert histogram_tv(comps["replace"], mix.weights) < mix_tv["replace"]  # replacement: nearer the prior than y's answer

# %%
def component_bars(ax, components, exact, title, color="tab:blue", group=None):
    """The share of runs in each component (colour) over the exact p(component | y) (gray); a dotted line
    between every ``group`` components (the grid's rows). Section 10.3 uses it for the digit classes too."""
    share = torch.bincount(components, minlength=len(exact)).double() / len(components)
    ax.bar(range(len(exact)), exact, color="lightgray", label="p(component | y), exact")
    ax.bar(range(len(exact)), share, width=0.45, color=color, label="share of runs")
    for edge in range(group or len(exact), len(exact), group or 1):
        ax.axvline(edge - 0.5, color="0.5", lw=0.5, ls=":")
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)


fig, axes = plt.subplots(4, 3, figsize=(11, 8), sharex=True, sharey=True)
component_bars(axes[0][0], comps["exact draws"], exact_w, f"exact draws: TV {mix_tv['exact draws']:.3f}", "tab:green",
               group=5)
component_bars(axes[0][1], comps["replace"], exact_w, f"replace: TV {mix_tv['replace']:.3f}", "tab:red", group=5)
axes[0][2].bar(range(mix.K), exact_w, color="lightgray")
axes[0][2].bar(range(mix.K), mix.weights, width=0.45, color="tab:orange")
axes[0][2].set_title("the prior's weights (ignore y)", fontsize=8)
for row, name in enumerate(("smc", "mcgdiff", "tds"), start=1):
    for col, K in enumerate((1, 4, 16)):
        component_bars(axes[row][col], comps[f"{name} K={K}"], exact_w,
                       f"{name}, K = {K}: TV {mix_tv[f'{name} K={K}']:.3f}", group=5)
axes[0][0].legend(fontsize=6)
for ax in axes[-1]:
    ax.set_xlabel("component 5(i+2) + (j+2)", fontsize=7)
fig.suptitle(f"The mixture, coordinate 0 observed: {S.mix_runs} runs of each sampler with the exact denoiser, "
             f"{MIX_STEPS} steps", fontsize=9)
fig.tight_layout()
fig.savefig(OUT / "mixture_components.png", dpi=120)
plt.show()

# %% [markdown]
# Read the table's last two columns first. Replacement's histogram lies nearer the prior's weights than the exact
# ones, and only part of its runs end in the row that the observation allows: it overwrites the observed
# coordinate at every step, but nothing pulls the seven others towards a row that agrees with it (three of them
# carry $i$ too); once they have picked a mode at high noise they keep it, and the disagreement is pasted over.
# With $K = 1$ the particle samplers are single chains with nothing to correct them, as far off as replacement.
# With 4 and 16 particles their weights do the correcting: the histograms move onto the allowed row and their TV
# falls towards the exact draws' (the cell asserts that it falls from $K = 1$ to $K = 16$ for each of the three).
# FPS-SMC was section 8; the other two are written out next.
#
# ### 10.1 MCGdiff (`sampler="mcgdiff"`)
#
# Cardoso, Janati, Le Corff & Moulines 2024 ("Monte Carlo guided Diffusion for Bayesian linear inverse problems").
# **Where the observation enters: the weights and the known pixels' proposal, along a path of noised
# observations.** Each level's target is $p_t(x_t)\,g_t(x_t)$ with the potential
# $g_t(x_t) = \mathcal N(x_t[k];\,\sqrt{\bar\alpha_t}\,y[k],\,v_t I)$, $v_t = 1-(1-\kappa)\bar\alpha_t$, so that at the
# end ($\bar\alpha = 1$) it is $\mathcal N(x_0[k];\,y[k],\,\kappa I)$. With the model's kernel
# $\mathcal N(\mu(x_t), \sigma^2 I)$ each step is an auxiliary particle filter, fully adapted on the known pixels:
#
# $$w(x_t) = \frac{\mathcal N\big(\mu(x_t)[k];\,\sqrt{\bar\alpha_s}\,y[k],\,(\sigma^2+v_s)I\big)}{g_t(x_t)}, \qquad
# x_s[k] \sim \mathcal N\big(K_s\sqrt{\bar\alpha_s}\,y[k] + (1-K_s)\,\mu[k],\;K_s v_s\big),\quad K_s = \frac{\sigma^2}{\sigma^2+v_s},$$
#
# resampled every step, the hole drawn from $\mathcal N(\mu, \sigma^2 I)$. The first target, $p_T\,g_T$ with
# $p_T = \mathcal N(0, I)$, is drawn exactly: the known pixels from the product $\mathcal N(0, 1)\,g_T$, all weights
# equal (starting from $p_T$ alone and dividing by $g_T$ would leave one particle with nearly all the weight). As $\kappa \to 0$ and $K\to\infty$ it
# samples the model's exact posterior. Cost: $KS$ NFE, no backward. The check (4 runs of 16 particles on the
# mixture): every returned sample has y's known pixel bit for bit, and before that paste the particles' known pixel
# is already within a few $\sqrt\kappa$ of it.

# %%
def mixture_check(name):
    """4 runs of sampler ``name`` on the mixture, 16 particles each: (their samples, the last callback frame)."""
    frames = []
    out = SAMPLERS[name](Denoiser(mix, mix_schedule, clip=False), mix_y.expand(4, -1, -1, -1).contiguous(), mix_hole,
                         mix_schedule, MIX_STEPS, particles=16, generator=torch.Generator().manual_seed(0),
                         callback=frames.append)
    assert torch.equal(out[..., 0], mix_y[..., 0].expand(4, 1, 1)), name  # the known pixel: y's, bit for bit
    return out, frames[-1]


out, last = mixture_check("mcgdiff")
gap = (last["particles"][..., 0] - mix_y[0, 0, 0, 0]).abs().max().item()  # (4 runs, 16 particles, 1, 1)
assert gap < 5 * sampler_options("mcgdiff")["kappa"] ** 0.5
print(f"MCGdiff: the known pixel is y's in every run; before the paste the particles' one was at most {gap:.3f} "
      f"from it (sqrt(kappa) = {sampler_options('mcgdiff')['kappa'] ** 0.5:.3f})")

# %% [markdown]
# ### 10.2 TDS (`sampler="tds"`)
#
# Wu, Trippe, Naesseth, Blei & Cunningham 2023 ("Practical and Asymptotically Exact Conditional Sampling in
# Diffusion Models", Algorithm 1). **Where the observation enters: a twisting function through $\hat x_0$, its
# gradient in the proposal and its values in the weights.** The twist approximates $p(y \mid x_t)$ by
# $\tilde p_t(y \mid x_t) = \mathcal N\big(y[k];\,\hat x_0(x_t)[k],\,\tau_t^2 I\big)$,
# $\tau_t^2 = \sigma_y^2 + (1-\bar\alpha_t)/\bar\alpha_t$. Each step proposes and weights
#
# $$x_s \sim \mathcal N\big(\mu(x_t) + \sigma^2\nabla_{x_t}\log\tilde p_t(y\mid x_t),\ \sigma^2 I\big), \qquad
# w = \frac{p(x_s\mid x_t)\,\tilde p_s(y\mid x_s)}{\tilde p_t(y\mid x_t)\,q(x_s\mid x_t, y)},$$
#
# resampled when the ESS falls below $K/2$. The last step takes $\hat x_0$, and the final weights include
# $\tilde p$ at $t = 0$, where $\tau = \sigma_y$. Cost: $KS$ NFE and $KS$ backward passes.
#
# The paper's $\tau_t^2$ is the variance of $x_t/\sqrt{\bar\alpha_t}$ about $x_0$: large at every step but the last
# few, so the twist barely tells the particles apart until the end. `twist_var=v` takes instead the variance of $x_0$
# given $x_t$ under a $\mathcal N(\cdot, vI)$ prior, as ΠGDM does (section 6):
# $\tau_t^2 = \sigma_y^2 + v(1-\bar\alpha_t)/(v\bar\alpha_t + 1-\bar\alpha_t)$, never above $v$, and the paper's twist
# again as $v \to \infty$. Too small a $v$ trusts $\hat x_0$ more than it deserves and the weights degenerate. The check: y's known
# pixel in every returned sample, and the final weights put their mass on particles whose known pixel lies within
# a few $\sigma_y$ of it.

# %%
out, last = mixture_check("tds")
w_final = torch.softmax(last["log_weights"], 1)  # (4 runs, 16 particles)
rms = (w_final * (last["particles"][..., 0, 0, 0] - mix_y[0, 0, 0, 0]).double().square()).sum(1).mean().sqrt().item()
assert rms < 3 * sampler_options("tds")["sigma_y"]
print(f"TDS: the known pixel is y's in every run; before the paste, the final weights' rms distance of the "
      f"particles' one to it: {rms:.3f} (sigma_y = {sampler_options('tds')['sigma_y']})")

# %% [markdown]
# ### 10.3 A harder mixture: one Gaussian per digit class
#
# The grid above has one observed coordinate. On digits, 160 of 196 pixels are known, and the particle samplers
# find the exact answer much harder to reach. `mnist_mixture` fits one rank-8 Gaussian per MNIST class at 14x14
# (the first 20,000 training digits); the hole is the 6x6 centre, and `spread_observations` draws observations
# from the mixture whose exact $p(c \mid y)$ is spread (largest weight below 0.8): the protocol of
# `benchmarks/mixture_posterior.py`. The observation here is the fourth of that benchmark's six: two classes
# share nearly all its weight, 0.55 and 0.45. Each row is `S.digit_runs` independent runs with the exact denoiser,
# 50 steps.

# %%
digits = mnist_mixture("data")  # 10 components, images of shape (1, 14, 14), on the CPU
digit_hole = center_hole(14, 6)
digit_y = spread_observations(digits, digit_hole, 4, max_weight=0.8, seed=0)[3]
digit_w = digits.posterior_weights(digit_y, digit_hole)  # the exact p(class | known pixels), (10,)
digit_schedule = NoiseSchedule(digits.config.T, digits.config.schedule)


def digit_run(name, callback=None, **options):
    """S.digit_runs independent runs of sampler ``name`` on the digit mixture, one sample each."""
    return SAMPLERS[name](Denoiser(digits, digit_schedule, clip=False, images=S.digit_runs),
                          digit_y.expand(S.digit_runs, -1, -1, -1).contiguous(), digit_hole, digit_schedule,
                          MIX_STEPS, generator=torch.Generator().manual_seed(0), callback=callback, **options)


t0 = time.perf_counter()
digit_comps = {"exact draws": digits.exact_draws(digit_y, digit_hole, S.digit_runs, torch.Generator().manual_seed(1),
                                                 return_components=True)[1],
               "replace": digits.assign(digit_run("replace")), "pigdm": digits.assign(digit_run("pigdm"))}
for K in S.digit_particles:
    digit_comps[f"smc K={K}"] = digits.assign(digit_run("smc", particles=K))
digit_tv = {label: histogram_tv(c, digit_w) for label, c in digit_comps.items()}
top2 = digit_w.argsort(descending=True)[:2].tolist()
print(f"p(class | y): " + ", ".join(f"{c}: {digit_w[c]:.3f}" for c in top2) + f"; {S.digit_runs} runs a row "
      f"({time.perf_counter() - t0:.0f} s)")
print(f"{'':12s} {'TV to p(c | y)':>14s} {'TV to the prior':>15s}   share of runs in classes {top2[0]} / {top2[1]}")
for label, c in digit_comps.items():
    share = torch.bincount(c, minlength=10).double() / len(c)
    print(f"{label:12s} {digit_tv[label]:14.3f} {histogram_tv(c, digits.weights):15.3f}   "
          f"{share[top2[0]]:.3f} / {share[top2[1]]:.3f}")
smc_tv = [digit_tv[f"smc K={K}"] for K in S.digit_particles]
assert smc_tv[-1] < smc_tv[0] and digit_tv["replace"] > 2 * digit_tv["exact draws"]


# %%
labels = list(digit_comps)
fig, axes = plt.subplots(1, len(labels) + 1, figsize=(2.1 * (len(labels) + 1), 2.4))
axes[0].imshow(digit_y[0, 0] + 0.5 * digit_hole[0, 0], cmap="gray")
axes[0].set_title("the known pixels (hole lit)", fontsize=8)
axes[0].axis("off")
for ax, label in zip(axes[1:], labels):
    component_bars(ax, digit_comps[label], digit_w, f"{label}: TV {digit_tv[label]:.3f}",
                   "tab:green" if label == "exact draws" else "tab:red" if label == "replace" else "tab:blue")
    ax.set_xticks(range(digits.K))
    ax.set_ylim(0, 1)
axes[1].legend(fontsize=6)
fig.suptitle(f"One Gaussian per digit class, the 6x6 centre hole: {S.digit_runs} runs a row, {MIX_STEPS} steps",
             fontsize=9)
fig.tight_layout()
fig.savefig(OUT / "digit_mixture_classes.png", dpi=120)
plt.show()

# %% [markdown]
# The benchmark measures the same on all six observations, 200 runs each (`docs/quality.md` has the table and its
# command): the TV is 0.031 for exact draws, 0.50 for replacement (it draws classes about as the prior does),
# 0.31 for ΠGDM, and for FPS-SMC 0.42, 0.20, 0.15 and 0.105 at 1, 16, 64 and 256 particles. It converges, but
# slowly. Where the particles fall behind can be seen step by step, because here the exact filter is known too.
# FPS-SMC's particles share their known pixels, the noised observation $y_s$ of the path, and what they should
# carry at step $s$ is $p(c \mid y_s)$, the mixture's weights seen on noisy known pixels
# (`known_pixel_weights`). The callback gives the particles and their weights, and their weighted share of a class is
# the mean over the particles of $p(c \mid x_s)$ (the denoiser's responsibilities). Averaged over the runs:

# %%
K_track = S.digit_particles[-1]
trace = FilterTrace(digits, digit_hole, top2)  # a callback: the particles' share and the exact filter, each step
digit_run("smc", particles=K_track, callback=trace)
track = [row for row in trace.rows if row["t"] >= 0]  # the last frame (to s = -1, the denoised estimate) adds no step
steps_s = [row["t"] for row in track]
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3))
for j, (c, color) in enumerate(zip(top2, ("tab:blue", "tab:orange"))):
    ax0.plot(steps_s, [row["exact"][j] for row in track], color=color, label=f"class {c}: exact p(c | y_s)")
    ax0.plot(steps_s, [row["particles"][j] for row in track], color=color, ls="--",
             label=f"class {c}: the particles' share")
ax0.invert_xaxis()
ax0.set_xlabel("timestep s of the path (the end at the right)", fontsize=8)
ax0.set_ylabel("mean over the runs", fontsize=8)
ax0.legend(fontsize=6)
ax1.plot(steps_s, [row["ess"] for row in track], color="0.3")
ax1.invert_xaxis()
ax1.set_ylim(0, K_track * 1.05)
ax1.set_xlabel("timestep s", fontsize=8)
ax1.set_ylabel(f"mean ESS (of {K_track})", fontsize=8)
fig.suptitle(f"FPS-SMC, K = {K_track}, on the digit mixture: the particles against the exact filter", fontsize=9)
fig.tight_layout()
fig.savefig(OUT / "digit_mixture_filter.png", dpi=120)
plt.show()
lag = track[-1]["exact"] - track[-1]["particles"]
mid = next(row for row in track if row["t"] <= 400)
print(f"at s = {mid['t']}: particles {mid['particles'][0]:.3f} / {mid['particles'][1]:.3f}, exact "
      f"{mid['exact'][0]:.3f} / {mid['exact'][1]:.3f}; at s = 0 the particles trail the exact filter by "
      f"{lag[0]:+.3f} / {lag[1]:+.3f} (class {top2[0]} / {top2[1]})")

# %% [markdown]
# For the first half of the path the classes' weights hardly move from the prior: the known pixels are too noisy to
# tell the digits apart, and the particles follow the exact filter closely. The evidence arrives in the last two
# fifths, as the noise on the known pixels falls to the size of the classes' finer differences, and there the
# odds between the two plausible classes swing (in this observation they change sides in the last steps). The
# particles' share follows, then falls behind: it overshoots the class that leads at the time and comes back too
# slowly, while the mean effective sample size shows how few distinct particles carry the weights by then.
# `benchmarks/mixture_posterior.py --trace` records the same trace with 100 runs (`docs/quality.md` has its table
# and command): at the end class 0 is 0.138 short of the exact filter at 64 particles and 0.062 at 256, and 0.158
# at 64 with 200 steps instead of 50: more particles close the gap, slowly; more steps do not. TDS reaches 0.29
# at 64 particles with the paper's twist and 0.20 with `twist_var=0.1`; MCGdiff,
# which resamples every step, keeps few distinct ancestors on 160 known pixels and stays near 0.44. The issue's
# target here, within 0.05 of the exact floor at 64 particles, is not met by any rung of this library.

# %% [markdown]
# ### 10.4 The ambiguous digit, with the real network
#
# Back to the shipped network and the digit of section 1: MCGdiff and TDS with 16 particles, at the steps every
# section used. Then all the fills of this notebook side by side: the share of each label the classifier reads,
# beside $p(\text{label}\mid\text{observed})$, and their TV. With $n$ fills even an exact sampler shows a TV by
# chance; its expected value (the last row) comes from sets of $n$ labels drawn from $p(\text{label}\mid\text{observed})$.

# %%
torch.set_num_threads(threads)  # back to every thread: the network's convolutions use them
for label, name in (("MCGdiff K=16", "mcgdiff"), ("TDS K=16", "tds")):
    ambiguous_fills(label, sampler=name, particles=16)

# %%
p_pick = p_observed[pick].double()
ideal = torch.multinomial(p_pick, 2000 * S.n_ambiguous, replacement=True, generator=torch.Generator().manual_seed(0))
ideal = torch.nn.functional.one_hot(ideal.view(2000, S.n_ambiguous), 10).double().mean(1)  # 2000 sets of n labels
floor_tv = 0.5 * (ideal - p_pick).abs().sum(1).mean().item()
label_tv = {label: 0.5 * (share.double() - p_pick).abs().sum().item() for label, share in read.items()}
print(f"test digit {pick}, {S.n_ambiguous} fills a sampler ({S.amb_steps} steps): TV of the labels read to "
      "p(label | observed)")
for label, tv in label_tv.items():
    print(f"  {label:26s} {tv:.3f}")
print(f"  {'exact sampler (expected)':26s} {floor_tv:.3f}")

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 0.3 * len(read) + 1.6), gridspec_kw=dict(width_ratios=[2, 1]))
shares = torch.stack([p_pick.float()] + [read[label] for label in read])
ax0.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
for (r, c) in (shares >= 0.05).nonzero().tolist():
    ax0.text(c, r, f"{shares[r, c]:.2f}", ha="center", va="center", fontsize=6,
             color="white" if shares[r, c] > 0.5 else "black")
ax0.set_yticks(range(len(read) + 1), ["p(label | observed)"] + list(read), fontsize=7)
ax0.set_xticks(range(10))
ax0.set_xlabel("label read in the fills", fontsize=8)
ax1.barh(range(len(read)), list(label_tv.values()), color="tab:blue")
ax1.axvline(floor_tv, color="tab:green", ls=":", label=f"exact sampler, {S.n_ambiguous} fills")
ax1.set_yticks(range(len(read)), list(read), fontsize=7)
ax1.invert_yaxis()
ax1.set_xlim(0, 1)
ax1.set_xlabel("TV to p(label | observed)", fontsize=8)
ax1.legend(fontsize=6)
fig.suptitle(f"Every sampler's fills of test digit {pick}" + (" (fast mode: a handful each)" if env.fast else ""),
             fontsize=9)
fig.tight_layout()
fig.savefig(OUT / "ambiguous_labels.png", dpi=120)
plt.show()

# %% [markdown]
# Two cautions. With a handful of fills (fast mode) the exact sampler's expected TV is itself large, so only gaps
# well beyond it mean something; full mode draws more fills. And here, unlike on the mixture, the denoiser is not
# exact: a particle sampler converges, as $K$ grows, to the posterior of the *network's* data model, which is only
# as good as the network, while $p(\text{label}\mid\text{observed})$ is the masked classifier's separate estimate.
# On the mixture the exact answer was known and the particles got there; on digits they can only get as far as
# the network's own idea of which digits fit the ring.

# %% [markdown]
# ## 11. Quality against compute
#
# Now the first test digits, a few settings per sampler, on the shipped default model. Cost is counted in
# forward-equivalents per image (NFE, plus each backward pass at what it costs in forward passes, measured
# here) and in seconds per image on this machine. Quality: the hole-only PSNR (pooled over the digits,
# notebook 05) and identity, the share of fills the digit classifier reads as the true label. Diversity: two
# fills per digit (two seeds), the mean per-pixel standard deviation between them in the hole; a sampler that
# collapses onto one fill per digit scores 0 there, an exact posterior sampler scores what the data allow.
#
# Reference lines: the mask-conditioned model `pretrained("mnist-mask")` at `RECOMMENDED["mnist-mask"]` on
# the same digits; the **ideal-posterior identity**, the mean over the same digits of
# $p(\text{true label}\mid\text{observed})$ from the masked classifier (what a perfect posterior sampler's
# identity would be, as far as that classifier can tell); and, read from
# `benchmarks/results/quality_ladder_cpu.json`, the PSNR of the regression U-Net that predicts the posterior mean
# (the MMSE reference), measured on other digits (the benchmark's).

# %%
ladder = {  # label -> inpaint arguments: each sampler's defaults, guidance at the recommended setting
    "replace": dict(sampler="replace"),
    "RePaint x3": dict(sampler="replace", dc_repeats=3),
    "guidance (recommended)": {k: v for k, v in RECOMMENDED["mnist"].items() if k != "steps"},
    "DDNM": dict(sampler="ddnm"),
    "PiGDM": dict(sampler="pigdm"),
    "DiffPIR": dict(sampler="diffpir"),
    "FPS-SMC K=4": dict(sampler="smc", particles=4),
}
digits, digit_labels = load_test_images("data", n=S.n_digits)
digits = digits.to(env.device)


BACKWARD = backward_cost(model, batch=64, repeats=3)  # inpaintlib/accel.py: (t(fwd + bwd) - t(fwd)) / t(fwd)
print(f"one backward pass costs {BACKWARD:.2f} forward passes on this machine")


def measure(net, steps, options, seed=0):
    counts = []
    start = time.perf_counter()
    filled = inpaint(net, digits, hole, steps=steps, seed=seed, **options,
                     callback=lambda d: counts.append((d["nfe"], d.get("backward", 0))))
    seconds = (time.perf_counter() - start) / len(digits)
    again = inpaint(net, digits, hole, steps=steps, seed=seed + 1, **options)  # a second fill, for diversity
    metrics = HoleMetrics()
    metrics.update(filled.cpu(), digits.cpu(), hole)
    identity = (predicted_labels(reader, filled).cpu() == digit_labels).float().mean().item()
    h = hole.to(env.device)
    diversity = ((filled - again).abs() / 2 ** 0.5 * h).sum().item() / (h.sum().item() * len(digits))
    nfe, backward = counts[-1]
    return dict(nfe=nfe, backward=backward, fe=nfe + BACKWARD * backward, seconds=seconds,
                psnr=metrics.summary()["psnr_hole"], identity=identity, diversity=diversity)


curves = {name: [] for name in ladder}
for steps in S.steps:
    for name, options in ladder.items():
        curves[name].append(dict(steps=steps, **measure(model, steps, options)))

mask_model = load_model(pretrained("mnist-mask"))
rec = dict(RECOMMENDED["mnist-mask"])
mask_ref = measure(mask_model, rec.pop("steps"), rec)
ideal_identity = label_probabilities(masked_reader, digits * (1 - hole.to(env.device)))[
    torch.arange(len(digits)), digit_labels.to(env.device)].mean().item()
quality_file = Path("benchmarks/results/quality_ladder_cpu.json")
mmse_psnr = None
if quality_file.is_file():
    for row in json.loads(quality_file.read_text())["rows"]:
        if row["method"] == "regression U-Net (MMSE reference)":
            mmse_psnr, mmse_n = row["psnr_hole"], row["n_images"]

print(f"{len(digits)} test digits" + (" (fast mode: a handful, so differences of a dB or a digit are noise)"
                                       if env.fast else ""))
print(f"{'sampler':18s} {'steps':>5s} {'NFE':>5s} {'bw':>5s} {'fe':>6s} {'s/img':>7s} {'PSNR_hole':>9s} "
      f"{'identity':>8s} {'diversity':>9s}")
for name, points in curves.items():
    for p in points:
        print(f"{name:18s} {p['steps']:5d} {p['nfe']:5d} {p['backward']:5d} {p['fe']:6.0f} {p['seconds']:7.3f} "
              f"{p['psnr']:9.2f} {p['identity']:8.2f} {p['diversity']:9.3f}")
print(f"{'mnist-mask (rec.)':18s} {RECOMMENDED['mnist-mask']['steps']:5d} {mask_ref['nfe']:5d} {0:5d} "
      f"{mask_ref['fe']:6.0f} {mask_ref['seconds']:7.3f} {mask_ref['psnr']:9.2f} {mask_ref['identity']:8.2f} "
      f"{mask_ref['diversity']:9.3f}")
print(f"ideal-posterior identity (mean p(true label | observed), same digits): {ideal_identity:.2f}")
if mmse_psnr is not None:
    print(f"MMSE reference PSNR_hole: {mmse_psnr:.2f} dB ({quality_file}, {mmse_n} other digits)")

# %%
fig, axes = plt.subplots(3, 2, figsize=(10, 10), sharey="row")
for col, (xkey, xlabel) in enumerate((("fe", "forward-equivalents per image (NFE + backward)"),
                                      ("seconds", "seconds per image (this machine)"))):
    for row, (ykey, ylabel) in enumerate((("psnr", "PSNR_hole (dB)"), ("identity", "identity (right digit)"),
                                          ("diversity", "diversity (std of two fills)"))):
        ax = axes[row][col]
        for name, points in curves.items():
            ax.plot([p[xkey] for p in points], [p[ykey] for p in points], "o-", label=name)
        ax.axhline(mask_ref[ykey], color="k", ls="--", lw=1, label="mnist-mask, recommended")
        if ykey == "identity":
            ax.axhline(ideal_identity, color="tab:green", ls=":", lw=1.5, label="ideal posterior")
        elif ykey == "psnr" and mmse_psnr is not None:
            ax.axhline(mmse_psnr, color="tab:red", ls=":", lw=1.5, label="MMSE reference (other digits)")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
axes[0][0].legend(fontsize=6)
axes[1][0].legend(fontsize=6)
fig.suptitle(f"Quality against compute on pretrained('mnist'), {len(digits)} test digits"
             + (" (fast mode: a handful)" if env.fast else ""), fontsize=10)
fig.tight_layout()
fig.savefig(OUT / "quality_vs_compute.png", dpi=120)
plt.show()

# %% [markdown]
# ## 12. The comparison table: the ladder on 1,000 test digits
#
# The curves above come from a few digits (a handful in fast mode). `benchmarks/quality.py` runs each rung at
# the settings chosen on *training* digits by `benchmarks/tune_samplers.py`, on the first 1,000 test digits,
# beside the MMSE reference and the **ideal posterior sample**: the row an exact posterior sampler would
# score, 3.01 dB below the MMSE reference (its expected squared error is twice the MMSE's), with the identity
# $\mathbb E[p(\text{true label}\mid\text{observed})]$ of the calibrated masked classifier. For K fills per digit
# on the first digits it also measures how far the labels read in them lie from
# $p(\text{label}\mid\text{observed})$ (mean total variation, beside what an exact sampler would show with
# the same K) and their diversity. This cell reads the committed results; the commands that made them are in
# the JSON and on `docs/quality.md`. The full ladder ran on an earlier, shorter-trained snapshot of the `mnist`
# weights; three rungs (guidance, DDNM, ΠGDM) were measured again, the same way, on the shipped weights, and the
# cell prints those rows after the ladder (the model card, `inpaintlib/weights/mnist_default.md`, has the history).

# %%
def show_benchmark(result, heading):
    """Print a benchmarks/quality.py result: its references and its ladder rows."""
    rows = {r["method"]: r for r in result["rows"]}
    print(f"{heading}: {result['n_diffusion']} test digits; one backward pass = "
          + ", ".join(f"{k}: {v:.2f}" for k, v in result["backward_cost_in_forwards"].items()) + " forward passes")
    print(f"{'row':58s} {'fe':>5s} {'s/img':>6s} {'PSNR':>6s} {'95% interval':>14s} {'ident.':>6s} "
          f"{'TV (exact)':>13s} {'div.':>5s}")
    for name in ("regression U-Net (MMSE reference)", "ideal posterior sample (reference)"):
        r = rows[name]
        print(f"{name:58s} {'':>5s} {'':>6s} {r['psnr_hole']:6.2f} {r['psnr_hole_ci95'][0]:6.2f} to "
              f"{r['psnr_hole_ci95'][1]:5.2f} {r['digit_identity']:6.3f}")
    for r in (r for r in result["rows"] if r.get("sampler")):
        tv = f"{r['label_tv']:.3f} ({r['label_tv_exact']:.3f})" if "label_tv" in r else ""
        print(f"{r['method'][:58]:58s} {r['forward_equivalents']:5.0f} {r['seconds_per_image']:6.3f} "
              f"{r['psnr_hole']:6.2f} {r['psnr_hole_ci95'][0]:6.2f} to {r['psnr_hole_ci95'][1]:5.2f} "
              f"{r['digit_identity']:6.3f} {tv:>13s} {r.get('diversity', float('nan')):5.3f}")
    print()


bench = json.loads(quality_file.read_text())
refs = {r["method"]: r for r in bench["rows"]}
ladder_rows = [r for r in bench["rows"] if r.get("sampler")]
show_benchmark(bench, f"{quality_file.name} (an earlier snapshot of pretrained('mnist'))")
shipped_file = Path("benchmarks/results/quality_ladder11700_cpu.json")  # three rungs on the shipped weights
show_benchmark(json.loads(shipped_file.read_text()),
               f"{shipped_file.name} (the shipped pretrained('mnist'))")

# %%
default_rows = [r for r in ladder_rows if r["method"].startswith("mnist: ")]
other_rows = [r for r in ladder_rows if not r["method"].startswith("mnist: ")]
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
for ax, key, label in ((axes[0], "psnr_hole", "PSNR_hole (dB)"), (axes[1], "digit_identity", "identity"),
                       (axes[2], "label_tv", "label TV to p(label | observed)")):
    for r in default_rows + other_rows:
        if key in r:
            ax.scatter(r["forward_equivalents"], r[key], marker="o" if r in default_rows else "*", s=40)
            ax.annotate(r["method"].split(" (")[0].replace("mnist: ", ""), (r["forward_equivalents"], r[key]),
                        fontsize=6, xytext=(3, 3), textcoords="offset points")
    if key == "psnr_hole":
        ax.axhline(refs["regression U-Net (MMSE reference)"]["psnr_hole"], color="tab:red", ls=":", label="MMSE reference")
        ax.axhline(refs["ideal posterior sample (reference)"]["psnr_hole"], color="tab:green", ls=":",
                   label="ideal posterior sample")
    elif key == "digit_identity":
        ax.axhline(refs["ideal posterior sample (reference)"]["digit_identity"], color="tab:green", ls=":",
                   label="ideal posterior")
    else:
        floor = [r["label_tv_exact"] for r in ladder_rows if "label_tv_exact" in r]
        if floor:
            ax.axhline(floor[0], color="tab:green", ls=":", label="exact sampler, same K")
    ax.set_xscale("log")
    ax.set_xlabel("forward-equivalents per image", fontsize=8)
    ax.set_ylabel(label, fontsize=8)
    ax.legend(fontsize=6)
fig.suptitle(f"benchmarks/quality.py on {bench['n_diffusion']} test digits "
             "(circles: an earlier snapshot of pretrained('mnist'); stars: pretrained('mnist-mask'))", fontsize=9)
fig.tight_layout()
fig.savefig(OUT / "benchmark_ladder.png", dpi=120)
plt.show()

# %% [markdown]
# ## What to take away
#
# * Every rung is a few lines in `inpaintlib/samplers/` on top of the same DDIM step, the same
#   mask-consistency step (`paste_known` in `inpaintlib/reverse.py`) and the same time loop; they differ only in
#   *where* the observation enters: $x_t$ (replacement, RePaint), $\hat x_0$ (DDNM, DiffPIR), a gradient through
#   the network (guidance, ΠGDM), or particle weights (FPS-SMC, MCGdiff, TDS). Each section's hand-written step
#   equals the library's.
# * With a perfect denoiser (the Gaussian of section 9) all of them sample close to the exact conditional, and
#   FPS-SMC's error falls with the number of particles: the exactness argument holds where it can be checked.
# * Where the exact answer has several modes (the mixture of section 10), replacement visits them about as the
#   prior would, not as the observation says; the particle samplers' histograms approach the exact weights as $K$
#   grows, each particle one more network evaluation a step. On the digit mixture (10.3) they approach it slowly:
#   the class evidence arrives late in the path, and the exact filter, known there at every step, shows the
#   particles falling behind it from then on.
# * On the default network the samplers differ a lot (sections 11 and 12). On 1,000 test digits, with the shipped
#   weights, reconstruction guidance at `RECOMMENDED["mnist"]` reaches 9.96 dB, close to the 10.27 dB that an
#   ideal posterior sample would score; replacement alone stays near 6 dB. The comparison table above has every
#   rung, its cost and its interval.
# * Read the fast-mode tables and plots of sections 2 to 11 with care: they come from a handful of digits and few
#   steps. Section 12's numbers are the benchmark's, with their commands in `docs/quality.md`.

# %% [markdown]
# ## Exercises
#
# 1. The number of particles: in section 10, add `K = 64` to the mixture's loop (and then try `MIX_STEPS = 10`).
#    Does each particle sampler's TV keep falling towards the exact draws', and what does each K cost in NFE? Then
#    fill the ambiguous digit (section 10.4) with `sampler="mcgdiff"` at `particles=1`, 4 and 16: from which K on
#    do its labels stop looking like replacement's (section 2)?
# 2. Change the guidance weight `w` of section 4 to 5 and to 60 and rerun `ambiguous_fills`: at which weight does
#    the sampler stop agreeing with the ring, and at which does it collapse on one label?
# 3. In section 6, give ΠGDM a small observation noise (`sigma_y=0.1`) and time travel (`travel_rounds=3`): what
#    does each do to its fills, and what does each cost in NFE and backward passes?
