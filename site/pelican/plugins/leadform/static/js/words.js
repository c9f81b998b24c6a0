// What the page says about a problem, in the page's language. The words come
// from the plugin (texts.py), embedded in the form as JSON; problems come by
// code (the proxy's 422 and rules.js give the same codes), so a 422 worded in
// English by the proxy still reads in the page's language. Pure: no DOM.

// "{name}" placeholders filled from p; unknown ones are left as they are.
export const fill = (t, p) => t.replace(/\{(\w+)\}/g, (m, k) => (p[k] === undefined ? m : String(p[k])));

const LIMITS = { minimum: 'minimum', maximum: 'maximum', minLength: 'minLength', maxLength: 'maxLength' };

// One field's problem as a sentence. prop: the field's embedded rules (the
// schema's x-...-message already in the page's language); box: a checkbox;
// value: what the field holds now (for "it has N characters").
export function fieldError(T, error, prop = {}, box = false, value = '') {
  const code = error.code ?? 'invalid', E = T.errors;
  const custom = code === 'const' ? prop['x-const-message'] : code === 'pattern' || code === 'format' ? prop['x-pattern-message'] : undefined;
  const limit = prop[LIMITS[code]];
  const key = custom ? 'custom' : code === 'minLength' && limit === 1 ? 'empty' : code;
  return fill((box && E[`${key}:box`]) || E[key] || E.invalid, {
    this: box ? T.this.box : T.this.field, message: custom ?? error.message, limit,
    values: (prop.enum ?? []).join(', '), value: JSON.stringify(prop.const),
    type: T.types[prop.type] ?? prop.type, count: [...String(value ?? '')].length,
  });
}

// A problem no field on the page owns (a field the form lacks, the whole body).
export const otherError = (T, e) => fill(T.other[e.code] ?? T.other.invalid, { field: e.field, message: e.message }).trim();
