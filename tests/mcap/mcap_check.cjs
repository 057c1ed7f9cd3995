// Reads an MCAP file sk2 exported with the reference readers, and checks it against what the
// recording holds (EXPECTED.json, written by test_mcap_export.py from its own reader of the sk2
// file): @mcap/core's indexed reader (summary, chunk indexes, message indexes, chunk CRCs) and
// its stream reader (every record in file order), and Foxglove's ROS 2 decoders (@foxglove/rosmsg
// parses the ros2msg schemas, @foxglove/rosmsg2-serialization decodes the CDR).
//
// Prints PASS/FAIL lines and exits 1 on any failure, also when the npm packages are missing:
// scripts/install-deps.sh installs them into tests/mcap/node_modules.
//
// usage: node mcap_check.cjs FILE.mcap EXPECTED.json
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const zlib = require("zlib");

let failures = 0;
let passes = 0;
function check(name, ok, detail) {
  if (ok) passes++;
  else failures++;
  console.log(`${ok ? "PASS" : "FAIL"} ${name}${ok ? "" : `: ${detail}`}`);
}

const { load } = require("./load.cjs");

const { McapIndexedReader, McapStreamReader } = load("@mcap/core");
const zstd = load("@foxglove/wasm-zstd");
const lz4 = load("@foxglove/wasm-lz4");
const { parse } = load("@foxglove/rosmsg");
const { MessageReader } = load("@foxglove/rosmsg2-serialization");

const sha = (bytes) => crypto.createHash("sha256").update(bytes).digest("hex");
const crc32 = (bytes) => zlib.crc32(bytes) >>> 0;

// The CRCs the indexed reader does not check: the data section's (in Data End) and the
// summary's (in the Footer).
function checkCrcs(tag, reader, bytes) {
  check(`${tag}: Data End CRC`,
        reader.dataSectionCrc === crc32(bytes.subarray(0, Number(reader.dataEndOffset))),
        `${reader.dataSectionCrc}`);
  const footerStart = bytes.length - 8 - 29;
  const summaryStart = Number(reader.footer.summaryStart);
  check(`${tag}: summary CRC`,
        reader.footer.summaryCrc === crc32(bytes.subarray(summaryStart, footerStart + 25)),
        `${reader.footer.summaryCrc}`);
}

// Every record in file order, with the stream reader, to the end.
function checkStream(tag, bytes, decompressHandlers, wantMessages) {
  const stream = new McapStreamReader({ decompressHandlers, validateCrcs: true });
  stream.append(bytes);
  const counts = {};
  let record;
  while ((record = stream.nextRecord())) counts[record.type] = (counts[record.type] || 0) + 1;
  check(`${tag}: the stream reader reads to the end: ${JSON.stringify(counts)}`,
        stream.done() && counts.Message === wantMessages && counts.DataEnd === 1 &&
        counts.Footer === 1 && counts.MessageIndex > 0 && counts.SummaryOffset >= 4,
        JSON.stringify(counts));
}

function messageReaders(tag, reader) {
  const readers = new Map();
  for (const [id, schema] of reader.schemasById) {
    check(`${tag}: schema ${schema.name} is ros2msg`, schema.encoding === "ros2msg", schema.encoding);
    const text = new TextDecoder().decode(schema.data);
    readers.set(id, new MessageReader(parse(text, { ros2: true })));
  }
  return readers;
}

// For a file whose source recording is gone (sk2 record --format mcap): EXPECTED gives only
// frame_count, device_id and compression. Checks the counts, that every message decodes into
// a consistent image or camera model, that sequences increase per topic, and the structure.
async function structureOnly(tag, reader, bytes, expected, decompressHandlers) {
  const stats = reader.statistics;
  const want = 2 * expected.frame_count; // every mock stream has intrinsics
  check(`${tag}: ${want} messages on 6 channels, ${expected.compression || "no"} compression`,
        stats.messageCount === BigInt(want) && stats.channelCount === 6 &&
        reader.chunkIndexes.every((c) => c.compression === expected.compression),
        `${stats.messageCount} on ${stats.channelCount}`);
  const readers = messageReaders(tag, reader);
  const problems = [];
  const lastSeq = new Map();
  let decoded = 0;
  let lastTime = 0n;
  for await (const m of reader.readMessages({ validateCrcs: true })) {
    const channel = reader.channelsById.get(m.channelId);
    const type = reader.schemasById.get(channel.schemaId).name;
    const msg = readers.get(channel.schemaId).readMessage(m.data);
    decoded++;
    if (m.logTime < lastTime) problems.push(`${channel.topic}: out of order`);
    lastTime = m.logTime;
    // Increasing, not consecutive: a busy machine may drop frames on the way (record counts them).
    if (lastSeq.has(channel.topic) && m.sequence <= lastSeq.get(channel.topic))
      problems.push(`${channel.topic}: sequence ${lastSeq.get(channel.topic)} then ${m.sequence}`);
    lastSeq.set(channel.topic, m.sequence);
    if (type === "sensor_msgs/msg/Image" &&
        (msg.step !== msg.width * 2 || msg.data.length !== msg.step * msg.height))
      problems.push(`${channel.topic}: ${msg.width}x${msg.height} step ${msg.step} ${msg.data.length} bytes`);
    if (type === "sensor_msgs/msg/CompressedImage" &&
        (msg.format !== "jpeg" || msg.data[0] !== 0xff || msg.data[1] !== 0xd8))
      problems.push(`${channel.topic}: not a JPEG`);
    if (type === "sensor_msgs/msg/CameraInfo" && !(msg.k[0] > 0 && msg.k[8] === 1))
      problems.push(`${channel.topic}: K ${[...msg.k]}`);
  }
  check(`${tag}: every message decodes into a consistent image or camera model, sequences ` +
        `increasing`, decoded === want && problems.length === 0,
        `${decoded} decoded; ${problems.slice(0, 5).join("; ")}`);
  const meta = new Map();
  for await (const m of reader.readMetadata()) meta.set(m.name, m.metadata);
  const device = meta.get("sk2.device.0");
  check(`${tag}: metadata names the device`, device && device.get("id") === expected.device_id,
        JSON.stringify(device ? [...device] : null));
  checkStream(tag, bytes, decompressHandlers, want);
  console.log(`${passes} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

async function main() {
  const [file, expectedFile] = process.argv.slice(2);
  const bytes = new Uint8Array(fs.readFileSync(file));
  const expected = JSON.parse(fs.readFileSync(expectedFile, "utf8"));
  await zstd.isLoaded;
  await lz4.isLoaded;
  const decompressHandlers = {
    zstd: (data, size) => zstd.decompress(data, Number(size)),
    lz4: (data, size) => lz4(data, Number(size)),
  };
  const readable = {
    size: async () => BigInt(bytes.length),
    read: async (offset, size) => bytes.subarray(Number(offset), Number(offset + size)),
  };
  const reader = await McapIndexedReader.Initialize({ readable, decompressHandlers });
  const tag = path.basename(file);
  checkCrcs(tag, reader, bytes);
  if (!Array.isArray(expected.frames))
    return structureOnly(tag, reader, bytes, expected, decompressHandlers);

  // ---- The summary ----
  check(`${tag}: profile ros2`, reader.header.profile === "ros2", reader.header.profile);
  const stats = reader.statistics;
  const perFrame = (f) => (expected.intrinsics[f.kind] ? 2 : 1); // image + camera info
  const wantMessages = expected.frames.reduce((n, f) => n + perFrame(f), 0);
  check(`${tag}: statistics count ${wantMessages} messages`,
        stats && stats.messageCount === BigInt(wantMessages), stats && stats.messageCount);
  const kinds = [...new Set(expected.frames.map((f) => f.kind))];
  const wantChannels = kinds.reduce((n, k) => n + (expected.intrinsics[k] ? 2 : 1), 0);
  check(`${tag}: ${wantChannels} channels, 3 schemas, 2 metadata records`,
        stats.channelCount === wantChannels && reader.channelsById.size === wantChannels &&
        stats.schemaCount === 3 && reader.schemasById.size === 3 && stats.metadataCount === 2 &&
        reader.metadataIndexes.length === 2,
        JSON.stringify({ c: stats.channelCount, s: stats.schemaCount, m: stats.metadataCount }));
  check(`${tag}: one chunk index per chunk, each compressed as asked`,
        stats.chunkCount === reader.chunkIndexes.length && stats.chunkCount > 0 &&
        reader.chunkIndexes.every((c) => c.compression === expected.compression),
        `${stats.chunkCount} chunks, ${reader.chunkIndexes.map((c) => c.compression)}`);
  let sum = 0n;
  for (const n of stats.channelMessageCounts.values()) sum += n;
  check(`${tag}: per-channel counts add up`, sum === stats.messageCount, `${sum}`);
  const times = expected.frames.map((f) => BigInt(f.capture_us) * 1000n);
  const minT = times.reduce((a, b) => (b < a ? b : a));
  const maxT = times.reduce((a, b) => (b > a ? b : a));
  check(`${tag}: start and end times are the first and last capture times`,
        stats.messageStartTime === minT && stats.messageEndTime === maxT,
        `${stats.messageStartTime}..${stats.messageEndTime} vs ${minT}..${maxT}`);

  // ---- Every message, through the index ----
  const readers = messageReaders(tag, reader);
  const byKey = new Map(expected.frames.map((f) => [`${f.kind}/${f.seq}`, f]));
  const seen = new Map();
  const problems = [];
  let lastTime = 0n;
  let decoded = 0;
  for await (const m of reader.readMessages({ validateCrcs: true })) {
    const channel = reader.channelsById.get(m.channelId);
    const schema = reader.schemasById.get(channel.schemaId);
    const msg = readers.get(channel.schemaId).readMessage(m.data);
    decoded++;
    if (m.logTime < lastTime) problems.push(`message out of log-time order on ${channel.topic}`);
    lastTime = m.logTime;
    const kind = channel.metadata.get("sk2_stream");
    const f = byKey.get(`${kind}/${m.sequence}`);
    if (!f) {
      problems.push(`${channel.topic}: sequence ${m.sequence} is not in the recording`);
      continue;
    }
    // Foxglove's decoder gives builtin_interfaces/Time as {sec, nsec}.
    const stamp = msg.header.stamp;
    const stampNs = BigInt(stamp.sec) * 1000000000n + BigInt(stamp.nanosec ?? stamp.nsec);
    if (m.logTime !== BigInt(f.capture_us) * 1000n || m.publishTime !== m.logTime ||
        stampNs !== m.logTime)
      problems.push(`${channel.topic} ${m.sequence}: times ${m.logTime} ${stampNs} vs ${f.capture_us}`);
    if (!msg.header.frame_id.endsWith(`_${kind}_optical_frame`))
      problems.push(`${channel.topic}: frame_id ${msg.header.frame_id}`);
    const key = `${schema.name} ${kind}/${m.sequence}`;
    seen.set(key, (seen.get(key) || 0) + 1);
    if (schema.name === "sensor_msgs/msg/Image") {
      const encoding = { depth: "16UC1", ir: "mono16", color: "rgb8" }[kind];
      const bpp = kind === "color" ? 3 : 2;
      if (msg.width !== f.width || msg.height !== f.height || msg.encoding !== encoding ||
          msg.step !== f.width * bpp || msg.is_bigendian !== 0)
        problems.push(`${key}: ${msg.width}x${msg.height} ${msg.encoding} step ${msg.step}`);
      else if (sha(msg.data) !== f.pixels_sha256)
        problems.push(`${key}: pixels differ from the recording's`);
    } else if (schema.name === "sensor_msgs/msg/CompressedImage") {
      if (msg.format !== "jpeg" || sha(msg.data) !== f.payload_sha256)
        problems.push(`${key}: format ${msg.format}, JPEG bytes differ from the recording's`);
    } else if (schema.name === "sensor_msgs/msg/CameraInfo") {
      const k = expected.intrinsics[kind];
      const K = [k.fx, 0, k.cx, 0, k.fy, k.cy, 0, 0, 1];
      const P = [k.fx, 0, k.cx, 0, 0, k.fy, k.cy, 0, 0, 0, 1, 0];
      const D = [k.k1, k.k2, k.p1, k.p2, k.k3];
      const same = (a, b) => a.length === b.length && [...a].every((v, i) => v === b[i]);
      if (msg.width !== f.width || msg.height !== f.height || msg.distortion_model !== "plumb_bob" ||
          !same(msg.k, K) || !same(msg.p, P) || !same(msg.d, D) ||
          !same(msg.r, [1, 0, 0, 0, 1, 0, 0, 0, 1]))
        problems.push(`${key}: K ${[...msg.k]} D ${[...msg.d]} vs ${JSON.stringify(k)}`);
    } else {
      problems.push(`unexpected schema ${schema.name}`);
    }
  }
  check(`${tag}: ${wantMessages} messages decode, in log-time order, with the recording's ` +
        `pixels, JPEG bytes, times and intrinsics`,
        problems.length === 0 && decoded === wantMessages, `${decoded} decoded; ${problems.slice(0, 5).join("; ")}`);
  const missing = expected.frames.filter((f) => {
    const img = f.kind === "color" && f.payload_sha256 ? "CompressedImage" : "Image";
    return seen.get(`sensor_msgs/msg/${img} ${f.kind}/${f.seq}`) !== 1 ||
           (expected.intrinsics[f.kind] && seen.get(`sensor_msgs/msg/CameraInfo ${f.kind}/${f.seq}`) !== 1);
  });
  check(`${tag}: every recorded frame once as an image and once as camera info`,
        missing.length === 0, missing.slice(0, 3).map((f) => `${f.kind}/${f.seq}`).join(", "));

  // ---- sk2's metadata ----
  const meta = new Map();
  for await (const m of reader.readMetadata()) meta.set(m.name, m.metadata);
  const device = meta.get("sk2.device.0");
  check(`${tag}: metadata names the device, its streams and the recording`,
        device && device.get("id") === expected.device_id && device.get("serial") === expected.serial &&
        /depth 512x424 depth_mm16/.test(device.get("streams")) && device.get("depth_unit_m") === "0.001" &&
        meta.get("sk2.recording") && meta.get("sk2.recording").get("frames") === String(expected.frames.length),
        JSON.stringify(device ? [...device] : null));

  checkStream(tag, bytes, decompressHandlers, wantMessages);
  console.log(`${passes} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL ${e.stack || e}`);
  process.exit(1);
});
