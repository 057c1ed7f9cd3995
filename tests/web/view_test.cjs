// The web viewer in a real browser: Debian's Chromium, headless, driven by playwright-core,
// against `sk2 serve --http` with a mock device. Checks that the page loads without console
// errors, that the depth tile's frame counter advances by at least 20 frames in 2 s, that the
// depth tile of a screenshot is not blank, that a device added on the server (SIGUSR1)
// appears, and that the point cloud draws and turns when dragged. Then, against a replay of a
// TUM RGB-D folder written here (5000 values per metre, no intrinsics): that the legend shows
// the true range in metres and the point cloud is replaced by a note saying there are no
// intrinsics. Last, against a gateway with a token (--http-token auto): the page without the
// token is a 401 with no frames; with the printed URL (?token=) it receives frames over its
// WebSocket, and the cookie that URL set lets the plain URL in afterwards. Screenshots go to
// OUT_DIR.
//
// usage: node view_test.cjs SK2_BINARY NODE_MODULES_DIR OUT_DIR
// Exit 0 pass, 1 fail, 77 skip (no Chromium or no playwright-core, unless CI=true).
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const [sk2, modulesDir, outDir] = process.argv.slice(2);
const CHROMIUM = process.env.SK2_CHROMIUM || '/usr/bin/chromium';
const isCi = process.env.CI === 'true';
// Frames the depth counter must advance by (a count within a generous deadline, never a rate:
// the test must pass on a machine busy with other work).
const minFrames = 20;
const frameDeadlineMs = 60000;

function skip(why) {
  console.log(`SKIP: ${why}`);
  process.exit(isCi ? 1 : 77);
}

let playwright;
try {
  playwright = require(path.join(modulesDir, 'playwright-core'));
} catch (e) {
  skip(`playwright-core not installed in ${modulesDir} (npm ci): ${e.message}`);
}
if (!fs.existsSync(CHROMIUM)) skip(`${CHROMIUM} not found (apt-get install chromium)`);

let failures = 0;
let passes = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok' : 'FAIL'}: ${what}`);
  if (ok) passes++;
  else failures++;
}

// A PNG (8-bit RGB or RGBA, as Chromium writes screenshots) to {width, height, channels, data}.
function decodePng(buf) {
  let pos = 8, width = 0, height = 0, channels = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos), type = buf.toString('ascii', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error('only 8-bit non-interlaced PNG');
      channels = { 2: 3, 6: 4 }[data[9]];
      if (!channels) throw new Error('only RGB or RGBA PNG');
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels, out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const cur = raw[y * (stride + 1) + 1 + x];
      const a = x >= channels ? out[y * stride + x - channels] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels] : 0;
      let p;
      if (filter === 0) p = 0;
      else if (filter === 1) p = a;
      else if (filter === 2) p = b;
      else if (filter === 3) p = (a + b) >> 1;
      else {
        const e = a + b - c, pa = Math.abs(e - a), pb = Math.abs(e - b), pc = Math.abs(e - c);
        p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + x] = (cur + p) & 0xff;
    }
  }
  return { width, height, channels, data: out };
}

// How many distinct colours, and how many pixels differ from the most common one.
function variety(png) {
  const counts = new Map();
  for (let i = 0; i < png.data.length; i += png.channels) {
    const key = (png.data[i] << 16) | (png.data[i + 1] << 8) | png.data[i + 2];
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const top = Math.max(...counts.values());
  return { colours: counts.size, other: png.width * png.height - top };
}

// A TUM RGB-D folder of 30 identical 64x48 depth frames at 5000 values per metre: 1.000 m in
// the top row to 1.094 m in the bottom one, no reading in the left column; no sk2.json, so no
// intrinsics.
function writeTum(dir) {
  const W = 64, H = 48;
  const raw = Buffer.alloc(H * (1 + W * 2));
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) raw.writeUInt16BE(x === 0 ? 0 : 5000 + 10 * y, y * (1 + W * 2) + 1 + x * 2);
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4), sum = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0);
  ihdr.writeUInt32BE(H, 4);
  ihdr[8] = 16;
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
  fs.mkdirSync(path.join(dir, 'depth'), { recursive: true });
  const lines = [];
  for (let i = 0; i < 30; i++) {
    const t = (1000 + i / 30).toFixed(6);
    fs.writeFileSync(path.join(dir, 'depth', `${t}.png`), png);
    lines.push(`${t} depth/${t}.png`);
  }
  fs.writeFileSync(path.join(dir, 'depth.txt'), lines.join('\n') + '\n');
}

function startServer(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(sk2, args || ['serve', '--mock', '1', '--fps', '30', '--no-announce', '--no-status',
      '--bind', '127.0.0.1', '--color-size', '640x360', '--http', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no URL from sk2 serve: ${out}`)), 60000);
    child.stdout.on('data', (d) => {
      out += d;
      for (const line of String(d).split('\n')) if (/device .* (removed|\(mock)/.test(line)) console.log(`  ${line}`);
      const m = out.match(/web viewer (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        const e = out.match(/control endpoint (tcp:\/\/\S+)/);
        resolve({ child, url: m[1], endpoint: e ? e[1] : null });
      }
    });
    child.on('exit', (code) => reject(new Error(`sk2 serve exited ${code}: ${out}`)));
  });
}

// Polls fn in the page every 100 ms until it returns something truthy (page.waitForFunction
// would evaluate a string, which the page's Content-Security-Policy rightly forbids).
async function waitFor(page, fn, arg, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await page.evaluate(fn, arg)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function tileIds(page) {
  return page.evaluate(() => [...document.querySelectorAll('#devices .tile')].map((t) => t.dataset.device));
}

async function counter(page, deviceIndex) {
  return page.$$eval('.tile .view.depth .frames', (els, i) =>
    els[i] ? Number(els[i].dataset.frames) : -1, deviceIndex);
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const { child, url, endpoint } = await startServer();
  const browser = await playwright.chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const killAll = async () => {
    await browser.close().catch(() => {});
    child.kill('SIGTERM');
  };
  const watchdog = setTimeout(() => {
    console.log('FAIL: the test took more than 400 s');
    killAll().then(() => process.exit(1));
  }, 400000);
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // Playwright's 30 s default is not enough for a screenshot when every core is busy with
    // other work; deadlines are generous, and what is checked is content, never speed.
    page.setDefaultTimeout(120000);
    const errors = [];
    page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
    page.on('pageerror', (err) => errors.push(String(err)));
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('.tile .view.depth .frames', { timeout: 60000 });
    check(await waitFor(page, () => {
      const e = document.querySelector('#devices .tile .view.depth .frames');
      return e && Number(e.dataset.frames) > 0;
    }, null, 60000), 'the page shows a depth tile that receives frames');
    const [firstId] = await tileIds(page);

    const before = await counter(page, 0);
    const t0 = Date.now();
    const advanced = await waitFor(page, (want) => {
      const e = document.querySelector('#devices .tile .view.depth .frames');
      return e && Number(e.dataset.frames) >= want;
    }, before + minFrames, frameDeadlineMs);
    const after = await counter(page, 0);
    check(advanced, `depth frame counter advanced by ${after - before} (>= ${minFrames}) ` +
      `in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const shot = decodePng(await page.locator('.tile .view.depth canvas.image').first().screenshot());
    const v = variety(shot);
    check(v.colours >= 20 && v.other > shot.width * shot.height * 0.2,
      `depth tile screenshot ${shot.width}x${shot.height} has ${v.colours} colours, ` +
      `${v.other} pixels off the commonest`);

    // The point cloud draws, and turns when dragged.
    const cloud = page.locator('.tile .view.cloud canvas.image').first();
    const cloudShot = decodePng(await cloud.screenshot());
    const cv = variety(cloudShot);
    const points = Number(await cloud.getAttribute('data-points'));
    check(points > 10000 && cv.other > 5000,
      `point cloud drew ${points} points, ${cv.other} pixels off the background`);
    const box = await cloud.boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2 + 30, { steps: 5 });
    await page.mouse.up();
    await page.waitForTimeout(200);
    const turned = decodePng(await cloud.screenshot());
    let changed = 0;
    for (let i = 0; i < turned.data.length && i < cloudShot.data.length; i += 4)
      if (turned.data[i] !== cloudShot.data[i] || turned.data[i + 1] !== cloudShot.data[i + 1]) changed++;
    check(changed > 2000, `dragging turned the point cloud (${changed} pixels changed)`);

    // IR and colour tiles fill once subscribed.
    for (const kind of ['ir', 'color']) {
      check(await waitFor(page, (k) => {
        const e = document.querySelector(`#devices .tile .view.${k} .frames`);
        return e && Number(e.dataset.frames) > 3;
      }, kind, 60000), `the ${kind} view receives frames`);
    }

    await saveCloud(page);
    await settingsEditor(page, endpoint);
    await page.screenshot({ path: path.join(outDir, 'viewer.png'), fullPage: true });

    // A device added on the server appears on the page.
    child.kill('SIGUSR1');
    const appeared = await waitFor(page, () => document.querySelectorAll('#devices .tile').length === 2,
      null, 120000);
    const tiles = await page.evaluate(() => document.querySelectorAll('#devices .tile').length);
    check(appeared, `a device added on the server (SIGUSR1) appears as a second tile (${tiles} tiles)`);
    if (appeared) {
      const ok = await waitFor(page, () => {
        const e = document.querySelectorAll('#devices .tile .view.depth .frames')[1];
        return e && Number(e.dataset.frames) > 5;
      }, null, 60000);
      check(ok, 'the new device\'s depth tile receives frames');
    }
    child.kill('SIGUSR2');
    const vanished = await waitFor(page, () => document.querySelectorAll('#devices .tile').length === 1,
      null, 60000);
    const left = await tileIds(page);
    check(vanished && left[0] === firstId,
      'a device removed on the server (SIGUSR2) vanishes from the page, the first one stays');
    await page.screenshot({ path: path.join(outDir, 'viewer-final.png'), fullPage: true });

    check(errors.length === 0, `no console errors (${JSON.stringify(errors)})`);
  } finally {
    clearTimeout(watchdog);
    await killAll();
  }
  await tumPage();
  await tokenPage();
  console.log(`${passes} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

// The "save point cloud" link of the tile: shown for the mock (it has intrinsics), pointing at
// the gateway's pointcloud.ply of the device, which the page can fetch as a PLY file whose
// vertex count is the x-sk2-points header.
async function saveCloud(page) {
  const got = await page.evaluate(async () => {
    const a = document.querySelector('#devices .tile .view.cloud a.save-cloud');
    if (!a || a.hidden) return { shown: false };
    const r = await fetch(a.href);
    const head = new TextDecoder().decode((await r.arrayBuffer()).slice(0, 200));
    return { shown: true, href: a.getAttribute('href'), download: a.hasAttribute('download'),
      status: r.status, points: r.headers.get('x-sk2-points'), head };
  });
  check(got.shown && got.download && /^\/api\/devices\/.+\/pointcloud\.ply$/.test(got.href),
    `the tile offers its point cloud for download (${got.href})`);
  const vertices = /element vertex (\d+)/.exec(got.head || '');
  check(got.status === 200 && /^ply\n/.test(got.head || '') && vertices && vertices[1] === got.points &&
    Number(got.points) > 0,
    `the link gives a PLY file of the newest depth frame (${got.status}, ${got.points} points)`);
}

// The server's own label for its only device, from its `me` (sk2 info --json).
function serverLabel(endpoint) {
  const out = require('child_process').execFileSync(sk2, ['info', endpoint, '--json'],
    { encoding: 'utf8', timeout: 20000 });
  const devices = JSON.parse(out).devices || [];
  return devices.length ? devices[0].label : undefined;
}

// The settings editor of the tile: built from the server's `list` (label, location, running
// and fps for the mock), a label set there reaches the server, and a bad fps shows the
// server's refusal.
async function settingsEditor(page, endpoint) {
  const tile = page.locator('#devices .tile').first();
  await tile.locator('.settings input[name="label"]').waitFor({ timeout: 60000 });
  const names = await tile.locator('.settings input').evaluateAll((els) => els.map((e) => `${e.name}:${e.type}`));
  check(names.join(' ') === 'label:text location:text running:checkbox fps:number ' +
    'resolution.depth:text codec.depth:text',
    `the settings editor offers the settable keys (${names.join(' ')})`);
  await tile.locator('.settings input[name="label"]').fill('lobby-3');
  await tile.locator('.settings button[name="label"]').click();
  const result = tile.locator('.settings .result');
  const applied = await waitFor(page, () => {
    const r = document.querySelector('#devices .tile .settings .result');
    return r && r.dataset.ok === 'true' && r.textContent.includes('lobby-3');
  }, null, 30000);
  const label = serverLabel(endpoint);
  check(applied && label === 'lobby-3',
    `a label set in the page is applied (${await result.textContent()}) and the server's me shows it (${label})`);
  await tile.locator('.settings input[name="fps"]').fill('-5');
  await tile.locator('.settings button[name="fps"]').click();
  const refused = await waitFor(page, () => {
    const r = document.querySelector('#devices .tile .settings .result');
    return r && r.dataset.ok === 'false';
  }, null, 30000);
  const text = await result.textContent();
  check(refused && /fps takes .*bad-value/.test(text), `a bad fps shows the server's refusal (${text})`);
  // The depth size set from the page: the server's me then describes 256x212 depth.
  await tile.locator('.settings input[name="resolution.depth"]').fill('256x212');
  await tile.locator('.settings button[name="resolution.depth"]').click();
  const resized = await waitFor(page, () => {
    const r = document.querySelector('#devices .tile .settings .result');
    return r && r.dataset.ok === 'true' && r.textContent.includes('256x212');
  }, null, 30000);
  const depth = serverDepth(endpoint);
  check(resized && depth && depth.width === 256 && depth.height === 212,
    `a depth size set in the page is applied (${await result.textContent()}) and the server's me shows it (${JSON.stringify(depth)})`);
}

// The depth stream record of the server's only device, from its `me` (sk2 info --json).
function serverDepth(endpoint) {
  const out = require('child_process').execFileSync(sk2, ['info', endpoint, '--json'],
    { encoding: 'utf8', timeout: 20000 });
  const devices = JSON.parse(out).devices || [];
  return devices.length ? (devices[0].streams || []).find((s) => s.kind === 'depth') : undefined;
}

// The page of a TUM replay: true distances in the legend and under the cursor, and no point
// cloud (a note instead) since the folder gives no intrinsics.
async function tumPage() {
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'sk2-view-tum-'));
  const tum = path.join(dir, 'tum');
  writeTum(tum);
  const { child, url } = await startServer(['serve', '--replay', tum, '--loop', '--no-announce',
    '--no-status', '--bind', '127.0.0.1', '--http', '127.0.0.1:0']);
  const browser = await playwright.chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const watchdog = setTimeout(() => {
    console.log('FAIL: the TUM page test took more than 300 s');
    child.kill('SIGTERM');
    browser.close().finally(() => process.exit(1));
  }, 300000);
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(120000);
    const errors = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    await page.goto(url, { waitUntil: 'load' });
    const ok = await waitFor(page, () => {
      const e = document.querySelector('#devices .tile .view.depth .frames');
      return e && Number(e.dataset.frames) > 2;
    }, null, 60000);
    check(ok, 'the TUM replay\'s depth tile receives frames');
    // The legend is filled once the page has the stream's unit and a frame's range: wait for
    // it rather than race it.
    await waitFor(page, () => {
      const l = document.querySelector('#devices .tile .legend .max');
      return l && l.textContent.trim() !== '';
    }, null, 60000);
    const legend = await page.evaluate(() => {
      const l = document.querySelector('#devices .tile .legend');
      return { min: l.querySelector('.min').textContent, max: l.querySelector('.max').textContent };
    });
    check(legend.min === '1.000 m' && legend.max === '1.094 m',
      `the legend shows the true range of a 5000-per-metre stream: ${legend.min} .. ${legend.max} ` +
      '(want 1.000 m .. 1.094 m)');
    const canvas = page.locator('.tile .view.depth canvas.image').first();
    const box = await canvas.boundingBox();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * (10.5 / 48));
    const cursor = await page.locator('.tile .view.depth .cursor').first().textContent();
    check(/\(3[0-3], 10\) 1\.020 m/.test(cursor), `the value under the cursor is a true distance: ${cursor}`);
    const cloud = await page.evaluate(() => {
      const fig = document.querySelector('#devices .tile .view.cloud');
      const note = fig.querySelector('.note');
      return { canvasHidden: fig.querySelector('canvas.image').hidden, noteHidden: note.hidden,
        note: note.textContent, points: fig.querySelector('canvas.image').dataset.points || '0',
        saveHidden: fig.querySelector('a.save-cloud').hidden };
    });
    check(cloud.saveHidden, 'without intrinsics the page offers no point cloud file to save');
    check(cloud.canvasHidden && !cloud.noteHidden && /no intrinsics/.test(cloud.note) && cloud.points === '0',
      `without intrinsics there is no point cloud but a note: "${cloud.note}" (${cloud.points} points)`);
    await page.screenshot({ path: path.join(outDir, 'viewer-tum.png'), fullPage: true });
    check(errors.length === 0, `no page errors on the TUM page (${JSON.stringify(errors)})`);
  } finally {
    clearTimeout(watchdog);
    await browser.close().catch(() => {});
    child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// The page of a gateway that needs a token: 401 without it, frames with it (the cookie set by
// ?token= carries it to the page's script, style sheet and WebSocket).
async function tokenPage() {
  const { child, url } = await startServer(['serve', '--mock', '1', '--fps', '30', '--no-announce',
    '--no-status', '--bind', '127.0.0.1', '--color-size', '640x360', '--http', '127.0.0.1:0',
    '--http-token', 'auto']);
  const browser = await playwright.chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const watchdog = setTimeout(() => {
    console.log('FAIL: the token page test took more than 200 s');
    child.kill('SIGTERM');
    browser.close().finally(() => process.exit(1));
  }, 200000);
  try {
    const m = url.match(/^(http:\/\/[^/]+\/)\?token=([0-9a-f]{32})$/);
    check(m !== null, `the printed URL carries the token: ${url}`);
    const plain = m ? m[1] : url;
    const stranger = await browser.newContext();
    const strangerPage = await stranger.newPage();
    const refused = await strangerPage.goto(plain, { waitUntil: 'load' });
    const strangerText = await strangerPage.evaluate(() => document.body.innerText);
    check(refused.status() === 401 && !/tile/.test(await strangerPage.content()) &&
      /needs its token/.test(strangerText),
    `without the token the page is a 401 with no viewer (${refused.status()})`);
    await stranger.close();

    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(120000);
    const errors = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
    const response = await page.goto(url, { waitUntil: 'load' });
    check(response.status() === 200, `with ?token= the page loads (${response.status()})`);
    const frames = await waitFor(page, () => {
      const e = document.querySelector('#devices .tile .view.depth .frames');
      return e && Number(e.dataset.frames) > 5;
    }, null, 60000);
    check(frames, 'with ?token= the depth tile receives frames over the WebSocket');
    const again = await page.goto(plain, { waitUntil: 'load' });
    const framesAgain = await waitFor(page, () => {
      const e = document.querySelector('#devices .tile .view.depth .frames');
      return e && Number(e.dataset.frames) > 5;
    }, null, 60000);
    check(again.status() === 200 && framesAgain,
      `the cookie lets the plain URL in afterwards, with frames (${again.status()})`);
    await page.screenshot({ path: path.join(outDir, 'viewer-token.png'), fullPage: true });
    check(errors.length === 0, `no console errors with a token (${JSON.stringify(errors)})`);
  } finally {
    clearTimeout(watchdog);
    await browser.close().catch(() => {});
    child.kill('SIGTERM');
  }
}

main().catch((e) => {
  console.log(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
