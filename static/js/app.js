// Image picking for the edit form: choose files, drop them, or paste them; each can be removed.
// The chosen files live in the form's own file input, so the form posts them as usual.
(function () {
  "use strict";

  function setUp(zone) {
    const input = zone.querySelector("input[type=file]");
    const list = zone.querySelector("[data-picked]");
    const picked = new DataTransfer();
    const accepted = ["image/png", "image/jpeg", "image/webp"];

    function render() {
      input.files = picked.files;
      list.replaceChildren();
      Array.from(picked.files).forEach(function (file, index) {
        const item = document.createElement("li");
        const preview = document.createElement("img");
        preview.alt = "";
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
          render();
        });
        item.append(preview, name, remove);
        list.append(item);
      });
    }

    function add(files) {
      Array.from(files).forEach(function (file) {
        if (!accepted.includes(file.type) && file.type) return;
        const name = file.name && file.name !== "image.png" ? file.name
          : "pasted-" + (picked.files.length + 1) + "." + (file.type.split("/")[1] || "png");
        picked.items.add(new File([file], name, { type: file.type }));
      });
      render();
    }

    input.addEventListener("change", function () {
      const chosen = Array.from(input.files);
      add(chosen);
    });
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

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-dropzone]").forEach(setUp);
    document.querySelectorAll("#edit-form").forEach(preventDoubleSubmit);
  });
})();
