// Image picking for the edit form: choose files, drop them, or paste them; each shows in a
// preview strip and can be removed. The chosen files live in the form's own file input, so the
// form posts them as usual. Limits the server enforces are checked here first where the browser
// can tell (count, type, bytes, pixels), so a person learns them before uploading.
(function () {
  "use strict";

  const ACCEPTED = ["image/png", "image/jpeg", "image/webp"];
  const MAX_PIXELS = 64000000;

  // What the chosen model accepts, from the model-dependent part of the form.
  function limits() {
    const params = document.getElementById("model-params");
    return {
      model: params ? params.dataset.model : "",
      maxInputs: params ? Number(params.dataset.maxInputs) : 16,
      maxBytes: params ? Number(params.dataset.maxInputBytes) : 50 * 1024 * 1024,
      squareOnly: params ? params.dataset.squareInputs === "true" : false,
    };
  }

  function megabytes(bytes) {
    return (bytes / 1024 / 1024).toFixed(1).replace(/\.0$/, "") + " MB";
  }

  function dimensions(file) {
    return createImageBitmap(file).then(
      function (bitmap) {
        const size = { width: bitmap.width, height: bitmap.height };
        bitmap.close();
        return size;
      },
      function () { return null; } // not decodable
    );
  }

  // A refused submission comes back as a new page, and a page cannot fill a file input again,
  // so the picked files (and the painted mask, saved by mask.js) wait in this tab's IndexedDB
  // until the form is accepted or left. Best effort: without IndexedDB, pick them again.
  const STASH_KEPT_MS = 24 * 60 * 60 * 1000; // entries of tabs closed after a refusal

  function tabKey() {
    let key = sessionStorage.getItem("picked-images");
    if (!key) {
      key = Date.now() + "-" + Math.random().toString(36).slice(2);
      sessionStorage.setItem("picked-images", key);
    }
    return key;
  }

  function inStash(mode, use) {
    return new Promise(function (resolve, reject) {
      const opening = indexedDB.open("imageedits", 1);
      opening.onupgradeneeded = function () { opening.result.createObjectStore("picked"); };
      opening.onerror = function () { reject(opening.error); };
      opening.onsuccess = function () {
        const db = opening.result;
        try {
          const transaction = db.transaction("picked", mode);
          const request = use(transaction.objectStore("picked"));
          transaction.oncomplete = function () { db.close(); resolve(request && request.result); };
          transaction.onerror = transaction.onabort = function () {
            db.close();
            reject(transaction.error);
          };
        } catch (error) {
          db.close();
          reject(error);
        }
      };
    });
  }

  function saveInStash(changes) {
    return inStash("readwrite", function (store) {
      const key = tabKey();
      const reading = store.get(key);
      reading.onsuccess = function () {
        const saved = Object.assign({ files: [], mask: null }, reading.result, changes);
        store.put(Object.assign(saved, { savedAt: Date.now() }), key);
      };
      return reading;
    });
  }

  const stash = {
    save: function (files) { return saveInStash({ files: files }); },
    saveMask: function (mask) { return saveInStash({ mask: mask }); },
    load: function () {
      return inStash("readonly", function (store) { return store.get(tabKey()); });
    },
    clear: function () {
      return inStash("readwrite", function (store) {
        store.delete(tabKey());
        store.openCursor().onsuccess = function (event) {
          const cursor = event.target.result;
          if (!cursor) return;
          if (cursor.value.savedAt < Date.now() - STASH_KEPT_MS) cursor.delete();
          cursor.continue();
        };
      });
    },
  };

  function ignore() {}
  window.pickedImagesStash = stash; // for mask.js

  function setUp(zone) {
    const form = zone.closest("form");
    const input = zone.querySelector("input[type=file]");
    const list = zone.querySelector("[data-picked]");
    const errorBox = zone.querySelector("[data-pick-error]");
    const picked = new DataTransfer();
    // After a refusal, the files picked before it; saving waits until they are back.
    const restored = form.hasAttribute("data-refused")
      ? stash.load().then(function (saved) {
        (saved ? saved.files : []).forEach(function (file) { picked.items.add(file); });
        if (picked.files.length) render();
      }).catch(ignore)
      : Promise.resolve();
    // Images carried over from another edit (stored already): shown above, sent by reference.
    let carried = [];
    const carriedItems = Array.from(form.querySelectorAll("[data-carried]"));
    Promise.all(carriedItems.map(function (item) {
      return fetch(item.dataset.carried).then(function (response) { return response.blob(); })
        .then(function (blob) {
          return { item: item, file: new File([blob], "carried.png", { type: blob.type }) };
        });
    })).then(function (loaded) {
      carried = loaded;
      render();
    });
    form.addEventListener("click", function (event) {
      const button = event.target.closest("[data-remove-carried]");
      if (!button) return;
      const item = button.closest("[data-carried]");
      carried = carried.filter(function (entry) { return entry.item !== item; });
      item.remove();
      render();
    });

    // The first image, large, where the person works (mask.js paints over it when the model
    // takes a mask).
    const stageImage = form.querySelector("[data-stage-image]");
    let stageFile = null;
    function showOnStage(file) {
      form.classList.toggle("has-images", Boolean(file));
      if (!stageImage || file === stageFile) return;
      stageFile = file || null;
      if (stageImage.src) URL.revokeObjectURL(stageImage.src);
      stageImage.hidden = !file;
      if (file) stageImage.src = URL.createObjectURL(file);
      else stageImage.removeAttribute("src");
    }

    function showError(message) {
      errorBox.textContent = message;
      errorBox.hidden = !message;
    }

    function render() {
      input.files = picked.files;
      const pickedFiles = Array.from(picked.files);
      restored.then(function () { return stash.save(pickedFiles); }).catch(ignore);
      list.replaceChildren();
      Array.from(picked.files).forEach(function (file, index) {
        const item = document.createElement("li");
        const preview = document.createElement("img");
        preview.alt = "Preview of " + file.name;
        preview.src = URL.createObjectURL(file);
        preview.addEventListener("load", function () { URL.revokeObjectURL(preview.src); });
        const name = document.createElement("span");
        name.textContent = file.name;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "link";
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", "Remove " + file.name);
        remove.addEventListener("click", function () {
          picked.items.remove(index);
          showError("");
          render();
        });
        item.append(preview, name, remove);
        list.append(item);
      });
      // Carried images come first among the inputs, as the server orders them.
      const files = carried.map(function (entry) { return entry.file; })
        .concat(Array.from(picked.files));
      showOnStage(files[0]);
      form.dispatchEvent(new CustomEvent("images-changed", { detail: { files: files } }));
    }

    // Drops and pastes can come in quick succession: handle them one after the other.
    let queue = Promise.resolve();
    function add(files) {
      const batch = Array.from(files);
      queue = queue.then(function () { return addNow(batch); });
    }

    async function addNow(files) {
      const rules = limits();
      const problems = [];
      for (const file of files) {
        // Pasted images arrive as "image.png"; number them so each can be told apart.
        const name = file.name && file.name !== "image.png" ? file.name
          : "pasted-" + (picked.files.length + 1) + "." + (file.type.split("/")[1] || "png");
        if (!ACCEPTED.includes(file.type)) {
          problems.push("“" + name + "” is not a PNG, JPEG or WebP image.");
        } else if (carried.length + picked.files.length >= rules.maxInputs) {
          problems.push(rules.model + " takes at most " + rules.maxInputs + " image" +
            (rules.maxInputs > 1 ? "s" : "") + "; “" + name + "” was left out.");
        } else if (file.size > rules.maxBytes) {
          problems.push("“" + name + "” is " + megabytes(file.size) + "; " + rules.model +
            " takes images of at most " + megabytes(rules.maxBytes) + ".");
        } else {
          const size = await dimensions(file);
          if (!size) {
            problems.push("“" + name + "” cannot be read as an image.");
          } else if (size.width * size.height > MAX_PIXELS) {
            problems.push("“" + name + "” has more than 64 megapixels.");
          } else if (rules.squareOnly && size.width !== size.height) {
            problems.push(rules.model + " needs square images; “" + name + "” is " +
              size.width + "x" + size.height + ".");
          } else {
            picked.items.add(new File([file], name, { type: file.type }));
          }
        }
      }
      showError(problems.join(" "));
      render();
    }

    input.addEventListener("change", function () { add(Array.from(input.files)); });
    zone.addEventListener("dragover", function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", function () { zone.classList.remove("dragging"); });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
      add(event.dataTransfer.files);
    });
    document.addEventListener("paste", function (event) {
      const files = event.clipboardData && event.clipboardData.files;
      if (files && files.length) {
        event.preventDefault();
        add(files);
      }
    });
  }

  function preventDoubleSubmit(form) {
    form.addEventListener("submit", function () {
      const button = form.querySelector("[data-submit]");
      if (button) {
        // Disable after this tick so the button's own submission still goes through.
        setTimeout(function () {
          button.disabled = true;
          button.textContent = "Submitting…";
        }, 0);
      }
    });
  }

  // Copy buttons (also in fragments htmx swaps in later): data-copy names the field to copy.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const field = document.querySelector(button.dataset.copy);
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = "Copied";
    }, function () {
      field.select(); // no clipboard access: leave it selected for Ctrl-C
      button.textContent = "Press Ctrl-C to copy";
    });
  });

  // The menu under the person's name closes on a click elsewhere or Escape, as menus do.
  document.addEventListener("click", function (event) {
    document.querySelectorAll(".user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll(".user-menu[open]").forEach(function (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
    });
  });

  // The theme toggle: dark or light whatever the system says, remembered in this browser
  // (base.html applies the remembered one before the first paint).
  const darkScheme = window.matchMedia("(prefers-color-scheme: dark)");
  function isDark() {
    const picked = document.documentElement.dataset.theme;
    return picked ? picked === "dark" : darkScheme.matches;
  }
  function showTheme() {
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(isDark()));
    });
  }
  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-theme-toggle]")) return;
    const theme = isDark() ? "light" : "dark";
    document.documentElement.dataset.theme = theme;
    try { localStorage.setItem("theme", theme); } catch (error) { /* kept for this page only */ }
    showTheme();
  });
  darkScheme.addEventListener("change", showTheme);

  // The edit form: Ctrl/Cmd+Enter submits from anywhere in it; a recent instruction fills the
  // instruction field.
  function setUpShortcuts(form) {
    form.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
      event.preventDefault();
      const button = form.querySelector("[data-submit]");
      if (button && !button.disabled) form.requestSubmit(button);
    });
    form.addEventListener("click", function (event) {
      const button = event.target.closest("[data-use-prompt]");
      if (!button) return;
      const field = form.querySelector("[name=prompt]");
      field.value = button.dataset.usePrompt;
      field.focus();
    });
  }

  // The history's selection bar: shown while edits are ticked, with how many.
  function showSelection() {
    const bar = document.querySelector("[data-selection-bar]");
    if (!bar) return;
    const count = document.querySelectorAll("input[name=selected]:checked").length;
    bar.hidden = count === 0;
    bar.querySelector("[data-selection-count]").textContent = count + " selected";
    document.body.classList.toggle("selecting", count > 0);
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("input[name=selected]")) showSelection();
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-clear-selection]")) return;
    document.querySelectorAll("input[name=selected]:checked").forEach(function (box) {
      box.checked = false;
    });
    showSelection();
  });
  document.addEventListener("htmx:afterSettle", showSelection);

  document.addEventListener("DOMContentLoaded", function () {
    // A search field asks as you type; its change event on leaving would ask again, adding the
    // same address to the history a second time.
    document.querySelectorAll("[data-search-as-you-type]").forEach(function (field) {
      field.addEventListener("change", function (event) { event.stopPropagation(); });
    });
    if (!document.querySelector("form[data-refused]")) stash.clear().catch(ignore);
    // A refused form says so where the person is looking: at its top, focused.
    const problems = document.querySelector("[data-focus-on-load]");
    if (problems) problems.focus();
    document.querySelectorAll("[data-dropzone]").forEach(setUp);
    document.querySelectorAll("#edit-form").forEach(preventDoubleSubmit);
    document.querySelectorAll("#edit-form").forEach(setUpShortcuts);
    showTheme();
    showSelection();
  });
})();
