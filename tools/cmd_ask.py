"""`semdns ask TEXT`: resolve a question's route through DNS, then ask its engine (the SDK's CLI face).

    semdns ask "is a verbal contract binding?" --server 127.0.0.10:5300
    semdns ask "..." --route-only          # print the route (path, stage, engines) and stop
    semdns ask "..." --context notes.txt   # send a context file with the question, compressed with
                                           # the domain's pattern library (--no-compress: plain text)
    semdns ask "..." --context notes.txt --verbose   # also print the dictionary id and the ratio
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from sdk import Client, SdkError
from sdk.library import ContextStats
from sdk.route import DEFAULT_ZONE, Route


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ask", help="route a question through DNS and ask the chosen engine")
    parser.add_argument("text", help="the question")
    parser.add_argument("--server", action="append", default=[], metavar="ADDR:PORT",
                        help="DNS server to ask (repeatable, tried in order; default: /etc/resolv.conf)")
    parser.add_argument("--zone", default=DEFAULT_ZONE, help=f"zone to ask under (default {DEFAULT_ZONE})")
    parser.add_argument("--context", type=Path, metavar="FILE",
                        help="send this file's text as context (zstd with the domain's pattern library)")
    parser.add_argument("--no-compress", action="store_true", help="send the context as plain text")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="print how the context travelled (dictionary id, ratio) and library warnings")
    parser.add_argument("--route-only", action="store_true", help="print the route, do not call an engine")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per DNS query (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--max-tokens", type=int, default=None, metavar="N",
                        help="longest answer to generate (default: the engine's)")
    parser.set_defaults(func=run)


def describe(route: Route) -> str:
    lines = [
        f"route:      {' -> '.join(route.path)}",
        f"domain:     {route.domain}",
        f"stage:      {route.stage or '-'}   confidence: "
        f"{'-' if route.confidence is None else f'{route.confidence:.2f}'}   ttl: {route.ttl}s",
    ]
    for engine in route.engines:
        attrs = " ".join(f"{k}={v}" for k, v in engine.attributes.items())
        lines.append(f"engine:     {engine.priority} {engine.weight} {engine.base_url}  {attrs}")
    return "\n".join(lines)


def describe_context(stats: ContextStats) -> str:
    how = {"zstd-dict": f"zstd with dictionary {stats.dict_id}", "zstd": "zstd without dictionary (dict_id 0)",
           "plain": "plain text"}[stats.mode]
    return f"{how}: {stats.original} -> {stats.sent} octets (ratio {stats.ratio:.2f})"


def run(args: argparse.Namespace) -> int:
    try:  # bytes, decoded as they are: no newline translation, the context travels exactly
        context = args.context.read_bytes().decode("utf-8") if args.context else None
    except OSError as exc:
        print(f"semdns ask: cannot read --context {args.context}: {exc.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"semdns ask: --context {args.context} is not UTF-8: {exc}", file=sys.stderr)
        return 2
    try:
        if args.verbose:
            logging.basicConfig(level=logging.WARNING, format="semdns ask: %(message)s")
        client = Client(args.server or None, zone=args.zone, timeout=args.timeout,
                        compress_context=not args.no_compress)
        if args.route_only:
            route = client.resolve(args.text)
            print(json.dumps(asdict(route), indent=2, default=str) if args.json else describe(route))
            return 0
        answer = client.ask(args.text, context=context, max_tokens=getattr(args, "max_tokens", None))
    except SdkError as exc:
        print(f"semdns ask: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"route": asdict(answer.route), "engine": answer.engine.base_url,
                          "failures": answer.failures, "answer": answer.text,
                          "context": answer.context.to_json() if answer.context else None},
                         indent=2, default=str))
    else:
        print(describe(answer.route))
        for failure in answer.failures:
            print(f"failover:   {failure}")
        if args.verbose and answer.context is not None:
            print(f"context:    {describe_context(answer.context)}")
        print(f"answered by {answer.engine.base_url}:\n\n{answer.text}")
    return 0
