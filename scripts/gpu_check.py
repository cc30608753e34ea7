"""The GPU check: full-mode times of every notebook, AMP and torch.compile against fp32, and
benchmarks/speed.py, on one CUDA machine, in at most about 8 minutes, written to one JSON.

    python scripts/gpu_check.py [--out benchmarks/results/gpu_check_cuda.json] [--budget 480]

Every timing runs a bounded number of steps and **extrapolates** to the notebook's full-mode size; the
JSON says so beside each number ("extrapolated_from"). Each job is skipped, saying so, once the budget
is spent. The checks:

* training: 03's full run (the design's command, batch 128, 11,700 steps) and 07's (small preset,
  batch 32, 6,000 steps), each timed over steps after a warm-up;
* sampling: 04 (16 digits, 50 steps x 2; sample_cmd at 400 steps x 2), 05 (eval_cmd on 500 digits,
  50 steps x 2, batches of 256), 08 (each sampler on 200 digits at 50 steps);
* ``inpaint(amp=True)`` against fp32 on 64 digits (hole PSNR within ``AMP_TOLERANCE_DB``), and a
  ``torch.compile``d network's output against the eager one (max abs difference within
  ``COMPILE_TOLERANCE``);
* ``benchmarks/speed.py --quick --device cuda`` (its own JSON, linked from this one).

Without CUDA it says so and exits with status 2 after a CPU dry run of the job list (``--dry-run``
prints the plan on any machine). Fill the README's full-mode column from the JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

AMP_TOLERANCE_DB = 0.5  # |PSNR_hole(amp) - PSNR_hole(fp32)| on 64 digits, guided sampler
COMPILE_TOLERANCE = 1e-3  # max |compiled - eager| of one network output, fp32
FULL = {  # each notebook's full-mode size (inpaintlib/notebook.py NOTEBOOKS says the same in words)
    "03_training": dict(steps=11_700, batch_size=128),
    "07_free_form_inpainting": dict(steps=6_000, batch_size=32),
    "04_ddim_inpainting": dict(n=16, steps=50, dc_repeats=2, sample_cmd_steps=400),
    "05_evaluation": dict(n_eval=500, steps=50, dc_repeats=2, batch_size=256),
    "08_beyond_replacement": dict(n_digits=200, steps=50),
}
JOBS = ["train_03", "train_07", "sample_04", "sample_05", "sample_08", "amp", "compile", "speed"]


def timed(fn):
    import torch

    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - start


def train_03(tmp: Path) -> dict:
    from inpaintlib.mnist import TrainConfig, train

    design = dataclasses.asdict(TrainConfig())
    args = dict(design, out_dir=str(tmp / "mnist"), progress=False, device="cuda", sample_every=10**9)
    train(**{**args, "max_steps": 10})  # warm-up: data, cudnn autotuning
    steps = 60
    _, seconds = timed(lambda: train(**{**args, "max_steps": 10 + steps}, resume=True))
    per_step = seconds / steps
    return {"seconds_per_step": per_step, "full_mode_seconds": per_step * FULL["03_training"]["steps"],
            "extrapolated_from": f"{steps} steps of batch {design['batch_size']} after 10 warm-up steps"}


def train_07(tmp: Path) -> dict:
    from inpaintlib import make_patterns, train_inpainting

    data = tmp / "patterns"
    make_patterns(data, 256, image_size=64, seed=0)
    kw = dict(num_epochs=1000, batch_size=FULL["07_free_form_inpainting"]["batch_size"], lr=3e-4, image_size=64,
              preset="small", ema_decay=0.995, progress=False, device="cuda")
    train_inpainting(data, tmp / "ff", max_steps=10, **kw)
    steps = 60
    _, seconds = timed(lambda: train_inpainting(data, tmp / "ff", max_steps=10 + steps, resume=True, **kw))
    per_step = seconds / steps
    return {"seconds_per_step": per_step, "full_mode_seconds": per_step * FULL["07_free_form_inpainting"]["steps"],
            "extrapolated_from": f"{steps} steps of batch {kw['batch_size']} after 10 warm-up steps"}


def _digits(n):
    from inpaintlib import center_hole, load_test_images

    images, labels = load_test_images("data", n=n)
    return images.cuda(), labels, center_hole(28, 12).cuda()


def _model(name="mnist"):
    from inpaintlib import load_model, pretrained

    return load_model(pretrained(name), device="cuda")


def sample_04(tmp: Path) -> dict:
    from inpaintlib import inpaint

    full = FULL["04_ddim_inpainting"]
    model = _model()
    images, _, hole = _digits(full["n"])
    inpaint(model, images, hole, steps=5, seed=0)  # warm-up
    _, s50 = timed(lambda: inpaint(model, images, hole, steps=10, dc_repeats=full["dc_repeats"], seed=0))
    per_step = s50 / 10
    return {"seconds_per_step": per_step,
            "inpaint_seconds": per_step * full["steps"], "sample_cmd_seconds": per_step * full["sample_cmd_steps"],
            "extrapolated_from": f"10 steps x {full['dc_repeats']} on {full['n']} digits"}


def sample_05(tmp: Path) -> dict:
    from inpaintlib import inpaint

    full = FULL["05_evaluation"]
    model = _model()
    images, _, hole = _digits(full["batch_size"])
    inpaint(model, images, hole, steps=3, seed=0)
    _, s = timed(lambda: inpaint(model, images, hole, steps=10, dc_repeats=full["dc_repeats"], seed=0))
    batches = -(-full["n_eval"] // full["batch_size"])
    return {"eval_cmd_seconds": s / 10 * full["steps"] * batches,
            "extrapolated_from": f"10 steps x {full['dc_repeats']} on one batch of {full['batch_size']}"}


def sample_08(tmp: Path) -> dict:
    from inpaintlib import SAMPLERS, inpaint

    full = FULL["08_beyond_replacement"]
    model = _model()
    images, _, hole = _digits(full["n_digits"])
    out = {}
    for name in SAMPLERS:
        inpaint(model, images, hole, name, steps=2, seed=0)
        _, s = timed(lambda: inpaint(model, images, hole, name, steps=5, seed=0))
        out[name] = {"seconds_at_full_steps": s / 5 * full["steps"]}
    out["extrapolated_from"] = f"5 steps of each sampler's defaults on {full['n_digits']} digits"
    return out


def amp(tmp: Path) -> dict:
    from inpaintlib import RECOMMENDED, HoleMetrics, inpaint

    model = _model()
    images, _, hole = _digits(64)
    settings = dict(RECOMMENDED["mnist"])
    scores = {}
    for use_amp in (False, True):
        filled = inpaint(model, images, hole, seed=0, amp=use_amp, **settings)
        m = HoleMetrics()
        m.update(filled.cpu(), images.cpu(), hole.cpu())
        scores["amp" if use_amp else "fp32"] = m.summary()["psnr_hole"]
    gap = abs(scores["amp"] - scores["fp32"])
    return {**scores, "gap_db": gap, "tolerance_db": AMP_TOLERANCE_DB, "ok": gap <= AMP_TOLERANCE_DB}


def compile_check(tmp: Path) -> dict:
    import torch

    model = _model()
    x = torch.randn(16, 1, 28, 28, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    t = torch.full((16,), 200, device="cuda")
    with torch.no_grad():
        eager = model(x, t)
        compiled = torch.compile(model)(x, t)
    diff = (eager - compiled).abs().max().item()
    return {"max_abs_difference": diff, "tolerance": COMPILE_TOLERANCE, "ok": diff <= COMPILE_TOLERANCE}


def speed(tmp: Path) -> dict:
    out = ROOT / "benchmarks" / "results" / "speed_cuda_quick.json"
    cmd = [sys.executable, "benchmarks/speed.py", "--quick", "--device", "cuda", "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    return {"command": " ".join(cmd[1:]), "returncode": done.returncode, "json": str(out.relative_to(ROOT)),
            "tail": done.stdout[-1500:] + done.stderr[-1500:]}


RUNNERS = {"train_03": train_03, "train_07": train_07, "sample_04": sample_04, "sample_05": sample_05,
           "sample_08": sample_08, "amp": amp, "compile": compile_check, "speed": speed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_check_cuda.json"))
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all jobs (default 8 minutes)")
    parser.add_argument("--jobs", nargs="*", default=JOBS, choices=JOBS)
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    args = parser.parse_args(argv)
    print("plan: " + ", ".join(args.jobs) + f"; budget {args.budget:.0f} s; full-mode sizes {json.dumps(FULL)}")
    if args.dry_run:
        return 0
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here, so nothing was timed. Run this script on a machine with a GPU "
              "(for example when a session is lent one); the README's full-mode column stays 'unmeasured'.")
        return 2
    import os

    os.chdir(ROOT)
    result = {"machine": {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                          "cuda": torch.version.cuda, "python": platform.python_version()},
              "note": "timings run a bounded number of steps and are extrapolated to full mode (see each job)",
              "jobs": {}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for job in args.jobs:
            if time.perf_counter() - start > args.budget:
                result["jobs"][job] = {"skipped": "the time budget was spent"}
                continue
            t0 = time.perf_counter()
            try:
                result["jobs"][job] = RUNNERS[job](Path(tmp))
            except Exception as error:  # one failing job must not lose the others' numbers
                result["jobs"][job] = {"error": f"{type(error).__name__}: {error}"}
            result["jobs"][job]["wall_s"] = round(time.perf_counter() - t0, 1)
            print(f"{job}: {json.dumps(result['jobs'][job])[:300]}", flush=True)
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
