"""The browser test in Colab's widget stack: the classic notebook 6.5.7 front end with ipywidgets
7.7.1, widgetsnbextension 3.6 and anywidget 0.9.21 (its classic-notebook nbextension enabled in the
venv's sys-prefix), all from the Colab lane's venv (tests/colab/lane.py), with the stand-in
``google.colab`` imported before any cell. Like Colab's widget manager, the stand-in drops every
binary buffer the kernel's widgets send, so a widget that relied on them would fail here.

The server serves /content, where the lane has cloned this checkout's HEAD; the notebook's own
set-up cell installs inpaintlib (``pip install --no-deps -e /content/inpaintlib``), as on Colab.
Chromium opens notebooks/06_interactive.ipynb, runs all, clears the hole, paints a stroke with the
mouse and presses Run; the test asserts that the kernel received the painted hole and that the
result image changed; then it uploads an image into the free-form widget (a file input whose file
travels as a data URL string) and checks the kernel loaded it. A screenshot is left in the test's
temporary folder (with INPAINTLIB_UPDATE_SCREENSHOTS=1 also docs/screenshots/widget_colab_classic.png).

Helpers are shared with tests/test_browser.py (JupyterLab), from tests/browser_helpers.py. Skipped, with the reason, where Chromium
or Playwright is missing or the lane cannot run (no writable /content, no package registry).
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
sys.path.insert(0, str(ROOT / "tests" / "colab"))
import lane  # noqa: E402

NOTEBOOK = "inpaintlib/notebooks/06_interactive.ipynb"  # under /content


def _missing() -> str | None:
    import importlib.util

    if not Path(CHROMIUM).is_file():
        return f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install -y chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright)"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_missing() is not None, reason=str(_missing()))]

# JavaScript run in the classic notebook's page (it exposes window.Jupyter)
KERNEL_READY = """() => {
  const nb = window.Jupyter && Jupyter.notebook, kernel = nb && nb.kernel;
  const icon = document.querySelector('#kernel_indicator_icon');
  return !!kernel && kernel.is_connected() && !!kernel.info_reply && !!icon && icon.classList.contains('kernel_idle_icon');
}"""
ALL_CELLS_RUN = """() => {
  const cells = Jupyter.notebook.get_cells().filter((c) => c.cell_type === 'code');
  const error = cells.some((c) => c.output_area.outputs.some((o) => o.output_type === 'error'));
  const icon = document.querySelector('#kernel_indicator_icon');
  return error || (cells.every((c) => typeof c.input_prompt_number === 'number') && icon.classList.contains('kernel_idle_icon'));
}"""
CELL_ERRORS = """() => Jupyter.notebook.get_cells().filter((c) => c.cell_type === 'code')
  .flatMap((c) => c.output_area.outputs.filter((o) => o.output_type === 'error'))
  .map((o) => o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n'))"""
KERNEL_EXECUTE = """(code) => new Promise((resolve) => {
  let out = '';
  const finish = () => resolve(out);
  Jupyter.notebook.kernel.execute(code + "\\nprint('__done__')", {
    iopub: { output: (msg) => {
      if (msg.header.msg_type === 'stream') out += msg.content.text;
      if (msg.header.msg_type === 'error') { out += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue; finish(); }
      if (out.includes('__done__')) finish();
    } },
  }, { silent: false, store_history: false });
})"""


def kernel_json(page, code: str):
    """Run ``code`` in the notebook's kernel (no new cell) and parse the JSON it prints."""
    out = page.evaluate(KERNEL_EXECUTE, code)
    assert not out.startswith("ERROR"), out
    return json.loads(out.replace("__done__", "").strip())


def settled(page, label, code: str, timeout: float = 60.0):
    """``kernel_json(code)`` once it gives the same answer twice in a row, 0.4 s apart (the stroke's
    last sync is in), and agrees with the hole count shown under the canvas."""
    deadline, previous = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        value = kernel_json(page, code)
        if value == previous and hole_count(label.text_content()) == value[0]:
            return value
        previous = value
        time.sleep(0.4)
    pytest.fail(f"the kernel's hole did not settle within {timeout:.0f} s: {previous}")


def start_classic(venv, tmp: Path, port: int, token: str, log: Path) -> subprocess.Popen:
    env = venv.env(JUPYTER_CONFIG_DIR=tmp / "config", JUPYTER_DATA_DIR=tmp / "data", JUPYTER_RUNTIME_DIR=tmp / "runtime",
                   INPAINTLIB_COLAB_LOG=log, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    cmd = [venv.python, "-m", "notebook", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
           "--port-retries=0", f"--NotebookApp.token={token}", f"--NotebookApp.notebook_dir={lane.CONTENT}"]
    out = open(tmp / "notebook.log", "wb")
    return subprocess.Popen([str(c) for c in cmd], cwd=lane.CONTENT, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.fixture(scope="module")
def venv():
    try:
        return lane.build_venv()
    except lane.LaneUnavailable as err:
        pytest.skip(f"the Colab lane cannot run here: {err}")


def test_draw_a_hole_and_run_in_colabs_classic_notebook(venv, tmp_path):
    """One retry, in a fresh server and browser: on a loaded 2-core machine one fresh-clone run in
    four failed at the browser's timing (a picture read before its update arrived), never at what the
    test checks. A second failure fails the test, and the first one's message is kept."""
    try:
        drive_classic_notebook(venv, tmp_path / "first")
    except Exception as first:  # an assertion or a browser timeout
        print(f"first attempt failed, retrying once: {first}")
        drive_classic_notebook(venv, tmp_path / "second")


def drive_classic_notebook(venv, tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    log = tmp_path / "colab.log"
    with lane.locked(lane.CACHE / ".content.lock"):
        try:
            lane.prepare_content(venv)
        except lane.LaneUnavailable as err:
            pytest.skip(f"the Colab lane cannot run here: {err}")
        port, token = free_port(), os.urandom(16).hex()
        base = f"http://127.0.0.1:{port}"
        proc = start_classic(venv, tmp_path, port, token, log)
        try:
            wait_for_server(proc, base, token, tmp_path / "notebook.log")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    page = browser.new_page(viewport={"width": 1500, "height": 1100})
                    page.set_default_timeout(TIMEOUT_MS)
                    page.goto(f"{base}/notebooks/{NOTEBOOK}?token={token}")
                    page.wait_for_function(KERNEL_READY, timeout=TIMEOUT_MS, polling=500)
                    assert kernel_json(page, "import json, sys; print(json.dumps('google.colab' in sys.modules))")

                    # Run all, as a learner would on Colab
                    page.evaluate("() => Jupyter.notebook.execute_all_cells()")
                    page.wait_for_function(ALL_CELLS_RUN, timeout=3 * TIMEOUT_MS, polling=500)
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
                    assert image_bytes(w.locator("img.inpaint-live"))[:8] == b"\x89PNG\r\n\x1a\n"

                    # clear the hole, paint a stroke across the middle of the digit with the mouse
                    w.locator("button.inpaint-clear").click()
                    wait_text(page, label, "text.includes('hole: 0 of 784')")
                    stroke(page, canvas, [(0.25, 0.5), (0.5, 0.45), (0.75, 0.5)])
                    wait_text(page, label, "/hole: [1-9][0-9]* of 784/.test(text)")
                    hole = settled(page, label, "import json; h = widget.hole[0, 0]; n = h.nonzero(); "
                                                "print(json.dumps([int(h.sum()), n[:, 0].tolist(), n[:, 1].tolist()]))")
                    painted = hole[0]
                    assert 20 <= painted <= 200, hole
                    assert 10 <= min(hole[1]) and max(hole[1]) <= 16, f"hole rows {sorted(set(hole[1]))}"
                    before = image_bytes(result)

                    # press Run
                    kernel_json(page, "widget.steps.value = 10; widget.every.value = 2; print('null')")
                    done = press_run(page, w, kernel_json)
                    after, deadline = image_bytes(result), time.monotonic() + 60  # the picture's update may trail the status
                    while after == before and time.monotonic() < deadline:
                        time.sleep(0.25)
                        after = image_bytes(result)
                    assert after != before, "the result image did not change"
                    check_result_panel(after)
                    run = kernel_json(page, "import json; print(json.dumps([widget.last_run.hole_pixels, "
                                            "int(widget._run_hole.sum()), len(widget.frames), widget.dc_repeats.value]))")
                    # the run filled the hole the kernel held when Run was pressed: the painted stroke (under
                    # load the canvas's last partial sync of the stroke can arrive after the count settled)
                    assert f"filled {run[1]} hole pixels" in done and run[0] == run[1], (done, run)
                    assert painted <= run[1] <= 200, (painted, run)
                    assert run[2] == -(-10 * run[3] // 2), run  # a frame every 2 of 10 x dc_repeats
                    w.screenshot(path=str(tmp_path / "widget_colab_classic.png"))

                    # upload an image into the free-form widget: the file travels as a data URL string
                    # (ipywidgets 7.7.1's FileUpload would send binary buffers, which Colab drops)
                    ff = page.locator(".inpaint-freeform").first
                    ff.scroll_into_view_if_needed()
                    upload_image(page, ff, tmp_path, kernel_json)
                finally:
                    browser.close()
        finally:
            stop_lab(proc, base, token)
    events = lane.read_log(log)
    assert any(e["event"] == "enable_custom_widget_manager" for e in events), events
    dropped = [e for e in events if e["event"] == "dropped_buffers"]
    assert not dropped, f"widgets sent binary buffers, which Colab drops: {dropped[:3]}"
    print(f"classic notebook: run all in {ran_at - started:.0f} s, whole test {time.monotonic() - started:.0f} s; "
          f"screenshot {tmp_path / 'widget_colab_classic.png'}")
    if os.environ.get("INPAINTLIB_UPDATE_SCREENSHOTS") == "1":  # docs/widget.md's Colab-stack picture
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "widget_colab_classic.png", SCREENSHOTS / "widget_colab_classic.png")
