// The drawing canvas of inpaintlib's widget (an anywidget component; see components.py).
//
// Three layers, each at canvas resolution (image size x scale):
//   background  the image being inpainted (image_png, at image resolution, drawn pixelated)
//   ink         a hand-drawn image (draw mode): white strokes whose alpha is the ink
//   hole        the painted hole: opaque red where painted, transparent elsewhere
// The pointer paints into the ink or the hole layer, depending on `tool`:
//   "hole" paints the hole, "erase" erases it, "ink" draws, "ink_erase" erases the drawing.
// Sync with the kernel: after every stroke (and every `sync_ms` while a stroke goes on) the layer
// that changed is sent as a PNG data URL in `hole_png` / `ink_png`; Python decodes it, averages each
// scale x scale block and calls a pixel a hole pixel when at least half of it is painted. Python
// writes the same traits (clear, centre box, set_hole from code) and the canvas redraws from them.
// When it renders, the view asks the kernel for the whole state ({type: "sync"}; the kernel answers
// with send_state()): a change the kernel sent before the view existed, which Colab can lose, still
// arrives, as the change events below.

function makeCanvas(w, h) {
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  return c;
}

function loadInto(layer, url, done) {
  // draw the PNG data URL `url` into `layer` (cleared first); "" just clears
  const ctx = layer.getContext("2d");
  if (!url) {
    ctx.clearRect(0, 0, layer.width, layer.height);
    done();
    return;
  }
  const img = new Image();
  img.onload = () => {
    ctx.clearRect(0, 0, layer.width, layer.height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(img, 0, 0, layer.width, layer.height);
    done();
  };
  img.src = url;
}

function render({ model, el }) {
  const wrap = document.createElement("div");
  wrap.className = "inpaint-canvas";
  const view = makeCanvas(1, 1);
  view.className = "inpaint-canvas-view";
  view.setAttribute("aria-label", "drawing canvas: paint the hole with the mouse");
  wrap.appendChild(view);
  el.appendChild(wrap);

  let W = 1, H = 1;
  let holeLayer = makeCanvas(1, 1), inkLayer = makeCanvas(1, 1), background = null;
  let sent = { hole_png: null, ink_png: null };
  let drawing = false, last = null, hover = null, dirty = false, timer = null;

  function resize() {
    const s = model.get("scale");
    W = model.get("width") * s;
    H = model.get("height") * s;
    view.width = W;
    view.height = H;
    view.style.width = W + "px";
    view.style.height = H + "px";
    holeLayer = makeCanvas(W, H);
    inkLayer = makeCanvas(W, H);
    loadInto(inkLayer, model.get("ink_png"), redraw);
    loadInto(holeLayer, model.get("hole_png"), redraw);
  }

  function loadBackground() {
    const url = model.get("image_png");
    if (!url) {
      background = null;
      redraw();
      return;
    }
    const img = new Image();
    img.onload = () => {
      background = img;
      redraw();
    };
    img.src = url;
  }

  function redraw() {
    const ctx = view.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = 1;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, W, H);
    if (background) ctx.drawImage(background, 0, 0, W, H);
    ctx.drawImage(inkLayer, 0, 0);
    ctx.globalAlpha = model.get("hole_opacity");
    ctx.drawImage(holeLayer, 0, 0);
    ctx.globalAlpha = 1;
    if (hover) {  // the brush outline under the pointer
      ctx.beginPath();
      ctx.arc(hover.x, hover.y, brushRadius(), 0, 2 * Math.PI);
      ctx.strokeStyle = isErase() ? "#0cf" : "#ff0";
      ctx.lineWidth = 1;
      ctx.stroke();
    }
  }

  const isInk = () => model.get("tool").startsWith("ink");
  const isErase = () => model.get("tool").endsWith("erase");
  const brushRadius = () => Math.max(0.5, (model.get("brush") * model.get("scale")) / 2);

  function position(event) {
    const r = view.getBoundingClientRect();
    return { x: ((event.clientX - r.left) * W) / r.width, y: ((event.clientY - r.top) * H) / r.height };
  }

  function paint(from, to) {
    const layer = isInk() ? inkLayer : holeLayer;
    const ctx = layer.getContext("2d");
    ctx.globalCompositeOperation = isErase() ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = isInk() ? "#fff" : "#f00";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = 2 * brushRadius();
    ctx.beginPath();
    ctx.arc(to.x, to.y, brushRadius(), 0, 2 * Math.PI);  // a stamp, so that a click paints a dot
    ctx.fill();
    if (from) {
      ctx.beginPath();
      ctx.moveTo(from.x, from.y);
      ctx.lineTo(to.x, to.y);
      ctx.stroke();
    }
    ctx.globalCompositeOperation = "source-over";
    dirty = true;
  }

  function sync() {
    // send the layer(s) the pointer changed; the kernel decodes them (core.py: CanvasMask)
    if (!dirty) return;
    dirty = false;
    const key = isInk() ? "ink_png" : "hole_png";
    const url = (isInk() ? inkLayer : holeLayer).toDataURL("image/png");
    sent[key] = url;
    model.set(key, url);
    model.set("strokes", model.get("strokes") + 1);
    model.save_changes();
  }

  view.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    view.setPointerCapture(event.pointerId);
    drawing = true;
    last = position(event);
    paint(null, last);
    redraw();
    timer = setInterval(sync, model.get("sync_ms"));
  });
  view.addEventListener("pointermove", (event) => {
    hover = position(event);
    if (drawing) {
      paint(last, hover);
      last = hover;
    }
    redraw();
  });
  function stop(event) {
    if (!drawing) return;
    drawing = false;
    last = null;
    clearInterval(timer);
    timer = null;
    if (view.hasPointerCapture && event.pointerId !== undefined && view.hasPointerCapture(event.pointerId)) {
      view.releasePointerCapture(event.pointerId);
    }
    sync();
  }
  view.addEventListener("pointerup", stop);
  view.addEventListener("pointercancel", stop);
  view.addEventListener("pointerleave", (event) => {
    hover = null;
    redraw();
  });
  view.addEventListener("contextmenu", (event) => event.preventDefault());

  function fromKernel(key, layerOf) {
    return () => {
      const url = model.get(key);
      if (url === sent[key]) return;  // our own stroke coming back
      sent[key] = url;
      loadInto(layerOf(), url, redraw);
    };
  }
  const onHole = fromKernel("hole_png", () => holeLayer);
  const onInk = fromKernel("ink_png", () => inkLayer);
  const onSize = () => resize();
  const onRedraw = () => redraw();
  model.on("change:hole_png", onHole);
  model.on("change:ink_png", onInk);
  model.on("change:image_png", loadBackground);
  model.on("change:width", onSize);
  model.on("change:height", onSize);
  model.on("change:scale", onSize);
  model.on("change:hole_opacity", onRedraw);

  resize();
  loadBackground();
  model.send({ type: "sync" });
  return () => {  // clean-up when the view is removed
    clearInterval(timer);
    model.off("change:hole_png", onHole);
    model.off("change:ink_png", onInk);
    model.off("change:image_png", loadBackground);
    model.off("change:width", onSize);
    model.off("change:height", onSize);
    model.off("change:scale", onSize);
    model.off("change:hole_opacity", onRedraw);
  };
}

export default { render };
