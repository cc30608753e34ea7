"""Every sampler against the exact posterior of a Gaussian mixture, where the answer has several modes.

    OMP_NUM_THREADS=1 python benchmarks/mixture_posterior.py --protocol grid --dims 8 80 800 --problems 20
    OMP_NUM_THREADS=1 python benchmarks/mixture_posterior.py --protocol digits --problems 10 --data_root data

Each sampler is given the exact denoiser (``inpaintlib.gaussian_mixture.GaussianMixtureModel`` through
``reverse.Denoiser``), 50 steps by default. Calibration is measured across independent runs: every run
returns one sample (a particle sampler's is drawn by its final weights), and ``--runs`` runs per
observation make the histogram.

grid    MCGdiff's mixture (Cardoso et al. 2024, Sec. 4.1; ``mcgdiff_mixture``): 25 unit-covariance
        components, means (8i, 8j, 8i, 8j, ...) for i, j in {-2..2}, random weights, in dimension d. Its
        inpainting form: one coordinate observed (chosen at random), its value that of a draw from the
        mixture, so that the posterior keeps the five modes along the other index. Per problem: sliced
        Wasserstein (``sliced_wasserstein``, 200 directions) between the runs' samples and as many exact
        draws; the floor is the same distance between two independent sets of exact draws.
digits  one low-rank Gaussian per MNIST class (``fit_mixture``, rank 8, 14x14, the first 20,000 training
        digits), the 6x6 centre hole. Observations: draws of the mixture whose exact p(class | known
        pixels) is spread (largest weight below 0.8). Per observation: the total variation between the
        runs' class histogram (``GaussianMixtureModel.assign``) and the exact weights; the floor is the
        same for exact draws. The file keeps every observation's exact weights and each row's class counts.
        ``--trace "smc K=64"`` follows FPS-SMC step by step on one observation against the exact filter
        p(class | y_s) of its noised known pixels (``FilterTrace``): where its particles fall behind.

Writes a JSON with every problem's figures and the command, and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from inpaintlib.gaussian_mixture import (FilterTrace, histogram_tv, mcgdiff_mixture, sliced_wasserstein,
                                        spread_observations)
from inpaintlib.masks import center_hole
from inpaintlib.mnist.data import mnist_mixture
from inpaintlib.reverse import Denoiser
from inpaintlib.samplers import SAMPLERS
from inpaintlib.schedule import NoiseSchedule

# (row name, sampler, options): each sampler at its defaults, the particle samplers at several K
LADDER = [("replace", "replace", {}), ("guidance w=1", "guidance", {}), ("ddnm", "ddnm", {}), ("pigdm", "pigdm", {}),
          ("diffpir", "diffpir", {})] + [
    (f"{name} K={k}", name, {"particles": k}) for name in ("smc", "mcgdiff", "tds") for k in (1, 4, 16, 64)] + [
    ("smc K=256", "smc", {"particles": 256})] + [
    (f"tds twist_var=0.1 K={k}", "tds", {"particles": k, "twist_var": 0.1}) for k in (1, 16, 64)]


def run_sampler(model, schedule, sampler: str, options: dict, y, hole, runs: int, steps: int, seed: int,
                callback=None):
    """``runs`` independent runs on one observation, one sample each: (runs, C, H, W), seconds, NFE/run."""
    denoise = Denoiser(model, schedule, clip=False, images=runs)
    t0 = time.perf_counter()
    out = SAMPLERS[sampler](denoise, y.expand(runs, -1, -1, -1).contiguous(), hole, schedule, steps,
                            generator=torch.Generator().manual_seed(seed), callback=callback, **options)
    return out, time.perf_counter() - t0, denoise.nfe


def grid_problem(d: int, p: int):
    model = mcgdiff_mixture(d, seed=p)
    g = torch.Generator().manual_seed(1000 + p)
    hole = torch.ones(1, 1, 1, d)
    hole[..., int(torch.randint(d, (1,), generator=g))] = 0
    return model, model.sample(1, g) * (1 - hole), hole


def digit_problems(data_root: str, n: int, seed: int = 0):
    """The digit protocol: the mixture, the 6x6 centre hole of its 14x14 images, ``n`` spread observations."""
    model, hole = mnist_mixture(data_root), center_hole(14, 6)
    return model, hole, spread_observations(model, hole, n, max_weight=0.8, seed=seed)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", choices=("grid", "digits"), required=True)
    p.add_argument("--dims", type=int, nargs="+", default=[8, 80, 800])
    p.add_argument("--problems", type=int, default=20)
    p.add_argument("--runs", type=int, default=200, help="independent runs (one sample each) per observation")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rows", nargs="+", default=None, help="row names of LADDER to run (default: all; none with --trace)")
    p.add_argument("--data_root", default="data")
    p.add_argument("--out", default=None)
    p.add_argument("--trace", nargs="+", default=[], metavar="ROW",
                   help="digits: FPS-SMC rows (e.g. 'smc K=64') to follow step by step against the exact filter "
                        "(inpaintlib.gaussian_mixture.FilterTrace) on observation --trace_problem, its two "
                        "likeliest classes, --runs runs")
    p.add_argument("--trace_problem", type=int, default=3)
    args = p.parse_args(argv)
    traces = [r for r in LADDER if r[0] in args.trace]
    if len(traces) < len(args.trace) or any(r[1] != "smc" for r in traces) or (traces and args.protocol != "digits"):
        raise ValueError(f"--trace {args.trace}: expected FPS-SMC row names of LADDER ('smc K=...') and "
                         "--protocol digits")
    if args.trace and not 0 <= args.trace_problem < args.problems:
        raise ValueError(f"--trace_problem {args.trace_problem}: expected an observation index below --problems "
                         f"{args.problems}")
    rows = [r for r in LADDER if (args.rows is None and not args.trace) or r[0] in (args.rows or [])]
    schedule = NoiseSchedule(1000)
    report = {"command": "python benchmarks/mixture_posterior.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "protocol": args.protocol, "runs": args.runs, "steps": args.steps, "threads": torch.get_num_threads(),
              "cpu": platform.processor() or platform.machine(), "results": {}}
    out = Path(args.out or f"outputs/mixture_posterior/{args.protocol}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = [(d, [grid_problem(d, q) for q in range(args.problems)]) for d in args.dims] \
        if args.protocol == "grid" else [("digits", None)]
    if args.protocol == "digits":
        model, hole, ys = digit_problems(args.data_root, args.problems)
        settings = [("digits", [(model, y, hole) for y in ys])]
    for key, problems in settings:
        table = {}
        floors, counts = [], []
        for q, (model, y, hole) in enumerate(problems):
            exact, comps = model.exact_draws(y, hole, args.runs, torch.Generator().manual_seed(q), return_components=True)
            if args.protocol == "grid":
                again = model.exact_draws(y, hole, args.runs, torch.Generator().manual_seed(10_000 + q))
                floors.append(sliced_wasserstein(exact, again, 200))
            else:
                floors.append(histogram_tv(comps, model.posterior_weights(y, hole)))
                counts.append(torch.bincount(comps, minlength=model.K).tolist())
        table["exact draws"] = {"mean": sum(floors) / len(floors), "per_problem": floors}
        if args.protocol == "digits":  # the exact p(class | known pixels) of every observation, and the draws' counts
            table["exact draws"]["class_counts"] = counts
            report["exact_weights"] = [model.posterior_weights(y, hole).tolist() for model, y, hole in problems]
        report["results"][str(key)] = table
        for name, sampler, options in rows:
            values, counts, seconds, nfe = [], [], 0.0, 0
            for q, (model, y, hole) in enumerate(problems):
                samples, sec, nfe = run_sampler(model, schedule, sampler, options, y, hole, args.runs, args.steps, q)
                seconds += sec
                if args.protocol == "grid":
                    exact = model.exact_draws(y, hole, args.runs, torch.Generator().manual_seed(q))
                    values.append(sliced_wasserstein(samples, exact, 200))
                else:
                    classes = model.assign(samples)
                    values.append(histogram_tv(classes, model.posterior_weights(y, hole)))
                    counts.append(torch.bincount(classes, minlength=model.K).tolist())
            table[name] = {"mean": sum(values) / len(values), "per_problem": values, "nfe_per_run": nfe,
                           "seconds_per_run": seconds / (len(problems) * args.runs), "sampler": sampler,
                           "options": options}
            if counts:  # the runs' class histogram of every observation
                table[name]["class_counts"] = counts
            print(f"{key} {name}: {table[name]['mean']:.3f} (exact draws {table['exact draws']['mean']:.3f}), "
                  f"NFE {nfe}, {table[name]['seconds_per_run'] * 1e3:.2f} ms a run", flush=True)
            out.write_text(json.dumps(report, indent=1))
    for name, sampler, options in traces:
        model, y, hole = settings[0][1][args.trace_problem]
        weights = model.posterior_weights(y, hole)
        classes = weights.argsort(descending=True)[:2].tolist()
        trace = FilterTrace(model, hole, classes)
        run_sampler(model, schedule, sampler, options, y, hole, args.runs, args.steps, args.trace_problem, trace)
        report.setdefault("traces", {})[name] = {
            "problem": args.trace_problem, "classes": classes, "exact_weights": weights[classes].tolist(),
            "steps": [{"t": r["t"], "particles": r["particles"].tolist(), "exact": r["exact"].tolist(),
                       "ess": r["ess"]} for r in trace.rows]}
        last = trace.rows[-1]
        print(f"trace {name}, observation {args.trace_problem}: classes {classes}, at the end the particles' share "
              f"{last['particles'][0]:.3f} / {last['particles'][1]:.3f} against the exact "
              f"{last['exact'][0]:.3f} / {last['exact'][1]:.3f}", flush=True)
        out.write_text(json.dumps(report, indent=1))
    metric = "sliced Wasserstein" if args.protocol == "grid" else "TV of the component histogram"
    print(f"\n| sampler | NFE | " + " | ".join(f"{metric} ({k})" for k in report["results"]) + " |")
    print("|---|---|" + "---|" * len(report["results"]))
    for name in ["exact draws"] + [r[0] for r in rows]:
        first = next(iter(report["results"].values()))[name]
        print(f"| {name} | {first.get('nfe_per_run', '-')} | "
              + " | ".join(f"{t[name]['mean']:.3f}" for t in report["results"].values()) + " |")
    return report


if __name__ == "__main__":
    main()
