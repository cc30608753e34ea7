"""How good is diffusion inpainting on MNIST with the 12x12 centre hole? Measured against anchors.

    python benchmarks/quality.py --ckpt mnist=inpaintlib/weights/mnist_default.pt \
        --ckpt mnist-mask=inpaintlib/weights/mnist_cond_mask.pt          # full 10k test split
    python benchmarks/quality.py --quick ...                             # 500 images, fewer settings

Rows (hole-only PSNR pooled over all images, as CONVENTIONS.md defines it, and hole-only L1):
  baselines       zero fill; the mean training image; OpenCV Telea and Navier-Stokes; nearest
                  neighbours on the known pixels over the training split (k=1, mean of k=10)
  regression      a U-Net (the diffusion network's architecture) trained with MSE on the hole:
                  it estimates E[x | y], the MMSE reference, the ceiling on a single prediction's PSNR
  diffusion       each checkpoint at 10/25/50/100 DDIM steps, dc_repeats 1 and 2, NFE per image
  posterior mean  the mean of K = 1, 4, 16 samples per image (a perfect posterior sampler is 3 dB
                  below the MMSE reference with one sample and 10 log10(1 + 1/K) dB below with K)
  digit identity  a small CNN (>= 99% test accuracy, trained here) reads each output; the share
                  read as the true label, beside the masked input and the ground truth
Writes outputs/quality/quality.json and quality.md (a markdown table), plus an uncertainty figure.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inpaintlib import DenoiserUNet, HoleMetrics, ModelConfig, center_hole, inpaint, load_mnist, load_model
from inpaintlib.data import to_model, to_unit
from inpaintlib.utils import resolve_device, save_panel

OUT = Path("outputs/quality")


# ----------------------------------------------------------------------------------------------
# baselines


def zero_fill(images, hole):
    return images * (1 - hole)


def mean_fill(images, hole, train_mean):
    return images * (1 - hole) + train_mean * hole


def opencv_fill(images, hole, method: str):
    import cv2

    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    mask = (hole[0, 0].numpy() * 255).astype(np.uint8)
    out = []
    for img in images:
        u8 = (img[0].numpy() * 255).round().astype(np.uint8)
        out.append(torch.from_numpy(cv2.inpaint(u8, mask, 3, flag)).float() / 255)
    filled = torch.stack(out).unsqueeze(1)
    return torch.where(hole.bool(), filled, images)


def knn_fill(images, hole, train_images, k: int, device, chunk: int = 512):
    """Nearest neighbours by Euclidean distance on the known pixels; fill with the mean of k."""
    keep = (hole.flatten() == 0)
    train_flat = train_images.flatten(1).to(device)
    known_train = train_flat[:, keep]
    sq_train = (known_train ** 2).sum(1)
    out = []
    for start in range(0, len(images), chunk):
        q = images[start:start + chunk].flatten(1).to(device)[:, keep]
        d = (q ** 2).sum(1, keepdim=True) - 2 * q @ known_train.T + sq_train[None]
        idx = d.topk(k, largest=False).indices
        out.append(train_flat[idx].mean(1).cpu())
    filled = torch.cat(out).reshape(images.shape)
    return torch.where(hole.bool(), filled, images)


# ----------------------------------------------------------------------------------------------
# learned references: the MMSE regression U-Net and the digit classifier


def regression_net(device) -> DenoiserUNet:
    """The diffusion network's architecture, fed the observation and the hole, asked for x0 directly."""
    return DenoiserUNet(ModelConfig(cond="mask", pred="x0", T=2)).to(device)


def regression_predict(net, images, hole):
    y = to_model(images) * (1 - hole)
    t = torch.ones(len(images), dtype=torch.long, device=images.device)
    out = net(torch.zeros_like(y), t, y=y, hole=hole.expand(len(images), 1, 28, 28))
    return torch.where(hole.bool(), to_unit(out), images)


def train_regression(train_images, hole, device, steps: int, batch: int = 128, seed: int = 0):
    torch.manual_seed(seed)
    net = regression_net(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    h = hole.to(device)
    for step in range(steps):
        idx = torch.randint(len(train_images), (batch,), generator=g)
        x = train_images[idx].to(device)
        loss = (((regression_predict(net, x, h) - x) ** 2) * h).sum() / (h.sum() * batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


class DigitClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 49, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x01):
        return self.head(self.features((x01 - 0.1307) / 0.3081))


def train_classifier(train_images, train_labels, device, epochs: int, seed: int = 0):
    torch.manual_seed(seed)
    net = DigitClassifier().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(train_images), generator=g)
        for start in range(0, len(order), 128):
            idx = order[start:start + 128]
            x, y = train_images[idx].to(device), train_labels[idx].to(device)
            shift = torch.randint(-2, 3, (2,), generator=g).tolist()  # small translations
            x = torch.roll(x, shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def accuracy(classifier, images, labels, device, chunk: int = 1000) -> float:
    hits = 0
    for start in range(0, len(images), chunk):
        pred = classifier(images[start:start + chunk].to(device)).argmax(1).cpu()
        hits += (pred == labels[start:start + chunk]).sum().item()
    return hits / len(images)


# ----------------------------------------------------------------------------------------------
# the evaluation


def score(name, outputs, images, labels, hole, classifier, device, **extra) -> dict:
    m = HoleMetrics()
    m.update(outputs, images, hole)
    row = {"method": name, **m.summary(), "digit_identity": accuracy(classifier, outputs, labels, device), **extra}
    row["known_pixels_exact"] = bool(torch.equal(outputs * (1 - hole), images * (1 - hole)))
    print(f"{name:48s} PSNR {row['psnr_hole']:6.2f} dB  L1 {row['l1_hole']:.4f}  identity {row['digit_identity']:.3f}"
          + (f"  NFE {extra['nfe_per_image']}" if "nfe_per_image" in extra else ""), flush=True)
    return row


@torch.no_grad()
def diffusion_samples(model, images, hole, steps, dc_repeats, seed, batch, device):
    outs = []
    for k, start in enumerate(range(0, len(images), batch)):
        x = images[start:start + batch].to(device)
        outs.append(inpaint(model, x, hole.to(device), steps=steps, dc_repeats=dc_repeats, seed=seed + k).cpu())
    return torch.cat(outs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", action="append", default=[], help="name=path of a diffusion checkpoint (repeatable)")
    p.add_argument("--data_root", default="data")
    p.add_argument("--n_test", type=int, default=10000)
    p.add_argument("--steps", default="10,25,50,100")
    p.add_argument("--dc_repeats", default="1,2")
    p.add_argument("--posterior_k", default="1,4,16")
    p.add_argument("--posterior_steps", type=int, default=50)
    p.add_argument("--regression_steps", type=int, default=6000)
    p.add_argument("--classifier_epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--device", default=None)
    p.add_argument("--out_dir", default=str(OUT))
    p.add_argument("--quick", action="store_true", help="500 test images, steps 25,50, K 1,4; for a CPU")
    a = p.parse_args(argv)
    if a.quick:
        a.n_test, a.steps, a.posterior_k, a.regression_steps = min(a.n_test, 500), "25,50", "1,4", 1500
    device = resolve_device(a.device)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    train_u8, train_labels = load_mnist(a.data_root, train=True)
    test_u8, test_labels = load_mnist(a.data_root, train=False)
    train_images = train_u8.float() / 255
    images, labels = test_u8[:a.n_test].float() / 255, test_labels[:a.n_test]
    hole = center_hole(28, 12)

    classifier = train_classifier(train_images, train_labels, device, a.classifier_epochs)
    clf_acc = accuracy(classifier, test_u8.float() / 255, test_labels, device)
    torch.save(classifier.state_dict(), out / "classifier.pt")
    print(f"classifier test accuracy (10k): {clf_acc:.4f}")

    rows = [score("ground truth", images, images, labels, hole, classifier, device)]
    rows[0]["psnr_hole"] = None  # infinite by definition
    rows.append(score("masked input (zero fill)", zero_fill(images, hole), images, labels, hole, classifier, device))
    rows.append(score("mean training image", mean_fill(images, hole, train_images.mean(0)), images, labels, hole,
                      classifier, device))
    for method in ("telea", "ns"):
        rows.append(score(f"OpenCV {method}", opencv_fill(images, hole, method), images, labels, hole, classifier, device))
    for k in (1, 10):
        rows.append(score(f"nearest neighbours k={k}", knn_fill(images, hole, train_images, k, device), images, labels,
                          hole, classifier, device))
    reg = train_regression(train_images, hole, device, a.regression_steps)
    with torch.no_grad():
        reg_out = torch.cat([regression_predict(reg, images[s:s + a.batch].to(device), hole.to(device)).cpu()
                             for s in range(0, len(images), a.batch)])
    mmse = score("regression U-Net (MMSE reference)", reg_out, images, labels, hole, classifier, device)
    rows.append(mmse)

    figures = {}
    for spec in a.ckpt:
        name, path = spec.split("=", 1)
        model = load_model(path, device=device)
        for steps in map(int, a.steps.split(",")):
            for rep in map(int, a.dc_repeats.split(",")):
                t0 = time.perf_counter()
                outs = diffusion_samples(model, images, hole, steps, rep, seed=0, batch=a.batch, device=device)
                rows.append(score(f"{name}: {steps} steps, dc_repeats={rep}", outs, images, labels, hole, classifier,
                                  device, nfe_per_image=steps * rep, seconds=time.perf_counter() - t0,
                                  gap_to_mmse_db=None))
                rows[-1]["gap_to_mmse_db"] = mmse["psnr_hole"] - rows[-1]["psnr_hole"]
        samples = []
        for k in range(max(map(int, a.posterior_k.split(",")))):
            samples.append(diffusion_samples(model, images, hole, a.posterior_steps, 1, seed=1000 * (k + 1),
                                             batch=a.batch, device=device))
        for K in map(int, a.posterior_k.split(",")):
            mean = torch.stack(samples[:K]).mean(0)
            row = score(f"{name}: mean of {K} samples ({a.posterior_steps} steps)", mean, images, labels, hole,
                        classifier, device, nfe_per_image=a.posterior_steps * K)
            row["gap_to_mmse_db"] = mmse["psnr_hole"] - row["psnr_hole"]
            row["ideal_gap_db"] = 10 * math.log10(1 + 1 / K)  # a perfect posterior sampler's gap
            rows.append(row)
        stack = torch.stack(samples)
        figures[name] = save_panel([images[:8] * (1 - hole) + 0.5 * hole, stack[0, :8], stack.mean(0)[:8],
                                    (stack.std(0)[:8] * 4).clamp(0, 1), images[:8]], out / f"uncertainty_{name}.png",
                                   row_titles=["masked", "one sample", f"mean of {len(samples)}", "std x4",
                                               "ground truth"], title=f"{name}: posterior samples and uncertainty")

    result = {"rows": rows, "n_test": len(images), "classifier_test_accuracy": clf_acc,
              "hardware": {"device": str(device), "cpu": platform.processor() or platform.machine(),
                           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                           "torch": torch.__version__, "threads": torch.get_num_threads()},
              "seconds": time.perf_counter() - t_start, "command": "python benchmarks/quality.py " + " ".join(argv or []),
              "figures": {k: str(v) for k, v in figures.items()}}
    (out / "quality.json").write_text(json.dumps(result, indent=2))
    (out / "quality.md").write_text(markdown_table(rows, result))
    print(markdown_table(rows, result))
    return result


def markdown_table(rows, result) -> str:
    lines = [f"Hole-only metrics, MNIST test split (first {result['n_test']} images), 12x12 centre hole; "
             f"device {result['hardware']['device']}, torch {result['hardware']['torch']}.", "",
             "| method | NFE/image | PSNR_hole (dB) | L1_hole | per-image PSNR (dB) | digit identity | gap to MMSE (dB) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        psnr = "inf" if r["psnr_hole"] is None else f"{r['psnr_hole']:.2f}"
        gap = "" if r.get("gap_to_mmse_db") is None else f"{r['gap_to_mmse_db']:.2f}"
        lines.append(f"| {r['method']} | {r.get('nfe_per_image', '')} | {psnr} | {r['l1_hole']:.4f} | "
                     f"{r['psnr_hole_per_image_mean']:.2f} | {r['digit_identity']:.3f} | {gap} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
