"""How good is diffusion inpainting on MNIST with the 12x12 centre hole? Measured against anchors.

    python benchmarks/quality.py --ckpt mnist=inpaintlib/weights/mnist_default.pt \
        --ckpt mnist-mask=inpaintlib/weights/mnist_cond_mask.pt          # full 10k test split
    python benchmarks/quality.py --quick ...                             # 500 images, fewer settings

Rows (hole-only PSNR pooled over all images, the PSNR of the MSE over every hole pixel of every image, as
docs/quality.md reports it, and hole-only L1; the fills, references and tables are ``benchlib``'s):
  baselines       zero fill; the mean training image; OpenCV Telea and Navier-Stokes; nearest
                  neighbours on the known pixels over the training split (k=1, mean of k=10)
  regression      a U-Net (the diffusion network's architecture) trained with MSE on the hole:
                  it estimates E[x | y], the MMSE reference, the ceiling on a single prediction's PSNR
  diffusion       each checkpoint at 10/25/50/100 DDIM steps, dc_repeats 1 and 2, NFE per image
                  (with --guidance w: sampler "guidance" of weight w, else the design's "replace")
  posterior mean  the mean of K = 1, 4, 16 samples per image (a perfect posterior sampler is 3 dB
                  below the MMSE reference with one sample and 10 log10(1 + 1/K) dB below with K)
  ladder          --sampler name:key=value,...: one row per sampler spec, at its cost in forward-equivalents
  digit identity  a small CNN (>= 99% test accuracy, trained here) reads each output; the share
                  read as the true label, beside the masked input and the ground truth
Writes outputs/quality/quality.json and quality.md (a markdown table), plus an uncertainty figure;
--merge joins the quality.json of runs on the same images.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import time
from pathlib import Path

import torch

from benchlib import (cached, command_line, grid_samples, hardware, knn_fill, label_measures, markdown_report,
                      mean_fill, opencv_fill, parse_sampler_spec, reference_rows, regression_net, regression_predict,
                      sampler_label, sampler_samples, score, spec_label, target_key, train_regression, zero_fill,
                      NON_LEARNED)
from inpaintlib import HoleMetrics, center_hole, load_mnist, load_model
from inpaintlib.accel import backward_cost
from inpaintlib.classifier import (DigitClassifier, digit_classifier, digit_identity, label_probabilities,
                                   masked_digit_classifier, train_classifier)
from inpaintlib.utils import resolve_device, save_panel

OUT = Path("outputs/quality")


# ----------------------------------------------------------------------------------------------
# the targets of one model's rows, and the ladder's rows


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
    ideal = by.get("ideal posterior sample (reference)")
    if ideal is not None:  # issue 16's targets: against what an exact posterior sampler scores
        t.pop("digit identity of single samples >= 0.95")  # wrong: an exact sampler scores about 0.87 to 0.91
        t["single within 0.2 dB of the ideal posterior sample"] = (s, ideal["psnr_hole"] - 0.2, s_ci)
        t["identity >= the ideal posterior sample's"] = (single["digit_identity"], ideal["digit_identity"], None)
        if mean_k is not None and k_max > 1:
            ideal_mean = mean_k["psnr_hole"] + mean_k["gap_to_mmse_db"] - 10 * math.log10(1 + 1 / k_max)
            t[f"mean of {k_max} within 0.2 dB of the ideal mean of {k_max}"] = (m, ideal_mean - 0.2, m_ci)
    out = {name: {"value": v, "threshold": thr, "met": bool(v >= thr), "ci95": ci}
           for name, (v, thr, ci) in t.items()}
    # the sampler's outputs (the posterior means are this script's averages of them)
    exact = all(r["known_pixels_exact"] for r in rows
                if r["method"].startswith(f"{model}:") and ": mean of " not in r["method"]
                and r.get("guidance", 0.0) == guidance)
    out["known pixels equal the input exactly"] = {"value": exact, "threshold": True, "met": exact}
    return out


def ladder_row(model_name, model, sampler, options, images, labels, hole, classifier, device, batch, ratio,
               mmse_psnr, label_samples=0, n_labels=0, p_observed=None) -> dict:
    """One ``--sampler`` row: the fills of ``images`` (seed 0) scored as every row is, their cost (NFE,
    backward passes, forward-equivalents = NFE + ``ratio`` * backward, seconds per image), and with
    ``label_samples`` = K > 1 the ``label_measures`` of K fills (seeds 0, 1000, ...) of the first
    ``n_labels`` digits, with the PSNR of their mean (the posterior mean's estimate)."""
    t0 = time.perf_counter()
    outs, (nfe, backward) = sampler_samples(model, images, hole, sampler, options, 0, batch, device)
    seconds = time.perf_counter() - t0
    row = score(f"{model_name}: {spec_label(sampler, options)}", outs, images, labels, hole, classifier, device,
                nfe_per_image=nfe, backward_per_image=backward, forward_equivalents=nfe + ratio * backward,
                seconds=seconds, seconds_per_image=seconds / len(images), sampler=sampler, options=options)
    row["gap_to_mmse_db"] = None if mmse_psnr is None else mmse_psnr - row["psnr_hole"]
    if label_samples:
        fills = [outs[:n_labels]] + [sampler_samples(model, images[:n_labels], hole, sampler, options, 1000 * k, batch,
                                                     device)[0] for k in range(1, label_samples)]
        stack = torch.stack(fills)
        row.update(label_measures(stack, images[:n_labels], hole, classifier, p_observed, device))
        m = HoleMetrics()
        m.update(torch.where(hole.bool(), stack.mean(0), images[:n_labels]), images[:n_labels], hole)
        row["psnr_mean_of_k"] = m.summary()["psnr_hole"]
        print(f"{'':52s} K={label_samples} fills of {n_labels}: label TV {row['label_tv']:.3f} (exact sampler "
              f"{row['label_tv_exact']:.3f})  diversity {row['diversity']:.3f}  mean PSNR {row['psnr_mean_of_k']:.2f}",
              flush=True)
    return row


LADDER_BUDGET = 100.0  # forward-equivalents per image for the best training-free sampler (issue 18)


def ladder_targets(rows: list, model: str, budget: float = LADDER_BUDGET) -> dict:
    """The ladder's targets for the ``--sampler`` rows of ``model`` (a network that never sees the hole):
    the best sampler at <= ``budget`` forward-equivalents within 3.2 dB of the MMSE reference and within
    0.01 of the ideal-posterior identity (both on the same digits); every FPS-SMC row closer to
    p(label | observed) than every replacement and guidance row; and closer with more particles."""
    by = {r["method"]: r for r in rows}
    mmse = by["regression U-Net (MMSE reference)"]["psnr_hole"]
    ideal = by["ideal posterior sample (reference)"]["digit_identity"]
    ladder = [r for r in rows if r["method"].startswith(f"{model}: ") and r.get("sampler")]
    out = {}
    cheap = [r for r in ladder if r["forward_equivalents"] <= budget]
    if cheap:
        best = max(cheap, key=lambda r: r["psnr_hole"])
        out[f"best sampler at <= {budget:g} forward-equivalents >= MMSE - 3.2 dB"] = {
            "value": best["psnr_hole"], "threshold": mmse - 3.2, "met": bool(best["psnr_hole"] >= mmse - 3.2),
            "ci95": best.get("psnr_hole_ci95"), "row": best["method"]}
        out["its identity >= ideal-posterior identity - 0.01"] = {
            "value": best["digit_identity"], "threshold": ideal - 0.01,
            "met": bool(best["digit_identity"] >= ideal - 0.01), "row": best["method"]}
    smc = sorted((r for r in ladder if r["sampler"] == "smc" and "label_tv" in r),
                 key=lambda r: r["options"].get("particles", 8))
    others = [r for r in ladder if r["sampler"] in ("replace", "guidance") and "label_tv" in r]
    if smc and others:
        closest = min(others, key=lambda r: r["label_tv"])
        worst = max(smc, key=lambda r: r["label_tv"])
        out["every FPS-SMC row's label TV < replacement's and guidance's"] = {
            "value": worst["label_tv"], "threshold": closest["label_tv"],
            "met": bool(worst["label_tv"] < closest["label_tv"]), "row": worst["method"]}
    if len(smc) > 1:
        tvs = [r["label_tv"] for r in smc]
        out["FPS-SMC's label TV falls as the particles grow"] = {
            "value": tvs[-1], "threshold": tvs[0], "met": all(b < a for a, b in zip(tvs, tvs[1:])),
            "row": " > ".join(f"K={r['options'].get('particles', 8)}: {r['label_tv']:.3f}" for r in smc)}
    return out


# ----------------------------------------------------------------------------------------------
# a run


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", action="append", default=[], help="name=path of a diffusion checkpoint (repeatable)")
    p.add_argument("--data_root", default="data")
    p.add_argument("--n_test", type=int, default=10000, help="test images for the baselines and the references")
    p.add_argument("--n_diffusion", type=int, default=None,
                   help="the first N of those for the diffusion rows (default: all n_test); the baselines are "
                        "scored again on the same N, so that every comparison is on the same images")
    p.add_argument("--sampler", action="append", default=[], metavar="SPEC",
                   help="a row of the ladder of samplers for every --ckpt, as name[:key=value,...], e.g. "
                        "guidance:steps=10,dc_repeats=3,guidance=30 or smc:steps=25,particles=4 (repeatable; the "
                        "options of inpaint's sampler, older spellings read as today's: ddnm:dc_repeats=10 is "
                        "travel_rounds=10, pigdm's weight is guidance; with --sampler the --steps x --dc_repeats "
                        "grid and the posterior means run only if --steps is given)")
    p.add_argument("--label_samples", type=int, default=0,
                   help="K fills per digit for each --sampler row, on the first --n_labels digits: the label "
                        "histogram's distance to p(label | observed) and the fills' diversity (0: off)")
    p.add_argument("--n_labels", type=int, default=None, help="digits for --label_samples (default: n_diffusion)")
    p.add_argument("--classifier", choices=("shipped", "train"), default="shipped",
                   help="who reads the digits: the shipped CNN (inpaintlib/weights/mnist_classifier.md) or one "
                        "trained here for --classifier_epochs")
    p.add_argument("--steps", default=None, help="DDIM steps of the grid (default 10,25,50,100)")
    p.add_argument("--no_references", action="store_true",
                   help="only the diffusion rows: no baselines, no regression U-Net (so this run need not wait for "
                        "one); --merge it with a run on the same --n_diffusion images that has them (and, for the "
                        "posterior means, posterior means of its own on the same --n_posterior), which fills in the "
                        "gaps to the MMSE reference, the kNN figures and the targets")
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
    if a.quick:
        a.n_test, a.steps, a.posterior_k, a.regression_steps = min(a.n_test, 500), "25,50", "1,4", 1500
    if a.label_samples < 0 or a.label_samples == 1:
        raise ValueError(f"--label_samples must be 0 (off) or at least 2, got {a.label_samples}")
    for spec in a.ckpt:
        if "=" not in spec:
            raise ValueError(f"--ckpt expects name=path, got {spec!r}")
    return a


def readers(a, device, cache: Path, train_images, train_labels, test_images, test_labels, images, hole) -> tuple:
    """(the classifier that reads the outputs, its accuracy on ``test_images``, p(label | observed pixels)
    of ``images`` by the calibrated masked classifier: the ideal posterior sample's identity)."""
    t0 = time.perf_counter()
    if a.classifier == "shipped":
        classifier, how = digit_classifier(device), "shipped"
    else:
        classifier, reused = cached(
            cache / "classifier.pt", {"epochs": a.classifier_epochs, "n_train": len(train_images), "seed": 0},
            lambda: train_classifier(train_images, train_labels, epochs=a.classifier_epochs, device=device),
            DigitClassifier, a.retrain)
        how = "reused" if reused else "trained"
    classifier = classifier.to(device)
    masked_reader = masked_digit_classifier(device)
    p_observed = label_probabilities(masked_reader, images * (1 - hole)).cpu()
    accuracy = digit_identity(classifier, test_images, test_labels)
    print(f"classifier test accuracy (10k): {accuracy:.4f} ({how}, {time.perf_counter() - t0:.0f} s)", flush=True)
    return classifier, accuracy, p_observed


def reference_outputs(a, device, cache: Path, train_images, images, hole) -> dict:
    """method -> its fills of ``images``: the baselines and the MMSE reference (trained, or reused)."""
    t0 = time.perf_counter()
    reg, reused = cached(
        cache / "regression.pt",
        {"steps": a.regression_steps, "batch": a.regression_batch, "channels": a.regression_channels,
         "n_train": len(train_images), "seed": 0},
        lambda: train_regression(train_images, hole, device, a.regression_steps, a.regression_batch,
                                 base_channels=a.regression_channels),
        lambda: regression_net("cpu", a.regression_channels), a.retrain)
    reg = reg.to(device)
    print(f"regression U-Net: {a.regression_steps} steps of batch {a.regression_batch} "
          f"({'reused' if reused else 'trained'}, {time.perf_counter() - t0:.0f} s)", flush=True)
    outputs = {"masked input (zero fill)": zero_fill(images, hole),
               "mean training image": mean_fill(images, hole, train_images.mean(0)),
               "OpenCV telea": opencv_fill(images, hole, "telea"), "OpenCV ns": opencv_fill(images, hole, "ns")}
    for k in (1, 10):
        outputs[f"nearest neighbours k={k}"] = knn_fill(images, hole, train_images, k, device)
    with torch.no_grad():
        outputs["regression U-Net (MMSE reference)"] = torch.cat(
            [regression_predict(reg, images[s:s + a.batch].to(device), hole.to(device)).cpu()
             for s in range(0, len(images), a.batch)])
    return outputs


def grid_rows(a, name, model, images, labels, hole, classifier, device, mmse_psnr, step_list, dc_list) -> tuple:
    """The --steps x --dc_repeats rows of one model (seed 0), and their fills by (steps, dc_repeats)."""
    rows, kept = [], {}
    for steps in step_list:
        for rep in dc_list:
            t0 = time.perf_counter()
            outs = grid_samples(model, images, hole, steps, rep, seed=0, batch=a.batch, device=device,
                                guidance=a.guidance)
            seconds = time.perf_counter() - t0
            kept[(steps, rep)] = outs
            row = score(f"{name}: {sampler_label(steps, rep, a.guidance)}", outs, images, labels, hole,
                        classifier, device, nfe_per_image=steps * rep, seconds=seconds,
                        images_per_second=len(images) / seconds, guidance=a.guidance)
            row["gap_to_mmse_db"] = None if mmse_psnr is None else mmse_psnr - row["psnr_hole"]
            rows.append(row)
    return rows, kept


def posterior_rows(a, name, model, images, labels, hole, classifier, device, kept, k_list, outputs, out) -> tuple:
    """The means of K samples of one model on ``images`` (the first --n_posterior), and its uncertainty
    figure; the gaps to the MMSE reference and the kNN figure are taken on the same images."""
    samples, key = [], (a.posterior_steps, a.posterior_dc_repeats)
    for k in range(k_list[-1]):
        if k == 0 and key in kept:
            samples.append(kept[key][:len(images)])  # seed 0, reused
        else:
            samples.append(grid_samples(model, images, hole, *key, seed=1000 * k, batch=a.batch, device=device,
                                        guidance=a.guidance))
    if outputs is None:  # --merge fills these in from a run with the references on the same images
        mmse_same = knn_same = None
    else:
        mmse_post, knn_post = HoleMetrics(), HoleMetrics()
        mmse_post.update(outputs["regression U-Net (MMSE reference)"][:len(images)], images, hole)
        knn_post.update(outputs["nearest neighbours k=10"][:len(images)], images, hole)
        mmse_same, knn_same = mmse_post.summary()["psnr_hole"], knn_post.summary()["psnr_hole"]
    rows = []
    for K in k_list:
        # the mean of K equal values need not equal that value in floating point: keep the known pixels exact
        mean = torch.where(hole.bool(), torch.stack(samples[:K]).mean(0), images)
        row = score(f"{name}: mean of {K} samples ({sampler_label(*key, a.guidance)})", mean, images, labels, hole,
                    classifier, device, nfe_per_image=a.posterior_steps * a.posterior_dc_repeats * K,
                    guidance=a.guidance)
        row["gap_to_mmse_db"] = None if mmse_same is None else mmse_same - row["psnr_hole"]
        row["ideal_gap_db"] = 10 * math.log10(1 + 1 / K)  # a perfect posterior sampler's gap
        row["knn10_psnr_same_images"] = knn_same
        rows.append(row)
    stack = torch.stack(samples)
    figure = save_panel(
        [images[:8] * (1 - hole) + 0.5 * hole, stack[0, :8], stack.mean(0)[:8], (stack.std(0)[:8] * 4).clamp(0, 1),
         images[:8]], out / f"uncertainty_{name}{f'-guidance{a.guidance:g}' if a.guidance else ''}.png",
        row_titles=["masked", "one sample", f"mean of {len(samples)}", "std x4", "ground truth"],
        title=f"{name}: posterior samples and per-pixel uncertainty")
    return rows, str(figure)


def main(argv=None):
    a = parse_args(argv)
    if a.merge:
        return merge(a.merge, Path(a.out_dir))
    grid = not a.sampler or a.steps is not None
    step_list = [int(v) for v in (a.steps or "10,25,50,100").split(",")] if grid else []
    ladder = [parse_sampler_spec(spec) for spec in a.sampler]
    dc_list = [int(v) for v in a.dc_repeats.split(",")]
    k_list = sorted(int(v) for v in a.posterior_k.split(","))
    device = resolve_device(a.device)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(a.cache_dir) if a.cache_dir else out
    cache.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    train_u8, train_labels = load_mnist(a.data_root, train=True)
    train_images, train_labels = train_u8[:a.n_train].float() / 255, train_labels[:a.n_train]
    test_u8, test_labels = load_mnist(a.data_root, train=False)
    images, labels = test_u8[:a.n_test].float() / 255, test_labels[:a.n_test]
    n_diff = min(a.n_diffusion or len(images), len(images))
    n_post = min(a.n_posterior or n_diff, n_diff)
    hole = center_hole(28, 12)
    classifier, clf_acc, p_observed = readers(a, device, cache, train_images, train_labels, test_u8.float() / 255,
                                              test_labels, images, hole)

    if a.no_references:
        all_rows = rows = []  # one list: no second table of all test images
        outputs = mmse_psnr = None
    else:
        outputs = reference_outputs(a, device, cache, train_images, images, hole)
        all_rows = reference_rows(outputs, images, labels, hole, classifier, device, p_observed)
        rows = all_rows if n_diff == len(images) else reference_rows(outputs, images[:n_diff], labels[:n_diff],
                                                                     hole, classifier, device, p_observed)
        mmse_psnr = next(r for r in rows if r["method"].startswith("regression"))["psnr_hole"]
    dimages, dlabels = images[:n_diff], labels[:n_diff]

    figures, targets, ladder_costs = {}, {}, {}
    for spec in a.ckpt:
        name, path = spec.split("=", 1)
        model = load_model(path, device=device)
        new, kept = grid_rows(a, name, model, dimages, dlabels, hole, classifier, device, mmse_psnr, step_list,
                              dc_list)
        rows += new
        if ladder:
            ratio = backward_cost(model)
            ladder_costs[name] = ratio
            n_lab = min(a.n_labels or n_diff, n_diff) if a.label_samples else 0
            for sname, options in ladder:
                rows.append(ladder_row(name, model, sname, options, dimages, dlabels, hole, classifier, device,
                                       a.batch, ratio, mmse_psnr, a.label_samples, n_lab, p_observed[:n_lab]))
            if not a.no_references:
                targets[f"{name} ladder"] = ladder_targets(rows, name)
        if grid:
            new, figures[target_key(name, a.guidance)] = posterior_rows(
                a, name, model, dimages[:n_post], dlabels[:n_post], hole, classifier, device, kept, k_list, outputs,
                out)
            rows += new
            if (a.posterior_steps, a.posterior_dc_repeats) in kept and not a.no_references:
                targets[target_key(name, a.guidance)] = check_targets(rows, name, a.posterior_steps,
                                                                      a.posterior_dc_repeats, k_list[-1], a.guidance)

    result = {"rows": rows, "rows_all_test_images": all_rows if rows is not all_rows else None,
              "no_references": a.no_references, "n_test": len(images), "n_diffusion": n_diff, "n_posterior": n_post,
              "targets": targets, "backward_cost_in_forwards": ladder_costs, "classifier_test_accuracy": clf_acc,
              "hardware": hardware(device), "seconds": time.perf_counter() - t_start,
              "command": command_line("quality.py", argv), "figures": figures}
    (out / "quality.json").write_text(json.dumps(result, indent=2))
    md = markdown_report(result)
    (out / "quality.md").write_text(md)
    print(md)
    return result


# ----------------------------------------------------------------------------------------------
# joining runs made on the same images


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


def posterior_references(runs: list, paths) -> tuple:
    """The MMSE reference's and the mean of ten neighbours' pooled PSNR on the posterior-mean images of
    runs that have the references: read off their mean-of-K rows (each stores both on its own images)."""
    for run in runs:
        for r in run["rows"]:
            if ": mean of " in r["method"] and r.get("gap_to_mmse_db") is not None:
                return r["psnr_hole"] + r["gap_to_mmse_db"], r["knn10_psnr_same_images"]
    raise ValueError(f"--merge: a --no_references run has posterior means, but none of {paths} with the "
                     f"references has any (the MMSE reference on those images is unknown): run the references "
                     f"with --steps and --n_posterior")


def merged_figures(runs: list) -> dict:
    """The runs' uncertainty figures, one per model and guidance weight; two runs of one name and weight
    cannot be joined into one table (their rows would share names too)."""
    figures = {}
    for run in runs:
        for key, path in run["figures"].items():
            if figures.setdefault(key, path) != path:
                raise ValueError(f"--merge: two runs made the figure of {key!r} ({figures[key]} and {path})")
    return figures


def merge(paths: list, out: Path) -> dict:
    """Join runs made on the same images with the same references (say, one checkpoint per process)."""
    runs = [json.loads(Path(q).read_text()) for q in paths]
    with_refs = [run for run in runs if not run.get("no_references")]
    if not with_refs:
        raise ValueError(f"--merge: none of {paths} has the baseline and reference rows (all ran --no_references)")
    first = with_refs[0]
    refs = [r for r in first["rows"] if "nfe_per_image" not in r]
    for run in runs:
        if run["n_diffusion"] != first["n_diffusion"] or (
                not run.get("no_references") and (run["n_test"], run["n_posterior"]) != (first["n_test"],
                                                                                            first["n_posterior"])):
            raise ValueError(f"--merge: {paths} were not made on the same numbers of images")
        if not run.get("no_references") and not same_rows([r for r in run["rows"] if "nfe_per_image" not in r], refs):
            raise ValueError(f"--merge: {paths} differ in their baseline or reference rows (other images, "
                             f"another classifier or regression U-Net?)")
    rows = refs + [r for run in runs for r in run["rows"] if "nfe_per_image" in r]
    mmse = next(r for r in refs if r["method"] == "regression U-Net (MMSE reference)")["psnr_hole"]
    for r in rows:  # a --no_references run's rows get their gap here, on the same images
        if r.get("gap_to_mmse_db") is None and "nfe_per_image" in r and ": mean of " not in r["method"]:
            r["gap_to_mmse_db"] = mmse - r["psnr_hole"]
    open_means = [r for run in runs if run.get("no_references") for r in run["rows"] if ": mean of " in r["method"]]
    if open_means:  # posterior means made without references: the MMSE and kNN figures on their images
        for run in runs:
            if run.get("no_references") and any(": mean of " in r["method"] for r in run["rows"]) \
                    and run["n_posterior"] != first["n_posterior"]:
                raise ValueError(f"--merge: a --no_references run's posterior means are on {run['n_posterior']} "
                                 f"images, the references' on {first['n_posterior']}")
        mmse_same, knn_same = posterior_references(with_refs, paths)
        for r in open_means:
            r["gap_to_mmse_db"], r["knn10_psnr_same_images"] = mmse_same - r["psnr_hole"], knn_same
    # one cost of a backward per model for the whole table: the mean of the runs' measurements
    measured = {}
    for run in runs:
        for name, ratio in run.get("backward_cost_in_forwards", {}).items():
            measured.setdefault(name, []).append(ratio)
    costs = {name: sum(v) / len(v) for name, v in measured.items()}
    for r in rows:
        if r.get("sampler"):
            r["forward_equivalents"] = r["nfe_per_image"] + costs[r["method"].split(": ")[0]] * r["backward_per_image"]
    targets = {}
    for run in runs:
        for name in dict.fromkeys(r["method"].split(": ")[0] for r in run["rows"] if r.get("sampler")):
            run["targets"].setdefault(f"{name} ladder", {})
        if run.get("no_references"):  # its grid's targets, keyed by model and guidance as a full run keys them
            for r in run["rows"]:
                if ": mean of " in r["method"]:
                    run["targets"].setdefault(target_key(r["method"].split(": ")[0], r.get("guidance") or 0.0), {})
    for key in (k for run in runs for k in run["targets"]):  # recomputed: the check may be newer than a run
        if key.endswith(" ladder"):
            targets[key] = ladder_targets(rows, key[:-len(" ladder")])
            continue
        name, guidance = re.fullmatch(r"(.*?)(?: \(guidance=([0-9.e+-]+)\))?", key).groups()
        guidance = float(guidance or 0.0)
        suffix = re.escape(f", guidance={guidance:g}") if guidance else ""
        mean_rows = [re.fullmatch(rf"{re.escape(name)}: mean of (\d+) samples \((\d+) steps, dc_repeats=(\d+){suffix}\)",
                                  r["method"]) for r in rows]
        k_max, steps, dc = max((int(m[1]), int(m[2]), int(m[3])) for m in mean_rows if m)
        targets[key] = check_targets(rows, name, steps, dc, k_max, guidance)
    result = {**first, "rows": rows, "targets": targets,
              "figures": merged_figures(runs),
              "backward_cost_in_forwards": costs, "backward_cost_measurements": measured,
              "seconds": max(run["seconds"] for run in runs),
              "command": " ; ".join(run["command"] for run in runs) + " ; python benchmarks/quality.py --merge "
                         + " ".join(str(q) for q in paths) + f" --out_dir {out}"}
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps(result, indent=2))
    (out / "quality.md").write_text(markdown_report(result))
    return result


if __name__ == "__main__":
    main()
