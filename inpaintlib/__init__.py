"""inpaintlib: diffusion inpainting, from the noise schedule to hole-only evaluation.

The MNIST centre-hole pipeline of the design document (``mnist/``):
    train(...), sample_cmd(...), eval_cmd(...)         the three calls of a notebook cell
    load_model(path), inpaint(model, images, hole)      the functional core (``sampler=`` picks a rung)
    pretrained("mnist")                                 a shipped checkpoint's path

The 128x128 free-form system of the architecture guide (``freeform/``):
    train_inpainting(dataset_path, checkpoint_path, num_epochs, batch_size, ...)
    inpaint_image(image_path, mask_path, checkpoint_path, num_denoising_steps=50, save_result=...)
    InpaintingUNET, UNET, UnetLayer, DDPM_Scheduler, InpaintingDataset, make_patterns, random_hole

Imports run one way: the shared core (schedule, blocks, masks, metrics, sampling, samplers, trainer,
checkpoint, ...), then the two systems, then the demo, the widget and the notebooks' helpers.
"""
# the shared core
from .blocks import Attention, ResBlock, SinusoidalEmbeddings
from .checkpoint import load_checkpoint
from .masks import MASK_KINDS, center_hole, random_hole, random_keep_mask
from .metrics import HoleMetrics, l1_hole, mse_hole, psnr_hole
from .samplers import SAMPLERS, ddnm_inpaint, diffpir_inpaint, guidance_inpaint, pigdm_inpaint, smc_inpaint
from .sampling import Denoiser, ddim_inpaint, ddim_step, nfe_per_image
from .samplers import inpaint
from .schedule import NoiseSchedule, ddim_timesteps
from .utils import display_reverse, seed_all, set_seed, setup_cuda_device, to_model, to_unit
# the MNIST design
from .mnist import (DenoiserUNet, ModelConfig, TrainConfig, TrainResult, count_parameters, eval_cmd, load_mnist,
                    load_test_images, sample_cmd, train)
# the architecture guide's free-form system
from .freeform import (DDPM_Scheduler, FreeformConfig, InpaintingDataset, InpaintingUNET, UNET, UnetLayer,
                       build_freeform_model, compare_with_telea, freeform_config, inpaint_image, make_patterns,
                       telea_inpaint, train_inpainting)
# the shipped models, and loading any checkpoint
from .registry import load_model, pretrained
# on top
from .widget import CanvasMask, FreeformInpaintWidget, InpaintWidget, run_inpainting

__version__ = "0.1.0"
