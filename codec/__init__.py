"""semantic-dns codec: query text <-> DNS names and EDNS options, pattern libraries, compression.

Pure code over str/bytes: no I/O, no asyncio, no other project package.
"""
from codec.errors import BadEncoding, CodecError, EmptyText, HashedName, NotSemantic, TextTooLarge, TextTooLong
from codec.qname import SemanticName, normalize, parse_semantic_name, qname_to_text, text_qnames, text_to_qname

__all__ = [
    "BadEncoding",
    "CodecError",
    "EmptyText",
    "HashedName",
    "NotSemantic",
    "SemanticName",
    "TextTooLarge",
    "TextTooLong",
    "normalize",
    "parse_semantic_name",
    "qname_to_text",
    "text_qnames",
    "text_to_qname",
]
