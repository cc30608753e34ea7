"""Rebuild inpaintlib/assets/mnist_test_sample.npz from the full MNIST test split in data/."""
import numpy as np

from inpaintlib.mnist.data import SAMPLE_FILE, load_mnist

images, labels = load_mnist("data", train=False)
np.savez_compressed(SAMPLE_FILE, images=images[:1000, 0].numpy(), labels=labels[:1000].numpy())
print(f"wrote {SAMPLE_FILE}")
