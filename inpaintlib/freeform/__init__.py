"""The 128x128 mask-conditioned inpainting system of the architecture guide.

    model.py      FreeformConfig, PRESETS, DDPM_Scheduler, UnetLayer, UNET, InpaintingUNET
    data.py       make_patterns, InpaintingDataset (the holes are inpaintlib/masks.py's random_hole)
    recipe.py     train_inpainting: the guide's loss and batches on the shared loop (inpaintlib/trainer.py)
    image_io.py   inpaint_image: the guide's inference on image files of any size
    baseline.py   OpenCV Telea, the harmonic fill, the MMSE reference's fill, and the comparison on the same holes
    photos.py     scikit-image's bundled photographs and seeded crops for a training folder

Sampling is the shared ``samplers.ddim_inpaint`` with ``known="clean"`` (the guide's DDIM algorithm);
the blocks are the shared ones of ``inpaintlib/blocks.py``.
"""
from .baseline import compare_with_telea, harmonic_fill, mmse_fill, model_fill, telea_inpaint
from ..masks import MASK_KINDS, check_coverage, random_hole, random_keep_mask
from .data import PATTERN_KINDS, InpaintingDataset, find_images, load_rgb, make_patterns, read_image
from .image_io import inpaint_image
from .model import (NETWORK_CONDITIONS, PRESETS, DDPM_Scheduler, FreeformConfig, InpaintingUNET, MaskedInput, UNET,
                    UnetLayer, build_freeform_model, freeform_config)
from .recipe import (RESUMABLE_CHANGES, InpaintingTrainConfig, InpaintingTrainResult, checkpoint_file, hole_loss,
                     train_inpainting)
