"""The main job: ``python -m inpaintlib demo`` shows the design's baseline beside the best the project does."""
from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from inpaintlib.demo import COMPARISON, demo
from inpaintlib.registry import DESIGN, RECOMMENDED

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return demo(out_dir=str(out), n=2), out


def test_the_comparison_has_every_row_on_the_same_digits(comparison):
    result, out = comparison
    saved = json.loads((out / "demo_metrics.json").read_text())
    assert saved["rows"] == result["rows"] and (out / "demo_panel.png").stat().st_size > 10_000
    assert [r["row"] for r in result["rows"]] == [label for label, _, _ in COMPARISON]
    design, free, mask = result["rows"]
    assert design["checkpoint"].endswith("mnist_default.pt") and free["checkpoint"] == design["checkpoint"]
    assert mask["checkpoint"].endswith("mnist_cond_mask.pt")
    assert {k: design[k] for k in DESIGN} == DESIGN  # the design's sampler, as eval_cmd runs it
    assert {k: free[k] for k in RECOMMENDED["mnist"]} == RECOMMENDED["mnist"]
    for row in result["rows"]:
        assert row["nfe_per_image"] == row["steps"] * row["dc_repeats"]
        assert row["backward_per_image"] == (row["nfe_per_image"] if row["sampler"] == "guidance" else 0)
        assert row["psnr_hole"] > 0 and len(row["labels_read"]) == 2 and 0 <= row["identity_hits"] <= 2
    # the lesson of the figure: the same network does better with a sampler that uses the known pixels
    assert free["psnr_hole"] > design["psnr_hole"] + 1 and mask["psnr_hole"] > design["psnr_hole"] + 1
    assert result["best_row"] in (free["row"], mask["row"])


def test_demo_of_one_model_and_bad_arguments(tmp_path):
    one = demo(out_dir=str(tmp_path), n=1, model="mnist", steps=3, dc_repeats=1, guidance=7.0)
    assert one["rows"][0]["sampler"] == "guidance" and one["rows"][0]["guidance"] == 7.0
    with pytest.raises(ValueError, match="guidance=7.0 does not apply to sampler='replace'"):
        demo(out_dir=str(tmp_path), n=1, model="mnist", sampler="replace", guidance=7.0)
    assert len(one["rows"]) == 1 and one["rows"][0]["steps"] == 3 and one["nfe_per_image"] == 3
    with pytest.raises(ValueError, match="n must be"):
        demo(out_dir=str(tmp_path), n=0)
    with pytest.raises(ValueError, match="ckpt"):
        demo(out_dir=str(tmp_path), steps=5)
    with pytest.raises(ValueError, match="not both"):
        demo(out_dir=str(tmp_path), ckpt="x.pt", model="mnist")


def test_demo_of_one_model_with_another_sampler(tmp_path):
    from inpaintlib.__main__ import main

    # from the shell, as the README's other commands: the options are read from demo's signature
    assert main(["demo", "--model", "mnist", "--sampler", "ddnm", "--steps", "3", "--n", "1",
                 "--out_dir", str(tmp_path)]) == 0
    row, = json.loads((tmp_path / "demo_metrics.json").read_text())["rows"]
    # ddnm on its own defaults (one pass, no guidance: RECOMMENDED["mnist"]'s dc_repeats and guidance are the
    # guidance sampler's), the recommended model's steps overridden
    assert row["sampler"] == "ddnm" and row["steps"] == 3 and "dc_repeats" not in row and "guidance" not in row
    assert row["nfe_per_image"] == 3 and row["backward_per_image"] == 0 and row["psnr_hole"] > 0
    with pytest.raises(ValueError, match="sampler must be one of"):
        demo(out_dir=str(tmp_path), n=1, model="mnist", sampler="repaint")
    with pytest.raises(ValueError, match="particles=2 does not apply to sampler='ddnm'; it is an option of sampler 'smc'"):
        demo(out_dir=str(tmp_path), n=1, model="mnist", sampler="ddnm", particles=2)
    with pytest.raises(ValueError, match="sampler"):
        demo(out_dir=str(tmp_path), sampler="ddnm")  # the comparison has its own samplers


def test_the_readme_opens_with_the_figure_the_demo_writes():
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"!\[[^\]]*\]\(([^)]+)\)", readme).group(1)
    default_out = inspect.signature(demo).parameters["out_dir"].default
    assert Path(first) == Path(default_out) / "demo_panel.png"
    assert (ROOT / first).is_file(), "the demo's figure is committed so the README shows it"
    commands = readme.index("```bash")
    assert commands < readme.index(first), "the picture comes right after the two commands"
    assert "python -m inpaintlib demo" in readme[commands:readme.index(first)]
