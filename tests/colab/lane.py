"""The Colab lane: the notebooks run the way Colab runs them today, on a rebuilt Colab runtime.

    interpreters()        the Pythons the lane runs on: this environment's (3.11), and 3.13, Colab's own,
                          where one is installed (find_python: pyenv's, or python3.13 on PATH)
    build_venv(python)    a virtual environment of that Python with Colab's pins (colab-pins.txt; a pin
                          with a python_version marker differs between them) and torch/torchvision
                          preinstalled (2.14.1/0.29.1 for Colab's 2.11/0.26: hard-linked from this
                          environment for its own Python, downloaded for another), the stand-in
                          ``google.colab`` (standin/) imported before any cell by an IPython startup file,
                          and a kernelspec; nothing from the repository. Cached under .colab-venv/, keyed
                          by the Python's version and a hash of the pins, the stand-in and BUILD_RECIPE,
                          so a rerun reuses it (colab-lane-build.json says how long the build took).
    prepare_content()     /content/inpaintlib: a git clone of this checkout's HEAD (what is committed),
                          MNIST linked into data/MNIST/raw as torchvision's download; the venv put back
                          to its built state (an earlier run's inpaintlib uninstalled).
    run_notebook(path)    one notebook top to bottom from /content, as Run all does (INPAINTLIB_FAST=1),
                          by nbclient from this environment, on a kernel started from the venv's python.
    freeze(), installed() what the venv holds afterwards.

Run it with ``python -m pytest tests/test_colab_lane.py`` (both Pythons; ``-k py3.13`` for one), or
``python tests/colab/lane.py [--python 3.13] [--build-only]`` to run the notebooks and print where each
one's executed copy is. It needs root (or a writable /content) and
the package registries; ``.ci/run`` runs it with the rest of the tests.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PINS = HERE / "colab-pins.txt"
STANDIN = HERE / "standin" / "google"
PREINSTALLED = {"torch": "2.14.1", "torchvision": "0.29.1"}  # stand-ins for Colab's torch 2.11.0, torchvision 0.26.0
CONTENT = Path("/content")  # Colab's working folder; the set-up cell clones into /content/inpaintlib
REPO_DIR = CONTENT / "inpaintlib"
OWNER_MARK = CONTENT / ".inpaintlib-colab-lane"  # /content/inpaintlib is the lane's to replace
CACHE = Path(os.environ.get("INPAINTLIB_COLAB_CACHE", ROOT / ".colab-venv"))
KERNEL_NAME = "colab-lane"
BUILD_RECIPE = "3"  # bump when build_venv changes what it builds (part of the cache key)
NETWORK_ERRORS = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                  "Network is unreachable", "No route to host", "ProxyError")


class LaneUnavailable(RuntimeError):
    """The lane cannot run on this machine (the test skips, saying why)."""


# ----------------------------------------------------------------------------------------------
# the pins


def pin_lines(path: Path = PINS) -> list:
    """The requirement lines of the pins file (comments and blanks dropped, environment markers kept)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def pins(path: Path = PINS, python: str | None = None) -> dict:
    """{normalised name: version} of the pins file for Python ``python`` ("X.Y"; default: this one's).
    Every line reads name==version, optionally with an environment marker (``; python_version >= "3.13"``),
    which pip evaluates in the venv and this function for ``python``."""
    from packaging.markers import Marker

    python = python or "%d.%d" % sys.version_info[:2]
    environment = {"python_version": python, "python_full_version": f"{python}.0"}
    out = {}
    for line in pin_lines(path):
        requirement, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        name, sep, version = requirement.strip().partition("==")
        if not sep or not version:
            raise ValueError(f"{path.name}: every pin must read name==version, got {line!r}")
        if normalise(name) in out:
            raise ValueError(f"{path.name}: {name} is pinned twice for Python {python}")
        out[normalise(name)] = version.strip()
    return out


def colab_python(path: Path = PINS) -> str:
    """Colab's Python, from the pins file's ``# python: X.Y`` line."""
    match = re.search(r"^#\s*python:\s*(\d+\.\d+)\s*$", path.read_text(encoding="utf-8"), re.MULTILINE)
    if not match:
        raise ValueError(f"{path} has no '# python: X.Y' line")
    return match.group(1)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ----------------------------------------------------------------------------------------------
# the interpreters


LANE_PYTHONS = ("3.11", "3.13")  # this environment's Python (3.11), and Colab's own (3.13) where installed


def python_version(python) -> str:
    """ "X.Y.Z" of the interpreter ``python``."""
    return subprocess.run([str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def find_python(version: str):
    """The interpreter of Python ``version`` ("X.Y") the lane can build a venv from, or None:
    this process's own, pyenv's (/root/.pyenv/versions/X.Y*/bin/python, $PYENV_ROOT too), or
    ``pythonX.Y`` on PATH. A candidate counts only if it runs, is that version and has venv."""
    if version == "%d.%d" % sys.version_info[:2]:
        return sys.executable
    roots = {Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")), Path("/root/.pyenv")}
    candidates = [p for root in sorted(roots) for p in sorted((root / "versions").glob(f"{version}*/bin/python"),
                                                                reverse=True)]
    if shutil.which(f"python{version}"):
        candidates.append(Path(shutil.which(f"python{version}")))
    for candidate in candidates:
        try:
            out = subprocess.run([str(candidate), "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return str(candidate)
    return None


def interpreters() -> dict:
    """{"X.Y": interpreter or None} for every Python the lane runs on (LANE_PYTHONS)."""
    return {version: find_python(version) for version in LANE_PYTHONS}


# ----------------------------------------------------------------------------------------------
# the virtual environment


def venv_key(python: str = sys.executable) -> str:
    version = python_version(python)
    digest = hashlib.sha256()
    for part in ("\n".join(pin_lines()).encode(), BUILD_RECIPE.encode(),  # the pins, not their comments
                 json.dumps(PREINSTALLED).encode(), *(p.read_bytes() for p in sorted(STANDIN.rglob("*.py")))):
        digest.update(part)
    return f"py{version}-{digest.hexdigest()[:12]}"


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock (the venv, /content) across processes."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd, log: Path, **kwargs) -> None:
    """Run ``cmd``, appending its output to ``log``; on failure raise with the output's end."""
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n")
        out.flush()
        result = subprocess.run([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT, text=True, **kwargs)
    if result.returncode:
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        if any(marker in tail for marker in NETWORK_ERRORS):
            raise LaneUnavailable(f"the package registry cannot be reached to build the Colab venv ({log}):\n{tail[-800:]}")
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed with code {result.returncode} (log: {log}):\n{tail}")


class Venv:
    def __init__(self, path: Path):
        self.path = path
        self.python = path / "bin" / "python"
        self.ipythondir = path / "ipython"  # the lane's IPYTHONDIR: profile_default/startup imports google.colab
        self.kernels = path / "share" / "jupyter" / "kernels"
        self.baseline = path / "colab-lane-versions.json"  # {name: version} right after the build
        self.timing = path / "colab-lane-build.json"  # how long the build took, and what it downloaded

    @property
    def version(self) -> str:
        """The venv's Python, "X.Y" (its pins depend on it)."""
        return python_version(self.python).rsplit(".", 1)[0]

    def pins(self) -> dict:
        return pins(python=self.version)

    def site_packages(self) -> Path:
        out = subprocess.run([self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
        return Path(out)

    def env(self, **extra) -> dict:
        """The environment of the lane's kernel (and server): this process's, without anything that
        would let the repository or this environment's packages in, plus the venv and Colab's flags."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "MPLBACKEND")
               and not k.startswith(("JUPYTER_", "JPY_", "IPYTHON"))}
        env.update(PATH=f"{self.path / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(self.path),
                   IPYTHONDIR=str(self.ipythondir), PYTHONNOUSERSITE="1", INPAINTLIB_FAST="1",
                   OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), PIP_NO_INPUT="1",
                   PYDEVD_DISABLE_FILE_VALIDATION="1")  # ipykernel 6.17's debugger: no warning per kernel
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def freeze(self) -> list:
        out = subprocess.run([self.python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                             check=True, env=self.env()).stdout
        return sorted(line for line in out.splitlines() if line.strip())

    def versions(self) -> dict:
        """{normalised name: version} installed in the venv (pip's view)."""
        code = ("import json, importlib.metadata as m; "
                "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
        out = subprocess.run([self.python, "-c", code], capture_output=True, text=True, check=True, cwd="/",
                             env=self.env()).stdout
        return {normalise(k): v for k, v in json.loads(out).items()}


def build_venv(python: str = sys.executable, cache: Path = CACHE) -> Venv:
    """The lane's venv for the interpreter ``python`` (built once per pins file and Python; see the
    module docstring). Where ``python`` is another Python than this process's (3.13 from a 3.11
    environment), torch and torchvision come from the registry: a cold build downloads them."""
    for tool in ("git",):
        if shutil.which(tool) is None:
            raise LaneUnavailable(f"{tool} is not installed")
    venv = Venv(cache / venv_key(python))
    done = venv.path / ".complete"
    with locked(cache / f".{venv.path.name}.lock"):  # one build of each venv at a time
        if done.is_file() and venv.python.is_file():
            return venv
        if venv.path.exists():
            shutil.rmtree(venv.path)
        venv.path.mkdir(parents=True)
        started = time.monotonic()
        log = venv.path / "build.log"
        _run([python, "-m", "venv", venv.path], log)
        pinned = venv.pins()
        # pip first (Colab's version), then everything at once, so that pip resolves the pins together
        _run([venv.python, "-m", "pip", "install", "-q", f"pip=={pinned['pip']}"], log)
        site = venv.site_packages()
        linked = venv.version == "%d.%d" % sys.version_info[:2] and preinstall_torch(site, log)
        _run([venv.python, "-m", "pip", "install", "-q", "-r", PINS,
              *(f"{name}=={version}" for name, version in PREINSTALLED.items())], log)
        shutil.copytree(STANDIN / "colab", site / "google" / "colab",
                        ignore=shutil.ignore_patterns("__pycache__"))  # google/ stays a namespace package
        startup = venv.ipythondir / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-google-colab.py").write_text(
            "# Colab's kernel imports google.colab before any cell runs (the lane's stand-in)\nimport google.colab\n")
        spec = venv.kernels / KERNEL_NAME
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [str(venv.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (Colab lane)", "language": "python",
            "env": {"IPYTHONDIR": str(venv.ipythondir)}}, indent=1))
        enable_nbextensions(venv, log)
        check_pins(venv)
        (venv.path / "colab-lane-freeze.txt").write_text("\n".join(venv.freeze()) + "\n")  # for people
        venv.baseline.write_text(json.dumps(venv.versions(), indent=0, sort_keys=True))
        venv.timing.write_text(json.dumps({"python": python_version(venv.python), "seconds": round(time.monotonic() - started, 1),
                                           "torch": "hard-linked from this environment" if linked else "from the registry"}))
        done.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    return venv


HEAVY = re.compile(r"^(torch|torchvision|triton|nvidia-.*|cuda-.*)$")  # torch's own files and its CUDA libraries


def preinstall_torch(site: Path, log: Path) -> bool:
    """torch and torchvision "preinstalled", as on Colab: when this environment holds exactly the
    versions the lane wants, their files and those of their CUDA libraries (about 5 GB) are hard-linked
    into the venv from here, dist-info included, so pip sees them installed (removing one in the venv
    unlinks the venv's copy only). Otherwise (another version here, or another file system) pip
    installs them from the registry with the rest. Only for a venv of this process's Python (the
    files are built for it). Returns whether it linked them."""
    from importlib.metadata import distributions, version

    try:
        if any(version(name) .split("+")[0] != wanted for name, wanted in PREINSTALLED.items()):
            return False
    except Exception:
        return False
    linked = 0
    try:
        for dist in distributions():
            if not HEAVY.match(normalise(dist.metadata["Name"] or "")):
                continue
            base = Path(dist.locate_file(""))
            for rel in dist.files or ():
                source, target = base / rel, site / rel
                if ".." in Path(rel).parts or not source.is_file() or target.exists():
                    continue  # scripts outside site-packages, entries that are gone, shared namespace files
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(source, target)
                linked += 1
    except OSError as err:  # another file system: pip installs them instead
        with open(log, "a") as out:
            out.write(f"could not hard-link torch into the venv ({err}); pip installs it\n")
        return False
    with open(log, "a") as out:
        out.write(f"hard-linked {linked} files of torch, torchvision and their CUDA libraries into {site}\n")
    return True


def enable_nbextensions(venv: Venv, log: Path) -> None:
    """The classic notebook's nbextensions of the widget stack, enabled in the venv's sys-prefix
    (widgetsnbextension's wheel enables itself; anywidget's is installed and enabled here if not)."""
    jupyter = venv.path / "bin" / "jupyter"
    for package, require in (("widgetsnbextension", "jupyter-js-widgets/extension"), ("anywidget", "anywidget/extension")):
        _run([jupyter, "nbextension", "install", "--py", "--sys-prefix", "--overwrite", package], log, env=venv.env())
        _run([jupyter, "nbextension", "enable", "--py", "--sys-prefix", package], log, env=venv.env())
    config = venv.path / "etc" / "jupyter" / "nbconfig" / "notebook.json"
    enabled = json.loads(config.read_text()).get("load_extensions", {}) if config.is_file() else {}
    for d in (venv.path / "etc" / "jupyter" / "nbconfig" / "notebook.d").glob("*.json"):
        enabled.update(json.loads(d.read_text()).get("load_extensions", {}))
    missing = [r for r in ("jupyter-js-widgets/extension", "anywidget/extension") if not enabled.get(r)]
    if missing:
        raise RuntimeError(f"nbextensions not enabled in {venv.path}: {missing} (enabled: {enabled})")


def check_pins(venv: Venv) -> None:
    """Every pin, and torch/torchvision, installed at exactly its version."""
    have = venv.versions()
    wanted = {**venv.pins(), **PREINSTALLED}
    wrong = {name: (version, have.get(normalise(name))) for name, version in wanted.items()
             if (have.get(normalise(name)) or "").split("+")[0] != version}
    if wrong:
        raise RuntimeError(f"the Colab venv does not hold the pinned versions (wanted, found): {wrong}")


# ----------------------------------------------------------------------------------------------
# /content


def mnist_raw() -> Path:
    for root in (ROOT / "data", ROOT.parent / "shared" / "data"):
        if (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return (root / "MNIST" / "raw").resolve()
    raise FileNotFoundError("MNIST raw files not found in data/MNIST/raw or ../shared/data/MNIST/raw")


def prepare_content(venv: Venv) -> str:
    """/content/inpaintlib as the set-up cell leaves it after its ``git clone`` (a clone of HEAD,
    with MNIST where torchvision would download it), and the venv without an inpaintlib from an
    earlier run. Returns the commit cloned."""
    try:
        CONTENT.mkdir(exist_ok=True)
        probe = CONTENT / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise LaneUnavailable(f"cannot write to {CONTENT} (Colab's working folder; the lane needs it): {err}")
    if REPO_DIR.exists():
        if not OWNER_MARK.is_file():
            raise RuntimeError(f"{REPO_DIR} exists and was not made by the Colab lane: move it away first")
        shutil.rmtree(REPO_DIR)
    OWNER_MARK.write_text("made by tests/colab/lane.py, which replaces /content/inpaintlib on every run\n")
    log = venv.path / "content.log"
    _run(["git", "clone", "--quiet", "--no-hardlinks", ROOT.as_uri(), REPO_DIR], log)
    commit = subprocess.run(["git", "-C", REPO_DIR, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    (REPO_DIR / "data" / "MNIST").mkdir(parents=True, exist_ok=True)
    (REPO_DIR / "data" / "MNIST" / "raw").symlink_to(mnist_raw(), target_is_directory=True)
    # an earlier run installed inpaintlib into the cached venv: uninstall it, so the set-up cell installs
    if "inpaintlib" in venv.versions():
        _run([venv.python, "-m", "pip", "uninstall", "-y", "-q", "inpaintlib"], log, env=venv.env(), cwd="/")
    drift = changes(venv)
    if drift:
        raise RuntimeError(f"the cached venv {venv.path} no longer matches its build ({drift}); delete it to rebuild")
    return commit


def changes(venv: Venv) -> dict:
    """What differs from the venv's state right after its build, by distribution:
    {"added": {name: version}, "removed": {...}, "changed": {name: [before, after]}} (empty parts left out)."""
    before, after = json.loads(venv.baseline.read_text()), venv.versions()
    out = {"added": {k: v for k, v in after.items() if k not in before},
           "removed": {k: v for k, v in before.items() if k not in after},
           "changed": {k: [v, after[k]] for k, v in before.items() if k in after and after[k] != v}}
    return {k: v for k, v in out.items() if v}


# ----------------------------------------------------------------------------------------------
# running a notebook


def notebooks() -> list:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def run_notebook(venv: Venv, name: str, out_dir: Path, log: Path, cell_timeout: int = 900) -> dict:
    """Run /content/inpaintlib/notebooks/<name>.ipynb as Colab's Run all: every cell in order, in a
    kernel from the venv whose working folder is /content. Writes the executed copy to ``out_dir``;
    raises nbclient's CellExecutionError (with the traceback) if a cell fails. Returns timings."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    path = REPO_DIR / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    ksm = KernelSpecManager(kernel_dirs=[str(venv.kernels)])
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    client = NotebookClient(nb, km=km, kernel_name=KERNEL_NAME, timeout=cell_timeout, startup_timeout=180,
                            resources={"metadata": {"path": str(CONTENT)}})
    started = time.monotonic()
    try:
        client.execute(env=venv.env(INPAINTLIB_COLAB_LOG=log))
    finally:
        if km.has_kernel:  # nbclient leaves a kernel manager it was given running
            km.shutdown_kernel(now=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_dir / f"{name}.ipynb")
    return {"name": name, "seconds": round(time.monotonic() - started, 1), "nb": nb}


def installed(venv: Venv) -> dict:
    """Where the venv's inpaintlib comes from, and the versions of the packages Colab preinstalls,
    as the venv's python sees them from a neutral folder."""
    code = """import json, sys
import torch, torchvision, ipywidgets, IPython, anywidget
import inpaintlib
from inpaintlib.notebook import installed_from
print(json.dumps(dict(python="%d.%d" % sys.version_info[:2], numpy=__import__("numpy").__version__,
                      torch=torch.__version__, torchvision=torchvision.__version__, ipywidgets=ipywidgets.__version__,
                      ipython=IPython.__version__, anywidget=anywidget.__version__, inpaintlib_file=inpaintlib.__file__,
                      installed_from_content=installed_from(sys.argv[1]))))"""
    out = subprocess.run([venv.python, "-c", code, str(REPO_DIR)], capture_output=True, text=True, cwd="/",
                         env=venv.env())
    if out.returncode:
        raise RuntimeError(f"the venv cannot import what the lane checks:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def read_log(log: Path) -> list:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="Run every notebook on the Colab lane.")
    parser.add_argument("--python", default="%d.%d" % sys.version_info[:2], choices=LANE_PYTHONS,
                        help="the venv's Python (default: this one's)")
    parser.add_argument("--build-only", action="store_true", help="build (or find) the venv and stop")
    args = parser.parse_args()
    interpreter = find_python(args.python)
    if interpreter is None:
        sys.exit(f"no Python {args.python} here (looked for /root/.pyenv/versions/{args.python}*/bin/python "
                 f"and python{args.python} on PATH)")
    venv = build_venv(interpreter)
    print(f"venv {venv.path}: {venv.timing.read_text() if venv.timing.is_file() else ''}")
    if args.build_only:
        sys.exit(0)
    with locked(CACHE / ".content.lock"):
        print(f"venv {venv.path}; /content/inpaintlib at {prepare_content(venv)[:10]}")
        out = Path(tempfile.mkdtemp(prefix="colab-lane-"))
        for path in notebooks():
            result = run_notebook(venv, path.stem, out, out / "colab.log")
            print(f"{path.stem}: {result['seconds']} s")
        print(json.dumps(installed(venv)), changes(venv), f"executed notebooks in {out}", sep="\n")
