"""Retries of IMM calls: the backoff policy and the sorting of SDK exceptions into retry / fail / malformed."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for throttling (429, ``Throttling*``), 5xx and network errors.

    The wait before retry ``n`` (1-based) is uniform in ``[0, min(max_backoff, backoff * 2 ** (n - 1))]``,
    and at least IMM's ``x-acs-retry-after`` when it sends one (still capped by ``max_backoff``).

    Parameters
    ----------
    max_retries : int, default=5
        Retries per page after the first attempt (0 = never retry).
    backoff : float, default=0.5
        Seconds; the cap of the first wait.
    max_backoff : float, default=20.0
        Seconds; no wait is longer.

    Examples
    --------
    >>> import random
    >>> policy = RetryPolicy(max_retries=3, backoff=0.5, max_backoff=2.0)
    >>> 0.0 <= policy.delay(1, rng=random.Random(0)) <= 0.5
    True
    >>> policy.delay(2, retry_after=30.0)  # IMM's x-acs-retry-after, capped by max_backoff
    2.0
    """

    max_retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 20.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError(f"max_retries, backoff and max_backoff must be >= 0: {self}")

    def delay(self, retry: int, *, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        cap = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        wait = (rng or random).uniform(0.0, cap)
        if retry_after:
            wait = max(wait, retry_after)
        return min(wait, self.max_backoff)


@dataclass(frozen=True)
class _Failure:
    kind: Literal["retry", "fail", "malformed", "credentials"]
    reason: str
    status_code: int | None = None
    code: str | None = None
    request_id: str | None = None
    retry_after: float | None = None


def _classify(exc: BaseException, sdk: Mapping[str, Any]) -> _Failure | None:
    """Sort an exception raised by an SDK call; None = not ours (let it propagate)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):  # an HTTP answer with an IMM error body (ClientException / ServerException / ...)
        code = getattr(exc, "code", None) or None
        message = getattr(exc, "message", None) or str(exc)
        request_id = getattr(exc, "request_id", None) or None
        retry_after = getattr(exc, "retry_after", None)
        retryable = status == 429 or status >= 500 or str(code or "").startswith("Throttling")
        return _Failure(
            "retry" if retryable else "fail",
            f"HTTP {status} {code}: {message}",
            status,
            code,
            request_id,
            retry_after / 1000.0 if isinstance(retry_after, (int, float)) else None,
        )
    if isinstance(exc, sdk["UnretryableException"]):
        inner = getattr(exc, "inner_exception", None)
        if isinstance(inner, sdk["CredentialException"]):
            return _Failure("credentials", str(inner))
        if isinstance(inner, sdk["RetryError"]):  # the SDK's wrapper for connection errors and timeouts
            return _Failure("retry", f"network error: {inner}")
        if isinstance(inner, RuntimeError) and "json" in str(inner).lower():
            text = str(inner)
            return _Failure("malformed", "the response body is not valid JSON: " + (text[:300] + "..." if len(text) > 300 else text))
        if inner is not None:
            return _Failure("fail", f"{type(inner).__name__}: {inner}")
        return None
    if isinstance(exc, (AttributeError, TypeError, KeyError, ValueError)):
        # a model's from_map() failing on a body of the wrong shape (the SDK usually keeps the raw dict instead,
        # which _check_page then judges)
        return _Failure("malformed", f"the response does not have the expected shape ({type(exc).__name__}: {exc})")
    return None
