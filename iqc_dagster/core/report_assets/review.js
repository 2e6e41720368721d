/* iqc review page (issue 16). Reads the album's data from <script type="application/json" id="iqc-data">,
   builds the gallery with DOM calls only (textContent, never innerHTML with data), keeps the user's
   decisions in localStorage (per album and ranking weights) and exports them as a labels CSV.
   No network, no libraries: works from file://. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("iqc-data").textContent);
  var P = D.photos;
  var KEY = D.storage_key;
  var dec = {};
  try { dec = JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { dec = {}; }
  var view = [];       // photo indices currently shown, in order
  var cur = 0;         // position in view
  var mark = null;     // photo index marked for compare
  var overlayMode = null;  // null | "large" | "compare"
  var cards = {};      // photo index -> card element
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function save() { try { localStorage.setItem(KEY, JSON.stringify(dec)); } catch (e) { /* private mode */ } }
  function decOf(i) { return dec[P[i].key] || {}; }
  function setDec(i, patch) {
    var d = Object.assign({}, decOf(i), patch);
    Object.keys(d).forEach(function (k) { if (d[k] === null || d[k] === 0) delete d[k]; });
    if (Object.keys(d).length) dec[P[i].key] = d; else delete dec[P[i].key];
    save(); refreshCard(i); counts();
  }
  function fmt(x) { return x === null || x === undefined ? "n/a" : Number(x).toFixed(3); }

  function thumb(p, cls) {
    var box = el("div", "ph" + (cls ? " " + cls : ""));
    if (p.t) {
      var img = el("img");
      img.loading = "lazy"; img.decoding = "async";
      img.alt = p.file; img.src = p.t;
      box.appendChild(img);
    } else {
      box.appendChild(el("span", "muted", "unreadable"));
    }
    return box;
  }

  function decText(i) {
    var d = decOf(i), out = [];
    if (d.p === 1) out.push(["p", "PICK"]);
    if (d.p === -1) out.push(["r", "REJECT"]);
    if (d.r) out.push(["s", "\u2605".repeat(d.r)]);
    return out;
  }

  function refreshCard(i) {
    var c = cards[i]; if (!c) return;
    var d = decOf(i);
    c.classList.toggle("pick", d.p === 1);
    c.classList.toggle("reject", d.p === -1);
    c.classList.toggle("cmp", mark === i);
    var box = c.querySelector(".dec"); box.textContent = "";
    decText(i).forEach(function (t) { box.appendChild(el("span", t[0], t[1] + " ")); });
  }

  function card(i) {
    var p = P[i], c = el("div", "card");
    c.dataset.i = i; c.dataset.rank = p.rank; c.dataset.file = p.file;
    var ph = thumb(p); c.appendChild(ph);
    var head = el("div", "head");
    head.appendChild(el("b", null, "#" + p.rank + "  " + fmt(p.score)));
    head.appendChild(el("span", "dec"));
    c.appendChild(head);
    var name = el(p.uri ? "a" : "span", "name", p.file);
    if (p.uri) { name.href = p.uri; name.title = p.file; }
    c.appendChild(name);
    if (p.top.length) c.appendChild(el("div", "why", p.top.join("; ")));
    if (p.won) c.appendChild(el("div", "won", "won: " + p.won));
    if (p.lost) c.appendChild(el("div", "lost", p.lost));
    if (p.members && p.members.length && D.showRunners) {
      var r = el("div", "runners");
      p.members.forEach(function (j) {
        var m = el("div", "mini"); m.appendChild(thumb(P[j]));
        m.appendChild(el("div", null, "#" + P[j].rank));
        m.title = P[j].file + (P[j].lost ? " \u2014 " + P[j].lost : "");
        m.addEventListener("click", function (ev) { ev.stopPropagation(); openLarge(j); });
        r.appendChild(m);
      });
      c.appendChild(r);
    }
    c.addEventListener("click", function () { focusAt(view.indexOf(i)); });
    ph.addEventListener("dblclick", function () { focusAt(view.indexOf(i)); openLarge(i); });
    cards[i] = c; refreshCard(i);
    return c;
  }

  function matches(p, i, f) {
    if (f === "all") return true;
    if (f === "best") return p.best;
    if (f === "dups") return p.gsize > 1;
    if (f === "rejects") return decOf(i).p === -1 || (p.low && decOf(i).p !== 1);
    if (f === "picked") return decOf(i).p === 1 || (decOf(i).r || 0) > 0;
    if (f.indexOf("reason:") === 0) return p.reasons.indexOf(f.slice(7)) >= 0;
    return true;
  }

  function render() {
    var f = $("filter").value, s = $("sort").value;
    D.showRunners = f === "best";
    view = [];
    P.forEach(function (p, i) { if (matches(p, i, f)) view.push(i); });
    if (s === "time") {
      view.sort(function (a, b) {
        var ta = P[a].time || "\uffff", tb = P[b].time || "\uffff";
        return ta < tb ? -1 : ta > tb ? 1 : P[a].rank - P[b].rank;
      });
    } else if (f === "dups") {  // group by group, best first inside a group, groups by their best rank
      var first = {};
      view.forEach(function (i) { var g = P[i].group; if (!(g in first) || P[i].rank < first[g]) first[g] = P[i].rank; });
      view.sort(function (a, b) { return (first[P[a].group] - first[P[b].group]) || (P[b].best - P[a].best) || (P[a].rank - P[b].rank); });
    } else {
      view.sort(function (a, b) { return P[a].rank - P[b].rank; });
    }
    var g = $("grid"); g.textContent = ""; cards = {};
    var frag = document.createDocumentFragment();
    view.forEach(function (i) { frag.appendChild(card(i)); });
    g.appendChild(frag);
    if (!view.length) g.appendChild(el("div", "empty", "No photos in this view."));
    cur = Math.min(cur, Math.max(0, view.length - 1));
    highlight(false);
    counts();
  }

  function counts() {
    var n = Object.keys(dec).length;
    $("shown").textContent = view.length + " of " + P.length + " photos shown; " + n + " decision(s) saved in this browser";
  }

  function highlight(scroll) {
    document.querySelectorAll(".card.cur").forEach(function (c) { c.classList.remove("cur"); });
    var c = cards[view[cur]];
    if (c) { c.classList.add("cur"); if (scroll) c.scrollIntoView({ block: "nearest" }); }
  }
  function focusAt(k) { if (k >= 0 && k < view.length) { cur = k; highlight(true); if (overlayMode === "large") showLarge(view[cur]); } }
  function columns() {
    var cs = $("grid").children; if (!cs.length) return 1;
    var top = cs[0].offsetTop, n = 0;
    while (n < cs.length && cs[n].offsetTop === top) n++;
    return Math.max(1, n);
  }

  // --- large view and compare ---
  function figure(i) {
    var p = P[i], f = el("figure"), big = el("div", "big");
    if (p.l) { var img = el("img"); img.alt = p.file; img.src = p.l; big.appendChild(img); }
    else big.appendChild(el("span", "muted", "unreadable"));
    f.appendChild(big);
    var cap = "#" + p.rank + "  " + fmt(p.score) + "  " + p.file + (p.top.length ? "  \u2014 " + p.top.join("; ") : "");
    var d = decText(i).map(function (t) { return t[1]; }).join(" ");
    f.appendChild(el("figcaption", null, cap + (d ? "  [" + d + "]" : "")));
    return f;
  }
  function showLarge(i) {
    overlayMode = "large";
    var b = $("ovbody"); b.textContent = ""; b.appendChild(figure(i));
    $("overlay").classList.add("open");
  }
  function openLarge(i) { showLarge(i); }
  function openCompare(a, b) {
    overlayMode = "compare";
    var body = $("ovbody"); body.textContent = "";
    body.appendChild(figure(a)); body.appendChild(figure(b));
    $("overlay").classList.add("open");
  }
  function closeOverlay() { overlayMode = null; $("overlay").classList.remove("open"); $("ovbody").textContent = ""; }

  // --- export ---
  function csvField(s) { s = String(s); return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; }
  function exportCsv(kind) {
    var lines = ["file," + kind];
    P.forEach(function (p) {
      var d = dec[p.key]; if (!d) return;
      if (kind === "rating") {
        var v = d.p === -1 ? -1 : d.r; if (!v) return;
        lines.push(csvField(p.key) + "," + v);
      } else {
        if (d.p !== 1 && d.p !== -1) return;
        lines.push(csvField(p.key) + "," + (d.p === 1 ? "pick" : "reject"));
      }
    });
    var blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv;charset=utf-8" });
    var a = el("a"); a.href = URL.createObjectURL(blob);
    a.download = D.export_stem + "-" + (kind === "rating" ? "ratings" : "picks") + ".csv";
    document.body.appendChild(a); a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  // --- keys ---
  document.addEventListener("keydown", function (ev) {
    var t = ev.target && ev.target.tagName;
    if (t === "SELECT" || t === "INPUT" || t === "TEXTAREA" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var i = view[cur], k = ev.key, done = true;
    if (overlayMode === "compare") {
      if (k === "Escape" || k === " " || k === "Enter" || k === "c" || k === "C") closeOverlay(); else done = false;
    } else if (k === "ArrowRight") focusAt(cur + 1);
    else if (k === "ArrowLeft") focusAt(cur - 1);
    else if (k === "ArrowDown" && !overlayMode) focusAt(Math.min(view.length - 1, cur + columns()));
    else if (k === "ArrowUp" && !overlayMode) focusAt(Math.max(0, cur - columns()));
    else if (i === undefined) done = false;
    else if (k === "p" || k === "P") setDec(i, { p: decOf(i).p === 1 ? null : 1 });
    else if (k === "x" || k === "X") setDec(i, { p: decOf(i).p === -1 ? null : -1 });
    else if (/^[0-5]$/.test(k)) setDec(i, { r: Number(k) || null });
    else if (k === " " || k === "Enter") { if (overlayMode) closeOverlay(); else showLarge(i); }
    else if (k === "Escape") { if (overlayMode) closeOverlay(); else { mark = null; refreshAll(); } }
    else if (k === "c" || k === "C") {
      if (mark !== null && mark !== i) { var m = mark; mark = null; refreshCard(m); openCompare(m, i); }
      else { var old = mark; mark = mark === i ? null : i; if (old !== null) refreshCard(old); refreshCard(i); }
    } else done = false;
    if (done) ev.preventDefault();
    if (done && overlayMode === "large" && view[cur] !== undefined) showLarge(view[cur]);
  });
  function refreshAll() { Object.keys(cards).forEach(function (i) { refreshCard(Number(i)); }); }

  // --- toolbar ---
  var fsel = $("filter");
  (D.reasons || []).forEach(function (r) {
    var o = el("option", null, "reason: " + r); o.value = "reason:" + r; fsel.appendChild(o);
  });
  fsel.addEventListener("change", function () { cur = 0; render(); });
  $("sort").addEventListener("change", function () { cur = 0; render(); });
  $("export-rating").addEventListener("click", function () { exportCsv("rating"); });
  $("export-pick").addEventListener("click", function () { exportCsv("pick"); });
  $("clear").addEventListener("click", function () {
    if (window.confirm("Forget every decision saved for this album?")) { dec = {}; save(); render(); }
  });
  $("overlay").addEventListener("click", closeOverlay);
  render();
  window.iqcReview = { view: function () { return view.slice(); }, decisions: function () { return dec; } };
})();
