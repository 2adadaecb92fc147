// The edit page as an image tool: a before/after divider dragged on the result, a lightbox with
// zoom and pan, the running edit's clock, and an opt-in browser notification when it ends.
// Everything is set up again on the fragments htmx swaps in (the status section is replaced
// whenever the edit moves on).
(function () {
  "use strict";

  const ACTIVE = ["queued", "running"];

  // --- Before and after ------------------------------------------------------------------------

  function setSplit(compare, percent) {
    const value = Math.max(0, Math.min(100, Math.round(percent)));
    const before = compare.querySelector("[data-compare-before]");
    const handle = compare.querySelector("[data-compare-handle]");
    // CSSOM changes, which a strict style-src allows (style="" attributes it would not).
    before.style.clipPath = "inset(0 " + (100 - value) + "% 0 0)";
    handle.style.left = value + "%";
    handle.setAttribute("aria-valuenow", String(value));
    handle.setAttribute("aria-valuetext", value + "% original");
  }

  function setUpCompare(compare) {
    const handle = compare.querySelector("[data-compare-handle]");
    if (!handle || compare.dataset.ready) return;
    compare.dataset.ready = "true";
    // A press on the image drags the divider, not the image out of the page.
    compare.querySelectorAll("a, img").forEach(function (element) { element.draggable = false; });
    setSplit(compare, Number(handle.getAttribute("aria-valuenow")));
    let start = null;
    let dragging = false;

    function follow(event) {
      const box = compare.getBoundingClientRect();
      setSplit(compare, ((event.clientX - box.left) / box.width) * 100);
    }

    compare.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      start = event.clientX;
      dragging = false;
      if (event.target.closest("[data-compare-handle]")) startDragging(event);
    });
    // Captured only once it is a drag: a captured press would take the click from the link.
    function startDragging(event) {
      dragging = true;
      compare.setPointerCapture(event.pointerId);
      event.preventDefault();
    }
    compare.addEventListener("pointermove", function (event) {
      if (start === null) return;
      // A press that moves is a drag of the divider; one that does not is a click (lightbox).
      if (!dragging && Math.abs(event.clientX - start) > 4) startDragging(event);
      if (dragging) follow(event);
    });
    function end() {
      if (dragging) compare.dataset.dragged = "true"; // swallow the click that follows
      start = null;
      dragging = false;
    }
    compare.addEventListener("pointerup", end);
    compare.addEventListener("pointercancel", end);
    compare.addEventListener("click", function (event) {
      if (compare.dataset.dragged) {
        delete compare.dataset.dragged;
        event.preventDefault();
        event.stopPropagation();
      }
    }, true);
    handle.addEventListener("keydown", function (event) {
      const now = Number(handle.getAttribute("aria-valuenow"));
      const step = event.shiftKey ? 20 : 5;
      const moves = {
        ArrowLeft: now - step, ArrowDown: now - step, ArrowRight: now + step, ArrowUp: now + step,
        PageDown: now - 20, PageUp: now + 20, Home: 0, End: 100,
      };
      if (!(event.key in moves)) return;
      event.preventDefault();
      setSplit(compare, moves[event.key]);
    });
  }

  // --- Lightbox --------------------------------------------------------------------------------

  const ZOOM_STEP = 1.25;
  const MAX_ZOOM = 8;
  const PAN_STEP = 60;
  let lightbox = null;

  function button(label, text, name) {
    const element = document.createElement("button");
    element.type = "button";
    element.className = "tool";
    element.textContent = text;
    element.setAttribute("aria-label", label);
    element.dataset[name] = "";
    return element;
  }

  function buildLightbox() {
    const dialog = document.createElement("dialog");
    dialog.className = "lightbox";
    dialog.setAttribute("aria-label", "Image viewer");
    const bar = document.createElement("div");
    bar.className = "lightbox-bar";
    const level = document.createElement("output");
    level.className = "lightbox-level";
    level.setAttribute("aria-label", "Zoom level");
    const download = document.createElement("a");
    download.className = "tool";
    download.textContent = "Download";
    bar.append(
      button("Zoom out", "−", "zoomOut"), level, button("Zoom in", "+", "zoomIn"),
      button("Fit to screen", "Fit", "zoomFit"), download, button("Close", "✕", "close")
    );
    const stage = document.createElement("div");
    stage.className = "lightbox-stage";
    stage.tabIndex = 0;
    stage.setAttribute("role", "img");
    const image = document.createElement("img");
    image.alt = "";
    image.draggable = false;
    stage.append(image);
    const hint = document.createElement("p");
    hint.className = "lightbox-hint";
    hint.textContent = "+ and − zoom, arrow keys or dragging pan, 0 fits, Escape closes.";
    dialog.append(bar, stage, hint);
    document.body.append(dialog);

    const view = { dialog, stage, image, level, download, zoom: 1, x: 0, y: 0, full: "", opener: null };

    function show() {
      image.style.transform =
        "translate(" + view.x + "px, " + view.y + "px) scale(" + view.zoom + ")";
      level.textContent = Math.round(view.zoom * 100) + "%";
      stage.classList.toggle("zoomed", view.zoom > 1);
    }
    view.zoomTo = function (zoom) {
      view.zoom = Math.max(1, Math.min(MAX_ZOOM, zoom));
      if (view.zoom === 1) view.x = view.y = 0;
      // The preview is enough to fit the screen; looking closer needs the full image.
      if (view.zoom > 1 && image.getAttribute("src") !== view.full) image.src = view.full;
      show();
    };
    view.pan = function (dx, dy) {
      if (view.zoom === 1) return;
      view.x += dx;
      view.y += dy;
      show();
    };

    bar.addEventListener("click", function (event) {
      const target = event.target.closest("button");
      if (!target) return;
      if ("zoomIn" in target.dataset) view.zoomTo(view.zoom * ZOOM_STEP);
      if ("zoomOut" in target.dataset) view.zoomTo(view.zoom / ZOOM_STEP);
      if ("zoomFit" in target.dataset) view.zoomTo(1);
      if ("close" in target.dataset) dialog.close();
    });
    dialog.addEventListener("keydown", function (event) {
      const keys = {
        "+": function () { view.zoomTo(view.zoom * ZOOM_STEP); },
        "=": function () { view.zoomTo(view.zoom * ZOOM_STEP); },
        "-": function () { view.zoomTo(view.zoom / ZOOM_STEP); },
        "0": function () { view.zoomTo(1); },
        ArrowLeft: function () { view.pan(PAN_STEP, 0); },
        ArrowRight: function () { view.pan(-PAN_STEP, 0); },
        ArrowUp: function () { view.pan(0, PAN_STEP); },
        ArrowDown: function () { view.pan(0, -PAN_STEP); },
      };
      if (!(event.key in keys) || event.target.closest(".lightbox-bar a")) return;
      event.preventDefault();
      keys[event.key]();
    });
    stage.addEventListener("wheel", function (event) {
      event.preventDefault();
      view.zoomTo(event.deltaY < 0 ? view.zoom * ZOOM_STEP : view.zoom / ZOOM_STEP);
    }, { passive: false });
    let last = null;
    stage.addEventListener("pointerdown", function (event) {
      last = { x: event.clientX, y: event.clientY };
      stage.setPointerCapture(event.pointerId);
    });
    stage.addEventListener("pointermove", function (event) {
      if (!last) return;
      view.pan(event.clientX - last.x, event.clientY - last.y);
      last = { x: event.clientX, y: event.clientY };
    });
    stage.addEventListener("pointerup", function () { last = null; });
    stage.addEventListener("pointercancel", function () { last = null; });
    // The native dialog closes on Escape; focus goes back to what opened it.
    dialog.addEventListener("close", function () {
      if (view.opener) view.opener.focus();
    });
    return view;
  }

  function openLightbox(link) {
    lightbox = lightbox || buildLightbox();
    const shown = link.querySelector("img");
    lightbox.full = link.getAttribute("href");
    lightbox.opener = link;
    lightbox.image.src = shown.getAttribute("src");
    lightbox.stage.setAttribute("aria-label", shown.alt + ", enlarged");
    lightbox.download.href = lightbox.full + "?download=1";
    lightbox.download.setAttribute("aria-label", "Download " + shown.alt.toLowerCase());
    lightbox.zoomTo(1);
    lightbox.dialog.showModal();
    lightbox.stage.focus();
  }

  document.addEventListener("click", function (event) {
    const link = event.target.closest("[data-lightbox] a");
    if (!link || event.defaultPrevented) return;
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    openLightbox(link);
  });

  // --- A running edit: its clock, and a notification when it ends -----------------------------

  function tick() {
    document.querySelectorAll("[data-elapsed]").forEach(function (clock) {
      if (!clock.dataset.seenAt) clock.dataset.seenAt = String(Date.now());
      const seconds = Number(clock.dataset.elapsed) +
        Math.floor((Date.now() - Number(clock.dataset.seenAt)) / 1000);
      const typical = Number(clock.dataset.typical);
      clock.querySelector("[data-elapsed-text]").textContent = seconds <= typical
        ? seconds + " s of about " + typical + " s"
        : seconds + " s; it usually takes about " + typical + " s";
      clock.querySelector("progress").value = Math.min(seconds, typical);
    });
  }

  function notifyKey(editId) { return "notify-edit-" + editId; }

  function setUpStatus(status) {
    const editId = status.dataset.editId;
    const state = status.dataset.editStatus;
    const wanted = sessionStorage.getItem(notifyKey(editId)) === "on";
    if (!ACTIVE.includes(state)) {
      if (wanted) {
        sessionStorage.removeItem(notifyKey(editId));
        // Only when the person is looking elsewhere: this page already shows the outcome.
        if (document.hidden && "Notification" in window && Notification.permission === "granted") {
          const words = { succeeded: "is done", failed: "failed", cancelled: "was cancelled" };
          new Notification("Edit " + editId + " " + (words[state] || state), {
            body: document.querySelector(".edit-header .prompt").textContent,
            tag: notifyKey(editId),
          });
        }
      }
      return;
    }
    const notify = status.querySelector("[data-notify]");
    if (!notify || !("Notification" in window) || Notification.permission === "denied") return;
    const said = status.querySelector("[data-notify-state]");
    notify.hidden = false;
    notify.setAttribute("aria-pressed", String(wanted));
    if (wanted) said.textContent = "You will be notified when it ends.";
    notify.addEventListener("click", function () {
      if (sessionStorage.getItem(notifyKey(editId)) === "on") {
        sessionStorage.removeItem(notifyKey(editId));
        notify.setAttribute("aria-pressed", "false");
        said.textContent = "";
        return;
      }
      Notification.requestPermission().then(function (permission) {
        if (permission === "granted") {
          sessionStorage.setItem(notifyKey(editId), "on");
          notify.setAttribute("aria-pressed", "true");
          said.textContent = "You will be notified when it ends.";
        } else {
          said.textContent = "This browser blocks notifications from this site.";
        }
      });
    });
  }

  function setUp(root) {
    root.querySelectorAll("[data-compare]").forEach(setUpCompare);
    root.querySelectorAll("[data-edit-status]").forEach(setUpStatus);
    if (root.matches && root.matches("[data-edit-status]")) setUpStatus(root);
  }

  document.addEventListener("htmx:load", function (event) {
    if (event.detail.elt !== document.body) setUp(event.detail.elt);
  });
  document.addEventListener("DOMContentLoaded", function () {
    setUp(document);
    tick();
    setInterval(tick, 1000);
  });
})();
