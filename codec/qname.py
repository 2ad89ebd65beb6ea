"""Query text <-> DNS names: the QNAME form of a semantic query (ARCHITECTURE §2).

A question travels as labels left of a `q` (ask) or `explain` label under the zone asked:
``is-a-verbal-agreement-legally-binding.q.semantic.root.``

Normalisation
    ``normalize(t)`` (`codec.text`): Unicode NFKC, case folding, NFKC again (repeated until
    stable), then every run of whitespace becomes one space and the ends are stripped. The decoder returns exactly
    ``normalize(t)``; names are case-insensitive (resolvers randomise case, "0x20"), so the
    decoder lowercases every label first.

Words and labels
    Words (the normalised text split at spaces) are encoded one by one into ``[a-z0-9]`` and joined
    by ``-``. The result is cut into labels of at most 63 octets at word boundaries: the ``-`` at a
    cut becomes the label break, so a label break means "one space" too. A name never exceeds
    255 octets (wire form, including ``q``/``explain`` and the zone); longer text raises
    `TextTooLong` (use the EDNS form). A question travels as a QNAME only when its names in both
    forms fit (`text_qnames`): one question, one form under a zone, whichever query is sent.
    Produced labels are valid LDH host labels: no leading or trailing ``-``, never ``--`` (so
    never an IDNA ``xn--`` look-alike; dig's IDN check accepts them, and no label starts with
    ``-``, which dig would read as an option).

Escapes (``q`` is the escape letter)
    ``q`` followed by:

    ======  ==============================  ======  ==============================
    ``u``   the literal text ``qu``         ``q``   a literal ``q`` (not before u)
    ``a``   ``'`` apostrophe                ``b``   ``\u2019`` right single quote
    ``c``   ``,``                           ``d``   ``.``
    ``e``   ``!``                           ``f``   ``/``
    ``g``   ``"``                           ``h``   ``-`` (a hyphen inside a word)
    ``i``   ``(``                           ``k``   ``)``
    ``l``   ``:``                           ``m``   ``?``
    ``n``   ``&``                           ``o``   ``;``
    ``p``   ``%``                           ``r``   ``#``
    ``s``   ``$``                           ``t``   ``~``
    ``v``   ``+``                           ``w``   ``*``
    ``x``   ``@``                           ``y``   ``=``
    ``z``   ``_``                           ``j``   join (see below)
    ``1``..``6``  then that many lowercase hex digits: any other code point, shortest form
    ======  ==============================  ======  ==============================

    So English costs nothing extra (``qu`` is literal), common punctuation two octets
    (``what-is-a-tortqm`` = "what is a tort?", ``tenantqas`` = "tenant's"), ``é`` four
    (``q2e9``), other scripts five or six per character (``q44e1``) -- long non-Latin text
    uses the EDNS form.

Words longer than a label
    A word whose encoding exceeds 63 octets starts a new label and is cut at escape boundaries
    into pieces of at most 61 octets, each followed by the join escape ``qj``: a label that ends
    in ``qj`` continues the same word in the next label, without a space. ``qj`` anywhere else
    is an error.

Reserved shapes (the encoder avoids them so that parsing is unambiguous)
    * a text label is never ``q`` (a literal ``q`` is ``qq``) nor ``explain`` (a label that
      would be exactly ``explain`` is written ``explqj.ain``), so the leftmost ``q`` or
      ``explain`` label marks the form, whatever labels the zone has;
    * a single text label of the shape ``h-<32 base32 letters>`` is the hashed form of the
      EDNS text option; the one text that would encode to that shape ("h" plus one such word)
      writes its ``h`` as ``q268``.

Canonical form
    The decoder accepts labels cut at any word boundary or (with ``qj``) at any escape boundary,
    in any letter case, but every escape must be the encoder's own: hex only where no short code
    exists, shortest hex, no escaped characters that normalisation would change. One text, one
    spelling of its words: caches keyed on names see one entry per question.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import dns.exception
import dns.name

from codec.errors import BadEncoding, EmptyText, HashedName, NotSemantic, TextTooLong
from codec.text import normalize

Form = Literal["q", "explain"]
FORMS: tuple[Form, ...] = ("q", "explain")
MAX_LABEL = 63
MAX_NAME = 255  # octets of a name in wire form (RFC 1035)
_ESC = "q"
_JOIN = "qj"
_PIECE = MAX_LABEL - len(_JOIN)
_LITERAL = frozenset("abcdefghijklmnoprstuvwxyz0123456789")  # every [a-z0-9] but the escape
_LDH_LABEL = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_HEX = frozenset("0123456789abcdef")
_PLAIN_WORD = re.compile(r"[a-prstuvwxyz0-9]*")  # no escape letter: such a word is its own encoding
_PLAIN_LABELS = re.compile(r"[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})*")  # labels whose text dnspython writes as is
_HASHED_LABEL = re.compile(r"h-[a-z2-7]{32}")

_CODES: dict[str, str] = {
    "q": "q", "'": "a", "\u2019": "b", ",": "c", ".": "d", "!": "e", "/": "f", '"': "g",
    "-": "h", "(": "i", ")": "k", ":": "l", "?": "m", "&": "n", ";": "o", "%": "p", "#": "r",
    "$": "s", "~": "t", "+": "v", "*": "w", "@": "x", "=": "y", "_": "z",
}
_DECODES: dict[str, str] = {code: char for char, code in _CODES.items()}


@dataclass(frozen=True)
class SemanticName:
    """A parsed semantic name: the text (or its hash), the form and the zone asked.

    `labels` are the text labels as received (lowercased), ready to be re-rooted under another
    zone with `rebase`. Exactly one of `text` and `text_hash` is set.
    """

    form: Form
    zone: str
    labels: tuple[str, ...]
    text: str | None = None
    text_hash: str | None = None

    @property
    def hashed(self) -> bool:
        return self.text_hash is not None

    def rebase(self, zone: str, form: Form | None = None) -> str:
        """The same text labels under another zone (and form): the target of a semantic CNAME."""
        return _build(list(self.labels), form or self.form, zone)


def is_hashed_label(label: str | bytes) -> bool:
    """True for the text-hash label `h-<32 base32 letters>` of the EDNS form (any case)."""
    if isinstance(label, bytes):
        label = label.decode("ascii", "replace")
    return _HASHED_LABEL.fullmatch(label.lower()) is not None


def text_to_qname(text: str, zone: str, form: Form = "q") -> str:
    """Encode a question as `<labels>.<form>.<zone>.` (absolute, lowercase).

    Raises `EmptyText` when nothing is left after normalisation, `TextTooLong` when the name
    would exceed 255 octets (send the EDNS text option with `edns_text.hashed_qname` instead),
    `BadEncoding` for text that is not valid Unicode (lone surrogates).
    """
    return _build(_text_labels(text), form, zone)


def text_qnames(text: str, zone: str) -> dict[str, str]:
    """The question's names in every form, `{"q": ..., "explain": ...}`: the QNAME form of a query.

    Raises `TextTooLong` when any of them exceeds 255 octets (the `explain` name is 6 octets
    longer than the `q` one), so a text travels as a QNAME only when both its queries can; plus
    the other errors of `text_to_qname`.
    """
    norm = _normal_text(text)
    # each character takes at least an octet of the labels: a text longer than the room the longest
    # form leaves is refused before it is encoded (the EDNS form's texts: the SDK tries this first)
    if len(norm) > MAX_NAME - canonical_zone(zone)[1] - len("explain") - 2:
        raise _too_long(zone)
    labels = _pack(_encode_words(norm.split(" ")))
    return {form: _build(labels, form, zone) for form in FORMS}


def qname_to_text(name: str | dns.name.Name) -> tuple[str, str]:
    """Decode `<labels>.q.<zone>.` (or `.explain.`) to `(normalised text, zone)`.

    Raises `HashedName` for the `h-<hash>` form (its text is in the EDNS option), plus the
    errors of `parse_semantic_name`.
    """
    parsed = parse_semantic_name(name)
    if parsed.text is None:
        raise HashedName(f"{parsed.text_hash}: the text travels in the EDNS text option")
    return parsed.text, parsed.zone


def parse_semantic_name(name: str | dns.name.Name) -> SemanticName:
    """Parse any semantic name: text or hashed, `q` or `explain` form.

    The form is the leftmost `q` or `explain` label; the labels left of it carry the text and
    the labels right of it name the zone. Raises `NotSemantic` (no form label), `EmptyText` (no
    text labels), `BadEncoding` (a label or escape the encoder cannot produce).
    """
    if isinstance(name, str):
        try:
            name = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            raise BadEncoding(f"{name!r} is not a domain name: {exc}") from None
    labels = [_label_text(raw) for raw in name.labels]
    form_index = next((i for i, label in enumerate(labels) if label in FORMS), None)
    if form_index is None:
        raise NotSemantic(f"{name}: no 'q' or 'explain' label")
    form: Form = "q" if labels[form_index] == "q" else "explain"
    zone = _zone_text(name.labels[form_index + 1 :])
    text_labels = tuple(labels[:form_index])
    if not text_labels:
        raise EmptyText(f"{name}: no text labels left of '{form}'")
    if len(text_labels) == 1 and is_hashed_label(text_labels[0]):
        return SemanticName(form, zone, text_labels, text_hash=text_labels[0])
    return SemanticName(form, zone, text_labels, text=_decode_labels(text_labels))


# --- encoding -----------------------------------------------------------------------------------
def _text_labels(text: str) -> list[str]:
    """The text labels of a question (see `text_to_qname` for the errors)."""
    return _pack(_encode_words(_normal_text(text).split(" ")))


def _normal_text(text: str) -> str:
    """`normalize(text)`; `EmptyText` when nothing is left, `BadEncoding` for lone surrogates."""
    norm = normalize(text)
    if not norm:
        raise EmptyText("the question is empty after normalisation")
    try:
        norm.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadEncoding(f"the question is not valid Unicode: {exc.reason} at {exc.start}") from None
    return norm


def _encode_char(char: str) -> str:
    if char in _LITERAL:
        return char
    code = _CODES.get(char)
    if code is not None:
        return _ESC + code
    return _encode_char_hex(char)


def _encode_word(word: str) -> str:
    if _PLAIN_WORD.fullmatch(word):
        return word
    out: list[str] = []
    i = 0
    while i < len(word):
        if word.startswith("qu", i):
            out.append("qu")
            i += 2
        else:
            out.append(_encode_char(word[i]))
            i += 1
    return "".join(out)


def _encode_words(words: list[str]) -> list[str]:
    encoded = [_encode_word(word) for word in words]
    if len(encoded) == 2 and is_hashed_label(f"{encoded[0]}-{encoded[1]}"):
        encoded[0] = _encode_char_hex("h")
    return encoded


def _encode_char_hex(char: str) -> str:
    digits = f"{ord(char):x}"
    return f"{_ESC}{len(digits)}{digits}"


def _pack(words: list[str]) -> list[str]:
    """Greedy packing of encoded words into labels of <= 63 octets (over-long words joined)."""
    labels: list[str] = []
    current = ""
    for word in words:
        if len(word) <= MAX_LABEL:
            if current and len(current) + 1 + len(word) <= MAX_LABEL:
                current = f"{current}-{word}"
                continue
            if current:
                labels.append(current)
            current = word
            continue
        if current:
            labels.append(current)
        current = ""
        for unit in _units(word):
            if len(current) + len(unit) > _PIECE:
                labels.append(current + _JOIN)
                current = ""
            current += unit
    labels.append(current)
    out: list[str] = []
    for label in labels:
        out.extend(("explqj", "ain") if label == "explain" else (label,))
    return out


def _build(labels: list[str], form: str, zone: str) -> str:
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, not {form!r}")
    origin, octets = canonical_zone(zone)
    relative = ".".join((*labels, form))
    if sum(len(label) + 1 for label in labels) + len(form) + 1 + octets > MAX_NAME:
        raise _too_long(zone)
    if not _PLAIN_LABELS.fullmatch(relative):
        raise BadEncoding(f"labels {labels!r}: not the codec's [a-z0-9-] labels")
    return f"{relative}.{origin}" if origin != "." else f"{relative}."  # such labels are their own text


def _too_long(zone: str) -> TextTooLong:
    return TextTooLong(f"the question needs more than 255 octets under {zone!r}: "
                       "send it in the EDNS text option (hashed name), e.g. with the SDK")


@lru_cache(maxsize=64)
def canonical_zone(zone: str) -> tuple[str, int]:
    """`zone` as lowercase absolute text and its length in wire octets (the few zones a client or
    server names, remembered); `BadEncoding` when it is not a domain name."""
    try:
        origin = dns.name.from_text(zone)
    except dns.exception.DNSException as exc:
        raise BadEncoding(f"zone {zone!r} is not a domain name: {exc}") from None
    return origin.to_text().lower(), sum(len(label) + 1 for label in origin.labels)


# --- decoding -----------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _zone_text(labels: tuple[bytes, ...]) -> str:
    """The zone of a semantic name as lowercase text (the few zones a server hosts, remembered)."""
    return dns.name.Name(labels).to_text().lower()


def _label_text(raw: bytes) -> str:
    try:
        return raw.decode("ascii").lower()
    except UnicodeDecodeError:
        raise BadEncoding(f"label {raw!r} is not ASCII") from None


def _units(encoded: str) -> list[str]:
    """Split an encoded word into its units (literals and whole escapes); BadEncoding if invalid."""
    units: list[str] = []
    i = 0
    while i < len(encoded):
        char = encoded[i]
        if char != _ESC:
            if char not in _LITERAL:
                raise BadEncoding(f"{encoded!r}: character {char!r} at {i} outside [a-z0-9]")
            units.append(char)
            i += 1
            continue
        code = encoded[i + 1 : i + 2]
        if not code:
            raise BadEncoding(f"{encoded!r}: escape 'q' at the end of a word")
        if code in "123456":
            end = i + 2 + int(code)
            digits = encoded[i + 2 : end]
            if len(digits) != int(code) or not set(digits) <= _HEX:
                raise BadEncoding(f"{encoded!r}: 'q{code}' at {i} needs {code} hex digits")
            units.append(encoded[i:end])
            i = end
            continue
        if code not in _DECODES and code not in ("u", "j"):
            raise BadEncoding(f"{encoded!r}: unknown escape 'q{code}' at {i}")
        units.append(encoded[i : i + 2])
        i += 2
    return units


def _decode_unit(unit: str, where: str) -> str:
    if len(unit) == 1:
        return unit
    code = unit[1]
    if code == "u":
        return "qu"
    if code in _DECODES:
        return _DECODES[code]
    if code == "j":
        raise BadEncoding(f"{where!r}: join escape 'qj' must end a label")
    point = int(unit[2:], 16)
    if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
        raise BadEncoding(f"{where!r}: {unit!r} is not a Unicode scalar value")
    return chr(point)


def _split_words(labels: tuple[str, ...]) -> list[str]:
    """Encoded words: `-` and label breaks separate words, a trailing `qj` joins two labels."""
    words: list[str] = []
    pending: str | None = None
    for label in labels:
        if not _LDH_LABEL.fullmatch(label):
            raise BadEncoding(f"label {label!r}: only [a-z0-9] words joined by single '-'")
        parts = label.split("-")
        for index, part in enumerate(parts):
            if index == 0 and pending is not None:
                part, pending = pending + part, None
            if index == len(parts) - 1 and _ESC in part and _units(part)[-1] == _JOIN:
                pending = part[: -len(_JOIN)]
                continue
            words.append(part)
    if pending is not None:
        raise BadEncoding(f"label {labels[-1]!r}: join escape 'qj' on the last text label")
    return words


@lru_cache(maxsize=256)  # a question's `q` and `explain` queries carry the same text labels
def _decode_labels(labels: tuple[str, ...]) -> str:
    encoded = _split_words(labels)
    words = [_decode_word(word) if _ESC in word else word for word in encoded]  # no escape: literal
    if len(words) == 2:
        if _encode_words(words) != encoded:  # the two words may spell a hashed label
            raise BadEncoding(f"{'.'.join(labels)!r}: not the canonical escape spelling")
    elif any(_ESC in word and _encode_word(decoded) != word for word, decoded in zip(encoded, words)):
        raise BadEncoding(f"{'.'.join(labels)!r}: not the canonical escape spelling")
    text = " ".join(words)
    if any(_ESC in word for word in encoded) and normalize(text) != text:  # literal words are normal
        raise BadEncoding(f"{'.'.join(labels)!r}: decodes to text that is not normalised")
    return text


def _decode_word(word: str) -> str:
    return "".join(_decode_unit(unit, word) for unit in _units(word))
