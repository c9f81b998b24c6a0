// Where submissions wait: IndexedDB; localStorage where IndexedDB is missing
// or refuses (some private modes); memory as a last resort, so the lead is
// still sent while the page stays open.
// API: all() get(id) put(entry) swap(id, fn): fn(old) -> new (undefined deletes).
const PREFIX = 'leadline:outbox:';

const done = (r) => new Promise((ok, fail) => { r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });

async function idb() {
  const open = indexedDB.open('leadline', 1);
  open.onupgradeneeded = () => open.result.createObjectStore('outbox', { keyPath: 'id' });
  const db = await done(open);
  // Resolves on commit, not on request success: "stored" means stored.
  const tx = (mode, fn) => new Promise((ok, fail) => {
    const t = db.transaction('outbox', mode);
    let out;
    fn(t.objectStore('outbox'), (v) => { out = v; });
    t.oncomplete = () => ok(out);
    t.onerror = t.onabort = () => fail(t.error);
  });
  return {
    all: () => tx('readonly', (s, set) => { s.getAll().onsuccess = (e) => set(e.target.result); }),
    get: (id) => tx('readonly', (s, set) => { s.get(id).onsuccess = (e) => set(e.target.result); }),
    put: (entry) => tx('readwrite', (s) => s.put(entry)),
    // Read and write in one readwrite transaction: IndexedDB runs overlapping
    // ones strictly one after another, across tabs too, so this is atomic.
    swap: (id, fn) => tx('readwrite', (s, set) => {
      s.get(id).onsuccess = (e) => {
        const before = e.target.result, after = fn(before);
        if (after === undefined) s.delete(id); else s.put(after);
        set({ before, after });
      };
    }),
  };
}

function keyed(storage, keys) {
  const read = (id) => JSON.parse(storage.getItem(PREFIX + id) ?? 'null') ?? undefined;
  const write = (id, v) => (v === undefined ? storage.removeItem(PREFIX + id) : storage.setItem(PREFIX + id, JSON.stringify(v)));
  return {
    all: async () => keys().filter((k) => k.startsWith(PREFIX)).map((k) => read(k.slice(PREFIX.length))),
    get: async (id) => read(id),
    put: async (entry) => write(entry.id, entry),
    // Not atomic across tabs; the Web Locks API (in every browser with a
    // broken IndexedDB that we know of) keeps tabs apart instead.
    swap: async (id, fn) => { const before = read(id), after = fn(before); write(id, after); return { before, after }; },
  };
}

function memory() {
  const m = new Map();
  return keyed({ getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k) }, () => [...m.keys()]);
}

export async function openStore() {
  try { return Object.assign(await idb(), { kind: 'indexeddb' }); } catch { /* next */ }
  try {
    localStorage.setItem(PREFIX, '1');
    localStorage.removeItem(PREFIX);
    return Object.assign(keyed(localStorage, () => Object.keys(localStorage)), { kind: 'localstorage' });
  } catch { /* next */ }
  return Object.assign(memory(), { kind: 'memory' });
}
