// Wires each <form data-leadform> to the outbox: check, store, thank, send.
// Without this script the same form still works as a plain POST.
import { can, next } from './machine.js';
import { check } from './rules.js';
import { Outbox, STAMP_BITS, entry } from './outbox.js';
import { openStore } from './store.js';
import { fieldError, fill, otherError } from './words.js';

// The page's words (texts.py, in the page's language) and rules, embedded in the form.
const embedded = (form, cls) => JSON.parse(form.querySelector(cls).textContent);

// Typed after the schema; an empty field is "not given", as on the proxy.
// Names the schema lacks (the honeypot) go along only when filled.
function collect(form, props) {
  const data = {};
  for (const el of form.elements) {
    const type = props[el.name]?.type;
    if (type === 'boolean') data[el.name] = el.checked;
    else if (el.name && el.value) data[el.name] = type === 'integer' || type === 'number' ? Number(el.value) : el.value;
  }
  return data;
}

// Each message next to its field (aria-describedby comes from the plugin),
// worded by code in the page's language; returns the words for errors no field owns.
function show(form, errors) {
  const T = embedded(form, '.leadform-texts'), props = embedded(form, '.leadform-rules').properties;
  const owned = new Set();
  for (const box of form.querySelectorAll('[data-field]')) {
    const name = box.dataset.field, el = form.elements[name], e = errors.find((x) => x.field === name);
    if (e) owned.add(e);
    box.querySelector('.error').textContent = e ? fieldError(T, e, props[name], el.type === 'checkbox', el.value) : '';
    if (e) el.setAttribute('aria-invalid', 'true');
    else el.removeAttribute('aria-invalid');
  }
  form.querySelector('[aria-invalid]')?.focus();
  return errors.filter((e) => !owned.has(e)).map((e) => otherError(T, e)).join('; ');
}

function setup(form, outbox, sync) {
  const name = form.dataset.leadform, status = form.querySelector('[role=status]');
  const rules = embedded(form, '.leadform-rules'), SAY = embedded(form, '.leadform-texts').say;
  const mine = new Set(); // entries this form has said "thank you" for
  const go = (event, words) => {
    if (!can(form.dataset.state, event)) return false;
    form.dataset.state = next(form.dataset.state, event);
    status.textContent = words;
    return true;
  };
  form.noValidate = true; // our checks speak the proxy's words; the browser's bubbles would not

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!go('submit', SAY.saving)) return;
    const data = collect(form, rules.properties), errors = check(rules, data);
    show(form, errors);
    if (errors.length) return go('invalid', SAY.invalid);
    const e = entry(name, form.action, data, Number(form.dataset.stampBits ?? STAMP_BITS));
    mine.add(e.id);
    await outbox.store.put(e); // stored before we say thank you
    form.reset();
    go('stored', SAY.queued);
    // After the thank-you: the first attempt stamps the entry, then sends it.
    outbox.flush();
    sync();
  });

  // A 4xx: the visitor's data back in the fields, with the proxy's reasons.
  const reclaim = async () => {
    const e = await outbox.take(name);
    if (!e) return;
    mine.delete(e.id);
    for (const [k, v] of Object.entries(e.data)) {
      const el = form.elements[k];
      if (el?.type === 'checkbox') el.checked = v === true;
      else if (el) el.value = v;
    }
    const { status: code, errors } = e.rejected, rest = show(form, errors);
    go('rejected', code === 422 && !rest ? SAY.rejected : fill(SAY.refused, { reason: rest || fill(SAY.status, { status: code }) }));
  };
  outbox.addEventListener('reject', (ev) => ev.detail.form === name && reclaim());
  outbox.addEventListener('done', (ev) => mine.delete(ev.detail.id) && !mine.size && go('delivered', SAY.sent));
  outbox.addEventListener('retry', (ev) => mine.has(ev.detail.id) && form.dataset.state === 'queued' && (status.textContent = SAY.offline));

  // What an earlier visit left behind.
  return outbox.list(name).then((found) => {
    for (const e of found) if (!e.rejected) mine.add(e.id);
    if (mine.size) go('pending', SAY.earlier);
    return reclaim();
  });
}

// Background Sync (Chromium): the service worker at the site's root delivers
// what is left once the tab is gone. Elsewhere nothing changes.
function backgroundSync(url) {
  if (!url || !self.ServiceWorkerRegistration || !('sync' in ServiceWorkerRegistration.prototype)) return () => {};
  // updateViaCache none: a new deploy's worker and its modules, never a cached mix.
  const ready = navigator.serviceWorker.register(url, { type: 'module', updateViaCache: 'none' })
    .then(() => navigator.serviceWorker.ready);
  ready.catch(() => {});
  return () => ready.then((r) => r.sync.register('leadline-outbox')).catch(() => {});
}

const forms = document.querySelectorAll('form[data-leadform]');
if (forms.length) {
  // bits: for entries an older script queued without their own.
  const outbox = new Outbox(await openStore(), { bits: Number(forms[0].dataset.stampBits ?? STAMP_BITS) });
  const sync = backgroundSync(forms[0].dataset.sw);
  // Only our own failures: the worker's are retried by the browser itself.
  outbox.addEventListener('retry', (ev) => ev.detail.by === outbox.tab && sync());
  await Promise.all([...forms].map((f) => setup(f, outbox, sync)));
  outbox.flush();
  addEventListener('online', () => outbox.flush(true));
  // Hidden may be the last moment a page gets (app switch, tab close);
  // pagehide covers the rest, and every send is a keepalive fetch.
  document.addEventListener('visibilitychange', () => outbox.flush(document.hidden));
  addEventListener('pagehide', () => outbox.flush(true));
}
