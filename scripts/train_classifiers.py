"""Train the two shipped digit classifiers and write their cards.

    OMP_NUM_THREADS=1 python scripts/train_classifiers.py            # both, about 25 min on one CPU thread

- ``mnist_classifier.pt``: reads whole digits; the demo and the quality table use it for "digit
  identity" (is the fill the true digit?).
- ``mnist_masked_classifier.pt``: reads digits whose 12x12 centre hole is zeroed, calibrated with
  one temperature on held-out training digits. Its mean probability for the true label over the
  test split estimates the identity of an exact posterior sample ("ideal posterior").

Training digits 0..54,999 train both; 55,000..59,999 are held out (the temperature is fitted
there); the 10k test split is only measured. Refuses to overwrite without --overwrite.
"""
from __future__ import annotations

import argparse
import time

import torch

from inpaintlib.classifier import (CLASSIFIER_FILE, MASKED_CLASSIFIER_FILE, digit_identity, fit_temperature,
                                   label_probabilities, save_classifier, train_classifier)
from inpaintlib.masks import center_hole
from inpaintlib.mnist.data import load_mnist

N_FIT = 55000


def card(name: str, path, meta: dict, command: str) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in meta.items())
    return (f"# `{path.name}`: {name}\n\nFile: `inpaintlib/weights/{path.name}` "
            f"({path.stat().st_size / 1e6:.2f} MB, fp16). Architecture: `inpaintlib.classifier.DigitClassifier` "
            f"(four 3x3 convolutions, two max-pools, a 128-unit hidden layer).\n\nMade with:\n\n    {command}\n\n"
            f"| measure | value |\n|---|---|\n{rows}\n")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--data_root", default="data")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--only", choices=("plain", "masked"), default=None)
    a = p.parse_args(argv)
    for path in (CLASSIFIER_FILE, MASKED_CLASSIFIER_FILE):
        if path.exists() and not a.overwrite and (a.only is None or a.only in path.name or
                                                  (a.only == "plain" and "masked" not in path.name)):
            raise SystemExit(f"{path} exists; pass --overwrite to replace it")
    train_u8, train_labels = load_mnist(a.data_root, train=True)
    test_u8, test_labels = load_mnist(a.data_root, train=False)
    train01, test01 = train_u8.float() / 255, test_u8.float() / 255
    fit_x, fit_y = train01[:N_FIT], train_labels[:N_FIT]
    held_x, held_y = train01[N_FIT:], train_labels[N_FIT:]
    hole = center_hole(28, 12)
    command = f"OMP_NUM_THREADS=1 python scripts/train_classifiers.py --epochs {a.epochs}"
    out = {}
    if a.only in (None, "plain"):
        t0 = time.perf_counter()
        clf = train_classifier(fit_x, fit_y, epochs=a.epochs, seed=0)
        meta = {"epochs": a.epochs, "training digits": f"0..{N_FIT - 1}",
                "held-out training accuracy (5,000)": round(digit_identity(clf, held_x, held_y), 4),
                "test accuracy (10,000)": round(digit_identity(clf, test01, test_labels), 4),
                "train seconds (one thread)": round(time.perf_counter() - t0)}
        save_classifier(clf, CLASSIFIER_FILE, meta)
        CLASSIFIER_FILE.with_suffix(".md").write_text(card("reads whole MNIST digits", CLASSIFIER_FILE, meta, command))
        out["plain"] = meta
        print("plain", meta, flush=True)
    if a.only in (None, "masked"):
        t0 = time.perf_counter()
        clf = train_classifier(fit_x, fit_y, epochs=a.epochs, seed=1, hole=hole)
        keep = 1 - hole
        temperature = fit_temperature(clf, held_x * keep, held_y)
        probs = label_probabilities(clf, test01 * keep)
        p_true = probs.gather(1, test_labels[:, None]).squeeze(1)
        nll = -p_true.clamp_min(1e-12).log().mean()
        # calibration check: bins of confidence on the test split (expected calibration error)
        conf, pred = probs.max(1)
        ece = 0.0
        for lo in torch.linspace(0, 1, 11)[:-1]:
            sel = (conf > lo) & (conf <= lo + 0.1)
            if sel.any():
                ece += sel.float().mean() * ((pred[sel] == test_labels[sel]).float().mean() - conf[sel].mean()).abs()
        meta = {"epochs": a.epochs, "hole": "12x12 centre box, zeroed", "training digits": f"0..{N_FIT - 1}",
                "temperature (fitted on training digits 55,000..59,999)": round(temperature, 4),
                "test accuracy on masked digits (10,000)": round(float((pred == test_labels).float().mean()), 4),
                "test mean p(true label | observed): ideal-posterior identity": round(float(p_true.mean()), 4),
                "test NLL": round(float(nll), 4), "test expected calibration error (10 bins)": round(float(ece), 4),
                "train seconds (one thread)": round(time.perf_counter() - t0)}
        save_classifier(clf, MASKED_CLASSIFIER_FILE, meta)
        MASKED_CLASSIFIER_FILE.with_suffix(".md").write_text(
            card("reads MNIST digits with the 12x12 centre hole zeroed (calibrated)", MASKED_CLASSIFIER_FILE, meta,
                 command))
        out["masked"] = meta
        print("masked", meta, flush=True)
    return out


if __name__ == "__main__":
    main()
