// The operations dashboard: it reads the monitor's admin API (/api/v1)
// and draws cards, charts (plain SVG), the tasks with filters and a
// detail view with actions, workers (gone ones greyed), a per-type view
// and the live event feed. No library, no CDN.
"use strict";

const $ = id => document.getElementById(id);

// The bearer token, when the monitor has one: from #token=… once, then
// from this tab's session storage, or typed into the form a 401 shows.
let token = sessionStorage.getItem("ceylon-token") || "";
{
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem("ceylon-token", token);
    history.replaceState(null, "", location.pathname + location.search);
  }
}
$("token-form").addEventListener("submit", e => {
  e.preventDefault();
  token = $("token").value;
  sessionStorage.setItem("ceylon-token", token);
  $("token-form").hidden = true;
  refreshAll();
});

async function api(path, method = "GET") {
  const opts = {method, cache: "no-store", headers: {}};
  if (token) opts.headers["Authorization"] = "Bearer " + token;
  if (method !== "GET") {
    opts.headers["Content-Type"] = "application/json";
    opts.body = "{}";
  }
  const r = await fetch("api/v1/" + path, opts);
  if (r.status === 401) {
    $("token-form").hidden = false;
    throw new Error("this monitor needs its token");
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
  return body;
}

function showError(e) { $("error").textContent = e ? "cannot reach the manager: " + e.message : ""; }

// --- formatting --------------------------------------------------------

function fmtMs(ms) {
  if (ms === undefined || ms === null) return "–";
  if (ms < 1) return ms.toFixed(2) + " ms";
  if (ms < 1000) return ms.toFixed(ms < 10 ? 2 : 1) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(2) + " s";
  return (ms / 60000).toFixed(1) + " min";
}

function ago(iso) {
  if (!iso) return "–";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 1) return "now";
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return new Date(iso).toLocaleString();
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null || text === "" ? "–" : text;
  if (cls) td.className = cls;
  return td;
}

function row(cells, cls) {
  const tr = document.createElement("tr");
  if (cls) tr.className = cls;
  cells.forEach(c => tr.appendChild(c));
  return tr;
}

function progress(p, msg) { return Math.round(100 * (p || 0)) + " %" + (msg ? " · " + msg : ""); }

// --- stats: cards, running, types, replica ----------------------------

async function pollStats() {
  const s = await api("stats");
  const alive = (s.workers || []).filter(w => w.connected).length;
  const gone = (s.workers || []).length - alive;
  $("workers-alive").textContent = alive;
  $("workers-gone").textContent = gone ? gone + " gone" : "";
  $("pending").textContent = s.pending;
  $("inflight").textContent = s.in_flight;
  $("completed").textContent = s.succeeded;
  $("failed").textContent = s.failed;
  $("uptime").textContent = "· up " + Math.round(s.uptime_s) + " s";
  const rp = s.replica; // replicated managers only
  $("replica").textContent = !rp ? "" :
    rp.state === "Leader" ? "· leading, term " + rp.term :
    "· " + rp.state.toLowerCase() + (rp.leader ? " (the leader is …" + rp.leader.slice(-8) + ": its dashboard shows the workspace)" : ", no leader known");

  const now = Date.now();
  $("running").replaceChildren(...(s.running || []).map(t => row([
    cell(t.id), cell(t.type), cell(t.worker), cell(t.attempt, "num"),
    cell(((now - Date.parse(t.assigned_at)) / 1000).toFixed(1) + " s", "num"),
    cell(progress(t.progress, t.progress_message)),
  ])));

  $("types").replaceChildren(...(s.types || []).map(t => {
    const tr = row([cell(t.type + (t.paused ? " (paused)" : "")), cell(t.waiting, "num"), cell(t.running, "num"),
      cell(t.completed, "num"), cell(t.failed, "num"), cell(t.cancelled, "num")], t.paused ? "off" : "");
    tr.dataset.type = t.type;
    return tr;
  }));
}

// --- series: charts and the rate cards ---------------------------------

let samples = [];

async function pollSeries() {
  const since = samples.length ? "?since=" + encodeURIComponent(samples[samples.length - 1].time) : "";
  const got = await api("series" + since);
  const lastTime = samples.length ? samples[samples.length - 1].time : "";
  for (const smp of got || []) {
    if (smp.time > lastTime) samples.push(smp);
  }
  if (samples.length > 900) samples = samples.slice(-900);
  const recent = samples.slice(-10);
  if (recent.length) {
    const rate = recent.reduce((a, s) => a + s.throughput, 0) / recent.length;
    $("rate").textContent = rate.toFixed(1) + "/s";
    const last = samples[samples.length - 1];
    $("exec").textContent = fmtMs(last.exec_p50_ms);
    $("exec-tail").textContent = "p50 · p99 " + fmtMs(last.exec_p99_ms);
    $("latency").textContent = fmtMs(last.latency_p50_ms);
    $("latency-tail").textContent = "p50 · p99 " + fmtMs(last.latency_p99_ms);
  }
  chart($("chart-throughput"), samples, [["throughput", "c1"], ["failure_rate", "c2"]], v => v.toFixed(1) + "/s");
  chart($("chart-queue"), samples, [["pending", "c1"], ["in_flight", "c3"]], v => Math.round(v));
  chart($("chart-latency"), samples, [["exec_p50_ms", "c1"], ["exec_p99_ms", "c4"], ["latency_p99_ms", "c2"]], fmtMs);
}

const SVG = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const k in attrs) el.setAttribute(k, attrs[k]);
  if (text !== undefined) el.textContent = text;
  return el;
}

// chart draws lines of the samples' keys over time, on a shared scale.
function chart(svg, data, lines, fmt) {
  const W = 420, H = 140, L = 46, R = 6, T = 8, B = 18;
  const els = [svgEl("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis"}),
               svgEl("line", {x1: L, y1: T, x2: L, y2: H - B, class: "axis"})];
  if (data.length < 2) {
    els.push(svgEl("text", {x: L + 8, y: H / 2}, "waiting for samples…"));
    svg.replaceChildren(...els);
    return;
  }
  const t0 = Date.parse(data[0].time), t1 = Date.parse(data[data.length - 1].time);
  let max = 0;
  for (const s of data) for (const [k] of lines) max = Math.max(max, s[k] || 0);
  if (max === 0) max = 1;
  const x = t => L + (W - L - R) * (t - t0) / Math.max(1, t1 - t0);
  const y = v => H - B - (H - B - T) * (v || 0) / max;
  for (const [k, cls] of lines) {
    const pts = data.map(s => x(Date.parse(s.time)).toFixed(1) + "," + y(s[k]).toFixed(1)).join(" ");
    els.push(svgEl("polyline", {points: pts, class: cls}));
  }
  els.push(svgEl("text", {x: 2, y: T + 8}, fmt(max)));
  els.push(svgEl("text", {x: 2, y: H - B}, "0"));
  els.push(svgEl("text", {x: L, y: H - 4}, new Date(t0).toLocaleTimeString()));
  els.push(svgEl("text", {x: W - R - 52, y: H - 4}, new Date(t1).toLocaleTimeString()));
  svg.replaceChildren(...els);
}

// --- tasks: filters, pages, detail, actions ----------------------------

const pages = {cursors: [""], at: 0}; // the cursor of each page seen
let selected = "";

function filterQuery() {
  const q = new URLSearchParams();
  for (const [k, id] of [["status", "f-status"], ["type", "f-type"], ["worker", "f-worker"], ["id", "f-id"]]) {
    const v = $(id).value.trim();
    if (v) q.set(k, v);
  }
  q.set("limit", "25");
  if (pages.cursors[pages.at]) q.set("cursor", pages.cursors[pages.at]);
  return q.toString();
}

async function pollTasks() {
  const p = await api("tasks?" + filterQuery());
  const shown = (p.tasks || []).length;
  $("tasks-count").textContent = p.total ? (pages.at * 25 + 1) + "–" + (pages.at * 25 + shown) + " of " + p.total : "no task matches";
  pages.cursors[pages.at + 1] = p.next || "";
  $("page-next").disabled = !p.next;
  $("page-prev").disabled = pages.at === 0;
  $("tasks").replaceChildren(...(p.tasks || []).map(t => {
    const running = t.status === "running" || t.status === "assigned";
    const tr = row([
      cell(t.id), cell(t.type), cell(t.status), cell(t.attempt, "num"), cell(t.worker),
      cell(ago(t.submitted_at)), cell(t.started_at ? fmtMs(t.wait_ms) : "", "num"), cell(t.finished_at ? fmtMs(t.run_ms) : "", "num"),
      cell(running ? progress(t.progress, t.progress_message) : t.error, "err"),
    ], (t.status === "failed" || t.status === "cancelled" ? t.status : "") + (t.id === selected ? " selected" : ""));
    tr.dataset.task = t.id;
    tr.dataset.status = t.status;
    tr.title = t.error || "";
    tr.addEventListener("click", () => openDetail(t.id));
    return tr;
  }));
}

$("filters").addEventListener("submit", e => {
  e.preventDefault();
  pages.cursors = [""];
  pages.at = 0;
  pollTasks().catch(showError);
});
$("page-next").addEventListener("click", () => { pages.at++; pollTasks().catch(showError); });
$("page-prev").addEventListener("click", () => { pages.at = Math.max(0, pages.at - 1); pollTasks().catch(showError); });

async function openDetail(id) {
  selected = id;
  $("act-result").textContent = "";
  await pollDetail();
}

$("d-close").addEventListener("click", () => { selected = ""; $("detail").hidden = true; });

async function pollDetail() {
  if (!selected) return;
  let d;
  try {
    d = await api("tasks/" + encodeURIComponent(selected));
  } catch (e) {
    $("d-fields").replaceChildren();
    $("d-attempts").replaceChildren();
    $("act-result").textContent = e.message;
    return;
  }
  $("detail").hidden = false;
  $("detail").dataset.status = d.status;
  $("d-id").textContent = d.id;
  const fields = [
    ["status", d.status + (d.status === "running" ? " · " + progress(d.progress, d.progress_message) : "")],
    ["type", d.type], ["name", d.name], ["description", d.description],
    ["submitted", new Date(d.submitted_at).toLocaleString()],
    ["finished", d.finished_at ? new Date(d.finished_at).toLocaleString() + " (wait " + fmtMs(d.wait_ms) + ", run " + fmtMs(d.run_ms) + ", total " + fmtMs(d.total_ms) + ")" : ""],
    ["input", d.input_bytes + " bytes"], ["output", d.output_bytes ? d.output_bytes + " bytes" : ""],
    ["dependencies", (d.dependencies || []).join(", ")], ["capabilities", (d.capabilities || []).join(", ")],
    ["retries", d.retries + " of " + d.max_retries + ", " + d.lost + " lost"],
    ["error", d.result_message],
  ];
  $("d-fields").replaceChildren(...fields.filter(f => f[1]).flatMap(([k, v]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
  $("d-attempts").replaceChildren(...(d.attempts || []).map(a => row([
    cell(a.attempt, "num"), cell(a.worker), cell(new Date(a.assigned_at).toLocaleTimeString()),
    cell(a.ended_at ? fmtMs(a.duration_ms) : "running", "num"), cell(a.outcome || "running"),
  ], a.outcome && a.outcome !== "ok" ? "failed" : "")));
  const final = d.status === "completed" || d.status === "failed" || d.status === "cancelled";
  $("act-cancel").disabled = final;
  $("act-retry").disabled = !(d.status === "failed" || d.status === "cancelled");
  $("act-delete").disabled = !final;
}

for (const [button, path, method, done] of [
  ["act-cancel", "/cancel", "POST", "cancelled"],
  ["act-retry", "/retry", "POST", "requeued"],
  ["act-delete", "", "DELETE", "deleted"],
]) {
  $(button).addEventListener("click", async () => {
    const id = selected;
    try {
      await api("tasks/" + encodeURIComponent(id) + path, method);
      $("act-result").textContent = id + " " + done;
      $("act-result").dataset.done = done;
    } catch (e) {
      $("act-result").textContent = e.message;
    }
    if (method === "DELETE") {
      selected = "";
      $("detail").hidden = true;
    }
    await Promise.all([pollDetail(), pollTasks()]).catch(showError);
  });
}

// --- workers ------------------------------------------------------------

async function pollWorkers() {
  const ws = await api("workers");
  $("workers").replaceChildren(...(ws || []).map(w => {
    const dots = document.createElement("td");
    dots.className = "dots";
    for (const a of (w.recent || []).slice(0, 10)) {
      const d = document.createElement("span");
      if (a.outcome !== "ok") d.className = "bad";
      d.title = a.task_id + ": " + a.outcome + " (" + fmtMs(a.run_ms) + ")";
      dots.appendChild(d);
    }
    const state = w.connected ? "connected" + (w.reach && w.reach !== "direct" ? " (" + w.reach + ")" : "") :
      "gone" + (w.left_at ? " " + ago(w.left_at) : "");
    const tr = row([
      cell(w.name), cell(state), cell(w.skill, "num"), cell((w.capabilities || []).join(", ")),
      cell(w.in_flight + "/" + w.capacity, "num"), cell(w.results, "num"),
      cell((100 * w.success_rate).toFixed(0) + "%", "num"), cell(fmtMs(w.avg_time_ms), "num"), dots, cell(ago(w.last_seen)),
    ], w.connected ? "" : "off");
    tr.dataset.worker = w.name;
    tr.dataset.connected = w.connected;
    return tr;
  }));
}

// --- events: a long poll -------------------------------------------------

async function followEvents() {
  let after = 0, feed = "";
  try {
    const first = await api("events?limit=1");
    after = Math.max(0, first.last - 30);
    feed = first.feed;
  } catch (e) {
    showError(e);
  }
  for (;;) {
    try {
      const p = await api("events?wait=10s&after=" + after + "&feed=" + encodeURIComponent(feed));
      const list = $("events");
      for (const e of p.events || []) {
        const li = document.createElement("li");
        li.className = e.type;
        li.textContent = new Date(e.time).toLocaleTimeString() + " " + e.type + " " + e.task_id +
          (e.attempt ? " #" + e.attempt : "") + (e.worker ? " on " + e.worker : "") +
          (e.type === "progress" ? " " + progress(e.progress, e.message) : e.error ? ": " + e.error : "");
        list.prepend(li);
      }
      while (list.children.length > 200) list.lastChild.remove();
      after = p.next;
      feed = p.feed;
    } catch (e) {
      showError(e);
      await new Promise(r => setTimeout(r, 2000));
    }
  }
}

// --- the loops ------------------------------------------------------------

async function refreshAll() {
  try {
    await Promise.all([pollStats(), pollSeries(), pollTasks(), pollWorkers(), pollDetail()]);
    showError(null);
  } catch (e) {
    showError(e);
  }
}

function every(ms, fn) {
  const loop = async () => {
    try {
      await fn();
      showError(null);
    } catch (e) {
      showError(e);
    }
    setTimeout(loop, ms);
  };
  loop();
}

every(1000, pollStats);
every(2000, pollSeries);
every(2000, pollTasks);
every(2000, pollWorkers);
every(2000, pollDetail);
followEvents();
