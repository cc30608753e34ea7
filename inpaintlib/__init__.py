"""inpaintlib: diffusion inpainting, from the noise schedule to hole-only evaluation.

The MNIST centre-hole pipeline of the design document:
    train(...), sample_cmd(...), eval_cmd(...)         the three calls of a notebook cell
    load_model(path), inpaint(model, images, hole)      the functional core
    pretrained("mnist")                                 a shipped checkpoint's path

The 128x128 free-form system of the architecture guide (``freeform/``):
    train_inpainting(dataset_path, checkpoint_path, num_epochs, batch_size, ...)
    inpaint_image(image_path, mask_path, checkpoint_path, num_denoising_steps=50, save_result=...)
    InpaintingUNET, UNET, UnetLayer, DDPM_Scheduler, InpaintingDataset, make_patterns, random_hole
"""
from .blocks import Attention, ResBlock, SinusoidalEmbeddings
from .checkpoint import load_checkpoint, load_model
from .data import center_hole, load_mnist, load_test_images, to_model, to_unit
from .evaluate import HoleMetrics, eval_cmd, l1_hole, mse_hole, psnr_hole, sample_cmd
from .freeform import (DDPM_Scheduler, FreeformConfig, InpaintingUNET, UNET, UnetLayer, build_freeform_model,
                       compare_with_telea, freeform_config, inpaint_image, telea_inpaint, train_inpainting)
from .freeform import MASK_KINDS, InpaintingDataset, make_patterns, random_hole, random_keep_mask
from .model import DenoiserUNet, ModelConfig, count_parameters
from .pretrained import pretrained
from .sampling import Denoiser, ddim_inpaint, ddim_step, inpaint, nfe_per_image
from .schedule import NoiseSchedule, ddim_timesteps
from .train import TrainConfig, TrainResult, train
from .utils import display_reverse, set_seed, setup_cuda_device
from .widget import CanvasMask, FreeformInpaintWidget, InpaintWidget, run_inpainting

__version__ = "0.1.0"
