// The stamp: a hashcash-style proof of work the proxy checks with one hash.
// X-Leadline-Stamp: 1:<bits>:<ts>:<nonce>, valid when SHA-256 over
// "1:<bits>:<ts>:<form>:<id>:<nonce>" starts with <bits> zero bits.
// Pure JS: WebCrypto's digest is one promise per try, several times slower here.
const roots = (n, e) => {
  const out = new Int32Array(n);
  for (let p = 2, i = 0; i < n; p++) {
    let prime = true;
    for (let d = 2; d * d <= p; d++) if (p % d === 0) { prime = false; break; }
    if (prime) out[i++] = ((p ** e) % 1) * 2 ** 32;
  }
  return out;
};
const K = roots(64, 1 / 3), IV = roots(8, 1 / 2), W = new Int32Array(64);

// One 64-byte block of b at o into the state h (SHA-256's compression).
const r = (x, n) => (x >>> n) | (x << (32 - n));
function block(h, b, o) {
  for (let i = 0; i < 16; i++, o += 4) W[i] = (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15], y = W[i - 2];
    W[i] = (r(x, 7) ^ r(x, 18) ^ (x >>> 3)) + W[i - 7] + (r(y, 17) ^ r(y, 19) ^ (y >>> 10)) + W[i - 16];
  }
  let a = h[0], c = h[1], d = h[2], e = h[3], f = h[4], g = h[5], k = h[6], m = h[7];
  for (let i = 0; i < 64; i++) {
    const t = (m + (r(f, 6) ^ r(f, 11) ^ r(f, 25)) + ((f & g) ^ (~f & k)) + K[i] + W[i]) | 0;
    const u = ((r(a, 2) ^ r(a, 13) ^ r(a, 22)) + ((a & c) ^ (a & d) ^ (c & d))) | 0;
    m = k; k = g; g = f; f = (e + t) | 0; e = d; d = c; c = a; a = (t + u) | 0;
  }
  h[0] += a; h[1] += c; h[2] += d; h[3] += e; h[4] += f; h[5] += g; h[6] += k; h[7] += m;
}

// text and SHA-256's padding, in whole blocks.
function padded(text) {
  const bytes = new TextEncoder().encode(text), n = Math.ceil((bytes.length + 9) / 64) * 64;
  const b = new Uint8Array(n);
  b.set(bytes);
  b[bytes.length] = 0x80;
  new DataView(b.buffer).setUint32(n - 4, bytes.length * 8);
  return b;
}

// For tests: the hex digest of a string.
export function sha256(text) {
  const b = padded(text), h = Int32Array.from(IV);
  for (let o = 0; o < b.length; o += 64) block(h, b, o);
  return Array.from(h, (x) => (x >>> 0).toString(16).padStart(8, '0')).join('');
}

const HEX = new TextEncoder().encode('0123456789abcdef');
const SLICE_MS = 8;
// Gives the page (or the worker) its event loop back between slices, behind
// everything else waiting (scheduler.yield would cut in line ahead of it).
const pause = () => new Promise((r) => (globalThis.scheduler?.postTask ? scheduler.postTask(r, { priority: 'background' }) : setTimeout(r, 0)));

// The header value for one submission. The nonce is an 8-digit counter,
// zero-padded so that it starts a block where it can: the blocks before it
// are hashed once, each try costs one or two blocks.
export async function mint(form, id, bits, now = Math.floor(Date.now() / 1000)) {
  if (!(Number.isInteger(bits) && bits >= 0 && bits <= 64)) throw new RangeError(`leadline: stamp bits ${bits}`);
  const head = `1:${bits}:${now}:${form}:${id}:`, len = new TextEncoder().encode(head).length;
  const pad = (64 - (len % 64)) % 64 <= 8 ? (64 - (len % 64)) % 64 : 0;
  const b = padded(head + '0'.repeat(pad + 8)), at = len + pad, first = at - (at % 64);
  const mid = Int32Array.from(IV), h = new Int32Array(8);
  for (let o = 0; o < first; o += 64) block(mid, b, o);
  let until = performance.now() + SLICE_MS;
  for (let n = 0; n < 2 ** 32; n++) {
    if ((n & 1023) === 0 && performance.now() > until) {
      await pause();
      until = performance.now() + SLICE_MS;
    }
    for (let i = 0; i < 8; i++) b[at + i] = HEX[(n >>> (28 - 4 * i)) & 15];
    h.set(mid);
    for (let o = first; o < b.length; o += 64) block(h, b, o);
    const zeros = h[0] === 0 ? 32 + Math.clz32(h[1]) : Math.clz32(h[0]);
    if (zeros >= bits) return `1:${bits}:${now}:${'0'.repeat(pad)}${(n >>> 0).toString(16).padStart(8, '0')}`;
  }
  throw new Error(`leadline: no stamp of ${bits} bits`);
}
