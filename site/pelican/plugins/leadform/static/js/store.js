// Where submissions wait: IndexedDB, else localStorage (some private modes),
// else memory (sent while the page stays open, at least).
// all() get(id) put(e) swap(id, fn): fn(old) -> new, undefined deletes.
const P = 'leadline:outbox:';
const req = (r) => new Promise((ok, no) => { r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });

async function idb() {
  const open = indexedDB.open('leadline', 1);
  open.onupgradeneeded = () => open.result.createObjectStore('outbox', { keyPath: 'id' });
  const db = await req(open);
  // Settles on commit, not on request success: "stored" means stored.
  const tx = (mode, fn) => new Promise((ok, no) => {
    const t = db.transaction('outbox', mode);
    let out;
    fn(t.objectStore('outbox'), (v) => { out = v; });
    t.oncomplete = () => ok(out);
    t.onerror = t.onabort = () => no(t.error);
  });
  const read = (s, id, set) => { s.get(id).onsuccess = (e) => set(e.target.result); };
  return {
    all: () => tx('readonly', (s, set) => { s.getAll().onsuccess = (e) => set(e.target.result); }),
    get: (id) => tx('readonly', (s, set) => read(s, id, set)),
    put: (e) => tx('readwrite', (s) => s.put(e)),
    // One readwrite transaction: IndexedDB runs overlapping ones one at a
    // time, across tabs too, so read-then-write is atomic.
    swap: (id, fn) => tx('readwrite', (s, set) => read(s, id, (before) => {
      const after = fn(before);
      if (after === undefined) s.delete(id); else s.put(after);
      set({ before, after });
    })),
  };
}

function keyed(st, keys) {
  const read = (id) => JSON.parse(st.getItem(P + id)) ?? undefined;
  const write = (id, v) => (v === undefined ? st.removeItem(P + id) : st.setItem(P + id, JSON.stringify(v)));
  return {
    all: async () => keys().filter((k) => k.startsWith(P)).map((k) => read(k.slice(P.length))),
    get: async (id) => read(id),
    put: async (e) => write(e.id, e),
    swap: async (id, fn) => { const before = read(id), after = fn(before); write(id, after); return { before, after }; },
  };
}

export async function openStore() {
  try { return await idb(); } catch { /* next */ }
  try {
    localStorage.setItem('leadline:probe', '1'); // throws where storage is off
    localStorage.removeItem('leadline:probe');
    return keyed(localStorage, () => Object.keys(localStorage));
  } catch { /* next */ }
  const m = new Map();
  return keyed({ getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k) }, () => [...m.keys()]);
}
