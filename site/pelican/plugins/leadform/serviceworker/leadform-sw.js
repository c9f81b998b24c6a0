// Leadline's service worker: delivers the outbox after the tab is gone, where
// the browser has Background Sync (leadform.js registers it only there).
// serviceworker.py writes it to the site's root, its scope, with the paths of
// the published modules and SITE filled in. Never hashed: its URL must stay.
// The same modules as the page: one IndexedDB outbox, one lock per entry, so
// a page and this worker never both send an entry.
import { Outbox } from './js/outbox.js';
import { openStore } from './js/store.js';

const SITE = { version: 'source', bits: 16 };
const TAG = 'leadline-outbox';
self.leadline = SITE;

// A new deploy's worker takes over at once. Safe: the outbox's format is the
// same, and an old worker still sending an entry holds its lock.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (ev) => ev.waitUntil(self.clients.claim()));

let outbox;
async function deliver() {
  outbox ??= new Outbox(await openStore(), { bits: SITE.bits, keepalive: false, wait: true });
  // The network is back: no backoff, only the server's Retry-After holds.
  const left = await outbox.sendDue(true);
  // A rejected sync is tried again by the browser (minutes apart, a few times).
  if (left.length) throw new Error(`leadline: ${left.length} waiting`);
}

self.addEventListener('sync', (ev) => {
  if (ev.tag === TAG) ev.waitUntil(deliver());
});
