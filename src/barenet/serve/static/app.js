// barenet serve: draw on the canvas, POST it to /api/predict, show what comes back.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const input28 = document.getElementById("input28");
const barsEl = document.getElementById("bars");
const labelEl = document.getElementById("label");
const confEl = document.getElementById("confidence");
const errorEl = document.getElementById("error");
const explainEl = document.getElementById("explain");
const LINE_WIDTH = 22;  // ~ MNIST's stroke once the digit is scaled to 20 px
let classes = [];
let drawing = false, dirty = false, inFlight = false, pending = null, lastSent = 0;
let last = null;
// Bumped whenever the pad is cleared or replaced: an answer (or a queued send) for the old
// drawing must not overwrite what the user sees now (a stroke's last PNG is encoded
// asynchronously and could otherwise arrive after an uploaded image's answer).
let epoch = 0;

function clearPad() {
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  dirty = false;
  epoch += 1;
}

function point(ev) {
  const r = pad.getBoundingClientRect();
  return { x: (ev.clientX - r.left) * pad.width / r.width, y: (ev.clientY - r.top) * pad.height / r.height };
}

function strokeTo(p) {
  ctx.strokeStyle = "#111111";
  ctx.lineWidth = LINE_WIDTH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(last.x, last.y);
  ctx.lineTo(p.x + 0.01, p.y);  // a tap still leaves a dot
  ctx.stroke();
  last = p;
  dirty = true;
}

pad.addEventListener("pointerdown", (ev) => {
  ev.preventDefault();
  pad.setPointerCapture(ev.pointerId);
  drawing = true;
  last = point(ev);
  strokeTo(last);
});
pad.addEventListener("pointermove", (ev) => {
  if (!drawing) return;
  ev.preventDefault();
  const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  for (const e of events.length ? events : [ev]) strokeTo(point(e));
  if (performance.now() - lastSent > 150) sendCanvas();
});
function endStroke(ev) {
  if (!drawing) return;
  drawing = false;
  if (ev && pad.hasPointerCapture(ev.pointerId)) pad.releasePointerCapture(ev.pointerId);
  sendCanvas();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

document.getElementById("clear").addEventListener("click", () => {
  clearPad();
  showEmpty();
});

document.getElementById("upload").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  ev.target.value = "";
  if (!file) return;
  epoch += 1;  // whatever was drawn before is no longer the question
  try {
    const bitmap = await createImageBitmap(file);
    clearPad();
    const s = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const w = bitmap.width * s, h = bitmap.height * s;
    ctx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  } catch (e) { /* the server says what is wrong with the file */ }
  send(file, file.type || "application/octet-stream");
});

function sendCanvas() {
  if (!dirty) return;
  const e = epoch;
  pad.toBlob((blob) => { if (e === epoch) send(blob, "image/png"); }, "image/png");
}

async function send(blob, type) {
  if (inFlight) { pending = [blob, type, epoch]; return; }
  inFlight = true;
  lastSent = performance.now();
  const sentFor = epoch;
  try {
    const r = await fetch("/api/predict?explain=1&top=3", { method: "POST", headers: { "Content-Type": type }, body: blob });
    const answer = await r.json();
    if (!r.ok) throw new Error(answer.error || r.statusText);
    if (sentFor === epoch) show(answer);
  } catch (e) {
    if (sentFor === epoch) errorEl.textContent = String(e.message || e);
  } finally {
    inFlight = false;
    if (pending) {
      const [b, t, e] = pending; pending = null;
      if (e === epoch) send(b, t);
    }
  }
}

function buildBars() {
  barsEl.innerHTML = "";
  classes.forEach((name, i) => {
    const n = document.createElement("div"); n.className = "bar-name"; n.textContent = name;
    const track = document.createElement("div"); track.className = "bar-track";
    const fill = document.createElement("div"); fill.className = "bar-fill"; fill.id = "bar-" + i;
    track.appendChild(fill);
    const v = document.createElement("div"); v.className = "bar-value"; v.id = "val-" + i; v.textContent = "";
    barsEl.append(n, track, v);
  });
}

function showEmpty() {
  labelEl.textContent = "–";
  labelEl.classList.remove("long");
  confEl.textContent = "draw something";
  errorEl.textContent = "";
  classes.forEach((_, i) => {
    document.getElementById("bar-" + i).style.width = "0";
    document.getElementById("bar-" + i).classList.remove("best");
    document.getElementById("val-" + i).textContent = "";
  });
  input28.getContext("2d").clearRect(0, 0, 28, 28);
  explainEl.innerHTML = "";
}

function show(a) {
  if (a.blank) {  // no ink at all: the model's answer would be a guess about an empty field
    showEmpty();
    confEl.textContent = "no ink found: nothing to classify";
    return;
  }
  errorEl.textContent = "";
  labelEl.textContent = a.name;
  labelEl.classList.toggle("long", a.name.length > 2);
  confEl.textContent = (100 * a.probability).toFixed(1) + "% sure";
  a.probabilities.forEach((p, i) => {
    const fill = document.getElementById("bar-" + i);
    fill.style.width = (100 * p).toFixed(1) + "%";
    fill.classList.toggle("best", i === a.class);
    document.getElementById("val-" + i).textContent = (100 * p).toFixed(1) + "%";
  });
  paint(input28, a.input, grey);
  explainEl.innerHTML = "";
  const ex = a.explain;
  const items = ex.kind === "units" ? ex.units : ex.maps;
  for (const item of items) {
    const tile = document.createElement("div"); tile.className = "tile";
    const c = document.createElement("canvas");
    c.width = item.image[0].length; c.height = item.image.length;
    paint(c, item.image, ex.kind === "units" ? diverging : grey);
    const cap = document.createElement("div");
    cap.textContent = ex.kind === "units"
      ? "unit " + item.unit + ": " + item.activation.toFixed(2)
      : "map " + item.channel;
    tile.append(c, cap);
    explainEl.appendChild(tile);
  }
}

function grey(v) { return [v, v, v]; }
function diverging(v) {  // 128 = 0 weight; red positive, blue negative
  const t = (v - 128) / 127;
  return t >= 0 ? [255, 255 * (1 - t), 255 * (1 - t)] : [255 * (1 + t), 255 * (1 + t), 255];
}

function paint(canvas, rows, colour) {
  const h = rows.length, w = rows[0].length;
  const c = canvas.getContext("2d");
  const img = c.createImageData(w, h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const [r, g, b] = colour(rows[y][x]);
    const k = 4 * (y * w + x);
    img.data[k] = r; img.data[k + 1] = g; img.data[k + 2] = b; img.data[k + 3] = 255;
  }
  c.putImageData(img, 0, 0);
}

async function init() {
  clearPad();
  const r = await fetch("/api/model");
  const m = await r.json();
  classes = m.classes;
  document.getElementById("model").textContent =
    m.name + " · " + m.type.toUpperCase() + " · " + m.dataset + " · " + m.parameters.toLocaleString() + " parameters";
  document.getElementById("draw-title").textContent = m.dataset === "mnist" ? "Draw a digit" : "Draw a garment";
  const units = m.type === "mlp";
  document.getElementById("explain-title").textContent = units
    ? "First layer: the units that respond most" : "First conv layer: feature maps";
  document.getElementById("explain-hint").textContent = units
    ? "Each tile is a hidden unit's 28x28 incoming weights (red positive, blue negative) and its activation on your drawing."
    : "Each tile is one channel of the first convolution's output (after its activation) on your drawing.";
  buildBars();
  showEmpty();
}
init();
