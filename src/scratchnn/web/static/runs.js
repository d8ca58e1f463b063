// The Runs tab: the run folders beside the served one; tick runs to overlay their dev accuracy
// and see which settings differ; Load serves a run's model (the Draw tab uses it at once).

import { api } from "./api.js";
import { COLORS, DASH_NAMES, DASHES, drawChart, lineKey } from "./chart.js";
import { fillTable, unseen } from "./render.js";

const $ = (id) => document.getElementById(id);
let runs = [];
const ticked = new Set();
const curves = new Map(); // name -> rows of metrics.csv

const short = (v) => (Array.isArray(v) ? v.join(",") || "–" : v === "" || v === null || v === undefined ? "–" : String(v));
const settingsText = (s) => Object.entries(s).filter(([k, v]) => k !== "fault" || v.length)
  .map(([k, v]) => `${k} ${short(v)}`).join(" · ");

// a run stopped before its --epochs (Stop, the server's time limit or its end, early stopping) says so:
// killed with its server, a run of 200 epochs saved at 4 looked like a finished one (the soak audit)
const cutShort = (r) => (Number.isFinite(r.epochs) && r.config.epochs > r.epochs
  ? `, ${r.epochs} of ${r.config.epochs} ${r.config.batch_size === 0 ? "iterations" : "epochs"}` : "");

async function loadRuns() {
  $("runs-status").textContent = "Loading…";
  try {
    const list = await api("api/runs");
    runs = list.runs;
    for (const name of [...ticked]) if (!runs.some((r) => r.name === name)) ticked.delete(name);
    const older = runs.length > list.newest; // the served run, older than the newest listed
    const shown = list.total > runs.length ? `the newest ${list.newest} of ${list.total} runs`
      + (older ? ", and the served one" : "") : `${runs.length} run${runs.length === 1 ? "" : "s"}`;
    $("runs-status").textContent = runs.length
      ? `${shown}; the page serves ${list.current}.`
      : "No run folders beside the served model yet: train one in the Train tab.";
    // the table is built anew: the control that had the keyboard's focus gets it back in its new row
    const focused = $("runs-table").contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
    fillTable($("runs-table"), ["", "Run", "Preset", "Settings", "Dev accuracy", "Time", "Findings", ""],
      runs.map((r) => ["", r.name + (r.name === list.current ? " (served)" : ""), r.preset, settingsText(r.settings),
                       Number.isFinite(r.dev_accuracy) ? `${(r.dev_accuracy * 100).toFixed(1)} %` : "–",
                       (Number.isFinite(r.train_seconds) ? `${r.train_seconds.toFixed(1)} s` : "–") + cutShort(r),
                       r.problem || (r.findings.length ? "" : "none"), ""]));
    const head = $("runs-table").tHead.rows[0].cells;  // the columns of checkboxes and of Load buttons
    head[0].append(unseen("Compare"));
    head[7].append(unseen("Load"));
    const rows = $("runs-table").tBodies[0].rows;
    runs.forEach((r, i) => {
      const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: ticked.has(r.name) });
      box.setAttribute("aria-label", `compare ${r.name}`);
      box.dataset.key = `compare ${r.name}`;
      box.addEventListener("change", () => { (box.checked ? ticked.add(r.name) : ticked.delete(r.name)); compare(); });
      rows[i].cells[0].append(box);
      for (const f of r.findings) {  // a button: a tap or Enter reads the finding out (a hover title cannot)
        const said = `${r.name}: [${f.id}] ${f.severity}: ${f.message}. Fix: ${f.fix}`;
        const tag = Object.assign(document.createElement("button"), { type: "button", className: `tag ${f.severity}`,
                                                                      textContent: f.id, title: said });
        tag.dataset.key = `${r.name} ${f.id}`;
        tag.addEventListener("click", () => { $("runs-status").textContent = said; });
        rows[i].cells[6].append(tag, " ");
      }
      if (r.has_model) {
        const load = Object.assign(document.createElement("button"), { type: "button", textContent: "Load" });
        load.setAttribute("aria-label", `Load ${r.name}`);
        load.dataset.key = `load ${r.name}`;
        load.addEventListener("click", () => useRun(r.name, load));
        rows[i].cells[7].append(load);
      }
    });
    if (focused) $("runs-table").querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
    compare();
  } catch (error) {
    $("runs-status").textContent = `Could not list the runs: ${error.message}`;
  }
}

async function useRun(name, button) {
  if (button.getAttribute("aria-disabled") === "true") return;  // pressed again while the first press is on its way
  // NOTE: marked, not disabled: a disabled button would drop the keyboard's focus to <body>
  button.setAttribute("aria-disabled", "true");
  try {
    await api(`api/runs/${encodeURIComponent(name)}/load`, { method: "POST" });
    document.dispatchEvent(new CustomEvent("modelchanged", { detail: name }));
    $("runs-status").textContent = `The page now serves ${name}: draw in the Draw tab.`;
    await loadRuns();
  } catch (error) {
    $("runs-status").textContent = `Could not load ${name}: ${error.message}`;
  } finally {
    button.removeAttribute("aria-disabled");  // a button of the table as it was, if the list could not be read again
  }
}

async function compare() {
  const names = [...ticked];
  for (const name of names) {
    if (!curves.has(name)) {
      const url = `api/runs/${encodeURIComponent(name)}/curves`;
      try { curves.set(name, (await api(url)).rows); } catch { curves.set(name, []); }
    }
  }
  // each run its colour and its dash pattern: told apart without telling colours apart
  const color = (i) => COLORS[i % COLORS.length], dash = (i) => DASHES[i % DASHES.length];
  drawChart($("runs-chart"), names.map((name, i) => ({
    points: curves.get(name).map((row) => [row.epoch, row.dev_accuracy]), color: color(i), dash: dash(i), dots: true,
  })), { yMin: 0, yMax: 1, yLabel: "dev accuracy", xLabel: "epoch" });
  $("runs-chart").dataset.series = String(names.length);
  const ends = names.map((name, i) => {
    const last = curves.get(name).filter((row) => Number.isFinite(row.dev_accuracy)).at(-1);
    return `${name} (${DASH_NAMES[i % DASHES.length]} line): `
      + (last ? `${(last.dev_accuracy * 100).toFixed(1)} % at epoch ${last.epoch}` : "no dev accuracy");
  });
  $("runs-chart").setAttribute("aria-label", names.length ? `Dev accuracy of the ticked runs, at their last `
    + `evaluation: ${ends.join("; ")}` : "Dev accuracy of the ticked runs: tick two or more in the table");
  const legend = $("runs-legend");
  legend.innerHTML = "";
  names.forEach((name, i) => legend.append(lineKey(color(i), dash(i)), `${name}  `));
  // Settings side by side; the rows where the ticked runs differ are highlighted.
  const chosen = names.map((n) => runs.find((r) => r.name === n)).filter(Boolean);
  const keys = [...new Set(chosen.flatMap((r) => Object.keys(r.config)))];
  const rows = keys.map((k) => [k, ...chosen.map((r) => short(r.config[k]))]);
  const differs = rows.map((row) => new Set(row.slice(1)).size > 1);
  const order = rows.map((row, i) => [differs[i], i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, i]) => i);
  fillTable($("runs-diff"), ["Setting", ...chosen.map((r) => r.name)], chosen.length ? order.map((i) => rows[i]) : [],
            { rowHeaders: true });
  if (chosen.length > 1) {
    [...$("runs-diff").tBodies[0].rows].forEach((tr, j) => {
      if (!differs[order[j]]) return;
      tr.classList.add("differs");
      tr.cells[0].append(unseen(" (differs)"));  // the row's colour, said
    });
  }
}

$("runs-refresh").addEventListener("click", loadRuns);
document.addEventListener("tabshown", (event) => { if (event.detail === "runs") loadRuns(); });
document.addEventListener("modelchanged", () => { curves.clear(); if (!$("tab-runs").hidden) loadRuns(); });
