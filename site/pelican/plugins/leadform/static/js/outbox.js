// The outbox: stored first, then sent until the proxy takes it (2xx) or says
// the data is bad (4xx). Each entry is sent on its own: no head-of-line blocking.
// Runs in a page and in the service worker (leadform-sw.js): no document here.
import { mint } from './stamp.js';

export const BASE_MS = 1000;
export const CAP_MS = 300_000;
export const LEASE_MS = 30_000;
export const SEND_TIMEOUT_MS = 20_000;
export const STAMP_BITS = 16;

// Only an answer that says the data is bad (malformed, too large, invalid)
// takes an entry out; anything else, 0 ("no answer": offline, refused, CORS)
// included, is worth another try.
export const REJECTS = [400, 413, 422];
// A 422 that only asks for a (fresh) stamp is about the stamp, not the data:
// stamped again and retried.
export function classify(status, errors = []) {
  if (status >= 200 && status < 300) return 'done';
  if (status === 422 && errors.length && errors.every((e) => e?.code === 'stamp')) return 'restamp';
  return REJECTS.includes(status) ? 'reject' : 'retry';
}

// Exponential with "equal jitter", so visitors coming back online do not retry in lockstep.
export function backoff(attempt, random = Math.random) {
  const ms = Math.min(CAP_MS, BASE_MS * 2 ** (attempt - 1));
  return ms / 2 + (random() * ms) / 2;
}

// Retry-After (seconds or an HTTP date) as milliseconds from now.
export function retryAfter(v, now = Date.now()) {
  const at = /^\d+$/.test(v ?? '') ? now + 1000 * v : Date.parse(v);
  return at > now ? at - now : 0;
}

const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('');

// due: our backoff (skipped when the network comes back); hold: the server's Retry-After (never skipped).
// bits: the stamp's difficulty; stamp: minted at the first attempt (after the thank-you).
export const entry = (form, url, data, bits = STAMP_BITS) => ({ id: crypto.randomUUID(), form, url, data, bits, trace: hex(16), attempts: 0, due: 0, hold: 0 });

export class Outbox extends EventTarget {
  // bits: for entries an older script stored without; keepalive: pages only
  // (a service worker outlives its fetches anyway); wait: queue for an entry's
  // lock instead of skipping it (the service worker: the page holding it may
  // be closing, and what it leaves is the worker's to send at once).
  constructor(store, { bits = STAMP_BITS, keepalive = true, wait = false } = {}) {
    super();
    this.store = store;
    this.bits = bits;
    this.keepalive = keepalive;
    this.wait = wait;
    this.busy = new Set();
    this.tab = crypto.randomUUID();
    // So a tab hears of a delivery another tab made.
    this.bc = self.BroadcastChannel && new BroadcastChannel('leadline-outbox');
    this.bc?.addEventListener('message', (e) => this.emit(e.data, false));
  }

  emit(detail, share = true) {
    this.dispatchEvent(new CustomEvent(detail.type, { detail }));
    if (share) this.bc?.postMessage(detail);
  }

  async list(form) {
    return (await this.store.all()).filter((e) => e.form === form);
  }

  // now: the network is back or the page is going away, so skip the backoff.
  async flush(now = false) {
    const left = await this.sendDue(now);
    clearTimeout(this.timer);
    // At least 250 ms: an entry another tab is sending must not make us spin.
    if (left.length) this.timer = setTimeout(() => this.flush(), Math.max(250, Math.min(...left.map((e) => Math.max(e.due, e.hold))) - Date.now()));
  }

  // One round over the due entries; the retryable ones left afterwards.
  async sendDue(now = false) {
    const t = Date.now(), all = await this.store.all();
    await Promise.allSettled(all.filter((e) => !e.rejected && e.hold <= t && (now || e.due <= t)).map((e) => this.send(e.id, now)));
    return (await this.store.all()).filter((e) => !e.rejected);
  }

  async send(id, now) {
    if (this.busy.has(id)) return;
    this.busy.add(id);
    try { await this.exclusive(id, () => this.attempt(id, now)); } finally { this.busy.delete(id); }
  }

  // One tab at a time per entry. A Web Lock dies with its tab; the fallback
  // lease (claimed atomically in IndexedDB) expires if its tab dies mid-send.
  async exclusive(id, fn) {
    if (navigator.locks) return navigator.locks.request(`leadline:${id}`, { ifAvailable: !this.wait }, (lock) => lock && fn());
    const until = Date.now() + LEASE_MS;
    const { after } = await this.store.swap(id, (e) => (e && !(e.lease > Date.now()) ? { ...e, lease: until, owner: this.tab } : e));
    if (after?.owner !== this.tab || after.lease !== until) return;
    try { await fn(); } finally { await this.store.swap(id, (e) => e && { ...e, lease: 0 }); }
  }

  async attempt(id, now) {
    // Read again under the lock: another tab may have sent it meanwhile.
    const e = await this.store.get(id), t = Date.now();
    if (!e || e.rejected || e.hold > t || (!now && e.due > t)) return;
    // Under the lock, so a page and the service worker never mint twice; kept
    // for every later attempt (the proxy accepts it for SPAM_STAMP_MAX_AGE).
    let { stamp } = e;
    if (!stamp) {
      stamp = await mint(e.form, id, Number.isInteger(e.bits) ? e.bits : this.bits);
      await this.store.swap(id, (x) => x && { ...x, stamp });
    }
    let status = 0, wait = 0, body;
    try {
      // keepalive: a send in flight survives the tab closing; should its
      // answer be lost, the resend carries the same Idempotency-Key.
      // The timeout frees the lock (and the lease) well before LEASE_MS.
      const res = await fetch(e.url, {
        method: 'POST', mode: 'cors', credentials: 'omit', keepalive: this.keepalive, body: JSON.stringify(e.data),
        signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': id, traceparent: `00-${e.trace}-${hex(8)}-01`, 'X-Leadline-Stamp': stamp },
      });
      ({ status } = res);
      wait = retryAfter(res.headers.get('Retry-After'));
      body = await res.json();
    } catch { /* no answer, or no JSON */ }
    const errors = Array.isArray(body?.errors) ? body.errors : [];
    const verdict = classify(status, errors), restamp = verdict === 'restamp';
    // by: which page (or worker) made the attempt; only its own failures register a sync.
    const about = { id, form: e.form, status, type: restamp ? 'retry' : verdict, by: this.tab };
    if (verdict === 'done') await this.store.swap(id, () => undefined);
    else if (verdict === 'reject') {
      // Kept, marked, until a form shows it to the visitor again (take()).
      await this.store.swap(id, (x) => x && { ...x, rejected: { status, errors } });
    } else {
      // With backoff even for a stamp: a proxy asking more bits than ours must not make us spin.
      const attempts = e.attempts + 1, at = Date.now();
      await this.store.swap(id, (x) => x && { ...x, attempts, due: at + backoff(attempts), hold: at + wait, ...(restamp && { stamp: '' }) });
    }
    this.emit(about);
  }

  // A rejected entry of this form, out of the outbox: one tab gets it.
  async take(form) {
    for (const e of await this.list(form)) {
      const { before } = e.rejected ? await this.store.swap(e.id, (x) => (x?.rejected ? undefined : x)) : {};
      if (before?.rejected) return before;
    }
    return null;
  }
}
