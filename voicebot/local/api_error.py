"""``ApiError``: an error the engine answers with OpenAI's error body (pure; raised by the protocol cores and
the route handlers alike, turned into a response by the engine's middleware)."""

from __future__ import annotations

from voicebot.errors import LocalError


class ApiError(LocalError):
    """``{"error": {"message", "type", "param", "code"}}`` with HTTP ``status``."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, param=param)
        self.http_status = status
        self.error_type = type
        self.error_code = code


def invalid_value(param: str, message: str) -> ApiError:
    return ApiError(message, param=param, code="invalid_value")


def invalid_type(param: str, expected: str, got: object) -> ApiError:
    return ApiError(
        f"Invalid type for '{param}': expected {expected}, but got {json_type_name(got)} instead.",
        param=param,
        code="invalid_type",
    )


def missing_parameter(param: str) -> ApiError:
    return ApiError(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def unknown_parameter(param: str) -> ApiError:
    return ApiError(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")


def unsupported(param: str, message: str) -> ApiError:
    return ApiError(message, param=param, code="unsupported_value")


def json_type_name(value: object) -> str:
    """How OpenAI's error messages name a JSON value's type ("an integer", "a string", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
