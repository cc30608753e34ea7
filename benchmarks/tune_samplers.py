"""Choose each sampler's settings on training digits, never on the test split: a small sweep.

    python benchmarks/tune_samplers.py --ckpt inpaintlib/weights/mnist_default.pt --n 128 \
        --out benchmarks/results/tune_samplers_cpu.json

Every candidate (``--sampler`` specs as in ``benchmarks/quality.py``, read by ``benchlib.parse_sampler_spec``,
which reads the older spellings of the committed results as today's: ``ddnm:dc_repeats=10`` is
``travel_rounds=10``, PiGDM's ``weight`` is ``guidance``; the default list is below) runs
on the same ``--n`` training digits from ``--first`` on (default 59,000: the end of the training split)
with the 12x12 centre hole, and is scored by hole-only PSNR (pooled), identity (the shipped digit
classifier) and its cost: NFE, backward passes and forward-equivalents per image (NFE plus each
backward at its measured cost in forwards, ``inpaintlib.accel.backward_cost``), and seconds per image. The
settings that ``benchmarks/quality.py`` then measures on the test split are the best of each sampler
at no more than ``--budget`` forward-equivalents, as the JSON's ``best`` says.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchlib import command_line, hardware, parse_sampler_spec, sampler_samples
from inpaintlib import HoleMetrics, center_hole, load_mnist, load_model
from inpaintlib.accel import backward_cost
from inpaintlib.classifier import digit_classifier, digit_identity
from inpaintlib.utils import resolve_device

CANDIDATES = [
    "replace:steps=50,dc_repeats=2",
    "replace:steps=10,dc_repeats=10",
    "replace:steps=20,dc_repeats=5",
    "guidance:steps=10,dc_repeats=3,guidance=30",
    "guidance:steps=15,dc_repeats=3,guidance=30",
    "guidance:steps=10,dc_repeats=4,guidance=30",
    "guidance:steps=10,dc_repeats=3,guidance=15",
    "guidance:steps=10,dc_repeats=3,guidance=60",
    "guidance:steps=20,dc_repeats=2,guidance=30",
    "ddnm:steps=50,travel_rounds=2",
    "ddnm:steps=10,travel_rounds=10",
    "ddnm:steps=20,travel_rounds=5,travel_length=5",
    "pigdm:steps=45",
    "pigdm:steps=15,travel_rounds=3",
    "pigdm:steps=15,travel_rounds=3,guidance=3",
    "diffpir:steps=100",
    "diffpir:steps=20,travel_rounds=5",
    "smc:steps=25,particles=4",
    "smc:steps=50,particles=2",
    "smc:steps=12,particles=8",
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default="inpaintlib/weights/mnist_default.pt")
    p.add_argument("--sampler", action="append", default=None, help="a candidate (repeatable; default: the list)")
    p.add_argument("--data_root", default="data")
    p.add_argument("--n", type=int, default=128, help="training digits to tune on")
    p.add_argument("--first", type=int, default=59000, help="index of the first of them in the training split")
    p.add_argument("--budget", type=float, default=100.0, help="forward-equivalents per image for 'best'")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default="outputs/tune_samplers.json")
    a = p.parse_args(argv)
    device = resolve_device(a.device)
    train_u8, train_labels = load_mnist(a.data_root, train=True)
    if not 0 <= a.first < len(train_u8):
        raise ValueError(f"--first must index the training split (0..{len(train_u8) - 1}), got {a.first}")
    images = train_u8[a.first:a.first + a.n].float() / 255
    labels = train_labels[a.first:a.first + a.n]
    hole = center_hole(28, 12)
    model = load_model(a.ckpt, device=device)
    reader = digit_classifier(device)
    ratio = backward_cost(model)
    print(f"one backward pass costs {ratio:.2f} forward passes here", flush=True)
    rows = []
    for spec in a.sampler or CANDIDATES:
        name, options = parse_sampler_spec(spec)
        t0 = time.perf_counter()
        outs, (nfe, backward) = sampler_samples(model, images, hole, name, options, seed=0, batch=a.batch,
                                                device=device)
        seconds = (time.perf_counter() - t0) / len(images)
        m = HoleMetrics()
        m.update(outs, images, hole)
        row = {"spec": spec, "sampler": name, "options": options, "nfe_per_image": nfe, "backward_per_image": backward,
               "forward_equivalents": nfe + ratio * backward, "seconds_per_image": seconds,
               "psnr_hole": m.summary()["psnr_hole"], "psnr_hole_ci95": m.summary()["psnr_hole_ci95"],
               "digit_identity": digit_identity(reader, outs.to(device), labels.to(device))}
        rows.append(row)
        print(f"{spec:48s} NFE {nfe:4d} bw {backward:4d} fe {row['forward_equivalents']:6.1f}  "
              f"PSNR {row['psnr_hole']:6.2f}  identity {row['digit_identity']:.3f}  {seconds:.3f} s/image", flush=True)
    best = {}
    for row in rows:
        if row["forward_equivalents"] <= a.budget and (row["sampler"] not in best
                                                      or row["psnr_hole"] > best[row["sampler"]]["psnr_hole"]):
            best[row["sampler"]] = row
    result = {"ckpt": a.ckpt, "digits": f"training split {a.first}..{a.first + len(images) - 1}",
              "n_images": len(images), "backward_cost_in_forwards": ratio, "budget": a.budget, "rows": rows,
              "best": {k: v["spec"] for k, v in best.items()},
              "hardware": hardware(), "command": command_line("tune_samplers.py", argv)}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("best at <=", a.budget, "forward-equivalents:", json.dumps(result["best"], indent=1))
    return result


if __name__ == "__main__":
    main()
