// Mask painter for the edit form: paint over the first image where the model should edit.
// The painting becomes a PNG the size of that image, transparent where painted and opaque
// elsewhere (the OpenAI mask convention), placed in the form's own `mask` file input.
(function () {
  "use strict";

  const HISTORY = 30; // undo steps kept; older steps are baked into `base`
  // Magenta is rare in photos, so paint stands out. Mask pixels are opaque (no build-up where
  // strokes overlap); the translucency is applied only when the mask is shown.
  const PAINT = "#ff00cc";
  const OVERLAY_ALPHA = 0.5;

  function setUp(form, fieldset) {
    const canvas = fieldset.querySelector("[data-mask-canvas]");
    const stage = canvas.parentElement;
    const input = fieldset.querySelector("[data-mask-input]");
    const sizeInput = fieldset.querySelector("[data-mask-size]");
    const toolButtons = fieldset.querySelectorAll("[data-mask-tool]");
    const view = canvas.getContext("2d");

    let files = [];
    let imageKey = null; // identifies the first file, to notice when it changes
    let image = null; // ImageBitmap of the first file, upright as the server sees it
    let tool = "brush";
    // The mask at the image's natural size is `base` plus the replayed `steps`. Keeping steps
    // as vectors rather than pixel snapshots keeps undo cheap for large photos.
    let mask = null;
    let maskCtx = null;
    let base = null;
    let steps = [];
    let stroke = null; // the step being drawn while a pointer is down
    let hover = null; // pointer position in image pixels, for the brush outline
    let exportRun = 0;
    // A mask to paint in once over the first image: the reused edit's ("Reuse settings"), or
    // the one painted before the server refused the form (kept by app.js for this tab).
    const stash = window.pickedImagesStash;
    let initialMask = null;
    if (fieldset.dataset.initialMask) {
      initialMask = Promise.resolve(fieldset.dataset.initialMask);
    } else if (form.hasAttribute("data-refused") && stash) {
      initialMask = stash.load().then(function (saved) {
        return saved ? saved.mask : null;
      }).catch(function () { return null; });
    }

    function remember(file) {
      if (stash) stash.saveMask(file).catch(function () {});
    }

    function takesMask() {
      const params = document.getElementById("model-params");
      return Boolean(params) && params.dataset.takesMask === "true";
    }

    function setMaskFile(file) {
      const transfer = new DataTransfer();
      if (file) transfer.items.add(file);
      input.files = transfer.files;
    }

    function update() {
      const show = takesMask() && files.length > 0 && image !== null;
      fieldset.hidden = !show;
      if (show) {
        layout();
        exportMask(); // a painting kept while hidden goes back into the input
      } else {
        exportRun++; // drop any export still encoding
        setMaskFile(null);
      }
    }

    function newCanvas(width, height) {
      const c = document.createElement("canvas");
      c.width = width;
      c.height = height;
      return c;
    }

    function resetMask() {
      mask = newCanvas(image.width, image.height);
      // Read back after every stroke to export, so keep it in CPU memory.
      maskCtx = mask.getContext("2d", { willReadFrequently: true });
      base = newCanvas(image.width, image.height);
      steps = [];
      stroke = null;
    }

    async function loadFirst() {
      const first = files[0];
      const key = first ? [first.name, first.size, first.lastModified, first.type].join("|") : null;
      if (key === imageKey) return update();
      imageKey = key;
      image = null;
      update(); // hide (and empty the mask) while the new image decodes
      if (!first) return;
      let bitmap;
      try {
        // "from-image": the server applies EXIF orientation, so the mask must match upright pixels.
        bitmap = await createImageBitmap(first, { imageOrientation: "from-image" });
      } catch (error) {
        bitmap = null; // not decodable here: no painter, and no mask is sent
      }
      if (key !== imageKey) return; // another file was chosen meanwhile
      image = bitmap;
      if (image) resetMask();
      if (image && initialMask) {
        const pending = initialMask;
        initialMask = null;
        const source = await pending;
        if (source && key === imageKey) await paintFrom(source);
        if (key !== imageKey) return;
      }
      update();
    }

    // A stored mask (transparent where the model may edit), by URL or as a Blob, becomes paint
    // in `base`.
    async function paintFrom(source) {
      let stored;
      try {
        const blob = typeof source === "string" ? await (await fetch(source)).blob() : source;
        stored = await createImageBitmap(blob);
      } catch (error) {
        return; // gone or unreadable: start unpainted
      }
      if (stored.width !== image.width || stored.height !== image.height) return;
      const ctx = base.getContext("2d");
      ctx.drawImage(stored, 0, 0);
      const pixels = ctx.getImageData(0, 0, base.width, base.height);
      const data = pixels.data;
      for (let i = 0; i < data.length; i += 4) {
        const painted = data[i + 3] < 128;
        data[i] = 255; data[i + 1] = 0; data[i + 2] = 204; // PAINT
        data[i + 3] = painted ? 255 : 0;
      }
      ctx.putImageData(pixels, 0, 0);
      redraw();
    }

    // The visible canvas fits the stage's width (and most of the window's height), keeping the
    // image's aspect ratio; its backing store follows the device pixel ratio so it stays sharp.
    function layout() {
      if (!image || fieldset.hidden) return;
      const maxWidth = stage.clientWidth || image.width;
      let maxHeight = window.innerHeight * 0.7;
      // On wide screens the image pane is the window's height (see .canvas-pane): the canvas
      // takes what its scrolling area has left, so the instruction and Submit stay in view.
      const area = stage.closest(".stage-area");
      if (area && getComputedStyle(area).overflowY === "auto") {
        const below = fieldset.getBoundingClientRect().bottom - stage.getBoundingClientRect().bottom;
        maxHeight = area.getBoundingClientRect().bottom - stage.getBoundingClientRect().top - below;
      }
      maxHeight = Math.max(200, maxHeight);
      const cssWidth = Math.max(1, Math.min(maxWidth, maxHeight * image.width / image.height));
      const ratio = window.devicePixelRatio || 1;
      canvas.width = Math.round(cssWidth * ratio);
      canvas.height = Math.round(cssWidth * ratio * image.height / image.width);
      canvas.style.width = cssWidth + "px";
      render();
    }

    let frame = 0;
    function render() {
      if (frame) return;
      frame = requestAnimationFrame(function () {
        frame = 0;
        if (!image) return;
        view.clearRect(0, 0, canvas.width, canvas.height);
        view.drawImage(image, 0, 0, canvas.width, canvas.height);
        view.globalAlpha = OVERLAY_ALPHA;
        view.drawImage(mask, 0, 0, canvas.width, canvas.height);
        view.globalAlpha = 1;
        if (hover) {
          // Outline of the brush so its size is visible before painting.
          const scale = canvas.width / image.width;
          view.beginPath();
          view.arc(hover.x * scale, hover.y * scale, Math.max(1, hover.width * scale / 2), 0, 2 * Math.PI);
          view.lineWidth = 1;
          view.strokeStyle = "#ffffff";
          view.stroke();
          view.setLineDash([3, 3]);
          view.strokeStyle = "#000000";
          view.stroke();
          view.setLineDash([]);
        }
      });
    }

    // Draw a step (or, while drawing, its newest segment) onto a mask-sized context.
    function draw(ctx, step, from) {
      if (step.type === "clear") {
        ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
        return;
      }
      ctx.save();
      // The eraser removes paint rather than painting "no mask" colour.
      ctx.globalCompositeOperation = step.tool === "eraser" ? "destination-out" : "source-over";
      ctx.strokeStyle = ctx.fillStyle = PAINT;
      ctx.lineWidth = step.width;
      ctx.lineCap = ctx.lineJoin = "round";
      const points = step.points;
      const start = Math.max(0, (from || 0) - 1);
      if (points.length === 1) {
        ctx.beginPath();
        ctx.arc(points[0].x, points[0].y, step.width / 2, 0, 2 * Math.PI);
        ctx.fill();
      } else {
        ctx.beginPath();
        ctx.moveTo(points[start].x, points[start].y);
        for (let i = start + 1; i < points.length; i++) ctx.lineTo(points[i].x, points[i].y);
        ctx.stroke();
      }
      ctx.restore();
    }

    function redraw() {
      maskCtx.clearRect(0, 0, mask.width, mask.height);
      maskCtx.drawImage(base, 0, 0);
      steps.forEach(function (step) { draw(maskCtx, step); });
      render();
    }

    function commit(step) {
      steps.push(step);
      if (steps.length > HISTORY) draw(base.getContext("2d"), steps.shift());
      exportMask();
    }

    function undo() {
      if (!image || !steps.length) return;
      steps.pop();
      redraw();
      exportMask();
    }

    function clear() {
      if (!image) return;
      const step = { type: "clear" };
      draw(maskCtx, step);
      render();
      commit(step);
    }

    // Painted pixels become alpha 0, the rest opaque white. Thresholding the anti-aliased edge
    // keeps the mask strictly two-valued, which is what the API expects.
    function exportMask() {
      const run = ++exportRun;
      if (!image || fieldset.hidden) return setMaskFile(null);
      const pixels = maskCtx.getImageData(0, 0, mask.width, mask.height);
      const data = pixels.data;
      let painted = false;
      for (let i = 0; i < data.length; i += 4) {
        const isPainted = data[i + 3] >= 128;
        painted = painted || isPainted;
        data[i] = data[i + 1] = data[i + 2] = 255;
        data[i + 3] = isPainted ? 0 : 255;
      }
      if (!painted) { // nothing painted: send no mask at all
        setMaskFile(null);
        return remember(null);
      }
      const out = newCanvas(mask.width, mask.height);
      out.getContext("2d").putImageData(pixels, 0, 0);
      out.toBlob(function (blob) {
        if (run !== exportRun || !blob) return; // a newer export (or a hide) won
        const file = new File([blob], "mask.png", { type: "image/png" });
        setMaskFile(file);
        remember(file);
      }, "image/png");
    }

    // Pointer position in image pixels, whatever size CSS gives the canvas.
    function toImage(event) {
      const rect = canvas.getBoundingClientRect();
      return {
        x: (event.clientX - rect.left) * image.width / rect.width,
        y: (event.clientY - rect.top) * image.height / rect.height,
      };
    }

    // The range is in screen pixels so the brush looks the same on any image; convert it.
    function brushWidth() {
      const rect = canvas.getBoundingClientRect();
      return Number(sizeInput.value) * image.width / (rect.width || image.width);
    }

    canvas.addEventListener("pointerdown", function (event) {
      if (!image || !event.isPrimary || event.button !== 0) return;
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      stroke = { type: "stroke", tool: tool, width: brushWidth(), points: [toImage(event)] };
      draw(maskCtx, stroke);
      render();
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!image || !event.isPrimary) return;
      const point = toImage(event);
      hover = { x: point.x, y: point.y, width: stroke ? stroke.width : brushWidth() };
      if (stroke) {
        const from = stroke.points.length;
        // Coalesced events give the full path of fast strokes, not just one point per frame.
        const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
        (events.length ? events : [event]).forEach(function (e) { stroke.points.push(toImage(e)); });
        draw(maskCtx, stroke, from);
      }
      render();
    });
    function endStroke(event) {
      if (!stroke || !event.isPrimary) return;
      commit(stroke);
      stroke = null;
    }
    canvas.addEventListener("pointerup", endStroke);
    canvas.addEventListener("pointercancel", endStroke);
    canvas.addEventListener("pointerleave", function () {
      hover = null;
      render();
    });

    toolButtons.forEach(function (button) {
      button.addEventListener("click", function () {
        tool = button.dataset.maskTool;
        toolButtons.forEach(function (b) {
          b.setAttribute("aria-pressed", String(b === button));
        });
      });
    });
    fieldset.querySelector("[data-mask-undo]").addEventListener("click", undo);
    fieldset.querySelector("[data-mask-clear]").addEventListener("click", clear);
    fieldset.addEventListener("keydown", function (event) {
      const isUndo = (event.ctrlKey || event.metaKey) && !event.shiftKey && !event.altKey
        && event.key.toLowerCase() === "z";
      if (isUndo) {
        event.preventDefault();
        undo();
      }
    });

    form.addEventListener("images-changed", function (event) {
      files = Array.from((event.detail && event.detail.files) || []);
      loadFirst();
    });
    // Changing model swaps #model-params for a new element: read data-takes-mask again.
    document.body.addEventListener("htmx:afterSwap", update);
    // Refit when the stage changes width (window resize, or the fieldset being shown).
    if (window.ResizeObserver) {
      let lastWidth = 0;
      new ResizeObserver(function () {
        if (stage.clientWidth !== lastWidth) {
          lastWidth = stage.clientWidth;
          layout();
        }
      }).observe(stage);
    }
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("edit-form");
    const fieldset = form && form.querySelector("[data-mask-editor]");
    if (fieldset) setUp(form, fieldset);
  });
})();
