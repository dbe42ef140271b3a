// xp ui: live updates, hover read-outs, selection and cancel. Plain JavaScript, no build step.
"use strict";

const token = document.querySelector('meta[name="xp-token"]')?.content || "";
const FINAL = ["Completed", "Failed", "Canceled"];

function el(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function statusBadge(status) {
  return el("span", { class: "status s-" + status.toLowerCase(), "data-status": status }, status);
}

function shortNumber(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a < 1e-4 || a >= 1e6) return v.toExponential(2);
  return String(parseFloat(v.toFixed(4)));
}

function valueText(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return shortNumber(v);
  if (typeof v === "string") return v;
  const t = JSON.stringify(v);
  return t.length > 40 ? t.slice(0, 40) + "…" : t;
}

function durationText(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 60000) return (ms / 1000).toFixed(3) + "s";
  if (ms < 3600000) return Math.floor(ms / 60000) + "m" + String(Math.floor((ms % 60000) / 1000)).padStart(2, "0") + "s";
  return Math.floor(ms / 3600000) + "h" + String(Math.floor((ms % 3600000) / 60000)).padStart(2, "0") + "m";
}

// ---- charts: hover read-out and legend highlight -------------------------------------------

function chartFrame(svg) {
  const g = svg.querySelector("g.frame");
  const n = (k) => parseFloat(g.getAttribute("data-" + k));
  return { xmin: n("xmin"), xmax: n("xmax"), ymin: n("ymin"), ymax: n("ymax"),
           left: n("left"), top: n("top"), width: n("width"), height: n("height") };
}

function linePoints(line) {
  if (!line._points) {
    const text = line.getAttribute("points").trim();
    line._points = text ? text.split(" ").map((p) => p.split(",").map(Number)) : [];
  }
  return line._points;
}

function bindChart(figure) {
  const svg = figure.querySelector("svg.chart");
  const hover = figure.querySelector(".hover");
  if (!svg || !hover) return;
  const frame = chartFrame(svg);
  const cursor = svg.querySelector("line.cursor");
  const timeAxis = svg.getAttribute("data-x") === "time";
  svg.addEventListener("mousemove", (event) => {
    const box = svg.getBoundingClientRect();
    const px = (event.clientX - box.left) * (720 / box.width);
    if (px < frame.left || px > frame.left + frame.width) { hover.hidden = true; return; }
    const rows = [];
    let nearestX = null;
    for (const line of svg.querySelectorAll("polyline.series")) {
      const pts = linePoints(line);
      if (!pts.length) continue;
      let lo = 0, hi = pts.length - 1;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (pts[mid][0] < px) lo = mid + 1; else hi = mid; }
      if (lo > 0 && Math.abs(pts[lo - 1][0] - px) < Math.abs(pts[lo][0] - px)) lo -= 1;
      const [x, y] = pts[lo];
      if (Math.abs(x - px) > 24) continue;
      if (nearestX === null || Math.abs(x - px) < Math.abs(nearestX - px)) nearestX = x;
      const value = frame.ymax - (y - frame.top) / frame.height * (frame.ymax - frame.ymin);
      rows.push({ label: line.getAttribute("data-label"), color: line.getAttribute("stroke"), value });
    }
    if (!rows.length) { hover.hidden = true; return; }
    const xValue = frame.xmin + (nearestX - frame.left) / frame.width * (frame.xmax - frame.xmin);
    cursor.setAttribute("x1", nearestX); cursor.setAttribute("x2", nearestX);
    cursor.setAttribute("y1", frame.top); cursor.setAttribute("y2", frame.top + frame.height);
    hover.replaceChildren();
    hover.append(el("div", { class: "muted" },
      timeAxis ? new Date(xValue).toISOString().slice(11, 19) + " UTC" : "step " + Math.round(xValue)));
    rows.sort((a, b) => b.value - a.value);
    for (const row of rows.slice(0, 10)) {
      const line = el("div");
      const sw = el("span", { class: "swatch" }, "■");
      sw.style.color = row.color;
      line.append(sw, document.createTextNode(row.label + ": " + shortNumber(row.value)));
      hover.append(line);
    }
    if (rows.length > 10) hover.append(el("div", { class: "muted" }, "and " + (rows.length - 10) + " more"));
    hover.hidden = false;
    const figureBox = figure.getBoundingClientRect();
    let left = event.clientX - figureBox.left + 14;
    if (left + hover.offsetWidth > figureBox.width) left = event.clientX - figureBox.left - hover.offsetWidth - 14;
    hover.style.left = left + "px";
    hover.style.top = (event.clientY - figureBox.top + 12) + "px";
  });
  svg.addEventListener("mouseleave", () => { hover.hidden = true; cursor.setAttribute("y2", 0); cursor.setAttribute("y1", 0); });
  for (const item of figure.querySelectorAll("ul.legend li")) {
    item.addEventListener("mouseenter", () => {
      svg.classList.add("dim");
      for (const line of svg.querySelectorAll("polyline.series")) {
        line.classList.toggle("hot", line.getAttribute("data-label") === item.getAttribute("data-label"));
      }
    });
    item.addEventListener("mouseleave", () => svg.classList.remove("dim"));
  }
}

document.querySelectorAll("figure.chart-card").forEach(bindChart);

// ---- runs page: selection for compare, live rows --------------------------------------------

const runsTable = document.getElementById("runs");
if (runsTable) {
  const boxes = () => [...runsTable.querySelectorAll('tbody input[type="checkbox"]')];
  const button = document.getElementById("compare-button");
  const count = document.getElementById("selected-count");
  const refresh = () => {
    const chosen = boxes().filter((b) => b.checked);
    button.disabled = chosen.length < 2;
    count.textContent = chosen.length ? chosen.length + " selected" : "select two or more runs";
    for (const b of boxes()) b.closest("tr").classList.toggle("selected", b.checked);
  };
  runsTable.addEventListener("change", refresh);
  document.getElementById("select-all").addEventListener("change", (e) => {
    for (const b of boxes()) b.checked = e.target.checked;
    refresh();
  });
  document.getElementById("compare-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const ids = boxes().filter((b) => b.checked).map((b) => encodeURIComponent(b.value));
    window.location.href = "/compare?runs=" + ids.join(",");
  });
  refresh();

  async function updateLiveRows() {
    const live = [...runsTable.querySelectorAll('tbody tr[data-final="false"]')];
    if (!live.length) return;
    const numbers = live.map((r) => r.getAttribute("data-number")).join(",");
    try {
      const answer = await fetch("/api/runs?per_page=500&numbers=" + numbers, { headers: { Accept: "application/json" } });
      if (!answer.ok) return;
      const body = await answer.json();
      for (const run of body.runs) {
        const row = runsTable.querySelector('tbody tr[data-number="' + run.run_number + '"]');
        if (!row) continue;
        const cell = row.querySelector('td[data-col="status"]');
        if (cell.firstElementChild?.getAttribute("data-status") !== run.status) cell.replaceChildren(statusBadge(run.status));
        row.querySelector('td[data-col="duration"]').textContent = durationText(run.duration_ms);
        for (const metric of row.querySelectorAll("td[data-metric]")) {
          const value = run.metrics[metric.getAttribute("data-metric")];
          metric.textContent = valueText(value);
        }
        if (FINAL.includes(run.status)) row.setAttribute("data-final", "true");
      }
    } catch (_) { /* the server may be restarting; try again later */ }
  }
  setInterval(updateLiveRows, 2000);
}

// ---- runs page: runs added after the page loaded ---------------------------------------------

function utcText(ms) {
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

// A row as the server writes it (pages.rs, `runs`).
function runRow(run, metricNames) {
  const row = el("tr", { "data-number": run.run_number, "data-run": run.run_id,
    "data-final": FINAL.includes(run.status) ? "true" : "false", class: "fresh" });
  const check = el("td", { class: "check" });
  check.append(el("input", { type: "checkbox", name: "run", value: run.run_id }));
  const id = el("td", { class: "id" });
  id.append(el("a", { href: "/runs/" + encodeURIComponent(run.run_id) }, run.run_id));
  const status = el("td", { "data-col": "status" });
  status.append(statusBadge(run.status));
  const args = run.arguments.join(" ");
  row.append(check, el("td", { class: "num" }, String(run.run_number)), id, status, el("td", {}, run.target),
    el("td", { class: "mono" }, run.script), el("td", { class: "mono args", title: args }, args),
    el("td", { class: "time" }, utcText(run.started_ms ?? run.created_ms)),
    el("td", { class: "num", "data-col": "duration" }, durationText(run.duration_ms)));
  for (const name of metricNames) row.append(el("td", { class: "num", "data-metric": name }, valueText(run.metrics[name])));
  return row;
}

const runsLive = document.getElementById("runs-live");
if (runsLive) {
  let newest = Number(runsLive.getAttribute("data-newest"));
  let unseen = 0;
  const filters = runsLive.getAttribute("data-filters");
  const perPage = Number(runsLive.getAttribute("data-per-page"));
  const atTop = runsLive.getAttribute("data-live-new") === "true";
  const banner = document.getElementById("new-runs");
  const total = document.getElementById("total");
  async function addNewRuns() {
    try {
      const url = "/api/runs?per_page=" + perPage + "&after=" + newest + (filters ? "&" + filters : "");
      const answer = await fetch(url, { headers: { Accept: "application/json" } });
      if (!answer.ok) return;
      const body = await answer.json();
      if (!body.runs.length) return;
      newest = Math.max(newest, ...body.runs.map((r) => r.run_number));
      const table = document.getElementById("runs");
      if (atTop && table && body.total <= perPage) {
        const tbody = table.querySelector("tbody");
        const metricNames = JSON.parse(table.getAttribute("data-metrics") || "[]");
        for (const run of [...body.runs].reverse()) tbody.prepend(runRow(run, metricNames));
        while (tbody.rows.length > perPage) tbody.lastElementChild.remove();
        document.getElementById("runs-empty")?.remove();
        document.getElementById("compare-form").hidden = false;
        const count = Number(total.textContent.split(" ")[0]) + body.total;
        total.textContent = count + (count === 1 ? " run" : " runs");
        return;
      }
      // Another order or page: say so rather than move the rows under the reader.
      unseen += body.total;
      banner.replaceChildren(document.createTextNode(unseen + (unseen === 1 ? " new run" : " new runs") + " since this page loaded: "),
        el("a", { href: "/" + (filters ? "?" + filters : "") }, "show the newest"));
      banner.hidden = false;
    } catch (_) { /* the server may be restarting; try again later */ }
  }
  setInterval(addNewRuns, 2000);
}

// ---- run page: log, charts and status, live ---------------------------------------------------

const runBox = document.getElementById("run");
if (runBox) {
  const runId = runBox.getAttribute("data-run");
  const xAxis = runBox.getAttribute("data-x");
  const log = document.getElementById("log");
  const follow = document.getElementById("follow");
  const charts = document.getElementById("charts");
  const startedLive = runBox.getAttribute("data-final") === "false";
  const pending = new Map();

  async function reloadChart(name) {
    const url = "/runs/" + encodeURIComponent(runId) + "/chart?name=" + encodeURIComponent(name) + (xAxis === "time" ? "&x=time" : "");
    const answer = await fetch(url);
    if (!answer.ok) return;
    const holder = document.createElement("div");
    holder.innerHTML = await answer.text();
    const fresh = holder.firstElementChild;
    if (!fresh) return;
    const old = [...charts.querySelectorAll("figure.chart-card")].find((f) => f.getAttribute("data-series") === name);
    if (old) old.replaceWith(fresh); else { charts.append(fresh); document.getElementById("no-charts")?.remove(); }
    bindChart(fresh);
  }

  // At most one reload a second per chart, whatever the rate of points.
  function scheduleChart(name) {
    if (pending.has(name)) return;
    pending.set(name, setTimeout(() => { pending.delete(name); reloadChart(name); }, 700));
  }

  async function refreshSections() {
    const answer = await fetch(window.location.pathname + window.location.search);
    if (!answer.ok) return;
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    for (const id of ["record", "artifacts", "scalars"]) {
      const fresh = page.getElementById(id);
      const old = document.getElementById(id);
      if (fresh && old) old.replaceWith(fresh);
    }
  }

  // Follows the run from the log byte the page has; after a dropped connection it comes back
  // from where it was, so no line shows twice.
  let source = null;
  let ended = false;
  function connect() {
    source = new EventSource("/api/runs/" + encodeURIComponent(runId) + "/events?offset=" + log.getAttribute("data-offset"));
    source.addEventListener("log", (event) => {
      const chunk = JSON.parse(event.data);
      if (String(chunk.offset) !== log.getAttribute("data-offset")) return;
      log.append(document.createTextNode(chunk.text));
      log.setAttribute("data-offset", chunk.next_offset);
      if (follow.checked) log.scrollTop = log.scrollHeight;
    });
    source.addEventListener("metric", (event) => {
      const info = JSON.parse(event.data);
      const shown = [...charts.querySelectorAll("figure.chart-card")].find((f) => f.getAttribute("data-series") === info.name);
      if (shown ? shown.getAttribute("data-last-step") !== String(info.last_step) : info.last_step > 0) scheduleChart(info.name);
    });
    source.addEventListener("status", (event) => {
      const info = JSON.parse(event.data);
      document.getElementById("status").replaceChildren(statusBadge(info.status));
      if (FINAL.includes(info.status)) document.getElementById("cancel")?.remove();
    });
    source.addEventListener("end", () => {
      ended = true;
      source.close();
      if (startedLive) refreshSections();
    });
    source.addEventListener("failure", () => { ended = true; source.close(); });
    source.onerror = () => {
      source.close();
      if (!ended) setTimeout(connect, 2000);
    };
  }
  connect();
  if (follow.checked) log.scrollTop = log.scrollHeight;

  const cancel = document.getElementById("cancel");
  if (cancel) {
    cancel.addEventListener("click", async () => {
      if (!window.confirm("Cancel run " + runId + "? Its target ends what it started.")) return;
      cancel.disabled = true;
      cancel.textContent = "Cancelling…";
      const answer = await fetch("/api/runs/" + encodeURIComponent(runId) + "/cancel", {
        method: "POST", headers: { "X-XP-Token": token },
      });
      const body = await answer.json().catch(() => ({}));
      cancel.textContent = answer.ok ? "Run " + (body.status || "ended") : "Cancel failed: " + (body.error || answer.status);
    });
  }
}
