// Line charts on a canvas, no library: axes with a few ticks, one polyline per series.

export const COLORS = ["#4f46e5", "#e4572e", "#0f7b6c", "#b8860b", "#8e44ad", "#17a2b8", "#c2185b", "#5f6778"];
// Lines told apart by more than their colour: solid, dashed, dotted, dash-dot (in CSS pixels)
export const DASHES = [[], [9, 5], [2, 4], [12, 4, 2, 4]];
export const DASH_NAMES = ["solid", "dashed", "dotted", "dash-dot"];

export function drawChart(canvas, series, { yMin = null, yMax = null, xMax = null, yLabel = "", xLabel = "" } = {}) {
  // series: [{points: [[x, y], ...], color, width = 2, dots = false, dash = []}]; null y values are skipped.
  const ctx = canvas.getContext("2d");
  // text and margins in canvas pixels per CSS pixel: a 520-pixel canvas shown 325 wide on a phone
  // keeps 11-pixel text, not 7
  const s = Math.max(1, canvas.width / (canvas.clientWidth || canvas.width));
  const w = canvas.width, h = canvas.height, left = 44 * s, right = 14 * s, top = 10 * s;
  const bottom = (xLabel ? 38 : 24) * s, ticks = h - bottom + 18 * s;  // the x ticks' row; the x axis' name under it
  ctx.fillStyle = "#fff";  // its own white: under forced colours the page behind it may be black
  ctx.fillRect(0, 0, w, h);
  const all = series.flatMap((line) => line.points.filter(([, y]) => Number.isFinite(y)));
  const xs = all.map(([x]) => x), ys = all.map(([, y]) => y);
  const x1 = Math.max(xMax ?? 0, ...xs, 1);
  let y0 = yMin ?? Math.min(...ys, Infinity), y1 = yMax ?? Math.max(...ys, -Infinity);
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) { y0 = 0; y1 = 1; }
  if (y1 - y0 < 1e-9) { y1 += 0.5; y0 -= 0.5; }
  const px = (x) => left + (x / x1) * (w - left - right);
  const py = (y) => top + (1 - (y - y0) / (y1 - y0)) * (h - top - bottom);
  ctx.strokeStyle = "#e2e5ec"; ctx.fillStyle = "#5f6778"; ctx.lineWidth = 1;
  ctx.font = `${Math.round(11 * s)}px system-ui, sans-serif`;
  const yStep = niceStep((y1 - y0) / 4), digits = Math.max(0, -Math.floor(Math.log10(yStep)));
  for (let y = Math.ceil(y0 / yStep - 1e-9) * yStep; y <= y1 + yStep * 1e-9; y += yStep) {
    ctx.beginPath(); ctx.moveTo(left, py(y)); ctx.lineTo(w - right, py(y)); ctx.stroke();
    ctx.textAlign = "right"; ctx.fillText(y.toFixed(digits), left - 4 * s, py(y) + 4 * s);
  }
  ctx.textAlign = "center";
  const xStep = Math.max(1, niceStep(x1 / 4));  // epochs and steps are whole numbers: no tick twice
  for (let x = 0; x <= x1; x += xStep) ctx.fillText(String(x), px(x), ticks);
  if (xLabel) ctx.fillText(xLabel, (left + w - right) / 2, h - 4 * s);
  for (const line of series) {  // NOTE: not `s`, the scale: the dots' radius was NaN, and no dot was drawn
    const points = line.points.filter(([, y]) => Number.isFinite(y));
    ctx.strokeStyle = line.color; ctx.fillStyle = line.color; ctx.lineWidth = line.width ?? 2;
    ctx.setLineDash((line.dash ?? []).map((d) => d * s));
    ctx.beginPath();
    points.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
    ctx.stroke();
    ctx.setLineDash([]);
    if (line.dots || points.length === 1) {
      for (const [x, y] of points) { ctx.beginPath(); ctx.arc(px(x), py(y), 2.5 * s, 0, 2 * Math.PI); ctx.fill(); }
    }
  }
  if (yLabel) {  // last, on a white patch, so no curve runs through it
    ctx.textAlign = "left";
    ctx.fillStyle = "rgba(255,255,255,0.85)";
    ctx.fillRect(left + 2 * s, top + s, ctx.measureText(yLabel).width + 4 * s, 13 * s);
    ctx.fillStyle = "#5f6778"; ctx.fillText(yLabel, left + 4 * s, top + 11 * s);
  }
}

export function lineKey(color, dash = []) {
  // a legend's sample of a line, in its colour and dash pattern
  const key = Object.assign(document.createElement("canvas"), { width: 28, height: 8, className: "line-key" });
  const ctx = key.getContext("2d");
  Object.assign(ctx, { strokeStyle: color, lineWidth: 2 });
  ctx.setLineDash(dash);
  ctx.beginPath(); ctx.moveTo(0, 4); ctx.lineTo(28, 4); ctx.stroke();
  return key;
}

function niceStep(rough) {
  // 1, 2 or 5 times a power of ten, at least ``rough``: ticks at round numbers
  const power = 10 ** Math.floor(Math.log10(rough));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= rough * (1 - 1e-9));
}

export function paintTiles(box, picture, { signed = true, size = 42 } = {}) {
  // picture: {count, height, width, data: base64 of count·height·width grey bytes}; one canvas a tile.
  box.innerHTML = "";
  const bytes = Uint8Array.from(atob(picture.data), (c) => c.charCodeAt(0));
  const n = picture.height * picture.width;
  for (let t = 0; t < picture.count; t += 1) {
    const canvas = Object.assign(document.createElement("canvas"), { width: picture.width, height: picture.height });
    canvas.style.width = canvas.style.height = `${size}px`;
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(picture.width, picture.height);
    for (let i = 0; i < n; i += 1) {
      const v = bytes[t * n + i];
      // signed weights: orange positive, blue negative, grey zero; maps: grey levels
      const [r, g, b] = signed ? (v >= 128 ? [128 + (v - 128), 128 + (v - 128) * 0.55, 128 - (v - 128) * 0.6]
                                          : [v, v + (128 - v) * 0.2, 128 + (128 - v)]) : [v, v, v];
      image.data.set([r, g, b, 255], i * 4);
    }
    ctx.putImageData(image, 0, 0);
    box.append(canvas);
  }
}
