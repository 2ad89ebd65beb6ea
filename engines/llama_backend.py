"""llama-cpp-python behind plain synchronous calls; every call runs on the model's worker thread.

The backend returns OpenAI-shaped dicts (llama-cpp-python already produces them) with the served
model name substituted, and maps llama's context-window error to `ContextTooLong`. The model is
loaded by `engines.llama_load.load_llama` (llama.cpp's extra buffer types off unless asked).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterator, cast

from engines.errors import ContextTooLong, EngineStartupError
from engines.llama_load import LlamaSettings, load_llama
from engines.models import check_gguf
from engines.schema import ChatMessage, Sampling

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage

CONTEXT_OVERFLOW_MARK = "exceed context window"
SELF_TEST_PROMPT = "Hello"


class LlamaBackend:
    """One loaded GGUF model. Not thread-safe: call only from the worker thread (tokenize excepted)."""

    def __init__(self, settings: LlamaSettings, model_id: str) -> None:
        check_gguf(settings.path)
        self._llm = load_llama(settings)
        self.model_id = model_id
        self.n_ctx = self._llm.n_ctx()

    @cached_property
    def max_token_octets(self) -> int:
        """The longest text one token stands for (32 octets for SmolLM2; ~0.1 s to find, once):
        a prompt longer than `n_ctx` such pieces cannot fit, and is refused without tokenising it."""
        vocabulary = range(self._llm.n_vocab())
        return max((len(self._llm.detokenize([token], special=True)) for token in vocabulary), default=1) or 1

    @property
    def model_params(self) -> Any:
        """The `llama_model_params` the model was loaded with (e.g. `.use_extra_bufts`)."""
        return self._llm.model_params

    def self_test(self) -> None:
        """Generate one token, or raise EngineStartupError: a backend that cannot generate must not serve.

        A native crash here ends the process, which is why the engine runs this before it reports
        ready or registers in DNS."""
        try:
            self._llm.create_completion(SELF_TEST_PROMPT, max_tokens=1, temperature=0.0)
        except Exception as exc:  # whatever the backend raises, the engine cannot serve
            raise EngineStartupError(
                f"model {self.model_id}: start-up self-test failed, llama.cpp cannot generate one token "
                f"({type(exc).__name__}: {exc})"
            ) from exc

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` with BOS (uses only the read-only vocabulary: safe off the worker thread)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def check_prompt(self, text: str, param: str = "prompt") -> int:
        """The tokens of `text`, or ContextTooLong; a text over `n_ctx * max_token_octets` octets is
        refused from its length alone (tokenising megabytes costs seconds)."""
        octets = len(text.encode("utf-8"))
        if octets > self.n_ctx * self.max_token_octets:
            raise ContextTooLong(
                f"prompt is {octets} octets, over what the {self.n_ctx}-token context of {self.model_id} can hold "
                f"(tokens of at most {self.max_token_octets} octets)",
                param=param,
            )
        tokens = self.count_tokens(text)
        self.check_fits(tokens, param)
        return tokens

    def check_fits(self, prompt_tokens: int, param: str = "prompt") -> None:
        if prompt_tokens >= self.n_ctx:
            raise ContextTooLong(
                f"prompt is {prompt_tokens} tokens; the context of {self.model_id} holds {self.n_ctx}",
                param=param,
            )

    def complete(self, prompt: str, sampling: Sampling, cancel: threading.Event) -> dict[str, Any]:
        with _overflow_as_413("prompt"):
            result = self._llm.create_completion(prompt, stream=False, **_llama_sampling(sampling))
        return self._named(result)

    def complete_stream(self, prompt: str, sampling: Sampling, cancel: threading.Event) -> Iterator[dict[str, Any]]:
        with _overflow_as_413("prompt"):
            for chunk in self._llm.create_completion(prompt, stream=True, **_llama_sampling(sampling)):
                if cancel.is_set():
                    return
                yield self._named(chunk)

    def chat(self, messages: tuple[ChatMessage, ...], sampling: Sampling, cancel: threading.Event) -> dict[str, Any]:
        with _overflow_as_413("messages"):
            result = self._llm.create_chat_completion(
                messages=_messages(messages), stream=False, **_llama_sampling(sampling)
            )
        return self._named(result)

    def chat_stream(
        self, messages: tuple[ChatMessage, ...], sampling: Sampling, cancel: threading.Event
    ) -> Iterator[dict[str, Any]]:
        with _overflow_as_413("messages"):
            for chunk in self._llm.create_chat_completion(
                messages=_messages(messages), stream=True, **_llama_sampling(sampling)
            ):
                if cancel.is_set():
                    return
                yield self._named(chunk)

    def _named(self, result: Any) -> dict[str, Any]:
        out = dict(result)
        out["model"] = self.model_id
        return out


@contextmanager
def _overflow_as_413(param: str) -> Iterator[None]:
    """llama-cpp-python's ValueError for a prompt over the context window becomes ContextTooLong."""
    try:
        yield
    except ValueError as exc:
        if CONTEXT_OVERFLOW_MARK in str(exc):
            raise ContextTooLong(str(exc), param=param) from exc
        raise


def _messages(messages: tuple[ChatMessage, ...]) -> list[ChatCompletionRequestMessage]:
    # The roles were checked against CHAT_ROLES when the request was parsed (engines.schema).
    return [cast("ChatCompletionRequestMessage", {"role": m.role, "content": m.content}) for m in messages]


def _llama_sampling(sampling: Sampling) -> dict[str, Any]:
    return {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "stop": list(sampling.stop),
        "seed": sampling.seed,
        "logit_bias": dict(sampling.logit_bias) or None,
    }
