// memd's dashboard: the bots from the HTTP API, kept live by its event stream. The
// session is an HttpOnly cookie (this script never sees the token); nothing is fetched
// from anywhere but this server.
"use strict";

const bots = new Map();

function text(value) {
  return value === null || value === undefined ? "–" : String(value);
}

function number(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

function cell(row, value, isNumber) {
  const td = document.createElement("td");
  td.textContent = value;
  if (isNumber) td.className = "number";
  row.appendChild(td);
}

function render() {
  const body = document.querySelector("#bots tbody");
  body.replaceChildren();
  if (bots.size === 0) {
    const row = body.insertRow();
    const td = row.insertCell();
    td.colSpan = 8;
    td.textContent = "no bot is running";
    return;
  }
  const sorted = [...bots.values()].sort((a, b) => a.strategyName.localeCompare(b.strategyName));
  for (const d of sorted) {
    const row = document.createElement("tr");
    row.dataset.deployment = d.deploymentId;
    const name = d.attached ? `${d.strategyName} (attached: ${d.attached.name})` : d.strategyName;
    cell(row, name, false);
    cell(row, text(d.status), false);
    cell(row, d.dryRun ? "dry-run" : "live", false);
    cell(row, text(d.stats && d.stats.openTrades), true);
    cell(row, text(d.stats && d.stats.closedTrades), true);
    cell(row, number(d.stats && d.stats.profitAll, 2), true);
    cell(row, d.cpuPercent === undefined || d.cpuPercent === null ? "–" : `${number(d.cpuPercent, 1)} %`, true);
    cell(row, d.rssBytes ? `${(d.rssBytes / 1048576).toFixed(1)} MiB` : "–", true);
    body.appendChild(row);
  }
}

async function load() {
  const response = await fetch("/api/mem/strategies/deployed", { credentials: "same-origin" });
  if (response.status === 401) {
    window.location.assign("/dashboard");
    return;
  }
  const answer = await response.json();
  bots.clear();
  for (const d of answer.data || []) bots.set(d.deploymentId, d);
  render();
}

function follow() {
  const live = document.getElementById("live");
  const stream = new EventSource("/api/mem/events");
  stream.onopen = () => { live.textContent = "live"; };
  stream.onerror = () => { live.textContent = "reconnecting…"; };
  stream.addEventListener("deployment.changed", (message) => {
    const d = JSON.parse(message.data).data.deployment;
    if (d.status === "stopped") bots.delete(d.deploymentId);
    else bots.set(d.deploymentId, d);
    render();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  load().catch((e) => { document.getElementById("live").textContent = `cannot load: ${e}`; });
  follow();
});
