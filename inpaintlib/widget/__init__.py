"""Interactive inpainting in a notebook: paint a hole with the mouse, press Run, watch DDIM fill it.

Three files. ``core.py``, which needs neither a browser nor ipywidgets:
    png_data_url, decode_png_data_url     images <-> the PNG data URLs the canvas sends and receives
    CanvasMask                            one painted layer at canvas resolution (image size x scale):
                                          brush strokes, erase, clear, the centre box, and
                                          ``to_hole()``: painted mask -> hole tensor (1 = fill)
    run_inpainting                        ``inpaint`` with a callback that keeps a frame every k proposals
    live_panel, result_panel, write_gif   the pictures (PIL): the live view, the final view, the GIF
    compare_fills, comparison_panel       the free-form fills of notebook 07 side by side, PSNR under each
``components.py`` and ``ui.py``: the widgets, built on ipywidgets (7.7+ and 8) and anywidget components:
    MaskCanvas (``canvas_class()``)       the HTML canvas (canvas.js); syncs each layer as a PNG
    PngView (``view_class()``)            a picture (the live and the result view), sent as a data URL
    InpaintWidget                         MNIST: a test digit by index, or a digit drawn by hand
    ImageUpload (``upload_class()``)      a file button that sends the file as a data URL string
    FreeformInpaintWidget                 the free-form model: a generated pattern, or an uploaded image

How the mask travels. The browser paints on a canvas ``scale`` times the image (280 x 280 px for a
28 x 28 digit). After every stroke it sends that layer as a PNG data URL (the ``hole_png`` trait;
red where painted, transparent elsewhere). Python decodes its alpha channel, averages each
scale x scale block (the fraction of an image pixel that is painted) and calls a pixel a hole pixel
when at least half of it is painted. Python sends the layer back the same way after clear, the
centre box or ``set_hole``, and the canvas redraws.

How the pictures are made. ``inpaint``'s callback hands over x_t and the x0 estimate in model space
after every proposal (``samplers.ddim_inpaint``); every ``every``-th one is kept as a frame and
converted with ``to_unit``, the one model -> [0, 1] conversion. The live view shows
[input | x_t | x0 estimate]; the run ends on [input | result | ground truth].

What Colab needs (ipywidgets 7.7.1 in its custom widget manager). That manager drops binary
buffers, so nothing reaches the browser as bytes: every picture travels as a PNG data URL in a
string trait (the canvas's image_png/hole_png/ink_png, a PngView's src). And a message sent to a
widget before its view exists can be lost, so every widget is built with its state as constructor
arguments (image, hole, views, labels, CSS classes): a widget's first message, the one that creates
it in the browser, already carries everything it shows. The anywidget components (the canvas, the
views, the upload button) also ask the kernel for their whole state when their view renders
(``{"type": "sync"}``, answered by ``send_state()``), so that a cell that drives the widget right
after displaying it (``set_hole``, ``run``) is seen even if its updates came before the view. An
uploaded file travels the same way: ``ImageUpload`` reads it in the browser as a data URL string.
"""
from .components import canvas_class, enable_colab_widgets, upload_class, view_class, widget_libraries
from .core import (HOLE_COLOUR, INK_COLOUR, PNG_PREFIX, TOOLS, CanvasMask, RunResult, decode_data_url,
                   compare_fills, comparison_panel, decode_png_data_url, generated_patterns, hole_from_painted,
                   image_to_tensor, live_panel, load_widget_model, png_bytes, png_data_url, result_panel, run_inpainting,
                   tile, uploaded_files, write_gif)
from .ui import FreeformInpaintWidget, InpaintWidget
