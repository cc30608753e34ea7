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
# # 05 · Evaluation: measuring the fill, only inside the hole
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/inpaintlib/inpaintlib/blob/main/notebooks/05_evaluation.ipynb)
#
# <small>The badge's address is built from `inpaintlib.notebook.REPO_URL`, the one place the repository's
# public address is written; a test checks that this copy agrees with it.</small>
#
# How good is a fill? The MNIST design ([docs/sources.md](../docs/sources.md)) answers with two numbers computed **only inside the hole**:
# hole-only PSNR and hole-only L1. This notebook
#
# 1. defines them, and explains why only the hole counts;
# 2. works one tiny example by hand and checks the library gives the same numbers;
# 3. runs the design's `eval_cmd(...)` from a cell, and reproduces its headline number from per-image results;
# 4. puts the number in context with two trivial fills, and looks at the best and worst digits.

# %%
# FAST = True: small sizes and the same code, a few minutes on a CPU (the README's table has the times).
# FAST = False: the full sizes, eval_cmd on 500 digits at 50 steps, three models: tens of minutes on a CPU.
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
import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from inpaintlib import (HoleMetrics, center_hole, eval_cmd, inpaint, l1_hole, load_model, load_test_images,
                        mse_hole, pretrained, psnr_hole)
from inpaintlib.notebook import sizes

# the design's evaluation is 500 test digits, 50 DDIM steps, batches of 256; fast mode shrinks the sizes
S = sizes(fast=dict(n_eval=32, steps=10, batch_size=32), full=dict(n_eval=500, steps=50, batch_size=256))
OUT = Path("outputs/05_evaluation")
OUT.mkdir(parents=True, exist_ok=True)
CKPT = pretrained("mnist")  # the shipped model; yours from 03 (full mode): Path("outputs/inpaint/last.pt")

# %% [markdown]
# ## 1. The metrics
#
# Images are in $[0, 1]$, and $M$ is the hole (1 = pixel that was filled). With means over all pixels of all
# evaluated images (the design document's formulas, `inpaintlib/metrics.py`):
#
# $$\mathrm{L1}_\text{hole} = \frac{\operatorname{mean}\big(|\hat x - x|\odot M\big)}{\operatorname{mean}(M)},\qquad
# \mathrm{MSE}_\text{hole} = \frac{\operatorname{mean}\big((\hat x - x)^2\odot M\big)}{\operatorname{mean}(M)},\qquad
# \mathrm{PSNR}_\text{hole} = 20\log_{10}(\text{MAX}_I) - 10\log_{10}\mathrm{MSE}_\text{hole},$$
#
# with $\text{MAX}_I = 1$, so $\mathrm{PSNR}_\text{hole} = -10\log_{10}\mathrm{MSE}_\text{hole}$. Dividing by
# $\operatorname{mean}(M)$ turns a mean over all pixels into a mean over hole pixels only. Higher PSNR and
# lower L1 are better; each halving of the MSE adds about 3 dB.
#
# **Why only the hole?** The sampler pastes the known pixels back exactly, so outside the hole the error is
# zero by construction. Counting those 640 of 784 pixels would only dilute the error: the whole-image MSE is
# $144/784$ of the hole MSE, a free $10\log_{10}(784/144)\approx 7.36$ dB for any method, good or bad.
# Section 3 measures that.
#
# **Pooled, not averaged.** Over many images the headline PSNR takes the log of the *pooled* MSE (all hole
# pixels of all images together, as the formula reads over a batch). The mean of per-image PSNRs is a
# different number, reported beside it under its own name (`psnr_hole_per_image_mean`); the worked example
# shows how far apart they can be.
#
# ## 2. A worked example, by hand
#
# Two 4×4 images whose ground truth is all zeros, and the 2×2 hole in the middle:
#
# * image A: the prediction inside the hole is $\begin{smallmatrix}0.5 & 0.5\\ 0 & 0\end{smallmatrix}$, and
#   a corner pixel *outside* the hole is wrong by 0.9;
# * image B: every hole pixel is $0.1$; everything else is right.
#
# By hand, over the $2\times 4 = 8$ hole pixels:
#
# * $\mathrm{L1}_\text{hole} = (0.5 + 0.5 + 0 + 0 + 4\times0.1)/8 = 1.4/8 = 0.175$. The 0.9 outside the
#   hole does not count. The same through the formula's means over all 32 pixels:
#   $\frac{1.4/32}{8/32} = 0.175$.
# * $\mathrm{MSE}_\text{hole} = (0.25 + 0.25 + 0 + 0 + 4\times0.01)/8 = 0.54/8 = 0.0675$.
# * $\mathrm{PSNR}_\text{hole} = -10\log_{10}0.0675 = -10\,(0.8293 - 2) = 11.707$ dB.
# * Per image: A has $\mathrm{MSE} = 0.5/4 = 0.125$, so $-10\log_{10}0.125 = 10\log_{10}8 = 9.031$ dB; B has
#   $\mathrm{MSE} = 0.01$, so $20$ dB. Their mean, $14.515$ dB, is almost 3 dB above the pooled $11.707$ dB:
#   a mean of logs rewards the one easy image more than the pooled error does.

# %%
gt = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
hole = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
hole[..., 1:3, 1:3] = 1
pred = gt.clone()
pred[0, 0, 1, 1:3] = 0.5  # image A: the top row of its hole is off by 0.5
pred[0, 0, 0, 0] = 0.9  # ... and a pixel outside the hole is off by 0.9 (ignored)
pred[1, 0, 1:3, 1:3] = 0.1  # image B: the whole hole is off by 0.1

metrics = HoleMetrics()
metrics.update(pred, gt, hole)
summary = metrics.summary()

hand = {"l1": 1.4 / 8, "mse": 0.54 / 8, "psnr": -10 * math.log10(0.0675), "psnr_a": 10 * math.log10(8),
        "psnr_b": 20.0}
assert math.isclose(l1_hole(pred, gt, hole), hand["l1"], rel_tol=1e-9)
assert math.isclose(mse_hole(pred, gt, hole), hand["mse"], rel_tol=1e-9)
assert math.isclose(psnr_hole(pred, gt, hole), hand["psnr"], rel_tol=1e-9)
assert math.isclose(summary["psnr_hole"], hand["psnr"], rel_tol=1e-9)
assert all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(metrics.per_image_psnr, (hand["psnr_a"], hand["psnr_b"])))
assert math.isclose(summary["psnr_hole_per_image_mean"], (hand["psnr_a"] + hand["psnr_b"]) / 2, rel_tol=1e-9)
# the design's formula, literally: means over all 32 pixels, divided by mean(M)
M = hole.expand_as(pred)
assert math.isclose(((pred - gt).abs() * M).mean() / M.mean(), hand["l1"], rel_tol=1e-9)

# %%
# NBVAL_CHECK_OUTPUT
print(f"L1_hole   {l1_hole(pred, gt, hole):.4f}   (by hand: 1.4 / 8 = 0.175)")
print(f"MSE_hole  {mse_hole(pred, gt, hole):.4f}   (by hand: 0.54 / 8 = 0.0675)")
print(f"PSNR_hole {psnr_hole(pred, gt, hole):.4f} dB (by hand: -10 log10 0.0675 = 11.707)")
print("per-image PSNR " + " / ".join(f"{p:.4f}" for p in metrics.per_image_psnr)
      + f" dB, their mean {summary['psnr_hole_per_image_mean']:.4f} dB (by hand: 9.031 / 20, mean 14.515)")

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
for k, name in enumerate(("A", "B")):
    err = (pred[k, 0] - gt[k, 0]).abs()
    axes[k].imshow(err, cmap="Reds", vmin=0, vmax=1)
    for i in range(4):
        for j in range(4):
            axes[k].text(j, i, f"{err[i, j].item():g}", ha="center", va="center", fontsize=9)
    axes[k].add_patch(plt.Rectangle((0.5, 0.5), 2, 2, fill=False, edgecolor="C0", lw=2.5))
    axes[k].set(title=f"image {name}: |pred - gt| (blue box = hole)", xlabel="column", ylabel="row",
                xticks=range(4), yticks=range(4))
bars = {"pooled PSNR_hole": summary["psnr_hole"], "mean of per-image": summary["psnr_hole_per_image_mean"],
        "image A": metrics.per_image_psnr[0], "image B": metrics.per_image_psnr[1]}
axes[2].bar(list(bars), list(bars.values()), color=["C0", "C1", "gray", "gray"])
axes[2].set(title="Pooled vs per-image PSNR", ylabel="PSNR (dB)")
axes[2].tick_params(axis="x", labelrotation=20, labelsize=8)
fig.suptitle("The worked example")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The design's `eval_cmd`
#
# `eval_cmd` inpaints the centre hole of the first `n_eval` MNIST test digits in batches (batch $k$ with seed
# `seed + k`), accumulates the hole-only errors, and writes `eval.json`. The arguments are the design
# document's, with the sizes from `S`. As in notebook 04, the architecture flags (`pred`, `self_cond`,
# `coord_conv`) are left to the checkpoint, and `out_dir` keeps the file under `outputs/`.

# %%
report = eval_cmd(ckpt=str(CKPT), batch_size=S.batch_size, n_eval=S.n_eval, steps=S.steps, center_box=12,
                  dc_repeats=2, dc_fixed_z=True, init_from_y=True, eta=0.0, seed=123, out_dir=str(OUT))
shown = ("psnr_hole", "l1_hole", "mse_hole", "psnr_hole_per_image_mean", "n_eval", "steps", "nfe_per_image",
         "seconds", "device")
print(json.dumps({k: report[k] for k in shown}, indent=2))
print(f"written to {OUT / 'eval.json'}")

# %% [markdown]
# The same evaluation again, by hand: the same batches and seeds through `inpaint`, accumulated with
# `HoleMetrics`. It must give the very same headline number, and it keeps what `eval_cmd` only summarises:
# every digit's own PSNR, and the filled images. It also checks the 7.36 dB claim: the whole-image PSNR of
# the same fills exceeds the hole-only one by exactly $10\log_{10}(784/144)$, because outside the hole the
# error is zero.

# %%
model = load_model(CKPT)
digits, labels = load_test_images("data", n=S.n_eval, allow_sample=False)
box = center_hole(28, 12)
by_hand, whole_image, filled = HoleMetrics(), HoleMetrics(), []
for k, start in enumerate(range(0, S.n_eval, S.batch_size)):
    batch = digits[start:start + S.batch_size]
    out = inpaint(model, batch, box, steps=S.steps, eta=0.0, dc_repeats=2, dc_fixed_z=True, init_from_y=True,
                  seed=123 + k)
    by_hand.update(out, batch, box)
    whole_image.update(out, batch, torch.ones_like(box))
    filled.append(out)
filled = torch.cat(filled)
assert math.isclose(by_hand.summary()["psnr_hole"], report["psnr_hole"], abs_tol=1e-4)  # float sums: CPU vs GPU
gap = whole_image.summary()["psnr_hole"] - by_hand.summary()["psnr_hole"]
assert math.isclose(gap, 10 * math.log10(784 / 144), abs_tol=1e-6)
print(f"by hand: PSNR_hole {by_hand.summary()['psnr_hole']:.3f} dB (eval_cmd: {report['psnr_hole']:.3f} dB); "
      f"whole-image PSNR {whole_image.summary()['psnr_hole']:.3f} dB, {gap:.3f} dB higher for free")

# %% [markdown]
# ## 4. In context
#
# A PSNR is only meaningful beside something to compare it with. Two fills that need no model at all:
# paint the hole black (the background, by far the most common MNIST pixel), or with the mean of the known
# pixels around it. The numbers below are measured by this run, on the same digits; in fast mode they come
# from only a few dozen digits.
#
# Do not read them as a bar that a model must clear. PSNR rewards the *average* of the plausible fills: a grey
# blur that hedges between a 4 and a 9 scores better than a sharp, plausible 9 when the truth was a 4. A
# diffusion sampler draws **one** fill from its posterior, and even an exact sampler's single draw has twice the
# expected squared error of the posterior mean: 3 dB lower PSNR, whatever the model (the comparison table below
# has that row). So on 1,000 test digits the design's sampler, at 6.00 dB, scores below the mean training image
# (7.56 dB), which draws no digit at all; the mean of several of its samples, an estimate of the posterior mean,
# closes much of the gap. What a single sample must get right is the *digit*, which the classifier below reads.

# %%
def hole_numbers(fills):
    m = HoleMetrics()
    m.update(fills, digits, box)
    return m.summary()


ring_mean = (digits * (1 - box)).sum(dim=(1, 2, 3), keepdim=True) / (1 - box).sum()
baselines = {"black hole (all 0)": digits * (1 - box),
             "mean of the known pixels": digits * (1 - box) + ring_mean * box,
             f"diffusion ({CKPT.name})": filled}
table = {name: hole_numbers(fills) for name, fills in baselines.items()}
print(f"{'fill':<36} {'PSNR_hole (dB)':>14} {'L1_hole':>8}   ({S.n_eval} test digits, this run)")
for name, row in table.items():
    print(f"{name:<36} {row['psnr_hole']:>14.2f} {row['l1_hole']:>8.4f}")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
axes[0].barh(list(table), [row["psnr_hole"] for row in table.values()], color=["gray", "gray", "C0"])
axes[0].set(title=f"Hole-only PSNR on {S.n_eval} test digits", xlabel="PSNR_hole (dB), higher is better")
axes[1].hist(by_hand.per_image_psnr, bins=20, color="C0")
axes[1].axvline(report["psnr_hole"], color="k", ls="--", label="pooled PSNR_hole")
axes[1].set(title="Per-digit hole PSNR of the diffusion fills", xlabel="PSNR of one digit's hole (dB)",
            ylabel="digits")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Where does the model do well, and where badly? The four best and four worst digits by their own hole PSNR:

# %%
order = torch.tensor(by_hand.per_image_psnr).argsort()
picks = [*order[-4:].flip(0).tolist(), *order[:4].tolist()]
fig, axes = plt.subplots(3, len(picks), figsize=(1.5 * len(picks), 4.8))
for c, i in enumerate(picks):
    for r, img in enumerate((digits[i] * (1 - box[0]) + 0.5 * box[0], filled[i], digits[i])):
        axes[r][c].imshow(img[0], cmap="gray", vmin=0, vmax=1)
        axes[r][c].set_xticks([])
        axes[r][c].set_yticks([])
    axes[0][c].set_title(f"{'best' if c < 4 else 'worst'}: {by_hand.per_image_psnr[i]:.1f} dB", fontsize=8)
for r, name in enumerate(("masked", "filled", "ground truth")):
    axes[r][0].set_ylabel(name, fontsize=8)
fig.suptitle("Best and worst digits by hole-only PSNR")
fig.tight_layout()
plt.show()

# %% [markdown]
# **The best the project does, on the same digits.** The rows above are the design's sampler on the
# design's model. The package ships two better ways to fill the same holes (notebook 04, section 5): the
# same network with the best training-free sampler (reconstruction guidance with resampling,
# `RECOMMENDED["mnist"]`), and the mask-conditioned model `pretrained("mnist-mask")`. Here they run on the
# very digits and batches above, at this notebook's number of DDIM steps, with a second measure beside
# PSNR: the share of fills that the shipped digit classifier (`inpaintlib/classifier.py`) reads as the
# true digit.

# %%
from inpaintlib.classifier import digit_classifier, digit_identity
from inpaintlib.registry import DESIGN, RECOMMENDED

reader = digit_classifier()
contenders = {f"design ({CKPT.name}, replacement)": (CKPT, DESIGN),
              "best training-free (mnist, guidance)": (pretrained("mnist"), RECOMMENDED["mnist"]),
              "mask-conditioned (mnist-mask)": (pretrained("mnist-mask"), RECOMMENDED["mnist-mask"])}
print(f"{'fill':<40} {'PSNR_hole (dB)':>14} {'right digit':>12} {'NFE':>5}   ({S.n_eval} test digits, "
      f"{S.steps} DDIM steps)")
best_fills = {}
for name, (path, settings) in contenders.items():
    settings = {**settings, "steps": S.steps}
    if name.startswith("design"):  # the design's sampler on these batches and seeds: the evaluation's fills
        fills = filled
    else:
        net = load_model(path)
        fills = torch.cat([inpaint(net, digits[start:start + S.batch_size], box, seed=123 + k, **settings)
                           for k, start in enumerate(range(0, S.n_eval, S.batch_size))])
    best_fills[name] = fills
    print(f"{name:<40} {hole_numbers(fills)['psnr_hole']:>14.2f} {digit_identity(reader, fills, labels):>12.1%} "
          f"{settings['steps'] * settings['dc_repeats']:>5}")
print(f"{'masked input (hole zeroed)':<40} {'':>14} {digit_identity(reader, digits * (1 - box), labels):>12.1%}")

# %% [markdown]
# A digit can score badly while looking plausible: the centre box often hides the part that decides between
# two digits (a 4 or a 9, a 3 or an 8), and a fill that draws the other one is a fine digit but a large
# error. Pixel metrics measure agreement with *this* ground truth, not plausibility.
#
# ## The comparison table
#
# Two trivial fills are a start, but the question "how good is diffusion inpainting here?" needs
# anchors on both sides. `benchmarks/quality.py` measures, on the same test digits and centre hole:
#
# * **non-learned fills**: zeros, the mean training image, OpenCV's Telea and Navier-Stokes inpainting;
# * **nearest neighbours** on the known pixels over the 60,000 training digits: copy the hole of the
#   closest one ($k=1$), or average the ten closest ($k=10$);
# * **the MMSE reference**: a U-Net of the same architecture trained with MSE to predict the hole from the
#   rest. It estimates $\mathbb{E}[x \mid y]$, and no single prediction has a lower expected squared error,
#   so its PSNR is the ceiling for one answer;
# * **the diffusion models** at 10, 25, 50 and 100 DDIM steps, with and without resampling (`dc_repeats`),
#   and the design default once more with reconstruction guidance (`guidance`, notebook 04; its NFE
#   count forward passes, and each one also has a backward pass);
# * **posterior means**: the average of $K$ samples per digit. If the sampler drew exactly from
#   $p(x \mid y)$, one sample would sit $10\log_{10} 2 \approx 3$ dB below the MMSE reference (its error is
#   the posterior variance twice over), and the mean of $K$ samples $10\log_{10}(1 + 1/K)$ dB below it;
#   how far a model is from those gaps says how far it is from the true posterior;
# * **digit identity**: a separate CNN (over 99% test accuracy) reads every output; the share read as the
#   true digit rewards a plausible digit where PSNR rewards blur.
#
# The full table takes hours on a CPU, so this notebook does not rerun it: it reads the JSON that the
# script wrote, with the commands and the hardware they ran on, and shows the uncertainty figures (the
# per-pixel standard deviation over the samples: where the model is unsure what the hole holds). It is
# the table of the two shipped MNIST models: single samples on the first 1,000 test digits, the means of
# K samples on the first 256, every baseline and reference on the same digits.

# %%
QUALITY = Path("benchmarks/results/quality_shipped/quality.json")  # written by benchmarks/quality.py (commands below)
quality = json.loads(QUALITY.read_text())
hw = quality["hardware"]
print(f"command : {quality['command']}")
print(f"hardware: {hw['gpu'] or hw['cpu'] + ' CPU'}, {hw['threads']} thread(s), torch {hw['torch']}; "
      f"digit classifier {100 * quality['classifier_test_accuracy']:.2f}% on the 10k test digits")
print(f"\nthe first {quality['n_diffusion']} test digits (posterior means: the first {quality['n_posterior']})")
print(f"{'method':<72}{'NFE':>6}{'PSNR_hole':>10}{'95% interval':>15}{'L1_hole':>9}{'identity':>9}{'gap to MMSE':>13}")
for r in quality["rows"]:
    psnr = "inf" if r["psnr_hole"] is None else f"{r['psnr_hole']:.2f}"
    ci = f"{r['psnr_hole_ci95'][0]:.2f}-{r['psnr_hole_ci95'][1]:.2f}" if r.get("psnr_hole_ci95") else ""
    gap = "" if r.get("gap_to_mmse_db") is None else f"{r['gap_to_mmse_db']:.2f}"
    gap += f" ({r['ideal_gap_db']:.2f})" if r.get("ideal_gap_db") is not None else ""
    l1 = "" if r["l1_hole"] is None else f"{r['l1_hole']:.4f}"  # the ideal posterior sample is a PSNR, not a fill
    print(f"{r['method']:<72}{r.get('nfe_per_image') or '':>6}{psnr:>10}{ci:>15}{l1:>9}"
          f"{r['digit_identity']:>9.3f}{gap:>13}")

figures = {name: QUALITY.parent / Path(path).name for name, path in quality["figures"].items()}
kept = {name: path for name, path in figures.items() if path.exists()}
for name in quality["figures"].keys() - kept.keys():
    print(f"(the uncertainty figure of {name} was not kept with the table)")
fig, axes = plt.subplots(len(kept), 1, figsize=(8, 5.2 * len(kept)), squeeze=False)
for ax, (name, path) in zip(axes[:, 0], kept.items()):
    ax.imshow(plt.imread(path))
    ax.set_axis_off()
fig.tight_layout()
plt.show()

# %% [markdown]
# (In brackets after a posterior-mean gap: the gap a perfect posterior sampler would have. The 95% interval
# is a bootstrap over the digits, `HoleMetrics.psnr_interval`: on a few hundred digits a pooled PSNR moves
# by a few tenths of a dB with the choice of digits, so read differences smaller than that with care.) `docs/quality.md`
# discusses these numbers; the model cards in `inpaintlib/weights/` carry each
# model's rows.
#
# ## Quality against training step
#
# Does more training help the design's sampler, or only the better samplers? `benchmarks/training_curve.py`
# fills the same test digits with the EMA weights saved at several points of each shipped model's training,
# with the design's sampler (`DESIGN`) and with the model's recommended one; its rows are committed in
# `benchmarks/results/training_curve_<model>.json` (the command that made them is in each file; the model
# cards in `inpaintlib/weights/` tell each model's training history).

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for ax, model_name in zip(axes, ("mnist", "mnist-mask")):
    curve = json.loads(Path(f"benchmarks/results/training_curve_{model_name}.json").read_text())
    print(f"{model_name} ({curve['n']} test digits):")
    for sampler in dict.fromkeys(r["sampler"] for r in curve["rows"]):
        points = sorted((r for r in curve["rows"] if r["sampler"] == sampler), key=lambda r: r["step"])
        steps = [r["step"] for r in points]
        psnr = [r["psnr_hole"] for r in points]
        low = [r["psnr_hole"] - r["psnr_hole_ci95"][0] for r in points]
        high = [r["psnr_hole_ci95"][1] - r["psnr_hole"] for r in points]
        ax.errorbar(steps, psnr, yerr=[low, high], marker="o", capsize=3, label=sampler)
        for r in points:
            print(f"  step {r['step']:6d}  {sampler:26s} PSNR_hole {r['psnr_hole']:5.2f} dB "
                  f"({r['psnr_hole_ci95'][0]:.2f} to {r['psnr_hole_ci95'][1]:.2f})  identity {r['digit_identity']:.3f}")
    ax.set_title(f"{model_name}: quality against training step", fontsize=9)
    ax.set_xlabel("optimizer step (batch 128; 25 epochs = 11,700)", fontsize=8)
    ax.set_ylabel("PSNR_hole (dB)", fontsize=8)
    ax.legend(fontsize=6)
fig.tight_layout()
plt.show()

# %% [markdown]
# Every step-to-step difference lies inside its 95% interval. For `mnist`, over the measured steps the design's
# sampler did not move: replacement's shortfall is the sampler's, not the network's. Guidance moved by about a
# tenth of a dB, and `mnist-mask` rose slowly. More training helped the better samplers a little and the
# design's not at all.
#
# ## What to take away
#
# * Only the hole counts: outside it the error is zero by construction, and counting it adds 7.36 dB for free.
# * The headline PSNR is of the pooled MSE; a mean of per-image PSNRs is a different, usually higher, number.
# * `eval_cmd` writes `eval.json` with both, the settings used, and the speed; the same loop by hand gives the
#   same number.

# %% [markdown]
# ## Exercises
#
# 1. Compute the whole-image PSNR of the "black hole" fill in section 4 and check that it, too, is
#    $10\log_{10}(784/144)$ dB above its hole-only PSNR. Why does the gap not depend on the fill?
# 2. Average four fills of each digit (four seeds) and score the average: by how many dB does it beat a single
#    fill, and how does that compare with the 3 dB of an exact sampler?
# 3. Find a digit among the worst four whose fill is a plausible digit: which digit did the sampler draw, and
#    would a person call the fill wrong?
