"""What the benchmark scripts share: fills, reference networks, sampler runs, scoring and tables.

A plain module beside the scripts: ``python benchmarks/quality.py`` puts benchmarks/ first on
``sys.path``, so the scripts ``import benchlib``; the tests find it through pytest's ``pythonpath``
(pyproject.toml). It imports inpaintlib and nothing of benchmarks/.

    fills       zero_fill, mean_fill, opencv_fill (Telea: the package's ``telea_inpaint``), knn_fill
    references  the MMSE regression U-Net (regression_net, train_regression, regression_predict), cached
    samplers    parse_sampler_spec, current_spelling, current_settings, spec_label, sampler_label, target_key,
                sampler_samples, grid_samples
    scoring     score, reference_rows, ideal_row, label_measures, paired_mean_gap, quantise
    tables      markdown_table, ladder_table, markdown_report
    runs        hardware, command_line

The metrics are ``inpaintlib.metrics.HoleMetrics``'s, as docs/quality.md reports them: hole-only, PSNR_hole
of the MSE pooled over every hole pixel of every image (not the mean of per-image PSNRs, which is given
beside it under its own name), with a bootstrap 95% interval over the images.
"""
from __future__ import annotations

import math
import platform
import sys

import torch

from inpaintlib import DenoiserUNet, HoleMetrics, ModelConfig, inpaint, telea_inpaint
from inpaintlib.classifier import digit_identity, logits_of
from inpaintlib.samplers import SAMPLERS, check_options, repeat_option
from inpaintlib.utils import to_model, to_unit

NON_LEARNED = ("masked input (zero fill)", "mean training image", "OpenCV telea", "OpenCV ns")


# ----------------------------------------------------------------------------------------------
# fills: (B, C, H, W) images in [0, 1], a hole (1 or B, 1, H, W); the known pixels are kept exactly


def zero_fill(images, hole):
    return images * (1 - hole)


def mean_fill(images, hole, train_mean):
    return images * (1 - hole) + train_mean * hole


def opencv_fill(images, hole, method: str, radius: int = 3):
    """OpenCV's inpainting, radius 3, on the u8 levels: "telea" is the package's ``telea_inpaint`` (which
    reads RGB: a grey image goes in as three equal channels, one comes back), "ns" Navier-Stokes."""
    if method == "telea":
        filled = telea_inpaint(images.expand(-1, 3, -1, -1), hole, radius)[:, :images.shape[1]]
    elif method == "ns":
        import cv2
        import numpy as np

        out = []
        for img, h in zip(images, hole.expand(len(images), 1, *images.shape[-2:])):
            u8 = (img[0].numpy() * 255).round().astype(np.uint8)
            out.append(torch.from_numpy(cv2.inpaint(u8, h[0].numpy().astype(np.uint8), radius, cv2.INPAINT_NS)))
        filled = torch.stack(out).float().unsqueeze(1) / 255
    else:
        raise ValueError(f"method must be 'telea' or 'ns', got {method!r}")
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
# the MMSE reference: a regression U-Net, and reference networks saved for the next run


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


def cached(path, meta: dict, build, make_net, retrain: bool = False):
    """Load a reference network saved by an earlier run with the same settings, else build and save it.

    The file holds the settings it was made with; any difference (or ``retrain``) rebuilds it."""
    if path.exists() and not retrain:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("meta") == meta:
            net = make_net()
            net.load_state_dict(blob["state_dict"])
            return net.eval(), True
    net = build()
    torch.save({"meta": meta, "state_dict": {k: v.cpu() for k, v in net.state_dict().items()}}, path)
    return net, False


# ----------------------------------------------------------------------------------------------
# samplers: specs on the command line, settings in files, and their runs

# options renamed since (the sampler API's second round): results and commands written before still read
RENAMED = {"pigdm": {"weight": "guidance"}}


def current_spelling(name: str, options: dict) -> tuple:
    """(sampler, options) in today's names, for specs and settings written before the samplers' options
    were renamed: "replace" with a ``guidance`` weight > 0 is sampler "guidance" (0: replacement itself);
    the ``dc_repeats`` of a sampler whose repeat option is ``travel_rounds`` (ddnm, pigdm, diffpir) is
    ``travel_rounds``; PiGDM's ``weight`` is ``guidance``. Options keep their order."""
    options = dict(options)
    if name == "replace" and "guidance" in options:
        name = "guidance" if options["guidance"] else "replace"
        if not options["guidance"]:
            del options["guidance"]
    rename = dict(RENAMED.get(name, {}))
    if name in SAMPLERS and repeat_option(name) == "travel_rounds":
        rename["dc_repeats"] = "travel_rounds"
    return name, {rename.get(k, k): v for k, v in options.items()}


def current_settings(settings: dict) -> dict:
    """Settings of ``inpaint`` (sampler, steps, the sampler's options) in today's spelling, the sampler
    first: a file's ``{"steps": 50, "dc_repeats": 2, "guidance": 0.0}`` reads as
    ``{"sampler": "replace", "steps": 50, "dc_repeats": 2}`` (``registry.DESIGN``)."""
    rest = {k: v for k, v in settings.items() if k != "sampler"}
    name, rest = current_spelling(settings.get("sampler", "replace"), rest)
    return {"sampler": name, **rest}


def parse_sampler_spec(spec: str) -> tuple:
    """``"guidance:steps=10,dc_repeats=3,guidance=30"`` -> ("guidance", {"steps": 10, ...}): a name of
    ``samplers.SAMPLERS``, then ``inpaint``'s arguments (numbers where they parse as numbers), in today's
    spelling (``current_spelling``: ``ddnm:dc_repeats=10`` is ``travel_rounds=10``), checked against the
    sampler's options; ``steps`` is 50 unless given."""
    name, _, rest = spec.partition(":")
    if name not in SAMPLERS:
        raise ValueError(f"--sampler expects name[:key=value,...] with name one of {', '.join(SAMPLERS)}, got {spec!r}")
    options = {}
    for item in filter(None, rest.split(",")):
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise ValueError(f"--sampler {spec!r}: expected key=value, got {item!r}")
        for kind in (int, float):
            try:
                options[key] = kind(text)
                break
            except ValueError:
                pass
        else:
            options[key] = text
    name, options = current_spelling(name, options)
    check_options(name, {k: v for k, v in options.items() if k != "steps"})
    options.setdefault("steps", 50)
    return name, options


def spec_label(name: str, options: dict) -> str:
    """How a sampler row names its sampler: "guidance (steps=10, dc_repeats=3, guidance=30)"."""
    return f"{name} (" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in options.items()) + ")"


def sampler_label(steps: int, dc_repeats: int, guidance: float = 0.0) -> str:
    """How a row of quality.py's grid names its sampler: "50 steps, dc_repeats=2[, guidance=20]"."""
    return f"{steps} steps, dc_repeats={dc_repeats}" + (f", guidance={guidance:g}" if guidance else "")


def target_key(model: str, guidance: float = 0.0) -> str:
    return model + (f" (guidance={guidance:g})" if guidance else "")


def sampler_samples(model, images, hole, name: str, options: dict, seed: int, batch: int, device):
    """The fills of ``images`` by sampler ``name`` with ``options`` (``steps`` among them), batch k with seed
    ``seed + k``, and (NFE, backward passes) per image. ``hole``: one for all (1, 1, H, W) or one per image."""
    outs, counts = [], []
    options = dict(options)
    steps = options.pop("steps", 50)
    for k, start in enumerate(range(0, len(images), batch)):
        x = images[start:start + batch].to(device)
        h = (hole if len(hole) == 1 else hole[start:start + batch]).to(device)
        last = {"nfe": 0, "backward": 0}
        outs.append(inpaint(model, x, h, name, steps=steps, seed=seed + k,
                            callback=lambda d: last.update(nfe=d["nfe"], backward=d.get("backward", 0)),
                            **options).cpu())
        counts.append((last["nfe"], last["backward"]))
    return torch.cat(outs), counts[0]


def grid_samples(model, images, hole, steps, dc_repeats, seed, batch, device, guidance: float = 0.0):
    """A fill of quality.py's grid: replacement with ``dc_repeats``; with ``guidance`` > 0 reconstruction
    guidance of that weight (sampler "guidance")."""
    name, options = ("guidance", dict(guidance=guidance)) if guidance else ("replace", {})
    return sampler_samples(model, images, hole, name, dict(steps=steps, dc_repeats=dc_repeats, **options),
                           seed, batch, device)[0]


# ----------------------------------------------------------------------------------------------
# scoring


def score(name, outputs, images, labels, hole, classifier, device=None, **extra) -> dict:
    """One row: ``HoleMetrics``' summary of ``outputs`` against ``images`` in ``hole``, the share
    ``classifier`` reads as ``labels``, whether the known pixels are exact, and ``extra``; printed."""
    m = HoleMetrics()
    m.update(outputs, images, hole)
    row = {"method": name, "n_images": len(images), **m.summary(),
           "digit_identity": digit_identity(classifier, outputs, labels), **extra}
    row["known_pixels_exact"] = bool(torch.equal(outputs * (1 - hole), images * (1 - hole)))
    print(f"{name:52s} n={len(images):5d}  PSNR {row['psnr_hole']:6.2f} dB  L1 {row['l1_hole']:.4f}  "
          f"identity {row['digit_identity']:.3f}"
          + (f"  NFE {extra['nfe_per_image']}" if extra.get("nfe_per_image") else ""), flush=True)
    return row


def reference_rows(outputs: dict, images, labels, hole, classifier, device, p_observed) -> list:
    """Score every non-diffusion method (its outputs precomputed for all images) on ``images``, then
    the ideal posterior sample's row (``ideal_row``) with ``p_observed`` of the same images."""
    n = len(images)
    rows = [score("ground truth", images, images, labels, hole, classifier, device)]
    rows[0]["psnr_hole"] = None  # infinite by definition
    for name, out in outputs.items():
        rows.append(score(name, out[:n], images, labels, hole, classifier, device))
    return rows + [ideal_row(rows[-1], p_observed[:n], labels)]


def ideal_row(mmse: dict, p_observed, labels) -> dict:
    """What an exact posterior sampler would score, a reference row with no outputs of its own: one
    sample's expected squared error in the hole is twice the MMSE's, so its PSNR is the MMSE reference's
    minus 10 log10 2 = 3.01 dB; its identity is the mean over the digits of p(true label | observed)
    by the calibrated masked classifier (``masked_digit_classifier``), a slight underestimate (a better
    classifier of masked digits would read the observed pixels more surely)."""
    shift = 10 * math.log10(2)
    return {"method": "ideal posterior sample (reference)", "n_images": len(labels),
            "psnr_hole": mmse["psnr_hole"] - shift,
            "psnr_hole_ci95": [v - shift for v in mmse["psnr_hole_ci95"]], "l1_hole": None,
            "psnr_hole_per_image_mean": None,
            "digit_identity": p_observed[torch.arange(len(labels)), labels].mean().item(),
            "known_pixels_exact": True, "gap_to_mmse_db": shift}


@torch.no_grad()
def label_measures(samples, images, hole, reader, p_observed, device=None, draws: int = 200) -> dict:
    """How K fills per digit, ``samples`` (K, N, 1, 28, 28), spread over the labels and the pixels.

    label_tv        mean over the N digits of the total variation 1/2 sum_l |h(l) - p(l | observed)|
                    between the histogram h of the labels ``reader`` reads in the K fills and the
                    calibrated masked classifier's ``p_observed`` (N, 10)
    label_tv_exact  the same for K labels drawn from p(l | observed) itself: what an exact posterior
                    sampler would show with K samples (the floor set by K, not 0); the mean of ``draws``
                    redraws
    diversity       the mean over digits and hole pixels of the per-pixel standard deviation of the
                    K fills (0 for a sampler that always fills the same)"""
    K, N = samples.shape[:2]
    read = torch.stack([logits_of(reader, s).argmax(1) for s in samples])  # (K, N)
    hist = torch.nn.functional.one_hot(read, 10).float().mean(0)  # (N, 10)
    tv = 0.5 * (hist - p_observed).abs().sum(1)
    g = torch.Generator().manual_seed(0)
    drawn = torch.multinomial(p_observed.repeat(draws, 1), K, replacement=True, generator=g)  # (draws*N, K)
    exact = torch.nn.functional.one_hot(drawn, 10).float().mean(1)
    tv_exact = 0.5 * (exact - p_observed.repeat(draws, 1)).abs().sum(1)
    std = samples.std(0, unbiased=True) if K > 1 else torch.zeros_like(samples[0])
    diversity = (std * hole).sum() / (hole.sum() * N * samples.shape[2])
    return {"label_tv": tv.mean().item(), "label_tv_exact": tv_exact.mean().item(),
            "diversity": diversity.item(), "label_k": K, "label_n_images": N}


def paired_mean_gap(a: list, b: list, resamples: int = 1000, seed: int = 0) -> dict:
    """Mean over images of per-image figures ``a`` minus ``b`` (the same images and holes), with a
    bootstrap 95% interval (the images drawn again with replacement, a fixed seed)."""
    d = torch.tensor(a, dtype=torch.float64) - torch.tensor(b, dtype=torch.float64)
    idx = torch.randint(len(d), (resamples, len(d)), generator=torch.Generator().manual_seed(seed))
    draws = d[idx].mean(1).sort().values
    return {"mean_db": float(d.mean()), "ci95": [float(draws[int(0.025 * resamples)]),
                                                 float(draws[int(0.975 * resamples) - 1])]}


def quantise(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images rounded to 8-bit levels, as a fill saved to a PNG would be."""
    return (images.clamp(0, 1) * 255).round() / 255


# ----------------------------------------------------------------------------------------------
# tables: the markdown of quality.py's results (quality.md, the model cards' tables)


def markdown_table(rows) -> str:
    lines = ["| method | images | NFE/image | PSNR_hole (dB) | 95% interval (dB) | L1_hole | per-image PSNR (dB) "
             "| digit identity | gap to MMSE (dB) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("sampler"):
            continue  # the ladder's rows: ladder_table
        psnr = "inf" if r["psnr_hole"] is None else f"{r['psnr_hole']:.2f}"
        ci = "" if not r.get("psnr_hole_ci95") else f"{r['psnr_hole_ci95'][0]:.2f} to {r['psnr_hole_ci95'][1]:.2f}"
        gap = "" if r.get("gap_to_mmse_db") is None else f"{r['gap_to_mmse_db']:.2f}"
        if r.get("ideal_gap_db") is not None:
            gap += f" (ideal {r['ideal_gap_db']:.2f})"
        per_image = ("inf" if r["psnr_hole"] is None else "" if r["psnr_hole_per_image_mean"] is None
                     else f"{r['psnr_hole_per_image_mean']:.2f}")
        l1 = "" if r["l1_hole"] is None else f"{r['l1_hole']:.4f}"
        nfe = str(r.get("nfe_per_image") or "")
        if nfe and r.get("guidance"):
            nfe += f" (+{nfe} backward)"
        lines.append(f"| {r['method']} | {r['n_images']} | {nfe} | {psnr} | {ci} | "
                     f"{l1} | {per_image} | {r['digit_identity']:.3f} | {gap} |")
    return "\n".join(lines) + "\n"


def ladder_table(rows) -> str:
    """The ``--sampler`` rows: cost beside quality, and how their K fills per digit spread."""
    lines = ["| sampler | images | NFE | backward | forward-equivalents | s/image | PSNR_hole (dB) | 95% interval | "
             "identity | gap to MMSE (dB) | label TV (exact sampler) | diversity | PSNR of the mean of K |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r.get("sampler"):
            continue
        lo, hi = r["psnr_hole_ci95"]
        tv = (f"{r['label_tv']:.3f} ({r['label_tv_exact']:.3f}), K={r['label_k']} on {r['label_n_images']}"
              if "label_tv" in r else "")
        div = f"{r['diversity']:.3f}" if "diversity" in r else ""
        mean_k = f"{r['psnr_mean_of_k']:.2f}" if "psnr_mean_of_k" in r else ""
        gap = "" if r.get("gap_to_mmse_db") is None else f"{r['gap_to_mmse_db']:.2f}"
        lines.append(f"| {r['method']} | {r['n_images']} | {r['nfe_per_image']} | {r['backward_per_image']} | "
                     f"{r['forward_equivalents']:.0f} | {r['seconds_per_image']:.3f} | {r['psnr_hole']:.2f} | "
                     f"{lo:.2f} to {hi:.2f} | {r['digit_identity']:.3f} | {gap} | {tv} | {div} | "
                     f"{mean_k} |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


METRICS_NOTE = ("pooled over images: PSNR_hole of the mean squared error over every hole pixel of every image, "
                "not the mean of per-image PSNRs (docs/quality.md)")


def markdown_report(result) -> str:
    hw = result["hardware"]
    where = hw["gpu"] or f"{hw['cpu']} CPU, {hw['threads']} threads"
    parts = [f"Hole-only metrics on the MNIST test split, 12x12 centre hole, {METRICS_NOTE}; {where}, "
             f"torch {hw['torch']}; {result['seconds'] / 60:.0f} minutes. "
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
    if any(r.get("sampler") for r in result["rows"]):
        costs = ", ".join(f"{k}: {v:.2f}" for k, v in result.get("backward_cost_in_forwards", {}).items())
        parts += ["", f"The ladder of samplers (`--sampler`), on the same images. Forward-equivalents: NFE plus each "
                      f"backward pass at its measured cost in forward passes (the mean of the runs' measurements: {costs}). "
                      f"Label TV: the mean total "
                      f"variation between the labels read in K fills per digit and the calibrated masked "
                      f"classifier's p(label | observed); in brackets what an exact posterior sampler would show with "
                      f"K samples. Diversity: the mean per-pixel standard deviation of the K fills in the hole.", "",
                  ladder_table(result["rows"])]
    for name, checks in result["targets"].items():
        parts += ["", f"Targets for `{name}` (on the images of the table above):", "",
                  "| target | value | its 95% interval | threshold | met |", "|---|---|---|---|---|"]
        for t, c in checks.items():
            val = c["value"] if isinstance(c["value"], bool) else f"{c['value']:.3f}"
            ci = f"{c['ci95'][0]:.2f} to {c['ci95'][1]:.2f}" if c.get("ci95") else ""
            thr = c["threshold"] if isinstance(c["threshold"], bool) else f"{c['threshold']:.3f}"
            row = f" ({c['row']})" if c.get("row") else ""
            parts.append(f"| {t}{row} | {val} | {ci} | {thr} | {'yes' if c['met'] else '**no**'} |")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------------------------
# what a result file records about its run


def hardware(device=None) -> dict:
    """The CPU, torch's threads and version; with ``device``, the device and its GPU's name (None off CUDA)."""
    out = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "torch": torch.__version__}
    if device is not None:
        device = torch.device(device)
        out = {"device": str(device), **out,
               "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    return out


def command_line(script: str, argv=None) -> str:
    """How to run it again: "python benchmarks/<script> <arguments>" (``argv`` None: this process's)."""
    return f"python benchmarks/{script} " + " ".join(sys.argv[1:] if argv is None else argv)
