"""The stamp verifier (proxy.stamp), pure: examples and properties."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy import stamp
from proxy.stamp import FUTURE, INVALID, MALFORMED, MISSING, TOO_FEW_BITS, TOO_OLD, VALID, WRONG_HASH, Check

NOW = 1_790_000_000
DAY = 86_400
MAX_AGE = 30 * DAY
BITS = 8
SID = "0b9e5f0e-2f0c-4a57-9d0e-5d1c8a3e2b11"


def check(header: str | None, *, form: str = "lead", sid: str = SID, bits: int = BITS,
          now: float = NOW) -> Check:
    return stamp.verify(header, form, sid, bits=bits, max_age=MAX_AGE, now=now)


def test_a_minted_stamp_is_valid_and_costs_the_hash_the_contract_names() -> None:
    header = stamp.mint("lead", SID, BITS, ts=NOW)
    assert check(header) == Check(VALID)
    _, bits, ts, nonce = header.split(":")
    digest = hashlib.sha256(f"1:{bits}:{ts}:lead:{SID}:{nonce}".encode()).digest()
    assert digest[0] == 0  # eight leading zero bits


def test_missing_and_blank_are_missing() -> None:
    assert check(None) == Check(MISSING)
    assert check("") == Check(MISSING)
    assert check("  ") == Check(MISSING)


def test_each_way_of_being_invalid_is_named() -> None:
    good = stamp.mint("lead", SID, BITS, ts=NOW)
    assert check(good, sid=SID + "x") == Check(INVALID, WRONG_HASH)
    assert check(stamp.mint("lead", SID, 4, ts=NOW)) == Check(INVALID, TOO_FEW_BITS)
    assert check(stamp.mint("lead", SID, BITS, ts=NOW - MAX_AGE - 1)) == Check(INVALID, TOO_OLD)
    assert check(stamp.mint("lead", SID, BITS, ts=NOW + 601)) == Check(INVALID, FUTURE)
    for malformed in ("2:8:1:0", "1:8:1", "1:8:1:", "1:8:x:0", "1:65:1:0", "1:08:1:0", "1:8:01:0",
                      "1:8:1:ABC", "1:8:1:00000000000000000", "1:-8:1:0", "1:8:1:0:0", "garbage"):
        assert check(malformed) == Check(INVALID, MALFORMED), malformed


def test_zero_bits_wanted_still_needs_a_well_formed_fresh_stamp() -> None:
    assert check(f"1:0:{NOW}:0", bits=0) == Check(VALID)
    assert check("1:0:0:0", bits=0) == Check(INVALID, TOO_OLD)


def test_the_leading_zero_test_at_each_bit_count() -> None:
    assert stamp.leading_zero_bits_at_least(b"\xff" * 32, 0)
    assert stamp.leading_zero_bits_at_least(b"\x00" * 32, 64)
    assert stamp.leading_zero_bits_at_least(b"\x00\x7f" + b"\xff" * 30, 9)
    assert not stamp.leading_zero_bits_at_least(b"\x00\x7f" + b"\xff" * 30, 10)


forms = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
sids = st.one_of(st.uuids().map(str), st.from_regex(r"[A-Za-z0-9_.:-]{8,40}", fullmatch=True))
low_bits = st.integers(min_value=0, max_value=10)


@settings(max_examples=200, deadline=None)
@given(form=forms, sid=sids, bits=low_bits, age=st.integers(min_value=-600, max_value=MAX_AGE))
def test_a_minted_stamp_verifies_anywhere_inside_the_age_window(form: str, sid: str, bits: int,
                                                                 age: int) -> None:
    header = stamp.mint(form, sid, bits, ts=NOW - age)
    assert check(header, form=form, sid=sid, bits=bits) == Check(VALID)


@settings(max_examples=200, deadline=None)
@given(form=forms, sid=sids, bits=low_bits, outside=st.integers(min_value=1, max_value=10 * DAY))
def test_just_outside_the_window_is_too_old_or_from_the_future(form: str, sid: str, bits: int,
                                                                outside: int) -> None:
    old = stamp.mint(form, sid, bits, ts=NOW - MAX_AGE - outside)
    assert check(old, form=form, sid=sid, bits=bits) == Check(INVALID, TOO_OLD)
    ahead = stamp.mint(form, sid, bits, ts=NOW + 600 + outside)
    assert check(ahead, form=form, sid=sid, bits=bits) == Check(INVALID, FUTURE)


def test_the_age_edges_exactly() -> None:
    assert check(stamp.mint("lead", SID, BITS, ts=NOW - MAX_AGE)).verdict == VALID
    assert check(stamp.mint("lead", SID, BITS, ts=NOW + 600)).verdict == VALID
    assert check(stamp.mint("lead", SID, BITS, ts=NOW - MAX_AGE - 1)).reason == TOO_OLD
    assert check(stamp.mint("lead", SID, BITS, ts=NOW + 601)).reason == FUTURE


# Made once with stamp.mint(form, sid, 22, ts=NOW) (seconds of hashing): a changed
# part makes a fresh hash, which has 22 zero bits by chance once in four million.
STRONG = 22
MINTED = [("lead", SID, "1:22:1790000000:3fdadf"), ("contact", "sub_12345678", "1:22:1790000000:1cd702"),
          ("x", "k:1.2-3_4", "1:22:1790000000:5d88e2")]


def test_the_pre_minted_stamps_are_valid() -> None:
    for form, sid, header in MINTED:
        assert check(header, form=form, sid=sid, bits=STRONG) == Check(VALID)


@settings(max_examples=300, deadline=None)
@given(minted=st.sampled_from(MINTED), data=st.data())
def test_changing_any_part_breaks_a_stamp(minted: tuple[str, str, str], data: st.DataObject) -> None:
    form, sid, header = minted
    _, bits, ts, nonce = header.split(":")
    part = data.draw(st.sampled_from(["bits", "ts", "nonce", "form", "sid"]))
    changed_form, changed_sid = form, sid
    if part == "bits":  # claiming more (less is refused before any hash)
        header = f"1:{int(bits) + data.draw(st.integers(1, 8))}:{ts}:{nonce}"
    elif part == "ts":
        header = f"1:{bits}:{int(ts) + data.draw(st.integers(-1000, 600).filter(bool))}:{nonce}"
    elif part == "nonce":
        other = data.draw(st.from_regex(r"[0-9a-f]{1,16}", fullmatch=True).filter(lambda n: n != nonce))
        header = f"1:{bits}:{ts}:{other}"
    elif part == "form":
        changed_form = data.draw(forms.filter(lambda f: f != form))
    else:
        changed_sid = data.draw(sids.filter(lambda s: s != sid))
    result = check(header, form=changed_form, sid=changed_sid, bits=STRONG)
    assert result == Check(INVALID, WRONG_HASH), (part, header)


@settings(max_examples=300, deadline=None)
@given(header=st.text(max_size=60))
def test_any_header_gets_a_verdict_never_an_exception(header: str) -> None:
    assert check(header).verdict in stamp.VERDICTS
