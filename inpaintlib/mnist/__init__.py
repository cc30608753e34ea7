"""The MNIST design: 28x28 digits, the 12x12 centre hole, a timestep-conditioned U-Net.

    model.py    ModelConfig, DenoiserUNet (cond="none": the design; cond="mask": it also sees y and the hole)
    data.py     MNIST through torchvision, the shipped test sample, in-memory batches
    recipe.py   the design's three calls: train (its loss and batches on inpaintlib/trainer.py's loop),
                sample_cmd and eval_cmd

Inpainting itself is the shared sampler module (``inpaintlib/samplers/``): the design's is DDIM with
mask consistency (``samplers.ddim_inpaint``).
"""
from .data import SAMPLE_FILE, TensorBatches, load_mnist, load_mnist_sample, load_test_images
from .model import CONDITIONS, DenoiserUNet, ModelConfig, build_mnist_model, count_parameters
from .recipe import (RESUMABLE_CHANGES, TRAIN_HOLES, TrainConfig, TrainResult, check_model_flags, diffusion_loss,
                     eval_cmd, read_history, sample_cmd, train, train_step, training_holes, write_history,
                     write_panel)
