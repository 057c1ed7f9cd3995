// Writes MCAP files the way a ROS 2 bag looks, with the reference writer (@mcap/core's
// McapWriter) and Foxglove's ROS 2 CDR serialiser (@foxglove/rosmsg2-serialization's
// MessageWriter), for test_mcap_import.py to read with `sk2 import` and `sk2 serve --replay`:
//
//   foreign_zstd.mcap   zstd chunks: /camera/depth/image_raw 16UC1, /camera/depth/camera_info
//                       (plumb_bob), /camera/color/image_raw rgb8, /camera/ir/image_raw mono16,
//                       and /rosout-like /chatter (std_msgs/msg/String), which sk2 ignores
//   foreign_lz4.mcap    lz4 chunks (the lz4 program, frame format): big-endian 16UC1 depth at
//                       /cam2/depth/image_rect_raw, JPEG colour at
//                       /cam2/color/image_raw/compressed, bgr8 at /cam2/rgb/image_raw is left
//                       out; messages written out of log-time order
//   foreign_float.mcap  uncompressed chunks: 32FC1 depth in metres at /camera/depth/image_raw
//                       with NaN and out-of-range values, rational_polynomial camera_info
//   foreign_cdepth.mcap zstd chunks, two devices of compressed_depth_image_transport topics:
//                       /cam3/depth/image_raw/compressedDepth ("16UC1; compressedDepth png")
//                       and /cam4/depth/image_raw/compressedDepth (32FC1, inverse depth
//                       quantised as image_transport does), PNGs made here with zlib
//
// Like rosbag2, every message has sequence 0 and its log time is when it was received: the
// header stamp plus 4 ms. EXPECTED.json lists, per file and stream, each frame's log and stamp
// times (µs) and the SHA-256 of the pixels sk2 should make of it (uint16 little-endian, rgb).
//
// usage: [MAKE_FOREIGN_SIZE=WxHxN] node make_foreign.cjs OUT_DIR COLOUR.jpg
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const { execFileSync } = require("child_process");
const zlib = require("zlib");

const { load } = require("./load.cjs");
const { McapWriter } = load("@mcap/core");
const zstd = load("@foxglove/wasm-zstd");
const { parse } = load("@foxglove/rosmsg");
const { MessageWriter } = load("@foxglove/rosmsg2-serialization");

const SEP = "=".repeat(80) + "\n";
const HEADER = SEP + "MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n" +
  SEP + "MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n";
const SCHEMAS = {
  "sensor_msgs/msg/Image": "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\n" +
    "uint8 is_bigendian\nuint32 step\nuint8[] data\n" + HEADER,
  "sensor_msgs/msg/CompressedImage": "std_msgs/Header header\nstring format\nuint8[] data\n" + HEADER,
  "sensor_msgs/msg/CameraInfo": "std_msgs/Header header\nuint32 height\nuint32 width\n" +
    "string distortion_model\nfloat64[] d\nfloat64[9] k\nfloat64[9] r\nfloat64[12] p\n" +
    "uint32 binning_x\nuint32 binning_y\nsensor_msgs/RegionOfInterest roi\n" + HEADER + SEP +
    "MSG: sensor_msgs/RegionOfInterest\nuint32 x_offset\nuint32 y_offset\nuint32 height\n" +
    "uint32 width\nbool do_rectify\n",
  "std_msgs/msg/String": "string data\n",
};
const writers = {};
for (const [name, text] of Object.entries(SCHEMAS))
  writers[name] = new MessageWriter(parse(text, { ros2: true }));

// MAKE_FOREIGN_SIZE=WxHxFRAMES makes smaller files (the fuzz seeds in tests/fuzz/corpus/mcap).
const [W, H, FRAMES] = (process.env.MAKE_FOREIGN_SIZE || "80x60x5").split("x").map(Number);
const T0 = 1733650000123456n; // µs
const PERIOD = 33333n;
const sha = (bytes) => crypto.createHash("sha256").update(bytes).digest("hex");

function stamp(us) {
  return { sec: Number(us / 1000000n), nanosec: Number(us % 1000000n) * 1000 };
}

function depthValues(f) {
  const v = new Uint16Array(W * H);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) v[y * W + x] = (600 + 1000 * f + 7 * x + 53 * y) & 0xffff;
  return v;
}

function le16(values) {
  const out = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => out.writeUInt16LE(v, 2 * i));
  return out;
}

function be16(values) {
  const out = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => out.writeUInt16BE(v, 2 * i));
  return out;
}

class File {
  constructor(name, compressChunk) {
    this.name = name;
    this.chunks = [];
    this.size = 0n;
    const self = this;
    this.writer = new McapWriter({
      writable: { position: () => self.size, write: async (b) => { self.chunks.push(Buffer.from(b)); self.size += BigInt(b.length); } },
      chunkSize: 40000, // several chunks per file
      compressChunk,
    });
    this.channels = {};
    this.schemas = {};
    this.expected = {};
    this.pending = [];
  }
  async start() {
    await this.writer.start({ profile: "ros2", library: "make_foreign.cjs (rosbag2-like)" });
  }
  async channel(topic, type) {
    if (!this.schemas[type])
      this.schemas[type] = await this.writer.registerSchema({
        name: type, encoding: "ros2msg", data: Buffer.from(SCHEMAS[type]) });
    this.channels[topic] = await this.writer.registerChannel({
      topic, schemaId: this.schemas[type], messageEncoding: "cdr",
      metadata: new Map([["offered_qos_profiles", ""]]) });
  }
  // Queues a message (written by flush, in the order given there); stampUs is the header's.
  add(topic, type, stampUs, msg, expect) {
    const logUs = stampUs + 4000n;
    this.pending.push({ topic, type, logUs, data: writers[type].writeMessage(msg) });
    if (expect) {
      const [kind, pixels] = expect;
      (this.expected[kind] = this.expected[kind] || []).push({
        log_us: Number(logUs), stamp_us: Number(stampUs), sha256: pixels ? sha(pixels) : null });
    }
  }
  async flush(order) {
    const list = order ? order(this.pending) : this.pending;
    for (const m of list)
      await this.writer.addMessage({ channelId: this.channels[m.topic], sequence: 0,
        logTime: m.logUs * 1000n, publishTime: m.logUs * 1000n, data: m.data });
    this.pending = [];
  }
  async end(dir) {
    await this.writer.end();
    fs.writeFileSync(path.join(dir, this.name), Buffer.concat(this.chunks));
  }
}

// A 16-bit grey PNG (filter 0 on every row), as compressed_depth_image_transport sends.
function png16(values) {
  const raw = Buffer.alloc((2 * W + 1) * H);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) raw.writeUInt16BE(values[y * W + x], y * (2 * W + 1) + 1 + 2 * x);
  const chunk = (type, data) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body) >>> 0);
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0);
  ihdr.writeUInt32BE(H, 4);
  ihdr[8] = 16; // bit depth; colour type 0 (grey), no interlace
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr), chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

function depthHeader(format, a, b) {
  const h = Buffer.alloc(12);
  h.writeInt32LE(format, 0);
  h.writeFloatLE(a, 4);
  h.writeFloatLE(b, 8);
  return h;
}

function header(us, frame) {
  return { stamp: stamp(us), frame_id: frame };
}

function cameraInfo(us, model, d) {
  return { header: header(us, "camera_depth_optical_frame"), height: H, width: W,
    distortion_model: model, d, k: [70.5, 0, 39.5, 0, 71.25, 29.5, 0, 0, 1],
    r: [1, 0, 0, 0, 1, 0, 0, 0, 1], p: [70.5, 0, 39.5, 0, 0, 71.25, 29.5, 0, 0, 0, 1, 0],
    binning_x: 0, binning_y: 0, roi: { x_offset: 0, y_offset: 0, height: 0, width: 0, do_rectify: false } };
}

async function main() {
  const [dir, jpegPath] = process.argv.slice(2);
  if (!dir || !jpegPath) {
    console.error("usage: node make_foreign.cjs OUT_DIR COLOUR.jpg");
    process.exit(2);
  }
  await zstd.isLoaded;
  const jpeg = fs.readFileSync(jpegPath);
  const expected = {};

  // 1. zstd, little-endian 16UC1 depth, rgb8 colour, mono16 IR, camera info, a String.
  let f = new File("foreign_zstd.mcap", (data) => ({ compression: "zstd", compressedData: zstd.compress(data, 3) }));
  await f.start();
  await f.channel("/camera/depth/image_raw", "sensor_msgs/msg/Image");
  await f.channel("/camera/depth/camera_info", "sensor_msgs/msg/CameraInfo");
  await f.channel("/camera/color/image_raw", "sensor_msgs/msg/Image");
  await f.channel("/camera/ir/image_raw", "sensor_msgs/msg/Image");
  await f.channel("/chatter", "std_msgs/msg/String");
  for (let i = 0; i < FRAMES; i++) {
    const us = T0 + BigInt(i) * PERIOD;
    const depth = le16(depthValues(i));
    f.add("/camera/depth/image_raw", "sensor_msgs/msg/Image", us, { header: header(us, "camera_depth_optical_frame"),
      height: H, width: W, encoding: "16UC1", is_bigendian: 0, step: 2 * W, data: depth }, ["depth", depth]);
    f.add("/camera/depth/camera_info", "sensor_msgs/msg/CameraInfo", us,
      cameraInfo(us, "plumb_bob", [0.125, -0.25, 0.001, -0.002, 0.0625]));
    const rgb = Buffer.alloc(W * H * 3);
    for (let p = 0; p < W * H; p++) { rgb[3 * p] = (p + i) & 255; rgb[3 * p + 1] = (3 * p) & 255; rgb[3 * p + 2] = 200 - i; }
    f.add("/camera/color/image_raw", "sensor_msgs/msg/Image", us + 1000n, { header: header(us + 1000n, "camera_color_optical_frame"),
      height: H, width: W, encoding: "rgb8", is_bigendian: 0, step: 3 * W, data: rgb }, ["color", rgb]);
    const ir = le16(depthValues(i).map((v) => (v * 3) & 0xffff));
    f.add("/camera/ir/image_raw", "sensor_msgs/msg/Image", us + 2000n, { header: header(us + 2000n, "camera_ir_optical_frame"),
      height: H, width: W, encoding: "mono16", is_bigendian: 0, step: 2 * W, data: ir }, ["ir", ir]);
    f.add("/chatter", "std_msgs/msg/String", us, { data: `hello ${i}` });
  }
  await f.flush();
  await f.end(dir);
  expected[f.name] = { device: "camera", streams: f.expected, width: W, height: H,
    intrinsics: { fx: 70.5, fy: 71.25, cx: 39.5, cy: 29.5, k1: 0.125, k2: -0.25, p1: 0.001, p2: -0.002, k3: 0.0625 } };

  // 2. lz4 (the lz4 program writes the LZ4 frame format MCAP asks for), big-endian depth
  // with a padded step, JPEG colour; written in reverse order so sk2 must sort by log time.
  f = new File("foreign_lz4.mcap", (data) => ({ compression: "lz4",
    compressedData: execFileSync("lz4", ["-c", "-q"], { input: Buffer.from(data) }) }));
  await f.start();
  await f.channel("/cam2/depth/image_rect_raw", "sensor_msgs/msg/Image");
  await f.channel("/cam2/color/image_raw/compressed", "sensor_msgs/msg/CompressedImage");
  for (let i = 0; i < FRAMES; i++) {
    const us = T0 + BigInt(i) * PERIOD;
    const values = depthValues(i);
    const rows = [];
    for (let y = 0; y < H; y++) rows.push(be16(values.subarray(y * W, (y + 1) * W)), Buffer.from([0xee, 0xee, 0xee, 0xee]));
    f.add("/cam2/depth/image_rect_raw", "sensor_msgs/msg/Image", us, { header: header(us, "cam2_depth"),
      height: H, width: W, encoding: "16UC1", is_bigendian: 1, step: 2 * W + 4, data: Buffer.concat(rows) },
      ["depth", le16(values)]);
    f.add("/cam2/color/image_raw/compressed", "sensor_msgs/msg/CompressedImage", us + 500n,
      { header: header(us + 500n, "cam2_color"), format: "jpeg", data: jpeg }, ["color", null]);
  }
  await f.flush((list) => list.slice().reverse());
  await f.end(dir);
  expected[f.name] = { device: "cam2", streams: f.expected, width: W, height: H };

  // 3. Uncompressed chunks, 32FC1 depth in metres (NaN, negative, beyond 65.535 m: 0).
  f = new File("foreign_float.mcap", undefined);
  await f.start();
  await f.channel("/camera/depth/image_raw", "sensor_msgs/msg/Image");
  await f.channel("/camera/depth/camera_info", "sensor_msgs/msg/CameraInfo");
  for (let i = 0; i < FRAMES; i++) {
    const us = T0 + BigInt(i) * PERIOD;
    const values = depthValues(i);
    const metres = new Float32Array(W * H);
    const mm = new Uint16Array(W * H);
    for (let p = 0; p < W * H; p++) {
      metres[p] = values[p] / 1000 + 0.0002; // rounds back to the millimetre
      mm[p] = values[p];
    }
    metres[0] = NaN; mm[0] = 0;
    metres[1] = -1; mm[1] = 0;
    metres[2] = 70; mm[2] = 0;
    metres[3] = 0.0004; mm[3] = 0;
    const data = Buffer.from(metres.buffer);
    f.add("/camera/depth/image_raw", "sensor_msgs/msg/Image", us, { header: header(us, "camera_depth_optical_frame"),
      height: H, width: W, encoding: "32FC1", is_bigendian: 0, step: 4 * W, data }, ["depth", le16(mm)]);
    f.add("/camera/depth/camera_info", "sensor_msgs/msg/CameraInfo", us,
      cameraInfo(us, "rational_polynomial", [0.125, -0.25, 0.001, -0.002, 0.0625, 0.5, 0, 0]));
  }
  await f.flush();
  await f.end(dir);
  expected[f.name] = { device: "camera", streams: f.expected, width: W, height: H,
    intrinsics: { fx: 70.5, fy: 71.25, cx: 39.5, cy: 29.5, k1: 0.125, k2: -0.25, p1: 0.001, p2: -0.002, k3: 0.0625 } };

  // 4. compressedDepth: 16UC1 (the values themselves) and 32FC1 (inverse depth, quantised with
  // image_transport's defaults: depth_quantization 100, depth_max 10 m).
  f = new File("foreign_cdepth.mcap", (data) => ({ compression: "zstd", compressedData: zstd.compress(data, 3) }));
  await f.start();
  await f.channel("/cam3/depth/image_raw/compressedDepth", "sensor_msgs/msg/CompressedImage");
  await f.channel("/cam4/depth/image_raw/compressedDepth", "sensor_msgs/msg/CompressedImage");
  const quantA = Math.fround(100 * 101), quantB = Math.fround(1 - (100 * 101) / 10);
  const cam3 = {}, cam4 = {};
  for (let i = 0; i < FRAMES; i++) {
    const us = T0 + BigInt(i) * PERIOD;
    const values = depthValues(i);
    f.add("/cam3/depth/image_raw/compressedDepth", "sensor_msgs/msg/CompressedImage", us,
      { header: header(us, "cam3_depth"), format: "16UC1; compressedDepth png",
        data: Buffer.concat([depthHeader(-1, 0, 0), png16(values)]) }, ["depth", le16(values)]);
    const quantised = new Uint16Array(W * H), mm = new Uint16Array(W * H);
    for (let p = 0; p < W * H; p++) {
      quantised[p] = p === 0 ? 0 : Math.min(65535, Math.round(quantA / (values[p] / 1000) + quantB));
      mm[p] = p === 0 ? 0 : Math.round((quantA / (quantised[p] - quantB)) * 1000);
    }
    f.add("/cam4/depth/image_raw/compressedDepth", "sensor_msgs/msg/CompressedImage", us + 100n,
      { header: header(us + 100n, "cam4_depth"), format: "32FC1; compressedDepth png",
        data: Buffer.concat([depthHeader(0, quantA, quantB), png16(quantised)]) }, ["depth4", le16(mm)]);
  }
  await f.flush();
  await f.end(dir);
  expected[f.name] = { devices: { cam3: { depth: f.expected.depth }, cam4: { depth: f.expected.depth4 } },
    width: W, height: H };

  fs.writeFileSync(path.join(dir, "EXPECTED.json"), JSON.stringify(expected, null, 1));
  console.log(`wrote ${Object.keys(expected).join(", ")} into ${dir}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
