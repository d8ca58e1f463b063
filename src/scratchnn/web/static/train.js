// The Train tab: pick a preset, change settings, Start; live curves, weights, confusion matrix and
// the doctor's findings from the server's event stream (/api/train/events). A reload or a second
// browser replays the run so far from the server, so nothing is lost by closing the page.

import { announce, announceProgress } from "./announce.js";  // read aloud: the run's milestones, not every batch
import { api, postJSON } from "./api.js";
import { COLORS, DASHES, drawChart, paintTiles } from "./chart.js";
import { fillTable } from "./render.js";
import { formChanges, inputFor, readInput, writeInput } from "./settings.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = ["starting", "running", "paused", "stopping"];
const GROUPS = ["network", "optimisation", "training loop", "doctor"];
const BATCH_GREY = "#7d8599";  // 3.7:1 on the white card (#9aa1b5 was 2.6:1); the legend's .k-batch too
let info = null;
let stream = null;
let refused = false; // the server refused this page's event stream (429): follow() asks again
let run = null; // {name, epochs, batches: [[x, loss]], evals: [...], started: ms}
let drawQueued = false;
let edited = false; // the user changed the form since it last showed a run's settings (or since Start)


function newRun(state) {
  run = { name: state.run, epochs: state.epochs, batches: [], evals: [], lastBatch: null, findings: 0 };
  $("train-findings").innerHTML = '<li class="empty">No findings yet.</li>';
  $("train-notes").innerHTML = "";
  $("train-notes").hidden = true;
  $("train-weights").innerHTML = '<p class="empty">They appear at the first evaluation.</p>';
  $("train-weights-title").textContent = "First-layer weights";  // nothing of the last run stays
  $("train-lr").textContent = "lr –";
  $("train-maps").innerHTML = "";
  $("train-confusion").innerHTML = "";
  $("train-loss").dataset.points = "0";
  $("train-weights").dataset.version = "0";
  redraw();
}

// ---------------------------------------------------------------------------------------------
// The settings form, made from the server's option list

function showSettingsOf(config) {
  // A page opened during (or after) a run replays it: its form shows that run's settings, so the
  // form and the curves describe the same run, and Start would repeat it.
  if (config.preset in info.presets) $("train-preset").value = config.preset;
  fillFromPreset();
  for (const input of $("train-settings").querySelectorAll("[data-name]")) {
    if (input.dataset.name in config) writeInput(input, config[input.dataset.name]);
  }
}

function fillFromPreset() {
  const preset = info.presets[$("train-preset").value] || {};
  const defaults = Object.fromEntries(info.options.map((o) => [o.name, o.type === "list" ? [] : null]));
  for (const input of $("train-settings").querySelectorAll("[data-name]")) {
    writeInput(input, preset[input.dataset.name] ?? defaults[input.dataset.name]);
  }
}

function requestBody() {
  // The preset, and every setting that differs from it: the server resolves as `scratchnn train` does.
  const preset = info.presets[$("train-preset").value] || {};
  const body = { preset: $("train-preset").value };
  for (const input of $("train-settings").querySelectorAll("[data-name]")) {
    const value = readInput(input);
    if (value !== null && JSON.stringify(value) !== JSON.stringify(preset[input.dataset.name] ?? (Array.isArray(value) ? [] : undefined))) {
      body[input.dataset.name] = value;
    }
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// Drawing

function redraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => {
    drawQueued = false;
    if (!run) return;
    const evals = run.evals;
    drawChart($("train-loss"), [
      { points: run.batches, color: BATCH_GREY, width: 1 },  // each batch's loss: the noisy grey one
      { points: evals.map((e) => [e.at, e.train_loss]), color: COLORS[0], dots: true },
      { points: evals.map((e) => [e.at, e.dev_loss]), color: COLORS[1], dots: true, dash: DASHES[1] },
    ], { yMin: 0, xMax: run.epochs, yLabel: "loss", xLabel: "epoch" });
    drawChart($("train-accuracy"), [
      { points: evals.map((e) => [e.at, e.train_accuracy]), color: COLORS[0], dots: true },
      { points: evals.map((e) => [e.at, e.dev_accuracy]), color: COLORS[1], dots: true, dash: DASHES[1] },
    ], { yMin: 0, yMax: 1, xMax: run.epochs, yLabel: "accuracy", xLabel: "epoch" });
    $("train-loss").dataset.points = String(run.batches.length + evals.length);
    describeCharts();
  });
}

// A canvas is a picture to a screen reader: its label says the latest values the curves reach.
function describeCharts() {
  const last = run.evals[run.evals.length - 1];
  const batch = run.batches[run.batches.length - 1];
  const number = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "not measured");
  const percent = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : "not measured");
  const at = last ? `at epoch ${last.epoch} of ${run.epochs}` : "";
  $("train-loss").setAttribute("aria-label", (last ? `Loss ${at}: train ${number(last.train_loss)}, `
    + `dev ${number(last.dev_loss)}` : "Loss: no evaluation yet") + (batch ? `; last batch ${number(batch[1])}` : ""));
  $("train-accuracy").setAttribute("aria-label", last ? `Accuracy ${at}: train ${percent(last.train_accuracy)}, `
    + `dev ${percent(last.dev_accuracy)}` : "Accuracy: no evaluation yet");
}

function showPictures(event) {
  if (event.weights) {
    const w = event.weights;
    $("train-weights-title").textContent = w.kind === "conv"
      ? `First convolution's kernels (${w.count} of ${w.total}) and feature maps of one digit`
      : `First-layer weights: ${w.count} of ${w.total} units, each as a ${w.height}×${w.width} image`;
    paintTiles($("train-weights"), w, { size: w.kind === "conv" ? 36 : 48 });
    if (w.maps) paintTiles($("train-maps"), w.maps, { signed: false, size: 56 });
    $("train-weights").dataset.version = String(Number($("train-weights").dataset.version || 0) + 1);
  }
  if (event.confusion) {
    const m = event.confusion;
    // the classes by name (Fashion-MNIST's "Sneaker", not 7) once the run's setup event has said them
    const named = run && run.classNames && run.classNames.length === m.length;
    const names = named ? run.classNames : m.map((_, i) => String(i));
    fillTable($("train-confusion"), ["true \\ said", ...names], m.map((row, i) => [names[i], ...row.map(String)]),
              { rowHeaders: true });
    const rows = $("train-confusion").tBodies[0].rows;
    m.forEach((row, i) => row.forEach((count, j) => {
      const share = count / Math.max(1, row.reduce((a, b) => a + b, 0));
      // at most 0.6 opaque: the page's dark text keeps 5.2:1 on the reddest cell, 6.4:1 on the greenest
      // (white text on a light red read at 2.6:1)
      const alpha = 0.6 * (i === j ? share : count ? Math.min(1, share * 3) : 0);
      const cell = rows[i].cells[j + 1];
      cell.style.background = alpha ? (i === j ? `rgba(15,123,108,${alpha})` : `rgba(180,35,24,${alpha})`) : "";
    }));
  }
}

function addFinding(f) {
  const list = $("train-findings");
  if (!run.findings) list.innerHTML = "";
  run.findings += 1;
  const item = document.createElement("li");
  item.className = `finding ${f.severity}`;
  item.append(Object.assign(document.createElement("strong"), { textContent: `[${f.id}] ${f.severity}: ` }),
              document.createTextNode(`${f.message} (${f.step || "epoch"} ${f.epoch})`),
              Object.assign(document.createElement("p"), { textContent: f.explanation }),
              Object.assign(document.createElement("p"), { className: "fix", textContent: `Fix: ${f.fix}` }));
  // the fix's first choice, set in the form's own fields (they sit far above, folded away); not beside a
  // fault, which overrides what a fix of the mistake it makes would set (--init beside --fault zero-init)
  const hasField = (name) => Boolean($(`train-opt-${name}`));
  const changes = readInput($("train-opt-fault")).length ? null : formChanges(f.fix || "", info, hasField);
  if (changes) {
    const said = changes.map(([option, value]) => (option.type !== "bool"
      ? `${option.flag} ${[value].flat().join(",")}` : value ? option.flag : option.flag.replace(/^--/, "--no-")))
      .join(" ");
    const apply = Object.assign(document.createElement("button"), { type: "button", className: "apply",
                                                                    textContent: `Apply: ${said}` });
    apply.addEventListener("click", () => {
      for (const [option, value] of changes) writeInput($(`train-opt-${option.name}`), value);
      $("train-settings-box").open = true;
      $(`train-opt-${changes[0][0].name}`).focus();
      edited = true;
      announce(`Settings changed: ${said}. Start trains with them.`);
    });
    item.append(apply);
  }
  list.append(item);
}

function addNote(text) {
  const list = $("train-notes");
  list.append(Object.assign(document.createElement("li"), { textContent: `Note: ${text}` }));
  list.hidden = false;
}

function progressLine(state) {
  const b = run && run.lastBatch;
  if (!b) return `${state.run}: ${state.status}…`;
  const done = (b.epoch - 1 + b.batch / b.batches) / run.epochs;
  const left = done > 0 ? (b.seconds * (1 - done)) / done : NaN;
  return `${state.run}: epoch ${b.epoch} of ${run.epochs}, batch ${b.batch} of ${b.batches}`
    + (Number.isFinite(left) ? ` · about ${Math.ceil(left)} s left` : "")
    + (state.status === "paused" ? " · paused" : state.status === "stopping" ? " · stopping after this batch…" : "");
}

// ---------------------------------------------------------------------------------------------
// The event stream

let state = { status: "idle" };

function setButtons() {
  const [start, stop, pause] = [$("train-start"), $("train-stop"), $("train-pause")];
  const had = document.activeElement;
  const active = ACTIVE.includes(state.status);
  start.disabled = active || !info.enabled;
  stop.disabled = !active;
  // stopping: Stop is marked, not disabled, so the keyboard's focus stays on it until the run has ended
  stop.setAttribute("aria-disabled", String(state.status === "stopping"));
  pause.disabled = !["running", "paused"].includes(state.status);
  pause.textContent = state.status === "paused" ? "Resume" : "Pause";
  // a button disabled under the keyboard's focus drops it to <body>: the next one that can act takes it
  if ([start, stop, pause].includes(had) && had.disabled) {
    [stop, pause, start, $("train-preset")].find((control) => !control.disabled).focus();
  }
}

function handle(event) {
  if (event.type === "status") {
    if (!run || run.name !== event.run) newRun(event);
    const before = state && state.run === event.run ? state.status : null;
    state = event;
    setButtons();
    const line = $("train-progress");
    line.classList.toggle("error", event.status === "failed");
    if (event.status === "failed") line.textContent = `${event.run} failed: ${event.detail}`;
    else if (event.status === "finished" || event.status === "stopped") {
      const last = run.evals[run.evals.length - 1];
      line.textContent = `${event.run} ${event.status}`
        + (event.detail ? ` (${event.detail})` : "")
        + (last && Number.isFinite(last.dev_accuracy)
          ? ` ${last.cut || `at epoch ${last.epoch}`}: dev accuracy ${(last.dev_accuracy * 100).toFixed(1)} %` : "")
        + (event.served === false ? "." : ". The Draw tab now uses this model.");
      if (!run.findings && run.verdict) {  // the doctor's own words: too few evaluations is not "healthy"
        const item = document.createElement("li");
        item.className = "empty";
        item.textContent = run.verdict[0].toUpperCase() + run.verdict.slice(1) + ".";
        $("train-findings").replaceChildren(item);
      }
    } else line.textContent = progressLine(event);
    if (!ACTIVE.includes(event.status) || event.status === "starting") announce(line.textContent);
    else if (before && before !== event.status) {  // Pause, Resume and Stop are heard too (the accessibility audit)
      announce(event.status === "paused" ? `${event.run} paused.` : event.status === "stopping"
        ? `${event.run} stopping after this batch.` : `${event.run} running again.`);
    }
    if (!ACTIVE.includes(event.status) && stream) { stream.close(); stream = null; }
    return;
  }
  if (!run) return;
  if (event.type === "batch") {
    run.batches.push([event.epoch - 1 + event.batch / event.batches, event.loss]);
    run.lastBatch = event;
    $("train-progress").textContent = progressLine(state);
    redraw();
  } else if (event.type === "evaluation") {
    // Plotted where its last batch was: an epoch cut short by Stop ends between two whole epochs.
    const b = run.lastBatch;
    const partial = b && b.epoch === event.epoch && b.batch < b.batches;
    run.evals.push({ ...event, at: partial ? b.epoch - 1 + b.batch / b.batches : event.epoch,
                     cut: partial ? `during epoch ${b.epoch} (batch ${b.batch} of ${b.batches})` : "" });
    $("train-lr").textContent = `lr ${Number(event.lr).toPrecision(3)}`;
    if (Number.isFinite(event.dev_accuracy)) {
      announceProgress(`Epoch ${event.epoch}: dev accuracy ${(event.dev_accuracy * 100).toFixed(1)} %`);
    }
    showPictures(event);
    redraw();
  } else if (event.type === "setup") {
    run.classNames = event.class_names;
  } else if (event.type === "pictures") {
    showPictures(event);
  } else if (event.type === "finding") {
    addFinding(event);
    announce(`The doctor: ${event.id}, ${event.severity}: ${event.message}`);
  } else if (event.type === "note") {
    addNote(event.text);
  } else if (event.type === "done") {
    run.verdict = event.verdict;  // shown with the run's end (its status event comes next)
    if (event.loaded) document.dispatchEvent(new CustomEvent("modelchanged", { detail: state.run }));
  }
}

function watch() {
  if (stream) stream.close();
  run = null;
  stream = new EventSource("api/train/events");
  stream.onmessage = (message) => handle(JSON.parse(message.data));
  // A dropped connection: EventSource reconnects by itself with Last-Event-ID, and the server
  // sends what was missed. But a server that restarted knows nothing of that run: once the
  // connection is back, ask what the server is doing now and show that.
  let dropped = false;
  stream.onerror = () => {
    dropped = true;
    const line = $("train-progress");  // each failed retry fires again: say it once
    if (stream && stream.readyState === EventSource.CLOSED) {
      // refused, not dropped (too many pages watching: 429): the browser gives up; follow() asks again
      stream = null;
      refused = true;
      line.textContent = "This page cannot follow the run just now (too many pages are watching it, or the server "
        + "did not answer); it tries again every few seconds.";
      return;
    }
    if (stream && stream.readyState === EventSource.CONNECTING && !line.textContent.endsWith(" (reconnecting…)")) {
      line.textContent += " (reconnecting…)";
    }
  };
  stream.onopen = () => {
    refused = false;
    if (dropped) { dropped = false; resync(); }
  };
}

async function resync() {
  let now;
  try {
    now = await api("api/train/state");
  } catch {
    return;  // down again: the next reconnection asks again
  }
  if (run && now.run === run.name && ACTIVE.includes(now.status)) return;  // the same run goes on: the stream has it
  if (stream) { stream.close(); stream = null; }
  state = now;
  setButtons();
  const line = $("train-progress");
  line.classList.remove("error");
  if (ACTIVE.includes(now.status) || now.run === (run && run.name)) {
    watch();  // another run, or this one's end: replay it
  } else {
    line.textContent = "The server restarted, so the run it was training has ended; what it saved is in the Runs tab. "
      + "Pick a preset and press Start.";
    announce(line.textContent);
  }
}

function reportFailure(error) {  // Stop and Pause: a request that failed says so, where the progress is
  const line = $("train-progress");
  line.textContent = `${line.textContent.replace(/ \(reconnecting…\)$/, "")} · ${error.message}`;
}

async function start() {
  const button = $("train-start");
  if (button.getAttribute("aria-disabled") === "true") return;  // pressed again while the first press is on its way
  // NOTE: marked, not disabled: a disabled button would drop the keyboard's focus to <body> at once
  button.setAttribute("aria-disabled", "true");
  markInvalid(null);
  $("train-progress").classList.remove("error");
  // The previous run's replay must not mix into the new run's display: stop it and clear now,
  // before the server answers (its findings would otherwise read as the new run's).
  if (stream) { stream.close(); stream = null; }
  newRun({ run: "", epochs: 0 });
  $("train-progress").textContent = "Starting…";
  try {
    state = await postJSON("api/train", requestBody());  // "starting": setButtons moves the focus on to Stop
    edited = false;  // the form is this run's settings now
    setButtons();
    watch();
  } catch (error) {
    $("train-progress").textContent = error.message;
    $("train-progress").classList.add("error");
    announce(error.message);  // the progress line is no live region: a screen reader heard nothing
    markInvalid(error.message);
  } finally {
    button.removeAttribute("aria-disabled");
  }
}

// The server's errors start with the setting's flag ("--lr must be in (0, 1000000], got -5"): that field is
// marked invalid, described by the error (the progress line) and focused. null unmarks the field.
function markInvalid(message) {
  for (const input of document.querySelectorAll("#tab-train [aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    const rest = input.getAttribute("aria-describedby").replace(/ ?train-progress$/, "");
    if (rest) input.setAttribute("aria-describedby", rest);
    else input.removeAttribute("aria-describedby");
  }
  const flag = message?.match(/^--[a-z0-9-]+/)?.[0];
  const option = info.options.find((o) => o.flag === flag);
  const input = option ? $(`train-opt-${option.name}`) : flag === "--preset" ? $("train-preset") : null;
  if (!input) return;
  if (option) $("train-settings-box").open = true;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", `${input.getAttribute("aria-describedby") || ""} train-progress`.trim());
  input.focus();
}

// A run another visitor starts: an idle page asks every few seconds (while it is shown) and follows it.
const FOLLOW_MS = 3000;

async function follow() {
  if (stream || document.visibilityState !== "visible") return;
  try {
    const now = await api("api/train/state");
    // a run this page watches or has seen end; a run that started and ended between two rounds is shown too
    const known = !refused && state && now.run === state.run
      && (ACTIVE.includes(state.status) || state.status === now.status);
    if (stream || known || now.status === "idle") return;
    state = now;
    setButtons();
    if (now.config && !edited) showSettingsOf(now.config);
    else if (now.config) {  // another page's run: what this user was typing stays (it was replaced unsaid)
      announce(`Another page started ${now.run}; your settings are kept, and Start trains them once it ends.`);
    }
    watch();
  } catch {
    // the server restarting: the next round asks again
  }
}

async function init() {
  try {
    info = await api("api/train");
  } catch (error) {
    $("train-progress").textContent = `Could not ask the server about training: ${error.message}`;
    return;
  }
  if (!info.enabled) {
    $("train-off").hidden = false;
    $("train-off").textContent = `Training from this page is off: ${info.reason}.`;
    $("train-on").hidden = true;
    $("tab-button-train").title = info.reason;
  }
  for (const name of Object.keys(info.presets)) $("train-preset").append(new Option(name, name));
  $("train-preset").value = "seed";
  const box = $("train-settings");
  for (const group of GROUPS) {
    const set = Object.assign(document.createElement("fieldset"), {});
    set.append(Object.assign(document.createElement("legend"), { textContent: group }));
    for (const option of info.options.filter((o) => o.group === group)) set.append(inputFor(option));
    box.append(set);
  }
  fillFromPreset();
  $("train-preset").addEventListener("change", fillFromPreset);
  for (const form of [$("train-preset"), $("train-settings")]) {
    form.addEventListener("input", () => { edited = true; });
  }
  $("train-start").addEventListener("click", start);
  $("train-stop").addEventListener("click", () => {
    if ($("train-stop").getAttribute("aria-disabled") !== "true") postJSON("api/train/stop", {}).catch(reportFailure);
  });
  $("train-pause").addEventListener("click", () =>
    postJSON(state.status === "paused" ? "api/train/resume" : "api/train/pause", {}).catch(reportFailure));
  state = info.state;
  setButtons();
  if (state.status !== "idle") { // a run is on (or just ended): replay it
    if (state.config) showSettingsOf(state.config);
    watch();
  }
  if (info.enabled) setInterval(follow, FOLLOW_MS);
}

init();
