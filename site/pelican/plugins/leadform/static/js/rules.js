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

function problem(p, v) {
  if (p.type && !TYPES[p.type]?.(v)) return `must be ${NAMES[p.type] ?? p.type}`;
  if ('const' in p && v !== p.const) return p['x-const-message'] ?? `must be ${JSON.stringify(p.const)}`;
  if (p.enum && !p.enum.includes(v)) return `must be one of ${p.enum.join(', ')}`;
  if (typeof v === 'number') {
    if (v < p.minimum) return `must be at least ${p.minimum}`;
    if (v > p.maximum) return `must be at most ${p.maximum}`;
  }
  if (typeof v !== 'string') return null;
  const n = [...v].length; // code points, as Python's len() counts them
  if (n < p.minLength) return p.minLength === 1 ? 'must not be empty' : `must be at least ${p.minLength} characters`;
  if (n > p.maxLength) return `must be at most ${p.maxLength} characters (it has ${n})`;
  // JSON Schema patterns match anywhere in the value, like RegExp.test; the
  // proxy's e-mail format check only asks for an "@".
  const bad = (p.pattern && !new RegExp(p.pattern, 'u').test(v)) || (p.format === 'email' && !v.includes('@'));
  return bad ? p['x-pattern-message'] ?? 'is not in the expected format' : null;
}

// [{field, message}], one per field, in the schema's order.
export function check(rules, data) {
  const errors = [];
  for (const [field, p] of Object.entries(rules.properties)) {
    const message = field in data ? problem(p, data[field]) : rules.required.includes(field) ? 'is required' : null;
    if (message) errors.push({ field, message });
  }
  return errors;
}
