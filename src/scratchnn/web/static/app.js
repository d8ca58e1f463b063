// scratchnn's page: draw a digit, see what the network makes of it, layer by layer.
// Plain JavaScript, no build step, nothing loaded from elsewhere: it talks only to /api/*.

import { api, postJSON } from "./api.js";
import { hasInk, ink, onlyADot, onPad, pad, pensTall, stroke, wipePad } from "./pad.js";
import { drawBars, drawLayers, fillTable, paintImage } from "./render.js";

const SEND_SIDE = 112; // the canvas is sent downsampled to 112x112 grey values (4x MNIST's 28)
const $ = (id) => document.getElementById(id);
let classes = [...Array(10).keys()].map(String); // names of the classes, from /api/model
let things = "digits"; // what the model reads: "digits", or "images" for a model of other classes
let hint = "Draw one digit, big and centred, with the mouse, a finger or a pen.";

// ---------------------------------------------------------------------------------------------
// Tabs

const tabs = ["draw", "gallery", "model", "train", "runs"];
let galleryLoaded = false;
let servedModel = ""; // the model /api/model last described; an answer from another means it changed

function showTab(name) {
  for (const tab of tabs) {
    $(`tab-button-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`tab-button-${tab}`).tabIndex = tab === name ? 0 : -1;  // Tab reaches the strip once; arrows move in it
    $(`tab-${tab}`).hidden = tab !== name;
  }
  if (name === "gallery" && !galleryLoaded) loadGallery();
  const base = document.title.split(" · ")[0];  // the tab in the title too: a screen reader's window list says it
  document.title = name === "draw" ? base : `${base} · ${$(`tab-button-${name}`).textContent.trim()}`;
  document.dispatchEvent(new CustomEvent("tabshown", { detail: name })); // train.js, runs.js
}

for (const tab of tabs) $(`tab-button-${tab}`).addEventListener("click", () => showTab(tab));
// The tab strip as the ARIA tabs pattern has it: the arrow keys, Home and End move between tabs.
for (const [i, tab] of tabs.entries()) {
  $(`tab-button-${tab}`).addEventListener("keydown", (event) => {
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    const next = tabs[(to + tabs.length) % tabs.length];
    showTab(next);
    $(`tab-button-${next}`).focus();
  });
}

// ---------------------------------------------------------------------------------------------
// Drawing (pad.js): what a stroke means here

let source = "canvas"; // "canvas", "photo" or "gallery": what the prediction on screen came from
let generation = 0; // bumped by Clear, so a late answer for the old drawing is dropped
// MNIST's digits are about 7 to 10 strokes tall; one only a few pen widths tall is mostly blot once it is
// scaled to 20x20, and small thick 3s, 5s and 7s came back as 8s in the class's tests
const CRAMPED = 5;

function startOver(newSource) {
  modelNews = "";
  wipePad();
  source = newSource;
  generation += 1;
}

onPad({
  begin() {
    if (source !== "canvas") startOver("canvas"); // drawing over a photo or gallery digit starts afresh
    modelNews = "";  // said with the answers that followed the change; a new stroke is a new drawing
    // the status line is not read out mid-stroke: it changed some 40 times a stroke, each answer overtaking the last
    $("status").setAttribute("aria-live", "off");
  },
  change: requestPrediction,
  end() {  // the finished stroke's own answer is read out; one to a request sent mid-stroke is not shown
    $("status").setAttribute("aria-live", "polite");  // after it (an out-of-date answer was read, then the
    answersFrom = requests + 1;                         // right one 50 ms later: the accessibility audit)
    requestPrediction();
  },
  undone() {
    generation += 1;  // an answer on its way is for the stroke taken back
    if (hasInk) requestPrediction();
    else showEmpty(hint);
  },
});

$("clear").addEventListener("click", () => {
  startOver("canvas");
  showEmpty(hint);
});

// ---------------------------------------------------------------------------------------------
// Predicting while drawing: at most one request in flight, at most one per animation frame;
// whatever is drawn meanwhile is sent as soon as the answer arrives.

let frameRequested = false;
let inFlight = false;
let dirty = false;
let requests = 0; // predictions asked for so far
let answersFrom = 0; // once a stroke has ended, the answers to requests from this one on are shown

function requestPrediction() {
  dirty = true;
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => { frameRequested = false; pump(); });
}

async function pump() {
  if (inFlight || !dirty) return;
  dirty = false;
  if (!hasInk) return;
  if (onlyADot()) {
    showEmpty("Keep drawing: so far this is a dot, and the network would read even a dot as some digit.");
    return;
  }
  inFlight = true;
  const sent = generation, number = ++requests;
  const current = () => sent === generation && (stroke || number >= answersFrom);  // not a stroke's earlier answer
  const slow = setTimeout(() => { if (sent === generation) setStatus("Reading your digit…"); }, 300);
  try {
    const result = await postJSON("api/predict", { pixels: padPixels() });
    const tip = !stroke && pensTall() < CRAMPED
      ? ` Tip: it is only ${pensTall().toFixed(1)} pen widths tall; draw it bigger, or with a thinner brush.` : "";
    if (current()) {
      show(result, "Your drawing", tip, result.milliseconds);
    }
  } catch (error) {
    // an answer for an earlier drawing must not stay beside this one's error; mid-stroke, a
    // drawing not yet readable (the bar of a 7 alone) is a hint, not an error
    // (not a canvas painted over: "press Clear" is no reason to keep drawing)
    const unreadable = stroke && error.status === 422 && !error.message.includes("press Clear");
    if (current()) {
      showEmpty(unreadable ? `Keep drawing: ${error.message}` : error.message, !unreadable);
    }
  } finally {
    clearTimeout(slow);
    inFlight = false;
    if (dirty) pump();
  }
}

const small = document.createElement("canvas");
small.width = small.height = SEND_SIDE;
const smallInk = small.getContext("2d", { willReadFrequently: true });

function padPixels() {
  // Downsample in the browser (a 12,544-number body instead of 78,400), grey 0..1, light ink.
  smallInk.imageSmoothingEnabled = true;
  smallInk.imageSmoothingQuality = "high";
  smallInk.drawImage(pad, 0, 0, SEND_SIDE, SEND_SIDE);
  const rgba = smallInk.getImageData(0, 0, SEND_SIDE, SEND_SIDE).data;
  const rows = [];
  for (let y = 0; y < SEND_SIDE; y++) {
    const row = new Array(SEND_SIDE);
    for (let x = 0; x < SEND_SIDE; x++) row[x] = Math.round((rgba[(y * SEND_SIDE + x) * 4] / 255) * 1000) / 1000;
    rows.push(row);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// A photo instead of a drawing

$("upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = ""; // the same file again fires change again
  if (!file) return;
  startOver("photo");
  const sent = generation;
  previewPhoto(file);
  setStatus(`Reading ${file.name}…`);
  const form = new FormData();
  try {
    form.append("file", file.size > BIG_PHOTO ? await smaller(file) : file, file.name);
    const result = await api("api/predict", { method: "POST", body: form });
    if (sent === generation) {
      show(result, result.number
        ? `Photo ${file.name}, ${result.digits_seen} digits${result.digits_seen > result.number_probabilities.length
            ? ` (the first ${result.number_probabilities.length} read)` : ""}, each `
          + result.number_probabilities.map((p) => `${(p * 100).toFixed(0)} %`).join(", ") + " sure"
        : `Photo ${file.name}`, "", result.milliseconds);
    }
  } catch (error) {
    if (sent === generation) showEmpty(error.message, true);
  }
});

// A phone's photo is 3-8 MB and the server takes 5: a big one is sent as a JPEG of at most
// SMALLER_SIDE pixels a side, made here (the browser applies the photo's EXIF orientation).
const BIG_PHOTO = 4 * 1024 * 1024;
const SMALLER_SIDE = 1600;

async function smaller(file) {
  const bitmap = await createImageBitmap(file).catch(() => null);
  if (!bitmap) return file;  // not an image the browser reads: the server says what it is
  const scale = Math.min(1, SMALLER_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";  // transparency composited on white paper, as the server would
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise((done) => canvas.toBlob((blob) => done(blob || file), "image/jpeg", 0.92));
}

function previewPhoto(file) {
  const url = URL.createObjectURL(file);
  const image = new Image();
  image.onload = () => {
    wipePad();
    const scale = Math.min(pad.width / image.width, pad.height / image.height);
    const w = image.width * scale, h = image.height * scale;
    ink.drawImage(image, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    URL.revokeObjectURL(url);
  };
  image.onerror = () => URL.revokeObjectURL(url);
  image.src = url;
}

// ---------------------------------------------------------------------------------------------
// Showing an answer

function setStatus(text, isError = false) {  // text: a string, or strings and elements
  const status = $("status");
  status.replaceChildren(...[text].flat());
  status.classList.toggle("error", isError);
}

function showEmpty(message, isError = false) {
  setStatus(message, isError);
  $("prediction").textContent = "?";
  $("prediction").classList.add("none");  // a question mark, not an answer: not in the answer's colour
  $("prediction").classList.remove("unsure");
  $("confidence").textContent = isError ? "No prediction" : "Draw something";
  paintImage($("seen"), null);
  drawBars($("bars"), classes, null);
  $("layers").innerHTML = '<p class="empty">The activations appear when you draw.</p>';
}

const UNSURE = 0.5;  // below this the top class has less than half the probability: the network guesses

// Said with every answer until the learner starts a new drawing: the answer that follows a change
// (the page asks again at once) would otherwise replace the sentence before anyone reads it.
let modelNews = "";

// Shown on the status line but not read out: the milliseconds, new with every answer, are no part of it.
function unspoken(text) {
  const span = Object.assign(document.createElement("span"), { textContent: text });
  span.setAttribute("aria-hidden", "true");
  return span;
}

function show(result, status, tip = "", milliseconds = null) {
  if (servedModel && result.model && result.model !== servedModel) {
    // another page's run ended, or it loaded a run: describe the model that answered, not the old one
    servedModel = result.model;  // at once: answers that arrive before /api/model does are not news
    modelNews = ` The server now answers with another model, ${result.model} (a run ended, or one was loaded).`;
    document.dispatchEvent(new CustomEvent("modelchanged", { detail: result.model }));
  }
  const p = result.probabilities[result.prediction];
  const guess = p < UNSURE;  // a guess must not look, or sound, like an answer
  const answer = result.number  // a photographed number: its digits, read one by one
    ? `${result.number}, read digit by digit.`
    : `${result.label}, ${(p * 100).toFixed(1)} % sure${guess ? ", a guess" : ""}.`;
  const time = milliseconds === null ? [] : [unspoken(`: answered in ${milliseconds.toFixed(1)} ms on the server`)];
  setStatus([status.replace(/\.$/, ""), ...time, `: ${answer}${modelNews}${tip}`]);  // the status line is read aloud
  $("prediction").classList.remove("none");
  $("prediction").classList.toggle("unsure", guess && !result.number);
  $("prediction").textContent = result.number || result.label;
  $("confidence").textContent = result.number
    ? `${result.number_probabilities.length} digits, each at least `
      + `${(Math.min(...result.number_probabilities) * 100).toFixed(0)} % sure; the bars read all the ink as one`
    : `${(p * 100).toFixed(1)} % sure` + (guess ? ": a guess, not an answer" : "");
  paintImage($("seen"), result.input, 1);
  drawBars($("bars"), classes, result.probabilities, result.prediction);
  drawLayers($("layers"), result.activations);
}

// ---------------------------------------------------------------------------------------------
// The gallery of mistakes

async function loadGallery(seed = null) {
  galleryLoaded = true;
  const which = $("gallery-set").value;
  const grid = $("gallery");
  const status = $("gallery-status");
  status.textContent = "Loading…";
  status.classList.remove("error");
  const query = new URLSearchParams({ set: which, n: "24" });
  if (seed !== null) query.set("seed", String(seed));
  try {
    const gallery = await api(`api/gallery?${query}`);
    // the keyboard's focus on a tile stays on the tile in its place (rebuilt when the served model
    // changes, the tile's button went and the focus fell to <body>: the accessibility audit)
    const focused = [...grid.children].indexOf(document.activeElement);
    const right = gallery.size ? (100 * (1 - gallery.mistakes / gallery.size)).toFixed(1) : "0";
    status.textContent = `${gallery.mistakes.toLocaleString()} of ${gallery.size.toLocaleString()} ${which} ${things} `
      + `are wrong (${right} % right). Showing ${gallery.items.length}; click one to look inside.`;
    grid.innerHTML = "";
    for (const item of gallery.items) grid.append(galleryTile(item));
    if (focused >= 0) (grid.children[Math.min(focused, grid.children.length - 1)] || $("gallery-set")).focus();
  } catch (error) {
    grid.innerHTML = "";
    status.textContent = error.message;
    status.classList.add("error");
  }
}

function galleryTile(item) {
  const tile = document.createElement("button");
  tile.type = "button";
  tile.className = "tile";
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 28;
  paintImage(canvas, item.pixels);
  const truth = document.createElement("span");
  truth.innerHTML = "true <b></b>";
  truth.querySelector("b").textContent = classes[item.label];
  const said = document.createElement("span");
  said.innerHTML = "said <i></i>";
  said.querySelector("i").textContent = `${classes[item.prediction]} (${(item.confidence * 100).toFixed(0)}\u00a0%)`;  // never broken inside
  tile.title = `image ${item.index} of the set`;
  tile.append(canvas, truth, said);
  tile.addEventListener("click", () => openGalleryItem(item));
  return tile;
}

async function openGalleryItem(item) {
  showTab("draw");
  $("tab-button-draw").focus();  // the tile just pressed is hidden now: keep the keyboard in the page
  startOver("gallery");
  const sent = generation;
  // Show the digit big on the pad (drawing on it starts afresh), and send its exact 28x28 pixels.
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 28;
  paintImage(canvas, item.pixels);
  ink.imageSmoothingEnabled = false;
  ink.drawImage(canvas, 0, 0, pad.width, pad.height);
  ink.imageSmoothingEnabled = true;
  try {
    const pixels = item.pixels.map((row) => row.map((v) => v / 255));
    const result = await postJSON("api/predict", { pixels, preprocess: false });
    if (sent === generation) {
      show(result, `Image ${item.index} of the ${$("gallery-set").value} set, true label ${classes[item.label]}`);
    }
  } catch (error) {
    if (sent === generation) showEmpty(error.message, true);
  }
}

$("gallery-more").addEventListener("click", () => loadGallery());
$("gallery-set").addEventListener("change", () => loadGallery());

// ---------------------------------------------------------------------------------------------
// The model

const percent = (x) => `${(x * 100).toFixed(1)} %`;
const known = (x) => Number.isFinite(x);  // a metric that was not measured (no dev set) arrives as null

// A model of other classes than the digits 0-9 (letters, clothes) asks for one of its own classes.
function nameTheClasses() {
  if (classes.length === 10 && classes.every((name, i) => name === String(i))) return;
  const some = classes.slice(0, 3).join(", ") + (classes.length > 3 ? ", …" : "");
  const wasHint = $("status").textContent === hint;
  things = "images";
  hint = `Draw one of its ${classes.length} classes (${some}), big and centred, with the mouse, a finger or a pen.`;
  $("tagline").textContent = `Draw one of ${some} and watch a NumPy network think`;
  document.title = "scratchnn: draw one of its classes";
  $("pad-title").textContent = "Your drawing";
  $("gallery-title").textContent = "Images the model gets wrong";
  $("pad").setAttribute("aria-label", $("pad").getAttribute("aria-label").replace("one digit", "one of its classes"));
  if (wasHint) setStatus(hint);
}

async function loadModel() {
  try {
    const model = await api("api/model");
    servedModel = model.name;
    classes = model.classes;
    nameTheClasses();
    drawBars($("bars"), classes, null);
    for (const option of $("gallery-set").options) {
      option.disabled = !model.gallery_sets.includes(option.value);
      option.title = option.disabled ? `the served model's data has no ${option.value} set (a CSV or IDX file `
        + "has its dev split only; a named dataset such as --dataset mnist has a test set)" : "";
      option.textContent = option.disabled ? `${option.value} (none in this data)` : option.value;
    }
    const m = model.metrics;
    const which = known(m.test_accuracy) ? "test" : "dev";
    const accuracy = m[`${which}_accuracy`];
    const architecture = model.architecture.replaceAll("->", "→");
    $("model-line").textContent = `${model.name} · ${architecture} · `
      + `${model.num_parameters.toLocaleString()} parameters`
      + (known(accuracy) ? ` · ${which} accuracy ${percent(accuracy)}` : "")
      + (model.members.length > 1 ? ` · ensemble of ${model.members.length}: probabilities averaged, `
         + `layers and facts shown for ${model.name}` : "")
      + (model.tta > 1 ? ` · TTA x${model.tta}: probabilities averaged over ${model.tta} views of each image` : "");
    const facts = [
      ["Run", model.name], ["File", model.path], ["Architecture", architecture],
      ["Parameters", model.num_parameters.toLocaleString()], ["Input", `(N, ${model.input_shape.join(", ")})`],
      ["Trained", model.created ? model.created.replace("T", " ") : "unknown"],
    ];
    if (model.members.length > 1) facts.unshift(["Ensemble", `${model.members.join(", ")} (probabilities averaged)`]);
    if (model.tta > 1) facts.push(["Test-time augmentation", `x${model.tta}: the image and ${model.tta - 1} fixed `
                                   + `view${model.tta > 2 ? "s" : ""} of it, probabilities averaged; `
                                   + "the layers show the image itself"]);
    for (const [key, label] of [["train_accuracy", "Train accuracy"], ["dev_accuracy", "Dev accuracy"],
                                ["test_accuracy", "Test accuracy"]]) {
      if (known(m[key])) facts.push([label, percent(m[key])]);
    }
    if (known(m.epochs)) facts.push(["Epochs", String(m.epochs)]);
    if (known(m.train_seconds)) facts.push(["Training time", `${m.train_seconds.toFixed(1)} s`]);
    const dl = $("model-facts");
    dl.innerHTML = "";
    for (const [key, value] of facts) {
      const item = document.createElement("div");
      item.append(Object.assign(document.createElement("dt"), { textContent: key }), breakable(value));
      dl.append(item);
    }
    fillTable($("model-layers"), ["#", "Layer", "Output", "Parameters"], model.layers.map((l) =>
      [l.index, l.description, `(N, ${l.output_shape.join(", ")})`, l.parameters.toLocaleString()]));
    fillTable($("model-config"), ["Option", "Value"], Object.entries(model.config)
      .filter(([, v]) => v !== "" && v !== null)
      .map(([k, v]) => [k, configText(v)]));
  } catch (error) {
    $("model-line").textContent = `Could not load the model: ${error.message}`;
  }
}

function breakable(text) {
  // a <dd> of the text that may break after a dot, slash or underscore ("model.<wbr>safetensors"), not mid-word
  const dd = document.createElement("dd");
  for (const part of String(text).split(/(?<=[./_])/)) dd.append(part, document.createElement("wbr"));
  return dd;
}

function configText(value) {
  // A config value as a line of text: a list joined ('none' when empty); the server words the rest.
  if (Array.isArray(value)) return value.length ? value.join(", ") : "none";
  return String(value);
}

// A run ended or the Runs tab loaded one: the Draw tab answers with the new model at once.
document.addEventListener("modelchanged", () => {
  galleryLoaded = false;
  loadModel();
  if (!$("tab-gallery").hidden) loadGallery();  // the open gallery shows the new model's mistakes
  if (hasInk) requestPrediction();
});

wipePad();
drawBars($("bars"), classes, null);
paintImage($("seen"), null);
loadModel();
