// The dashboard's page: reads /api/info, /api/status (what `mlops status --json` prints) and /api/events (the
// delivery timeline), refreshes on /api/stream's server-sent events, and posts the override buttons' actions.
// Every piece of data reaches the page as text nodes or SVG attributes: nothing is parsed as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#2f6fdf", "#d9822b", "#2e9e5b", "#a64ccf", "#d64545", "#1b9aaa", "#8c6d31", "#e377c2"];
const state = { info: null, status: null, model: null, events: null, filters: { type: "", function: "", outcome: "", since: "", ticks: false } };

// ---- building elements -------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function table(el, headers, rows) {
  fill(el, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))), h("tbody", {}, rows));
  return el;
}

const $ = (id) => document.getElementById(id);
const fmt = (v, digits = 3) => (typeof v === "number" && isFinite(v) ? v.toFixed(digits) : "-");
const hhmmss = (t) => (t ? String(t).slice(11, 19) : "-");
const day = (t) => (t ? String(t).slice(0, 10) : "");
const pill = (text, kind) => h("span", { class: `pill ${kind || tone(text)}` }, text || "-");
const title = (text) => s("title", {}, text);

function tone(text) {
  const t = String(text || "").toLowerCase();
  if (/(fail|reject|rolled|dead|error|fired|needs a person|canceled)/.test(t)) return "bad";
  if (/(held|await|pending|paused|canary|deploying|running|queued|submitted|mirror|cooldown|warn)/.test(t)) return "warn";
  if (/(complete|succeed|registered|promoted|live|delivered|pass|approved|resolved|ok|shared|deployed)/.test(t)) return "good";
  return "neutral";
}

// a data URL or blob path, short: the part after the container ("data/loans/2026-11-01/" → "loans/2026-11-01/")
function shortData(url) {
  if (!url) return "-";
  const text = String(url).replace(/^https?:\/\/[^/]+\/(devstoreaccount1\/)?/, "");
  return text.length > 48 ? "…" + text.slice(-47) : text;
}

// ---- talking to the server ---------------------------------------------------------------------------

async function api(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...(options || {}) });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (response.status === 401) {
    showError("wrong key: open the URL `mlops dashboard` printed (with its ?key=)");
    throw new Error("401");
  }
  return { ok: response.ok, status: response.status, body };
}

function showError(text) {
  const el = $("error");
  el.hidden = !text;
  fill(el, text || "");
}

function showMessage(text, kind) {
  const el = $("message");
  el.className = `note ${kind || ""}`;
  el.hidden = false;
  fill(el, text);
}

async function loadInfo() {
  const { ok, body } = await api("/api/info");
  if (!ok) return;
  state.info = body;
  const source = $("source");
  const note = $("snapshot-note");
  if (body.running) {
    source.className = "badge good";
    fill(source, "live stack");
    source.title = `started ${body.started_at || "?"} · ${body.home}`;
    note.hidden = true;
  } else {
    source.className = "badge warn";
    fill(source, body.snapshot ? "snapshot (stack stopped)" : "no stack");
    note.hidden = false;
    fill(note, body.snapshot
      ? `The stack at ${body.home} is not running: this is the snapshot it left when it stopped, written ${body.written_at || "at an unknown time"}. Read-only: the buttons need the stack (mlops up).`
      : `No stack is running at ${body.home} and it left no snapshot. Start one with mlops up.`);
  }
}

async function loadStatus() {
  const mine = ++latest.status;
  try {
    await loadInfo();
    const { ok, body } = await api("/api/status");
    if (mine !== latest.status) return;
    if (!ok) {
      showError(body && body.error ? body.error : "could not read the status");
      return;
    }
    showError("");
    state.status = body;
    render();
  } catch (e) {
    if (e.message !== "401") showError(`could not reach the dashboard: ${e.message}`);
  }
}

// Answers can arrive out of order (a stream event while a load is under way): only the latest request's is shown.
const latest = { status: 0, events: 0 };

async function loadEvents() {
  const mine = ++latest.events;
  const f = state.filters;
  const query = new URLSearchParams({ type: f.type, function: f.function, outcome: f.outcome, since: f.since, ticks: f.ticks ? "1" : "0", limit: "300" });
  try {
    const { ok, body } = await api(`/api/events?${query}`);
    if (mine !== latest.events) return;
    if (!ok) {
      fill($("timeline-count"), body && body.error ? body.error : "could not read the timeline");
      return;
    }
    state.events = body;
    renderTimeline();
  } catch (e) { /* shown by api() */ }
}

async function act(path, what) {
  if (state.info && !state.info.running) {
    showMessage("the stack is not running: the snapshot is read-only", "bad");
    return;
  }
  try {
    const { ok, body } = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    if (ok) {
      const r = body.result || {};
      const detail = r.phase ? `${r.model} on ${r.colour} is now ${r.phase}${r.paused ? " (paused)" : ""}` : r.status || r.outcome || "done";
      showMessage(`${what}: ${detail}`, "good");
    } else {
      showMessage(`${what}: ${body && body.error ? body.error : "failed (" + (body && body.status) + ")"}`, "bad");
    }
  } catch (e) { /* shown by api() */ }
  loadStatus();
}

// ---- the page ----------------------------------------------------------------------------------------

function models() {
  const status = state.status || {};
  return status.app_models || (status.model_name ? [status] : []);
}

function render() {
  const all = models();
  if (!all.some((m) => m.model_name === state.model)) state.model = all.length ? all[0].model_name : null;
  const tabs = $("models");
  tabs.hidden = all.length < 2;
  fill(tabs, all.map((m) => h("button", {
    type: "button", class: m.model_name === state.model ? "tab active" : "tab", "data-testid": "model-tab",
    "aria-pressed": m.model_name === state.model ? "true" : "false",
    onclick: () => { state.model = m.model_name; render(); },
  }, m.model_name, h("span", { class: "dim" }, ` ${m.task}`))));
  const model = all.find((m) => m.model_name === state.model);
  $("model").hidden = !model;
  if (model) renderModel(model);
  renderRejections(state.status.rejections || []);
  renderNotNotified(state.status.notification_dead_letters || []);
}

function renderModel(m) {
  fill($("model-title"), m.model_name, h("span", { class: "dim" }, ` ${m.task}`),
    m.stage ? h("span", { class: "pill neutral" }, m.stage) : null);
  fill($("model-about"), `trained by ${m.training} on ${m.data_root} (window: ${m.training_window})`,
    m.registry ? ` · registry ${m.registry}` : "");
  renderLineage(m);
  renderVersions(m);
  renderEndpoints(m);
  renderRollout(m);
  renderJobs(m);
  renderCompute(m);
  renderPromotions(m);
  renderMonitoring(m);
}

// ---- lineage: data → job → version → deployment → environment, in SVG --------------------------------

// a job's name without what every job of the model shares ("train-tabular-classifier-data-25e3…" → "data-25e3…")
function jobLabel(name, model) {
  const prefix = `train-${model}-`;
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

function lineageGraph(m) {
  const columns = [[], [], [], [], []];
  const nodes = new Map();
  const edges = [];
  const node = (col, id, label, sub, kind, full) => {
    if (!nodes.has(id)) {
      const n = { col, id, label, sub, kind, full: full || label };
      nodes.set(id, n);
      columns[col].push(n);
    }
    return nodes.get(id);
  };
  const edge = (a, b, label) => { if (a && b && !edges.some((e) => e.a === a && e.b === b)) edges.push({ a, b, label }); };
  const prefix = `${m.model_name}:`;
  const jobs = (m.jobs || []).slice(-6);
  const versions = (m.models || []).slice(-6);
  const shownJobs = new Set(jobs.map((j) => j.name));
  for (const v of versions) if (v.tags && v.tags["mlops.job"]) shownJobs.add(v.tags["mlops.job"]);
  const byJob = new Map((m.jobs || []).map((j) => [j.name, j]));
  for (const name of shownJobs) {
    const j = byJob.get(name) || { name, data: null, status: null, decision: null };
    const versionTag = versions.find((v) => v.tags && v.tags["mlops.job"] === name);
    const data = j.data || (versionTag && versionTag.tags["mlops.data"]);
    const d = data ? node(0, `data:${data}`, shortData(data), null, "data", data) : null;
    const outcome = j.decision ? j.decision.outcome : j.status;
    const jn = node(1, `job:${name}`, jobLabel(name, m.model_name), outcome || "", tone(outcome), name);
    edge(d, jn);
    if (j.decision && j.decision.version) edge(jn, node(2, `version:${j.decision.version}`, `v${j.decision.version}`, "", "good"));
  }
  for (const v of versions) {
    const metric = Object.entries(v.metrics || {})[0];
    const vn = node(2, `version:${v.version}`, `v${v.version}`, metric ? `${metric[0]} ${fmt(metric[1])}` : "", "good",
      `${m.model_name}:${v.version}`);
    vn.sub = metric ? `${metric[0]} ${fmt(metric[1])}` : vn.sub;
    if (v.tags && v.tags["mlops.job"]) edge(nodes.get(`job:${v.tags["mlops.job"]}`), vn);
  }
  for (const e of m.endpoints || []) {
    const env = node(4, `env:${e.name}`, m.stage || "local", e.name, "neutral", `${m.stage || "local"} endpoint ${e.name}`);
    for (const d of e.deployments || []) {
      const dn = node(3, `dep:${d.name}`, d.name, `${d.traffic || 0}% · ${d.state}`, tone(d.state), `${d.name}: ${d.model}`);
      const version = d.model.startsWith(prefix) ? d.model.slice(prefix.length) : null;
      if (version) edge(node(2, `version:${version}`, `v${version}`, "", "good"), dn);
      edge(dn, env, `${d.traffic || 0}%`);
    }
  }
  for (const chain of m.lineage || []) {       // in production: the registry's version back to preprod's job and data
    if (!chain.registry) continue;
    const d = chain.data ? node(0, `data:${chain.data}`, shortData(chain.data), null, "data", chain.data) : null;
    const jn = chain.job ? node(1, `job:${chain.job}`, jobLabel(chain.job, m.model_name), "preprod job", "neutral", chain.job) : null;
    const version = chain.model.startsWith(prefix) ? chain.model.slice(prefix.length) : chain.model;
    const vn = node(2, `version:${version}`, `v${version}`, `registry ${chain.registry}`, "good", chain.model);
    edge(d, jn);
    edge(jn, vn);
  }
  return { columns, edges };
}

function renderLineage(m) {
  const { columns, edges } = lineageGraph(m);
  const host = $("lineage-graph");
  const rows = Math.max(1, ...columns.map((c) => c.length));
  if (!columns.some((c) => c.length)) {
    fill(host, h("p", { class: "dim" }, "no model registered yet"));
    return;
  }
  const W = 180, GAP = 46, NH = 40, VG = 14, TOP = 24;
  const width = columns.length * W + (columns.length - 1) * GAP + 8;
  const height = TOP + rows * (NH + VG) + 4;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "graph", role: "img", "aria-label": "lineage graph", "data-testid": "lineage-graph" });
  const names = ["data", "job", "version", "deployment", "environment"];
  names.forEach((name, i) => svg.append(s("text", { x: 4 + i * (W + GAP), y: 14, class: "axis" }, name)));
  const at = new Map();
  columns.forEach((col, i) => col.forEach((n, j) => at.set(n, { x: 4 + i * (W + GAP), y: TOP + j * (NH + VG) })));
  for (const e of edges) {
    const a = at.get(e.a), b = at.get(e.b);
    const x1 = a.x + W, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2, mx = (x1 + x2) / 2;
    svg.append(s("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: "edge" }));
    if (e.label) svg.append(s("text", { x: mx, y: (y1 + y2) / 2 - 3, class: "edge-label", "text-anchor": "middle" }, e.label));
  }
  for (const [n, p] of at) {
    svg.append(s("g", { class: `node ${n.kind}`, "data-testid": "lineage-node", "data-node": n.id, transform: `translate(${p.x},${p.y})` },
      title(n.full),
      s("rect", { width: W, height: NH, rx: 6 }),
      s("text", { x: 8, y: 16, class: "label" }, n.label.length > 27 ? n.label.slice(0, 26) + "…" : n.label),
      n.sub ? s("text", { x: 8, y: 32, class: "sub" }, String(n.sub).slice(0, 30)) : null));
  }
  fill(host, svg);
}

function renderVersions(m) {
  table($("versions"), ["version", "metrics", "job", "trigger", "data", "created"], (m.models || []).slice().reverse().map((v) =>
    h("tr", { "data-testid": "version-row" },
      h("td", {}, `v${v.version}`),
      h("td", {}, Object.entries(v.metrics || {}).map(([k, x]) => `${k} ${fmt(x)}`).join("  ") || "-"),
      h("td", { class: "mono", title: v.tags["mlops.job"] || "" }, v.tags["mlops.job"] || "-"),
      h("td", {}, v.tags["mlops.trigger"] || "-"),
      h("td", { class: "mono", title: v.tags["mlops.data"] || "" }, shortData(v.tags["mlops.data"])),
      h("td", {}, `${day(v.created)} ${hhmmss(v.created)}`))));
}

// ---- endpoint traffic and the rollout ----------------------------------------------------------------

function renderEndpoints(m) {
  const host = $("endpoints");
  if (!(m.endpoints || []).length) {
    fill(host, h("p", { class: "dim" }, "no endpoint yet"));
    return;
  }
  fill(host, m.endpoints.map((e) => {
    const live = (e.deployments || []).filter((d) => d.traffic > 0 || (e.mirror_traffic || {})[d.name]);
    const bar = h("div", { class: "bar", "data-testid": "traffic-bar", role: "img", "aria-label": `traffic of ${e.name}` },
      (e.deployments || []).filter((d) => d.traffic > 0).map((d, i) => h("div", {
        class: "segment", "data-testid": "traffic-segment", "data-deployment": d.name, "data-traffic": d.traffic,
        style: null, title: `${d.name}: ${d.model}, ${d.traffic}%`,
      }, `${d.name} ${d.traffic}%`)));
    // widths and colours through the CSSOM: the page's policy allows no inline style attribute
    Array.from(bar.children).forEach((seg, i) => {
      seg.style.width = `${seg.dataset.traffic}%`;
      seg.style.background = COLOURS[i % COLOURS.length];
    });
    return h("div", { class: "endpoint", "data-testid": "endpoint", "data-endpoint": e.name },
      h("div", {}, h("strong", {}, e.name), " ", h("span", { class: "dim mono" }, e.scoring_uri)),
      bar,
      h("ul", { class: "deployments" }, (e.deployments || []).map((d) => h("li", {},
        pill(d.state), " ", h("strong", {}, d.name), ` ${d.model} · ${d.traffic}%`,
        (e.mirror_traffic || {})[d.name] ? ` (+${e.mirror_traffic[d.name]}% mirrored)` : "",
        d.error ? h("div", { class: "bad-text" }, d.error) : null))),
      live.length ? null : h("p", { class: "dim" }, "no traffic yet"));
  }));
}

function renderRollout(m) {
  const host = $("rollout-body");
  const r = m.rollout;
  if (!r) {
    fill(host, h("p", { class: "dim" }, "no rollout yet"));
    return;
  }
  const running = !!(state.info && state.info.running);
  const endpoint = encodeURIComponent(r.endpoint);
  const button = (action, label, enabled) => h("button", {
    type: "button", class: `action ${action}`, "data-testid": `rollout-${action}`, disabled: !enabled || !running,
    title: running ? `mlops rollout ${action} ${r.endpoint}` : "the stack is not running",
    onclick: () => act(`/api/rollouts/${endpoint}/${action}`, `${label} ${r.endpoint}`),
  }, label);
  const checks = ((r.judgement || {}).checks || []);
  fill(host,
    h("div", { class: "phase" }, "rollout ", h("strong", {}, r.model), ` on ${r.colour} beside ${r.baseline || "-"} (${r.baseline_model || "first model"}) `,
      h("span", { "data-testid": "rollout-phase", class: `pill ${tone(r.phase)}` }, r.phase),
      r.paused ? h("span", { "data-testid": "rollout-paused", class: "pill warn" }, "paused") : null,
      r.step >= 0 && r.phase === "canary" ? h("span", { class: "dim" }, ` step ${r.step + 1}`) : null),
    h("div", { class: "dim" }, `live: ${r.live_model || "-"}`, r.reason ? ` · ${r.reason}` : ""),
    h("div", { class: "buttons", "data-testid": "rollout-buttons" },
      button("pause", "pause", r.active && !r.paused),
      button("resume", "resume", r.active && r.paused),
      button("promote", "promote", r.active),
      button("rollback", "roll back", r.active)),
    checks.length ? h("div", {}, h("h4", {}, "the judge's evidence", (r.judgement || {}).outcome ? ` · ${r.judgement.outcome}` : ""),
      (r.judgement || {}).summary ? h("p", { class: "dim" }, r.judgement.summary) : null,
      h("ul", { class: "checks", "data-testid": "rollout-checks" }, checks.map((c) => h("li", {},
        pill(c.outcome), " ", h("strong", {}, c.name || c.check || ""), " ", c.detail || "")))) : null,
    h("h4", {}, "steps"),
    h("ol", { class: "history", "data-testid": "rollout-history" }, (r.history || []).slice(-10).map((e) => h("li", {},
      h("span", { class: "dim mono" }, hhmmss(e.time)), " ", pill(e.phase), " ", e.note || ""))),
    (m.rollouts || []).length ? h("div", {}, h("h4", {}, "earlier rollouts"),
      h("ul", { class: "plain" }, m.rollouts.slice(-5).reverse().map((x) => h("li", {},
        pill(x.outcome), ` ${x.model} · ${hhmmss(x.finished_at)} · ${x.reason || ""}`)))) : null);
}

function renderJobs(m) {
  const running = !!(state.info && state.info.running);
  const none = m.stage === "prod" ? "no training job here: production deploys what preprod promotes" : "no training job yet";
  if (!(m.jobs || []).length) {
    table($("jobs-table"), ["job", "status", "trigger", "decision", "why"], [h("tr", {}, h("td", { colspan: 5, class: "dim" }, none))]);
    return;
  }
  const currency = (m.compute || {}).currency;
  const computed = new Map(((m.compute || {}).jobs || []).map((c) => [c.name, c]));
  table($("jobs-table"), ["job", "status", "trigger", "decision", "why"], (m.jobs || []).slice().reverse().map((j) => {
    const d = j.decision || {};
    let decision = d.outcome ? pill(d.outcome === "registered" ? `registered v${d.version}` : d.outcome) : "-";
    if (d.outcome === "held") {
      const job = encodeURIComponent(j.name);
      decision = h("div", {}, pill("held for a person", "warn"), h("div", { class: "buttons" },
        h("button", { type: "button", class: "action promote", "data-testid": "job-approve", disabled: !running,
          onclick: () => act(`/api/jobs/${job}/approve`, `approve ${j.name}`) }, "approve"),
        h("button", { type: "button", class: "action rollback", "data-testid": "job-reject", disabled: !running,
          onclick: () => act(`/api/jobs/${job}/reject`, `reject ${j.name}`) }, "reject")));
    } else if (d.reviewed_by) {
      decision = h("div", {}, decision, h("div", { class: "dim" }, `by ${d.reviewed_by}`));
    }
    const why = j.error || (d.reasons || []).join("; ") || "-";
    return h("tr", { "data-testid": "job-row" },
      h("td", { class: "mono", title: j.name }, j.name, h("div", { class: "dim" }, shortData(j.data), j.files ? ` · ${j.files} file(s), ${j.new_batches} new` : ""),
        jobCompute(computed.get(j.name), currency)),
      h("td", {}, pill(j.status)), h("td", {}, j.trigger), h("td", {}, decision), h("td", { class: "why" }, why));
  }));
}

// ---- training compute: what each job took, the totals and a month's estimate, the cluster's advice ----------
// (the same sentences as `mlops status` and the report: monitoring/compute_report.py)

const finite = (v) => typeof v === "number" && isFinite(v);
const SETTINGS = { min_nodes: "min nodes", max_nodes: "max nodes", idle_seconds: "idle seconds", vm_size: "VM size" };

function duration(seconds) {
  if (!finite(seconds)) return "-";
  const t = Math.round(seconds);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, "0")}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, "0")}m`;
}

function memory(bytes) {
  if (!finite(bytes)) return "-";
  const mib = bytes / 2 ** 20;
  return mib < 1024 ? `${Math.round(mib)} MiB` : `${(mib / 1024).toFixed(1)} GiB`;
}

// 4 significant digits below 1 (a job's cost is cents of a cent), 2 decimals from there
const amount = (v) => (!finite(v) ? "-" : Math.abs(v) < 1 ? String(Number(v.toPrecision(4))) : v.toFixed(2));
const money = (v, currency) => (finite(v) ? `${amount(v)} ${currency || ""}`.trim() : "-");
const percent = (v) => (finite(v) ? `${Math.round(v)}%` : "-");
const quantity = (v) => (!finite(v) ? "-" : Math.abs(v) >= 100 ? String(Math.round(v)) : String(Number(v.toPrecision(3))));
const plural = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;
const shortJob = (name) => String(name || "-").replace(/-([0-9a-f]{16,})$/, (_, hash) => "-" + hash.slice(0, 6));

function span(minutes) {
  if (minutes >= 1440) return `${quantity(minutes / 1440)} day${Math.round(minutes) === 1440 ? "" : "s"}`;
  if (minutes >= 120) return `${quantity(minutes / 60)} hours`;
  return duration(minutes * 60);
}

function slowedMark(job) {
  const x = job && job.slowed;
  if (!x) return "";
  return "slowed" + (finite(x.factor) ? ` ×${x.factor.toFixed(1)}` : "") + (finite(x.usual_seconds) ? ` (usual ${duration(x.usual_seconds)})` : "");
}

function priceLine(c) {
  if (!finite(c.rate_per_node_hour)) return c.vm_size ? `no price known for ${c.vm_size}` : "";
  return `at ${money(c.rate_per_node_hour, c.currency)} per node-hour` + (c.vm_size ? ` for ${c.vm_size}` : "");
}

function totalsLine(c) {
  const t = c.totals || {};
  let text = plural(t.jobs ?? (c.jobs || []).length, "job") + (finite(t.days) ? ` over ${span(t.days * 1440)}` : "");
  text += `: ${quantity(t.job_minutes)} job-minutes` + (finite(t.cost) ? `, ${money(t.cost, c.currency)}` : "");
  const month = finite(t.month_cost) ? [`${money(t.month_cost, c.currency)} a month`] : [];
  if (finite(t.month_job_minutes)) month.push(month.length ? `(${quantity(t.month_job_minutes)} job-minutes)` : `${quantity(t.month_job_minutes)} job-minutes a month`);
  if (month.length) text += "; at this rate " + month.join(" ");
  const price = priceLine(c);
  return price ? text + (month.length ? " " : "; ") + price : text;
}

function nodesLine(c) {
  const n = c.nodes;
  if (!n) return "";
  const parts = [`${quantity(n.active_node_minutes)} active, ${quantity(n.idle_node_minutes)} idle`
    + (n.unusable_node_minutes ? `, ${quantity(n.unusable_node_minutes)} unusable` : "") + " node-minutes"];
  if (finite(n.idle_cost)) parts.push(`idle ${money(n.idle_cost, c.currency)}`);
  if (n.peak_nodes !== null && n.peak_nodes !== undefined) parts.push(`peak ${plural(n.peak_nodes, "node")}`);
  const busy = [["cpu_percent", "CPU"], ["memory_percent", "memory"]].filter(([k]) => finite(n[k])).map(([k, label]) => `${label} ${percent(n[k])}`);
  if (busy.length) parts.push(busy.join(", "));
  return `nodes of ${c.cluster || "the cluster"}${finite(n.minutes) ? ` over ${span(n.minutes)}` : ""}: ` + parts.join("; ");
}

function adviceLine(a) {
  const setting = SETTINGS[a.setting] || String(a.setting || "?").replace(/_/g, " ");
  const current = a.current ?? "-";
  const change = a.suggested === null || a.suggested === undefined || String(a.suggested) === String(a.current)
    ? `keep ${setting} ${current}` : `${setting} ${current} → ${a.suggested}`;
  return a.reason ? `${change}: ${a.reason}` : change;
}

// a training job's figures under its name in the jobs table
function jobCompute(c, currency) {
  if (!c) return null;
  const mark = slowedMark(c);
  return h("div", { class: "job-compute", "data-testid": "job-compute" },
    `took ${duration(c.duration_seconds)} · queue ${duration(c.queue_seconds)} · CPU ${percent(c.cpu_percent)} · ${memory(c.peak_memory_bytes)} · ${money(c.cost, currency)}`,
    mark ? [" ", h("span", { class: "pill bad", "data-testid": "job-slowed" }, mark)] : null);
}

// a bar's length set through the CSSOM: the page's Content-Security-Policy refuses style attributes
function bar(className, percentWide) {
  const el = h("i", { class: className });
  el.style.width = `${percentWide.toFixed(1)}%`;
  return el;
}

function renderCompute(m) {
  const c = m.compute;
  $("compute").hidden = !c;
  if (!c) return;
  const jobs = (c.jobs || []).slice(-10);
  const longest = Math.max(1, ...jobs.map((j) => (finite(j.duration_seconds) ? j.duration_seconds : 0)));
  const earlier = (c.jobs || []).length - jobs.length;
  const bars = jobs.map((j) => {
    const mark = slowedMark(j);
    const width = finite(j.duration_seconds) ? Math.max(1, (100 * j.duration_seconds) / longest) : 0;
    return h("li", { class: "compute-job", "data-testid": "compute-job", "data-job": j.name, title: j.name },
      h("div", { class: "compute-name" }, h("span", { class: "mono" }, shortJob(j.name)), " ",
        h("span", { class: "dim" }, j.kind === "monitoring" && j.trigger === "schedule" ? "monitoring" : `${j.kind || "-"}: ${j.trigger || "-"}`)),
      h("div", { class: "compute-bar" }, bar(`kind-${j.kind || "job"}${mark ? " slowed" : ""}`, width)),
      h("div", { class: "compute-figures", "data-testid": "compute-figures" },
        h("strong", {}, duration(j.duration_seconds)), ` · queue ${duration(j.queue_seconds)} · CPU ${percent(j.cpu_percent)}`
        + ` · memory ${percent(j.memory_percent)} (${memory(j.peak_memory_bytes)}) · ${money(j.cost, c.currency)}`,
        mark ? [" ", h("span", { class: "pill bad" }, mark)] : null));
  });
  const advice = c.advice || [];
  fill($("compute-body"),
    h("p", { "data-testid": "compute-totals" }, totalsLine(c)),
    nodesLine(c) ? h("p", { class: "dim", "data-testid": "compute-nodes" }, nodesLine(c)) : null,
    jobs.length ? h("ul", { class: "compute-jobs", "data-testid": "compute-jobs" }, bars) : h("p", { class: "dim" }, "no job has run yet"),
    earlier ? h("p", { class: "dim" }, `the last ${jobs.length}; ${earlier} earlier: mlops status --json`) : null,
    advice.length ? h("div", {}, h("h4", {}, "cluster settings"),
      h("ul", { class: "plain", "data-testid": "compute-advice" }, advice.map((a) => h("li", {},
        a.suggested != null && String(a.suggested) !== String(a.current) ? [pill("change", "warn"), " "] : null, adviceLine(a))))) : null);
}

function renderPromotions(m) {
  const section = $("promotions");
  const list = m.promotions || [];
  section.hidden = !list.length && !(m.lineage || []).some((c) => c.registry);
  const running = !!(state.info && state.info.running);
  const rows = list.slice().reverse().map((p) => {
    let shown = pill(p.status);
    if (p.status === "awaiting approval") {
      const ref = encodeURIComponent(p.model);
      shown = h("div", {}, pill("awaiting approval", "warn"), h("div", { class: "buttons" },
        h("button", { type: "button", class: "action promote", "data-testid": "promotion-approve", disabled: !running,
          onclick: () => act(`/api/promotions/${ref}/approve`, `approve ${p.model}`) }, "approve"),
        h("button", { type: "button", class: "action rollback", "data-testid": "promotion-reject", disabled: !running,
          onclick: () => act(`/api/promotions/${ref}/reject`, `reject ${p.model}`) }, "reject")));
    }
    return h("tr", { "data-testid": "promotion-row" }, h("td", {}, p.model), h("td", {}, shown), h("td", {}, p.preprod_version || "-"),
      h("td", { class: "mono" }, p.job || "-"), h("td", {}, p.decided_by || "-"), h("td", { class: "why" }, p.reason || ""));
  });
  fill($("promotions-body"),
    h("p", { class: "dim" }, `stage ${m.stage || "-"}, registry ${m.registry || "-"}`),
    h("div", { class: "scroll" }, table(h("table", {}), ["model", "status", "preprod version", "job", "decided by", "reason"], rows)));
}

// ---- monitoring over time: small SVG line charts -----------------------------------------------------

function lineChart(titleText, series, options) {
  // series: [{name, points: [[i, y|null]], colour, dashed?}], x: the passes in order
  const W = 520, H = 190, L = 44, R = 110, T = 22, B = 26;
  const found = series.flatMap((x) => x.points.map((p) => p[1])).filter((y) => typeof y === "number" && isFinite(y));
  const ys = found.length ? found : [0, 1];
  const n = Math.max(1, ...series.map((x) => x.points.length));
  // drift from zero up to at least its threshold; performance around its figures, with a little room
  const pad = options.zero ? 0 : Math.max(0.02, (Math.max(...ys) - Math.min(...ys)) * 0.15);
  const lo = options.zero ? Math.min(0, ...ys) : Math.min(...ys) - pad;
  const hi = (options.zero ? Math.max(options.min || 0, ...ys) : Math.max(...ys) + pad) || 1;
  const X = (i) => L + (n < 2 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
  const Y = (y) => T + (H - T - B) * (1 - (y - lo) / (hi - lo || 1));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-label": titleText });
  svg.append(s("text", { x: L, y: 14, class: "chart-title" }, titleText));
  for (const t of [lo, (lo + hi) / 2, hi]) {
    svg.append(s("line", { x1: L, x2: W - R, y1: Y(t), y2: Y(t), class: "grid-line" }));
    svg.append(s("text", { x: L - 4, y: Y(t) + 4, class: "tick", "text-anchor": "end" }, fmt(t, 2)));
  }
  (options.labels || []).forEach((label, i) => {
    if (n <= 8 || i % Math.ceil(n / 8) === 0) svg.append(s("text", { x: X(i), y: H - 8, class: "tick", "text-anchor": "middle" }, label));
  });
  series.forEach((x, k) => {
    const pts = x.points.filter((p) => typeof p[1] === "number" && isFinite(p[1]));
    if (!pts.length) return;
    svg.append(s("path", { d: pts.map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" "),
      class: x.dashed ? "series dashed" : "series", stroke: x.colour }));
    for (const p of pts) {
      if (x.dashed) continue;
      svg.append(s("circle", { cx: X(p[0]), cy: Y(p[1]), r: p[2] ? 4 : 2.5, class: p[2] ? "point flagged" : "point", fill: x.colour },
        title(`${x.name}: ${fmt(p[1])}${p[2] ? " (drifted)" : ""}`)));
    }
    svg.append(s("text", { x: W - R + 6, y: T + 12 + k * 14, class: "legend", fill: x.colour }, x.name.slice(0, 18)));
  });
  return svg;
}

function renderMonitoring(m) {
  const passes = (m.monitoring || []).filter((p) => !p.note && p.status !== "Failed");
  const labels = passes.map((p) => hhmmss(p.window_end).slice(0, 5));
  const driftHost = $("drift-chart"), perfHost = $("performance-chart");
  const features = [...new Set(passes.flatMap((p) => Object.keys(p.drift_scores || {})))];
  if (features.length) {
    const series = features.slice(0, 8).map((f, k) => ({
      name: f, colour: COLOURS[k % COLOURS.length],
      points: passes.map((p, i) => { const d = (p.drift_scores || {})[f]; return [i, d ? d.psi : null, d && d.drifted]; }),
    }));
    const threshold = passes.flatMap((p) => Object.values(p.drift_scores || {}).map((d) => d.threshold)).find((t) => typeof t === "number");
    if (threshold !== undefined) series.push({ name: `threshold ${fmt(threshold, 2)}`, colour: "#999", dashed: true, points: passes.map((p, i) => [i, threshold]) });
    fill(driftHost, lineChart("drift per feature (PSI; large dots: drifted)", series, { labels, min: threshold || 0, zero: true }),
      h("figcaption", { class: "dim" }, `${passes.length} pass(es); drifted in the last: ${(passes[passes.length - 1] || {}).drifted_features?.join(", ") || "none"}`));
  } else {
    const all = (m.monitoring || []).length;
    fill(driftHost, h("p", { class: "dim" }, passes.length ? "no per-feature drift in these passes"
      : all ? `${all} pass(es), none judged yet (below: why)` : "no monitoring pass yet"));
  }
  const metrics = [...new Set(passes.flatMap((p) => Object.keys(p.performance || {})))];
  if (metrics.length) {
    const series = [];
    metrics.slice(0, 3).forEach((k, i) => {
      const colour = COLOURS[i % COLOURS.length];
      series.push({ name: k, colour, points: passes.map((p, j) => [j, (p.performance || {})[k]]) });
      series.push({ name: `${k} holdout`, colour, dashed: true, points: passes.map((p, j) => [j, (p.holdout || {})[k]]) });
    });
    fill(perfHost, lineChart("performance against the holdout (dashed)", series, { labels }),
      h("figcaption", { class: "dim" }, passes.map((p) => `${p.labelled ?? 0}`).join(" · ") + " labelled row(s) per pass"));
  } else {
    fill(perfHost, h("p", { class: "dim" }, passes.length ? "no labelled rows yet: no performance figures" : ""));
  }
  const unjudged = (m.monitoring || []).filter((p) => p.note || p.status === "Failed" || p.warning);
  const rows = (m.alerts || []).slice(-10).reverse().map((a) => h("tr", { "data-testid": "alert-row" },
    h("td", {}, `${day(a.received_at)} ${hhmmss(a.received_at)}`), h("td", {}, a.signal), h("td", {}, pill(a.condition)),
    h("td", {}, pill(a.outcome)), h("td", { class: "why" }, a.summary || a.detail || "", a.resolved_at ? h("span", { class: "dim" }, " (resolved)") : "")));
  for (const p of unjudged.slice(-3)) {
    rows.push(h("tr", {}, h("td", {}, hhmmss(p.window_end)), h("td", {}, "pass"), h("td", {}, pill(p.status)), h("td", {}, ""),
      h("td", { class: "why dim" }, p.warning || p.error || p.note || "")));
  }
  table($("alerts"), ["received", "signal", "condition", "outcome", "summary"], rows.length ? rows : [h("tr", {}, h("td", { colspan: 5, class: "dim" }, "no alerts"))]);
}

function renderRejections(list) {
  $("rejections").hidden = !list.length;
  table($("rejections-table"), ["event", "type", "function", "reason", "when"], list.slice(-20).reverse().map((r) =>
    h("tr", {}, h("td", { class: "mono" }, String(r.event_id).slice(0, 12)), h("td", {}, r.event_type), h("td", {}, r.function),
      h("td", { class: "why" }, r.reason), h("td", {}, hhmmss(r.rejected_at)))));
}

function renderNotNotified(list) {
  $("not-notified").hidden = !list.length;
  table($("not-notified-table"), ["decision", "webhook", "why", "when"], list.map((d) =>
    h("tr", { "data-testid": "not-notified-row" }, h("td", {}, d.event_type, h("div", { class: "dim" }, d.summary)),
      h("td", { class: "mono" }, d.webhook), h("td", { class: "why" }, `${d.last_error || d.last_status}, ${d.attempts} attempt(s)`),
      h("td", {}, hhmmss(d.dead_lettered_at)))));
}

// ---- the timeline ------------------------------------------------------------------------------------

function setOptions(select, values) {
  const chosen = select.value;
  fill(select, h("option", { value: "" }, "any"), values.map((v) => h("option", { value: v }, v)));
  select.value = values.includes(chosen) ? chosen : "";
}

function renderTimeline() {
  const e = state.events;
  setOptions($("filter-type"), e.facets.type);
  setOptions($("filter-function"), e.facets.function);
  setOptions($("filter-outcome"), e.facets.outcome);
  fill($("timeline-count"), `${e.matched} of ${e.total} record(s)` + (e.ticks_hidden ? `, ${e.ticks_hidden} timer tick(s) hidden` : "")
    + (e.matched > e.events.length ? `; the last ${e.events.length} shown` : ""));
  fill($("timeline-rows"), e.events.slice().reverse().map((d) => h("tr", {
    "data-testid": "timeline-row", "data-event-id": d.event_id, class: d.outcome === "delivered" ? "" : "row-" + tone(d.outcome),
  },
  h("td", { class: "mono", title: d.time }, hhmmss(d.time)),
  h("td", {}, d.event_type, d.attempt > 1 ? h("span", { class: "dim" }, ` attempt ${d.attempt}`) : ""),
  h("td", { class: "mono subject", title: d.subject }, d.subject),
  h("td", {}, d.function),
  h("td", {}, pill(d.outcome), d.detail ? h("div", { class: "dim why" }, d.detail) : ""),
  h("td", { class: "num" }, typeof d.duration_ms === "number" ? Math.round(d.duration_ms) : "-"))));
}

function readFilters() {
  state.filters = { type: $("filter-type").value, function: $("filter-function").value, outcome: $("filter-outcome").value,
    since: $("filter-since").value.trim(), ticks: $("filter-ticks").checked };
  loadEvents();
}

// ---- live: server-sent events ------------------------------------------------------------------------

function connect() {
  const stream = new EventSource("/api/stream");
  const conn = $("connection");
  stream.addEventListener("hello", () => {
    conn.className = "badge good";
    fill(conn, "auto-refresh on");
    loadStatus();
    loadEvents();
  });
  stream.addEventListener("timeline", () => loadEvents());
  stream.addEventListener("status", () => loadStatus());
  stream.onerror = () => {
    conn.className = "badge warn";
    fill(conn, "reconnecting…");
  };
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["filter-type", "filter-function", "filter-outcome", "filter-ticks"]) $(id).addEventListener("change", readFilters);
  $("filter-since").addEventListener("change", readFilters);
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); readFilters(); });
  loadStatus();
  loadEvents();
  connect();
});
