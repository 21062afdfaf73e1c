"""Paging: call an IMM operation page after page (following ``NextToken``), with retries per page."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imm_analysis.io.imm_sdk.client import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, _scrub
from imm_analysis.io.imm_sdk.errors import ImmApiError, ImmCredentialsError, ImmResponseError
from imm_analysis.io.imm_sdk.retry import RetryPolicy, _classify

__all__ = ["MAX_PAGE_SIZE"]

logger = logging.getLogger("imm_analysis.imm")

#: IMM caps ``MaxResults`` at 100 for both operations.
MAX_PAGE_SIZE = 100


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
    body_error: str | None = None
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
    err = ImmResponseError(op.name, page, token, body_error or "malformed response")
    if result.collect:
        result.errors.append(err.as_dict())
        logger.warning("%s", err)
        return None
    raise err
