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
# # 04 · DDIM inpainting with mask consistency
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/inpaintlib/inpaintlib/blob/main/notebooks/04_ddim_inpainting.ipynb)
#
# <small>The badge's address is built from `inpaintlib.notebook.REPO_URL`, the one place the repository's
# public address is written; a test checks that this copy agrees with it.</small>
#
# The network of notebook 03 never saw a hole: it only learned to denoise whole digits. Inpainting happens
# entirely in the **sampler**. Starting from noise, DDIM walks the noise level down step by step, and after
# every step the pixels we *know* are overwritten with the observation, noised to the current level. The
# network fills the rest so that it agrees with them.
#
# 1. the sampler written out as an explicit loop in this notebook, and shown to give **the same result** as
#    `inpaintlib.inpaint` for the same seed;
# 2. the reverse process as a strip (`display_reverse`) and as an animation saved to `outputs/`;
# 3. what the knobs do: `eta`, `dc_repeats`, `init_from_y`;
# 4. the design's `sample_cmd(...)`, called from a cell;
# 5. the best the project does, beside the design's sampler.
#
# "The design" is the MNIST design, the document this project started from: its sampler is replacement
# with `dc_repeats=2` ([docs/sources.md](../docs/sources.md) says what it specified).

# %%
# FAST = True: small sizes and the same code, a few minutes on a CPU (the README's table has the times).
# FAST = False: the full sizes, 16 digits, 50 DDIM steps, sample_cmd at 400 steps: minutes on a CPU.
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
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Image, display
from matplotlib.animation import FuncAnimation, PillowWriter

from inpaintlib import (RECOMMENDED, HoleMetrics, NoiseSchedule, center_hole, ddim_timesteps, display_reverse,
                        inpaint, load_model, load_test_images, pretrained, sample_cmd)
from inpaintlib.accel import channels_last, sampling_channels_last
from inpaintlib.notebook import sizes
from inpaintlib.utils import to_model, to_unit

S = sizes(fast=dict(n_images=6, steps=10, sample_cmd_steps=10),
          full=dict(n_images=16, steps=50, sample_cmd_steps=400))
OUT = Path("outputs/04_ddim_inpainting")  # everything this notebook writes goes here
OUT.mkdir(parents=True, exist_ok=True)

CKPT = pretrained("mnist")  # the shipped model; yours from 03 (full mode): Path("outputs/inpaint/last.pt")
model = load_model(CKPT)  # EMA weights, eval mode, on the GPU when there is one
cfg = model.config
schedule = NoiseSchedule(cfg.T, cfg.schedule).to(env.device)
print(f"network: pred={cfg.pred!r}, self_cond={cfg.self_cond}, coord_conv={cfg.coord_conv}, cond={cfg.cond!r}, "
      f"T={cfg.T}, schedule={cfg.schedule!r}")

images, labels = load_test_images("data", n=S.n_images)  # [0, 1], the first test digits
hole = center_hole(28, 12)  # (1, 1, 28, 28): 1 = pixel to fill, the design's 12x12 centre box

# %% [markdown]
# ## 1. The sampler, step by step
#
# **The DDIM step.** DDIM (Song et al. 2021) visits a subsequence of the $T$ training timesteps,
# $\tau_1 > \tau_2 > \dots > \tau_S$ (`ddim_timesteps`: $S$ evenly spaced values from $T-1$ down to 0). From
# $x_t$ to the next visited step $s < t$ (with $\bar\alpha_{-1} = 1$, the clean image):
#
# $$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon}{\sqrt{\bar\alpha_t}}\quad\text{(eq. 9)},\qquad
# x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s-\sigma^2}\;\hat\epsilon + \sigma z\quad\text{(eq. 12)},$$
#
# $$\sigma = \eta\,\sqrt{\frac{1-\bar\alpha_s}{1-\bar\alpha_t}}\,\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_s}}\quad\text{(eq. 16)}.$$
#
# $\eta = 0$ makes the step deterministic; $\eta = 1$ gives DDPM's amount of fresh noise. The network
# predicts $v$; `NoiseSchedule.to_x0_eps` turns that into $(\hat x_0, \hat\epsilon)$ and clips $\hat x_0$ to $[-1, 1]$.
# With `self_cond=True` the network also receives its previous $\hat x_0$.
#
# **Mask consistency** (the design document's step; RePaint, Lugmayr et al. 2022, eqs. 8–10). With $M$ the
# hole (1 = fill) and $y$ the observation, after each step the known pixels are replaced by the observation
# *noised to the new level*, so that the whole image is always a plausible $x_s$:
#
# $$x_s \leftarrow (1-M)\odot\big(\sqrt{\bar\alpha_s}\,y + \sqrt{1-\bar\alpha_s}\,z_\text{obs}\big) + M\odot x_s.$$
#
# `dc_fixed_z=True` uses one draw $z_\text{obs}$ for every step (the known pixels then move smoothly).
#
# **Resampling** (`dc_repeats`, RePaint §4.2 and Algorithm 1). The known and generated pixels only meet through
# the network, once per step. With `dc_repeats=r`, each step is done $r$ times: after each proposal but the
# last, $x_s$ is noised back to level $t$ with $q(x_t\mid x_s)$,
# $x_t = \sqrt{\bar\alpha_t/\bar\alpha_s}\,x_s + \sqrt{1-\bar\alpha_t/\bar\alpha_s}\;z$, and the step is proposed
# again, which gives the hole more chances to agree with its surroundings. It costs $r$ network evaluations per step.
#
# **Start.** `init_from_y=True` starts from the observation noised to level $\tau_1$ (hole set to 0), otherwise
# from pure noise. Either way the known pixels are then set to the noised observation, which with $T = 400$
# and the linear schedule still carries about 13% of the signal (notebook 01).
#
# The library implements all this once, in `inpaintlib/samplers/replacement.py: ddim_inpaint` (called by `inpaint`).
# Here it is again as one explicit loop. To give the same numbers, it draws its random tensors from a
# generator seeded like `inpaint`'s, in the same order: $z_\text{obs}$, the start, then per proposal the
# $\eta$-noise (only when $\eta > 0$), and the re-noising draw (only between repeats).

# %%
@torch.no_grad()
def inpaint_by_hand(model, images, hole, steps, eta=0.0, dc_repeats=1, init_from_y=True, seed=0, frames=None):
    """DDIM inpainting with mask consistency, written out (dc_fixed_z=True, known pixels noised)."""
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)

    def randn():
        return torch.randn(images.shape, generator=gen, device=device)

    M = hole.to(device)  # 1 = fill
    y = to_model(images.to(device)) * (1 - M)  # the observation in [-1, 1], hole zeroed
    ts = ddim_timesteps(schedule.T, steps)  # tau_1 > ... > tau_S

    def batch(t: int):  # one timestep for every image
        return torch.full((len(images),), t, device=device, dtype=torch.long)

    z_obs = randn()  # dc_fixed_z: one draw for the observation at every level
    a = schedule.abar(batch(ts[0]))
    x = a.sqrt() * y + (1 - a).sqrt() * randn() if init_from_y else randn()
    x = (1 - M) * (a.sqrt() * y + (1 - a).sqrt() * z_obs) + M * x  # the start is mask-consistent too

    x0_prev = None
    for i, t_int in enumerate(ts):
        s_int = ts[i + 1] if i + 1 < len(ts) else -1  # -1: the clean image
        t, s = batch(t_int), batch(s_int)
        a_t, a_s = schedule.abar(t), schedule.abar(s)
        for r in range(dc_repeats):
            out = model(x, t, x0_prev=x0_prev, y=y, hole=M)  # the network (y, hole used only by cond="mask")
            x0, eps = schedule.to_x0_eps(cfg.pred, x, t, out.float())  # eq. 9, with x0 clipped to [-1, 1]
            x0_prev = x0
            # the DDIM step, eq. 12 with sigma from eq. 16
            sigma = eta * ((1 - a_s) / (1 - a_t)).sqrt() * (1 - a_t / a_s).sqrt()
            x_s = a_s.sqrt() * x0 + (1 - a_s - sigma**2).clamp(min=0).sqrt() * eps
            if eta > 0:
                x_s = x_s + sigma * randn()
            # mask consistency: known pixels = the observation noised to level s
            x_s = (1 - M) * (a_s.sqrt() * y + (1 - a_s).sqrt() * z_obs) + M * x_s
            if frames is not None:
                frames.append({"x": x_s.clone(), "x0_pred": x0.clone(), "t": t_int, "repeat": r})
            if r + 1 < dc_repeats:  # resampling: back to level t, q(x_t | x_s)
                ratio = a_t / a_s
                x = ratio.sqrt() * x_s + (1 - ratio).sqrt() * randn()
            else:
                x = x_s
    x = (1 - M) * y + M * x  # paste the known pixels back, clean
    return torch.where(hole.bool(), to_unit(x).cpu(), images)


# %% [markdown]
# Now the same digits through the library and through the loop above, with the same seed, for the design's
# settings and for a second setting that exercises the other random draws ($\eta > 0$, no resampling, no
# `init_from_y`). On the CPU `inpaint` holds the network's convolution weights in channels_last
# (NHWC) memory for the call, because it runs faster (`inpaintlib/accel.py`: `channels_last`,
# `sampling_channels_last`). That changes the order of the sums inside each convolution and so the last bits of
# every network output, and 20 evaluations grow those bits to about 1e-5. The loop below runs the network the
# same way, so the two compute the same arithmetic.

# %%
settings = [dict(eta=0.0, dc_repeats=2, init_from_y=True), dict(eta=1.0, dc_repeats=1, init_from_y=False)]
for setting in settings:
    frames_lib, frames_ours = [], []
    by_library = inpaint(model, images, hole, steps=S.steps, seed=123, dc_fixed_z=True, **setting,
                         callback=lambda d: frames_lib.append({k: v.clone() if torch.is_tensor(v) else v
                                                               for k, v in d.items()}))
    with channels_last(model, sampling_channels_last(env.device, amp=False)):  # the weight layout inpaint uses
        by_hand = inpaint_by_hand(model, images, hole, steps=S.steps, seed=123, frames=frames_ours, **setting)
    assert len(frames_lib) == len(frames_ours)
    worst_step = max((a["x"] - b["x"]).abs().max().item() for a, b in zip(frames_lib, frames_ours))
    assert torch.allclose(by_hand, by_library, atol=1e-5), (by_hand - by_library).abs().max()
    print(f"{setting}: identical to inpaint: {torch.equal(by_hand, by_library)}; largest difference over "
          f"all {len(frames_ours)} intermediate x_s: {worst_step:.1e}")
    if setting == settings[0]:
        result, frames = by_library, frames_lib

# %%
masked = images * (1 - hole) + 0.5 * hole  # the hole shown in grey
metrics = HoleMetrics()
metrics.update(result, images, hole)
fig, axes = plt.subplots(3, S.n_images, figsize=(1.5 * S.n_images, 4.8))
for c in range(S.n_images):
    for r, (row, name) in enumerate(((masked, "masked input"), (result, "inpainted"), (images, "ground truth"))):
        axes[r][c].imshow(row[c, 0], cmap="gray", vmin=0, vmax=1)
        axes[r][c].set_xticks([])
        axes[r][c].set_yticks([])
        axes[r][0].set_ylabel(name, fontsize=8)
fig.suptitle(f"{CKPT.name}: {S.steps} DDIM steps, eta=0, dc_repeats=2; "
             f"hole PSNR {metrics.summary()['psnr_hole']:.1f} dB")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Watching it happen
#
# `inpaint` calls `callback` after every proposal with a dict (`x`, `i`, `t`, `t_prev`, `repeat`, `x0_pred`,
# `nfe`); the frames above were recorded that way, and the strip and the animation are drawn from them, not
# from another copy of the loop. `display_reverse` (`inpaintlib/utils.py`) shows $x_t$ (top) and the
# network's current estimate $\hat x_0$ (bottom) for the first digit: the known ring stays a noisy copy of the
# observation while the estimate in the hole sharpens.

# %%
last_repeat = [f for f in frames if f["repeat"] == max(g["repeat"] for g in frames)]  # one frame per step
strip = display_reverse(last_repeat, n_show=8, path=OUT / "reverse_strip.png",
                        title=f"Reverse diffusion of digit '{labels[0].item()}': x_t and the x0 estimate")
plt.show()

# %%
n_anim = min(4, S.n_images)
fig, axes = plt.subplots(2, n_anim, figsize=(1.8 * n_anim, 4))
artists = []
for c in range(n_anim):
    for r, key in enumerate(("x", "x0_pred")):
        axes[r][c].set_xticks([])
        axes[r][c].set_yticks([])
        artists.append(axes[r][c].imshow(to_unit(last_repeat[0][key][c, 0]).cpu(), cmap="gray", vmin=0, vmax=1))
axes[0][0].set_ylabel("x_t")
axes[1][0].set_ylabel("x0 estimate")
title = fig.suptitle("")


def draw(k):
    frame = last_repeat[k]
    for c in range(n_anim):
        artists[2 * c].set_data(to_unit(frame["x"][c, 0]).cpu())
        artists[2 * c + 1].set_data(to_unit(frame["x0_pred"][c, 0]).cpu())
    title.set_text(f"DDIM step {k + 1}/{len(last_repeat)}: t = {frame['t']}")
    return artists


animation = FuncAnimation(fig, draw, frames=len(last_repeat), blit=False)
gif_path = OUT / "reverse_diffusion.gif"
animation.save(gif_path, writer=PillowWriter(fps=max(2, len(last_repeat) // 4)))
plt.close(fig)
print(f"saved {gif_path} ({len(last_repeat)} frames)")
display(Image(filename=str(gif_path)))

# %% [markdown]
# ## 3. The knobs
#
# One knob at a time, from the design's setting (`eta=0`, `dc_repeats=2`, `init_from_y=True`), on the same
# digits with the same seed. Below each row: the hole-only PSNR over these digits (notebook 05 defines it;
# higher is better) and the network evaluations per image (NFE), which is what a setting costs. In fast mode
# only a handful of digits are used, so small differences are noise.

# %%
design = dict(eta=0.0, dc_repeats=2, init_from_y=True)
W = RECOMMENDED["mnist"]["guidance"]  # the guidance weight recommended for the shipped model
variants = [("design: eta=0, dc_repeats=2, init_from_y", design),
            ("eta=0.5", {**design, "eta": 0.5}),
            ("eta=1 (DDPM-like noise)", {**design, "eta": 1.0}),
            ("dc_repeats=1 (no resampling)", {**design, "dc_repeats": 1}),
            ("dc_repeats=4", {**design, "dc_repeats": 4}),
            ("init_from_y=False (pure noise)", {**design, "init_from_y": False}),
            (f"sampler='guidance', w={W:g}", {**design, "sampler": "guidance", "guidance": W})]
outputs = {}
for name, setting in variants:
    nfe = []
    outputs[name] = inpaint(model, images, hole, steps=S.steps, seed=123, callback=lambda d: nfe.append(d["nfe"]),
                            **setting)
    m = HoleMetrics()
    m.update(outputs[name], images, hole)
    outputs[name] = (outputs[name], m.summary()["psnr_hole"], max(nfe))

fig, axes = plt.subplots(len(variants) + 1, S.n_images, figsize=(1.5 * S.n_images + 2.5, 1.5 * (len(variants) + 1)))
for r, (name, (filled, psnr, nfe)) in enumerate([("masked input", (masked, None, None)), *outputs.items()]):
    for c in range(S.n_images):
        axes[r][c].imshow(filled[c, 0], cmap="gray", vmin=0, vmax=1)
        axes[r][c].set_xticks([])
        axes[r][c].set_yticks([])
    label = name if psnr is None else f"{name}\n{psnr:.1f} dB, NFE {nfe}"
    axes[r][0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
fig.suptitle(f"One knob at a time ({S.steps} DDIM steps, seed 123)")
fig.tight_layout()
plt.show()

# %% [markdown]
# What to look for:
#
# * **`eta`** adds fresh noise at every step. With $\eta = 0$ the only randomness is the start (and
#   $z_\text{obs}$); with $\eta > 0$ the path wanders more, which helps diversity but with few steps tends to
#   leave the fill blurrier or noisier.
# * **`dc_repeats`** gives the hole more rounds of agreeing with the known ring, at a proportional cost (NFE).
#   The seams between the box and the digit are where it shows.
# * **`init_from_y`** changes the start only inside the hole, and only a little: $y$ is zero there, so the
#   start is noise scaled by $\sqrt{1-\bar\alpha_{\tau_1}}\approx 0.99$ instead of pure noise, and the known
#   pixels are replaced by the noised observation in both cases. Expect a small effect with this schedule;
#   the option matters more where the first visited step keeps more signal (fewer timesteps, a
#   schedule that ends higher, or a sampler that starts part-way).
# * **`sampler="guidance"`** is not in the design: reconstruction guidance (Ho et al. 2022). Replacement tells the
#   hole about the ring only through the network's next input. Guidance asks the network directly: how
#   badly does its clean-image estimate $\hat x_0(x_t)$ miss the observation on the known pixels, and which
#   way should $x_t$ move to miss it less? With weight $w$ and hole $M$,
#   $\hat x_0 \leftarrow \hat x_0 - \tfrac{w\sqrt{\bar\alpha_t}}{2}\, M \odot \nabla_{x_t}
#   \lVert (1-M)\odot(y - \hat x_0(x_t))\rVert^2$, and $\hat\epsilon$ is recomputed from it; the known
#   pixels are still replaced after every step. Each evaluation then also takes a backward pass through the
#   network: on this project's CPU one backward pass costs 1.08 forward passes, so a guided step costs
#   2.08x a plain one (`backward_cost_in_forwards` in `benchmarks/results/quality_ladder11700_cpu.json`).
#   On the shipped model it is the largest single improvement measured (notebook 05, `docs/quality.md`), and it
#   adds up with `dc_repeats`. The setting recommended for this model, `RECOMMENDED["mnist"]`, is weight
#   20 at 10 steps with 3 resampling rounds, chosen on *training* digits by `benchmarks/tune_samplers.py`;
#   the row above uses the weight with this notebook's steps and the design's `dc_repeats=2`.
#
# Below, diversity: four fills of the same digit, drawn as one batch of four copies (each copy gets its own
# noise), deterministic steps ($\eta = 0$) against stochastic ones ($\eta = 1$). With $\eta = 0$ only the
# starting noise differs between the copies.

# %%
copies = images[:1].repeat(4, 1, 1, 1)
fig, axes = plt.subplots(2, 5, figsize=(8, 4.2))
for r, eta in enumerate((0.0, 1.0)):
    filled = inpaint(model, copies, hole, steps=S.steps, eta=eta, dc_repeats=2, seed=7)
    axes[r][0].imshow(masked[0, 0], cmap="gray", vmin=0, vmax=1)
    axes[r][0].set_title("masked", fontsize=8)
    for k in range(4):
        axes[r][k + 1].imshow(filled[k, 0], cmap="gray", vmin=0, vmax=1)
        axes[r][k + 1].set_title(f"sample {k + 1}", fontsize=8)
    axes[r][0].set_ylabel(f"eta={eta}")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"Four fills of digit '{labels[0].item()}' ({S.steps} DDIM steps, dc_repeats=2)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. The design's `sample_cmd`
#
# The design document's sampling command inpaints the first `n` test digits and writes a panel. The
# architecture flags (`pred`, `self_cond`, `coord_conv`) are left out here, so they are taken from the
# checkpoint; passed explicitly, they are checked against it. `out_dir` keeps the panel under `outputs/`
# even when the checkpoint is the shipped one inside the package. Full mode uses the design's 400 steps.

# %%
samples = sample_cmd(ckpt=str(CKPT), n=8, steps=min(S.sample_cmd_steps, cfg.T), center_box=12, dc_repeats=2,
                     dc_fixed_z=True, init_from_y=True, eta=0.0, out_dir=str(OUT))
print(f"inpainted {len(samples)} digits -> {OUT / 'samples.png'}")
display(Image(filename=str(OUT / "samples.png")))

# %% [markdown]
# ## 5. Beyond replacement: the best the project does, beside the design
#
# Everything above is the design's sampler, and on this network it often fills the hole with a *different*
# digit: replacement lets the hole see the known pixels only through the network's next input. Two remedies
# ship with the package, and `python -m inpaintlib demo` (the README's first command) shows them row by row
# on the same digits, with the same seed:
#
# * **the design's sampler on the design's model**: `pretrained("mnist")`, replacement with `dc_repeats=2`
#   (`inpaintlib.registry.DESIGN`, what `eval_cmd` runs by default);
# * **the best training-free sampler on the same network**: reconstruction guidance (section 3) with three
#   resampling rounds (`RECOMMENDED["mnist"]`): the same weights, a different sampler;
# * **the mask-conditioned model**: `pretrained("mnist-mask")`, the same U-Net trained with `cond="mask"`, so it
#   is *told* the observation and the hole at every step (`RECOMMENDED["mnist-mask"]`).
#
# Under each fill is the digit that the shipped classifier (`inpaintlib/classifier.py`) reads, green when
# it is the true one. The design's sampler stays one argument away everywhere: `inpaint(model, images, hole)`
# with no sampler arguments *is* the design's step.

# %%
from inpaintlib.demo import demo

shown = demo(out_dir=str(OUT / "demo"), n=S.n_images, seed=0)
for row in shown["rows"]:
    backward = f" (+{row['backward_per_image']} backward)" if row["backward_per_image"] else ""
    print(f"{row['row']:28s} {row['psnr_hole']:6.2f} dB   right digit {row['identity_hits']}/{shown['n']}   "
          f"NFE {row['nfe_per_image']}{backward}")
display(Image(filename=shown["panel"]))

# %% [markdown]
# ## What to take away
#
# * Inpainting with an unconditional diffusion model is a change to the *sampler* only: a DDIM step, then
#   the known pixels overwritten with the observation at the new noise level.
# * Replacement alone does not know what the hole needs: the same network fills the right digit far more
#   often when the sampler also follows the error on the known pixels (guidance), and a network trained to
#   see the observation (`cond="mask"`) does best of all (section 5).
# * The loop fits on one screen, and the library's `ddim_inpaint` is that loop: same seed, same numbers.
# * `eta`, `dc_repeats` and `init_from_y` trade randomness, cost and how much the observation guides the start.
#
# Next, **05_evaluation**: measuring the fill, only inside the hole.

# %% [markdown]
# ## Exercises
#
# 1. Change the guidance weight `W` in section 3 to 5 and to 60 and watch the filled digits: at which weight do
#    they stop agreeing with the ring, and at which do they turn into noise?
# 2. Set `dc_repeats=1` and `dc_repeats=4` in `inpaint_by_hand` and check that it still equals `inpaint`. How
#    many network evaluations does each cost, and where does the seam between box and digit change?
# 3. Pass `known="clean"` to `inpaint` (the known pixels pasted clean, not noised): is the fill better or worse
#    on this network, and why might a network that never saw clean pixels at high noise mind?
