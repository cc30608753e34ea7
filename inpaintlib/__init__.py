"""inpaintlib: diffusion inpainting, from the noise schedule to hole-only evaluation.

The MNIST centre-hole pipeline of the design document (``mnist/``):
    train(...), sample_cmd(...), eval_cmd(...)         the three calls of a notebook cell
    load_model(path), inpaint(model, images, hole)      the functional core (``sampler=`` picks a rung)
    pretrained("mnist")                                 a shipped checkpoint's path

The 128x128 free-form system of the architecture guide (``freeform/``):
    train_inpainting(dataset_path, checkpoint_path, num_epochs, batch_size, ...)
    inpaint_image(image_path, mask_path, checkpoint_path, num_denoising_steps=50, save_result=...)
    InpaintingUNET, UNET, UnetLayer, DDPM_Scheduler, InpaintingDataset, make_patterns, random_hole

Imports run one way (``docs/layout.md``, tested by ``tests/test_layers.py``): the shared core
(schedule, blocks, masks, metrics, reverse, samplers, trainer, checkpoint, ...), then the two systems,
then the registry, the demo, the widget and the notebooks' helpers. ``__all__`` is the public API;
everything else stays importable from its own module (e.g. ``inpaintlib.reverse.ddim_step``).
"""
# the shared core
from .blocks import Attention, ResBlock, SinusoidalEmbeddings
from .masks import MASK_KINDS, center_hole, random_hole, random_keep_mask
from .metrics import HoleMetrics, l1_hole, mse_hole, psnr_hole
from .samplers import (SAMPLERS, ddim_inpaint, ddnm_inpaint, diffpir_inpaint, guidance_inpaint, inpaint,
                       pigdm_inpaint, sampler_options, smc_inpaint)
from .schedule import NoiseSchedule, ddim_timesteps
from .utils import display_reverse, seed_all, set_seed, setup_cuda_device
# the MNIST design
from .mnist import (DenoiserUNet, ModelConfig, TrainConfig, count_parameters, eval_cmd, load_mnist, load_test_images,
                    sample_cmd, train)
# the architecture guide's free-form system
from .freeform import (DDPM_Scheduler, FreeformConfig, InpaintingDataset, InpaintingUNET, UNET, UnetLayer,
                       compare_with_telea, freeform_config, inpaint_image, make_patterns, telea_inpaint,
                       train_inpainting)
# the shipped models, and loading any checkpoint
from .registry import DESIGN, RECOMMENDED, load_model, pretrained
# on top
from .widget import CanvasMask, FreeformInpaintWidget, InpaintWidget, run_inpainting

__version__ = "0.1.0"

__all__ = [
    # the design's three calls, and the functional core
    "train", "sample_cmd", "eval_cmd", "TrainConfig", "load_model", "pretrained", "inpaint", "DESIGN", "RECOMMENDED",
    # the samplers
    "SAMPLERS", "sampler_options", "ddim_inpaint", "guidance_inpaint", "ddnm_inpaint", "pigdm_inpaint",
    "diffpir_inpaint", "smc_inpaint",
    # the pieces the notebooks build
    "NoiseSchedule", "ddim_timesteps", "SinusoidalEmbeddings", "ResBlock", "Attention", "DenoiserUNet", "ModelConfig",
    # masks, data and metrics
    "count_parameters", "MASK_KINDS", "center_hole", "random_hole", "random_keep_mask", "load_mnist", "load_test_images",
    "HoleMetrics", "psnr_hole",
    "l1_hole", "mse_hole", "display_reverse", "set_seed", "seed_all", "setup_cuda_device",
    # the architecture guide's free-form system
    "train_inpainting", "inpaint_image", "InpaintingUNET", "UNET", "UnetLayer", "DDPM_Scheduler", "FreeformConfig",
    "freeform_config", "InpaintingDataset", "make_patterns", "telea_inpaint", "compare_with_telea",
    # the widget
    "InpaintWidget", "FreeformInpaintWidget", "CanvasMask", "run_inpainting",
    "__version__",
]
