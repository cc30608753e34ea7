"""The widget's browser side: ipywidgets and anywidget, Colab's widget manager, and the three
anywidget components (``MaskCanvas``: the canvas of ``canvas.js``; ``PngView``: a picture sent as a data
URL; ``ImageUpload``: a file button that sends the file as a data URL string).
"""
from __future__ import annotations

import base64
import sys
from pathlib import Path

import torch

from ..utils import in_colab
from .core import PNG_PREFIX, TOOLS, png_data_url, tile

HERE = Path(__file__).parent


# ----------------------------------------------------------------------------------------------
# the widgets: libraries, Colab, the canvas component


def enable_colab_widgets() -> bool:
    """On Colab, turn on the custom widget manager that third-party widgets (the canvas) need, so the
    learner does not have to. Elsewhere does nothing. Returns whether it did something."""
    if not in_colab():
        return False
    from google.colab import output  # type: ignore[import-not-found]

    output.enable_custom_widget_manager()
    return True


def widget_install_command(missing: list) -> list:
    """The pip command that installs what of ipywidgets and anywidget is ``missing``, and only that:
    an ipywidgets already there (Colab's 7.7.1, which its widget manager is built for) is held at its
    version, so that installing anywidget can never upgrade or replace it."""
    from importlib.metadata import PackageNotFoundError, version

    cmd = [sys.executable, "-m", "pip", "install", "-q"]
    if "anywidget" in missing:
        cmd.append("anywidget>=0.9")
    if "ipywidgets" in missing:
        cmd.append("ipywidgets>=7.7")
    else:
        try:
            cmd.append(f"ipywidgets=={version('ipywidgets')}")
        except PackageNotFoundError:  # importable but not installed by pip: leave it alone
            pass
    return cmd


def widget_libraries():
    """ipywidgets and anywidget; on Colab, whichever is missing is installed (never replacing Colab's
    ipywidgets, see ``widget_install_command``). Colab ships both today (ipywidgets 7.7.1, anywidget 0.9)."""
    import importlib
    import importlib.util

    missing = [name for name in ("ipywidgets", "anywidget") if importlib.util.find_spec(name) is None]
    if missing and in_colab():
        import subprocess

        subprocess.run(widget_install_command(missing), check=True)
        importlib.invalidate_caches()
        missing = [name for name in missing if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"the inpainting widget needs {' and '.join(missing)}: "
                          f"pip install 'ipywidgets>=7.7' 'anywidget>=0.9'")
    import anywidget
    import ipywidgets

    return ipywidgets, anywidget


def _on_view_message(widget, content, buffers) -> None:
    """What a component's view sends the kernel: ``{"type": "sync"}`` when it renders. The kernel
    answers with the widget's whole state (``send_state()``, strings only: no binary buffers), so
    that a view rendered after the kernel changed the widget (a cell that drives it from code right
    after displaying it) shows the latest state even where the front end lost those updates."""
    if isinstance(content, dict) and content.get("type") == "sync":
        widget.send_state()


def _answers_sync(cls):
    """Register ``_on_view_message`` on every instance of the anywidget class ``cls``."""
    init = cls.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.on_msg(_on_view_message)

    cls.__init__ = __init__
    return cls


_CANVAS = None


def canvas_class():
    """The ``MaskCanvas`` anywidget class (built on first use, so the core imports without anywidget).

    Traits (all synced): width, height (image pixels), scale (canvas px per image pixel), brush
    (brush width in image pixels), tool ("hole", "erase", "ink", "ink_erase"), image_png (the image
    shown under the hole, a PNG data URL at image resolution), hole_png and ink_png (the layers,
    PNG data URLs at canvas resolution, "" = empty), hole_opacity, sync_ms (how often a stroke in
    progress is sent), strokes (how many times the browser has sent a layer)."""
    global _CANVAS
    if _CANVAS is not None:
        return _CANVAS
    _, anywidget = widget_libraries()
    import traitlets

    class MaskCanvas(anywidget.AnyWidget):
        _esm = (HERE / "canvas.js").read_text(encoding="utf-8")
        _css = (HERE / "canvas.css").read_text(encoding="utf-8")
        width = traitlets.Int(28).tag(sync=True)
        height = traitlets.Int(28).tag(sync=True)
        scale = traitlets.Int(10).tag(sync=True)
        brush = traitlets.Float(3.0).tag(sync=True)
        tool = traitlets.Unicode("hole").tag(sync=True)
        image_png = traitlets.Unicode("").tag(sync=True)
        hole_png = traitlets.Unicode("").tag(sync=True)
        ink_png = traitlets.Unicode("").tag(sync=True)
        hole_opacity = traitlets.Float(0.55).tag(sync=True)
        sync_ms = traitlets.Int(250).tag(sync=True)
        strokes = traitlets.Int(0).tag(sync=True)

        @traitlets.validate("tool")
        def _valid_tool(self, proposal):
            if proposal["value"] not in TOOLS:
                raise traitlets.TraitError(f"tool must be one of {TOOLS}, got {proposal['value']!r}")
            return proposal["value"]

    MaskCanvas.__module__ = __name__
    _CANVAS = _answers_sync(MaskCanvas)
    return MaskCanvas


_VIEW = None
_VIEW_ESM = """
// one picture, shown at its own size: an <img> whose src is the PNG data URL in the `src` trait
function render({ model, el }) {
  model.send({ type: "sync" });  // the kernel re-sends the state: nothing sent before this view is lost
  const img = document.createElement("img");
  img.className = model.get("img_class");
  img.alt = model.get("alt");
  const show = () => { img.src = model.get("src"); };
  show();
  el.appendChild(img);
  model.on("change:src", show);
  return () => model.off("change:src", show);
}
export default { render };
"""


def view_class():
    """The ``PngView`` anywidget class: a picture sent to the browser as a string (a PNG data URL in
    the synced ``src`` trait), never as a binary buffer, which Colab's widget manager drops.

    ``value`` (PNG bytes, kernel side only, not synced) is what Python reads and writes, as with
    ``ipywidgets.Image``; setting it updates ``src``. ``img_class`` is the CSS class of the <img>."""
    global _VIEW
    if _VIEW is not None:
        return _VIEW
    _, anywidget = widget_libraries()
    import traitlets

    class PngView(anywidget.AnyWidget):
        _esm = _VIEW_ESM
        src = traitlets.Unicode("").tag(sync=True)
        img_class = traitlets.Unicode("").tag(sync=True)
        alt = traitlets.Unicode("").tag(sync=True)
        value = traitlets.Bytes(b"")  # not synced: the browser gets src

        def __init__(self, value: bytes = b"", **kwargs):
            super().__init__(value=value, src=bytes_data_url(value), **kwargs)

        @traitlets.observe("value")
        def _value_to_src(self, change):
            self.src = bytes_data_url(change["new"])

    PngView.__module__ = __name__
    _VIEW = _answers_sync(PngView)
    return PngView


_UPLOAD = None
_UPLOAD_ESM = """
// a file button whose file reaches the kernel as a string (Colab drops binary buffers, and
// ipywidgets 7's FileUpload sends the file as one): FileReader.readAsDataURL -> the `data_url`
// trait, a base64 data URL; the kernel decodes it (core.py: image_to_tensor) and empties it
const MAX_BYTES = 2 << 20, MAX_SIDE = 1024;  // larger files are scaled down first (JPEG, <= 1024 px)

function send(model, name, url) {
  model.set("name", name);
  model.set("data_url", url);
  model.save_changes();
}

function shrink(url, done) {
  const img = new Image();
  img.onload = () => {
    const k = Math.min(1, MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
    const c = document.createElement("canvas");
    c.width = Math.max(1, Math.round(img.naturalWidth * k));
    c.height = Math.max(1, Math.round(img.naturalHeight * k));
    c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
    done(c.toDataURL("image/jpeg", 0.92));
  };
  img.onerror = () => done(url);  // not an image the browser reads: the kernel says so
  img.src = url;
}

function render({ model, el }) {
  model.send({ type: "sync" });  // the kernel re-sends the state: nothing sent before this view is lost
  const label = document.createElement("label");
  label.className = "inpaint-upload jupyter-button widget-button";
  const input = document.createElement("input");
  input.type = "file";
  input.className = "inpaint-upload-input";
  input.style.display = "none";
  const text = document.createElement("span");
  const show = () => {
    text.textContent = model.get("description");
    input.accept = model.get("accept");
  };
  show();
  label.append(input, text);
  el.appendChild(label);
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      input.value = "";  // choosing the same file again is a new upload
      if (file.size <= MAX_BYTES) send(model, file.name, reader.result);
      else shrink(reader.result, (url) => send(model, file.name, url));
    };
    reader.readAsDataURL(file);
  });
  model.on("change:description", show);
  model.on("change:accept", show);
  return () => {
    model.off("change:description", show);
    model.off("change:accept", show);
  };
}
export default { render };
"""
_UPLOAD_CSS = """
.inpaint-upload { display: inline-flex; align-items: center; justify-content: center; cursor: pointer;
  padding: 0 10px; user-select: none; box-sizing: border-box; }
"""


def upload_class():
    """The ``ImageUpload`` anywidget class: a file button that sends the chosen file to the kernel as
    a string, never as binary buffers (which Colab's widget manager drops; ipywidgets 7.7.1's
    ``FileUpload`` sends the file as one).

    Traits (synced): accept (the file input's filter), description (the button's text), name (the
    last file's name), data_url (the last file as a base64 data URL, files over 2 MB scaled down to
    1024 px JPEG first; the widget empties it once read)."""
    global _UPLOAD
    if _UPLOAD is not None:
        return _UPLOAD
    _, anywidget = widget_libraries()
    import traitlets

    class ImageUpload(anywidget.AnyWidget):
        _esm = _UPLOAD_ESM
        _css = _UPLOAD_CSS
        accept = traitlets.Unicode("image/*").tag(sync=True)
        description = traitlets.Unicode("upload").tag(sync=True)
        name = traitlets.Unicode("").tag(sync=True)
        data_url = traitlets.Unicode("").tag(sync=True)

    ImageUpload.__module__ = __name__
    _UPLOAD = _answers_sync(ImageUpload)
    return ImageUpload


def bytes_data_url(png: bytes) -> str:
    return PNG_PREFIX + base64.b64encode(png).decode("ascii") if png else ""


def image_data_url(image01: torch.Tensor) -> str:
    """(1, C, H, W) in [0, 1] -> PNG data URL at image resolution (the canvas scales it up)."""
    return png_data_url(tile(image01, 1))


def default_steps(model) -> int:
    return min(50, model.config.T)


