"""Question size bounds (`codec.text`): checked before normalising, and the normaliser stops at them."""
from __future__ import annotations

import sys
import unicodedata

import pytest
import zstandard

from codec.edns_text import FLAG_ZSTD, decode_text_option, query_form
from codec.errors import TextTooLarge
from codec.text import MAX_DECOMPOSED, MAX_EXPANSION, MAX_TEXT_OCTETS, check_size, normalize

EXPANDING = "\ufdfa" * 21000  # 63,000 octets of UTF-8; NFKC makes it 378,000 characters


def test_max_expansion_is_the_longest_decomposition_of_this_unicode_version() -> None:
    longest = max(len(unicodedata.normalize("NFKD", chr(cp))) for cp in range(sys.maxunicode + 1)
                  if not 0xD800 <= cp <= 0xDFFF)
    assert longest == MAX_EXPANSION


def test_normalising_an_expanding_text_stops_at_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """21,000 x U+FDFA: refused after decomposing little more than the bound, never 378,000 characters."""
    produced: list[int] = []
    real = unicodedata.normalize

    def counting(form: str, text: str) -> str:
        out = real(form, text)
        produced.append(len(out))
        return out

    monkeypatch.setattr(unicodedata, "normalize", counting)
    with pytest.raises(TextTooLarge, match="NFKD"):
        normalize(EXPANDING)
    assert sum(produced) <= MAX_DECOMPOSED + 1024 * MAX_EXPANSION
    assert len(EXPANDING.encode()) <= MAX_TEXT_OCTETS  # the octet bound alone would have let it through


@pytest.mark.parametrize("text", [
    "a" * MAX_TEXT_OCTETS,  # plain text up to the octet bound
    "\u01d5" * (MAX_DECOMPOSED // 3),  # 3 code points each once decomposed
    "\ufdfa" * (MAX_DECOMPOSED // MAX_EXPANSION),
    "\U0001f600" * (MAX_TEXT_OCTETS // 4),
])
def test_text_within_both_bounds_passes(text: str) -> None:
    check_size(text)
    assert normalize(text)


@pytest.mark.parametrize("text", [
    "a" * (MAX_TEXT_OCTETS + 1),
    "\u00e9" * (MAX_TEXT_OCTETS // 2 + 1),  # fewer characters than the bound, more octets
    "\ufdfa" * (MAX_DECOMPOSED // MAX_EXPANSION + 1),
    "\u00bd" * (MAX_DECOMPOSED // 3 + 1),  # vulgar fraction: 3 code points from 2 octets
])
def test_text_over_a_bound_is_too_large(text: str) -> None:
    with pytest.raises(TextTooLarge):
        check_size(text)
    with pytest.raises(TextTooLarge):
        query_form(text, "semantic.root.")  # the SDK's check: it never sends what a server refuses


@pytest.mark.parametrize("payload", [
    b"\x00" + EXPANDING.encode(),
    bytes([FLAG_ZSTD]) + zstandard.ZstdCompressor(write_content_size=True).compress(EXPANDING.encode()),
    b"\x00" + b"a" * (MAX_TEXT_OCTETS + 1),
])
def test_text_option_over_a_bound_is_refused(payload: bytes) -> None:
    with pytest.raises(TextTooLarge, match="^text option: "):
        decode_text_option(payload)
