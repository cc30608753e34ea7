"""What the two browser tests share (tests/test_browser.py, JupyterLab, and tests/test_browser_classic.py,
Colab's classic notebook): where Chromium is, the server's start and stop, the mouse, the widget's texts and
images, the upload and the result panel's check. A helper module, not a test module: pytest collects nothing here."""
from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("INPAINTLIB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 180_000
IMAGE_BYTES = """async (img) => {
  const buffer = await (await fetch(img.src)).arrayBuffer();
  return Array.from(new Uint8Array(buffer));
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(proc: subprocess.Popen, base: str, token: str, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def stop_lab(proc: subprocess.Popen, base: str, token: str) -> None:
    """Ask the server to shut down (it stops its kernels), then make sure its process group is gone."""
    try:
        request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST", data=b"")
        urllib.request.urlopen(request, timeout=10).close()
        proc.wait(timeout=20)
    except Exception:
        pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def image_bytes(locator) -> bytes:
    return bytes(locator.element_handle().evaluate(IMAGE_BYTES))


def hole_count(label_text: str) -> int:
    # "hole: 57 of 784 pixels (7%)"
    return int(label_text.split("hole:")[1].split("of")[0])


def stroke(page, canvas, points, steps: int = 12) -> None:
    """Press the mouse at the first point (fractions of the canvas), move through the rest, release."""
    box = canvas.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


def wait_text(page, locator, predicate_js: str, timeout: int = TIMEOUT_MS) -> str:
    """Wait until ``predicate_js`` (a JS expression on ``text``) holds for the locator's text."""
    handle = locator.element_handle(timeout=timeout)
    page.wait_for_function(f"(el) => {{ const text = el.textContent || ''; return {predicate_js}; }}", arg=handle,
                           timeout=timeout)
    return handle.text_content()


def press_run(page, widget, kernel_json, name: str = "widget", timeout: int = TIMEOUT_MS) -> str:
    """Press the widget's Run button and return the status line of that run when it is done. The
    status still reads "done ..." from the run before, so the kernel first sets it to a marker and the
    browser is seen showing it: a "done" read after the click is this run's, never the last one's."""
    status = widget.locator(".inpaint-status")
    kernel_json(page, f"{name}.status.value = 'waiting for Run'; print('null')")
    wait_text(page, status, "text === 'waiting for Run'", timeout=timeout)
    widget.locator("button.inpaint-run").click()
    return wait_text(page, status, "text.startsWith('done')", timeout=timeout)


def upload_image(page, ff, tmp: Path, kernel_json) -> None:
    """Choose an image file with the free-form widget's upload button (Playwright fills its file
    input; the browser reads the file as a data URL and sends it as a string) and check that the
    kernel's widget (``ff`` in notebook 06) loaded it: red left half, blue right half after the
    centre crop of a 120 x 90 picture."""
    import numpy as np
    from PIL import Image

    rgb = np.zeros((90, 120, 3), dtype=np.uint8)
    rgb[:, :60], rgb[:, 60:] = (230, 40, 40), (40, 40, 230)
    path = tmp / "my_photo.png"
    Image.fromarray(rgb).save(path)
    ff.locator("input.inpaint-upload-input").set_input_files(str(path))
    wait_text(page, ff.locator(".inpaint-status"), "text.startsWith('loaded my_photo.png')", timeout=60_000)
    left, right, source, pending = kernel_json(page, "import json; x = ff.image[0]; print(json.dumps([x[:, 8, 4].tolist(), "
                                                     "x[:, 8, -4].tolist(), ff.source.value, ff.upload.data_url]))")
    assert left[0] > 0.8 > 0.3 > left[2] and right[2] > 0.8 > 0.3 > right[0], (left, right)
    assert source == "upload" and pending == "", (source, pending)


def check_result_panel(png: bytes) -> None:
    """The result panel's middle tile (the result) is an image, not the grey "press Run" placeholder."""
    import numpy as np
    from PIL import Image

    panel = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    h, w = panel.shape
    tile = (w - 4 * 4) // 3
    middle = panel[h - 4 - tile:h - 4, 4 + tile + 4:4 + 2 * tile + 4]
    assert middle.std() > 0.05 * 255, "the result tile is flat (still the placeholder?)"
