// The drawing pad: strokes by pointer (mouse, touch and pen alike, a pen's pressure widening its
// line) or by the keyboard's pen, Undo, and how far the ink spreads (a dot is no digit; a digit a
// few pen widths tall gets a tip). app.js says what a stroke means: onPad's handlers hear of it.

import { announce } from "./announce.js";

const $ = (id) => document.getElementById(id);

export const pad = $("pad");
export const ink = pad.getContext("2d", { willReadFrequently: true });
const brush = $("brush");
export let stroke = null; // the last point of the stroke being drawn
export let hasInk = false;
// The drawing's extent and widest pen so far. Ink under DOT pen widths long is a dot, and the network
// would read even a dot as some digit: it is not sent (the server refuses one too: photos/preprocess.py).
const DOT = 3.5;
let extent = null;

// What app.js does when a stroke begins (before the pad's state is kept for Undo: it may wipe the
// pad), when the ink changed, when a stroke ends, and when one was taken back.
const handlers = { begin() {}, change() {}, end() {}, undone() {} };

export function onPad(given) { Object.assign(handlers, given); }

export function wipePad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  extent = null;
  strokesBefore.length = 0;
  $("undo").disabled = true;
}

// Undo: the pad as it was before each stroke (a 280x280 picture is 300 kB; the last UNDOS are kept).
const UNDOS = 30;
const strokesBefore = [];

function undo() {
  const before = strokesBefore.pop();
  if (!before) return;
  ink.putImageData(before.image, 0, 0);
  ({ extent, hasInk } = before);
  // the last stroke taken back: the keyboard's focus moves to Clear before Undo is disabled (not to <body>)
  if (strokesBefore.length === 0 && document.activeElement === $("undo")) $("clear").focus();
  $("undo").disabled = strokesBefore.length === 0;
  handlers.undone();
}

function spread(point, event) {
  const r = penWidth(event) / 2;
  const e = extent ?? { x0: point.x, x1: point.x, y0: point.y, y1: point.y, pen: 0 };
  extent = { x0: Math.min(e.x0, point.x - r), x1: Math.max(e.x1, point.x + r), y0: Math.min(e.y0, point.y - r),
             y1: Math.max(e.y1, point.y + r), pen: Math.max(e.pen, 2 * r) };
}

export const onlyADot = () => extent && Math.max(extent.x1 - extent.x0, extent.y1 - extent.y0) < DOT * extent.pen;
export const pensTall = () => (extent ? Math.max(extent.x1 - extent.x0, extent.y1 - extent.y0) / extent.pen
  : Infinity);

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return { x: ((event.clientX - box.left) * pad.width) / box.width,
           y: ((event.clientY - box.top) * pad.height) / box.height };
}

function penWidth(event) {
  // A pen draws thinner or thicker with pressure; mouse and touch report 0.5 while pressed.
  const pressure = event.pointerType === "pen" && event.pressure > 0 ? 0.5 + event.pressure : 1;
  return Number(brush.value) * pressure;
}

function dot(point, event) {
  // NOTE: a zero-length line draws nothing in some browsers, round cap or not: fill a disc.
  ink.fillStyle = "#fff";
  ink.beginPath();
  ink.arc(point.x, point.y, penWidth(event) / 2, 0, 2 * Math.PI);
  ink.fill();
  spread(point, event);
}

function lineTo(point, event) {
  ink.strokeStyle = "#fff";
  ink.lineCap = "round";
  ink.lineJoin = "round";
  ink.lineWidth = penWidth(event);
  ink.beginPath();
  ink.moveTo(stroke.x, stroke.y);
  ink.lineTo(point.x, point.y);
  ink.stroke();
  spread(point, event);
  stroke = point;
}

// A stroke begins (a pointer pressed, the keyboard's pen put down): the pad as it was is kept for Undo.
function beginStroke(point, event) {
  handlers.begin();
  strokesBefore.push({ image: ink.getImageData(0, 0, pad.width, pad.height), extent, hasInk });
  if (strokesBefore.length > UNDOS) strokesBefore.shift();
  $("undo").disabled = false;
  stroke = point;
  dot(stroke, event);
  hasInk = true;
  handlers.change();
}

function endStroke() {
  handlers.end();
  if (!stroke) return;
  stroke = null;
  handlers.change();
}

pad.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  pen.down = false;  // the keyboard's stroke, if any, ends where the pointer's begins
  pad.setPointerCapture(event.pointerId);
  beginStroke(padPoint(event), event);
});

pad.addEventListener("pointermove", (event) => {
  if (!stroke || pen.down) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) lineTo(padPoint(e), e);
  handlers.change();
});

for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { if (!pen.down) endStroke(); });  // not the keyboard's stroke
}

// A pen for the keyboard: the arrow keys move it (with Shift, in smaller steps), Space puts it down or lifts it.
const pen = { x: pad.width / 2, y: pad.height / 2, down: false };
const KEYBOARD = { pointerType: "keyboard" };  // for penWidth: the brush's width, as a mouse draws
const STEP = 14, SMALL_STEP = 4;  // pad pixels: 20 steps across the pad

function showPen() {  // a ring where the pen is, while the pad has the focus; filled while it is down
  const ring = $("pen");
  ring.hidden = document.activeElement !== pad;
  ring.classList.toggle("down", pen.down);
  ring.style.left = `${(100 * pen.x) / pad.width}%`;
  ring.style.top = `${(100 * pen.y) / pad.height}%`;
}

pad.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;  // Ctrl+Z, and the browser's own keys
  const step = event.shiftKey ? SMALL_STEP : STEP;
  const move = { ArrowUp: [0, -step], ArrowDown: [0, step], ArrowLeft: [-step, 0], ArrowRight: [step, 0] }[event.key];
  if (!move && event.key !== " ") return;
  event.preventDefault();  // the page does not scroll
  if (move) {
    pen.x = Math.min(pad.width, Math.max(0, pen.x + move[0]));
    pen.y = Math.min(pad.height, Math.max(0, pen.y + move[1]));
    if (pen.down && stroke) {
      lineTo({ x: pen.x, y: pen.y }, KEYBOARD);
      handlers.change();
    }
  } else if (!event.repeat) {  // Space held down puts the pen down once
    pen.down = !pen.down;
    if (pen.down) beginStroke({ x: pen.x, y: pen.y }, KEYBOARD);
    else endStroke();
  }
  showPen();
  // where the pen is, for a screen reader: the ring is for the eyes (the accessibility audit)
  const at = (share) => `${Math.round(100 * share)} %`;
  announce(`Pen ${pen.down ? "down" : "up"}, ${at(pen.x / pad.width)} across, ${at(pen.y / pad.height)} down.`, "pen");
});
pad.addEventListener("focus", showPen);
pad.addEventListener("blur", () => {
  if (pen.down) { pen.down = false; endStroke(); }
  showPen();
});

$("undo").addEventListener("click", undo);
document.addEventListener("keydown", (event) => {  // Ctrl+Z (Cmd+Z) on the Draw tab, not in a form field
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z" && !event.shiftKey
      && !$("tab-draw").hidden && !["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName)) {
    event.preventDefault();
    undo();
  }
});

brush.addEventListener("input", () => { $("brush-value").textContent = brush.value; });
