// faceblur-bench comparison page: sorting, filters, "worst N", the side-by-side viewer, zoom
// and A/B swipe. Plain DOM, no framework, nothing fetched: the page's data is the JSON in
// #report-data and the rows of each per-image table. Text from the data is only ever set
// through textContent / attributes (never parsed as HTML).
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);

  function value(td) {
    const s = td.getAttribute("data-v");
    return s === null || s === "" ? null : parseFloat(s);
  }

  function setupGroup(section) {
    const gi = Number(section.getAttribute("data-group"));
    const g = data.groups[gi];
    const nm = g.metrics.length;
    const table = section.querySelector("table.per-image");
    const tbody = table.tBodies[0];
    const rows = Array.from(tbody.rows);
    const fixed = 4; // image, subset, kernel size, failed in
    const state = { limit: null };
    const $ = (sel) => section.querySelector(sel);

    // ---- filters ----------------------------------------------------------------------------
    function passes(tr) {
      const subset = $(".f-subset").value;
      const kernel = $(".f-kernel").value;
      const failed = $(".f-failed").value;
      if (subset && tr.getAttribute("data-subset") !== subset) return false;
      if (kernel && tr.getAttribute("data-kernel") !== kernel) return false;
      const runs = tr.getAttribute("data-failed").split(" ").filter(Boolean);
      if (failed === "any" && !runs.length) return false;
      if (failed === "none" && runs.length) return false;
      if (failed.startsWith("run:") && !runs.includes(failed.slice(4))) return false;
      return true;
    }

    function applyFilters() {
      let shown = 0;
      for (const tr of tbody.rows) {
        const ok = passes(tr) && (state.limit === null || shown < state.limit);
        tr.hidden = !ok;
        if (ok) shown += 1;
      }
      $(".count .shown").textContent = String(shown);
    }

    // ---- sorting ------------------------------------------------------------------------------
    function sortBy(keyOf, descending) {
      const sorted = Array.from(tbody.rows).sort((a, b) => {
        const va = keyOf(a), vb = keyOf(b);
        if (va === null && vb === null) return Number(a.dataset.order) - Number(b.dataset.order);
        if (va === null) return 1; // rows without a value go last either way
        if (vb === null) return -1;
        if (va < vb) return descending ? 1 : -1;
        if (va > vb) return descending ? -1 : 1;
        return Number(a.dataset.order) - Number(b.dataset.order);
      });
      for (const tr of sorted) tbody.appendChild(tr);
    }

    function metricKey(col) {
      return (tr) => value(tr.cells[fixed + col]);
    }

    // first click: worst first (where failures hide); next click reverses
    function worstFirst(th) {
      return th.getAttribute("data-hib") !== "down";  // higher is better: ascending = worst first
    }

    for (const th of table.querySelectorAll("th.sortable")) {
      th.tabIndex = 0;
      const activate = () => {
        const prev = th.getAttribute("aria-sort");
        for (const o of table.querySelectorAll("th.sortable")) o.removeAttribute("aria-sort");
        let ascending;
        if (th.dataset.col !== undefined) {
          ascending = prev ? prev === "descending" : worstFirst(th);
          sortBy(metricKey(Number(th.dataset.col)), !ascending);
        } else {
          ascending = prev !== "ascending";
          const key = th.dataset.sort === "kernel"
            ? (tr) => (tr.dataset.kernel === "" ? null : Number(tr.dataset.kernel))
            : (tr) => tr.dataset.id;
          sortBy(key, !ascending);
        }
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        state.limit = null;
        applyFilters();
      };
      th.addEventListener("click", activate);
      th.addEventListener("keydown", (ev) => { if (ev.key === "Enter") activate(); });
    }

    for (const sel of section.querySelectorAll(".f-subset, .f-kernel, .f-failed")) {
      sel.addEventListener("change", () => { state.limit = null; applyFilters(); });
    }

    // ---- worst N of one run -------------------------------------------------------------------
    for (const btn of section.querySelectorAll("button.worst")) {
      btn.addEventListener("click", () => {
        const metric = Number($(".w-metric").value);
        const col = Number(btn.dataset.run) * nm + metric;
        const th = table.querySelector(`th[data-col="${col}"]`);
        for (const o of table.querySelectorAll("th.sortable")) o.removeAttribute("aria-sort");
        const ascending = worstFirst(th);
        sortBy(metricKey(col), !ascending);
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        state.limit = Math.max(1, Number($(".w-n").value) || data.worst_n);
        applyFilters();
        const first = Array.from(tbody.rows).find((tr) => !tr.hidden);
        if (first) select(first.dataset.id);
      });
    }
    $("button.reset").addEventListener("click", () => {
      for (const sel of section.querySelectorAll(".f-subset, .f-kernel, .f-failed")) sel.value = "";
      state.limit = null;
      for (const o of table.querySelectorAll("th.sortable")) o.removeAttribute("aria-sort");
      sortBy((tr) => Number(tr.dataset.order), false);
      applyFilters();
    });

    // ---- viewer -------------------------------------------------------------------------------
    const panelsEl = $(".panels");
    const sources = [{ key: "input", label: "Input (blurred)" }]
      .concat(g.runs.map((r, i) => ({ key: "run:" + r.key, label: r.label, run: r, index: i })));
    if (g.has_gt) sources.push({ key: "gt", label: "Ground truth" });
    const selA = $(".ab-a"), selB = $(".ab-b");
    sources.forEach((s, i) => {
      for (const sel of [selA, selB]) {
        const o = document.createElement("option");
        o.value = String(i);
        o.textContent = s.label;
        sel.appendChild(o);
      }
    });
    // A: the first competing run with saved images (not the blurred reference); B: the ground
    // truth where there is one, else the input
    const firstA = sources.findIndex((s) => s.run && s.run.ranked && s.run.has_images);
    selA.value = String(firstA >= 0 ? firstA : Math.min(1, sources.length - 1));
    selB.value = String(g.has_gt ? sources.length - 1 : 0);
    let current = null;

    function srcOf(source, id) {
      const img = g.images[id] || { m: {} };
      if (source.key === "input") return img.input || null;
      if (source.key === "gt") return img.gt || null;
      return img.m[source.run.key] || null;
    }

    function missingText(source, id) {
      if (source.run) {
        if (!source.run.has_images) return source.run.how;
        const tr = rows.find((r) => r.dataset.id === id);
        const failed = tr && tr.dataset.failed.split(" ").includes(source.run.key);
        return failed ? "no image: this image failed in this run" : "no saved image of this image";
      }
      return source.key === "gt" ? "no ground truth" : "input image not found (see the note above)";
    }

    function scoresOf(source, id) {
      if (!source.run) return "";
      const tr = rows.find((r) => r.dataset.id === id);
      if (!tr) return "";
      const failed = Array.from(tr.querySelectorAll("span.failed"))
        .find((sp) => sp.dataset.run === source.run.key);
      if (failed) return "failed: " + failed.title;
      const parts = [];
      g.metrics.forEach((m, j) => {
        const td = tr.cells[fixed + source.index * nm + j];
        if (td && td.textContent) parts.push(m.label + " " + td.textContent);
      });
      return parts.join(" / ");
    }

    function zoom() { return Number($(".zoom").value); }

    function sizeImage(img) {
      const z = zoom();
      const apply = () => { if (img.naturalWidth) img.style.width = img.naturalWidth * z + "px"; };
      if (img.complete) apply(); else img.addEventListener("load", apply, { once: true });
    }

    function renderPanels() {
      panelsEl.textContent = "";
      for (const s of sources) {
        const fig = document.createElement("figure");
        fig.className = "panel";
        fig.dataset.source = s.key;
        const cap = document.createElement("figcaption");
        cap.textContent = s.label;
        const box = document.createElement("div");
        box.className = "scroll";
        const src = srcOf(s, current);
        if (src) {
          const img = document.createElement("img");
          img.alt = s.label + ": " + current;
          img.src = src;
          sizeImage(img);
          box.appendChild(img);
        } else {
          const p = document.createElement("p");
          p.className = "missing";
          p.textContent = missingText(s, current);
          box.appendChild(p);
        }
        fig.appendChild(cap);
        fig.appendChild(box);
        const sc = scoresOf(s, current);
        if (sc) {
          const p = document.createElement("p");
          p.className = "scores";
          p.textContent = sc;
          fig.appendChild(p);
        }
        panelsEl.appendChild(fig);
      }
      // zoomed panels scroll together, so the same face region stays in view
      const boxes = Array.from(panelsEl.querySelectorAll(".scroll"));
      for (const b of boxes) {
        b.addEventListener("scroll", () => {
          for (const o of boxes) if (o !== b) { o.scrollLeft = b.scrollLeft; o.scrollTop = b.scrollTop; }
        });
      }
    }

    function renderAB() {
      const a = sources[Number(selA.value)], b = sources[Number(selB.value)];
      const imgA = $(".ab-img-a"), imgB = $(".ab-img-b");
      const sa = srcOf(a, current), sb = srcOf(b, current);
      imgA.hidden = !sa;
      imgB.hidden = !sb;
      if (sa) { imgA.src = sa; imgA.alt = a.label; sizeImage(imgA); } else imgA.removeAttribute("src");
      if (sb) { imgB.src = sb; imgB.alt = b.label; sizeImage(imgB); } else imgB.removeAttribute("src");
      const pct = Number($(".ab-swipe").value);
      imgA.style.clipPath = `inset(0 ${100 - pct}% 0 0)`;
      $(".ab-caption").textContent = `A (left of the swipe): ${a.label}` + (sa ? "" : " — " + missingText(a, current))
        + ` | B (right): ${b.label}` + (sb ? "" : " — " + missingText(b, current));
    }

    function select(id) {
      current = id;
      $(".viewer-id").textContent = id;
      for (const tr of rows) tr.classList.toggle("selected", tr.dataset.id === id);
      renderPanels();
      renderAB();
    }

    for (const tr of rows) {
      tr.querySelector("button.pick").addEventListener("click", () => select(tr.dataset.id));
    }
    $(".zoom").addEventListener("change", () => { renderPanels(); renderAB(); });
    selA.addEventListener("change", renderAB);
    selB.addEventListener("change", renderAB);
    $(".ab-swipe").addEventListener("input", renderAB);
    $(".ab-toggle").addEventListener("click", () => {
      const a = selA.value;
      selA.value = selB.value;
      selB.value = a;
      renderAB();
    });

    applyFilters();
    if (rows.length) select(rows[0].dataset.id);
  }

  for (const section of document.querySelectorAll("section.group")) setupGroup(section);
})();
