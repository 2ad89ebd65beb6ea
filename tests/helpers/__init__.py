"""Test helpers shared across rooms (`from helpers.server import running_server`)."""
