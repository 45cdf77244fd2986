// fakescope page: send each image to /api/v1/predict, then ask /api/v1/explain for its heatmap.
// No framework and nothing from other hosts (the server's Content-Security-Policy forbids it).
// User-provided text (file names, messages) is only ever set with textContent.
(function () {
  "use strict";

  const API = "/api/v1";
  const drop = document.getElementById("drop");
  const chooser = document.getElementById("chooser");
  const results = document.getElementById("results");
  const status = document.getElementById("status");
  const template = document.getElementById("card");
  let counter = 0;

  // ---- model line ---------------------------------------------------------------------------
  // Thresholds are per image: each row carries the threshold of the model that scored it (a
  // routing model such as `auto` sends small and large images to different models).
  fetch(API + "/model")
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
    .then((m) => {
      const acc = m.metrics && m.metrics.test && m.metrics.test.accuracy;
      let text = "Model: " + m.name;
      if (Array.isArray(m.route)) {
        text +=
          " (routes by image size: " +
          m.route
            .map(
              (r) =>
                (typeof r.max_side === "number" ? "up to " + r.max_side + " px" : "larger") +
                " → " + r.model +
                (typeof r.threshold === "number" ? ", threshold " + r.threshold.toFixed(2) : "")
            )
            .join("; ") +
          ")";
      } else if (typeof m.threshold === "number") {
        text += " (threshold " + m.threshold.toFixed(2) + ")";
      }
      if (typeof acc === "number") text += " (test accuracy " + (100 * acc).toFixed(1) + "%)";
      document.getElementById("model").textContent = text;
    })
    .catch((e) => {
      document.getElementById("model").textContent = "Model information unavailable: " + e.message;
    });

  // ---- getting files in ----------------------------------------------------------------------
  drop.addEventListener("click", () => chooser.click()); // a <button>: Enter and Space click it
  chooser.addEventListener("change", () => {
    handle(chooser.files);
    chooser.value = ""; // choosing the same file again fires change again
  });

  ["dragenter", "dragover"].forEach((type) =>
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    })
  );
  ["dragleave", "dragend"].forEach((type) =>
    drop.addEventListener(type, () => drop.classList.remove("over"))
  );
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    handle(e.dataTransfer.files);
  });
  // a file dropped beside the zone must not make the browser navigate away from the page
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  document.addEventListener("paste", (e) => {
    const files = [];
    for (const item of (e.clipboardData && e.clipboardData.items) || []) {
      if (item.kind === "file") {
        const f = item.getAsFile();
        if (f) files.push(f);
      }
    }
    if (files.length) {
      e.preventDefault();
      handle(files);
    }
  });

  function handle(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length) return;
    status.textContent =
      "Checking " + files.length + " image" + (files.length > 1 ? "s" : "") + "…";
    let left = files.length;
    files.forEach((file) => {
      check(file).finally(() => {
        left -= 1;
        if (left === 0) status.textContent = "Done: " + files.length + " checked.";
      });
    });
  }

  // ---- one card per file ---------------------------------------------------------------------
  function newCard(file) {
    const li = template.content.firstElementChild.cloneNode(true);
    const id = "card-" + ++counter;
    li.id = id;
    const name = file.name || "pasted image";
    li.querySelector(".name").textContent = name;
    li.querySelector(".verdict").textContent = "Checking…";
    const original = li.querySelector(".original");
    original.alt = "Uploaded image " + name;
    original.src = URL.createObjectURL(file);
    // formats the browser cannot show (TIFF, ...) are still scored by the server
    original.addEventListener("error", () => original.closest("figure").classList.add("no-preview"));
    li.querySelector(".heatmap").alt = "Map for " + name; // what it shows: the server says
    results.append(li); // in the order the files were dropped or chosen
    return li;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error;
    } catch (_) {
      /* not JSON: fall through */
    }
    return "HTTP " + response.status + " " + response.statusText;
  }

  function form(file) {
    const data = new FormData();
    data.append("files", file, file.name || "pasted.png");
    return data;
  }

  async function check(file) {
    const li = newCard(file);
    let row;
    try {
      const r = await fetch(API + "/predict", { method: "POST", body: form(file) });
      if (!r.ok) return reject(li, await errorText(r));
      row = (await r.json())[0];
    } catch (e) {
      return reject(li, "The server could not be reached (" + e.message + ").");
    }
    if (!row || row.error) return reject(li, row ? row.error : "no result");
    show(li, row);
    await heatmap(li, file);
  }

  function reject(li, message) {
    li.dataset.state = "error";
    li.querySelector(".verdict").textContent = "Not checked";
    li.querySelector(".message").textContent = "This file was rejected: " + message;
    li.querySelector(".heat-fig").hidden = true;
    li.querySelector(".bar").hidden = true;
  }

  function show(li, row) {
    li.dataset.state = "done";
    const label = String(row.label || "");
    li.dataset.label = label;
    const verdict = li.querySelector(".verdict");
    verdict.textContent =
      label === "fake" ? "Fake: likely AI-generated"
      : label === "real" ? "Real: likely not AI-generated"
      : label === "uncertain" ? "Uncertain: the model cannot tell"
      : label;
    verdict.className = "verdict verdict-" + label.replace(/[^a-z]/g, "");
    const p = typeof row.prob_fake === "number" ? row.prob_fake : null;
    const bar = li.querySelector(".bar");
    if (p !== null) {
      li.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
      bar.setAttribute("aria-valuenow", p.toFixed(4));
      bar.setAttribute("aria-valuetext", (100 * p).toFixed(1) + "% likely AI-generated");
      let text = "prob_fake " + p.toFixed(3);
      const t = typeof row.threshold === "number" ? row.threshold : null;
      const mark = li.querySelector(".mark");
      if (t !== null) {
        mark.style.left = (100 * t).toFixed(1) + "%";
        text += " (threshold " + t.toFixed(2);
        const u = Array.isArray(row.uncertain) ? row.uncertain : null;
        if (u && u.length === 2) {
          const band = li.querySelector(".band");
          band.style.left = (100 * u[0]).toFixed(1) + "%";
          band.style.width = (100 * (u[1] - u[0])).toFixed(1) + "%";
          band.hidden = false;
          text += ", uncertain " + u[0].toFixed(2) + "–" + u[1].toFixed(2);
        }
        text += ")";
      } else {
        mark.hidden = true;
      }
      li.querySelector(".prob").textContent = text;
    }
    const meta = li.querySelector(".meta");
    if (row.note) addMeta(meta, "Why", row.note); // out of scope, or a fake verdict withheld
    if (row.model) addMeta(meta, "Model", row.model);
    if (row.verdict_source) addMeta(meta, "Verdict from", row.verdict_source);
    if (row.provenance !== undefined && row.provenance !== null && row.provenance !== "") {
      addMeta(meta, "Provenance", describe(row.provenance));
    }
  }

  function describe(value) {
    if (typeof value !== "object") return String(value);
    if (Array.isArray(value)) return value.map(describe).join("; ");
    return Object.entries(value)
      .filter(([, v]) => v !== null && v !== "" && v !== undefined)
      .map(([k, v]) => k + ": " + (typeof v === "object" ? JSON.stringify(v) : String(v)))
      .join("; ");
  }

  function addMeta(dl, term, value) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dl.append(dt, dd);
  }

  async function heatmap(li, file) {
    const caption = li.querySelector(".heat-caption");
    caption.textContent = "Heatmap: computing…";
    try {
      const r = await fetch(API + "/explain?format=json", { method: "POST", body: form(file) });
      if (!r.ok) {
        caption.textContent = "No heatmap: " + (await errorText(r));
        return;
      }
      const ex = await r.json();
      const img = li.querySelector(".heatmap");
      img.src = "data:image/png;base64," + ex.png_base64;
      await img.decode().catch(() => {});
      img.classList.add("ready");
      // the server says what this map shows (Grad-CAM or a tile map) and, when the verdict is
      // more than the pixels' (metadata, out of scope), that the map is not the verdict
      const text = "Map: " + ex.shows + (ex.context ? " " + ex.context : "");
      caption.textContent = text;
      img.alt = li.querySelector(".name").textContent + ": " + text;
    } catch (e) {
      caption.textContent = "No heatmap: " + e.message;
    }
  }
})();
