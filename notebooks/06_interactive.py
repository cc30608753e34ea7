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
# # 06 · Interactive: draw a hole, watch reverse diffusion fill it
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/inpaintlib/inpaintlib/blob/main/notebooks/06_interactive.ipynb)
#
# <small>The badge's address is built from `inpaintlib.notebook.REPO_URL`, the one place the repository's
# public address is written; a test checks that this copy agrees with it.</small>
#
# Notebooks 04 and 05 filled the MNIST design's 12x12 centre box ([docs/sources.md](../docs/sources.md)). Here **you** choose the hole: paint it on a
# digit with the mouse, press **Run**, and watch DDIM fill it step by step.
#
# 1. the MNIST widget: a test digit (or one you draw), a brush for the hole, the sampler's knobs, a live view;
# 2. the same widget driven from code (a hole set from a tensor, a run, the frames, a GIF under `outputs/`);
# 3. the free-form model of notebook 07 in the same widget: a generated pattern or an image you upload.
#
# The widget lives in `inpaintlib/widget/` (its pure core in `core.py`, the widgets in `ui.py`). It adds nothing to the sampler: the live view hangs off
# `inpaint`'s `callback`, exactly as `display_reverse` did in notebook 04. It works in JupyterLab,
# Notebook 7, VS Code and Colab (where it turns on Colab's custom widget manager itself).

# %%
# FAST = True: small sizes and the same code, a few minutes on a CPU (the README's table has the times).
# FAST = False: the full sizes, 50 DDIM steps a run: seconds a run on a CPU.
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

from inpaintlib import center_hole, display_reverse, load_model, load_test_images, pretrained, random_hole
from inpaintlib.notebook import sizes
from inpaintlib.registry import BEST, recommended
from inpaintlib.widget import FreeformInpaintWidget, InpaintWidget

# fast mode (INPAINTLIB_FAST=1) changes sizes only: fewer DDIM steps, fewer digits and patterns
S = sizes(fast=dict(steps=10, every=2, n_images=20, n_patterns=6, ff_steps=10),
          full=dict(steps=50, every=5, n_images=200, n_patterns=24, ff_steps=50))
OUT = Path("outputs/06_interactive")
OUT.mkdir(parents=True, exist_ok=True)

# the best shipped MNIST model and the sampler settings it is measured best with (inpaintlib/registry.py);
# the design's model and sampler are one argument away: load_model(pretrained("mnist")) and dc_repeats=2
CKPT = pretrained(BEST)
SETTINGS = recommended(BEST)
model = load_model(CKPT, device=env.device)
images, labels = load_test_images("data", S.n_images)
print(f"{len(images)} test digits; model {BEST!r} ({CKPT.name}, cond={model.config.cond!r}); sampler "
      f"{SETTINGS['sampler']!r} with {S.steps} steps, dc_repeats={SETTINGS['dc_repeats']}; "
      f"the live view every {S.every} proposals")

# %% [markdown]
# ## 1. The widget
#
# * **image**: a test digit chosen by index, or *draw a digit* on the empty canvas (white ink) and
#   inpaint your own handwriting;
# * **brush**: paint the hole (red) with the mouse, or erase it; *brush size* is in image pixels;
#   *clear hole* empties it and *centre box* puts back the design's 12x12 square;
# * **sampler** picks one of `inpaintlib.samplers.SAMPLERS` (notebook 08 takes each apart); **DDIM steps**,
#   **eta** (0: deterministic DDIM; 1: ancestral noise), **dc_repeats** (RePaint's resampling: each timestep
#   visited that many times) and **guidance** (the weight of `sampler="guidance"`, notebook 04) are
#   `inpaint`'s arguments; a control the chosen sampler does not take is greyed out. The widget starts with
#   the best shipped model, `pretrained("mnist-mask")` (it sees the observation and the hole, notebook 04
#   section 5), at its recommended settings; for the design's model pass `load_model(pretrained("mnist"))`
#   and compare `sampler="replace"` (the design's) with `sampler="guidance"`;
#   *view every* sets how often the live view is redrawn;
# * **Run**: the live view shows $x_t$ and the network's estimate of $x_0$ side by side as the
#   sampler goes; it ends on input, result and ground truth. *save GIF* writes the whole run.
#
# How the mask gets to Python: the canvas is 10x the digit (280 x 280 px). After each stroke the
# browser sends the painted layer as a PNG; the kernel averages each 10x10 block and makes an image
# pixel part of the hole when at least half of it is painted. The line under the canvas
# ("hole: N of 784 pixels") is computed by the kernel, so it shows what the sampler will get.

# %%
widget = InpaintWidget(model, images, labels, index=0, steps=S.steps, sampler=SETTINGS["sampler"],
                       dc_repeats=SETTINGS["dc_repeats"], every=S.every, seed=0, gif_path=OUT / "widget.gif")
widget

# %% [markdown]
# ## 2. The same, from code
#
# Everything the buttons do has a method: `set_hole(tensor)`, `paint(points)`, `clear_hole()`,
# `centre_box()`, `show_digit(i)`, `run()`, `save_gif(path)`. The widget above follows along: run this
# cell and it shows the design's centre box being filled.

# %%
widget.set_hole(center_hole(28, 12))
result = widget.run()
print(widget.status.value)
known = widget.hole == 0
assert torch.equal(result[known.expand_as(result)], widget.image[known.expand_as(result)]), "known pixels changed"
print(f"{len(widget.frames)} frames kept; every known pixel is the input's own")
fig = display_reverse(widget.frames, n_show=min(8, len(widget.frames)), title="the run above: x_t and x0 estimate")
plt.show()

# %% [markdown]
# The frames are `inpaint`'s callback dicts (`x`, `x0_pred`, `t`, ...), one every `every` proposals,
# so `display_reverse` from notebook 04 draws them as they are. `save_gif` writes the run as an
# animation: one frame per kept step, then the result.

# %%
gif = widget.save_gif(OUT / "reverse_diffusion.gif")
print(f"saved {gif}")
display(Image(filename=str(gif)))

# %% [markdown]
# A free-form hole from code: a stroke through the digit, as the mouse would paint it (points are
# $(x, y)$ in image pixels, the brush 4 pixels wide).

# %%
widget.clear_hole().paint([(6, 8), (14, 14), (22, 20)], brush=4)
print(widget.hole_label.value)
widget.run(seed=1)
print(widget.status.value)
display(Image(data=widget.result_view.value))

# %% [markdown]
# ## 3. The free-form model
#
# The same widget around notebook 07's mask-conditioned `InpaintingUNET`: pick a generated pattern
# (`make_patterns`) or **upload** an image (centre-cropped and resized to the model's size), paint any
# hole, run. The sampler is the architecture guide's algorithm, as in `inpaint_image`: start from noise
# in the hole and paste the clean known pixels into every $x_t$ and every $x_0$ estimate
# (`known="clean"`, `init_from_y=False`). The model is `pretrained("patterns-residual")`, which diffuses the
# hole's residual from a regression U-Net's estimate of the posterior mean (notebook 07, section 6).

# %%
candidates = [Path("outputs/07_free_form/small_model.pt"), Path("outputs/07_free_form_fast/small_model.pt")]
try:
    ff_path = pretrained("patterns-residual")  # diffuses the residual from the MMSE reference's fill (notebook 07)
    print(f"using the shipped free-form model {ff_path.name}")
except FileNotFoundError:
    ff_path = next((p for p in candidates if p.is_file()), None)
    print(f"no shipped free-form model in this copy: using {ff_path} from notebook 07" if ff_path else
          "no free-form model anywhere: an untrained network (the fill will be noise); run notebook 07 first")
if ff_path is not None:
    ff_model = load_model(ff_path, device=env.device)
else:
    from inpaintlib import InpaintingUNET, freeform_config

    ff_model = InpaintingUNET(freeform_config("small")).to(env.device).eval()
ff = FreeformInpaintWidget(ff_model, n_patterns=S.n_patterns, steps=S.ff_steps, every=S.every,
                           gif_path=OUT / "freeform.gif")
ff

# %% [markdown]
# And from code: a random brush-stroke hole (`random_hole`, as in training) on pattern 2.

# %%
size = ff_model.config.image_size
ff.show_pattern(2).set_hole(random_hole("stroke", size, coverage=(0.2, 0.3), generator=torch.Generator().manual_seed(0)))
ff.run()
print(ff.status.value)
print(f"saved {ff.save_gif()}")
display(Image(data=ff.result_view.value))

# %% [markdown]
# The widget shows one sample. Its **compare fills** button (or `ff.compare()`) sets it beside the other fills of
# notebook 07 on the same hole, each with its PSNR_hole: the harmonic fill, OpenCV Telea, this sample,
# `inpaint_image`'s default fill (the mean of eight samples) and the MMSE reference (`pretrained("patterns-mmse")`,
# a regression U-Net's estimate of the posterior mean). The image on the canvas is the ground truth.

# %%
ff.compare()
print(ff.status.value)
display(Image(data=ff.compare_view.value))

# %% [markdown]
# ## Exercises
#
# 1. Paint a hole that covers only the top half of a 7: how often does the model draw a 7 again, and what else
#    does it draw? Try three seeds.
# 2. Draw a digit of your own in the canvas, hide one stroke and run: does the model continue *your*
#    handwriting or draw a typical MNIST stroke?
# 3. Load the design's model (`load_model(pretrained("mnist"))`) into the widget and run the same hole with
#    `sampler="replace"` and `sampler="guidance"`: which one keeps the digit, and what does each cost in NFE?
