"""`semdns encode TEXT`: print the semantic QNAME of a question (for hand-built dig commands).

Prints a name only for text that the SDK sends in the QNAME form (its `q` and `explain` names both
fit 255 octets), so `dig` and the SDK ask with the same name; other text exits 2.
"""
from __future__ import annotations

import argparse
import sys

from codec import CodecError, TextTooLong, text_qnames

EXIT_TOO_LONG = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("encode", help="print the QNAME that carries a question")
    parser.add_argument("text", nargs="+", help="the question (several arguments are joined by spaces)")
    parser.add_argument("--zone", default="semantic.root.", help="zone to ask (default: %(default)s)")
    parser.add_argument("--explain", action="store_true", help="the explain form (TXT: how it was routed)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    try:
        print(text_qnames(text, args.zone)["explain" if args.explain else "q"])
    except TextTooLong as exc:
        print(f"semdns encode: {exc}", file=sys.stderr)
        print("semdns encode: use the EDNS form: `semdns ask` or the SDK send it as an option", file=sys.stderr)
        return EXIT_TOO_LONG
    except CodecError as exc:
        print(f"semdns encode: {exc}", file=sys.stderr)
        return 1
    return 0
