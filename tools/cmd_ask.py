"""`semdns ask TEXT`: resolve a question's route through DNS, then ask its engine (the SDK's CLI face).

    semdns ask "is a verbal contract binding?" --server 127.0.0.10:5300
    semdns ask "..." --route-only          # print the route (path, stage, engines) and stop
    semdns ask "..." --context notes.txt   # send a context file with the question
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from nameserver.client import Client, SdkError
from nameserver.sdk_route import DEFAULT_ZONE, Route


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ask", help="route a question through DNS and ask the chosen engine")
    parser.add_argument("text", help="the question")
    parser.add_argument("--server", action="append", default=[], metavar="ADDR:PORT",
                        help="DNS server to ask (repeatable, tried in order; default: /etc/resolv.conf)")
    parser.add_argument("--zone", default=DEFAULT_ZONE, help=f"zone to ask under (default {DEFAULT_ZONE})")
    parser.add_argument("--context", type=Path, metavar="FILE", help="send this file's text as context")
    parser.add_argument("--route-only", action="store_true", help="print the route, do not call an engine")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per DNS query (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
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


def run(args: argparse.Namespace) -> int:
    try:
        context = args.context.read_text(encoding="utf-8") if args.context else None
    except OSError as exc:
        print(f"semdns ask: cannot read --context {args.context}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        client = Client(args.server or None, zone=args.zone, timeout=args.timeout)
        if args.route_only:
            route = client.resolve(args.text)
            print(json.dumps(asdict(route), indent=2, default=str) if args.json else describe(route))
            return 0
        answer = client.ask(args.text, context=context)
    except SdkError as exc:
        print(f"semdns ask: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"route": asdict(answer.route), "engine": answer.engine.base_url,
                          "failures": answer.failures, "answer": answer.text}, indent=2, default=str))
    else:
        print(describe(answer.route))
        for failure in answer.failures:
            print(f"failover:   {failure}")
        print(f"answered by {answer.engine.base_url}:\n\n{answer.text}")
    return 0
