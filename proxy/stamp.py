"""The spam stamp: a hashcash-style proof of work the page attaches to a lead.

    X-Leadline-Stamp: 1:<bits>:<ts>:<nonce>

is valid for form F and submission id S iff SHA-256 over the UTF-8 bytes of
`1:<bits>:<ts>:F:S:<nonce>` starts with at least <bits> zero bits, <bits> is
at least the required difficulty, and ts lies between now - max_age and
now + FUTURE_SLACK. Checking costs one hash, whatever the difficulty;
making one costs about 2**bits of them.

Why not a CAPTCHA: a token expires within minutes, while the page's outbox
may hold a lead for days; a stamp stays good for max_age. A replayed stamp
only repeats its own submission id, which the pipeline writes once.

`verify` is pure (the caller passes the clock); `mint` is the reference
maker the tests and the benchmark use (the browser has its own).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass

VERSION = "1"
HEADER = "X-Leadline-Stamp"
MAX_BITS = 64
# A phone's clock may run ahead of ours; ten minutes is plenty and still bounds
# how far ahead a stamp can be made.
FUTURE_SLACK = 600

VALID = "valid"
MISSING = "missing"
INVALID = "invalid"
VERDICTS = (VALID, MISSING, INVALID)

# Why a stamp is invalid: for logs and tests, never for the visitor.
MALFORMED = "malformed"
WRONG_HASH = "wrong_hash"
TOO_FEW_BITS = "too_few_bits"
TOO_OLD = "too_old"
FUTURE = "future"

# Canonical decimals (no leading zeros, no sign) so that one stamp has one
# spelling; ts bounded to 12 digits (year 33658) so int() never sees a long string.
_STAMP = re.compile(r"1:(0|[1-9][0-9]?):(0|[1-9][0-9]{0,11}):([0-9a-f]{1,16})")


@dataclass(frozen=True, slots=True)
class Check:
    verdict: str  # VALID, MISSING or INVALID
    reason: str = ""  # for INVALID: MALFORMED, WRONG_HASH, TOO_FEW_BITS, TOO_OLD, FUTURE


CHECK_VALID = Check(VALID)
CHECK_MISSING = Check(MISSING)


def leading_zero_bits_at_least(digest: bytes, bits: int) -> bool:
    """Do the first `bits` bits (0-64) of `digest` all read zero?"""
    return int.from_bytes(digest[:8], "big") >> (64 - bits) == 0 if bits else True


def preimage(bits: int, ts: int, form: str, submission_id: str, nonce: str) -> bytes:
    return f"{VERSION}:{bits}:{ts}:{form}:{submission_id}:{nonce}".encode()


def verify(header: str | None, form: str, submission_id: str, *, bits: int, max_age: float,
           now: float) -> Check:
    """The verdict on one request's stamp header (None: the request had none)."""
    if header is None or not header.strip():
        return CHECK_MISSING
    match = _STAMP.fullmatch(header.strip())
    if match is None:
        return Check(INVALID, MALFORMED)
    bits_text, ts_text, nonce = match.groups()
    claimed, ts = int(bits_text), int(ts_text)
    if claimed > MAX_BITS:
        return Check(INVALID, MALFORMED)
    if claimed < bits:
        return Check(INVALID, TOO_FEW_BITS)
    if ts < now - max_age:
        return Check(INVALID, TOO_OLD)
    if ts > now + FUTURE_SLACK:
        return Check(INVALID, FUTURE)
    # The header's own digits go into the hash: canonical, so the same as preimage() makes.
    digest = hashlib.sha256(f"1:{bits_text}:{ts_text}:{form}:{submission_id}:{nonce}".encode()).digest()
    if not leading_zero_bits_at_least(digest, claimed):
        return Check(INVALID, WRONG_HASH)
    return CHECK_VALID


def mint(form: str, submission_id: str, bits: int, ts: int | None = None) -> str:
    """A stamp for this form and submission: tries nonces 0, 1, 2, … (about 2**bits of them)."""
    when = int(time.time()) if ts is None else ts
    nonce = 0
    while True:
        text = f"{nonce:x}"
        digest = hashlib.sha256(preimage(bits, when, form, submission_id, text)).digest()
        if leading_zero_bits_at_least(digest, bits):
            return f"{VERSION}:{bits}:{when}:{text}"
        nonce += 1
