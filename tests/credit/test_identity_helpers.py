"""Identity validation, masking and field encryption."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit.identity import (
    FieldCipher,
    InvalidIdentifier,
    mask_id_number,
    mask_name,
    mask_phone,
    normalize_id_number,
    normalize_phone,
    normalize_uscc,
)
from tests.factories import id_number, uscc_number


def test_valid_identifiers_normalise() -> None:
    number = id_number()
    assert normalize_id_number(f" {number.lower()} ") == number
    code = uscc_number()
    assert normalize_uscc(code.lower()) == code
    assert normalize_phone("+86 138-0013-8000") == "13800138000"


@pytest.mark.parametrize("bad", ["330402199001011234X", "33040219900101123", "330402199013011230", "abc"])
def test_invalid_id_numbers(bad: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalize_id_number(bad)


def test_checksum_is_enforced_for_id_numbers_and_usccs() -> None:
    number = id_number()
    with pytest.raises(InvalidIdentifier):
        normalize_id_number(number[:-1] + ("1" if number[-1] != "1" else "2"))
    code = uscc_number()
    with pytest.raises(InvalidIdentifier):
        normalize_uscc(code[:-1] + ("1" if code[-1] != "1" else "2"))


@pytest.mark.parametrize("bad", ["12345678901", "2380013800", "138001380001", "phone"])
def test_invalid_phones(bad: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalize_phone(bad)


def test_masks() -> None:
    assert mask_id_number("330402199001011234") == "3304**********1234"
    assert mask_phone("13800138000") == "138****8000"
    assert mask_name("张三") == "*三"
    assert mask_name("欧阳娜娜") == "**娜娜"


@settings(max_examples=50)
@given(st.text(min_size=0, max_size=64))
def test_cipher_round_trip_and_binding(value: str) -> None:
    cipher = FieldCipher(data_key=os.urandom(32), hash_key=os.urandom(32))
    token = cipher.encrypt("phone", value)
    assert cipher.decrypt("phone", token) == value
    with pytest.raises(ValueError):
        cipher.decrypt("id_number", token)  # a phone ciphertext cannot be passed off as an id number
    assert cipher.encrypt("phone", value) != token  # random nonce
    assert cipher.lookup_hash("phone", value) == cipher.lookup_hash("phone", value)
    assert cipher.lookup_hash("phone", value) != cipher.lookup_hash("id_number", value)
