// The outbox: every submission is stored first, then sent until the proxy
// takes it (202) or says the data is bad (4xx). Entries are sent each on its
// own, so one that keeps failing never holds back the others.
export const BASE_MS = 1000;
export const CAP_MS = 5 * 60_000;
export const LEASE_MS = 30_000;

// 'done' leaves the outbox; 'reject' goes back to the visitor; 'retry' waits.
// 0 stands for "no answer" (offline, refused, CORS, aborted).
export function classify(status) {
  if (status >= 200 && status < 300) return 'done';
  if (!status || status >= 500 || [408, 425, 429].includes(status)) return 'retry';
  return 'reject';
}

// Exponential, with "equal jitter" (half fixed, half random) so that many
// visitors coming back online do not retry in lockstep.
export function backoff(attempt, random = Math.random) {
  const ms = Math.min(CAP_MS, BASE_MS * 2 ** (attempt - 1));
  return ms / 2 + (random() * ms) / 2;
}

// Retry-After is seconds or an HTTP date; the answer is milliseconds from now.
export function retryAfter(value, now = Date.now()) {
  if (!value) return 0;
  const at = /^\d+$/.test(value.trim()) ? now + 1000 * Number(value) : Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}

const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('');

// `due`: backoff (skipped when the network comes back); `hold`: the server's
// Retry-After, always honoured. `trace`: one W3C trace id per submission.
export const entry = (form, url, data) => ({
  id: crypto.randomUUID(), form, url, data, trace: hex(16), attempts: 0, due: 0, hold: 0, created: Date.now(),
});

export class Outbox extends EventTarget {
  constructor(store) {
    super();
    this.store = store;
    this.busy = new Set(); // ids this tab is sending right now
    this.tab = crypto.randomUUID();
    // Tell the other tabs, so a form learns about a delivery another tab made.
    this.channel = self.BroadcastChannel ? new BroadcastChannel('leadline-outbox') : null;
    this.channel?.addEventListener('message', (e) => this.emit(e.data.type, e.data, false));
  }

  emit(type, detail, share = true) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
    if (share) this.channel?.postMessage({ ...detail, type });
  }

  async list(form) {
    return (await this.store.all()).filter((e) => e.form === form);
  }

  add(e) {
    return this.store.put(e);
  }

  // now=true: the network just came back or the page is going away, so skip
  // the backoff (not the server's Retry-After).
  async flush(now = false) {
    const t = Date.now(), waiting = (await this.store.all()).filter((e) => !e.rejected);
    const ready = waiting.filter((e) => e.hold <= t && (now || e.due <= t));
    await Promise.allSettled(ready.map((e) => this.send(e.id, now)));
    const left = (await this.store.all()).filter((e) => !e.rejected && !this.busy.has(e.id));
    clearTimeout(this.timer);
    if (left.length) {
      const at = Math.min(...left.map((e) => Math.max(e.due, e.hold)));
      // At least 250 ms: an entry another tab is sending must not make this one spin.
      this.timer = setTimeout(() => this.flush(), Math.max(250, at - Date.now() + 20));
    }
  }

  async send(id, now) {
    if (this.busy.has(id)) return;
    this.busy.add(id);
    try {
      await this.exclusive(id, () => this.attempt(id, now));
    } finally {
      this.busy.delete(id);
    }
  }

  // One tab at a time per entry. A Web Lock dies with its tab; the fallback
  // lease (claimed atomically in IndexedDB) expires if its tab dies mid-send.
  async exclusive(id, fn) {
    if (navigator.locks) return navigator.locks.request(`leadline-outbox:${id}`, { ifAvailable: true }, (lock) => lock && fn());
    const until = Date.now() + LEASE_MS;
    const { after } = await this.store.swap(id, (e) => (e && !(e.lease > Date.now()) ? { ...e, lease: until, owner: this.tab } : e));
    if (after?.owner !== this.tab || after.lease !== until) return null;
    try {
      return await fn();
    } finally {
      await this.store.swap(id, (e) => e && { ...e, lease: 0 });
    }
  }

  async attempt(id, now) {
    // Read again under the lock: another tab may have sent it meanwhile.
    const e = await this.store.get(id), t = Date.now();
    if (!e || e.rejected || e.hold > t || (!now && e.due > t)) return;
    let status = 0, wait = 0, body = null;
    try {
      // keepalive: a send in flight survives the tab closing (the entry
      // stays until a 202 is seen; the Idempotency-Key makes a resend harmless).
      const res = await fetch(e.url, {
        method: 'POST', mode: 'cors', credentials: 'omit', keepalive: true,
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': e.id, traceparent: `00-${e.trace}-${hex(8)}-01` },
        body: JSON.stringify(e.data),
      });
      ({ status } = res);
      wait = retryAfter(res.headers.get('Retry-After'));
      if (status >= 400 && status < 500) body = await res.json().catch(() => null);
    } catch { /* no answer: try again later */ }
    const verdict = classify(status), about = { id, form: e.form, status };
    if (verdict === 'done') {
      await this.store.swap(id, () => undefined);
      this.emit('delivered', about);
    } else if (verdict === 'reject') {
      // Kept, marked, until a form shows it back to the visitor (take()).
      const errors = Array.isArray(body?.errors) ? body.errors : [];
      await this.store.swap(id, (x) => x && { ...x, rejected: { status, errors } });
      this.emit('rejected', about);
    } else {
      const attempts = e.attempts + 1;
      await this.store.swap(id, (x) => x && { ...x, attempts, due: Date.now() + backoff(attempts), hold: Date.now() + wait });
      this.emit('retry', { ...about, attempts });
    }
  }

  // A rejected entry of this form, removed from the outbox: only one tab gets it.
  async take(form) {
    for (const e of await this.list(form)) {
      if (!e.rejected) continue;
      const { before } = await this.store.swap(e.id, (x) => (x?.rejected ? undefined : x));
      if (before?.rejected) return before;
    }
    return null;
  }
}
