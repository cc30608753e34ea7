"""The notebook series: every .py/.ipynb pair in step, every .ipynb holding the outputs of one render of
its current code, the first cell and badge built from ``inpaintlib.notebook``, and every figure the
prose quotes from a results file equal to that file.

Running the notebooks themselves is nbval's job: ``INPAINTLIB_FAST=1 pytest --nbval-lax notebooks``.
After editing a notebook's .py: ``python scripts/sync_notebooks.py NAME`` rewrites its .ipynb, and
``python scripts/render_notebooks.py NAME`` runs it and stores its outputs.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import re
from pathlib import Path

import jupytext  # a test requirement (requirements.txt): a missing one must fail CI, not skip the checks
import nbformat
import pytest

import inpaintlib.notebook as nbk

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NAMES = sorted({p.stem for pattern in ("[0-9][0-9]_*.py", "[0-9][0-9]_*.ipynb") for p in NOTEBOOK_DIR.glob(pattern)})
SYNC = "run `python scripts/sync_notebooks.py {name}` (the .py is the source)"
RENDER = "run `python scripts/render_notebooks.py {name}` (re-renders its outputs)"


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync_tool = load_script("sync_notebooks")


def read_pair(name):
    py_path, ipynb_path = NOTEBOOK_DIR / f"{name}.py", NOTEBOOK_DIR / f"{name}.ipynb"
    assert py_path.is_file(), f"{ipynb_path.name} has no paired {py_path.name}"
    assert ipynb_path.is_file(), f"{py_path.name} has no paired {ipynb_path.name}: " + SYNC.format(name=name)
    return py_path.read_text(encoding="utf-8"), nbformat.read(ipynb_path, as_version=4)


def prose(name) -> str:
    """The learner's text of a notebook: its markdown cells and its code comments."""
    py_text, _ = read_pair(name)
    return py_text


def test_the_series_is_there():
    assert set(nbk.NOTEBOOKS) == set(NAMES), f"notebooks and inpaintlib.notebook.NOTEBOOKS differ: {NAMES}"


def test_jupytext_config_pairs_ipynb_with_percent_py():
    import tomllib

    config = tomllib.loads((ROOT / "jupytext.toml").read_text())
    assert config["formats"] == "ipynb,py:percent"


@pytest.mark.parametrize("name", NAMES)
def test_pair_in_sync(name):
    py_text, nb = read_pair(name)
    # the .ipynb written back as percent-format text is the committed .py, byte for byte (no outputs in it)
    assert jupytext.writes(nb, fmt="py:percent") == py_text, f"{name}: .py and .ipynb differ; " + SYNC.format(name=name)
    from_py = jupytext.reads(py_text, fmt="py:percent")
    assert [(c.cell_type, c.source) for c in from_py.cells] == [(c.cell_type, c.source) for c in nb.cells]
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{name}: kernelspec python3 expected"


# ----------------------------------------------------------------------------------------------
# the committed outputs: one render of the code as it is now


@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_a_render_of_the_current_code(name):
    _, nb = read_pair(name)
    stored = sync_tool.stored_hash(nb)
    assert stored is not None, f"{name} has never been rendered: " + RENDER.format(name=name)
    assert stored == sync_tool.code_hash(nb), \
        f"{name}: its code changed since its outputs were rendered; " + RENDER.format(name=name)


@pytest.mark.parametrize("name", NAMES)
def test_outputs_read_as_one_run(name):
    """Code cells numbered 1, 2, ... in order; no stderr; a ``# NBVAL_CHECK_OUTPUT`` cell holds only
    the stdout nbval compares a fresh run against."""
    _, nb = read_pair(name)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), RENDER.format(name=name)
    for index, cell in enumerate(code, start=1):
        where = f"{name} code cell {index}"
        assert not any(o.output_type == "stream" and o.name == "stderr" for o in cell.outputs), where
        assert not any(o.output_type == "error" for o in cell.outputs), f"{where} holds an error"
        if "NBVAL_CHECK_OUTPUT" in cell.source:
            assert cell.outputs, f"{where} is marked NBVAL_CHECK_OUTPUT but holds no reference output"
            assert all(o.output_type == "stream" and o.name == "stdout" for o in cell.outputs), where
    for cell in nb.cells:
        if cell.cell_type != "code":
            assert "outputs" not in cell and "execution_count" not in cell


def figures(nb) -> int:
    return sum(1 for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
               if "data" in out and ("image/png" in out.data or "image/gif" in out.data))


@pytest.mark.parametrize("name", NAMES)
def test_size_figures_and_recorded_time(name):
    size = (NOTEBOOK_DIR / f"{name}.ipynb").stat().st_size
    assert size <= 4_000_000, f"{name}.ipynb is {size / 1e6:.1f} MB (at most 4 MB)"
    _, nb = read_pair(name)
    assert figures(nb) >= 2, f"{name}: at least two figures must be committed; " + RENDER.format(name=name)
    times = json.loads((NOTEBOOK_DIR / "render_times.json").read_text())
    assert times["notebooks"][name]["seconds"] > 0


def test_readme_quotes_the_measured_times():
    """The README's notebook table states each notebook's fast-mode time as render_times.json has it."""
    times = json.loads((NOTEBOOK_DIR / "render_times.json").read_text())["notebooks"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, record in times.items():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `notebooks/{name}`")), None)
        assert row is not None, f"README: no table row for {name}"
        assert f"{record['seconds']:.0f} s" in row, f"README row of {name} should say {record['seconds']:.0f} s"


# ----------------------------------------------------------------------------------------------
# the first cells: title, badge, the FAST switch and the set-up, all from inpaintlib/notebook.py


@pytest.mark.parametrize("name", NAMES)
def test_opens_with_title_badge_and_setup(name):
    _, nb = read_pair(name)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {name[:2]} · "), f"{name}: title first"
    assert nbk.badge_markdown(name) in first.source, f"{name}: the badge must be {nbk.badge_markdown(name)}"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == nbk.setup_cell_source(name), \
        f"{name}: the first code cell must be inpaintlib.notebook.setup_cell_source({name!r}); " \
        + SYNC.format(name=name)
    assert re.search(r"^FAST = (True|False)$", first_code.source, re.M), f"{name}: no visible FAST switch"


@pytest.mark.parametrize("name", NAMES)
def test_every_repository_address_is_the_constant(name):
    """The public address is written once (REPO_URL); a notebook may only repeat it, never vary it."""
    py_text, _ = read_pair(name)
    owner_repo = nbk.REPO_URL.removeprefix("https://github.com/")
    for url in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", py_text):
        assert url == nbk.REPO_URL, f"{name}: {url} is not REPO_URL ({nbk.REPO_URL})"
    for url in re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"']+", py_text):
        assert url == nbk.colab_url(name), f"{name}: {url} is not colab_url({name!r})"
        assert owner_repo in url


def test_colab_url_and_badge_are_built_from_repo_url():
    url = nbk.colab_url("01_noise_schedule")
    assert url == ("https://colab.research.google.com/github/" + nbk.REPO_URL.removeprefix("https://github.com/")
                   + "/blob/main/notebooks/01_noise_schedule.ipynb")
    assert nbk.badge_markdown("01_noise_schedule") == f"[![Open In Colab]({nbk.COLAB_BADGE_IMAGE})]({url})"
    assert f'"{nbk.REPO_URL}"' in nbk.setup_cell_source("01_noise_schedule")


def test_setup_cell_fails_readably_and_installs_without_torch():
    source = nbk.setup_cell_source("03_training")
    assert '"google.colab" in sys.modules' in source and "clone" in source
    assert "raise SystemExit" in source and "set REPO_URL above" in source  # one message, naming the constant
    assert "GIT_TERMINAL_PROMPT" in source  # a wrong address fails instead of asking for a password
    assert not any("torch" in spec for spec in nbk.LIGHT_DEPS.values())
    compile(source, "<first cell>", "exec")


def test_failing_pip_is_one_readable_message(monkeypatch):
    import subprocess
    import types

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: types.SimpleNamespace(returncode=1, stdout="",
                                                                                  stderr="ERROR: no network"))
    with pytest.raises(SystemExit, match="REPO_URL"):
        nbk._pip(["python", "-m", "pip", "install", "x"])


def test_sizes_picks_by_mode_and_checks_keys():
    assert nbk.sizes(fast=1, full=2, fast_mode=True) == 1
    assert nbk.sizes(fast=1, full=2, fast_mode=False) == 2
    ns = nbk.sizes(fast=dict(n=8, steps=10), full=dict(n=64, steps=50), fast_mode=True)
    assert (ns.n, ns.steps) == (8, 10)
    with pytest.raises(ValueError, match="same sizes"):
        nbk.sizes(fast=dict(n=8), full=dict(n=64, steps=50))


@pytest.mark.parametrize("flag, expected", [("1", True), ("true", True), ("0", False), ("", False), (None, False)])
def test_fast_flag(flag, expected):
    assert nbk._flag(flag) is expected


def test_environment_variable_overrides_the_switch(monkeypatch):
    monkeypatch.delenv("INPAINTLIB_FAST", raising=False)
    assert nbk.fast_mode(True) is True and nbk.fast_mode(False) is False
    monkeypatch.setenv("INPAINTLIB_FAST", "0")
    assert nbk.fast_mode(True) is False
    monkeypatch.setenv("INPAINTLIB_FAST", "1")
    assert nbk.fast_mode(False) is True


def test_find_root():
    assert nbk.find_root() == ROOT
    assert nbk.find_root(NOTEBOOK_DIR) == ROOT


def test_sync_keeps_outputs_and_the_hash_catches_a_code_change(tmp_path):
    """A prose edit keeps the outputs and the stored hash valid; a code edit makes the hash test fail."""
    name = "01_noise_schedule"
    for suffix in (".py", ".ipynb"):
        (tmp_path / f"{name}{suffix}").write_bytes((NOTEBOOK_DIR / f"{name}{suffix}").read_bytes())
    text = (tmp_path / f"{name}.py").read_text(encoding="utf-8")
    (tmp_path / f"{name}.py").write_text(text.replace("## What to take away", "## What to take home"), encoding="utf-8")
    after = nbformat.read(sync_tool.sync(name, tmp_path), as_version=4)
    assert sync_tool.code_hash(after) == sync_tool.stored_hash(after)
    assert sum(len(c.outputs) for c in after.cells if c.cell_type == "code") > 0
    (tmp_path / f"{name}.py").write_text(text.replace('linear = NoiseSchedule(T, "linear")',
                                                      "linear = NoiseSchedule(T, 'linear')"), encoding="utf-8")
    after = nbformat.read(sync_tool.sync(name, tmp_path), as_version=4)
    assert sync_tool.code_hash(after) != sync_tool.stored_hash(after)  # test_outputs_are_a_render... now fails


# ----------------------------------------------------------------------------------------------
# the design's training arguments are written once: TrainConfig's defaults


def test_training_notebook_takes_the_design_arguments_from_trainconfig():
    """03_training trains with ``dataclasses.asdict(TrainConfig())`` (the design's command) and
    overrides only the run's sizes; it writes none of the design's values again."""
    from inpaintlib.mnist import TrainConfig

    tree = ast.parse((NOTEBOOK_DIR / "03_training.py").read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "train"]
    assert len(calls) == 1, "03_training should call train(...) once"
    design = dataclasses.asdict(TrainConfig())
    literal = [kw.arg for kw in calls[0].keywords if kw.arg in design and isinstance(kw.value, ast.Constant)]
    assert not literal, f"03_training writes design arguments again: {literal} (read them from TrainConfig())"
    assert "asdict(TrainConfig())" in ast.unparse(tree)


# ----------------------------------------------------------------------------------------------
# figures quoted in the prose from a results file equal that file


def results(path):
    return json.loads((ROOT / "benchmarks" / "results" / path).read_text())


def row(data, method):
    return next(r for r in data["rows"] if r["method"] == method)


LADDER, SHIPPED = "quality_ladder_cpu.json", "quality_ladder11700_cpu.json"
GUIDED = "mnist: guidance (steps=10, dc_repeats=3, guidance=20)"
# (notebook, the text as the prose writes it, where the figure comes from)
QUOTES = [
    ("04_ddim_inpainting", "{:.2f}x", lambda: 1 + results(SHIPPED)["backward_cost_in_forwards"]["mnist"]),
    ("08_beyond_replacement", "{:.2f}x", lambda: 1 + results(SHIPPED)["backward_cost_in_forwards"]["mnist"]),
    ("05_evaluation", "{:.2f} dB",
     lambda: row(results("quality_shipped/quality.json"), "mean training image")["psnr_hole"]),
    ("05_evaluation", "{:.2f} dB",
     lambda: row(results("quality_shipped/quality.json"), "mnist: 50 steps, dc_repeats=2")["psnr_hole"]),
    ("04_ddim_inpainting", "{:.2f} forward passes", lambda: results(SHIPPED)["backward_cost_in_forwards"]["mnist"]),
    ("08_beyond_replacement", "{:.2f} dB", lambda: row(results(SHIPPED), GUIDED)["psnr_hole"]),
    ("08_beyond_replacement", "{:.2f} dB",
     lambda: row(results(SHIPPED), "ideal posterior sample (reference)")["psnr_hole"]),
]


@pytest.mark.parametrize("name, written, value", QUOTES, ids=[f"{q[0]}-{i}" for i, q in enumerate(QUOTES)])
def test_quoted_results_match_their_files(name, written, value):
    text = written.format(value())
    assert text in prose(name), f"{name} should quote {text!r} (from benchmarks/results)"


# ----------------------------------------------------------------------------------------------
# the learner's text: no project bookkeeping, and exercises at the end


BOOKKEEPING = [r"[Ii]ssue \d+", r"\b[Tt]argets? (?:met|missed)", r"\bmissed by\b", r"\bMISSED\b", r"step[- ]4,?500",
               r"step[- ]11,?700", r"\bsession \d+", r"#\d{2}\b"]


@pytest.mark.parametrize("name", NAMES)
def test_no_bookkeeping_and_exercises_at_the_end(name):
    _, nb = read_pair(name)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for pattern in BOOKKEEPING:
        found = re.findall(pattern, text)
        assert not found, f"{name}: project bookkeeping in the learner's text: {found}"
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and "## Exercises" in last.source, f"{name}: end with exercises"
    assert 2 <= len(re.findall(r"^\d\. ", last.source.split("## Exercises")[1], re.M)) <= 3, name
