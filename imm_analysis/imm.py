"""Live fetching from Alibaba Cloud IMM with the official SDK (``alibabacloud-imm20200930``).

:func:`fetch_clusters` calls ``QueryFigureClusters`` and :func:`fetch_files` calls ``SimpleQuery``;
both follow ``NextToken`` to the last page, retry throttling and server errors with exponential
backoff and jitter, and hand the pages (plain dicts, converted with the SDK's own ``to_map()``) to
the JSON loaders, so a live fetch gives exactly the frames a saved export gives.

Credentials come from ``credentials=``, else from ``ALIBABA_CLOUD_ACCESS_KEY_ID`` /
``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (and ``ALIBABA_CLOUD_SECURITY_TOKEN``) read when the client is
made, else from the SDK's default credential chain (``~/.alibabacloud/credentials.ini``, the
``aliyun`` CLI profile, an ECS RAM role, OIDC...). They are handed to the SDK and nowhere else:
never logged, never in a frame, its ``attrs``, an error message or a ``repr``.

The SDK is an optional extra: ``pip install "imm_analysis[imm]"``. It is imported when a function
here is called, never at ``import imm_analysis``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from imm_analysis.io.imm_tasks import ImmTaskTimeout, create_figure_clustering_task, get_task, list_tasks

__all__ = [
    "FetchedFiles",
    "ImmApiError",
    "ImmCredentialsError",
    "ImmFetchError",
    "ImmResponseError",
    "ImmTaskTimeout",
    "RetryPolicy",
    "create_figure_clustering_task",
    "fetch_clusters",
    "fetch_files",
    "get_task",
    "list_tasks",
    "make_client",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "imm_analysis[imm]"'
ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"
ENV_REGION_ID = "ALIBABA_CLOUD_REGION_ID"
#: IMM caps ``MaxResults`` at 100 for both operations.
MAX_PAGE_SIZE = 100
_QUERY_KEYS = frozenset({"Field", "Operation", "Value", "SubQueries"})
_REDACTED = "***"


# --------------------------------------------------------------------------- errors


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
    """

    def __init__(self, operation: str, page: int, next_token: str, reason: str) -> None:
        self.operation, self.page, self.next_token, self.reason = operation, page, next_token, reason
        super().__init__(f"{operation} page {page} (NextToken {next_token!r}): {reason}")

    def as_dict(self) -> dict[str, Any]:
        """The error as one row of ``frame.attrs["errors"]`` (the loaders' columns)."""
        return {
            "source": f"{self.operation} page {self.page}",
            "record": f"NextToken {self.next_token!r}",
            "field": None,
            "reason": self.reason,
        }


class ImmResponseError(ImmFetchError, ValueError):
    """IMM answered with something that is not a well-formed response (invalid JSON or wrong shape)."""


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
    """

    def __init__(self, operation: str, page: int, next_token: str, reason: str, *, status_code: int | None = None,
                 code: str | None = None, request_id: str | None = None, attempts: int = 1) -> None:
        self.status_code, self.code, self.request_id, self.attempts = status_code, code, request_id, attempts
        super().__init__(operation, page, next_token, reason)


class ImmCredentialsError(ImmFetchError):
    """No usable Alibaba Cloud credentials were found (the message says where they are looked for)."""


# --------------------------------------------------------------------------- SDK import and client


def _sdk() -> dict[str, Any]:
    """Import the SDK pieces used here; an ImportError naming the pip extra when it is missing."""
    try:
        from alibabacloud_credentials.client import Client as CredentialClient
        from alibabacloud_credentials.exceptions import CredentialException
        from alibabacloud_imm20200930 import models
        from alibabacloud_imm20200930.client import Client
        from Tea.exceptions import RetryError as TeaRetryError
        from Tea.exceptions import UnretryableException

        try:  # SDK 5.x (darabonba); 4.x kept Config in alibabacloud_tea_openapi.models and used Tea's errors
            from alibabacloud_tea_openapi.utils_models import Config
            from darabonba.exceptions import RetryError

            retry_errors: tuple[type, ...] = (RetryError, TeaRetryError)
        except ImportError:  # pragma: no cover - older SDK
            from alibabacloud_tea_openapi.models import Config

            retry_errors = (TeaRetryError,)
    except ImportError as exc:
        raise ImportError(
            "Live IMM fetching needs the official Alibaba Cloud IMM SDK (alibabacloud-imm20200930): "
            f"{INSTALL_HINT}"
        ) from exc
    return {
        "Client": Client,
        "Config": Config,
        "CredentialClient": CredentialClient,
        "CredentialException": CredentialException,
        "RetryError": retry_errors,
        "UnretryableException": UnretryableException,
        "models": models,
    }


def _split_endpoint(endpoint: str, protocol: str | None) -> tuple[str, str]:
    """``"http://host:port/"`` -> ``("host:port", "http")``; a bare host keeps ``protocol`` (default https)."""
    scheme, sep, rest = endpoint.partition("://")
    if sep:
        if protocol and protocol.lower() != scheme.lower():
            raise ValueError(f"endpoint {endpoint!r} says {scheme!r} but protocol={protocol!r}")
        return rest.rstrip("/"), scheme.lower()
    return endpoint.rstrip("/"), (protocol or "https").lower()


def make_client(
    *,
    endpoint: str | None = None,
    region_id: str | None = None,
    credentials: Any = None,
    protocol: str | None = None,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
) -> Any:
    """Make an IMM SDK client (``alibabacloud_imm20200930.client.Client``).

    Parameters
    ----------
    endpoint : str, optional
        ``imm.cn-hangzhou.aliyuncs.com``, or ``host:port`` / ``http://host:port`` (a scheme sets the
        protocol). Default: the SDK's endpoint for ``region_id``.
    region_id : str, optional
        ``cn-hangzhou``... Default: ``$ALIBABA_CLOUD_REGION_ID``. One of endpoint / region is needed.
    credentials : mapping, credential client or None, default=None
        A mapping with ``access_key_id``, ``access_key_secret`` and optional ``security_token``; or an
        ``alibabacloud_credentials.client.Client`` (any object with ``get_credential()``); or None: the
        ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` /
        ``ALIBABA_CLOUD_SECURITY_TOKEN`` environment variables when set, else the SDK's default chain.
    protocol : {"https", "http"}, optional
        Default https (or the endpoint's scheme).
    connect_timeout, read_timeout : float, default=10.0, 60.0
        Seconds.

    Returns
    -------
    alibabacloud_imm20200930.client.Client

    Raises
    ------
    ImportError
        When the SDK is not installed (``pip install "imm_analysis[imm]"``).
    ValueError
        When neither an endpoint nor a region is known, or ``credentials`` is incomplete.

    Examples
    --------
    >>> client = make_client(region_id="cn-hangzhou")  # doctest: +SKIP
    >>> client = make_client(endpoint="http://127.0.0.1:8080", credentials={"access_key_id": "id",
    ...                      "access_key_secret": "secret"})  # doctest: +SKIP
    """
    sdk = _sdk()
    region_id = region_id or os.environ.get(ENV_REGION_ID) or None
    if not endpoint and not region_id:
        raise ValueError(
            f"make_client needs endpoint= (e.g. 'imm.cn-hangzhou.aliyuncs.com') or region_id= (or ${ENV_REGION_ID})"
        )
    config = sdk["Config"](
        region_id=region_id,
        connect_timeout=int(connect_timeout * 1000),
        read_timeout=int(read_timeout * 1000),
    )
    if endpoint:
        config.endpoint, config.protocol = _split_endpoint(endpoint, protocol)
    elif protocol:
        config.protocol = protocol.lower()
    source = _apply_credentials(config, credentials, sdk)
    client = sdk["Client"](config)
    logger.debug("IMM client for %s (credentials from %s)", config.endpoint or region_id, source)
    return client


def _apply_credentials(config: Any, credentials: Any, sdk: Mapping[str, Any]) -> str:
    """Put ``credentials`` on the SDK config; return where they came from (words, no secret)."""
    if credentials is None:
        key_id, secret = os.environ.get(ENV_ACCESS_KEY_ID), os.environ.get(ENV_ACCESS_KEY_SECRET)
        if key_id and secret:
            config.access_key_id, config.access_key_secret = key_id, secret
            config.security_token = os.environ.get(ENV_SECURITY_TOKEN) or None
            return "the environment"
        config.credential = sdk["CredentialClient"]()
        return "the SDK's default credential chain"
    if isinstance(credentials, Mapping):
        missing = [k for k in ("access_key_id", "access_key_secret") if not credentials.get(k)]
        if missing:
            raise ValueError(f"credentials is missing {', '.join(missing)} (it has: {', '.join(sorted(credentials))})")
        unknown = set(credentials) - {"access_key_id", "access_key_secret", "security_token"}
        if unknown:
            raise ValueError(f"credentials has unknown keys {sorted(unknown)}")
        config.access_key_id = credentials["access_key_id"]
        config.access_key_secret = credentials["access_key_secret"]
        config.security_token = credentials.get("security_token") or None
        return "the credentials mapping"
    if callable(getattr(credentials, "get_credential", None)):
        config.credential = credentials
        return f"a {type(credentials).__name__}"
    raise TypeError(
        "credentials must be None, a mapping with access_key_id/access_key_secret, or an "
        f"alibabacloud_credentials client, not {type(credentials).__name__}"
    )


def _known_secrets(credentials: Any) -> list[str]:
    """Secret strings to scrub from any message we write (belt and braces: they should never get there)."""
    values = [os.environ.get(ENV_ACCESS_KEY_SECRET), os.environ.get(ENV_SECURITY_TOKEN)]
    if isinstance(credentials, Mapping):
        values += [credentials.get("access_key_secret"), credentials.get("security_token")]
    return [v for v in values if isinstance(v, str) and len(v) >= 4]


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _REDACTED)
    return text


# --------------------------------------------------------------------------- retries


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


# --------------------------------------------------------------------------- paging


@dataclass(frozen=True)
class _Operation:
    name: str  # IMM operation name
    method: str  # SDK client method
    request_model: str
    records_key: str  # "FigureClusters" / "Files"
    total_key: str  # "TotalCount" / "TotalHits"
    unit: str


_CLUSTERS = _Operation("QueryFigureClusters", "query_figure_clusters", "QueryFigureClustersRequest",
                       "FigureClusters", "TotalCount", "cluster")
_FILES = _Operation("SimpleQuery", "simple_query", "SimpleQueryRequest", "Files", "TotalHits", "file")


@dataclass
class _FetchResult:
    pages: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    request_ids: list[str]
    retries: int = 0
    complete: bool = True
    collect: bool = False


def _build_request(op: _Operation, params: dict[str, Any], sdk: Mapping[str, Any]) -> Any:
    """An SDK request model from IMM-named parameters; unknown names are an error, not silently dropped."""
    request = getattr(sdk["models"], op.request_model)().from_map(params)
    unknown = sorted(set(params) - set(request.to_map()))
    if unknown:
        raise ValueError(f"{op.name} has no parameter(s) {unknown} (IMM names, e.g. 'CustomLabels')")
    request.validate()
    return request


def _check_page(op: _Operation, body: Any) -> str | None:
    """What is wrong with a response body (a dict from ``to_map()``), or None when it looks right."""
    if not isinstance(body, dict):
        return f"expected a JSON object, got {type(body).__name__}"
    records = body.get(op.records_key)
    if records is not None and not (isinstance(records, list) and all(isinstance(r, dict) for r in records)):
        return f"{op.records_key} must be a list of objects"
    token = body.get("NextToken")
    if token is not None and not isinstance(token, str):
        return f"NextToken must be a string, got {type(token).__name__}"
    if not records and not token and "RequestId" not in body:
        return f"none of {op.records_key}, NextToken, RequestId: this is not an IMM {op.name} response"
    return None


def _fetch_pages(
    client: Any,
    op: _Operation,
    params: dict[str, Any],
    *,
    retry: RetryPolicy,
    errors: str,
    progress: bool,
    max_pages: int | None,
    secrets: Sequence[str],
    sdk: Mapping[str, Any],
    sleep: Callable[[float], None] = time.sleep,
) -> _FetchResult:
    """Call ``op`` page after page until ``NextToken`` is empty; the raw page dicts and what happened."""
    from tqdm.auto import tqdm

    call = getattr(client, op.method)
    result = _FetchResult([], [], [], collect=errors == "collect")
    token = ""
    seen: set[str] = set()
    where = f"{params.get('ProjectName')}/{params.get('DatasetName')}"
    bar = tqdm(desc=op.name, unit="page", disable=not progress, leave=False)
    try:
        while True:
            page = len(result.pages) + 1
            request = _build_request(op, {**params, **({"NextToken": token} if token else {})}, sdk)
            body = _call_page(call, request, op, page, token, retry, secrets, sdk, sleep, result)
            if body is None:  # malformed, collected
                result.complete = False
                break
            result.pages.append(body)
            if body.get("RequestId"):
                result.request_ids.append(body["RequestId"])
            total = body.get(op.total_key)
            if page == 1 and isinstance(total, int) and params.get("MaxResults"):
                bar.total = max(1, math.ceil(total / params["MaxResults"]))
                bar.refresh()
            bar.update(1)
            logger.debug("%s %s page %d: %d %ss", op.name, where, page, len(body.get(op.records_key) or []), op.unit)
            token = body.get("NextToken") or ""
            if not token:
                break
            if token in seen:
                err = ImmResponseError(op.name, page + 1, token, "IMM sent a NextToken it already sent (paging loop)")
                if not result.collect:
                    raise err
                result.errors.append(err.as_dict())
                result.complete = False
                break
            seen.add(token)
            if max_pages is not None and page >= max_pages:
                logger.info("%s %s: stopped after max_pages=%d (more pages remain)", op.name, where, max_pages)
                result.complete = False
                break
    finally:
        bar.close()
    n_records = sum(len(p.get(op.records_key) or []) for p in result.pages)
    logger.info("%s %s: %d pages, %d %ss, %d retries", op.name, where, len(result.pages), n_records, op.unit,
                result.retries)
    return result


def _call_page(call: Callable[[Any], Any], request: Any, op: _Operation, page: int, token: str, retry: RetryPolicy,
               secrets: Sequence[str], sdk: Mapping[str, Any], sleep: Callable[[float], None],
               result: _FetchResult) -> dict[str, Any] | None:
    """One page with retries: the body dict; None when it was malformed and ``errors="collect"``."""
    for attempt in range(1, retry.max_retries + 2):
        try:
            response = call(request)
            body = response.to_map().get("body") if response is not None else None
        except Exception as exc:
            failure = _classify(exc, sdk)
            if failure is None:
                raise
            reason = _scrub(failure.reason, secrets)
            if failure.kind == "credentials":
                raise ImmCredentialsError(
                    op.name, page, token,
                    f"no usable Alibaba Cloud credentials ({reason}). Pass credentials=, set {ENV_ACCESS_KEY_ID} and "
                    f"{ENV_ACCESS_KEY_SECRET}, or configure the SDK's default chain (~/.alibabacloud/credentials.ini)",
                ) from None
            if failure.kind == "malformed":
                body_error = reason
                break
            if failure.kind == "retry" and attempt <= retry.max_retries:
                wait = retry.delay(attempt, retry_after=failure.retry_after)
                result.retries += 1
                logger.warning("%s page %d: %s; retry %d/%d in %.3g s", op.name, page, reason, attempt,
                               retry.max_retries, wait)
                sleep(wait)
                continue
            if failure.kind == "retry":
                reason = f"{reason} (gave up after {attempt} attempts)"
            # the SDK's UnretryableException keeps the signed request (headers, STS token): do not chain it
            cause = None if hasattr(exc, "last_request") else exc
            raise ImmApiError(op.name, page, token, reason, status_code=failure.status_code, code=failure.code,
                              request_id=failure.request_id, attempts=attempt) from cause
        else:
            body_error = _check_page(op, body)
            if body_error is None:
                return body
            break
    err = ImmResponseError(op.name, page, token, body_error)
    if result.collect:
        result.errors.append(err.as_dict())
        logger.warning("%s", err)
        return None
    raise err


# --------------------------------------------------------------------------- public API


def _client_for(client: Any, endpoint: str | None, region_id: str | None, credentials: Any) -> Any:
    if client is not None:
        if endpoint or region_id or credentials is not None:
            raise ValueError("pass either client= or endpoint/region_id/credentials, not both")
        return client
    return make_client(endpoint=endpoint, region_id=region_id, credentials=credentials)


def _check_common(errors: str, max_results: int, max_pages: int | None) -> None:
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors must be 'raise' or 'collect', got {errors!r}")
    if not 1 <= max_results <= MAX_PAGE_SIZE:
        raise ValueError(f"max_results must be between 1 and {MAX_PAGE_SIZE} (IMM's limit), got {max_results}")
    if max_pages is not None and max_pages < 1:
        raise ValueError(f"max_pages must be >= 1 or None, got {max_pages}")


def _run(op: _Operation, params: dict[str, Any], *, client: Any, endpoint: str | None, region_id: str | None,
         credentials: Any, retry: RetryPolicy, errors: str, progress: bool, max_pages: int | None) -> _FetchResult:
    sdk = _sdk()
    client = _client_for(client, endpoint, region_id, credentials)
    logger.info("%s %s/%s (MaxResults=%s)", op.name, params.get("ProjectName"), params.get("DatasetName"),
                params.get("MaxResults"))
    return _fetch_pages(client, op, params, retry=retry, errors=errors, progress=progress, max_pages=max_pages,
                        secrets=_known_secrets(credentials), sdk=sdk)


#: The page keys the loaders compare with the records they load.
_TOTAL_KEYS = ("TotalCount", "TotalHits")


def _load(loader: Callable[..., pd.DataFrame], fetched: _FetchResult, errors: str) -> pd.DataFrame:
    """Run a loader on the pages.

    A complete fetch keeps ``TotalCount`` / ``TotalHits``, so the loader warns (and logs) when IMM's
    total and the records disagree. A fetch that stopped early (``max_pages``, or a malformed page
    collected) has fewer records than the total by design: the loader gets the pages without their
    totals (shallow copies; the pages returned to the caller keep them), so there is neither a
    warning nor a log line for it.
    """
    pages = fetched.pages
    if not fetched.complete:
        pages = [{k: v for k, v in page.items() if k not in _TOTAL_KEYS} for page in pages]
    return loader(pages, errors=errors)


def _annotate(frame: pd.DataFrame, op: _Operation, params: Mapping[str, Any], fetched: _FetchResult) -> pd.DataFrame:
    """Record where the frame came from in ``frame.attrs`` (small, no credentials) and add fetch errors."""
    frame.attrs["imm"] = {
        "operation": op.name,
        "project_name": params.get("ProjectName"),
        "dataset_name": params.get("DatasetName"),
        "pages": len(fetched.pages),
        "retries": fetched.retries,
        "complete": fetched.complete,
        "request_ids": list(fetched.request_ids),
    }
    if fetched.errors or "errors" in frame.attrs:
        frame.attrs["errors"] = list(frame.attrs.get("errors", [])) + list(fetched.errors)
    return frame


def _parse_query(query: Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    """A SimpleQuery ``Query`` as a dict (from a dict or a JSON string), with its keys checked."""
    if query is None:
        return None
    if isinstance(query, str):
        try:
            query = json.loads(query)
        except ValueError as exc:
            raise ValueError(f"query is not valid JSON ({exc}): {query[:200]!r}") from exc
    if not isinstance(query, Mapping):
        raise TypeError(f"query must be a dict or a JSON object string, not {type(query).__name__}")

    def check(node: Any, path: str) -> None:
        if not isinstance(node, Mapping):
            raise TypeError(f"query{path} must be an object, not {type(node).__name__}")
        unknown = sorted(set(node) - _QUERY_KEYS)
        if unknown:
            raise ValueError(f"query{path} has unknown key(s) {unknown}; IMM's SimpleQuery takes {sorted(_QUERY_KEYS)}")
        if not node.get("Operation"):
            raise ValueError(f"query{path} needs an 'Operation' (eq, and, or, prefix, range...)")
        for i, sub in enumerate(node.get("SubQueries") or []):
            check(sub, f"{path}.SubQueries[{i}]")

    check(query, "")
    return dict(query)


def _common_params(project_name: str, dataset_name: str, max_results: int, sort: str | None, order: str | None,
                   params: Mapping[str, Any] | None) -> dict[str, Any]:
    if not project_name or not dataset_name:
        raise ValueError("project_name and dataset_name must be non-empty")
    out: dict[str, Any] = {"ProjectName": project_name, "DatasetName": dataset_name, "MaxResults": max_results}
    if sort:
        out["Sort"] = sort
    if order:
        out["Order"] = order
    for key, value in (params or {}).items():
        if key in ("ProjectName", "DatasetName", "NextToken"):
            raise ValueError(f"params must not set {key!r} (it is an argument, or managed by the paging)")
        out[key] = value
    return out


def fetch_clusters(
    project_name: str,
    dataset_name: str,
    *,
    client: Any = None,
    endpoint: str | None = None,
    region_id: str | None = None,
    credentials: Any = None,
    max_results: int = MAX_PAGE_SIZE,
    sort: str | None = None,
    order: Literal["asc", "desc"] | None = None,
    params: Mapping[str, Any] | None = None,
    max_pages: int | None = None,
    errors: Literal["raise", "collect"] = "raise",
    progress: bool = True,
    max_retries: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 20.0,
    return_pages: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Fetch every face cluster of a dataset with IMM's ``QueryFigureClusters``.

    Follows ``NextToken`` to the last page and loads the pages with
    :func:`imm_analysis.load_clusters`, so the frame equals the one loaded from a saved export.

    Parameters
    ----------
    project_name, dataset_name : str
        The IMM project and dataset.
    client : alibabacloud_imm20200930.client.Client, optional
        A ready client (see :func:`make_client`); otherwise one is made from ``endpoint``,
        ``region_id`` and ``credentials`` (same meaning as in :func:`make_client`).
    endpoint, region_id, credentials : optional
        Passed to :func:`make_client` when ``client`` is None.
    max_results : int, default=100
        Clusters per page (IMM's ``MaxResults``, 1 to 100).
    sort, order : str, optional
        IMM's ``Sort`` (``ImageCount``, ``FaceCount``, ``CreateTime``, ``UpdateTime``...) and
        ``Order`` (``asc`` / ``desc``).
    params : mapping, optional
        More request parameters under their IMM names, e.g. ``{"CustomLabels": "..."}`` or
        ``{"WithTotalCount": False}`` (default True: the progress bar then knows the page count).
        Unknown names raise ValueError.
    max_pages : int, optional
        Stop after this many pages (``frame.attrs["imm"]["complete"]`` is then False).
    errors : {"raise", "collect"}, default="raise"
        ``"raise"``: a malformed response raises :class:`ImmResponseError`. ``"collect"``: the
        fetch stops at the malformed page (its ``NextToken`` is unknowable), keeps the pages fetched
        before it, lists the failure in ``frame.attrs["errors"]`` and sets
        ``frame.attrs["imm"]["complete"] = False``; bad records inside good pages are skipped and
        listed by the loader. API errors (4xx, retries used up) and missing credentials always raise.
    progress : bool, default=True
        A ``tqdm`` bar over pages.
    max_retries, backoff, max_backoff : int, float, float
        Retries per page for throttling (HTTP 429, ``Throttling*`` codes), 5xx and network errors,
        with exponential backoff and full jitter (see :class:`RetryPolicy`). 4xx errors are never retried.
    return_pages : bool, default=False
        Also return the raw pages (IMM-shaped dicts, one per response). They are not put in
        ``frame.attrs``, which pandas deep-copies on every operation.

    Returns
    -------
    pandas.DataFrame or (pandas.DataFrame, list of dict)
        The :func:`~imm_analysis.load_clusters` frame; ``frame.attrs["imm"]`` records the operation,
        project, dataset, pages, retries, completeness and IMM ``RequestId`` s (never credentials).

    Raises
    ------
    ImmResponseError
        A response that is not valid JSON or not shaped like the operation's answer (the message
        names the operation, the page and the ``NextToken`` sent).
    ImmApiError
        IMM answered with a client error, or kept failing after ``max_retries`` retries.
    ImmCredentialsError
        No credentials could be found.
    ImportError
        The SDK is missing: ``pip install "imm_analysis[imm]"``.

    Examples
    --------
    >>> clusters = fetch_clusters("my-project", "my-dataset", region_id="cn-hangzhou")  # doctest: +SKIP
    >>> clusters.sort_values("image_count", ascending=False).head()  # doctest: +SKIP
    """
    _check_common(errors, max_results, max_pages)
    request = {"WithTotalCount": True, **_common_params(project_name, dataset_name, max_results, sort, order, params)}
    retry = RetryPolicy(max_retries, backoff, max_backoff)
    fetched = _run(_CLUSTERS, request, client=client, endpoint=endpoint, region_id=region_id,
                   credentials=credentials, retry=retry, errors=errors, progress=progress, max_pages=max_pages)
    from imm_analysis.io.imm_json import load_clusters

    frame = _annotate(_load(load_clusters, fetched, errors), _CLUSTERS, request, fetched)
    return (frame, fetched.pages) if return_pages else frame


class FetchedFiles(NamedTuple):
    """What :func:`fetch_files` returns: ``files, figures, pages = fetch_files(...)`` or by attribute.

    Attributes
    ----------
    files : pandas.DataFrame
        One row per file (:func:`imm_analysis.load_files`).
    figures : pandas.DataFrame
        One row per face (:func:`imm_analysis.load_figures`).
    pages : list of dict
        The raw ``SimpleQuery`` responses, IMM-shaped.
    """

    files: pd.DataFrame
    figures: pd.DataFrame
    pages: list[dict[str, Any]]

    def __repr__(self) -> str:
        return f"FetchedFiles(files={len(self.files)} rows, figures={len(self.figures)} rows, pages={len(self.pages)})"


def fetch_files(
    project_name: str,
    dataset_name: str,
    *,
    query: Mapping[str, Any] | str | None = None,
    client: Any = None,
    endpoint: str | None = None,
    region_id: str | None = None,
    credentials: Any = None,
    max_results: int = MAX_PAGE_SIZE,
    sort: str | None = None,
    order: str | None = None,
    params: Mapping[str, Any] | None = None,
    max_pages: int | None = None,
    errors: Literal["raise", "collect"] = "raise",
    progress: bool = True,
    max_retries: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 20.0,
) -> FetchedFiles:
    """Fetch the files (and their faces) matching a query with IMM's ``SimpleQuery``.

    Parameters
    ----------
    project_name, dataset_name : str
        The IMM project and dataset.
    query : dict or str, optional
        IMM's ``Query``, as a dict or a JSON string, e.g. the images of one cluster:
        ``{"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": cluster_id}``. Keys are
        checked (``Field``, ``Operation``, ``Value``, ``SubQueries``) so a typo cannot silently
        widen the query. None: every file of the dataset.
    client, endpoint, region_id, credentials : optional
        As in :func:`fetch_clusters`.
    max_results : int, default=100
        Files per page (1 to 100).
    sort, order : str, optional
        IMM's ``Sort`` (e.g. ``ProduceTime``) and ``Order``.
    params : mapping, optional
        More request parameters under their IMM names (``WithFields``, ``WithoutTotalHits``...).
    max_pages, errors, progress, max_retries, backoff, max_backoff
        As in :func:`fetch_clusters`.

    Returns
    -------
    FetchedFiles
        ``(files, figures, pages)``; both frames carry ``attrs["imm"]`` (and ``attrs["errors"]``).

    Raises
    ------
    ImmResponseError, ImmApiError, ImmCredentialsError, ImportError
        As in :func:`fetch_clusters`. ValueError for a query that is not valid JSON or has unknown keys.

    Examples
    --------
    >>> query = {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-7bdbcedb-..."}
    >>> files, figures, pages = fetch_files("my-project", "my-dataset", query=query)  # doctest: +SKIP
    >>> figures.groupby("figure_cluster_id").size()  # doctest: +SKIP
    """
    _check_common(errors, max_results, max_pages)
    request = _common_params(project_name, dataset_name, max_results, sort, order, params)
    parsed = _parse_query(query)
    if parsed is not None:
        request["Query"] = parsed
    retry = RetryPolicy(max_retries, backoff, max_backoff)
    fetched = _run(_FILES, request, client=client, endpoint=endpoint, region_id=region_id,
                   credentials=credentials, retry=retry, errors=errors, progress=progress, max_pages=max_pages)
    from imm_analysis.io.imm_json import load_figures, load_files

    files = _annotate(_load(load_files, fetched, errors), _FILES, request, fetched)
    figures = _annotate(_load(load_figures, fetched, errors), _FILES, request, fetched)
    return FetchedFiles(files, figures, fetched.pages)


def __getattr__(name: str) -> Any:
    """The live task functions, defined in :mod:`imm_analysis.io.imm_tasks` (imported on first use)."""
    if name in ("create_figure_clustering_task", "get_task", "list_tasks", "ImmTaskTimeout"):
        from imm_analysis.io import imm_tasks

        return getattr(imm_tasks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
