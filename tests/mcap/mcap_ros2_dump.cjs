// Reads an MCAP file with the reference readers and writes out what they decoded, for
// test_mcap_ros2.py to compare with the recording: @mcap/core's indexed reader (summary, chunk
// and message indexes, chunk CRCs checked) reads every message, @foxglove/rosmsg parses the
// ros2msg schema stored in the file and @foxglove/rosmsg2-serialization decodes the CDR with it.
// @mcap/core's stream reader then reads every record in file order to the end.
//
// OUT/messages.json lists the messages in log-time order: topic, schema name, sequence, log and
// publish time, header, and the decoded fields of each type; the byte arrays (an image's or a
// point cloud's data) go to OUT/N.bin, N the message's place in the list.
//
// Prints PASS/FAIL lines and exits 1 on any failure, also when the npm packages are missing:
// scripts/install-deps.sh installs them into tests/mcap/node_modules.
//
// usage: node mcap_ros2_dump.cjs FILE.mcap OUT
"use strict";
const fs = require("fs");
const path = require("path");

let failures = 0;
function check(name, ok, detail) {
  if (!ok) failures++;
  console.log(`${ok ? "PASS" : "FAIL"} ${name}${ok ? "" : `: ${detail}`}`);
}

const { load } = require("./load.cjs");

const { McapIndexedReader, McapStreamReader } = load("@mcap/core");
const zstd = load("@foxglove/wasm-zstd");
const lz4 = load("@foxglove/wasm-lz4");
const { parse } = load("@foxglove/rosmsg");
const { MessageReader } = load("@foxglove/rosmsg2-serialization");

// The decoded fields worth comparing, per type; byte arrays are written apart.
function fields(type, msg, write) {
  switch (type) {
    case "sensor_msgs/msg/Image":
      return { width: msg.width, height: msg.height, encoding: msg.encoding,
               is_bigendian: msg.is_bigendian, step: msg.step, data: write(msg.data) };
    case "sensor_msgs/msg/CompressedImage":
      return { format: msg.format, data: write(msg.data) };
    case "sensor_msgs/msg/CameraInfo":
      return { width: msg.width, height: msg.height, distortion_model: msg.distortion_model,
               d: [...msg.d], k: [...msg.k] };
    case "sensor_msgs/msg/PointCloud2":
      return { width: msg.width, height: msg.height,
               fields: msg.fields.map((f) => ({ name: f.name, offset: f.offset,
                                               datatype: f.datatype, count: f.count })),
               is_bigendian: msg.is_bigendian, point_step: msg.point_step,
               row_step: msg.row_step, is_dense: msg.is_dense, data: write(msg.data) };
    default:
      return null;
  }
}

async function main() {
  const [file, out] = process.argv.slice(2);
  const bytes = new Uint8Array(fs.readFileSync(file));
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
  check(`${tag}: profile ros2, summary with statistics`,
        reader.header.profile === "ros2" && reader.statistics != null, reader.header.profile);
  const readers = new Map();
  for (const [id, schema] of reader.schemasById) {
    const text = new TextDecoder().decode(schema.data);
    readers.set(id, new MessageReader(parse(text, { ros2: true })));
  }
  fs.mkdirSync(out, { recursive: true });
  const messages = [];
  const write = (data) => {
    const name = `${messages.length}.bin`;
    fs.writeFileSync(path.join(out, name), data);
    return name;
  };
  for await (const m of reader.readMessages({ validateCrcs: true })) {
    const channel = reader.channelsById.get(m.channelId);
    const schema = reader.schemasById.get(channel.schemaId);
    if (schema.encoding !== "ros2msg" || channel.messageEncoding !== "cdr") {
      check(`${channel.topic}: ros2msg schema and cdr messages`, false,
            `${schema.encoding} ${channel.messageEncoding}`);
      continue;
    }
    const msg = readers.get(channel.schemaId).readMessage(m.data);
    const stamp = msg.header.stamp;
    messages.push({
      topic: channel.topic, schema: schema.name, sequence: m.sequence,
      log_time: String(m.logTime), publish_time: String(m.publishTime),
      stamp_ns: String(BigInt(stamp.sec) * 1000000000n + BigInt(stamp.nanosec ?? stamp.nsec)),
      frame_id: msg.header.frame_id, stream: channel.metadata.get("sk2_stream"),
      ...fields(schema.name, msg, write),
    });
  }
  const stats = reader.statistics;
  check(`${tag}: ${messages.length} messages read through the index, as many as the statistics count`,
        BigInt(messages.length) === stats.messageCount, `${stats.messageCount}`);
  const stream = new McapStreamReader({ decompressHandlers, validateCrcs: true });
  stream.append(bytes);
  let streamed = 0;
  let record;
  while ((record = stream.nextRecord())) if (record.type === "Message") streamed++;
  check(`${tag}: the stream reader reads every record to the end`,
        stream.done() && streamed === messages.length, `${streamed} messages`);
  fs.writeFileSync(path.join(out, "messages.json"), JSON.stringify(messages));
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL ${e.stack || e}`);
  process.exit(1);
});
