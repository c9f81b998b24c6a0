"""`python -m worker dlq serve`: the dead-letter console, server-rendered pages.

What an operator opens when the dead-letter alert fires: the accounting line
(accepted = synced + retrying + dead-lettered) on top, dead letters per hour,
the letters grouped by reason with counts, one letter's story and data (its
e-mail addresses masked until "reveal"), and replay or purge for one letter,
a selection or a whole group, on `worker.dlq`'s machinery (a confirmed copy
before the ack; browsing takes letters unacked and hands them back).

- `settings`: `DLQ_CONSOLE_TOKEN` (required) and the metrics URLs.
- `guard`: HTTP Basic auth, CSRF tokens, security headers (pure checks).
- `letters`: grouping, masking and the hourly chart (pure).
- `views`, `app`: the aiohttp side; `serve.run` is the command.
"""
