"""Shared by every test directory: makes `tests/helpers` importable as `helpers`."""
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
