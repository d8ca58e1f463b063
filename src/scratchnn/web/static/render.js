// Drawing numbers as pictures: grey images, probability bars, activation heat strips, tables.

export function paintImage(canvas, rows, scale = 255) {
  // rows: (H, W) grey values; scale 1 for 0..1, 255 for 0..255. null paints black.
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, canvas.height);
  for (let y = 0; y < canvas.height; y++) {
    for (let x = 0; x < canvas.width; x++) {
      const v = rows ? Math.round((rows[y][x] / scale) * 255) : 0;
      const i = (y * canvas.width + x) * 4;
      image.data[i] = image.data[i + 1] = image.data[i + 2] = v;
      image.data[i + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
}

export function drawBars(list, classes, probabilities, winner = -1) {
  // One row per class: name, bar, percentage; the winner highlighted. null empties the bars.
  if (list.children.length !== classes.length) {
    list.innerHTML = "";
    for (const name of classes) {
      const item = document.createElement("li");
      item.innerHTML = '<span class="bar-label"></span><span class="bar-track"><span class="bar-fill"></span></span>'
        + '<span class="bar-value"></span><span class="visually-hidden"></span>';  // the last: the winner, said
      item.querySelector(".bar-label").textContent = name;
      list.append(item);
    }
  }
  [...list.children].forEach((item, i) => {
    const p = probabilities ? probabilities[i] : 0;
    item.classList.toggle("win", i === winner);
    item.querySelector(".bar-fill").style.width = `${(p * 100).toFixed(2)}%`;
    item.querySelector(".bar-value").textContent = probabilities ? `${(p * 100).toFixed(1)} %` : "";
    item.querySelector(".visually-hidden").textContent = i === winner ? " (prediction)" : "";
  });
}

// The "magma" look: silent units dark, strong ones bright; stops interpolated linearly.
const RAMP = [[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]];

function heat(t) {
  const x = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(x), RAMP.length - 2);
  const f = x - i;
  return RAMP[i].map((c, k) => Math.round(c + (RAMP[i + 1][k] - c) * f));
}

function paintHeat(canvas, values, width, height, peak) {
  // values: flat array of width*height numbers; |v| / peak picks the colour (negatives: cold blue).
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  values.forEach((v, i) => {
    const [r, g, b] = v >= 0 ? heat(v / peak) : [20, 60 + Math.round(120 * Math.min(-v / peak, 1)), 160];
    image.data.set([r, g, b, 255], i * 4);
  });
  ctx.putImageData(image, 0, 0);
}

export function drawLayers(box, activations) {
  // One row per hidden activation layer: a heat strip of its units, or its feature maps.
  box.innerHTML = "";
  if (!activations.length) {
    box.innerHTML = '<p class="empty">This model has no hidden activation layers.</p>';
    return;
  }
  activations.forEach((layer, n) => {
    const flat = layer.values ?? layer.maps.flat(2);
    const peak = Math.max(...flat.map(Math.abs), 1e-6);
    const active = flat.filter((v) => v > 0).length;
    const row = document.createElement("div");
    row.className = "layer";
    const title = document.createElement("div");
    title.className = "layer-title";
    let units = `${layer.shape[0]} units`;
    let counted = "";  // what the firing count is out of, when it is not the whole layer
    if (layer.maps) {
      const [h, w] = [layer.maps[0].length, layer.maps[0][0].length];
      units = `${layer.shape[0]} feature maps ${layer.shape[1]}×${layer.shape[2]}`
        + (h !== layer.shape[1] || w !== layer.shape[2] ? ` (shown at ${h}×${w})` : "");
      if (layer.maps.length !== layer.shape[0] || h !== layer.shape[1] || w !== layer.shape[2]) {
        counted = ` in the ${layer.maps.length} maps shown`;
      }
    }
    title.innerHTML = `<strong></strong> <span></span>`;
    title.querySelector("strong").textContent = `Hidden layer ${n + 1}`;
    title.querySelector("span").textContent =
      `${layer.name} (layer ${layer.index}) · ${units} · ${active} of ${flat.length} firing${counted} · peak ${peak.toFixed(2)}`;
    row.append(title);
    if (layer.values) {
      const strip = document.createElement("canvas");
      strip.className = "strip";
      paintHeat(strip, layer.values, layer.values.length, 1, peak);
      strip.title = `${layer.values.length} units of layer ${layer.index}`;
      row.append(strip);
    } else {
      const maps = document.createElement("div");
      maps.className = "maps";
      layer.maps.forEach((map, c) => {
        const canvas = document.createElement("canvas");
        canvas.title = `channel ${c}`;
        paintHeat(canvas, map.flat(), map[0].length, map.length, peak);
        maps.append(canvas);
      });
      if (layer.shape[0] > layer.maps.length) {
        const more = document.createElement("span");
        more.className = "more";
        more.textContent = `+${layer.shape[0] - layer.maps.length} more`;
        maps.append(more);
      }
      row.append(maps);
    }
    box.append(row);
  });
}

export function fillTable(table, header, rows, { rowHeaders = false } = {}) {
  // Plain text cells (textContent: nothing from the server is parsed as HTML). rowHeaders: each row's
  // first cell is its header (<th scope="row">), which a screen reader says with every cell of the row.
  table.innerHTML = "";
  const head = table.createTHead().insertRow();
  for (const text of header) {
    head.append(Object.assign(document.createElement("th"), { textContent: text, scope: "col" }));
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    row.forEach((text, i) => {
      const cell = rowHeaders && i === 0 ? tr.appendChild(document.createElement("th")) : tr.insertCell();
      if (cell.tagName === "TH") cell.scope = "row";
      cell.textContent = text;
    });
  }
}

export function unseen(text) {
  // Read out, not shown: what a colour or an empty header cell says to the eye.
  return Object.assign(document.createElement("span"), { className: "visually-hidden", textContent: text });
}
