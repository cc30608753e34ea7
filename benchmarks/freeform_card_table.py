"""The free-form model card's table, from ``freeform_targets.py``'s JSON files (one or several, split by mask kind).

    python benchmarks/freeform_card_table.py benchmarks/results/freeform_targets_thin_snr16_43000_a_n100.json \
        benchmarks/results/freeform_targets_thin_snr16_43000_b_n100.json

One row per mask kind, per-image PSNR_hole (dB, mean over the images) of the harmonic fill, Telea, the default
fill, one sample and the MMSE reference; then the paired gaps per image: the default fill minus the better
classical fill (with the file's 95% bootstrap interval) over all images and over the structured ones, the
default fill minus the MMSE reference, one sample minus Telea; one sample's roughness; and the default fill minus
the harmonic fill on the gradients alone; and the pooled PSNR_hole of the default fill minus the better of the two
classical fills' pooled PSNR_hole. A column whose method is not in a file is left as "-".
Prints markdown.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = ("harmonic", "telea", "default", "one sample", "MMSE reference")


def _mean(values):
    return sum(values) / len(values)


def _gap(methods: dict, a: str, b: str, kinds=None, only=None) -> float | None:
    """Mean per-image PSNR of method a minus method b (over the images of kind ``only``, when given)."""
    if a not in methods or b not in methods:
        return None
    pa, pb = methods[a]["per_image"], methods[b]["per_image"]
    pairs = [(x, y) for i, (x, y) in enumerate(zip(pa, pb)) if only is None or kinds[i] == only]
    return _mean([x - y for x, y in pairs])


def rows(files: list[Path]) -> list[str]:
    out = ["| mask | harmonic | Telea | default fill | one sample | MMSE reference | default minus better classical (95%) "
           "| structured | default minus MMSE | one sample minus Telea | one sample's roughness "
           "| default on gradients minus harmonic | pooled: default minus better classical |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    from inpaintlib.freeform.data import PATTERN_KINDS

    def fmt(v, sign=False):
        return "-" if v is None else (f"{v:+.2f}" if sign else f"{v:.2f}")

    for f in files:
        report = json.loads(Path(f).read_text())
        n = report["n"]
        kinds = [PATTERN_KINDS[i % len(PATTERN_KINDS)] for i in range(n)]
        for mask, entry in report["masks"].items():
            m = entry["methods"]
            cells = [fmt(m[c]["all"]["psnr_per_image"]) if c in m else "-" for c in COLUMNS]
            if "default" in m:
                a, s = m["default"]["all"], m["default"]["structured"]
                lo, hi = a["minus_best_classical_ci95"]
                gap = f"{a['minus_best_classical']:+.2f} ({lo:+.2f} to {hi:+.2f})"
                structured = fmt(s["minus_best_classical"], True)
            else:
                gap = structured = "-"
            pooled = None
            if "default" in m and "harmonic" in m and "telea" in m:
                pooled = m["default"]["all"]["psnr_pooled"] - max(m[c]["all"]["psnr_pooled"] for c in ("harmonic", "telea"))
            rough = fmt(m["one sample"]["all"]["roughness"]) if "one sample" in m else "-"
            out.append(f"| {mask.replace('_', ' ')} | " + " | ".join(cells) + f" | {gap} | {structured} | "
                       f"{fmt(_gap(m, 'default', 'MMSE reference'), True)} | {fmt(_gap(m, 'one sample', 'telea'), True)} | "
                       f"{rough} | {fmt(_gap(m, 'default', 'harmonic', kinds, 'gradient'), True)} | {fmt(pooled, True)} |")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path, help="freeform_targets.py JSON files")
    args = p.parse_args(argv)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"files: no such file(s): {', '.join(missing)}")
    print("\n".join(rows(args.files)))


if __name__ == "__main__":
    main()
