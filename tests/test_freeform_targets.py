"""benchmarks/freeform_targets.py: one small run on the shipped patterns model, its numbers checked against each other."""
import json
import re
import shlex
from pathlib import Path

import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def targets():
    return load_script("benchmarks/freeform_targets.py", "freeform_targets_bench")


def test_a_small_run_scores_each_method_against_the_better_classical_fill(targets, tmp_path):
    out = tmp_path / "t.json"
    report = targets.main(["--n", "5", "--steps", "2", "--masks", "rectangle", "--dc_repeats", "1", "--mean_of", "1",
                           "--batch", "5", "--out", str(out), "--threads", "1"])
    assert json.loads(out.read_text())["command"].startswith("python benchmarks/freeform_targets.py --n 5")
    rows = report["masks"]["rectangle"]["methods"]
    assert list(rows) == ["harmonic", "telea", "default", "one sample"]
    best = [max(a, b) for a, b in zip(rows["harmonic"]["per_image"], rows["telea"]["per_image"])]
    for name, r in rows.items():
        a = r["all"]
        assert len(r["per_image"]) == 5 and all(0 < v <= 100 for v in r["per_image"])
        assert a["minus_best_classical"] == pytest.approx(sum(x - y for x, y in zip(r["per_image"], best)) / 5)
        low, high = a["minus_best_classical_ci95"]
        assert low <= a["minus_best_classical"] <= high and a["roughness"] > 0
    assert rows["harmonic"]["all"]["minus_best_classical"] <= 0 and rows["telea"]["all"]["minus_best_classical"] <= 0


def test_the_shipped_mmse_reference_fills_the_hole_and_beats_laplace_on_stripes(tmp_path):
    import torch

    from inpaintlib.freeform import find_images, harmonic_fill, load_rgb, make_patterns
    from inpaintlib.freeform.baseline import mmse_fill, model_fill
    from inpaintlib.masks import random_hole
    from inpaintlib.metrics import psnr_hole
    from inpaintlib.registry import load_model, pretrained

    model = load_model(pretrained("patterns-mmse"), device="cpu")
    assert model.config.objective == "mmse" and model.config.pred == "x0"
    make_patterns(tmp_path, 10, 64, seed=11, kinds=("stripes", "checkers"))
    images = torch.stack([load_rgb(f, 64) for f in find_images(tmp_path)])
    g = torch.Generator().manual_seed(0)
    hole = torch.stack([random_hole("rectangle", 64, (0.2, 0.3), g) for _ in range(10)])
    fill = mmse_fill(model, images, hole)
    keep = (hole == 0).expand_as(images)
    assert torch.equal(fill[keep], images[keep])
    assert torch.equal(model_fill(model, images, hole, 50), fill)  # inpaint_image's path: one pass, no sampling
    assert psnr_hole(fill, images, hole) > psnr_hole(harmonic_fill(images, 1 - hole), images, hole) + 1.0


def test_the_card_table_is_recomputed_from_the_files(targets, tmp_path):
    card = load_script("benchmarks/freeform_card_table.py", "freeform_card_table_bench")
    out = tmp_path / "t.json"
    report = targets.main(["--n", "5", "--steps", "2", "--masks", "thin_stroke", "--dc_repeats", "1", "--mean_of", "1",
                           "--batch", "5", "--out", str(out), "--threads", "1"])
    header, rule, row = card.rows([out])
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == len(header.strip("|").split("|")) == rule.count("---")
    m = report["masks"]["thin_stroke"]["methods"]
    assert cells[0] == "thin stroke" and cells[5] == "-"  # no MMSE reference in this file
    assert float(cells[3]) == pytest.approx(m["default"]["all"]["psnr_per_image"], abs=0.006)
    gap = sum(a - b for a, b in zip(m["one sample"]["per_image"], m["telea"]["per_image"])) / 5
    assert float(cells[9]) == pytest.approx(gap, abs=0.006)
    with pytest.raises(FileNotFoundError, match="files"):
        card.main([str(tmp_path / "missing.json")])


def test_the_shipped_residual_cards_table_is_what_its_command_prints():
    """patterns_residual.md names the result files its table comes from; the table in the card is that
    command's output, cell for cell (a card edited by hand, or measured again without its table, fails here)."""
    root = Path(__file__).resolve().parents[1]
    card_text = (root / "inpaintlib/weights/patterns_residual.md").read_text()
    joined = re.sub(r"\\\n\s*", "", card_text)  # the command's continuation lines, joined
    command = next(line for line in joined.splitlines() if "python benchmarks/freeform_card_table.py" in line)
    files = shlex.split(command.split("#")[0])[2:]
    assert len(files) == 2 and all(f.endswith(".json") for f in files)
    card = load_script("benchmarks/freeform_card_table.py", "freeform_card_table_bench")
    table = card.rows([root / f for f in files])
    assert "\n".join(table) in card_text
