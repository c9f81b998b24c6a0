// The browser's third of "one schema, three uses": the subset of JSON Schema
// the plugin embeds in the page, checked with the proxy's own words
// (leadline/schemas.py), so a visitor sees the 422 before any request.
const TYPES = {
  string: (v) => typeof v === 'string',
  boolean: (v) => typeof v === 'boolean',
  integer: Number.isInteger,
  number: Number.isFinite,
};
const NAMES = { string: 'text', boolean: 'true or false', integer: 'a whole number', number: 'a number' };

// [code, words] (the proxy's codes: leadline/schemas.py CODES), or null.
function problem(p, v) {
  if (p.type && !TYPES[p.type]?.(v)) return ['type', `must be ${NAMES[p.type] ?? p.type}`];
  if ('const' in p && v !== p.const) return ['const', p['x-const-message'] ?? `must be ${JSON.stringify(p.const)}`];
  if (p.enum && !p.enum.includes(v)) return ['enum', `must be one of ${p.enum.join(', ')}`];
  if (typeof v === 'number') {
    if (v < p.minimum) return ['minimum', `must be at least ${p.minimum}`];
    if (v > p.maximum) return ['maximum', `must be at most ${p.maximum}`];
  }
  if (typeof v !== 'string') return null;
  const n = [...v].length; // code points, as Python's len() counts them
  if (n < p.minLength) return ['minLength', p.minLength === 1 ? 'must not be empty' : `must be at least ${p.minLength} characters`];
  if (n > p.maxLength) return ['maxLength', `must be at most ${p.maxLength} characters (it has ${n})`];
  // JSON Schema patterns match anywhere in the value, like RegExp.test; the
  // proxy's e-mail format check only asks for an "@".
  const bad = p.format === 'email' && !v.includes('@') ? 'format' : p.pattern && !new RegExp(p.pattern, 'u').test(v) ? 'pattern' : null;
  return bad && [bad, p['x-pattern-message'] ?? 'is not in the expected format'];
}

// [{field, code, message}], one per field, in the schema's order.
export function check(rules, data) {
  const errors = [];
  for (const [field, p] of Object.entries(rules.properties)) {
    const found = field in data ? problem(p, data[field]) : rules.required.includes(field) ? ['required', 'is required'] : null;
    if (found) errors.push({ field, code: found[0], message: found[1] });
  }
  return errors;
}
