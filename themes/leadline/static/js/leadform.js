// Wires each generated <form data-leadform> to the outbox: check, store, thank,
// send. Without this script the same form still works as a plain POST.
import { can, next } from './machine.js';
import { check } from './rules.js';
import { Outbox, entry } from './outbox.js';
import { openStore } from './store.js';

const SAY = {
  saving: 'Saving your request…',
  queued: 'Thank you! We have your request and are sending it to our team.',
  earlier: 'Thank you! Your earlier request is saved on this device and on its way to our team.',
  offline: 'Thank you! Your request is saved on this device; it will be sent as soon as we can reach our server.',
  sent: 'Thank you! Your request has reached our team. We will get back to you within one business day.',
  invalid: (n) => `Please correct the ${n > 1 ? `${n} fields` : 'field'} marked below.`,
  rejected: 'We could not accept your request yet: please correct the fields marked below and send it again.',
  refused: (s) => `We could not accept your request (error ${s}). Please check it and send it again.`,
};

// Form values typed after the schema; an empty optional field is "not given",
// as on the proxy. Unknown names (the honeypot) go along only when filled.
function collect(form, rules) {
  const data = {};
  for (const el of form.elements) {
    const type = rules.properties[el.name]?.type;
    if (!el.name) continue;
    if (type === 'boolean') data[el.name] = el.checked;
    else if (el.value === '') continue;
    else data[el.name] = type === 'integer' || type === 'number' ? Number(el.value) : el.value;
  }
  return data;
}

function fill(form, data) {
  for (const [name, value] of Object.entries(data)) {
    const el = form.elements[name];
    if (el?.type === 'checkbox') el.checked = value === true;
    else if (el) el.value = value;
  }
}

// Messages next to their fields, tied to them with aria-describedby (set by
// the plugin) and aria-invalid; returns what fits no field.
function show(form, errors) {
  const left = [...errors];
  for (const box of form.querySelectorAll('[data-field]')) {
    const el = form.elements[box.dataset.field], i = left.findIndex((e) => e.field === box.dataset.field);
    const [err] = i < 0 ? [] : left.splice(i, 1);
    box.querySelector('.error').textContent = err ? `${el.type === 'checkbox' ? 'This box' : 'This field'} ${err.message}.` : '';
    if (err) el.setAttribute('aria-invalid', 'true');
    else el.removeAttribute('aria-invalid');
  }
  form.querySelector('[aria-invalid]')?.focus();
  return left.map((e) => `${e.field} ${e.message}`.trim()).join('; ');
}

function setup(form, outbox) {
  const name = form.dataset.leadform, status = form.querySelector('[role=status]');
  const rules = JSON.parse(form.querySelector('.leadform-rules').textContent);
  const watching = new Set(); // entries this form says "thank you" for
  const go = (event, words) => {
    if (!can(form.dataset.state, event)) return false;
    form.dataset.state = next(form.dataset.state, event);
    if (words) status.textContent = words;
    return true;
  };
  // Our checks speak the proxy's words; the browser's bubbles would not.
  form.noValidate = true;

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!go('submit', SAY.saving)) return;
    const data = collect(form, rules), errors = check(rules, data);
    show(form, errors);
    if (errors.length) return go('invalid', SAY.invalid(errors.length));
    const e = entry(name, form.action, data);
    watching.add(e.id);
    await outbox.add(e); // stored before we say thank you
    form.reset();
    go('stored', SAY.queued);
    outbox.flush();
  });

  // A 4xx for this form, shown with the visitor's data back in the fields.
  const reclaim = async () => {
    const e = await outbox.take(name);
    if (!e) return;
    watching.delete(e.id);
    fill(form, e.data);
    const { status: code, errors } = e.rejected, rest = show(form, errors);
    go('rejected', (code === 422 && errors.length ? SAY.rejected : SAY.refused(code)) + (rest ? ` (${rest})` : ''));
  };
  outbox.addEventListener('rejected', (ev) => ev.detail.form === name && reclaim());
  outbox.addEventListener('delivered', (ev) => {
    if (watching.delete(ev.detail.id) && !watching.size) go('delivered', SAY.sent);
  });
  outbox.addEventListener('retry', (ev) => {
    if (watching.has(ev.detail.id) && form.dataset.state === 'queued') status.textContent = SAY.offline;
  });

  // What an earlier visit left behind.
  return outbox.list(name).then((found) => {
    for (const e of found) if (!e.rejected) watching.add(e.id);
    if (watching.size) go('pending', SAY.earlier);
    return reclaim();
  });
}

const forms = document.querySelectorAll('form[data-leadform]');
if (forms.length) {
  const outbox = new Outbox(await openStore());
  await Promise.all([...forms].map((f) => setup(f, outbox)));
  outbox.flush();
  addEventListener('online', () => outbox.flush(true));
  // Hidden is often the last moment a page gets (mobile apps switch, tabs
  // close); pagehide covers the rest, and every send uses keepalive.
  document.addEventListener('visibilitychange', () => outbox.flush(document.hidden));
  addEventListener('pagehide', () => outbox.flush(true));
}
