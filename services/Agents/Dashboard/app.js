// The dashboard: renders each snapshot pushed on /dashboard/events. The selected agent is a query
// parameter of the stream, so choosing another agent reopens it.
"use strict";

const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

// Read by the browser test: the last snapshot and the charts drawn from it.
window.dashboardState = { snapshot: null, charts: {} };

const chartArms = new WeakMap();

let selectedAgent = new URLSearchParams(location.search).get("agent");
let events = null;

// With API keys on, the stream needs an admin key. An EventSource cannot send headers, so the key goes in
// the query; the page takes it from its fragment (#key=…), which the browser never sends to a server.
const accessKey = new URLSearchParams(location.hash.slice(1)).get("key");

function connect() {
  events?.close();
  const query = new URLSearchParams();
  if (selectedAgent) query.set("agent", selectedAgent);
  if (accessKey) query.set("access_token", accessKey);
  events = new EventSource("/dashboard/events" + (query.size ? "?" + query : ""));
  events.addEventListener("snapshot", e => render(JSON.parse(e.data)));
  events.onopen = () => setStatus("live");
  // EventSource reconnects by itself; say so meanwhile.
  events.onerror = () => setStatus("reconnecting…");
}

function setStatus(text) {
  document.getElementById("status").textContent = "— " + text;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
}

function fill(tableId, items, addCells) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren();
  for (const item of items) addCells(body.insertRow(), item);
}

const usd = value => value.toFixed(6);
const percent = value => (100 * value).toFixed(1) + " %";

function render(snapshot) {
  window.dashboardState.snapshot = snapshot;
  setStatus("live, " + new Date(snapshot.at).toLocaleTimeString());

  fill("agents", snapshot.agents, (row, agent) => {
    row.className = "agent" + (agent.name === snapshot.selectedAgent ? " selected" : "");
    row.dataset.agent = agent.name;
    row.onclick = () => { selectedAgent = agent.name; connect(); };
    cell(row, agent.name);
    cell(row, agent.interactions);
    cell(row, percent(agent.successRate));
    cell(row, usd(agent.costUsd));
    cell(row, agent.meanLatencyMs.toFixed(1));
  });

  fill("providers", snapshot.providers, (row, provider) => {
    cell(row, provider.name);
    cell(row, provider.circuit, provider.circuit);
    cell(row, provider.simulated ? "yes" : "no");
  });

  const cache = snapshot.cache;
  fill("cache", [
    ["Hit rate", percent(cache.hitRate)],
    ["Exact hits", cache.exactHits],
    ["Semantic hits", cache.semanticHits],
    ["Misses", cache.misses],
    ["Entries", cache.entries],
    ["Savings (estimated, USD)", usd(cache.estimatedSavingsUsd)],
  ], (row, [label, value]) => { cell(row, label); cell(row, value); });

  fill("memory", snapshot.agents, (row, agent) => {
    const m = agent.memory;
    cell(row, agent.name);
    cell(row, m.workingTurns);
    cell(row, m.semanticMemories);
    cell(row, m.episodes);
    cell(row, [m.workingBytes, m.semanticBytes, m.episodeBytes].join(" / "));
  });

  document.getElementById("curves-agent").textContent = snapshot.selectedAgent ? "— " + snapshot.selectedAgent : "";
  renderCurves(snapshot.curves);

  const feed = document.getElementById("feed");
  feed.replaceChildren(...snapshot.feed.map(item => {
    const li = document.createElement("li");
    li.textContent = new Date(item.at).toLocaleTimeString() + "  " + item.agent + "  " +
      (item.status === 200 ? "completed" : "failed (" + item.status + ")") +
      (item.streamed ? ", streamed" : "") + "  " + item.durationMs.toFixed(0) + " ms";
    return li;
  }));
}

// A chart whose arms are unchanged only takes the new data, so that it keeps its legend toggles.
function renderCurves(curves) {
  const charts = window.dashboardState.charts;
  const shown = new Set(curves.map(curve => curve.taskType));
  for (const [taskType, chart] of Object.entries(charts)) {
    if (!shown.has(taskType)) {
      chart.destroy();
      delete charts[taskType];
    }
  }

  for (const curve of curves) {
    const data = [curve.decisions, ...curve.scores, ...curve.trafficShares];
    const arms = curve.arms.join();
    const existing = charts[curve.taskType];
    if (existing && chartArms.get(existing) === arms) {
      existing.setData(data);
      continue;
    }

    existing?.destroy();
    const series = [
      { label: "decision" },
      ...curve.arms.map((arm, i) => ({ label: arm + " score", stroke: palette[i % palette.length], width: 2 })),
      ...curve.arms.map((arm, i) => ({ label: arm + " share", stroke: palette[i % palette.length], dash: [6, 4], width: 1 })),
    ];
    const chart = new uPlot({
      title: curve.taskType,
      width: Math.min(1000, window.innerWidth - 80),
      height: 280,
      scales: { x: { time: false } },
      axes: [{ label: "decision" }, { label: "score / share" }],
      series,
    }, data, document.getElementById("curves"));
    chartArms.set(chart, arms);
    charts[curve.taskType] = chart;
  }
}

connect();
