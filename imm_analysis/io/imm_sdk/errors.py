"""Errors of a live IMM fetch; all picklable with their fields (they cross worker processes)."""

from __future__ import annotations

from typing import Any

__all__ = ["ImmFetchError", "ImmResponseError", "ImmApiError", "ImmCredentialsError"]


class ImmFetchError(RuntimeError):
    """A live IMM fetch failed.

    Attributes
    ----------
    operation : str
        The IMM operation (``QueryFigureClusters``, ``SimpleQuery``).
    page : int
        The 1-based page being fetched.
    next_token : str
        The ``NextToken`` sent for that page (``""`` for the first page).
    reason : str
        What went wrong, in words (never a credential).

    Examples
    --------
    >>> import pickle
    >>> err = ImmApiError("SimpleQuery", 2, "tok", "HTTP 403 Forbidden", status_code=403, code="Forbidden")
    >>> back = pickle.loads(pickle.dumps(err))
    >>> (back.page, back.status_code, back.code, str(back) == str(err))
    (2, 403, 'Forbidden', True)
    """

    def __init__(self, operation: str, page: int, next_token: str, reason: str) -> None:
        self.operation, self.page, self.next_token, self.reason = operation, page, next_token, reason
        super().__init__(f"{operation} page {page} (NextToken {next_token!r}): {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with every field (the subclasses' too), so the error survives a worker process."""
        return (type(self), (self.operation, self.page, self.next_token, self.reason), dict(self.__dict__))

    def as_dict(self) -> dict[str, Any]:
        """The error as one row of ``frame.attrs["errors"]`` (the loaders' columns)."""
        return {
            "source": f"{self.operation} page {self.page}",
            "record": f"NextToken {self.next_token!r}",
            "field": None,
            "reason": self.reason,
        }


class ImmResponseError(ImmFetchError, ValueError):
    """IMM answered with something that is not a well-formed response (invalid JSON or wrong shape).

    Examples
    --------
    >>> err = ImmResponseError("QueryFigureClusters", 1, "", "the body is not valid JSON")
    >>> isinstance(err, ValueError), err.as_dict()["source"]
    (True, 'QueryFigureClusters page 1')
    """


class ImmApiError(ImmFetchError):
    """IMM answered with an error (a 4xx client error, or a retryable error that outlasted the retries).

    Attributes
    ----------
    status_code : int or None
        The HTTP status, when there was an HTTP answer.
    code : str or None
        IMM's error code (``Throttling.User``, ``SignatureDoesNotMatch``...).
    request_id : str or None
        IMM's ``RequestId``, to quote to Alibaba Cloud support.
    attempts : int
        How many times the page was requested.

    Examples
    --------
    >>> err = ImmApiError("SimpleQuery", 3, "tok", "throttled", status_code=400, code="Throttling.User", attempts=6)
    >>> str(err), err.code, err.attempts
    ("SimpleQuery page 3 (NextToken 'tok'): throttled", 'Throttling.User', 6)
    """

    def __init__(self, operation: str, page: int, next_token: str, reason: str, *, status_code: int | None = None,
                 code: str | None = None, request_id: str | None = None, attempts: int = 1) -> None:
        self.status_code, self.code, self.request_id, self.attempts = status_code, code, request_id, attempts
        super().__init__(operation, page, next_token, reason)


class ImmCredentialsError(ImmFetchError):
    """No usable Alibaba Cloud credentials were found (the message says where they are looked for).

    Examples
    --------
    >>> err = ImmCredentialsError("SimpleQuery", 1, "", "no credentials in the arguments or the environment")
    >>> isinstance(err, ImmFetchError), err.page
    (True, 1)
    """
