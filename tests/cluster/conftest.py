"""What the namespace tests need: root and iproute2. Missing, they fail saying so (never skip):
CI runs as root with scripts/setup.sh's packages, as the README's test command does."""
from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def netns_capable() -> None:
    assert os.geteuid() == 0, "network namespace tests need root (CI and scripts/test.sh run as root)"
    assert shutil.which("ip"), "network namespace tests need iproute2's `ip`"
