"""Digit classifiers that read inpainted MNIST digits: how often a fill is the *right* digit.

    digit_classifier()                 the shipped CNN that reads a whole digit (``mnist_classifier.pt``)
    masked_digit_classifier()          the shipped CNN that reads a digit with the 12x12 centre hole
                                       zeroed, temperature-calibrated (``mnist_masked_classifier.pt``)
    digit_identity(clf, images, labels)   the share of images read as their true label
    train_classifier(...), fit_temperature(...)   how both were made (scripts/train_classifiers.py)

PSNR inside the hole cannot tell a sharp wrong digit from a sharp right one; the identity can.
The masked classifier estimates p(label | observed pixels): its mean probability for the true label
is the identity an exact posterior sampler would reach (the "ideal posterior" row of the quality
table), and a sampler's label histogram can be compared with it.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import FORMAT, VERSION, WEIGHTS_DIR, atomic_save, load_checkpoint

CLASSIFIER_FILE = WEIGHTS_DIR / "mnist_classifier.pt"
MASKED_CLASSIFIER_FILE = WEIGHTS_DIR / "mnist_masked_classifier.pt"


class DigitClassifier(nn.Module):
    """A small CNN on [0, 1] digits (B, 1, 28, 28) -> logits (B, 10), divided by ``temperature``."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 49, 128), nn.ReLU(), nn.Linear(128, 10))
        self.register_buffer("temperature", torch.ones(()))

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((x01 - 0.1307) / 0.3081)) / self.temperature


def check_digits(images, name: str = "images") -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a tensor of shape (B, 1, 28, 28) in [0, 1], got {shape}")
    return images.float()


def train_classifier(images01: torch.Tensor, labels: torch.Tensor, epochs: int = 3, seed: int = 0,
                     hole: torch.Tensor | None = None, device="cpu", batch: int = 128) -> DigitClassifier:
    """Adam on cross-entropy, with random shifts of up to 2 pixels. With ``hole`` (1, 1, 28, 28),
    the hole is zeroed *after* the shift, so the classifier learns to read the observed pixels of a
    digit whose hole is always in the same place."""
    images01 = check_digits(images01)
    torch.manual_seed(seed)
    net = DigitClassifier().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    keep = None if hole is None else (1.0 - hole.float()).to(device)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images01), generator=g)
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            x, y = images01[idx].to(device), labels[idx].to(device)
            shift = torch.randint(-2, 3, (2,), generator=g).tolist()
            x = torch.roll(x, shifts=shift, dims=(2, 3))
            if keep is not None:
                x = x * keep
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def logits_of(classifier: DigitClassifier, images01: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    images01 = check_digits(images01)
    device = next(classifier.parameters()).device
    return torch.cat([classifier(images01[s:s + chunk].to(device)).float().cpu()
                      for s in range(0, len(images01), chunk)])


def fit_temperature(classifier: DigitClassifier, images01: torch.Tensor, labels: torch.Tensor) -> float:
    """Set ``classifier.temperature`` to the single T > 0 that minimises the held-out negative
    log-likelihood of ``labels`` (temperature scaling: Guo et al. 2017). Returns T."""
    classifier.temperature.fill_(1.0)
    logits = logits_of(classifier, images01)
    log_t = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    classifier.temperature.fill_(t)
    return t


def digit_identity(classifier: DigitClassifier, images01: torch.Tensor, labels) -> float:
    """The share of ``images01`` that ``classifier`` reads as ``labels``."""
    labels = torch.as_tensor(labels)
    return float((logits_of(classifier, images01).argmax(1) == labels).float().mean())


def predicted_labels(classifier: DigitClassifier, images01: torch.Tensor) -> torch.Tensor:
    return logits_of(classifier, images01).argmax(1)


def label_probabilities(classifier: DigitClassifier, images01: torch.Tensor) -> torch.Tensor:
    """softmax of the (temperature-scaled) logits, (B, 10)."""
    return logits_of(classifier, images01).softmax(1)


def save_classifier(classifier: DigitClassifier, path, meta: dict) -> Path:
    state = {k: v.half() if v.is_floating_point() and k != "temperature" else v
             for k, v in classifier.state_dict().items()}
    return atomic_save({"format": FORMAT, "version": VERSION, "kind": "classifier", "model_config": {},
                        "meta": meta, "ema": state}, path)


def load_classifier(path, device="cpu") -> DigitClassifier:
    ckpt = load_checkpoint(path, kind="classifier")
    net = DigitClassifier()
    net.load_state_dict({k: v.float() for k, v in ckpt["ema"].items()})
    net.meta = ckpt.get("meta", {})
    return net.to(device).eval()


def _shipped(path: Path, device) -> DigitClassifier:
    if not path.exists():
        raise FileNotFoundError(f"the shipped classifier {path} is not in this copy of inpaintlib: "
                                f"python scripts/train_classifiers.py writes it")
    return load_classifier(path, device)


def digit_classifier(device="cpu") -> DigitClassifier:
    """The shipped CNN that reads whole digits (its card: ``weights/mnist_classifier.md``)."""
    return _shipped(CLASSIFIER_FILE, device)


def masked_digit_classifier(device="cpu") -> DigitClassifier:
    """The shipped CNN that reads digits with the 12x12 centre hole zeroed, temperature-calibrated."""
    return _shipped(MASKED_CLASSIFIER_FILE, device)
