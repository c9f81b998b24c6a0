// The form's states (docs/architecture.md, "The page") and the only moves between them.
// Pure: no DOM, no storage, so it can be tested on its own.
//   idle ──submit──> saving ──stored──> queued ──delivered──> sent
//                       └──invalid──> error <──rejected── queued
export const STATES = ['idle', 'saving', 'queued', 'sent', 'error'];

export const MOVES = {
  idle: { submit: 'saving', pending: 'queued', rejected: 'error' },
  saving: { invalid: 'error', stored: 'queued' },
  queued: { submit: 'saving', delivered: 'sent', rejected: 'error' },
  sent: { submit: 'saving', pending: 'queued', rejected: 'error' },
  error: { submit: 'saving' },
};

export const can = (state, event) => Boolean(MOVES[state]?.[event]);

// An event that does not apply leaves the state as it is: a delivery report
// from another tab must not wipe the errors a visitor is fixing.
export const next = (state, event) => MOVES[state]?.[event] ?? state;
