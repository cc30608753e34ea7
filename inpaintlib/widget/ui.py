"""The two widgets a learner sees: ``InpaintWidget`` (MNIST: a test digit, or one drawn by hand) and
``FreeformInpaintWidget`` (the free-form model: a generated pattern, or an uploaded image), on the
pure core (``core.py``) and the browser components (``components.py``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..samplers import SAMPLERS, sampler_options
from ..checks import check_choice, check_number
from .components import canvas_class, default_steps, enable_colab_widgets, image_data_url, upload_class, view_class, widget_libraries
from .core import (HOLE_COLOUR, INK_COLOUR, CanvasMask, RunResult, check_int, check_sampler, compare_fills,
                   comparison_panel, generated_patterns, guidance_start, image_to_tensor, live_panel,
                   load_widget_model, picture_png, result_panel, run_inpainting, sampler_takes, write_gif)


# ----------------------------------------------------------------------------------------------
# the widgets


class _InpaintWidgetBase:
    """What both widgets share: the canvas and its hole layer, the sampler controls, Run, the live
    and final views, the GIF. Subclasses add the image sources.

    Built with its state: ``image01`` (and ``truth01``) is the image it starts on, the hole starts as
    the centre box, and each widget is constructed with its values (see the module docstring).

    The ``sampler`` dropdown offers ``sampler_names``; the controls its sampler does not take are
    disabled (and not passed to it). ``eta`` None: the sampler's own default (1 for the particle samplers,
    whose weights need eta > 0; else 0);
    ``guidance`` None: ``guidance_start(sampler)``. Choosing "smc", "guidance" or "pigdm" in the
    dropdown moves eta or guidance off 0 the same way."""

    kind = "base"
    known, init_from_y = "noised", True
    sampler_names = tuple(SAMPLERS)

    def __init__(self, model, size: int, scale: int, view_scale: int, image01: torch.Tensor,
                 truth01: torch.Tensor | None = None, background: bool = True, steps=None,
                 eta: float | None = None, dc_repeats: int = 1, seed: int = 0, every: int = 5, brush: float = 3.0,
                 centre_box=None, gif_path="outputs/06_interactive/widget.gif", guidance: float | None = None,
                 sampler: str = "replace", particles: int = 4):
        self.widgets, _ = widget_libraries()
        enable_colab_widgets()
        W = self.widgets
        self.model = model
        self.size = check_int(size, "size", 2)
        self.scale = check_int(scale, "scale", 1)
        self.view_scale = check_int(view_scale, "view_scale", 1)
        steps = default_steps(model) if steps is None else check_int(steps, "steps", 1, model.config.T)
        sampler = check_sampler(sampler, self.sampler_names)
        takes = sampler_takes(sampler)
        eta = float(sampler_options(sampler).get("eta", 0.0)) if eta is None else eta
        guidance = check_number(guidance_start(sampler) if guidance is None else guidance, "guidance", 0.0, float("inf"))
        self.centre_box_size = max(1, round(self.size * 12 / 28)) if centre_box is None else \
            check_int(centre_box, "centre_box", 1, self.size)
        self.hole_layer = CanvasMask(self.size, self.scale, HOLE_COLOUR)
        self.hole_layer.centre_box(self.centre_box_size)  # every widget starts on the centre box
        self.image = image01.detach().float().cpu().clamp(0, 1)
        self.truth: torch.Tensor | None = None if truth01 is None else truth01.detach().float().cpu().clamp(0, 1)
        self.last_run: RunResult | None = None
        self._run_hole: torch.Tensor | None = None  # the hole of the last run
        self._busy = False

        # every widget gets its state in its constructor, CSS classes included (not by trait changes
        # afterwards, which Colab may never deliver: they are sent before the widget has a view)
        def control(cls, css_class, **kwargs):
            return cls(_dom_classes=(css_class,), **kwargs)

        tool_options, tool = self._tool_choice()
        self.canvas = canvas_class()(width=self.size, height=self.size, scale=self.scale, brush=float(brush),
                                     tool=tool, image_png=image_data_url(self.image) if background else "",
                                     hole_png=self.hole_layer.to_png(), ink_png=self._ink_png())
        self.canvas.observe(self._on_canvas_hole, names="hole_png")

        wide = dict(style={"description_width": "90px"}, layout=W.Layout(width="330px"))
        self.tool = W.ToggleButtons(options=tool_options, value=tool, description="brush",
                                    style={"button_width": "90px"})
        self.brush = W.FloatSlider(value=float(brush), min=0.5, max=max(8.0, self.size / 4), step=0.5,
                                   description="brush size", **wide)
        W.link((self.tool, "value"), (self.canvas, "tool"))
        W.link((self.brush, "value"), (self.canvas, "brush"))
        self.clear_button = control(W.Button, "inpaint-clear", description="clear hole", icon="eraser")
        self.box_button = control(W.Button, "inpaint-centre-box", description="centre box", icon="square",
                                  tooltip=f"the centred {self.centre_box_size}x{self.centre_box_size} square")
        self.clear_button.on_click(lambda _: self.clear_hole())
        self.box_button.on_click(lambda _: self.centre_box())
        self.hole_label = control(W.Label, "inpaint-hole-count", value=self._hole_text())

        self.sampler = W.Dropdown(options=list(self.sampler_names), value=sampler, description="sampler", **wide)
        self.particles = W.IntSlider(value=check_int(particles, "particles", 1), min=1, max=max(16, particles),
                                     description="particles", disabled="particles" not in takes, **wide)
        self.sampler.observe(self._on_sampler, names="value")
        self.steps = W.IntSlider(value=steps, min=1, max=model.config.T, description="DDIM steps", **wide)
        self.eta = W.FloatSlider(value=float(eta), min=0.0, max=1.0, step=0.05, description="eta",
                                 disabled="eta" not in takes, **wide)
        self.dc_repeats = W.IntSlider(value=check_int(dc_repeats, "dc_repeats", 1), min=1, max=max(5, dc_repeats),
                                      description="dc_repeats", disabled="dc_repeats" not in takes, **wide)
        self.guidance = W.FloatSlider(value=guidance, min=0.0, max=max(100.0, guidance), step=5.0,
                                      description="guidance", disabled="guidance" not in takes, **wide)
        self.seed = W.IntText(value=check_int(seed, "seed", 0), description="seed", **wide)
        self.every = W.IntSlider(value=check_int(every, "every", 1), min=1, max=max(25, every),
                                 description="view every", **wide)
        self.run_button = control(W.Button, "inpaint-run", description="Run", button_style="success", icon="play")
        self.run_button.on_click(self._on_run_click)
        self.gif_path = W.Text(value=str(gif_path), description="GIF file", **wide)
        self.gif_button = control(W.Button, "inpaint-save-gif", description="save GIF", icon="film")
        self.gif_button.on_click(self._on_gif_click)
        self.status = control(W.Label, "inpaint-status", value=self._start_status())
        # the pictures: PNG data URLs in a string trait (PngView), never binary buffers (Colab drops them);
        # shown at their own size, not stretched (and blurred)
        result_png, live_png = self._view_pngs()
        View = view_class()
        self.live_view = control(View, "inpaint-live-view", value=live_png, img_class="inpaint-live",
                                 alt="live view: x_t and the x0 estimate", layout=W.Layout(align_self="flex-start"))
        self.result_view = control(View, "inpaint-result-view", value=result_png, img_class="inpaint-result",
                                   alt="result", layout=W.Layout(align_self="flex-start"))

        left = W.VBox(self._source_controls() + [self.canvas, self.tool, self.brush,
                                                 W.HBox([self.clear_button, self.box_button] + self._extra_buttons()),
                                                 self.hole_label])
        choice = [self.sampler, self.particles] if len(self.sampler_names) > 1 else []  # one sampler: no dropdown
        right = W.VBox(choice + [self.steps, self.eta, self.dc_repeats, self.guidance, self.seed, self.every,
                        W.HBox([self.run_button, self.gif_button]), self.gif_path, self.status,
                        W.HTML("<b>live view</b>: x_t and the x0 estimate while DDIM runs"), self.live_view,
                        W.HTML("<b>result</b>"), self.result_view] + self._extra_views())
        self.ui = W.HBox([left, right], _dom_classes=("inpaint-widget", f"inpaint-{self.kind}"))

    # -- hooks for the subclasses (called while the widgets are built)
    def _source_controls(self) -> list:
        return []

    def _extra_buttons(self) -> list:
        return []

    def _extra_views(self) -> list:
        return []

    def _tool_choice(self) -> tuple:
        """The brush's options and the one selected at the start."""
        return [("paint hole", "hole"), ("erase hole", "erase")], "hole"

    def _ink_png(self) -> str:
        return ""

    def _start_status(self) -> str:
        return "paint a hole on the image, then press Run"

    # -- display
    def _ipython_display_(self):
        from IPython.display import display

        display(self.ui)

    # -- the image
    def _show_image(self, image01: torch.Tensor, truth01: torch.Tensor | None, background: bool = True) -> None:
        """Make ``image01`` the image to inpaint (and ``truth01`` the ground truth shown at the end)."""
        self.image = image01.detach().float().cpu().clamp(0, 1)
        self.truth = None if truth01 is None else truth01.detach().float().cpu().clamp(0, 1)
        if background:
            self.canvas.image_png = image_data_url(self.image)
        self.last_run = None
        self._refresh_views()

    # -- the hole
    @property
    def hole(self) -> torch.Tensor:
        """The current hole (1, 1, H, W), 1 = fill, as the kernel holds it."""
        return self.hole_layer.to_hole()

    @property
    def hole_pixels(self) -> int:
        return int(self.hole.sum().item())

    def _send_hole(self) -> None:
        self.canvas.hole_png = self.hole_layer.to_png()
        self._hole_changed()

    def _on_canvas_hole(self, change) -> None:
        try:
            self.hole_layer.load_png(change["new"])
        except ValueError as err:  # a canvas of another size (a stale view): keep the last good hole
            self.status.value = f"ignored a canvas update: {err}"
            return
        self._hole_changed()

    def _hole_text(self) -> str:
        n, total = self.hole_pixels, self.size * self.size
        return f"hole: {n} of {total} pixels ({n / total:.0%})"

    def _hole_changed(self) -> None:
        self.hole_label.value = self._hole_text()
        self._refresh_views()

    def set_hole(self, hole) -> "_InpaintWidgetBase":
        """Set the hole from code: a binary tensor or array (H, W) or (1, 1, H, W), 1 = fill. The
        canvas shows it."""
        self.hole_layer.set_hole(hole)
        self._send_hole()
        return self

    def clear_hole(self) -> "_InpaintWidgetBase":
        self.hole_layer.clear()
        self._send_hole()
        return self

    def centre_box(self, box: int | None = None) -> "_InpaintWidgetBase":
        """Replace the hole by the centred ``box`` x ``box`` square (the design's hole: 12 on MNIST)."""
        self.hole_layer.centre_box(self.centre_box_size if box is None else box)
        self._send_hole()
        return self

    def paint(self, points, brush: float | None = None, erase: bool = False) -> "_InpaintWidgetBase":
        """Paint a stroke from code, as the mouse would: ``points`` = [(x, y), ...] in image pixels."""
        self.hole_layer.stroke(points, self.brush.value if brush is None else brush, erase=erase)
        self._send_hole()
        return self

    # -- running
    def _view_pngs(self) -> tuple:
        """(the result view's PNG, the live view's PNG or None to leave it as it is)."""
        s = self.view_scale
        hole = self.hole
        # the last result, while it belongs to the hole on the canvas; after a new stroke: "press Run"
        current = self.last_run is not None and torch.equal(hole, self._run_hole)
        result = self.last_run.result if current else None
        result_png = picture_png(result_panel(self.image, hole, result, self.truth, s))
        if current:
            return result_png, None
        repeats = self.dc_repeats.value if "dc_repeats" in sampler_takes(self.sampler.value) else 1
        blank = {"x": torch.zeros_like(self.image), "x0_pred": torch.zeros_like(self.image), "t": "-",
                 "step": 0, "total": self.steps.value * repeats}
        return result_png, picture_png(live_panel(blank, self.image, hole, s))

    def _refresh_views(self) -> None:
        result_png, live_png = self._view_pngs()
        self.result_view.value = result_png
        if live_png is not None:
            self.live_view.value = live_png

    def _on_frame(self, frame: dict) -> None:
        self.live_view.value = picture_png(live_panel(frame, self.image, self._live_hole, self.view_scale))
        self.status.value = f"running: proposal {frame['step']}/{frame['total']} (t = {frame['t']})"

    def _on_sampler(self, change) -> None:
        """The dropdown: enable the controls the new sampler takes, disable the others; "guidance"
        and "pigdm" need guidance > 0 and "smc" eta > 0, so a 0 there moves to ``guidance_start`` and to 1."""
        takes = sampler_takes(change["new"])
        if "guidance" in takes and self.guidance.value == 0:
            self.guidance.value = guidance_start(change["new"])
        own_eta = sampler_options(change["new"]).get("eta", 0.0)
        if own_eta > 0 and self.eta.value == 0:  # the particle samplers' weights need eta > 0
            self.eta.value = float(own_eta)
        for name in ("eta", "dc_repeats", "guidance", "particles"):
            getattr(self, name).disabled = name not in takes
        self._refresh_views()  # the live view's proposal count

    def run(self, steps: int | None = None, eta: float | None = None, dc_repeats: int | None = None,
            seed: int | None = None, every: int | None = None, guidance: float | None = None,
            sampler: str | None = None, particles: int | None = None) -> torch.Tensor:
        """Inpaint the current hole with the current controls (arguments override them and move
        the sliders; ``sampler`` first, so that the others win over its defaults). Updates the live
        view every ``every`` proposals, then the result view. Returns the result (1, C, H, W) in [0, 1]."""
        if sampler is not None:
            self.sampler.value = check_sampler(sampler, self.sampler_names)
        for name, value in (("steps", steps), ("eta", eta), ("dc_repeats", dc_repeats), ("seed", seed),
                            ("every", every), ("guidance", guidance), ("particles", particles)):
            if value is not None:
                getattr(self, name).value = value
        self._prepare_run()
        hole = self._live_hole = self.hole
        self._busy = True
        self.run_button.disabled = True
        self.status.value = "running..."
        self.result_view.value = picture_png(result_panel(self.image, hole, None, self.truth, self.view_scale, "running"))
        try:
            run = run_inpainting(self.model, self.image, hole, steps=self.steps.value, eta=self.eta.value,
                                 dc_repeats=self.dc_repeats.value, seed=self.seed.value, every=self.every.value,
                                 on_frame=self._on_frame, known=self.known, init_from_y=self.init_from_y,
                                 guidance=self.guidance.value, sampler=self.sampler.value,
                                 particles=self.particles.value)
        except Exception as err:
            self.status.value = f"error: {err}"
            raise
        finally:
            self._busy = False
            self.run_button.disabled = False
        self.last_run, self._run_hole = run, hole
        self._refresh_views()
        changed = (run.result - self.image).abs().sum().item() / max(1, run.hole_pixels * self.image.shape[1])
        backward = f" (+{run.backward} backward passes)" if run.backward else ""
        self.status.value = (f"done in {run.seconds:.1f} s, sampler {run.sampler}: filled {run.hole_pixels} hole "
                             f"pixels, NFE {run.nfe}{backward}, {len(run.frames)} frames "
                             f"(mean change in the hole {changed:.3f})")
        return run.result

    def _prepare_run(self) -> None:
        """Subclasses: make sure ``self.image`` is up to date before a run."""

    def _on_run_click(self, _button) -> None:
        if self._busy:
            return
        try:
            self.run()
        except Exception:  # run() showed it in the status line; a button's exception would vanish into a log
            pass

    @property
    def frames(self) -> list:
        return [] if self.last_run is None else self.last_run.frames

    @property
    def result(self) -> torch.Tensor | None:
        return None if self.last_run is None else self.last_run.result

    def save_gif(self, path=None, duration_ms: int = 120, hold_ms: int = 1500) -> Path:
        """Save the last run's reverse diffusion as a GIF (one frame per kept step, then the result)."""
        if self.last_run is None:
            raise ValueError("there is no run to save: paint a hole and press Run (or call run()) first")
        path = Path(self.gif_path.value if path is None else path)
        run = self.last_run
        return write_gif(path, run.frames, self.image, self._run_hole, run.result, self.truth,
                         scale=self.view_scale, duration_ms=duration_ms, hold_ms=hold_ms)

    def _on_gif_click(self, _button) -> None:
        try:
            self.status.value = f"saved {self.save_gif()}"
        except Exception as err:
            self.status.value = f"error: {err}"


class InpaintWidget(_InpaintWidgetBase):
    """Draw a hole on an MNIST digit with the mouse and watch the reverse diffusion fill it.

        w = InpaintWidget()                 # the best shipped MNIST model, at its recommended settings
        w                                   # shows it: paint, press Run
        w.set_hole(center_hole(28, 12)); w.run(); w.save_gif("outputs/fill.gif")   # from code
        InpaintWidget(load_model(pretrained("mnist")), dc_repeats=2, guidance=0)  # the design's model and sampler
        InpaintWidget(load_model("outputs/inpaint/last.pt"))                       # yours, from 03_training

    model       a loaded MNIST model, a checkpoint path, or None: ``pretrained(BEST)`` (``BEST`` =
                "mnist-mask", the best shipped MNIST model), whose ``recommended(BEST)`` settings
                (sampler, default "replace"; steps, dc_repeats, guidance) are then the controls' defaults
                wherever the caller passes none (with another ``sampler``: only its steps). Any other
                model starts on the sampler's own defaults (dc_repeats=1; guidance: ``guidance_start``)
    images      (N, 1, 28, 28) in [0, 1] to choose from by index (None: the first ``n_images``
                MNIST test digits, ``load_test_images``); ``labels`` optional
    source      "test" (a test digit by index) or "draw" (draw a digit by hand on an empty canvas)
    scale       canvas pixels per image pixel (10: a 280 x 280 canvas)
    sampler     one of ``samplers.SAMPLERS`` (the dropdown): "replace", "guidance", "ddnm", "pigdm",
                "diffpir", "smc", "mcgdiff" or "tds"; ``particles`` (1 to 16, default 4) is the particle samplers' K
    steps, eta, dc_repeats, seed, guidance   the sampler's controls (``inpaint``); every: live view every k proposals
    """

    kind = "mnist"

    def __init__(self, model=None, images: torch.Tensor | None = None, labels=None, index: int = 0,
                 source: str = "test", data_root="data", n_images: int = 100, scale: int = 10,
                 view_scale: int = 6, **options):
        if model is None:  # the best shipped model; its recommended sampler unless the caller chose
            from ..registry import BEST, pretrained, recommended

            model, settings = pretrained(BEST), recommended(BEST)
            best = settings.pop("sampler", "replace")
            if options.setdefault("sampler", best) != best:  # another sampler: only the number of steps
                settings = {"steps": settings["steps"]} if "steps" in settings else {}
            if "travel_rounds" in settings:  # the widget's one repeat control (samplers.repeat_option)
                settings["dc_repeats"] = settings.pop("travel_rounds")
            for key, value in settings.items():
                options.setdefault(key, value)
        model = load_widget_model(model, "mnist")
        if images is None:
            from ..mnist.data import load_test_images

            images, labels = load_test_images(data_root, n_images)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"images must be a tensor (N, 1, H, W) in [0, 1], got "
                             f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
        S = model.config.image_size
        if tuple(images.shape[-2:]) != (S, S) or len(images) < 1:
            raise ValueError(f"images must be (N >= 1, 1, {S}, {S}) for this model, got {tuple(images.shape)}")
        check_choice(source, "source", ("test", "draw"))
        self.images, self.labels = images.float(), labels
        self._start_source, self._start_index = source, check_int(index, "index", 0, len(images) - 1)
        self.ink_layer = CanvasMask(S, scale, INK_COLOUR)
        if source == "draw":  # an empty canvas to draw on
            image, background = self.ink_layer.to_image(), False
        else:
            image, background = self.images[self._start_index:self._start_index + 1], True
        super().__init__(model, S, scale, view_scale, image, image, background=background, **options)
        self.canvas.observe(self._on_canvas_ink, names="ink_png")
        self.source.observe(self._on_source, names="value")
        self.index.observe(lambda change: self.show_digit(change["new"]), names="value")
        self.clear_ink_button.on_click(lambda _: self.clear_drawing())

    def _source_controls(self) -> list:
        W = self.widgets
        self.source = W.ToggleButtons(options=[("test digit", "test"), ("draw a digit", "draw")],
                                      value=self._start_source, description="image")
        self.index = W.IntSlider(value=self._start_index, min=0, max=len(self.images) - 1,
                                 description=self._digit_description(self._start_index),
                                 disabled=self._start_source == "draw",
                                 style={"description_width": "90px"}, layout=W.Layout(width="330px"))
        return [self.source, self.index]

    def _extra_buttons(self) -> list:
        W = self.widgets
        self.clear_ink_button = W.Button(description="clear drawing", icon="trash",
                                         layout=W.Layout(display="" if self._start_source == "draw" else "none"),
                                         _dom_classes=("inpaint-clear-drawing",))
        return [self.clear_ink_button]

    def _tool_choice(self) -> tuple:
        if self._start_source == "draw":
            return self._draw_tools, "ink"
        return super()._tool_choice()

    def _start_status(self) -> str:
        return self._draw_status if self._start_source == "draw" else super()._start_status()

    _draw_tools = [("paint hole", "hole"), ("erase hole", "erase"), ("draw digit", "ink"), ("erase ink", "ink_erase")]
    _draw_status = "draw a digit (white ink), then paint a hole and press Run"

    def _digit_description(self, index: int) -> str:
        return "test digit" if self.labels is None else f"digit ({int(self.labels[index])})"

    def show_digit(self, index: int) -> "InpaintWidget":
        """Inpaint test digit ``index`` (switches to the test-digit source)."""
        index = check_int(index, "index", 0, len(self.images) - 1)
        if self.index.value != index:
            self.index.value = index  # comes back here through the observer
            return self
        if self.source.value != "test":
            self.source.value = "test"
            return self
        digit = self.images[index:index + 1]
        self._show_image(digit, digit)
        self.index.description = self._digit_description(index)
        return self

    def _on_source(self, change) -> None:
        W = self.widgets
        if change["new"] == "draw":
            self.tool.options = self._draw_tools
            self.tool.value = "ink"
            self.clear_ink_button.layout = W.Layout(display="")
            self.index.disabled = True
            self.canvas.image_png = ""
            self._from_drawing()
            self.status.value = self._draw_status
        else:
            self.tool.options = [("paint hole", "hole"), ("erase hole", "erase")]
            self.tool.value = "hole"
            self.clear_ink_button.layout = W.Layout(display="none")
            self.index.disabled = False
            self.ink_layer.clear()
            self.canvas.ink_png = ""
            self.show_digit(self.index.value)

    def _on_canvas_ink(self, change) -> None:
        try:
            self.ink_layer.load_png(change["new"])
        except ValueError as err:
            self.status.value = f"ignored a canvas update: {err}"
            return
        if self.source.value == "draw":
            self._from_drawing()

    def _from_drawing(self) -> None:
        drawn = self.ink_layer.to_image()
        self._show_image(drawn, drawn, background=False)

    def _prepare_run(self) -> None:
        if self.source.value == "draw":
            self._from_drawing()

    def draw(self, points, brush: float = 2.5, erase: bool = False) -> "InpaintWidget":
        """Draw a digit stroke from code (switches to the draw source): points in image pixels."""
        if self.source.value != "draw":
            self.source.value = "draw"
        self.ink_layer.stroke(points, brush, erase=erase)
        self.canvas.ink_png = self.ink_layer.to_png()
        self._from_drawing()
        return self

    def clear_drawing(self) -> "InpaintWidget":
        self.ink_layer.clear()
        self.canvas.ink_png = ""
        if self.source.value == "draw":
            self._from_drawing()
        return self


class FreeformInpaintWidget(_InpaintWidgetBase):
    """The same for the free-form model (``InpaintingUNET``, 64x64 or 128x128 RGB): pick a generated
    pattern (``make_patterns``) or upload an image, paint a free-form hole, run.

    The sampler is the architecture guide's algorithm, as in ``inpaint_image``: start from noise in
    the hole, keep the clean known pixels in x_t and in every x0 estimate (``known="clean"``,
    ``init_from_y=False``). An uploaded image is centre-cropped to a square and resized to the
    model's size. So it offers no sampler dropdown (the other samplers do not take known="clean"):
    ``sampler`` can only be "replace".

    model       a loaded free-form model, a checkpoint path, or None (``pretrained("patterns")``)
    images      (N, 3, S, S) in [0, 1] to choose from (None: ``n_patterns`` generated patterns)
    """

    kind = "freeform"
    known, init_from_y = "clean", False
    sampler_names = ("replace",)
    _mmse_model = None  # pretrained("patterns-mmse"), loaded on the first comparison

    def __init__(self, model=None, images: torch.Tensor | None = None, index: int = 0, n_patterns: int = 24,
                 pattern_seed: int = 1, scale: int | None = None, view_scale: int | None = None, brush=None,
                 **options):
        model = load_widget_model(model, "patterns")
        S = model.config.image_size
        if model.config.channels != 3:
            raise ValueError(f"model must be a free-form RGB model (3 channels), "
                             f"got {model.config.channels} channel(s)")
        if images is None:
            images = generated_patterns(check_int(n_patterns, "n_patterns", 1), S, seed=pattern_seed)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3 \
                or tuple(images.shape[-2:]) != (S, S):
            raise ValueError(f"images must be a tensor (N, 3, {S}, {S}) in [0, 1], got "
                             f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
        self.images = images.float()
        scale = max(1, round(320 / S)) if scale is None else scale
        view_scale = max(1, round(160 / S)) if view_scale is None else view_scale
        brush = max(2.0, S / 10) if brush is None else brush
        options.setdefault("centre_box", S // 3)
        self._start_index = check_int(index, "index", 0, len(self.images) - 1)
        image = self.images[self._start_index:self._start_index + 1]
        super().__init__(model, S, scale, view_scale, image, image, brush=brush, **options)
        self.source.observe(self._on_source, names="value")
        self.index.observe(lambda change: self.show_pattern(change["new"]), names="value")
        self.upload.observe(self._on_upload, names="data_url")
        self.comparison = None

    def _extra_buttons(self) -> list:
        W = self.widgets
        self.compare_button = W.Button(description="compare fills", icon="columns", _dom_classes=("inpaint-compare",),
                                       tooltip="the harmonic fill, Telea, this run's sample, inpaint_image's default "
                                               "fill and the MMSE reference, PSNR_hole under each")
        self.compare_button.on_click(self._on_compare_click)
        return [self.compare_button]

    def _extra_views(self) -> list:
        W = self.widgets
        self.compare_view = view_class()(value=b"", img_class="inpaint-compare", alt="the fills compared",
                                         _dom_classes=("inpaint-compare-view",),
                                         layout=W.Layout(align_self="flex-start"))
        return [W.HTML("<b>compare</b>: press <i>compare fills</i> after a run"), self.compare_view]

    def compare(self) -> dict:
        """Notebook 07's comparison on the widget's image and hole: {name: (fill, PSNR_hole)} for the harmonic
        fill, Telea, the last run's sample (run first if there is none for this hole), ``inpaint_image``'s
        default fill at the widget's steps and seed, and the MMSE reference ``pretrained("patterns-mmse")``
        where its size matches the model's. Shown in the compare view; the image is the ground truth."""
        from ..registry import load_model, pretrained

        if self.last_run is None or not torch.equal(self.hole, self._run_hole):
            self.run()
        if self._mmse_model is None:
            mmse = load_model(pretrained("patterns-mmse"), device=next(self.model.parameters()).device)
            type(self)._mmse_model = mmse
        mmse = self._mmse_model if self._mmse_model.config.image_size == self.size else None
        self.status.value = "comparing: the default fill runs its samples..."
        hole = self._run_hole
        self.comparison = compare_fills(self.model, self.image, hole, self.last_run.result, self.steps.value,
                                        self.seed.value, mmse)
        self.compare_view.value = picture_png(comparison_panel(self.image, hole, self.comparison, self.view_scale))
        self.status.value = "compared: " + ", ".join(f"{name} {psnr:.2f} dB"
                                                     for name, (_, psnr) in self.comparison.items())
        return self.comparison

    def _on_compare_click(self, _button) -> None:
        if self._busy:
            return
        try:
            self.compare()
        except Exception as err:  # a button's exception would vanish into a log
            self.status.value = f"error: {err}"

    def _source_controls(self) -> list:
        W = self.widgets
        self.source = W.ToggleButtons(options=[("pattern", "pattern"), ("upload", "upload")], value="pattern",
                                      description="image")
        self.index = W.IntSlider(value=self._start_index, min=0, max=len(self.images) - 1, description="pattern",
                                 style={"description_width": "90px"}, layout=W.Layout(width="330px"))
        # the file travels as a data URL string (ImageUpload), not as FileUpload's binary buffers
        self.upload = upload_class()(accept="image/*", description="upload", _dom_classes=("inpaint-upload-button",))
        return [self.source, W.HBox([self.index, self.upload])]

    def show_pattern(self, index: int) -> "FreeformInpaintWidget":
        index = check_int(index, "index", 0, len(self.images) - 1)
        if self.index.value != index:
            self.index.value = index  # comes back here through the observer
            return self
        if self.source.value != "pattern":
            self.source.value = "pattern"
            return self
        image = self.images[index:index + 1]
        self._show_image(image, image)
        return self

    def set_image(self, image) -> "FreeformInpaintWidget":
        """Inpaint ``image``: a path, PIL image, image file bytes, or a tensor (1 or none, 3, H, W) in [0, 1]
        (non-square or other sizes: centre-cropped and resized to the model's size)."""
        tensor = image_to_tensor(image, self.size)
        self._show_image(tensor, tensor)
        return self

    def _on_source(self, change) -> None:
        if change["new"] == "pattern":
            self.show_pattern(self.index.value)
        else:
            self.status.value = "choose an image file with the upload button"

    def _on_upload(self, change) -> None:
        """A file from the upload button: ``upload.data_url`` (a data URL string) -> the image."""
        url = change["new"]
        if not url:
            return
        name = self.upload.name or "upload"
        try:
            self.set_image(url)
        except ValueError as err:
            self.status.value = f"error: {name}: {err}"
            return
        finally:
            self.upload.data_url = ""  # read: the next upload (even of the same file) is a change
        if self.source.value != "upload":
            self.source.unobserve(self._on_source, names="value")
            self.source.value = "upload"
            self.source.observe(self._on_source, names="value")
        self.status.value = f"loaded {name}: paint a hole, then press Run"
