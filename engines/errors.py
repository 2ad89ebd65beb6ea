"""The engines' one exception hierarchy.

Errors raised while serving a request carry the HTTP status and the OpenAI-style error object
they answer with (`{"error": {"message", "type", "param", "code"}}`); start-up errors carry a
message naming the file or setting at fault.
"""
from __future__ import annotations

from typing import Any

from common.errors import SemanticDnsError


class EngineError(SemanticDnsError):
    """Root of every error the engines raise."""


class EngineStartupError(EngineError):
    """The engine cannot start (missing or malformed model file, bad flag, unusable socket)."""


class ModelFileError(EngineStartupError):
    """The model file is missing, unreadable or not of the expected format."""


class RequestError(EngineError):
    """An error answered to an HTTP client with an OpenAI-style error object."""

    status: int = 500
    error_type: str = "server_error"
    code: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class BadRequest(RequestError):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class ContextError(BadRequest):
    """A compressed context that cannot be decoded (unknown dictionary, corrupt body)."""

    code = "invalid_context"


class NotFound(RequestError):
    status = 404
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class ContextTooLong(RequestError):
    status = 413
    error_type = "invalid_request_error"
    code = "context_length_exceeded"


class QueueFull(RequestError):
    status = 429
    error_type = "rate_limit_error"
    code = "queue_full"


class Unavailable(RequestError):
    status = 503
    error_type = "server_error"
    code = "not_ready"


class ShuttingDown(Unavailable):
    code = "shutting_down"
