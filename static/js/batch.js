// The new-batch page: files picked, a folder picked or dropped (its images only, from every
// subfolder), counted with the URLs, and the batch's cost shown before it is submitted:
// images x results per image x the model's price. The server checks it all again.
// The compare page: its cost, the sum of each ticked model's price, follows the ticks.
(function () {
  "use strict";

  const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"];

  function isImage(file) { return IMAGE_TYPES.includes(file.type); }

  // Every file under a dropped entry (a folder is read to the end, in pages).
  function filesOf(entry) {
    if (!entry) return Promise.resolve([]);
    if (entry.isFile) {
      return new Promise(function (resolve) { entry.file(function (file) { resolve([file]); }, function () { resolve([]); }); });
    }
    const reader = entry.createReader();
    return new Promise(function (resolve) {
      const found = [];
      function readPage() {
        reader.readEntries(function (entries) {
          if (!entries.length) {
            Promise.all(found).then(function (lists) { resolve(lists.flat()); });
            return;
          }
          entries.forEach(function (child) { found.push(filesOf(child)); });
          readPage();
        }, function () { resolve([]); });
      }
      readPage();
    });
  }

  function setUp(form) {
    const zone = form.querySelector("[data-batch-drop]");
    const input = form.querySelector("#id_images");
    const folder = form.querySelector("[data-batch-folder]");
    const picked = form.querySelector("[data-batch-picked]");
    const costLine = form.querySelector("[data-batch-cost]");
    const prices = JSON.parse(document.getElementById("batch-prices").textContent);

    // The chosen images all live in the files input; a folder's go there too, images only.
    function add(files) {
      const all = new DataTransfer();
      Array.from(input.files).forEach(function (file) { all.items.add(file); });
      files.filter(isImage).forEach(function (file) { all.items.add(file); });
      input.files = all.files;
      update();
    }

    function urlCount() {
      const urls = form.querySelector("[name=image_urls]").value;
      return urls.split("\n").filter(function (line) { return line.trim(); }).length;
    }

    function update() {
      const files = input.files.length;
      const zip = form.querySelector("[name=archive]").files.length > 0;
      picked.textContent = files ? files + " image" + (files === 1 ? "" : "s") + " chosen." : "";
      const count = files + urlCount();
      const model = form.querySelector("[name=model]").value;
      const candidates = Math.max(1, parseInt(form.querySelector("[name=candidates]").value, 10) || 1);
      const price = prices[model];
      const zipNote = zip ? " plus the images in the ZIP (counted on upload)" : "";
      const total = price ? count * candidates * parseFloat(price) : 0;
      form.querySelectorAll("[data-budget-left]").forEach(function (line) {
        const short = total > parseFloat(line.dataset.budgetLeft);
        line.querySelector("[data-budget-short]").textContent = short ? ", not enough for this batch" : "";
      });
      if (!count && !zip) {
        costLine.textContent = "Batch cost: choose images to see it.";
      } else if (!price) {
        costLine.textContent = "Batch: " + count + " image" + (count === 1 ? "" : "s") + zipNote + "; no price is configured for " + model + ".";
      } else {
        costLine.textContent = "Batch cost: " + count + " image" + (count === 1 ? "" : "s") + " × " + candidates +
          " result" + (candidates === 1 ? "" : "s") + " × " + price + " = " + total.toFixed(2) + " credits" + zipNote + ".";
      }
    }

    input.addEventListener("change", update);
    folder.addEventListener("change", function () {
      const files = Array.from(folder.files);
      folder.value = "";
      add(files);
    });
    zone.addEventListener("dragover", function (event) { event.preventDefault(); zone.classList.add("dragging"); });
    zone.addEventListener("dragleave", function () { zone.classList.remove("dragging"); });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
      const entries = Array.from(event.dataTransfer.items || [])
        .map(function (item) { return item.webkitGetAsEntry ? item.webkitGetAsEntry() : null; });
      if (entries.some(Boolean)) {
        Promise.all(entries.map(filesOf)).then(function (lists) { add(lists.flat()); });
      } else {
        add(Array.from(event.dataTransfer.files));
      }
    });
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    document.body.addEventListener("htmx:afterSwap", update);
    update();
  }

  function setUpCompare(form) {
    const costLine = form.querySelector("[data-compare-cost]");
    const prices = JSON.parse(document.getElementById("compare-prices").textContent);

    function update() {
      const ticked = Array.from(form.querySelectorAll("[name=models]:checked")).map(function (box) { return box.value; });
      const unpriced = ticked.filter(function (model) { return !prices[model]; });
      const total = ticked.reduce(function (sum, model) { return sum + (parseFloat(prices[model]) || 0); }, 0);
      form.querySelectorAll("[data-budget-left]").forEach(function (line) {
        const short = total > parseFloat(line.dataset.budgetLeft);
        line.querySelector("[data-budget-short]").textContent = short ? ", not enough for this comparison" : "";
      });
      if (!ticked.length) {
        costLine.textContent = "Comparison cost: tick the models to see it.";
      } else if (unpriced.length) {
        costLine.textContent = "Comparison of " + ticked.length + " model" + (ticked.length === 1 ? "" : "s") +
          "; no price is configured for " + unpriced.join(", ") + ".";
      } else {
        costLine.textContent = "Comparison cost: " + ticked.map(function (model) { return prices[model]; }).join(" + ") +
          " = " + total.toFixed(2) + " credits (" + ticked.length + " model" + (ticked.length === 1 ? "" : "s") + ", one result each).";
      }
    }

    form.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-batch-form]").forEach(setUp);
    document.querySelectorAll("[data-compare-form]").forEach(setUpCompare);
  });
})();
