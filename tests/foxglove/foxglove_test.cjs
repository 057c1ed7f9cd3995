// The gateway's Foxglove WebSocket protocol, checked with the protocol's reference client
// (@foxglove/ws-protocol) and Foxglove's ROS 2 decoders (@foxglove/rosmsg,
// @foxglove/rosmsg2-serialization) against a real `sk2 serve --mock 1 --http` with a token.
//
// Checks: the handshake (token in the query, both subprotocols, refusals); serverInfo; the
// advertised channels of every stream; depth Image pixels equal the gateway's own PNG of the same
// frame; CameraInfo K equals /api's intrinsics; colour is the server's JPEG in a CompressedImage;
// IR mono16; PointCloud2 has one point per depth pixel with a reading; IR and colour are
// subscribed upstream only while a Foxglove client wants them; two clients at once; a client that
// stops reading costs no memory and holds up no one; unsubscribe stops messages; bad messages get
// a status error and the connection keeps working; compressedDepth; a replay with holes; a device
// that goes and comes back.
//
// usage: node foxglove_test.cjs SK2   (node_modules from `npm ci` in this folder)
"use strict";
const { spawn } = require("child_process");
const http = require("http");
const zlib = require("zlib");
const path = require("path");
const fs = require("fs");
const os = require("os");

const here = __dirname;
const load = (name) => require(path.join(here, "node_modules", name));
const { FoxgloveClient } = load("@foxglove/ws-protocol");
const { MessageReader } = load("@foxglove/rosmsg2-serialization");
const { parse } = load("@foxglove/rosmsg");
const WebSocket = load("ws");

const SK2 = process.argv[2];
const TOKEN = "foxglove-test-token-0123456789";
let passed = 0;
let failed = 0;

function check(what, ok, detail = "") {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${!ok && detail ? `: ${detail}` : ""}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, ms = 15000, stepMs = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > end) return value;
    await sleep(stepMs);
  }
}

function get(port, urlPath, binary = false) {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: "127.0.0.1", port, path: urlPath, headers: { Authorization: `Bearer ${TOKEN}` } },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode, headers: res.headers, body: binary ? body : body.toString() });
        });
      },
    );
    req.on("error", reject);
    req.setTimeout(10000, () => req.destroy(new Error("timeout")));
  });
}

// A 16-bit grey PNG (as the gateway writes latest.png) to its values, undoing every filter type.
function png16(buffer) {
  let offset = 8;
  let width = 0;
  let height = 0;
  const idat = [];
  while (offset < buffer.length) {
    const len = buffer.readUInt32BE(offset);
    const type = buffer.toString("ascii", offset + 4, offset + 8);
    const data = buffer.subarray(offset + 8, offset + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 16 || data[9] !== 0) throw new Error("not 16-bit grey");
    } else if (type === "IDAT") idat.push(data);
    offset += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * 2;
  const out = Buffer.alloc(stride * height);
  const bpp = 2;
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[y * stride + x - bpp] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? out[(y - 1) * stride + x - bpp] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + x] = v & 0xff;
    }
  }
  const values = new Uint16Array(width * height);
  for (let i = 0; i < values.length; i++) values[i] = out.readUInt16BE(2 * i);
  return { width, height, values };
}

// The ROS name token of a device id, as docs/formats.md states it.
function token(id) {
  const t = id.replace(/[^A-Za-z0-9]/g, "_");
  return /^[0-9]/.test(t) ? `d${t}` : t;
}

// A Foxglove client that records what it gets.
function connect(port, { query = `?token=${TOKEN}`, protocol } = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/${query}`, [protocol ?? FoxgloveClient.SUPPORTED_SUBPROTOCOL]);
  const client = new FoxgloveClient({ ws });
  const self = { ws, client, info: null, channels: new Map(), statuses: [], messages: [], closed: false, readers: new Map() };
  client.on("serverInfo", (info) => (self.info = info));
  client.on("advertise", (channels) => {
    for (const ch of channels) {
      self.channels.set(ch.id, ch);
      self.readers.set(ch.id, new MessageReader(parse(ch.schema, { ros2: true })));
    }
  });
  client.on("unadvertise", (ids) => ids.forEach((id) => self.channels.delete(id)));
  client.on("status", (s) => self.statuses.push(s));
  client.on("message", (m) => self.messages.push({ ...m, at: Date.now() }));
  client.on("close", () => (self.closed = true));
  client.on("error", () => {});
  self.byTopic = (topic) => [...self.channels.values()].find((c) => c.topic === topic);
  self.decode = (m) => {
    const ch = self.subs.get(m.subscriptionId);
    return self.readers.get(ch).readMessage(new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  };
  self.subs = new Map(); // subscription id -> channel id
  self.subscribe = (topic) => {
    const ch = self.byTopic(topic);
    const id = client.subscribe(ch.id);
    self.subs.set(id, ch.id);
    return id;
  };
  self.of = (id) => self.messages.filter((m) => m.subscriptionId === id);
  return self;
}

// The handshake's answer: HTTP status and the subprotocol chosen.
function handshake(port, query, protocol) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/${query}`, [protocol]);
    ws.on("open", () => {
      const chosen = ws.protocol;
      ws.once("message", (data) => {
        ws.close();
        resolve({ status: 101, protocol: chosen, first: JSON.parse(data.toString()) });
      });
    });
    ws.on("unexpected-response", (req, res) => {
      resolve({ status: res.statusCode });
      req.destroy();
    });
    ws.on("error", () => resolve({ status: 0 }));
  });
}

async function streamsSubscribed(port, key) {
  const r = await get(port, "/api/devices");
  const device = JSON.parse(r.body).devices.find((d) => d.key === key);
  return Object.fromEntries(device.streams.map((s) => [s.kind, s.subscribed]));
}

// The server's own figures (its stats, which the gateway relays in /api/stats): per stream, how
// many encodings it is running for subscribers.
async function serverEncodings(port) {
  const r = await get(port, "/api/stats");
  const server = JSON.parse(r.body).servers[0];
  const streams = server?.stats?.devices?.[0]?.streams ?? [];
  return Object.fromEntries(streams.map((s) => [s.kind, s.encodings.filter((e) => e.state === "encoding").length]));
}

// Starts `sk2 serve ARGS --http 127.0.0.1:0 --http-token TOKEN` and runs body(port, clients),
// then closes the clients and stops the server.
async function withServer(args, body) {
  const proc = spawn(SK2, ["serve", ...args, "--no-announce", "--no-status", "--http", "127.0.0.1:0",
    "--http-token", TOKEN], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  let out = "";
  const clients = [];
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL from sk2 serve: ${out} ${stderr}`)), 15000);
      proc.stdout.on("data", (d) => {
        out += d;
        const m = /web viewer \(?http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    await body(port, clients, proc.pid);
  } finally {
    clients.forEach((c) => c.ws.terminate());
    proc.kill("SIGINT");
    const code = await new Promise((r) => (proc.exitCode !== null ? r(proc.exitCode) : proc.once("exit", (c) => r(c))));
    check(`sk2 serve ${args[0]} ${args[1]} stops cleanly (exit 0, no sanitizer report)`,
      code === 0 && !/Sanitizer/.test(stderr), `exit ${code}: ${stderr.slice(-2000)}`);
  }
}

// A 16-bit grey PNG (no filter) of width x height values.
function writePng16(file, width, height, value) {
  const rows = Buffer.alloc((2 * width + 1) * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) rows.writeUInt16BE(value(x, y), y * (2 * width + 1) + 1 + 2 * x);
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, "ascii");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 16;
  fs.writeFileSync(file, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr), chunk("IDAT", zlib.deflateSync(rows)), chunk("IEND", Buffer.alloc(0))]));
}

// A TUM RGB-D folder (docs/devices.md) of depth frames with holes (value 0) here and there, with
// an sk2.json that gives the lens and the unit, so that the point cloud has fewer points than
// pixels.
const TUM_W = 64;
const TUM_H = 48;
const tumValue = (x, y) => ((x * 7 + y * 3) % 11 === 0 ? 0 : 5000 + 10 * y + x);
function writeTum(folder) {
  fs.mkdirSync(path.join(folder, "depth"), { recursive: true });
  let listing = "# depth maps\n";
  for (let i = 0; i < 30; i++) {
    const name = `depth/${(1000 + i / 30).toFixed(6)}.png`;
    writePng16(path.join(folder, name), TUM_W, TUM_H, tumValue);
    listing += `${(1000 + i / 30).toFixed(6)} ${name}\n`;
  }
  fs.writeFileSync(path.join(folder, "depth.txt"), listing);
  const intrinsics = { fx: 52.5, fy: 52.4, cx: 31.5, cy: 23.5, k1: 0, k2: 0, k3: 0, p1: 0, p2: 0 };
  const stream = { kind: "depth", format: "depth_mm16", width: TUM_W, height: TUM_H, fps: 30.0,
    depth_unit_m: 0.0002, intrinsics };
  fs.writeFileSync(path.join(folder, "sk2.json"), JSON.stringify({ device: { id: "tum-with-lens", serial: "",
    backend: "tum", streams: [stream] }, depth_png_unit_m: 0.0002 }));
}

async function runHoles(port, clients) {
  const c = connect(port);
  clients.push(c);
  const T = token("tum-with-lens");
  check("a device id with '-' gets the token tum_with_lens", T === "tum_with_lens");
  await waitFor(() => c.byTopic(`/sk2/${T}/depth/points`) && c.byTopic(`/sk2/${T}/depth/image_raw`));
  const depthSub = c.subscribe(`/sk2/${T}/depth/image_raw`);
  const pointsSub = c.subscribe(`/sk2/${T}/depth/points`);
  await waitFor(() => c.of(depthSub).length >= 2 && c.of(pointsSub).length >= 2);
  const expected = Array.from({ length: TUM_W * TUM_H }, (_, i) => tumValue(i % TUM_W, Math.floor(i / TUM_W)));
  const readings = expected.filter((v) => v !== 0).length;
  const image = c.of(depthSub).length ? c.decode(c.of(depthSub)[0]) : null;
  const data = image ? Buffer.from(image.data) : Buffer.alloc(0);
  check("replayed depth Image pixels equal the TUM PNG's values",
    image && image.width === TUM_W && image.height === TUM_H && expected.every((v, i) => data.readUInt16LE(2 * i) === v));
  const cloud = c.of(pointsSub).length ? c.decode(c.of(pointsSub)[0]) : null;
  check(`PointCloud2 of a frame with holes: one point per pixel with a reading (${readings} of ${TUM_W * TUM_H})`,
    cloud && cloud.width * cloud.height === readings && cloud.data.length === 12 * readings,
    cloud && `${cloud.width}x${cloud.height}`);
  if (cloud) {
    // The first point is the first pixel with a reading (x = 1, y = 0), deprojected.
    const d = Buffer.from(cloud.data);
    const z = tumValue(1, 0) * 0.0002;
    const want = [((1 - 31.5) * z) / 52.5, ((0 - 23.5) * z) / 52.4, z];
    const got = [d.readFloatLE(0), d.readFloatLE(4), d.readFloatLE(8)];
    check("its first point is pixel (1, 0) deprojected with the lens and the unit",
      got.every((v, i) => Math.abs(v - want[i]) < 1e-4), `${got} vs ${want}`);
  }
}

// A device that goes and comes back: unadvertised, then advertised again under the same ids.
async function runHotplug(port, clients) {
  const c = connect(port);
  clients.push(c);
  const removed = [];
  c.client.on("unadvertise", (ids) => removed.push(...ids));
  await waitFor(() => c.channels.size >= 8);
  const first = new Map([...c.channels.values()].map((ch) => [ch.topic, ch.id]));
  await waitFor(() => removed.length >= first.size, 20000);
  check(`an unplugged device's ${first.size} channels are unadvertised`,
    removed.length === first.size && [...first.values()].every((id) => removed.includes(id)), `${removed}`);
  await waitFor(() => c.channels.size >= first.size, 20000);
  check("plugged back, its channels are advertised again with the same ids",
    c.channels.size === first.size && [...c.channels.values()].every((ch) => first.get(ch.topic) === ch.id),
    JSON.stringify([...c.channels.values()].map((ch) => [ch.topic, ch.id])));
}

async function main() {
  await withServer(["--mock", "1", "--fps", "15", "--color-size", "320x240"], run);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sk2-foxglove-"));
  try {
    writeTum(path.join(tmp, "tum"));
    await withServer(["--replay", path.join(tmp, "tum"), "--loop"], runHoles);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  await withServer(["--mock", "1", "--fps", "5", "--color-size", "320x240", "--mock-unplug-after", "3",
    "--mock-replug-after", "3"], runHotplug);
}

// Resident memory of a process, bytes.
function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

async function run(port, clients, pid) {
  // The device, its streams and intrinsics as the HTTP API gives them.
  const device = await waitFor(async () => {
    const r = await get(port, "/api/devices");
    const d = JSON.parse(r.body).devices[0];
    return d && d.streams.length === 3 ? d : null;
  });
  check("the gateway lists the mock device with depth, IR and colour", !!device);
  const T = token(device.id);
  const streams = Object.fromEntries(device.streams.map((s) => [s.kind, s]));

  // Handshakes: the token rules and both subprotocols.
  let h = await handshake(port, "", FoxgloveClient.SUPPORTED_SUBPROTOCOL);
  check("a Foxglove handshake without the token is refused with 401", h.status === 401, JSON.stringify(h));
  h = await handshake(port, "?token=wrong-token-wrong-token", FoxgloveClient.SUPPORTED_SUBPROTOCOL);
  check("a Foxglove handshake with a wrong token is refused with 401", h.status === 401, JSON.stringify(h));
  h = await handshake(port, `?token=${TOKEN}`, "foxglove.sdk.v1");
  check("subprotocol foxglove.sdk.v1 is accepted and answered with serverInfo",
    h.status === 101 && h.protocol === "foxglove.sdk.v1" && h.first?.op === "serverInfo", JSON.stringify(h));
  h = await handshake(port, `ws?token=${TOKEN}`, FoxgloveClient.SUPPORTED_SUBPROTOCOL);
  check("Foxglove on /ws (the page's path) is refused with 404", h.status === 404, JSON.stringify(h));

  // serverInfo and the channels.
  const a = connect(port);
  clients.push(a);
  const topics = {
    depth: `/sk2/${T}/depth/image_raw`, ir: `/sk2/${T}/ir/image_raw`,
    color: `/sk2/${T}/color/image_raw/compressed`, points: `/sk2/${T}/depth/points`,
    depthInfo: `/sk2/${T}/depth/camera_info`, irInfo: `/sk2/${T}/ir/camera_info`,
    colorInfo: `/sk2/${T}/color/camera_info`, depthPng: `/sk2/${T}/depth/image_raw/compressedDepth`,
  };
  await waitFor(() => a.info && a.channels.size >= Object.keys(topics).length);
  check("serverInfo: a name, a sessionId and no optional capabilities",
    a.info && typeof a.info.name === "string" && typeof a.info.sessionId === "string" &&
      Array.isArray(a.info.capabilities) && a.info.capabilities.length === 0, JSON.stringify(a.info));
  const types = {
    depth: "sensor_msgs/msg/Image", ir: "sensor_msgs/msg/Image", color: "sensor_msgs/msg/CompressedImage",
    points: "sensor_msgs/msg/PointCloud2", depthInfo: "sensor_msgs/msg/CameraInfo",
    irInfo: "sensor_msgs/msg/CameraInfo", colorInfo: "sensor_msgs/msg/CameraInfo",
    depthPng: "sensor_msgs/msg/CompressedImage",
  };
  for (const [name, topic] of Object.entries(topics)) {
    const ch = a.byTopic(topic);
    check(`advertised ${topic} as ${types[name]} (cdr, ros2msg)`,
      ch && ch.schemaName === types[name] && ch.encoding === "cdr" && ch.schemaEncoding === "ros2msg" &&
        ch.schema.length > 0, JSON.stringify(ch ? { ...ch, schema: undefined } : [...a.channels.values()].map((c) => c.topic)));
  }
  check("no other channels are advertised", a.channels.size === Object.keys(topics).length,
    [...a.channels.values()].map((c) => c.topic).join(" "));

  // Demand: nothing but the gateway's own depth is subscribed upstream while no one asks.
  await sleep(1500);
  let subscribed = await streamsSubscribed(port, device.key);
  check("before any Foxglove subscription the gateway subscribes to neither IR nor colour",
    subscribed.ir === false && subscribed.color === false, JSON.stringify(subscribed));
  let encodings = await waitFor(async () => {
    const e = await serverEncodings(port);
    return "depth" in e ? e : null;
  });
  check("... and the server encodes only depth (for the gateway's page and API)",
    encodings.depth === 1 && encodings.ir === 0 && encodings.color === 0, JSON.stringify(encodings));

  // Depth: the Image, pixel for pixel against the gateway's own PNG of the same frame.
  const depthSub = a.subscribe(topics.depth);
  const pointsSub = a.subscribe(topics.points);
  const infoSub = a.subscribe(topics.depthInfo);
  const pngSub = a.subscribe(topics.depthPng);
  await waitFor(() => a.of(depthSub).length >= 2 && a.of(pointsSub).length >= 2 && a.of(infoSub).length >= 1 &&
    a.of(pngSub).length >= 2);
  const image = a.of(depthSub).length ? a.decode(a.of(depthSub).at(-1)) : null;
  check("depth Image: 16UC1, little-endian, the stream's size and step, its frame id",
    image && image.encoding === "16UC1" && image.is_bigendian === 0 && image.width === streams.depth.width &&
      image.height === streams.depth.height && image.step === 2 * image.width &&
      image.data.length === image.step * image.height && image.header.frame_id === `${T}_depth_optical_frame`,
    image && JSON.stringify({ ...image, data: image.data.length }));
  let matched = null;
  for (let attempt = 0; attempt < 40 && !matched; attempt++) {
    const png = await get(port, `/api/devices/${device.id}/depth/latest.png`, true);
    const captureUs = BigInt(png.headers["x-sk2-capture-time-us"] ?? "0");
    await sleep(150);
    const m = a.of(depthSub).find((msg) => {
      const img = a.decode(msg);
      return BigInt(img.header.stamp.sec) * 1000000n + BigInt(Math.round((img.header.stamp.nanosec ?? img.header.stamp.nsec) / 1000)) === captureUs;
    });
    if (png.status === 200 && m) matched = { png: png16(png.body), image: a.decode(m), timestamp: m.timestamp };
  }
  check("a depth Image and the gateway's latest.png of the same capture time were found", !!matched);
  if (matched) {
    const { png, image: img } = matched;
    const data = Buffer.from(img.data);
    let diff = 0;
    let nonzero = 0;
    for (let i = 0; i < png.values.length; i++) {
      if (data.readUInt16LE(2 * i) !== png.values[i]) diff++;
      if (png.values[i]) nonzero++;
    }
    check(`depth Image pixels equal the PNG's (${png.values.length} pixels, ${nonzero} with a reading)`,
      png.width === img.width && png.height === img.height && diff === 0 && nonzero > 0, `${diff} differ`);
    const stampNs = BigInt(img.header.stamp.sec) * 1000000000n + BigInt(img.header.stamp.nanosec ?? img.header.stamp.nsec);
    check("the message's receive timestamp is the capture time", matched.timestamp === stampNs,
      `${matched.timestamp} vs ${stampNs}`);
  }

  // PointCloud2: one point per depth pixel with a reading, for the depth frame of the same stamp.
  const stampKey = (h) => `${h.stamp.sec}.${h.stamp.nanosec ?? h.stamp.nsec}`;
  const depthByStamp = new Map(a.of(depthSub).map((m) => [stampKey(a.decode(m).header), a.decode(m)]));
  const cloudMsg = a.of(pointsSub).find((m) => depthByStamp.has(stampKey(a.decode(m).header)));
  if (cloudMsg) {
    const cloud = a.decode(cloudMsg);
    const depthImage = depthByStamp.get(stampKey(cloud.header));
    const d = Buffer.from(depthImage.data);
    let readings = 0;
    for (let i = 0; i < d.length; i += 2) if (d.readUInt16LE(i)) readings++;
    check(`PointCloud2 has one point per depth pixel with a reading (${readings})`,
      cloud.width * cloud.height === readings && cloud.point_step === 12 && cloud.data.length === 12 * readings &&
        cloud.fields.map((f) => f.name).join() === "x,y,z" && cloud.header.frame_id === `${T}_depth_optical_frame`,
      `${cloud.width}x${cloud.height} points`);
  } else {
    check("a PointCloud2 and a depth Image of the same stamp arrived", false,
      `${a.of(pointsSub).length} clouds, ${a.of(depthSub).length} images`);
  }

  // compressedDepth: a 12-byte header, then a 16-bit PNG of the same values as the Image.
  const pngMsg = a.of(pngSub).find((m) => depthByStamp.has(stampKey(a.decode(m).header)));
  if (pngMsg) {
    const compressed = a.decode(pngMsg);
    const bytes = Buffer.from(compressed.data);
    const png = png16(bytes.subarray(12));
    const depthImage = depthByStamp.get(stampKey(compressed.header));
    const d = Buffer.from(depthImage.data);
    check("compressedDepth: format '16UC1; compressedDepth png', a PNG of the Image's values",
      compressed.format === "16UC1; compressedDepth png" && bytes.readInt32LE(0) === 0 &&
        png.width === depthImage.width && png.values.every((v, i) => d.readUInt16LE(2 * i) === v),
      compressed.format);
  } else {
    check("a compressedDepth message and a depth Image of the same stamp arrived", false,
      `${a.of(pngSub).length} compressed, ${a.of(depthSub).length} images`);
  }

  // CameraInfo: K from /api's intrinsics.
  const info = a.of(infoSub).length ? a.decode(a.of(infoSub).at(-1)) : null;
  const k = streams.depth.intrinsics;
  const wantK = [k.fx, 0, k.cx, 0, k.fy, k.cy, 0, 0, 1];
  check("depth CameraInfo: K equals /api's intrinsics, the stream's size",
    info && Array.from(info.k).every((v, i) => Math.abs(v - wantK[i]) < 1e-6 * Math.max(1, Math.abs(wantK[i]))) &&
      info.width === streams.depth.width && info.height === streams.depth.height,
    info && JSON.stringify({ k: Array.from(info.k), wantK }));

  // IR and colour, and the demand they drive.
  const irSub = a.subscribe(topics.ir);
  const colorSub = a.subscribe(topics.color);
  await waitFor(() => a.of(irSub).length >= 1 && a.of(colorSub).length >= 1);
  subscribed = await streamsSubscribed(port, device.key);
  check("while subscribed in Foxglove, IR and colour are subscribed upstream",
    subscribed.ir === true && subscribed.color === true, JSON.stringify(subscribed));
  encodings = await waitFor(async () => {
    const e = await serverEncodings(port);
    return e.ir === 1 && e.color === 1 ? e : null;
  });
  check("... and the server encodes them", !!encodings);
  const ir = a.of(irSub).length ? a.decode(a.of(irSub)[0]) : null;
  check("IR Image: mono16, the stream's size",
    ir && ir.encoding === "mono16" && ir.width === streams.ir.width && ir.height === streams.ir.height &&
      ir.data.length === 2 * ir.width * ir.height && ir.header.frame_id === `${T}_ir_optical_frame`,
    ir && JSON.stringify({ ...ir, data: ir.data.length }));
  const color = a.of(colorSub).length ? a.decode(a.of(colorSub)[0]) : null;
  const jpeg = color ? Buffer.from(color.data) : Buffer.alloc(0);
  check("colour CompressedImage: format jpeg, a whole JPEG (FF D8 ... FF D9)",
    color && color.format === "jpeg" && jpeg[0] === 0xff && jpeg[1] === 0xd8 &&
      jpeg[jpeg.length - 2] === 0xff && jpeg[jpeg.length - 1] === 0xd9 && color.header.frame_id === `${T}_color_optical_frame`,
    color && JSON.stringify({ format: color.format, bytes: jpeg.length }));

  // A second client at the same time.
  const b = connect(port, { protocol: "foxglove.sdk.v1" });
  clients.push(b);
  await waitFor(() => b.byTopic(topics.depth));
  const bSub = b.subscribe(topics.depth);
  const aBefore = a.of(depthSub).length;
  await waitFor(() => b.of(bSub).length >= 3 && a.of(depthSub).length >= aBefore + 3);
  check("two clients at once both receive depth", b.of(bSub).length >= 3 && a.of(depthSub).length >= aBefore + 3,
    `${b.of(bSub).length} and ${a.of(depthSub).length - aBefore}`);

  // A client that stops reading (depth and point clouds: some 7 MB a second unread): it skips
  // to the newest frame, no queue grows for it, and no one else waits.
  const slow = connect(port);
  clients.push(slow);
  await waitFor(() => slow.byTopic(topics.points));
  const slowDepth = slow.subscribe(topics.depth);
  slow.subscribe(topics.points);
  await waitFor(() => slow.of(slowDepth).length >= 1);
  const stats0 = JSON.parse((await get(port, "/api/stats")).body).gateway;
  const rss0 = rss(pid);
  slow.ws._socket.pause();
  const bStart = b.of(bSub).length;
  await sleep(6000);
  const rss1 = rss(pid);
  const bDuring = b.of(bSub).length - bStart;
  const slowBefore = slow.of(slowDepth).length;
  const lastBefore = slow.of(slowDepth).at(-1);
  slow.ws._socket.resume();
  await waitFor(() => slow.of(slowDepth).length >= slowBefore + 3);
  // /api/stats is republished once a second, and the skip is counted when the gateway writes
  // the first frame after the client's socket drains, which may come after the last copy: poll.
  const stats1 = await waitFor(async () => {
    const now = JSON.parse((await get(port, "/api/stats")).body).gateway;
    return now.frames_skipped > stats0.frames_skipped ? now : null;
  }, 10000, 250) || JSON.parse((await get(port, "/api/stats")).body).gateway;
  check(`while one client reads nothing for 6 s, another still gets depth (${bDuring} frames)`,
    bDuring >= 5, `${bDuring}`);
  check(`... and the gateway's memory grows by less than 64 MB (${((rss1 - rss0) / 1e6).toFixed(1)} MB)`,
    rss1 - rss0 < 64e6);
  const stampNs = (m) => m.timestamp;
  const after = slow.of(slowDepth).slice(slowBefore);
  const gapS = after.length ? Number(stampNs(after.at(-1)) - stampNs(lastBefore)) / 1e9 : 0;
  check(`once it reads again it gets current frames, not a backlog (${after.length} messages over ${gapS.toFixed(1)} s of capture time)`,
    after.length >= 3 && gapS > 4 && after.length < 30, `${after.length} ${gapS}`);
  check("the frames it missed are counted as skipped", stats1.frames_skipped > stats0.frames_skipped,
    `${stats0.frames_skipped} -> ${stats1.frames_skipped}`);
  slow.ws.terminate();

  // Unsubscribe: nothing more after a grace period; IR and colour go upstream too.
  a.client.unsubscribe(irSub);
  a.client.unsubscribe(colorSub);
  a.client.unsubscribe(depthSub);
  await sleep(1000);
  const counts = [irSub, colorSub, depthSub].map((id) => a.of(id).length);
  await sleep(2000);
  const later = [irSub, colorSub, depthSub].map((id) => a.of(id).length);
  check("after unsubscribe no more messages arrive on those subscriptions",
    counts.every((c, i) => c === later[i]), `${counts} then ${later}`);
  check("the other subscriptions keep going", a.of(pointsSub).at(-1)?.at > Date.now() - 1500);
  subscribed = await waitFor(async () => {
    const s = await streamsSubscribed(port, device.key);
    return s.ir === false && s.color === false ? s : null;
  });
  check("once no one wants them, IR and colour are unsubscribed upstream", !!subscribed);
  encodings = await waitFor(async () => {
    const e = await serverEncodings(port);
    return e.ir === 0 && e.color === 0 ? e : null;
  });
  check("... and the server stops encoding them", !!encodings);

  // Bad messages: a status error each, and the connection keeps working.
  const bad = ["not json", JSON.stringify({ op: "launch" }), JSON.stringify({ nope: 1 }),
    JSON.stringify({ op: "subscribe", subscriptions: [{ id: 900, channelId: 99999 }] }),
    JSON.stringify({ op: "subscribe", subscriptions: "all" }),
    JSON.stringify({ op: "unsubscribe", subscriptionIds: [12345] }),
    "x".repeat(70000), Buffer.from([1, 2, 3]), JSON.stringify({ op: `a${"é".repeat(100)}` }),
    JSON.stringify({ op: "subscribe", op2: [[[[[[[[[[]]]]]]]]]], subscriptions: [{ id: -1, channelId: 1 }] })];
  const before = b.statuses.length;
  for (const text of bad) b.ws.send(text);
  await waitFor(() => b.statuses.length >= before + bad.length);
  const errors = b.statuses.slice(before);
  check(`each of ${bad.length} bad messages gets a status of level error`,
    errors.length === bad.length && errors.every((s) => s.level === 2 && s.message.length > 0),
    JSON.stringify(errors));
  const bCount = b.of(bSub).length;
  await waitFor(() => b.of(bSub).length >= bCount + 3);
  check("after the bad messages the connection still receives", !b.closed && b.of(bSub).length >= bCount + 3);
  const again = b.subscribe(topics.ir);
  await waitFor(() => b.of(again).length >= 1);
  check("... and takes new subscriptions", b.of(again).length >= 1);
  check("the first client was not disturbed", !a.closed && a.of(pointsSub).at(-1)?.at > Date.now() - 1500);
}

main()
  .catch((e) => {
    failed++;
    console.log(`FAIL ${e.stack}`);
  })
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  });
