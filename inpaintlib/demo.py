"""The main job, ``python -m inpaintlib demo``: the best the project can do, beside the design's baseline.

On the same MNIST test digits with the design's 12x12 centre hole, one figure, row by row:

    masked input
    the design's sampler on the design's model     pretrained("mnist"), replacement (DESIGN)
    the best training-free sampler, same model     pretrained("mnist"), RECOMMENDED["mnist"]
    the mask-conditioned model                     pretrained("mnist-mask"), RECOMMENDED["mnist-mask"]
    ground truth

Every row is labelled with its hole-only PSNR, its digit identity (how many fills the shipped digit
classifier reads as the true label) and its network evaluations per image (NFE); every row is in
``demo_metrics.json``. The lesson is in the gap between rows 2 and 3: the same network, and
replacement alone does not tell the hole what the known pixels need.

With ``ckpt`` (or ``model`` and sampler arguments) the demo shows one model instead.
"""
from __future__ import annotations

import json
from pathlib import Path


from .checks import check_int
from .masks import center_hole
from .mnist.data import load_test_images
from .metrics import HoleMetrics
from .registry import DESIGN, RECOMMENDED, load_model, pretrained
from .samplers import inpaint, route_options
from .utils import check_writable_dir

# (row label, shipped model, sampler settings): the comparison the demo shows by default
COMPARISON = (
    ("design: replacement", "mnist", DESIGN),
    ("best training-free sampler", "mnist", RECOMMENDED["mnist"]),
    ("mask-conditioned model", "mnist-mask", RECOMMENDED["mnist-mask"]),
)


def _sampler_text(settings: dict) -> str:
    text = f"{settings['steps']} steps"
    if settings.get("dc_repeats", 1) > 1:
        text += f" x{settings['dc_repeats']} resampling"
    if settings.get("guidance"):
        text += f", guidance {settings['guidance']:g}"
    if settings.get("particles"):
        text += f", {settings['particles']} particles"
    if settings.get("sampler") not in (None, "replace"):
        text = f"{settings['sampler']}, " + text
    return text


def _shown(path) -> str:
    """A path as the JSON records it: relative to the working folder where it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_row(label: str, net, ckpt, settings: dict, images, labels, hole, seed: int, classifier) -> tuple:
    """Inpaint ``images`` with ``net`` and ``settings``; return (fills, the row's record)."""
    counts = {"nfe": 0, "backward": 0}

    def count(info: dict) -> None:
        counts["nfe"] = max(counts["nfe"], int(info.get("nfe", 0)))
        counts["backward"] = max(counts["backward"], int(info.get("backward", 0)))

    fills = inpaint(net, images, hole, seed=seed, callback=count, **settings)
    metrics = HoleMetrics()
    metrics.update(fills, images, hole)
    record = {"row": label, "checkpoint": _shown(ckpt), **settings, **metrics.summary(),
              "nfe_per_image": counts["nfe"], "backward_per_image": counts["backward"]}
    if classifier is not None:
        from .classifier import predicted_labels

        read = predicted_labels(classifier, fills)
        record["labels_read"] = read.tolist()
        record["identity_hits"] = int((read == labels).sum())
        record["digit_identity"] = record["identity_hits"] / len(labels)
    return fills, record


def row_caption(record: dict, n: int) -> str:
    nfe = f"NFE {record['nfe_per_image']}"
    if record.get("backward_per_image"):
        nfe += f" (+{record['backward_per_image']} backward)"
    ident = f"{record['identity_hits']}/{n} right digit" if "identity_hits" in record else "identity: no classifier"
    return f"{record['row']}\n{_sampler_text(record)}\n{record['psnr_hole']:.2f} dB, {ident}\n{nfe}"


def comparison_figure(rows: list, captions: list, read: list, labels, path, title: str) -> Path:
    """One row per tensor in ``rows`` (N, 1, 28, 28), captioned on the left; under each fill the
    label the classifier reads, green when it is the true digit and red when it is not."""
    from matplotlib.figure import Figure

    n_rows, n_cols = len(rows), rows[0].shape[0]
    fig = Figure(figsize=(0.72 * n_cols + 2.6, 0.95 * n_rows + 0.5))
    grid = fig.add_gridspec(n_rows, n_cols + 1, width_ratios=[3.4] + [1] * n_cols, wspace=0.06, hspace=0.32,
                            left=0.005, right=0.995, top=1 - 0.42 / (0.95 * n_rows + 0.5), bottom=0.03)
    for r, images in enumerate(rows):
        text_ax = fig.add_subplot(grid[r, 0])
        text_ax.axis("off")
        text_ax.text(0.98, 0.5, captions[r], ha="right", va="center", fontsize=7.5, transform=text_ax.transAxes)
        for c in range(n_cols):
            ax = fig.add_subplot(grid[r, c + 1])
            ax.imshow(images[c, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if read[r] is not None:
                right = int(read[r][c]) == int(labels[c])
                colour = "#1a7f37" if right else "#cf222e"
                for side in ax.spines.values():
                    side.set_color(colour)
                    side.set_linewidth(1.6)
                ax.set_xlabel(str(int(read[r][c])), fontsize=7, color=colour, labelpad=1)
    fig.suptitle(title, fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def demo(out_dir: str = "outputs/demo", n: int = 16, seed: int = 0, data_root: str = "data", device=None,
         ckpt: str | None = None, model: str | None = None, steps: int | None = None,
         dc_repeats: int | None = None, guidance: float | None = None, sampler: str | None = None,
         particles: int | None = None) -> dict:
    """Fill the 12x12 centre hole of the first ``n`` MNIST test digits and write
    ``demo_panel.png`` and ``demo_metrics.json`` in ``out_dir``; return the metrics.

    By default: the comparison of ``COMPARISON`` (the design's sampler, the best training-free
    sampler on the same network, the mask-conditioned model). With ``ckpt`` (a checkpoint path) or
    ``model`` (a shipped name): that model alone, with its recommended sampler settings, each of
    ``steps``, ``dc_repeats``, ``guidance``, ``particles`` overriding one of them (a checkpoint of your
    own takes the design's settings); each must be an option of the sampler used
    (``samplers.route_options``). ``sampler`` (one of ``samplers.SAMPLERS``) other than the
    recommended one keeps only its number of steps and starts on that sampler's own defaults."""
    from .classifier import CLASSIFIER_FILE, load_classifier

    check_int(n, "n", 1, 1000)  # the shipped test digits
    overrides = (steps, dc_repeats, guidance, sampler, particles)
    if ckpt is not None or model is not None:
        if ckpt is not None and model is not None:
            raise ValueError("pass ckpt (a checkpoint path) or model (a shipped name), not both")
        path = Path(ckpt) if ckpt is not None else pretrained(model)
        base = dict(RECOMMENDED.get(model, DESIGN) if ckpt is None else DESIGN)
        if sampler is not None and sampler != base["sampler"]:  # another sampler: its own defaults, the same steps
            base = {"sampler": sampler, "steps": base["steps"]}
        if steps is not None:
            base["steps"] = check_int(steps, "steps")
        base.update(route_options(base["sampler"], dc_repeats=dc_repeats, guidance=guidance, particles=particles))
        plan = [(f"{model or path.name}", path, base)]
    else:
        if any(v is not None for v in overrides):
            raise ValueError("steps, dc_repeats, guidance, sampler and particles choose one model's sampler: pass "
                             "them with ckpt= or model=, or leave them out for the comparison")
        try:
            plan = [(label, pretrained(name), dict(settings)) for label, name, settings in COMPARISON]
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{err}\nIn one command: python -m inpaintlib train --epochs 1 && "
                                    f"python -m inpaintlib demo --ckpt outputs/inpaint/last.pt") from None
    out = check_writable_dir(out_dir, "out_dir")
    images, labels = load_test_images(data_root, n=n)
    hole = center_hole(28, 12)
    classifier = load_classifier(CLASSIFIER_FILE) if CLASSIFIER_FILE.exists() else None
    if classifier is not None:
        from .classifier import predicted_labels

    loaded, rows, records = {}, [], []
    for label, path, settings in plan:
        if path not in loaded:
            loaded[path] = load_model(path, device=device)
        fills, record = run_row(label, loaded[path], path, settings, images.to(next(loaded[path].parameters()).device),
                                labels, hole, seed, classifier)
        rows.append(fills.cpu())
        records.append(record)
    masked = images * (1 - hole) + 0.5 * hole
    read_masked = predicted_labels(classifier, images * (1 - hole)).tolist() if classifier is not None else None
    read_truth = predicted_labels(classifier, images).tolist() if classifier is not None else None
    captions = ["masked input\n(hole in grey)\n" + (f"{sum(int(a) == int(b) for a, b in zip(read_masked, labels))}"
                                                      f"/{n} read as the digit" if read_masked else "")]
    captions += [row_caption(rec, n) for rec in records]
    captions += ["ground truth\n" + (f"{sum(int(a) == int(b) for a, b in zip(read_truth, labels))}/{n} read right"
                                     if read_truth else "")]
    panel = comparison_figure([masked, *rows, images], captions,
                              [read_masked, *[rec.get("labels_read") for rec in records], read_truth], labels,
                              out / "demo_panel.png",
                              f"MNIST test digits 0 to {n - 1}, 12x12 centre hole, seed {seed}: PSNR inside the hole, "
                              f"digits the shipped classifier reads right, network evaluations per image")
    best = max(records, key=lambda rec: (rec.get("identity_hits", 0), rec["psnr_hole"]))
    summary = {"n": n, "seed": seed, "hole": "12x12 centre box", "labels": labels.tolist(),
               "classifier": _shown(CLASSIFIER_FILE) if classifier is not None else None,
               "rows": records, "best_row": best["row"], "psnr_hole": best["psnr_hole"],
               "l1_hole": best["l1_hole"], "digit_identity": best.get("digit_identity"),
               "nfe_per_image": best["nfe_per_image"], "panel": str(panel)}
    (out / "demo_metrics.json").write_text(json.dumps(summary, indent=2))
    return summary
