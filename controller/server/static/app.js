// The dashboard. It keeps no state of its own beyond what to show: it redraws from the controller's
// snapshot (GET api/v1/status), fetched again after events (debounced), and follows the selected
// node's log through api/v1/nodes/NODE/log. Retry and stop are POSTs; the cookie carries the token.
"use strict";

const PHASES = ["preflight", "media", "boot", "live", "inspect", "install", "collect", "finalize", "verify"];
const FINAL = new Set(["done", "failed", "stopped"]);
const $ = (id) => document.getElementById(id);
const view = { nodes: new Map(), order: [], steerable: false, selected: null, logAttempt: null, connected: false };

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

function seconds(s) {
  if (s == null || !isFinite(s)) return "";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(r).padStart(2, "0")}s` : `${r}s`;
}

function clock(t) {
  return t ? new Date(t * 1000).toLocaleTimeString([], { hour12: false }) : "";
}

const now = () => Date.now() / 1000;

// Each phase's measured duration: the mean over every node and attempt that finished it.
function phaseMeans(nodes) {
  const sums = {}, counts = {};
  for (const n of nodes) {
    for (const t of n.timeline || []) {
      if (t.seconds == null) continue;
      sums[t.phase] = (sums[t.phase] || 0) + t.seconds;
      counts[t.phase] = (counts[t.phase] || 0) + 1;
    }
  }
  const means = {};
  for (const p of Object.keys(sums)) means[p] = sums[p] / counts[p];
  return means;
}

// The nodes run side by side: the cluster is ready when its slowest unfinished node is. A phase
// nobody has finished yet has no measure, so there is no honest ETA until each has run once.
function eta(nodes) {
  const means = phaseMeans(nodes);
  let worst = 0;
  for (const n of nodes) {
    if (FINAL.has(n.state)) continue;
    const at = PHASES.indexOf(n.state);
    let left = 0;
    for (let i = Math.max(at, 0); i < PHASES.length; i++) {
      const mean = means[PHASES[i]];
      if (mean === undefined) {
        if (PHASES[i] === "inspect") continue; // only an inspect-only run or a first install measures it
        return null;
      }
      left += i === at && n.phase_started ? Math.max(0, mean - (now() - n.phase_started)) : mean;
    }
    worst = Math.max(worst, left);
  }
  return worst;
}

function summary() {
  const nodes = view.order.map((name) => view.nodes.get(name));
  const count = { done: 0, failed: 0, stopped: 0, running: 0, waiting: 0 };
  for (const n of nodes) {
    if (n.state === "pending") count.waiting++;
    else if (FINAL.has(n.state)) count[n.state]++;
    else count.running++;
  }
  const starts = nodes.map((n) => n.started).filter(Boolean);
  const allFinal = nodes.length && nodes.every((n) => FINAL.has(n.state) || (n.state === "pending" && !n.started));
  const ends = nodes.map((n) => n.finished).filter(Boolean);
  const end = allFinal && ends.length ? Math.max(...ends) : now();
  const elapsed = starts.length ? end - Math.min(...starts) : null;
  const parts = [`${count.done} done`, `${count.failed} failed`, `${count.running} running`, `${count.waiting} waiting`];
  if (count.stopped) parts.push(`${count.stopped} stopped`);
  parts.push(`elapsed ${elapsed == null ? "–" : seconds(elapsed)}`);
  if (count.running || count.waiting) {
    const left = eta(nodes);
    parts.push(left == null ? "ETA: measuring" : `ETA ${seconds(left)} (about ${clock(now() + left)})`);
  }
  $("summary").textContent = parts.join(" · ");
}

function cell(label, cls = "") {
  const td = el("td", { className: cls });
  td.dataset.label = label;  // the card layout's caption (app.css)
  return td;
}

function row(n) {
  let tr = $(`row-${n.node}`);
  if (!tr) {
    tr = el("tr", { id: `row-${n.node}`, className: "node" });
    tr.dataset.node = n.node;
    tr.append(cell("node"), cell("state", "state"), cell("attempt"), cell("progress"), cell("phase time"),
              cell("message", "message"), el("td", { className: "actions" }));
    tr.addEventListener("click", (e) => { if (e.target.tagName !== "BUTTON") select(n.node); });
    $("nodes").append(tr);
  }
  const c = tr.children;
  c[0].textContent = n.node;
  c[1].textContent = n.state + (FINAL.has(n.state) || n.state === "pending" ? "" : ` (${PHASES.indexOf(n.state) + 1}/${PHASES.length})`);
  c[1].className = `state ${n.state}`;
  tr.dataset.state = n.state;
  c[2].textContent = n.attempt || "";
  c[3].replaceChildren(el("progress", { max: 100, value: Number(n.percent) || 0 }));
  c[4].textContent = !FINAL.has(n.state) && n.phase_started ? seconds(now() - n.phase_started) : "";
  c[5].textContent = n.error || n.message;
  const actions = c[6];
  const retriable = view.steerable && (n.state === "failed" || n.state === "stopped");
  if (retriable && !actions.querySelector("button")) {
    const button = el("button", { type: "button", className: "retry", textContent: "Retry" });
    button.addEventListener("click", () => retry(n.node, button));
    actions.replaceChildren(button);
  } else if (!retriable) {
    actions.replaceChildren();
  }
  tr.classList.toggle("selected", view.selected === n.node);
}

function detail() {
  const n = view.nodes.get(view.selected);
  $("detail").hidden = !n;
  if (!n) return;
  $("d-node").textContent = n.node;
  $("d-state").textContent = n.state;
  $("d-state").className = `state ${n.state}`;
  $("d-attempt").textContent = n.attempt || "not started";
  $("d-disk").textContent = n.disk || "not chosen yet";
  $("d-error").textContent = n.error || "–";
  const attempt = view.logAttempt || n.attempt;
  $("d-logfile").textContent = attempt ? `logs/${n.node}.${attempt}.log (in the run directory)` : "–";
  const timeline = n.timeline || [];
  $("d-timeline").replaceChildren(...timeline.map((t, i) => el("tr", {},
    el("td", { textContent: t.attempt }), el("td", { textContent: t.phase }), el("td", { textContent: clock(t.start) }),
    el("td", { textContent: duration(n, t, timeline[i + 1]) }))));
  const picker = $("d-attempts");
  if (picker.options.length !== n.attempt) {
    picker.replaceChildren(...Array.from({ length: n.attempt }, (_, i) =>
      el("option", { value: i + 1, textContent: `attempt ${i + 1}` })));
    picker.value = view.logAttempt || n.attempt;
  }
}

// A finished phase has its measured seconds; the running one counts up. One that ended without its
// step: the node's last phase lasted until the node failed or stopped; an earlier attempt's last
// phase has no end the board kept (the retry began later), so it says only that it did not finish.
function duration(n, entry, next) {
  if (entry.seconds != null) return seconds(entry.seconds);
  if (!next && n.state === entry.phase && n.attempt === entry.attempt) return `running ${seconds(now() - entry.start)}`;
  if (!next && FINAL.has(n.state) && n.finished) return `${seconds(n.finished - entry.start)} (${n.state})`;
  return "did not finish";
}

async function loadLog() {
  const name = view.selected;
  if (!name) return;
  const attempt = view.logAttempt || view.nodes.get(name).attempt;
  const response = await fetch(`api/v1/nodes/${encodeURIComponent(name)}/log?tail=200` + (attempt ? `&attempt=${attempt}` : ""));
  if (!response.ok || view.selected !== name) return;
  const pre = $("d-log");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  pre.textContent = (await response.text()) || "(nothing logged yet)";
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function select(name) {
  view.selected = view.selected === name ? null : name;
  view.logAttempt = null;
  $("d-attempts").replaceChildren();
  $("d-log").textContent = "";
  draw();
  loadLog();
}

function draw() {
  for (const name of view.order) row(view.nodes.get(name));
  summary();
  detail();
  $("stop").hidden = !view.steerable;
  $("mode").hidden = view.steerable;
  $("mode").textContent = "read-only: a finished run, from its journal";
}

function take(status) {
  if (status.cluster !== undefined) $("cluster").textContent = status.cluster;
  if (status.steerable !== undefined) view.steerable = status.steerable;
  for (const n of status.nodes) {
    if (!view.nodes.has(n.node)) view.order.push(n.node);
    view.nodes.set(n.node, n);
  }
  draw();
}

function notice(text) {
  $("notice").hidden = !text;
  $("notice").textContent = text || "";
}

let pending = null;
function refresh() {  // at most a few status fetches a second, whatever the event rate
  if (pending) return;
  pending = setTimeout(async () => {
    pending = null;
    try {
      const response = await fetch("api/v1/status");
      if (response.ok) take(await response.json());
    } catch (err) { /* the stream's error handler says so */ }
  }, 300);
}

async function post(url) {
  const response = await fetch(url, { method: "POST" });
  let body = {};
  try { body = await response.json(); } catch (err) { /* not JSON */ }
  return { status: response.status, body };
}

async function retry(name, button) {
  button.disabled = true;
  const { status, body } = await post(`api/v1/nodes/${encodeURIComponent(name)}/retry`);
  notice(status === 202 ? `${name}: started over (attempt ${body.attempt})` : `${name}: not retried: ${body.reason || body.error || status}`);
  button.disabled = false;
  refresh();
}

$("stop").addEventListener("click", async () => {
  const button = $("stop");
  if (button.dataset.armed !== "1") {  // a second click confirms: no modal dialog
    button.dataset.armed = "1";
    button.textContent = "Click again to stop";
    setTimeout(() => { button.dataset.armed = ""; button.textContent = "Stop the run"; }, 5000);
    return;
  }
  button.dataset.armed = "";
  button.textContent = "Stop the run";
  const { status, body } = await post("api/v1/stop");
  notice(status === 202 ? "stopping: no new destructive step starts; running steps finish" : `not stopped: ${body.reason || status}`);
});

$("d-close").addEventListener("click", () => select(view.selected));
$("d-attempts").addEventListener("change", (e) => { view.logAttempt = Number(e.target.value); loadLog(); });

const stream = new EventSource("api/v1/events");
stream.addEventListener("snapshot", (e) => { view.connected = true; notice(""); take(JSON.parse(e.data)); refresh(); });
// An event folded in at once, as the board does (controller/node/events.py): the row moves without
// waiting for the next snapshot, and the run's last events show even when the controller is gone after.
function fold(event) {
  const n = view.nodes.get(event.node);
  if (!n) return;
  if (event.attempt) n.attempt = event.attempt;
  if (event.kind === "state" && event.state) {
    n.state = event.state;
    if (PHASES.includes(event.state)) {
      Object.assign(n, { phase: event.state, phase_started: event.time, error: "" });
      n.started = n.started || event.time;
      n.timeline = [...(n.timeline || []), { attempt: event.attempt, phase: event.state, start: event.time, seconds: null }];
    }
    n.finished = FINAL.has(event.state) ? event.time : null;
    if (event.state === "failed") n.error = event.message;
  } else if (event.kind === "step") {
    const entry = [...(n.timeline || [])].reverse().find((t) => t.phase === event.phase && t.seconds == null);
    if (entry) entry.seconds = Number(event.data.seconds) || 0;
  } else if (event.kind === "progress") {
    n.percent = Number(event.data.percent) || n.percent;
  }
  if (event.message && event.kind !== "run") n.message = event.message;
  draw();
}

stream.addEventListener("node", (e) => {
  const event = JSON.parse(e.data);
  fold(event);
  refresh();
  if (event.node && event.node === view.selected) loadLog();
});
stream.addEventListener("error", () => {
  if (view.connected) notice("lost the controller: the deploy may have ended (pvcctl serve shows a finished run); retrying…");
  view.connected = false;
});
setInterval(() => { if (view.order.length) { summary(); for (const n of view.nodes.values()) row(n); detail(); } }, 1000);
setInterval(loadLog, 3000);
refresh();
