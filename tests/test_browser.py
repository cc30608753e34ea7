"""End to end in a real browser: JupyterLab + headless Chromium (Debian's ``/usr/bin/chromium``,
driven by Playwright for Python; Playwright never downloads a browser here).

The test starts JupyterLab on 127.0.0.1 (a free port, a token, a temporary root holding a copy of
notebook 06 and links to the package and data, INPAINTLIB_FAST=1), opens the notebook, runs all its
cells, then uses the MNIST widget as a learner would: clears the hole, paints a stroke with the
mouse, presses Run. It asserts that the kernel received the painted hole (the count the kernel
computes is shown under the canvas, and the kernel's own tensor is read back) and that the result
image changed. It then draws a digit by hand and inpaints it, and uploads an image file into the
free-form widget (its file input; the file reaches the kernel as a data URL string).

Screenshots of the widget in use are written to the test's temporary folder; with
INPAINTLIB_UPDATE_SCREENSHOTS=1 they also replace ``docs/screenshots/widget_*.png`` (the README's).
The models are the shipped ones; where this copy has none, those this checkout trained (notebooks 03
and 07), or for the free-form widget the checkpoint named by INPAINTLIB_FREEFORM_CKPT.

Skipped, with the reason, only where Chromium, Playwright, JupyterLab or the widget libraries are
missing (``.ci/run`` installs Chromium from Debian's packages).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser_helpers import (CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, TIMEOUT_MS, check_result_panel, free_port,
                             press_run, hole_count, image_bytes, stop_lab, stroke, upload_image, wait_for_server, wait_text)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "06_interactive.ipynb"


def _missing() -> str | None:
    """Why the test cannot run here, or None."""
    import importlib.util

    if not Path(CHROMIUM).is_file():
        return f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install -y chromium)"
    for module, pip_name in (("playwright", "playwright"), ("jupyterlab", "jupyterlab"),
                             ("anywidget", "anywidget"), ("ipywidgets", "ipywidgets")):
        if importlib.util.find_spec(module) is None:
            return f"{pip_name} is not installed (pip install {pip_name})"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_missing() is not None, reason=str(_missing()))]


def write_settings(folder: Path) -> None:
    """JupyterLab user settings for a quiet, fully rendered notebook: every cell in the DOM (no
    windowing), no news or update pop-ups over the widget."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                             "checkForUpdates": False},
    }
    for name, value in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def make_root(tmp: Path) -> Path:
    """A temporary repository-shaped folder: the notebook copied, the package and data linked, a
    fresh outputs/. The notebook's set-up cell finds it as the repository root."""
    root = tmp / "repo"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(NOTEBOOK, root / "notebooks" / NOTEBOOK.name)
    (root / "inpaintlib").symlink_to(ROOT / "inpaintlib", target_is_directory=True)
    if (ROOT / "data").is_dir():
        (root / "data").symlink_to(ROOT / "data", target_is_directory=True)
    (root / "outputs").mkdir()
    # the MNIST model: the shipped one if this copy has it, else a model already trained in this
    # checkout (so the notebook does not train one), else the notebook trains a fast one itself
    from inpaintlib.notebook import FAST_CKPT, LEARNER_CKPT
    from inpaintlib.registry import available

    if "mnist" not in available():
        for candidate in (ROOT / LEARNER_CKPT, ROOT / FAST_CKPT):
            if candidate.is_file():
                (root / FAST_CKPT).parent.mkdir(parents=True)
                (root / FAST_CKPT).symlink_to(candidate)
                break
    if "patterns" not in available():  # likewise the free-form model notebook 07 trains, if there is one
        chosen = os.environ.get("INPAINTLIB_FREEFORM_CKPT")  # or any free-form checkpoint, for screenshots
        for folder, candidate in [("07_free_form", Path(chosen).resolve() if chosen else None)] + [
                (folder, ROOT / "outputs" / folder / "small_model.pt") for folder in ("07_free_form", "07_free_form_fast")]:
            if candidate is not None and candidate.is_file():
                (root / "outputs" / folder).mkdir(parents=True)
                (root / "outputs" / folder / "small_model.pt").symlink_to(candidate)
                break
    return root


def start_lab(root: Path, tmp: Path, port: int, token: str) -> subprocess.Popen:
    env = dict(os.environ, INPAINTLIB_FAST="1", JUPYTER_CONFIG_DIR=str(tmp / "config"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), IPYTHONDIR=str(tmp / "ipython"),
               OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    env.pop("JUPYTER_TOKEN", None)
    write_settings(tmp / "settings")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(tmp / "jupyterlab.log", "wb")
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


# JavaScript run in the page (JupyterLab exposes its application as window.jupyterapp)
KERNEL_IDLE = """() => {
  const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = nb && nb.sessionContext && nb.sessionContext.session && nb.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
}"""
ALL_CELLS_RUN = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  const cells = nb.content.widgets.filter((c) => c.model.type === 'code');
  const kernel = nb.sessionContext.session.kernel;
  const error = cells.some((c) => c.model.outputs.toJSON().some((o) => o.output_type === 'error'));
  return error || (cells.every((c) => c.model.executionCount !== null) && kernel.status === 'idle');
}"""
CELL_ERRORS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter((c) => c.model.type === 'code')
  .flatMap((c) => c.model.outputs.toJSON().filter((o) => o.output_type === 'error'))
  .map((o) => o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n'))"""
KERNEL_EXECUTE = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  let out = '';
  const future = kernel.requestExecute({ code, silent: false, store_history: false });
  future.onIOPub = (msg) => {
    if (msg.header.msg_type === 'stream') out += msg.content.text;
    if (msg.header.msg_type === 'error') out += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue;
  };
  await future.done;
  return out;
}"""


def kernel_json(page, code: str):
    """Run ``code`` in the notebook's kernel (no new cell) and parse the JSON it prints."""
    out = page.evaluate(KERNEL_EXECUTE, code)
    assert not out.startswith("ERROR"), out
    return json.loads(out)


def settled(page, label, code: str, timeout: float = 60.0):
    """``kernel_json(code)`` once it gives the same answer twice in a row, 0.4 s apart (a stroke's
    last sync has arrived) and, with ``label``, agrees with the hole count shown under the canvas."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        value = kernel_json(page, code)
        count = value[0] if isinstance(value, list) else value
        shown = None if label is None else hole_count(label.text_content())
        if value == previous and (label is None or shown == count):
            return value
        previous = value
        time.sleep(0.4)
    pytest.fail(f"the kernel's value did not settle within {timeout:.0f} s: {previous} (shown: {shown})")


def test_draw_a_hole_and_run_in_jupyterlab(tmp_path):
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    root = make_root(tmp_path)
    port, token = free_port(), os.urandom(16).hex()
    base = f"http://127.0.0.1:{port}"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    proc = start_lab(root, tmp_path, port, token)
    try:
        wait_for_server(proc, base, token, tmp_path / "jupyterlab.log")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 1100})
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(f"{base}/lab/tree/notebooks/{NOTEBOOK.name}?token={token}")
                page.wait_for_selector(".jp-Notebook .jp-Cell")
                page.wait_for_function(KERNEL_IDLE, timeout=TIMEOUT_MS)
                page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")

                # run the whole notebook, as a learner pressing "Run all"
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                page.wait_for_function(ALL_CELLS_RUN, timeout=2 * TIMEOUT_MS, polling=500)
                errors = page.evaluate(CELL_ERRORS)
                assert not errors, "the notebook raised:\n" + "\n\n".join(errors)
                ran_at = time.monotonic()

                w = page.locator(".inpaint-mnist").first
                w.scroll_into_view_if_needed()
                canvas = w.locator("canvas.inpaint-canvas-view")
                label = w.locator(".inpaint-hole-count")
                status = w.locator(".inpaint-status")
                result = w.locator("img.inpaint-result")
                canvas.wait_for(state="visible")
                assert "done" in status.text_content()  # the notebook's own runs from code

                # 1. clear the hole, paint a stroke across the middle of the digit with the mouse
                w.locator("button.inpaint-clear").click()
                wait_text(page, label, "text.includes('hole: 0 of 784')")
                stroke(page, canvas, [(0.25, 0.5), (0.5, 0.45), (0.75, 0.5)])
                wait_text(page, label, "/hole: [1-9][0-9]* of 784/.test(text)")
                # the kernel's own tensor, once the last sync of the stroke is in: the rows and columns
                # the stroke crossed, and the count under the canvas agrees with it
                hole = settled(page, label, "import json; h = widget.hole[0, 0]; n = h.nonzero(); "
                                            "print(json.dumps([int(h.sum()), n[:, 0].tolist(), n[:, 1].tolist()]))")
                painted = hole[0]
                assert 20 <= painted <= 200, hole
                assert 10 <= min(hole[1]) and max(hole[1]) <= 16, f"hole rows {sorted(set(hole[1]))}"
                assert 4 <= min(hole[2]) <= 8 and 19 <= max(hole[2]) <= 23, f"hole columns {sorted(set(hole[2]))}"
                w.screenshot(path=str(shots / "widget_paint.png"))
                before = image_bytes(result)  # input with the new hole, "result (press Run)"

                # 2. press Run (more steps than fast mode, so that the live view can be seen at work)
                kernel_json(page, "widget.steps.value = 40; widget.every.value = 2; print('null')")
                kernel_json(page, "widget.status.value = 'waiting for Run'; print('null')")
                wait_text(page, status, "text === 'waiting for Run'")  # a "done" read below is this run's
                w.locator("button.inpaint-run").click()
                try:
                    wait_text(page, status, "/running: proposal (1[2-9]|2[0-9])\\//.test(text)", timeout=60_000)
                    w.screenshot(path=str(shots / "widget_running.png"))
                except Exception:  # too fast to catch mid-run: not an error
                    pass
                done = wait_text(page, status, "text.startsWith('done')")
                after, deadline = image_bytes(result), time.monotonic() + 60  # the picture's update may trail the status
                while after == before and time.monotonic() < deadline:
                    time.sleep(0.25)
                    after = image_bytes(result)
                assert after != before, "the result image did not change"
                run = kernel_json(page, "import json; print(json.dumps([widget.last_run.hole_pixels, "
                                        "int(widget._run_hole.sum()), len(widget.frames), widget.dc_repeats.value]))")
                # the run filled the hole the kernel held at Run: the painted stroke (under load the canvas's
                # last partial sync of the stroke can arrive after the count settled)
                assert f"filled {run[1]} hole pixels" in done and run[0] == run[1], (done, run)
                assert painted <= run[1] <= 200, (painted, run)
                assert run[2] == 40 * run[3] // 2, run  # a frame every 2 of 40 x dc_repeats
                check_result_panel(after)
                w.screenshot(path=str(shots / "widget_result.png"))

                # 3. draw a digit by hand (a 7), paint a hole across it, run
                w.get_by_role("button", name="draw a digit", exact=True).click()
                w.locator("button.mod-active", has_text="draw digit").wait_for()  # the ink brush is on
                page.wait_for_timeout(300)
                stroke(page, canvas, [(0.25, 0.25), (0.75, 0.25), (0.45, 0.8)])
                drawn = settled(page, None, "import json; print(json.dumps(round(float(widget.image.sum()), 3)))")
                assert drawn >= 10, f"the hand-drawn digit did not reach the kernel (ink sum {drawn})"
                w.get_by_role("button", name="paint hole", exact=True).click()
                w.locator("button.mod-active", has_text="paint hole").wait_for()
                page.wait_for_timeout(300)
                w.locator("button.inpaint-clear").click()
                wait_text(page, label, "text.includes('hole: 0 of 784')")
                stroke(page, canvas, [(0.3, 0.15), (0.85, 0.35)])
                wait_text(page, label, "/hole: [1-9][0-9]* of 784/.test(text)")
                kernel_json(page, "widget.steps.value = 20; print('null')")
                press_run(page, w, kernel_json)
                w.screenshot(path=str(shots / "widget_draw_digit.png"))

                # the free-form widget, as the notebook left it
                ff = page.locator(".inpaint-freeform").first
                ff.scroll_into_view_if_needed()
                # the notebook ran it and then compared the fills: the status says so, the compare view shows them
                assert ff.locator(".inpaint-status").text_content().startswith("compared: harmonic ")
                assert image_bytes(ff.locator("img.inpaint-compare"))[:8] == b"\x89PNG\r\n\x1a\n"
                ff.screenshot(path=str(shots / "widget_freeform.png"))
                # 4. upload an image of one's own (as a data URL string, not FileUpload's binary buffers)
                upload_image(page, ff, tmp_path, kernel_json)
                # 5. the compare button on it: a run for the hole, then the five fills, each with its PSNR
                before = image_bytes(ff.locator("img.inpaint-compare"))
                ff.locator("button.inpaint-compare").click()
                wait_text(page, ff.locator(".inpaint-status"), "text.startsWith('compared: harmonic ')")
                fills = kernel_json(page, "import json; print(json.dumps(list(ff.comparison)))")
                assert fills == ["harmonic", "Telea", "one sample", "default fill", "MMSE reference"], fills
                deadline = time.monotonic() + 60  # the picture's update may trail the status
                while image_bytes(ff.locator("img.inpaint-compare")) == before and time.monotonic() < deadline:
                    time.sleep(0.25)
                assert image_bytes(ff.locator("img.inpaint-compare")) != before, "the compare view did not change"
            finally:
                browser.close()
        print(f"notebook run in {ran_at - started:.0f} s, whole test {time.monotonic() - started:.0f} s")
    finally:
        stop_lab(proc, base, token)
    if os.environ.get("INPAINTLIB_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for shot in shots.glob("widget_*.png"):
            shutil.copy(shot, SCREENSHOTS / shot.name)


