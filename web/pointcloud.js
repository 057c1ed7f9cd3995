// A point cloud of one depth frame, drawn on a 2D canvas: every second pixel is lifted to 3D
// with the stream's intrinsics (x = (u - cx) z / fx, y = (v - cy) z / fy; lens distortion is
// left out, which moves points by at most a few millimetres at the edges), turned about its
// centre by the yaw and pitch the mouse sets, and projected with a z-buffer so that near
// points hide far ones. No WebGL: it draws the same in every browser, also without a GPU.
'use strict';

class PointCloud {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.image = this.ctx.createImageData(canvas.width, canvas.height);
    this.pixels = new Uint32Array(this.image.data.buffer);
    this.zbuf = new Float32Array(canvas.width * canvas.height);
    this.reset();
    this.drawn = 0; // points drawn in the last frame
    let drag = null;
    canvas.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, y: e.clientY, yaw: this.yaw, pitch: this.pitch };
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!drag) return;
      this.yaw = drag.yaw + (e.clientX - drag.x) * 0.01;
      this.pitch = Math.max(-1.5, Math.min(1.5, drag.pitch + (e.clientY - drag.y) * 0.01));
      this.dirty = true;
    });
    canvas.addEventListener('pointerup', () => { drag = null; });
    canvas.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.zoom = Math.max(0.3, Math.min(5, this.zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1)));
      this.dirty = true;
    }, { passive: false });
    canvas.addEventListener('dblclick', () => this.reset());
  }

  reset() {
    this.yaw = 0.6;
    this.pitch = 0.35;
    this.zoom = 1;
    this.dirty = true;
  }

  // depth: Uint16Array in the stream's unit (unitM metres per value), k: {fx, fy, cx, cy},
  // lut: colour of each 1/1024 of [min, max] (values, not metres)
  draw(depth, width, height, k, unitM, min, max, lut) {
    const W = this.canvas.width, H = this.canvas.height;
    const px = this.pixels, zbuf = this.zbuf;
    px.fill(0xff1a1614);
    zbuf.fill(Infinity);
    const step = 2;
    // The centre to turn about: the middle of the depth range, on the optical axis.
    const zc = ((min + max) / 2) * unitM;
    const cy = Math.cos(this.yaw), sy = Math.sin(this.yaw);
    const cp = Math.cos(this.pitch), sp = Math.sin(this.pitch);
    const dist = Math.max(1.5, zc * 2.2) / this.zoom; // camera distance from the centre, m
    const f = H * 1.1;
    const span = max > min ? max - min : 1;
    let drawn = 0;
    for (let v = 0; v < height; v += step) {
      const row = v * width;
      const yn = (v - k.cy) / k.fy;
      for (let u = 0; u < width; u += step) {
        const d = depth[row + u];
        if (d === 0) continue;
        const z = d * unitM;
        const x = ((u - k.cx) / k.fx) * z, y = yn * z;
        const zr = z - zc;
        // yaw about the vertical axis, then pitch about the horizontal one
        const x1 = x * cy + zr * sy, z1 = -x * sy + zr * cy;
        const y2 = y * cp - z1 * sp, z2 = y * sp + z1 * cp + dist;
        if (z2 <= 0.05) continue;
        const sx = (W / 2 + (f * x1) / z2) | 0, syy = (H / 2 + (f * y2) / z2) | 0;
        if (sx < 0 || syy < 0 || sx >= W - 1 || syy >= H - 1) continue;
        let t = ((d - min) * 1023 / span) | 0;
        t = t < 0 ? 0 : t > 1023 ? 1023 : t;
        const colour = lut[t];
        // a 2x2 splat, so the cloud looks solid at this sampling
        for (let o = 0; o < 4; o++) {
          const i = (syy + (o >> 1)) * W + sx + (o & 1);
          if (z2 < zbuf[i]) { zbuf[i] = z2; px[i] = colour; }
        }
        drawn++;
      }
    }
    this.ctx.putImageData(this.image, 0, 0);
    this.drawn = drawn;
    this.canvas.dataset.points = String(drawn);
    this.dirty = false;
  }
}
window.PointCloud = PointCloud;
