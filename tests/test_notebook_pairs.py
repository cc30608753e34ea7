"""The notebook series: every .py/.ipynb pair in step, outputs stripped, the Colab badge and set-up cell
built from ``inpaintlib.notebook.REPO_URL``; and the helpers the notebooks share.

Running the notebooks themselves is nbval's job: ``INPAINTLIB_FAST=1 pytest --nbval-lax notebooks``.
After editing a notebook's .py, ``python -m inpaintlib.notebook sync NAME`` rewrites its .ipynb.
"""
from __future__ import annotations

import re
from pathlib import Path

import jupytext  # a test requirement (requirements.txt): a missing one must fail CI, not skip the checks
import nbformat
import pytest

import inpaintlib.notebook as nbk

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NAMES = sorted({p.stem for pattern in ("[0-9][0-9]_*.py", "[0-9][0-9]_*.ipynb") for p in NOTEBOOK_DIR.glob(pattern)})
FIX = "run `python -m inpaintlib.notebook sync {name}` (the .py is the source)"


def read_pair(name):
    py_path, ipynb_path = NOTEBOOK_DIR / f"{name}.py", NOTEBOOK_DIR / f"{name}.ipynb"
    assert py_path.is_file(), f"{ipynb_path.name} has no paired {py_path.name}"
    assert ipynb_path.is_file(), f"{py_path.name} has no paired {ipynb_path.name}: " + FIX.format(name=name)
    return py_path.read_text(encoding="utf-8"), nbformat.read(ipynb_path, as_version=4)


def test_the_series_is_there():
    assert set(nbk.NOTEBOOKS) <= set(NAMES), f"missing notebooks: {sorted(set(nbk.NOTEBOOKS) - set(NAMES))}"


def test_jupytext_config_pairs_ipynb_with_percent_py():
    import tomllib

    config = tomllib.loads((ROOT / "jupytext.toml").read_text())
    assert config["formats"] == "ipynb,py:percent"


@pytest.mark.parametrize("name", NAMES)
def test_pair_in_sync(name):
    py_text, nb = read_pair(name)
    # the .ipynb written back as percent-format text is the committed .py, byte for byte
    assert jupytext.writes(nb, fmt="py:percent") == py_text, f"{name}: .py and .ipynb differ; " + FIX.format(name=name)
    # and cell by cell (a clearer message when they differ)
    from_py = jupytext.reads(py_text, fmt="py:percent")
    assert [(c.cell_type, c.source) for c in from_py.cells] == [(c.cell_type, c.source) for c in nb.cells]
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{name}: kernelspec python3 expected"


@pytest.mark.parametrize("name", NAMES)
def test_outputs_stripped(name):
    """No outputs, no execution counts: except the reference stdout of ``# NBVAL_CHECK_OUTPUT`` cells,
    which nbval compares a fresh run against (and which it only accepts with an execution count)."""
    _, nb = read_pair(name)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            assert "outputs" not in cell and "execution_count" not in cell
            continue
        where = f"{name} cell {index}"
        if nbk.is_checked(cell):
            assert cell.outputs, f"{where} is marked NBVAL_CHECK_OUTPUT but holds no reference output: " + \
                f"run `python -m inpaintlib.notebook sync --record {name}`"
            assert all(o.output_type == "stream" and o.name == "stdout" for o in cell.outputs), where
            assert isinstance(cell.execution_count, int), where
        else:
            assert cell.outputs == [], f"{where} has outputs; " + FIX.format(name=name)
            assert cell.execution_count is None, f"{where} has an execution count; " + FIX.format(name=name)


@pytest.mark.parametrize("name", NAMES)
def test_opens_with_title_badge_and_setup(name):
    _, nb = read_pair(name)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {name[:2]} · "), f"{name}: title first"
    assert nbk.badge_markdown(name) in first.source, f"{name}: the badge must be {nbk.badge_markdown(name)}"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == nbk.setup_cell_source(), \
        f"{name}: the first code cell must be inpaintlib.notebook.setup_cell_source(), verbatim"


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


# ----------------------------------------------------------------------------------------------
# the helpers in inpaintlib/notebook.py


def test_colab_url_and_badge_are_built_from_repo_url():
    url = nbk.colab_url("01_noise_schedule")
    assert url == ("https://colab.research.google.com/github/" + nbk.REPO_URL.removeprefix("https://github.com/")
                   + "/blob/main/notebooks/01_noise_schedule.ipynb")
    assert nbk.badge_markdown("01_noise_schedule") == f"[![Open In Colab]({nbk.COLAB_BADGE_IMAGE})]({url})"
    assert f'"{nbk.REPO_URL}"' in nbk.setup_cell_source()


def test_setup_cell_installs_without_torch():
    source = nbk.setup_cell_source()
    assert '"google.colab" in sys.modules' in source and "git" in source and "clone" in source
    assert not any("torch" in spec for spec in nbk.LIGHT_DEPS.values())


def test_sizes_picks_by_mode_and_checks_keys():
    assert nbk.sizes(fast=1, full=2, fast_mode=True) == 1
    assert nbk.sizes(fast=1, full=2, fast_mode=False) == 2
    ns = nbk.sizes(fast=dict(n=8, steps=10), full=dict(n=64, steps=50), fast_mode=True)
    assert (ns.n, ns.steps) == (8, 10)
    with pytest.raises(ValueError, match="same sizes"):
        nbk.sizes(fast=dict(n=8), full=dict(n=64, steps=50))
    with pytest.raises(ValueError, match="both be dicts"):
        nbk.sizes(fast=dict(n=8), full=64)


def test_train_sizes_differ_only_in_size_arguments():
    fast, full = nbk.TRAIN_SIZES["fast"], nbk.TRAIN_SIZES["full"]
    assert set(fast) == set(full)
    assert not set(fast) & set(nbk.DESIGN_TRAIN_ARGS)
    assert full["max_steps"] is None and full["train_subset"] is None
    assert Path(full["out_dir"]) == nbk.LEARNER_CKPT.parent and Path(fast["out_dir"]) == nbk.FAST_CKPT.parent


@pytest.mark.parametrize("flag, expected", [("1", True), ("true", True), ("0", False), ("", False), (None, False)])
def test_fast_flag(flag, expected):
    assert nbk._flag(flag) is expected


def test_choose_checkpoint_order(tmp_path, monkeypatch, capsys):
    import sys

    pretrained_module = sys.modules["inpaintlib.registry"]

    learner, fast_run, shipped = tmp_path / "learner.pt", tmp_path / "fast.pt", tmp_path / "shipped.pt"

    def shipped_present(name="mnist"):
        return shipped

    def shipped_absent(name="mnist"):
        raise FileNotFoundError("not shipped")

    for path in (learner, fast_run, shipped):
        path.write_bytes(b"x")
    monkeypatch.setattr(pretrained_module, "pretrained", shipped_present)
    assert nbk.choose_checkpoint(learner, fast_run) == learner
    assert "trained in 03_training" in capsys.readouterr().out
    learner.unlink()
    assert nbk.choose_checkpoint(learner, fast_run) == shipped
    assert "shipped model" in capsys.readouterr().out
    monkeypatch.setattr(pretrained_module, "pretrained", shipped_absent)
    assert nbk.choose_checkpoint(learner, fast_run) == fast_run
    assert "fast-mode model" in capsys.readouterr().out
    fast_run.unlink()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        nbk.choose_checkpoint(learner, fast_run, train_if_missing=False)


def test_strip_outputs_keeps_only_checked_stdout():
    nb = nbformat.v4.new_notebook()
    plain = nbformat.v4.new_code_cell("print(1)", execution_count=3,
                                      outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")])
    checked = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(2)", execution_count=4,
                                        outputs=[nbformat.v4.new_output("stream", name="stdout", text="2\n"),
                                                 nbformat.v4.new_output("stream", name="stderr", text="warn\n")])
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), plain, checked]
    nbk.strip_outputs(nb)
    assert plain.outputs == [] and plain.execution_count is None
    assert [o.name for o in checked.outputs] == ["stdout"] and checked.execution_count == 2


def test_find_root():
    assert nbk.find_root() == ROOT
    assert nbk.find_root(NOTEBOOK_DIR) == ROOT


def test_training_notebook_calls_train_with_the_design_arguments():
    """03_training spells out the design's command; ``choose_checkpoint``'s fallback trains with
    DESIGN_TRAIN_ARGS and TRAIN_SIZES. Both must describe the same run."""
    import ast

    tree = ast.parse((NOTEBOOK_DIR / "03_training.py").read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "train"]
    assert len(calls) == 1, "03_training should call train(...) once"
    keywords = {kw.arg: kw.value for kw in calls[0].keywords}
    for name, value in nbk.DESIGN_TRAIN_ARGS.items():
        assert name in keywords and isinstance(keywords[name], ast.Constant), f"train(...) lacks {name}={value!r}"
        passed = keywords[name].value
        assert passed == value, f"03_training passes {name}={passed!r}, the design {value!r}"
    for name in nbk.TRAIN_SIZES["full"]:
        node = keywords.get(name)
        assert isinstance(node, ast.Attribute) and node.attr == name, f"03_training should pass {name}=S.{name}"
