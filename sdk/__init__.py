"""The semantic-dns client SDK: a stub resolver for semantic questions, and an engine caller.

    from sdk import Client

    client = Client(servers=["127.0.0.1:5353"])      # default: the system resolver's servers
    route = client.resolve("is a verbal contract binding?")
    answer = client.ask("is a verbal contract binding?", context="We agreed by phone.")

Needs only dnspython, aiohttp, zstandard and numpy (`pip install .`): no model, no torch, no
llama.cpp. What each call does is in `sdk.client`'s docstring.
"""
from codec.library import LibraryLimits
from sdk.client import AsyncClient, Client, parse_servers
from sdk.errors import (
    BadQuestion,
    EngineFailure,
    LibraryFault,
    LibraryTimeout,
    LibraryTooLarge,
    NoRoute,
    ResolveTimeout,
    SdkError,
    ServerFailure,
)
from sdk.library import LibraryCompressor
from sdk.route import Engine, Route
from sdk.steps import Answer, ContextCompressor
from sdk.wire import Exchange

__all__ = [
    "Answer", "AsyncClient", "BadQuestion", "Client", "ContextCompressor", "Engine", "EngineFailure", "Exchange",
    "LibraryCompressor", "LibraryFault", "LibraryLimits", "LibraryTimeout", "LibraryTooLarge", "NoRoute",
    "ResolveTimeout", "Route", "SdkError", "ServerFailure", "parse_servers",
]
