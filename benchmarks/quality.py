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
import re
import time
from pathlib import Path

import numpy as np
import torch

from inpaintlib import DenoiserUNet, HoleMetrics, ModelConfig, center_hole, inpaint, load_mnist, load_model
from inpaintlib.classifier import DigitClassifier, train_classifier
from inpaintlib.utils import to_model, to_unit
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


def regression_net(device, base_channels: int = 32) -> DenoiserUNet:
    """The diffusion network's architecture, fed the observation and the hole, asked for x0 directly."""
    return DenoiserUNet(ModelConfig(cond="mask", pred="x0", T=2, base_channels=base_channels)).to(device)


def regression_predict(net, images, hole):
    y = to_model(images) * (1 - hole)
    t = torch.ones(len(images), dtype=torch.long, device=images.device)
    out = net(torch.zeros_like(y), t, y=y, hole=hole.expand(len(images), 1, 28, 28))
    return torch.where(hole.bool(), to_unit(out), images)


def train_regression(train_images, hole, device, steps: int, batch: int = 128, seed: int = 0,
                     base_channels: int = 32):
    """Adam + one-cycle LR on the hole-only MSE; the observation is the image with the hole zeroed."""
    torch.manual_seed(seed)
    net = regression_net(device, base_channels)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=max(steps, 1))
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


def cached(path: Path, meta: dict, build, make_net):
    """Load a reference network saved by an earlier run with the same settings, else build and save it.

    The file holds the settings it was made with; any difference (or ``--retrain``) rebuilds it."""
    if path.exists():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("meta") == meta:
            net = make_net()
            net.load_state_dict(blob["state_dict"])
            return net.eval(), True
    net = build()
    torch.save({"meta": meta, "state_dict": {k: v.cpu() for k, v in net.state_dict().items()}}, path)
    return net, False


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
    row = {"method": name, "n_images": len(images), **m.summary(),
           "digit_identity": accuracy(classifier, outputs, labels, device), **extra}
    row["known_pixels_exact"] = bool(torch.equal(outputs * (1 - hole), images * (1 - hole)))
    print(f"{name:52s} n={len(images):5d}  PSNR {row['psnr_hole']:6.2f} dB  L1 {row['l1_hole']:.4f}  "
          f"identity {row['digit_identity']:.3f}"
          + (f"  NFE {extra['nfe_per_image']}" if extra.get("nfe_per_image") else ""), flush=True)
    return row


@torch.no_grad()
def diffusion_samples(model, images, hole, steps, dc_repeats, seed, batch, device, guidance: float = 0.0):
    outs = []
    for k, start in enumerate(range(0, len(images), batch)):
        x = images[start:start + batch].to(device)
        outs.append(inpaint(model, x, hole.to(device), steps=steps, dc_repeats=dc_repeats, seed=seed + k,
                            guidance=guidance).cpu())
    return torch.cat(outs)


def sampler_label(steps: int, dc_repeats: int, guidance: float = 0.0) -> str:
    """How a diffusion row names its sampler: "50 steps, dc_repeats=2[, guidance=20]"."""
    return f"{steps} steps, dc_repeats={dc_repeats}" + (f", guidance={guidance:g}" if guidance else "")


def target_key(model: str, guidance: float = 0.0) -> str:
    return model + (f" (guidance={guidance:g})" if guidance else "")


NON_LEARNED = ("masked input (zero fill)", "mean training image", "OpenCV telea", "OpenCV ns")


def reference_rows(outputs: dict, images, labels, hole, classifier, device) -> list:
    """Score every non-diffusion method (its outputs precomputed for all images) on ``images``."""
    n = len(images)
    rows = [score("ground truth", images, images, labels, hole, classifier, device)]
    rows[0]["psnr_hole"] = None  # infinite by definition
    for name, out in outputs.items():
        rows.append(score(name, out[:n], images, labels, hole, classifier, device))
    return rows


def check_targets(rows: list, model: str, steps: int, dc_repeats: int, k_max: int, guidance: float = 0.0) -> dict:
    """The issue's targets for one model and sampler, on the rows of one image set. Each: value, threshold, met."""
    by = {r["method"]: r for r in rows}
    label = sampler_label(steps, dc_repeats, guidance)
    single = by[f"{model}: {label}"]
    mean_k = by.get(f"{model}: mean of {k_max} samples ({label})")
    mmse = by["regression U-Net (MMSE reference)"]["psnr_hole"]
    best_plain = max(by[n]["psnr_hole"] for n in NON_LEARNED)
    knn1, knn10 = by["nearest neighbours k=1"]["psnr_hole"], by["nearest neighbours k=10"]["psnr_hole"]
    s, s_ci = single["psnr_hole"], single.get("psnr_hole_ci95")
    t = {
        "single >= best non-learned + 2 dB": (s, best_plain + 2.0, s_ci),
        "single >= kNN k=1 + 1 dB": (s, knn1 + 1.0, s_ci),
        "single >= MMSE - 3.5 dB": (s, mmse - 3.5, s_ci),
        "digit identity of single samples >= 0.95": (single["digit_identity"], 0.95, None),
    }
    if mean_k is not None and k_max > 1:  # the means may be on fewer images: compare on those
        mmse_same = mean_k["psnr_hole"] + mean_k["gap_to_mmse_db"]
        m, m_ci = mean_k["psnr_hole"], mean_k.get("psnr_hole_ci95")
        t[f"mean of {k_max} >= MMSE - 0.5 dB"] = (m, mmse_same - 0.5, m_ci)
        t[f"mean of {k_max} > kNN k=10 mean"] = (m, mean_k.get("knn10_psnr_same_images", knn10), m_ci)
    out = {name: {"value": v, "threshold": thr, "met": bool(v >= thr), "ci95": ci}
           for name, (v, thr, ci) in t.items()}
    # the sampler's outputs (the posterior means are this script's averages of them)
    exact = all(r["known_pixels_exact"] for r in rows
                if r["method"].startswith(f"{model}:") and ": mean of " not in r["method"]
                and r.get("guidance", 0.0) == guidance)
    out["known pixels equal the input exactly"] = {"value": exact, "threshold": True, "met": exact}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", action="append", default=[], help="name=path of a diffusion checkpoint (repeatable)")
    p.add_argument("--data_root", default="data")
    p.add_argument("--n_test", type=int, default=10000, help="test images for the baselines and the references")
    p.add_argument("--n_diffusion", type=int, default=None,
                   help="the first N of those for the diffusion rows (default: all n_test); the baselines are "
                        "scored again on the same N, so that every comparison is on the same images")
    p.add_argument("--steps", default="10,25,50,100")
    p.add_argument("--dc_repeats", default="1,2")
    p.add_argument("--posterior_k", default="1,4,16")
    p.add_argument("--posterior_steps", type=int, default=50)
    p.add_argument("--posterior_dc_repeats", type=int, default=1)
    p.add_argument("--guidance", type=float, default=0.0,
                   help="reconstruction-guidance weight for every diffusion row of this run (0: off, the design's "
                        "sampler); each evaluation then also takes a backward pass")
    p.add_argument("--n_posterior", type=int, default=None,
                   help="the first N images for the posterior-mean rows (default: n_diffusion)")
    p.add_argument("--regression_steps", type=int, default=6000)
    p.add_argument("--regression_batch", type=int, default=128)
    p.add_argument("--regression_channels", type=int, default=32, help="its base_channels (32: the diffusion net's)")
    p.add_argument("--classifier_epochs", type=int, default=3)
    p.add_argument("--n_train", type=int, default=None, help="use only the first N training images (smoke runs)")
    p.add_argument("--retrain", action="store_true", help="retrain the classifier and the regression U-Net even "
                   "when the output folder holds ones made with the same settings")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--device", default=None)
    p.add_argument("--out_dir", default=str(OUT))
    p.add_argument("--cache_dir", default=None, help="where the classifier and the regression U-Net are saved and "
                   "looked for (default: --out_dir)")
    p.add_argument("--quick", action="store_true", help="500 test images, steps 25,50, K 1,4; for a CPU")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="join the quality.json files of runs on the same images into one table in --out_dir")
    a = p.parse_args(argv)
    if a.merge:
        return merge(a.merge, Path(a.out_dir))
    if a.quick:
        a.n_test, a.steps, a.posterior_k, a.regression_steps = min(a.n_test, 500), "25,50", "1,4", 1500
    step_list = [int(v) for v in a.steps.split(",")]
    dc_list = [int(v) for v in a.dc_repeats.split(",")]
    k_list = sorted(int(v) for v in a.posterior_k.split(","))
    for spec in a.ckpt:
        if "=" not in spec:
            raise ValueError(f"--ckpt expects name=path, got {spec!r}")
    device = resolve_device(a.device)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(a.cache_dir) if a.cache_dir else out
    cache.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    train_u8, train_labels = load_mnist(a.data_root, train=True)
    train_u8, train_labels = train_u8[:a.n_train], train_labels[:a.n_train]
    test_u8, test_labels = load_mnist(a.data_root, train=False)
    train_images = train_u8.float() / 255
    images, labels = test_u8[:a.n_test].float() / 255, test_labels[:a.n_test]
    n_diff = min(a.n_diffusion or len(images), len(images))
    n_post = min(a.n_posterior or n_diff, n_diff)
    hole = center_hole(28, 12)

    t0 = time.perf_counter()
    classifier, reused_clf = cached(
        cache / "classifier.pt", {"epochs": a.classifier_epochs, "n_train": len(train_u8), "seed": 0},
        lambda: train_classifier(train_images, train_labels, epochs=a.classifier_epochs, device=device), DigitClassifier)
    classifier = classifier.to(device)
    clf_acc = accuracy(classifier, test_u8.float() / 255, test_labels, device)
    print(f"classifier test accuracy (10k): {clf_acc:.4f} ({'reused' if reused_clf else 'trained'}, "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)

    t0 = time.perf_counter()
    reg, reused_reg = cached(
        cache / "regression.pt",
        {"steps": a.regression_steps, "batch": a.regression_batch, "channels": a.regression_channels,
         "n_train": len(train_u8), "seed": 0},
        lambda: train_regression(train_images, hole, device, a.regression_steps, a.regression_batch,
                                 base_channels=a.regression_channels),
        lambda: regression_net("cpu", a.regression_channels))
    reg = reg.to(device)
    print(f"regression U-Net: {a.regression_steps} steps of batch {a.regression_batch} "
          f"({'reused' if reused_reg else 'trained'}, {time.perf_counter() - t0:.0f} s)", flush=True)

    outputs = {"masked input (zero fill)": zero_fill(images, hole),
               "mean training image": mean_fill(images, hole, train_images.mean(0)),
               "OpenCV telea": opencv_fill(images, hole, "telea"), "OpenCV ns": opencv_fill(images, hole, "ns")}
    for k in (1, 10):
        outputs[f"nearest neighbours k={k}"] = knn_fill(images, hole, train_images, k, device)
    with torch.no_grad():
        outputs["regression U-Net (MMSE reference)"] = torch.cat(
            [regression_predict(reg, images[s:s + a.batch].to(device), hole.to(device)).cpu()
             for s in range(0, len(images), a.batch)])
    all_rows = reference_rows(outputs, images, labels, hole, classifier, device)
    rows = all_rows if n_diff == len(images) else reference_rows(outputs, images[:n_diff], labels[:n_diff], hole,
                                                                 classifier, device)
    mmse = next(r for r in rows if r["method"].startswith("regression"))
    dimages, dlabels = images[:n_diff], labels[:n_diff]

    figures, targets = {}, {}
    for spec in a.ckpt:
        name, path = spec.split("=", 1)
        model = load_model(path, device=device)
        kept = {}
        for steps in step_list:
            for rep in dc_list:
                t0 = time.perf_counter()
                outs = diffusion_samples(model, dimages, hole, steps, rep, seed=0, batch=a.batch, device=device,
                                         guidance=a.guidance)
                seconds = time.perf_counter() - t0
                kept[(steps, rep)] = outs
                row = score(f"{name}: {sampler_label(steps, rep, a.guidance)}", outs, dimages, dlabels, hole,
                            classifier, device, nfe_per_image=steps * rep, seconds=seconds,
                            images_per_second=n_diff / seconds, guidance=a.guidance)
                row["gap_to_mmse_db"] = mmse["psnr_hole"] - row["psnr_hole"]
                rows.append(row)
        samples = []
        for k in range(k_list[-1]):
            if k == 0 and (a.posterior_steps, a.posterior_dc_repeats) in kept:
                samples.append(kept[(a.posterior_steps, a.posterior_dc_repeats)][:n_post])  # seed 0, reused
            else:
                samples.append(diffusion_samples(model, dimages[:n_post], hole, a.posterior_steps,
                                                 a.posterior_dc_repeats, seed=1000 * k, batch=a.batch, device=device,
                                                 guidance=a.guidance))
        pimages, plabels = dimages[:n_post], dlabels[:n_post]
        mmse_post, knn_post = HoleMetrics(), HoleMetrics()
        mmse_post.update(outputs["regression U-Net (MMSE reference)"][:n_post], pimages, hole)
        knn_post.update(outputs["nearest neighbours k=10"][:n_post], pimages, hole)
        for K in k_list:
            # the mean of K equal values need not equal that value in floating point: keep the known pixels exact
            mean = torch.where(hole.bool(), torch.stack(samples[:K]).mean(0), pimages)
            row = score(f"{name}: mean of {K} samples ({sampler_label(a.posterior_steps, a.posterior_dc_repeats, a.guidance)})",
                        mean, pimages, plabels, hole, classifier, device,
                        nfe_per_image=a.posterior_steps * a.posterior_dc_repeats * K, guidance=a.guidance)
            # the gap is taken on the same images (the posterior rows may use fewer)
            row["gap_to_mmse_db"] = mmse_post.summary()["psnr_hole"] - row["psnr_hole"]
            row["ideal_gap_db"] = 10 * math.log10(1 + 1 / K)  # a perfect posterior sampler's gap
            row["knn10_psnr_same_images"] = knn_post.summary()["psnr_hole"]
            rows.append(row)
        stack = torch.stack(samples)
        figures[name] = str(save_panel(
            [pimages[:8] * (1 - hole) + 0.5 * hole, stack[0, :8], stack.mean(0)[:8], (stack.std(0)[:8] * 4).clamp(0, 1),
             pimages[:8]], out / f"uncertainty_{name}.png",
            row_titles=["masked", "one sample", f"mean of {len(samples)}", "std x4", "ground truth"],
            title=f"{name}: posterior samples and per-pixel uncertainty"))
        if (a.posterior_steps, a.posterior_dc_repeats) in kept:
            targets[target_key(name, a.guidance)] = check_targets(rows, name, a.posterior_steps, a.posterior_dc_repeats,
                                                                  k_list[-1], a.guidance)

    result = {"rows": rows, "rows_all_test_images": all_rows if rows is not all_rows else None,
              "n_test": len(images),
              "n_diffusion": n_diff, "n_posterior": n_post, "targets": targets,
              "classifier_test_accuracy": clf_acc,
              "hardware": {"device": str(device), "cpu": platform.processor() or platform.machine(),
                           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                           "torch": torch.__version__, "threads": torch.get_num_threads()},
              "seconds": time.perf_counter() - t_start,
              "command": "python benchmarks/quality.py " + " ".join(argv if argv is not None else []),
              "figures": figures}
    (out / "quality.json").write_text(json.dumps(result, indent=2))
    md = markdown_report(result)
    (out / "quality.md").write_text(md)
    print(md)
    return result


def same_rows(a: list, b: list, rel: float = 1e-6) -> bool:
    """Rows equal field by field, numbers up to float rounding (a network's output may change in its
    last bits with the kernel PyTorch picks; a relative 1e-6 is far below anything the table prints)."""
    def same(x, y):
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=rel, abs_tol=1e-12)
        if isinstance(x, list) and isinstance(y, list):  # the 95% intervals
            return len(x) == len(y) and all(same(u, v) for u, v in zip(x, y))
        return x == y

    return len(a) == len(b) and all(x.keys() == y.keys() and all(same(x[k], y[k]) for k in x) for x, y in zip(a, b))


def merge(paths: list, out: Path) -> dict:
    """Join runs made on the same images with the same references (say, one checkpoint per process)."""
    runs = [json.loads(Path(q).read_text()) for q in paths]
    first = runs[0]
    refs = [r for r in first["rows"] if "nfe_per_image" not in r]
    for run in runs[1:]:
        if (run["n_test"], run["n_diffusion"], run["n_posterior"]) != (first["n_test"], first["n_diffusion"],
                                                                       first["n_posterior"]):
            raise ValueError(f"--merge: {paths} were not made on the same numbers of images")
        if not same_rows([r for r in run["rows"] if "nfe_per_image" not in r], refs):
            raise ValueError(f"--merge: {paths} differ in their baseline or reference rows (other images, "
                             f"another classifier or regression U-Net?)")
    rows = refs + [r for run in runs for r in run["rows"] if "nfe_per_image" in r]
    targets = {}
    for key in (k for run in runs for k in run["targets"]):  # recomputed: the check may be newer than a run
        name, guidance = re.fullmatch(r"(.*?)(?: \(guidance=([0-9.e+-]+)\))?", key).groups()
        guidance = float(guidance or 0.0)
        suffix = re.escape(f", guidance={guidance:g}") if guidance else ""
        mean_rows = [re.fullmatch(rf"{re.escape(name)}: mean of (\d+) samples \((\d+) steps, dc_repeats=(\d+){suffix}\)",
                                  r["method"]) for r in rows]
        k_max, steps, dc = max((int(m[1]), int(m[2]), int(m[3])) for m in mean_rows if m)
        targets[key] = check_targets(rows, name, steps, dc, k_max, guidance)
    result = {**first, "rows": rows, "targets": targets,
              "figures": {k: v for run in runs for k, v in run["figures"].items()},
              "seconds": max(run["seconds"] for run in runs),
              "command": " ; ".join(run["command"] for run in runs) + " ; python benchmarks/quality.py --merge "
                         + " ".join(str(q) for q in paths) + f" --out_dir {out}"}
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps(result, indent=2))
    (out / "quality.md").write_text(markdown_report(result))
    return result


def markdown_table(rows) -> str:
    lines = ["| method | images | NFE/image | PSNR_hole (dB) | 95% interval (dB) | L1_hole | per-image PSNR (dB) "
             "| digit identity | gap to MMSE (dB) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        psnr = "inf" if r["psnr_hole"] is None else f"{r['psnr_hole']:.2f}"
        ci = "" if not r.get("psnr_hole_ci95") else f"{r['psnr_hole_ci95'][0]:.2f} to {r['psnr_hole_ci95'][1]:.2f}"
        gap = "" if r.get("gap_to_mmse_db") is None else f"{r['gap_to_mmse_db']:.2f}"
        if r.get("ideal_gap_db") is not None:
            gap += f" (ideal {r['ideal_gap_db']:.2f})"
        per_image = "inf" if r["psnr_hole"] is None else f"{r['psnr_hole_per_image_mean']:.2f}"
        nfe = str(r.get("nfe_per_image") or "")
        if nfe and r.get("guidance"):
            nfe += f" (+{nfe} backward)"
        lines.append(f"| {r['method']} | {r['n_images']} | {nfe} | {psnr} | {ci} | "
                     f"{r['l1_hole']:.4f} | {per_image} | {r['digit_identity']:.3f} | {gap} |")
    return "\n".join(lines) + "\n"


def markdown_report(result) -> str:
    hw = result["hardware"]
    where = hw["gpu"] or f"{hw['cpu']} CPU, {hw['threads']} threads"
    parts = [f"Hole-only metrics on the MNIST test split, 12x12 centre hole, pooled over images "
             f"(CONVENTIONS.md); {where}, torch {hw['torch']}; {result['seconds'] / 60:.0f} minutes. "
             f"Digit identity: the share of outputs a CNN with {100 * result['classifier_test_accuracy']:.2f}% "
             f"test accuracy reads as the true label. 95% interval: the pooled PSNR over 1000 bootstrap "
             f"redraws of the images (HoleMetrics.psnr_interval), how far the figure would move on another set of "
             f"test digits of the same size; the methods share their images, so differences between rows are "
             f"surer than the intervals suggest.", "", f"Command: `{result['command']}`", ""]
    if result.get("rows_all_test_images"):
        parts += [f"Baselines and references on the first {result['n_test']} test images:", "",
                  markdown_table(result["rows_all_test_images"]),
                  f"Every method on the first {result['n_diffusion']} test images (posterior means on the first "
                  f"{result['n_posterior']}):", ""]
    parts.append(markdown_table(result["rows"]))
    for name, checks in result["targets"].items():
        parts += ["", f"Targets for `{name}` (on the images of the table above):", "",
                  "| target | value | its 95% interval | threshold | met |", "|---|---|---|---|---|"]
        for t, c in checks.items():
            val = c["value"] if isinstance(c["value"], bool) else f"{c['value']:.3f}"
            ci = f"{c['ci95'][0]:.2f} to {c['ci95'][1]:.2f}" if c.get("ci95") else ""
            thr = c["threshold"] if isinstance(c["threshold"], bool) else f"{c['threshold']:.3f}"
            parts.append(f"| {t} | {val} | {ci} | {thr} | {'yes' if c['met'] else '**no**'} |")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
