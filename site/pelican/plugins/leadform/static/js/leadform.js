// Wires each <form data-leadform> to the outbox: check, store, thank, send.
// Without this script the same form still works as a plain POST.
import { can, next } from './machine.js';
import { check } from './rules.js';
import { Outbox, STAMP_BITS, entry } from './outbox.js';
import { openStore } from './store.js';

const SAY = {
  saving: 'Saving…',
  queued: 'Thank you! We have your request and are sending it to our team.',
  earlier: 'Thank you! Your earlier request is saved on this device and on its way.',
  offline: 'Thank you! Your request is saved on this device and will be sent once our server is reachable.',
  sent: 'Thank you! Your request has reached our team. We will get back to you within one business day.',
  invalid: 'Please correct the fields marked above.',
  rejected: 'We could not accept your request: please correct the fields marked above and send it again.',
};

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

// Each message next to its field (aria-describedby comes from the plugin);
// returns the words for errors no field owns.
function show(form, errors) {
  const left = new Map(errors.map((e) => [e.field, e.message]));
  for (const box of form.querySelectorAll('[data-field]')) {
    const name = box.dataset.field, el = form.elements[name], msg = left.get(name);
    left.delete(name);
    box.querySelector('.error').textContent = msg ? `${el.type === 'checkbox' ? 'This box' : 'This field'} ${msg}.` : '';
    if (msg) el.setAttribute('aria-invalid', 'true');
    else el.removeAttribute('aria-invalid');
  }
  form.querySelector('[aria-invalid]')?.focus();
  return [...left].map((e) => e.join(' ').trim()).join('; ');
}

function setup(form, outbox, sync) {
  const name = form.dataset.leadform, status = form.querySelector('[role=status]');
  const rules = JSON.parse(form.querySelector('.leadform-rules').textContent);
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
    go('rejected', code === 422 && !rest ? SAY.rejected : `We could not accept your request (${rest || `error ${code}`}). Please check it and send it again.`);
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
