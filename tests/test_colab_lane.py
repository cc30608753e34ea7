"""Colab as it is today (issue 15): the package admits Colab's Python, and every notebook runs top to
bottom on a rebuilt Colab runtime (tests/colab/: the pins, the lane, the stand-in google.colab).

The lane (``tests/colab/lane.py``) builds a venv with Colab's pinned kernel and widget stack
(ipykernel 6.17.1, IPython 7.34.0, ipywidgets 7.7.1, anywidget 0.9.21, ...) and torch/torchvision
preinstalled, clones this checkout's HEAD to /content/inpaintlib, and runs each notebook from
/content in fast mode with nbclient on a kernel from that venv, where ``google.colab`` is imported
before the first cell. The notebooks' own set-up cell does all the installing. Afterwards the venv
must hold exactly what it held before, plus inpaintlib installed from /content/inpaintlib.

It runs once per Python in ``lane.LANE_PYTHONS``: this environment's 3.11 (torch hard-linked from
here), and Colab's own 3.13 where an interpreter is installed (pyenv's, or python3.13 on PATH; its
venv downloads torch 2.14.1 for cp313 once, then is cached like the other). Without one, the 3.13
run is skipped and says so.
"""
from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "colab"))
import lane  # noqa: E402

LANE_BUDGET_S = 600  # every notebook on one Python, on 2 CPU cores (the venv's build not included)
BUILD_BUDGET_S = 900  # one venv built from scratch (3.13: torch and its CUDA libraries downloaded, ~4 GB)


def test_requires_python_admits_colab_and_every_current_python():
    spec = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    colab = lane.colab_python()
    assert colab == "3.13", f"colab-pins.txt records Python {colab}"
    for version in sorted({"3.10", "3.11", "3.12", "3.13", "3.14", colab}, key=Version):
        assert spec.contains(version), f"requires-python {spec} excludes Python {version}"


def test_pins_file_names_its_source_and_pins_colabs_stack():
    text = lane.PINS.read_text()
    for words in ("googlecolab/backend-info", "pip-freeze.gpu.txt", "2026-08-19", "torch", "Left out"):
        assert words in text, f"colab-pins.txt's header must name {words!r}"
    pins = lane.pins()
    wanted = {"ipython": "7.34.0", "ipywidgets": "7.7.1", "ipykernel": "6.17.1", "traitlets": "5.7.1",
              "jupyter-client": "7.4.9", "notebook": "6.5.7", "anywidget": "0.9.21"}
    assert {name: pins.get(name) for name in wanted} == wanted
    assert pins["widgetsnbextension"].startswith("3.6."), "widgetsnbextension must match ipywidgets 7.7.1 (3.6.x)"
    assert {"jupyterlab-widgets", "numpy", "matplotlib", "pillow", "tqdm"} <= set(pins)
    assert not {"torch", "torchvision"} & set(pins), "torch/torchvision: the lane preinstalls this machine's"


def test_pins_differ_between_pythons_only_where_the_header_says():
    text = lane.PINS.read_text()
    by_python = {version: lane.pins(python=version) for version in lane.LANE_PYTHONS}
    p311, p313 = by_python["3.11"], by_python["3.13"]
    assert set(p311) == set(p313), set(p311) ^ set(p313)
    differ = sorted(name for name in p311 if p311[name] != p313[name])
    assert differ == ["numpy"], f"only numpy may differ between 3.11 and 3.13, found {differ}"
    assert Version(p311["numpy"]) == Version("2.0.2") and Version(p313["numpy"]) >= Version("2.1"), \
        "numpy's first cp313 wheels are 2.1.0"
    for name in differ:  # the header names each line that differs, and why
        for version in lane.LANE_PYTHONS:
            assert f"{name}=={by_python[version][name]} ; python_version" in text.split("\n# the kernel")[0], name


def test_the_lane_finds_its_pythons_and_only_real_ones(tmp_path, monkeypatch):
    found = lane.interpreters()
    assert list(found) == list(lane.LANE_PYTHONS) == ["3.11", "3.13"]
    assert lane.find_python("%d.%d" % sys.version_info[:2]) == sys.executable
    for version, python in found.items():  # each one found runs, and is that version
        assert python is None or lane.python_version(python).startswith(version + "."), (version, python)
    # a version that is not installed (or a pyenv folder whose python does not run) is not found:
    # the lane's run on it is skipped, saying so
    fake = tmp_path / "versions" / "3.99.0" / "bin"
    fake.mkdir(parents=True)
    (fake / "python").write_text("#!/bin/sh\nexit 1\n")
    (fake / "python").chmod(0o755)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    assert lane.find_python("3.99") is None


@pytest.fixture(scope="module", params=lane.LANE_PYTHONS, ids=lambda v: f"py{v}")
def venv(request):
    version = request.param
    python = lane.find_python(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine (looked for /root/.pyenv/versions/{version}*/bin/python "
                    f"and python{version} on PATH): the Colab lane runs on Python {version} where one is installed")
    started = time.monotonic()
    try:
        venv = lane.build_venv(python)
    except lane.LaneUnavailable as err:
        pytest.skip(f"the Colab lane cannot run here: {err}")
    built = time.monotonic() - started
    timing = lane.json.loads(venv.timing.read_text())
    print(f"Colab lane venv for Python {timing['python']}: {venv.path.name}, "
          + (f"built in {timing['seconds']:.0f} s (torch {timing['torch']})" if built > 5 else "cached"))
    assert timing["python"].startswith(version + "."), timing
    if built > 5:
        assert built < BUILD_BUDGET_S, f"building the {version} venv took {built:.0f} s"
    return venv


@pytest.mark.slow
def test_notebooks_run_all_on_colabs_runtime(venv, tmp_path):
    started = time.monotonic()
    names = [p.stem for p in lane.notebooks()]
    assert len(names) >= 7, names
    log = tmp_path / "colab.log"
    with lane.locked(lane.CACHE / ".content.lock"):
        try:
            commit = lane.prepare_content(venv)
        except lane.LaneUnavailable as err:
            pytest.skip(f"the Colab lane cannot run here: {err}")
        timings, outputs = {}, {}
        for name in names:
            result = lane.run_notebook(venv, name, tmp_path / "executed", log)
            timings[name] = result["seconds"]
            cells = [c for c in result["nb"].cells if c.cell_type == "code"]
            outputs[name] = "".join(o.get("text", "") for o in cells[0].outputs if o.get("output_type") == "stream")
        after = lane.installed(venv)
        changed = lane.changes(venv)
    print(f"Colab lane (Python {venv.version}) at {commit[:10]}: " + ", ".join(f"{n[:2]} {s:.0f} s" for n, s in timings.items())
          + f"; total {time.monotonic() - started:.0f} s (executed copies in {tmp_path / 'executed'})")

    # every notebook's set-up cell saw Colab (google.colab imported before the first cell) and ran
    # from the clone; the kernel's working folder was /content
    for name, text in outputs.items():
        assert f"inpaintlib from {lane.REPO_DIR} | Colab |" in text, f"{name}'s set-up cell printed {text!r}"
    events = lane.read_log(log)
    imports = [e for e in events if e["event"] == "import"]
    assert len(imports) == len(names) and all(e["executable"] == str(venv.python) for e in imports), imports
    # the widget notebook turned on Colab's custom widget manager, and no widget sent binary buffers
    assert any(e["event"] == "enable_custom_widget_manager" for e in events), events
    dropped = [e for e in events if e["event"] == "dropped_buffers"]
    assert not dropped, f"widgets sent binary buffers, which Colab drops: {dropped[:3]}"

    # nothing Colab preinstalls was replaced; the only change is inpaintlib, from /content/inpaintlib
    assert after["torch"].split("+")[0] == lane.PREINSTALLED["torch"], after
    assert after["torchvision"].split("+")[0] == lane.PREINSTALLED["torchvision"], after
    pins = venv.pins()
    assert after["python"] == venv.version, after
    assert (after["ipywidgets"], after["ipython"], after["anywidget"]) == \
        (pins["ipywidgets"], pins["ipython"], pins["anywidget"]), after
    assert after["installed_from_content"] and after["inpaintlib_file"].startswith(str(lane.REPO_DIR)), after
    assert list(changed) == ["added"] and list(changed["added"]) == ["inpaintlib"], \
        f"the notebooks changed the venv beyond installing inpaintlib: {changed}"
    assert time.monotonic() - started < LANE_BUDGET_S, f"the lane took {time.monotonic() - started:.0f} s"
