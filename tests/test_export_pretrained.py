"""scripts/export_pretrained.py: fp16 EMA weights that load_model reads, a card with the quality rows, no overwrite."""
import json

import pytest
import torch

from inpaintlib import load_model
from inpaintlib.checkpoint import load_checkpoint

from conftest import load_script


@pytest.fixture()
def exporter(monkeypatch, tmp_path):
    module = load_script("scripts/export_pretrained.py", "export_pretrained")
    monkeypatch.setattr(module, "WEIGHTS_DIR", tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    return module


def quality_json(path):
    row = lambda m, p, **kw: {"method": m, "psnr_hole": p, "l1_hole": 0.1, "digit_identity": 0.9, **kw}  # noqa: E731
    path.write_text(json.dumps({
        "rows": [row("ground truth", None), row("nearest neighbours k=1", 9.4),
                 row("regression U-Net (MMSE reference)", 13.1),
                 row("tiny: 50 steps, dc_repeats=2", 10.61, nfe_per_image=100, gap_to_mmse_db=2.49,
                     psnr_hole_ci95=[10.3, 10.9]),
                 row("other: 50 steps, dc_repeats=2", 7.0, nfe_per_image=100, gap_to_mmse_db=6.1),
                 row("tiny: mean of 16 samples (50 steps, dc_repeats=2)", 12.3, nfe_per_image=1600,
                     gap_to_mmse_db=0.8, ideal_gap_db=0.26),
                 row("tiny-guided: 50 steps, dc_repeats=1, guidance=45", 11.2, nfe_per_image=50, guidance=45.0)],
        "targets": {"tiny": {"single >= kNN k=1 + 1 dB": {"value": 10.61, "threshold": 10.4, "met": True},
                             "mean of 16 >= MMSE - 0.5 dB": {"value": 12.3, "threshold": 12.6, "met": False,
                                                             "ci95": [11.9, 12.7]}},
                    "tiny-guided (guidance=45)": {"single >= kNN k=1 + 1 dB": {"value": 11.2, "threshold": 10.4,
                                                                               "met": True}}},
        "n_diffusion": 200, "n_posterior": 64, "classifier_test_accuracy": 0.9931, "command": "python benchmarks/q.py",
        "hardware": {"gpu": None, "cpu": "x86_64", "torch": torch.__version__}}))
    return path


def test_export_writes_fp16_ema_weights_and_a_card_with_the_models_rows(exporter, tiny_run, tmp_path):
    q = quality_json(tmp_path / "quality.json")
    args = [str(tiny_run.checkpoint), "tiny_model", "--command", "python -m inpaintlib train ...", "--hardware",
            "a test", "--train_seconds", "120", "--n_eval", "0", "--quality_json", str(q), "--quality_name", "tiny"]
    exporter.main(args)
    dst = tmp_path / "weights" / "tiny_model.pt"
    shipped, source = load_checkpoint(dst), load_checkpoint(tiny_run.checkpoint)
    assert "model" not in shipped and all(v.dtype == torch.float16 for v in shipped["ema"].values()
                                          if v.is_floating_point())
    for k, v in source["ema"].items():
        if v.is_floating_point():
            assert torch.allclose(shipped["ema"][k].float(), v.float(), rtol=1e-3, atol=1e-4), k
    assert isinstance(load_model(dst), torch.nn.Module)
    card = (tmp_path / "weights" / "tiny_model.md").read_text()
    assert "| tiny: 50 steps, dc_repeats=2 | 100 | 10.61 | 10.30 to 10.90 |" in card
    assert "| tiny: mean of 16 samples (50 steps, dc_repeats=2) | 1600 | 12.30 |  | 0.1000 | 0.900 | 0.80 (ideal 0.26) |" in card
    assert "| nearest neighbours k=1 |  | 9.40 |" in card and "other:" not in card
    assert "| mean of 16 >= MMSE - 0.5 dB | 12.300 | 11.90 to 12.70 | 12.600 | **no** |" in card
    assert "## Evaluation" not in card  # --n_eval 0: no eval_cmd section
    assert "tiny-guided" not in card  # another name: only when asked for
    exporter.main([*args[:-1], "tiny,tiny-guided", "--overwrite"])
    card = (tmp_path / "weights" / "tiny_model.md").read_text()
    assert "| tiny-guided: 50 steps, dc_repeats=1, guidance=45 | 50 (+50 backward) | 11.20 |" in card
    assert "targets for `tiny`," in card and "targets for `tiny-guided (guidance=45)`" in card
    assert "| single >= kNN k=1 + 1 dB | 11.200 |  | 10.400 | yes |" in card
    # the weights are never replaced without --overwrite; --card_only leaves them alone
    before = dst.read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        exporter.main(args)
    exporter.main([*args, "--card_only"])
    assert dst.read_bytes() == before
    # without --train_seconds the card takes the wall time the training run recorded
    recorded = load_checkpoint(tiny_run.checkpoint)["train_seconds"]
    exporter.main([*args[:6], *args[8:], "--card_only"])
    card = (tmp_path / "weights" / "tiny_model.md").read_text()
    assert f"Wall time: {recorded:.0f} seconds" in card or f"Wall time: {recorded / 60:.0f} minutes" in card


def test_export_refuses_incomplete_quality_arguments(exporter, tiny_run, tmp_path):
    base = [str(tiny_run.checkpoint), "x", "--command", "c", "--hardware", "h", "--train_seconds", "1", "--n_eval", "0"]
    with pytest.raises(SystemExit):
        exporter.main([*base, "--quality_json", str(quality_json(tmp_path / "q.json"))])  # no --quality_name
    with pytest.raises(ValueError, match="no rows of that model"):
        exporter.main([*base, "--quality_json", str(tmp_path / "q.json"), "--quality_name", "absent"])
    assert not (tmp_path / "weights" / "x.pt").exists()  # the bad name was caught before the export
    with pytest.raises(SystemExit):
        exporter.main([*base, "--card_only"])  # nothing exported under that name
