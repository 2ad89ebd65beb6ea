"""The README's first command, `scripts/demo.sh`, run once end to end on free loopback ports."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers.server import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.model
def test_demo_serves_routes_registers_and_answers(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DEMO_ONCE": "1",
        "PORT": str(free_port()),
        "ENGINE_PORT": str(free_port()),
        "RUN_DIR": str(tmp_path / "run"),
    }
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh")], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    # dig shows the chain down to the contract engine, explain shows the stages, the engine registered
    assert "IN CNAME _llm._tcp.contract.legal.semantic.root." in out, out[-4000:]
    assert '"stage=keyword"' in out or '"stage=embed"' in out, out[-4000:]
    assert f"SRV\t0 0 {env['ENGINE_PORT']} " in out or f"SRV 0 0 {env['ENGINE_PORT']} " in out, out[-4000:]
    # and `semdns ask` got a generated answer from the registered engine
    assert f"answered by http://127.0.0.1:{env['ENGINE_PORT']}/v1:" in out, out[-4000:]
    answer = out.split(f"answered by http://127.0.0.1:{env['ENGINE_PORT']}/v1:", 1)[1].strip()
    assert len(answer) > 10, out[-2000:]
