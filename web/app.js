// The sk2 viewer page. One WebSocket to the gateway (protocol "sk2-view") brings the state
// (servers, devices, streams), the figures once a second, and binary frames; the page says
// which streams it wants. Frames are only stored as they arrive; drawing happens once per
// animation frame with the newest frame of each stream, so a page that cannot keep up skips
// frames rather than falling behind. The message format is in docs/http-api.md.
'use strict';

// Near to far, as src/gateway/image.c: red, orange, yellow, green, cyan, blue, dark blue.
const STOPS = [[200, 30, 30], [245, 130, 30], [240, 220, 50], [80, 200, 90],
  [40, 190, 220], [40, 90, 220], [40, 30, 120]];
const LUT = new Uint32Array(1024); // ABGR, for Uint32 views of ImageData (little-endian)
const LUT_RGB = [];
for (let i = 0; i < 1024; i++) {
  const t = (i / 1023) * (STOPS.length - 1);
  const k = Math.min(Math.floor(t), STOPS.length - 2), f = t - k;
  const c = [0, 1, 2].map((j) => Math.round(STOPS[k][j] * (1 - f) + STOPS[k + 1][j] * f));
  LUT[i] = (0xff000000 | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0;
  LUT_RGB.push(c);
}
const KINDS = { 1: 'depth', 2: 'color', 3: 'ir' };

const tiles = new Map(); // device key ("s0:ID": one per server and device) -> tile
let socket = null;
let state = { servers: [], devices: [] };
// Keyed commands in flight: ref -> { tile, key }. The gateway answers each with one
// command-done message carrying the same ref.
const pending = new Map();
let nextRef = 1;
// The keys the page offers, in this order, when the server says they are settable.
// Keys the tile's settings line offers when the server lists them as settable: the depth
// stream's size and default codec too, the ones a user tries first (`sk2 ctl` has the rest).
const EDITABLE = ['label', 'location', 'running', 'fps', 'resolution.depth', 'codec.depth'];

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(x, digits) {
  return typeof x === 'number' && isFinite(x) ? x.toFixed(digits) : '–';
}

// The depth stream's description, and its metres per value (0: the server named no unit).
function depthStream(device) {
  return device.streams.find((s) => s.kind === 'depth');
}
function unitOf(device) {
  const s = depthStream(device);
  return s && typeof s.depth_unit_m === 'number' && s.depth_unit_m > 0 ? s.depth_unit_m : 0;
}

// A depth value as a distance: metres with 3 decimals, or the bare value when the unit is
// unknown.
function distance(value, unit) {
  return unit ? `${(value * unit).toFixed(3)} m` : `${value} (unit unknown)`;
}

// ---- Servers and devices -------------------------------------------------------------------

function renderServers() {
  const box = document.getElementById('servers');
  box.replaceChildren();
  if (!state.servers.length) box.append(el('p', 'empty', 'No servers yet.'));
  for (const s of state.servers) {
    const div = el('div', 'server' + (s.connected ? ' connected' : ''));
    div.dataset.server = s.id;
    div.append(el('b', null, s.name || s.discovered_as || s.endpoint), ' ');
    div.append(el('span', 'status', s.connected ? `${s.devices.length} device(s)` : s.status));
    div.append(el('div', 'endpoint', s.endpoint));
    div.append(el('div', 'clock', ''));
    box.append(div);
  }
}

function makeTile(device) {
  const node = document.getElementById('tile').content.firstElementChild.cloneNode(true);
  node.dataset.device = device.key;
  node.querySelector('.name').textContent = device.id;
  const tile = { node, device, views: {}, frames: {}, skipped: {}, lastSeq: {}, cloud: null };
  for (const kind of ['depth', 'ir', 'color']) {
    const fig = node.querySelector('.view.' + kind);
    tile.views[kind] = { fig, canvas: fig.querySelector('canvas.image'), pending: null, busy: false,
      counter: fig.querySelector('.frames') };
    tile.frames[kind] = 0;
    tile.skipped[kind] = 0;
  }
  tile.cloud = new PointCloud(node.querySelector('.view.cloud canvas'));
  const bar = node.querySelector('.legend .bar').getContext('2d');
  for (let x = 0; x < 256; x++) {
    const c = LUT_RGB[Math.round((x / 255) * 1023)];
    bar.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
    bar.fillRect(x, 0, 1, 10);
  }
  const depthCanvas = tile.views.depth.canvas;
  const cursor = node.querySelector('.cursor');
  depthCanvas.addEventListener('mousemove', (e) => {
    const f = tile.depthFrame;
    if (!f) return;
    const r = depthCanvas.getBoundingClientRect();
    const u = Math.floor(((e.clientX - r.left) / r.width) * f.width);
    const v = Math.floor(((e.clientY - r.top) / r.height) * f.height);
    if (u < 0 || v < 0 || u >= f.width || v >= f.height) return;
    const d = f.pixels[v * f.width + u];
    cursor.textContent = `(${u}, ${v}) ${d ? distance(d, unitOf(tile.device)) : 'no reading'}`;
  });
  depthCanvas.addEventListener('mouseleave', () => { cursor.textContent = '—'; });
  return tile;
}

function updateTile(tile, device) {
  tile.device = device;
  const server = state.servers.find((s) => s.id === device.server);
  const named = [device.label, device.location].filter(Boolean).join(' @ ');
  tile.node.querySelector('.where').textContent = (named ? `${named} · ` : '') +
    `serial ${device.serial || '–'} · ${device.server_name || ''} ${server ? server.endpoint : ''}`;
  for (const kind of ['ir', 'color']) {
    tile.views[kind].fig.hidden = !device.streams.some((s) => s.kind === kind);
  }
  const lines = [`id        ${device.id}`, `key       ${device.key}`,
    `serial    ${device.serial || '–'}`,
    `label     ${device.label || '–'}`, `location  ${device.location || '–'}`,
    `server    ${device.server_name} (${server ? server.endpoint : '?'})`];
  for (const [name, e] of Object.entries(device.endpoints || {})) lines.push(`${name.padEnd(9)} ${e}`);
  for (const s of device.streams) {
    lines.push('', `${s.kind}: ${s.width}x${s.height} ${s.format}, ${fmt(s.fps, 1)} fps, codecs ${(s.codecs || []).join(',')}`);
    if (s.kind === 'depth') {
      lines.push(s.depth_unit_m ? `  depth unit ${s.depth_unit_m} m (${fmt(1 / s.depth_unit_m, 0)} per metre)`
        : '  depth unit: none given by the server');
    }
    if (s.has_intrinsics && s.intrinsics) {
      const k = s.intrinsics;
      lines.push(`  fx ${fmt(k.fx, 3)} fy ${fmt(k.fy, 3)} cx ${fmt(k.cx, 3)} cy ${fmt(k.cy, 3)}`,
        `  k1 ${fmt(k.k1, 5)} k2 ${fmt(k.k2, 5)} k3 ${fmt(k.k3, 5)} p1 ${fmt(k.p1, 5)} p2 ${fmt(k.p2, 5)}`);
    } else {
      lines.push('  intrinsics: none given by the server');
    }
  }
  tile.node.querySelector('.details').textContent = lines.join('\n');
  // A point cloud needs the depth stream's intrinsics and unit: without them the page says so
  // rather than drawing one with a guessed lens or scale.
  const depth = depthStream(device);
  const why = !depth ? 'no depth stream'
    : !(depth.has_intrinsics && depth.intrinsics) ? 'no point cloud: the server gives no intrinsics for this depth stream'
      : !unitOf(device) ? 'no point cloud: the server gives no unit for this depth stream' : '';
  const cloudFig = tile.node.querySelector('.view.cloud');
  cloudFig.querySelector('canvas.image').hidden = !!why;
  const note = cloudFig.querySelector('.note');
  note.hidden = !why;
  note.textContent = why;
  tile.cloudReason = why;
  // The newest depth frame as a PLY file from the gateway (GET /api/devices/KEY/pointcloud.ply),
  // offered on the same terms as the drawn cloud.
  const save = cloudFig.querySelector('a.save-cloud');
  save.hidden = !!why;
  save.href = `/api/devices/${encodeURIComponent(device.key)}/pointcloud.ply`;
}

function applyState(next) {
  state = next;
  renderServers();
  const main = document.getElementById('devices');
  const keys = new Set(state.devices.map((d) => d.key));
  for (const [key, tile] of tiles) {
    if (!keys.has(key)) { tile.node.remove(); tiles.delete(key); }
  }
  for (const device of state.devices) {
    let tile = tiles.get(device.key);
    if (!tile) {
      tile = makeTile(device);
      tiles.set(device.key, tile);
      main.append(tile.node);
      command(tile, 'list');
    }
    updateTile(tile, device);
  }
  const empty = main.querySelector(':scope > .empty');
  if (empty) empty.hidden = tiles.size > 0;
  subscribe();
}

function subscribe() {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  const streams = [];
  for (const device of state.devices) {
    for (const s of device.streams) streams.push({ device: device.key, kind: s.kind });
  }
  socket.send(JSON.stringify({ type: 'subscribe', streams }));
}

// One line per server on its clock as the gateway estimates it (server clock minus the
// gateway's, with the bound), filled in from each stats message.
function clockText(c) {
  if (!c) return 'clock: no estimate';
  const sign = c.offset_ms >= 0 ? '+' : '';
  const drift = c.drift_ppm === null ? '' : `, drift ${fmt(c.drift_ppm, 2)} ppm`;
  const synced = c.synced === null ? '' : c.synced ? ', synced' : ', not synced';
  return `clock ${sign}${fmt(c.offset_ms, 3)} ms ± ${fmt(c.error_ms, 3)} ms${drift}${synced}`;
}

function applyStats(stats) {
  for (const s of stats.servers || []) {
    const line = document.querySelector(`#servers .server[data-server="${s.id}"] .clock`);
    if (line) line.textContent = clockText(s.clock);
  }
  const g = stats.gateway || {};
  document.getElementById('totals').textContent =
    `${g.servers || 0} server(s), ${g.devices || 0} device(s), ${g.websockets || 0} viewer(s)`;
  for (const tile of tiles.values()) {
    const body = tile.node.querySelector('table.stats tbody');
    body.replaceChildren();
    for (const s of (stats.streams || []).filter((x) => x.key === tile.device.key)) {
      const tr = el('tr');
      tr.dataset.kind = s.kind;
      const cells = [s.kind, s.subscribed ? s.codec : 'off', fmt(s.fps, 1), fmt(s.mbit_s, 2),
        fmt(s.ratio, 2), fmt(s.latency_ms, 2), String(s.dropped), String(tile.skipped[s.kind] || 0)];
      for (const c of cells) tr.append(el('td', null, c));
      body.append(tr);
    }
  }
}

// ---- Keyed commands -------------------------------------------------------------------------

// Sends one command for a tile's device; false when the socket is down.
function command(tile, key, value) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  const ref = nextRef++;
  const msg = { type: 'command', ref, device: tile.device.key, key };
  if (value !== undefined) msg.value = value;
  pending.set(ref, { tile, key });
  socket.send(JSON.stringify(msg));
  return true;
}

function showResult(tile, text, ok) {
  const out = tile.node.querySelector('.settings .result');
  out.textContent = text;
  out.dataset.ok = String(ok);
}

// Builds the editor from the server's `list` answer: only the keys it says are settable.
function buildControls(tile, keys) {
  const box = tile.node.querySelector('.settings .controls');
  box.replaceChildren();
  for (const name of EDITABLE) {
    const k = keys.find((x) => x.key === name);
    if (!k || !k.settable) continue;
    const label = el('label', null, name);
    label.title = k.help || '';
    const input = el('input');
    input.name = name;
    if (k.type === 'bool') {
      input.type = 'checkbox';
      input.checked = !!k.value;
      input.addEventListener('change', () => command(tile, name, input.checked));
      label.append(input);
    } else {
      input.type = k.type === 'string' ? 'text' : 'number';
      if (input.type === 'number') input.step = 'any';
      input.value = k.value === undefined || k.value === null ? '' : String(k.value);
      const set = el('button', null, 'set');
      set.type = 'button';
      set.name = name;
      const send = () => command(tile, name, input.type === 'number' ? Number(input.value) : input.value);
      set.addEventListener('click', send);
      input.addEventListener('keydown', (e) => { if (e.key === 'Enter') send(); });
      label.append(input, set);
    }
    box.append(label);
  }
  if (!box.childElementCount) box.append(el('span', 'dim', 'nothing settable'));
}

function onCommandDone(msg) {
  const p = pending.get(msg.ref);
  if (!p) return;
  pending.delete(msg.ref);
  const { tile, key } = p;
  if (!tiles.has(tile.device.key)) return;
  if (key === 'list') {
    const dev = msg.ok && msg.value && (msg.value.devices || [])[0];
    if (dev) buildControls(tile, dev.keys || []);
    else {
      const box = tile.node.querySelector('.settings .controls');
      box.replaceChildren(el('span', 'dim', msg.ok ? 'no keys' : `cannot list keys: ${msg.error}`));
    }
    return;
  }
  const input = tile.node.querySelector(`.settings input[name="${key}"]`);
  if (msg.ok) {
    if (input && input.type === 'checkbox') input.checked = !!msg.value;
    else if (input) input.value = String(msg.value);
    showResult(tile, `${key} = ${JSON.stringify(msg.value)}`, true);
  } else {
    showResult(tile, `${key}: ${msg.error} (${msg.code})`, false);
  }
}

// ---- Frames ---------------------------------------------------------------------------------

function parseFrame(buf) {
  const view = new DataView(buf);
  if (buf.byteLength < 48 || view.getUint32(0, false) !== 0x534b3257) return null; // "SK2W"
  const idLen = view.getUint8(7), offset = view.getUint32(44, true);
  if (offset > buf.byteLength || 48 + idLen > buf.byteLength) return null;
  const frame = {
    kind: KINDS[view.getUint8(5)], encoding: view.getUint8(6),
    id: new TextDecoder().decode(new Uint8Array(buf, 48, idLen)),
    width: view.getUint32(8, true), height: view.getUint32(12, true),
    sequence: view.getFloat64(16, true), captureUs: view.getFloat64(24, true),
    latencyUs: view.getFloat64(32, true), wireBytes: view.getUint32(40, true),
  };
  if (frame.encoding === 1) {
    if (offset + frame.width * frame.height * 2 > buf.byteLength) return null;
    frame.pixels = new Uint16Array(buf, offset, frame.width * frame.height);
  } else {
    frame.jpeg = new Uint8Array(buf, offset);
  }
  return frame;
}

function onFrame(frame) {
  const tile = tiles.get(frame.id);
  if (!tile || !frame.kind) return;
  const last = tile.lastSeq[frame.kind];
  if (last !== undefined && frame.sequence > last + 1) tile.skipped[frame.kind] += frame.sequence - last - 1;
  tile.lastSeq[frame.kind] = frame.sequence;
  const view = tile.views[frame.kind];
  view.pending = frame; // the newest wins
  tile.frames[frame.kind]++;
  view.counter.dataset.frames = String(tile.frames[frame.kind]);
  view.counter.textContent = `${tile.frames[frame.kind]} frames · #${frame.sequence}`;
}

function range(pixels) {
  let lo = 65535, hi = 0;
  for (let i = 0; i < pixels.length; i++) {
    const d = pixels[i];
    if (d === 0) continue;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  return hi ? [lo, hi] : [0, 0];
}

function fit(canvas, width, height) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
    canvas._image = null;
  }
  if (!canvas._image) {
    canvas._ctx = canvas.getContext('2d');
    canvas._image = canvas._ctx.createImageData(width, height);
    canvas._px = new Uint32Array(canvas._image.data.buffer);
  }
  return canvas._px;
}

function drawDepth(tile, frame) {
  const canvas = tile.views.depth.canvas;
  const px = fit(canvas, frame.width, frame.height);
  const [lo, hi] = range(frame.pixels);
  const span = hi > lo ? hi - lo : 1;
  const p = frame.pixels;
  for (let i = 0; i < p.length; i++) {
    const d = p[i];
    if (d === 0) { px[i] = 0xff000000; continue; }
    px[i] = LUT[(((d - lo) * 1023) / span) | 0];
  }
  canvas._ctx.putImageData(canvas._image, 0, 0);
  const unit = unitOf(tile.device);
  const legend = tile.node.querySelector('.legend');
  legend.querySelector('.min').textContent = distance(lo, unit);
  legend.querySelector('.max').textContent = distance(hi, unit);
  legend.dataset.minM = unit ? String(lo * unit) : '';
  legend.dataset.maxM = unit ? String(hi * unit) : '';
  tile.depthFrame = frame;
  drawCloud(tile, frame, lo, hi);
}

// The point cloud of a depth frame, only with the stream's own intrinsics and unit.
function drawCloud(tile, frame, lo, hi) {
  const stream = depthStream(tile.device);
  const unit = unitOf(tile.device);
  if (tile.cloudReason || !stream || !stream.intrinsics || !unit) return;
  tile.cloud.draw(frame.pixels, frame.width, frame.height, stream.intrinsics, unit, lo, hi, LUT);
}

function drawIr(tile, frame) {
  const canvas = tile.views.ir.canvas;
  const px = fit(canvas, frame.width, frame.height);
  const [, hi] = range(frame.pixels);
  const scale = hi ? 1 / hi : 0;
  const p = frame.pixels;
  for (let i = 0; i < p.length; i++) {
    const g = Math.round(255 * Math.sqrt(p[i] * scale));
    px[i] = (0xff000000 | (g << 16) | (g << 8) | g) >>> 0;
  }
  canvas._ctx.putImageData(canvas._image, 0, 0);
}

function drawColor(tile, frame) {
  const view = tile.views.color;
  if (view.busy) { view.pending = frame; return; }
  view.busy = true;
  createImageBitmap(new Blob([frame.jpeg], { type: 'image/jpeg' })).then((bitmap) => {
    const canvas = view.canvas;
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    canvas.getContext('2d').drawImage(bitmap, 0, 0);
    bitmap.close();
  }).catch(() => {}).finally(() => { view.busy = false; });
}

function draw() {
  for (const tile of tiles.values()) {
    for (const kind of ['depth', 'ir', 'color']) {
      const view = tile.views[kind];
      const frame = view.pending;
      if (!frame) continue;
      view.pending = null;
      if (kind === 'depth') drawDepth(tile, frame);
      else if (kind === 'ir') drawIr(tile, frame);
      else drawColor(tile, frame);
    }
    if (tile.cloud.dirty && tile.depthFrame) {
      const [lo, hi] = range(tile.depthFrame.pixels);
      drawCloud(tile, tile.depthFrame, lo, hi);
    }
  }
  requestAnimationFrame(draw);
}

// ---- Connection -----------------------------------------------------------------------------

function connect() {
  const link = document.getElementById('link');
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  socket = new WebSocket(scheme + location.host + '/ws', 'sk2-view');
  socket.binaryType = 'arraybuffer';
  socket.onopen = () => {
    link.textContent = 'live';
    link.className = 'badge ok';
    pending.clear();
    subscribe();
    for (const tile of tiles.values()) command(tile, 'list');
  };
  socket.onmessage = (e) => {
    if (typeof e.data === 'string') {
      const msg = JSON.parse(e.data);
      if (msg.type === 'state') applyState(msg.data);
      else if (msg.type === 'stats') applyStats(msg.data);
      else if (msg.type === 'command-done') onCommandDone(msg);
      return;
    }
    const frame = parseFrame(e.data);
    if (frame) onFrame(frame);
  };
  socket.onclose = () => {
    link.textContent = 'gateway lost: reconnecting';
    link.className = 'badge bad';
    setTimeout(connect, 1000);
  };
}

connect();
requestAnimationFrame(draw);
