"""Registers the engine tests' fixtures (defined with their helpers in `engine_support`)."""
from engine_support import llama_engine, tiny_models  # noqa: F401
