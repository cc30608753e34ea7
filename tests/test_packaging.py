"""The shipped models travel in the wheel: pretrained() finds them in a pip install, away from the clone."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from inpaintlib.registry import MODELS

REPO = Path(__file__).resolve().parents[1]


def test_wheel_carries_every_shipped_model_and_card_and_pretrained_finds_them(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("inpaintlib-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in MODELS.values():
        assert f"inpaintlib/weights/{f}" in names and f"inpaintlib/weights/{Path(f).stem}.md" in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    code = ("import inpaintlib, torch\n"
            "for name in ('mnist', 'mnist-mask'):\n"
            "    path = inpaintlib.pretrained(name)\n"
            "    model = inpaintlib.load_model(path)\n"
            "    print(path, model.config.cond)\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, capture_output=True,
                         text=True).stdout.split("\n")
    assert out[0].startswith(str(site / "inpaintlib" / "weights" / MODELS["mnist"])) and out[0].endswith(" none")
    assert out[1].startswith(str(site / "inpaintlib" / "weights" / MODELS["mnist-mask"])) and out[1].endswith(" mask")
