"""A stand-in for Colab's ``google.colab`` package, for the Colab lane (tests/colab/lane.py).

Colab's kernel imports ``google.colab`` before any cell runs, which is how notebooks (and
``inpaintlib.notebook.in_colab``) tell that they are on Colab. The lane puts this package in its
virtual environment and imports it from an IPython startup file, so ``"google.colab" in sys.modules``
holds in the kernel from the first cell on.

Like Colab's widget manager, it drops the binary buffers of every widget message the kernel sends
(Colab's front end never delivers them): anything that relied on them would break here as it does
there. Every buffer dropped, and every call of ``output.enable_custom_widget_manager()``, is written
as a JSON line to the file named by ``INPAINTLIB_COLAB_LOG`` (if set), which the lane reads.
"""
import json
import os
import sys

__all__ = ["output"]
IS_STANDIN = True


def _log(event, **fields):
    path = os.environ.get("INPAINTLIB_COLAB_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(dict(event=event, pid=os.getpid(), **fields)) + "\n")


def _drop_widget_buffers():
    """Make the kernel's comms send every message without its binary buffers (logging each drop)."""
    try:
        from ipykernel.comm import Comm
    except Exception as err:  # not in a kernel
        _log("no_comm_patch", error=f"{type(err).__name__}: {err}")
        return
    publish = Comm._publish_msg
    if getattr(publish, "_colab_standin", False):
        return

    def _publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        if buffers:
            paths = (data or {}).get("buffer_paths") or (data or {}).get("state", {}).get("buffer_paths")
            _log("dropped_buffers", msg_type=msg_type, n=len(buffers), sizes=[len(memoryview(b)) for b in buffers],
                 buffer_paths=paths)
            buffers = None
        return publish(self, msg_type, data=data, metadata=metadata, buffers=buffers, **keys)

    _publish_msg._colab_standin = True
    Comm._publish_msg = _publish_msg


from . import output  # noqa: E402

_drop_widget_buffers()
_log("import", python=sys.version.split()[0], executable=sys.executable)
