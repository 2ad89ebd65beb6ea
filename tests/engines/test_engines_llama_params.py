"""llama.cpp's extra buffer types (weight repacking; AMX, which crashes llama-cpp-python 0.3.x on
Sapphire Rapids) stay off unless asked, in the engine's backend and in `semdns bench engine`'s
in-process reference; the model parameters are read back from the real SmolLM2 after load. Every
load runs in a child process (`in_child`)."""
from __future__ import annotations

import ctypes

import pytest
from helpers.in_child import run_in_child

from engines.errors import EngineStartupError
from engines.llama_backend import LlamaBackend
from engines.llama_load import LlamaSettings, load_llama
from engines.models import default_gguf_path
from tools import bench_engine
from tools.cli import build_parser
from tools.cmd_engine import _config

pytestmark = pytest.mark.model
MODEL_ID = "smollm2-135m-instruct"


def backend_extra_bufts(settings: dict[str, object]) -> bool:
    backend = LlamaBackend(LlamaSettings(path=default_gguf_path(), n_ctx=256, n_threads=2, **settings), MODEL_ID)
    return backend.model_params.use_extra_bufts


def bench_extra_bufts(flags: tuple[str, ...]) -> bool:
    args = build_parser().parse_args(["bench", "engine", "--threads", "2", *flags])
    return bench_engine.local_llama(default_gguf_path(), args).model_params.use_extra_bufts


def load_without_the_field() -> str:
    """load_llama where llama_model_params has no use_extra_bufts field (an older llama-cpp-python)."""
    import llama_cpp.llama_cpp as llama_c

    class OldModelParams(ctypes.Structure):
        _fields_ = [(name, kind) for name, kind in llama_c.llama_model_params._fields_ if name != "use_extra_bufts"]

    llama_c.llama_model_params = OldModelParams
    try:
        load_llama(LlamaSettings(path=default_gguf_path(), n_ctx=256, n_threads=2))
    except EngineStartupError as exc:
        return str(exc)
    return "loaded"


def load_with_params_ignored() -> str:
    """load_llama with a Llama that does not take its model parameters from llama_model_default_params()."""
    import llama_cpp
    import llama_cpp.llama_cpp as llama_c

    class OwnDefaultsLlama(llama_cpp.Llama):
        def __init__(self, *args: object, **kwargs: object) -> None:
            llama_c.llama_model_default_params = lambda: original()
            super().__init__(*args, **kwargs)

    original = llama_c.llama_model_default_params
    llama_cpp.Llama = OwnDefaultsLlama
    try:
        load_llama(LlamaSettings(path=default_gguf_path(), n_ctx=256, n_threads=2))
    except EngineStartupError as exc:
        return str(exc)
    return "loaded"


def test_backend_keeps_extra_bufts_off_by_default() -> None:
    assert run_in_child(backend_extra_bufts, {}) is False


def test_backend_takes_extra_bufts_when_asked() -> None:
    assert run_in_child(backend_extra_bufts, {"use_extra_bufts": True}) is True


@pytest.mark.parametrize(("flags", "expected"), [((), False), (("--llama-extra-bufts",), True)])
def test_bench_reference_loads_as_the_engine_does(flags: tuple[str, ...], expected: bool) -> None:
    assert run_in_child(bench_extra_bufts, flags) is expected


@pytest.mark.parametrize(("flags", "expected"), [((), False), (("--llama-extra-bufts",), True)])
def test_engine_flag_reaches_the_llama_settings(flags: tuple[str, ...], expected: bool) -> None:
    args = build_parser().parse_args(["engine", "--domain", "legal.semantic.root.", "--model", "m.gguf", *flags])
    assert _config(args).llama_settings.use_extra_bufts is expected


def test_a_llama_cpp_without_the_field_fails_clearly() -> None:
    message = run_in_child(load_without_the_field)
    assert "llama_model_params has no use_extra_bufts field" in message


def test_params_not_applied_fail_clearly() -> None:
    message = run_in_child(load_with_params_ignored)
    assert "with use_extra_bufts=True, not False as asked" in message
