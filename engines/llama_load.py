"""Loading a GGUF model into llama-cpp-python with the model parameters we choose: the one place
that constructs `llama_cpp.Llama` (the engine's backend and `semdns bench engine` both call it).

llama.cpp can move weights into "extra buffer types" that repack them at load time (CPU_REPACK,
and AMX on Sapphire Rapids). With the AMX one, llama-cpp-python 0.3.x built natively crashes
(SIGSEGV) in the first decode (ggml-org/llama.cpp#20824), so they are off unless
`LlamaSettings.use_extra_bufts` turns them on.

`Llama.__init__` has no argument for it (and silently ignores unknown keyword arguments): it
fills its `model_params` from `llama_cpp.llama_model_default_params()` and loads the model at
once. `load_llama` therefore wraps that function while the constructor runs (under a lock, so
two loads never see each other's wrapper) and checks afterwards that the parameters the model
was loaded with carry the value asked for.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterator

from common.cores import model_threads
from engines.errors import EngineStartupError

if TYPE_CHECKING:
    from llama_cpp import Llama

EXTRA_BUFTS_FIELD = "use_extra_bufts"
_DEFAULT_PARAMS_LOCK = threading.Lock()


@dataclass(frozen=True)
class LlamaSettings:
    path: Path
    n_ctx: int = 2048
    n_threads: int = field(default_factory=model_threads)  # the usable cores less one (`common.cores`)
    n_batch: int = 512
    use_extra_bufts: bool = False  # llama.cpp's extra buffer types (weight repacking, AMX); see module doc


def load_llama(settings: LlamaSettings) -> "Llama":
    """`settings.path` loaded by llama-cpp-python with `use_extra_bufts` as asked, verified after load."""
    import llama_cpp  # heavy import, deferred until a model is actually loaded
    import llama_cpp.llama_cpp as llama_c  # the module whose defaults `Llama.__init__` reads

    _require_field(llama_c, llama_cpp.__version__)
    try:
        with _defaults_with_extra_bufts(llama_c, settings.use_extra_bufts):
            llm = llama_cpp.Llama(
                model_path=str(settings.path),
                n_ctx=settings.n_ctx,
                n_threads=settings.n_threads,
                n_batch=settings.n_batch,
                verbose=False,
            )
    except (ValueError, RuntimeError) as exc:
        raise EngineStartupError(f"model file {settings.path}: llama.cpp cannot load it ({exc})") from exc
    loaded = bool(getattr(llm.model_params, EXTRA_BUFTS_FIELD))
    if loaded != settings.use_extra_bufts:
        llm.close()
        raise EngineStartupError(
            f"llama-cpp-python {llama_cpp.__version__} loaded {settings.path} with {EXTRA_BUFTS_FIELD}={loaded}, "
            f"not {settings.use_extra_bufts} as asked: its Llama no longer takes its model parameters from "
            "llama_model_default_params()"
        )
    return llm


def _require_field(llama_c: ModuleType, version: str) -> None:
    fields = {name for name, *_ in llama_c.llama_model_params._fields_}
    if EXTRA_BUFTS_FIELD not in fields:
        raise EngineStartupError(
            f"llama-cpp-python {version}: its llama_model_params has no {EXTRA_BUFTS_FIELD} field, so llama.cpp's "
            "extra buffer types cannot be chosen; install a llama-cpp-python that has it"
        )


@contextmanager
def _defaults_with_extra_bufts(llama_c: ModuleType, use_extra_bufts: bool) -> Iterator[None]:
    """Inside the block, `llama_c.llama_model_default_params()` has `use_extra_bufts` set as given."""
    original = llama_c.llama_model_default_params

    def defaults() -> Any:
        params = original()
        setattr(params, EXTRA_BUFTS_FIELD, use_extra_bufts)
        return params

    with _DEFAULT_PARAMS_LOCK:
        setattr(llama_c, "llama_model_default_params", defaults)
        try:
            yield
        finally:
            setattr(llama_c, "llama_model_default_params", original)
