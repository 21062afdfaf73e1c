"""Start and follow IMM face-clustering runs through the official SDK: ``CreateFigureClusteringTask``,
``GetTask`` and ``ListTasks``.

Every call goes through the fetch machinery of :mod:`imm_analysis.imm` (client creation, credentials,
retries with backoff for throttling and 5xx, IMM-shaped errors, secrets never logged), and every answer
is read by :func:`imm_analysis.io.tasks.load_tasks`, so a live record and a saved one give the same frame.
Re-exported from :mod:`imm_analysis.imm`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from imm_analysis.io.imm_sdk.client import _known_secrets, _sdk
from imm_analysis.io.imm_sdk.errors import ImmResponseError
from imm_analysis.io.imm_sdk.fetch import _check_common, _client_for
from imm_analysis.io.imm_sdk.paging import (
    MAX_PAGE_SIZE,
    _build_request,
    _call_page,
    _fetch_pages,
    _FetchResult,
    _Operation,
)
from imm_analysis.io.imm_sdk.retry import RetryPolicy
from imm_analysis.io.tasks import load_tasks, tasks_frame

__all__ = ["ImmTaskTimeout", "MAX_USER_DATA_BYTES", "create_figure_clustering_task", "get_task", "list_tasks"]

logger = logging.getLogger(__name__)

#: IMM refuses ``UserData`` longer than this (bytes, UTF-8).
MAX_USER_DATA_BYTES = 2048
_DONE = ("Succeeded", "Failed")
_CLIENT_KEYS = frozenset({"client", "endpoint", "region_id", "credentials", "max_retries", "backoff", "max_backoff"})

_CREATE = _Operation("CreateFigureClusteringTask", "create_figure_clustering_task",
                     "CreateFigureClusteringTaskRequest", "Tasks", "TotalCount", "task")
_GET = _Operation("GetTask", "get_task", "GetTaskRequest", "Tasks", "TotalCount", "task")
_LIST = _Operation("ListTasks", "list_tasks", "ListTasksRequest", "Tasks", "TotalCount", "task")


class ImmTaskTimeout(TimeoutError):
    """A task did not end within ``timeout`` seconds (the message names the task and its last state).

    Attributes
    ----------
    task_id : str
    status : str or None
        The last status seen (``Running``).
    progress : int or None
        The last ``Progress`` seen.
    """

    def __init__(self, task_id: str, timeout: float, status: str | None, progress: Any) -> None:
        self.task_id, self.timeout, self.status, self.progress = task_id, timeout, status, progress
        super().__init__(
            f"IMM task {task_id} did not end within {timeout:g} s (last status {status!r}, progress {progress}); "
            f"follow it later with get_task(project, {task_id!r})"
        )


def _options(client_options: Mapping[str, Any]) -> tuple[dict[str, Any], RetryPolicy]:
    unknown = sorted(set(client_options) - _CLIENT_KEYS)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {unknown}; client options are {sorted(_CLIENT_KEYS)}")
    retry = RetryPolicy(int(client_options.get("max_retries", 5)), float(client_options.get("backoff", 0.5)),
                        float(client_options.get("max_backoff", 20.0)))
    conn = {k: client_options.get(k) for k in ("client", "endpoint", "region_id", "credentials")}
    return conn, retry


def _one_call(op: _Operation, params: dict[str, Any], conn: Mapping[str, Any], retry: RetryPolicy,
              client: Any = None) -> dict[str, Any]:
    """One SDK call with the shared retries and error rules; the response body as a dict."""
    sdk = _sdk()
    if client is None:
        client = _client_for(conn.get("client"), conn.get("endpoint"), conn.get("region_id"), conn.get("credentials"))
    request = _build_request(op, params, sdk)
    result = _FetchResult([], [], [])
    body = _call_page(getattr(client, op.method), request, op, 1, "", retry, _known_secrets(conn.get("credentials")),
                      sdk, time.sleep, result)
    if not isinstance(body, dict):  # pragma: no cover - _call_page raises in "raise" mode
        raise ImmResponseError(op.name, 1, "", "no response body")
    return body


def _user_data(user_data: Any) -> str | None:
    if user_data is None:
        return None
    text = user_data if isinstance(user_data, str) else json.dumps(user_data, ensure_ascii=False)
    size = len(text.encode("utf-8"))
    if size > MAX_USER_DATA_BYTES:
        raise ValueError(f"user_data is {size} bytes; IMM accepts at most {MAX_USER_DATA_BYTES} bytes (UTF-8)")
    return text


def _tags(tags: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if tags is None:
        return None
    if not isinstance(tags, Mapping):
        raise TypeError(f"tags must be a mapping of names to values, not {type(tags).__name__}")
    return {str(k): v for k, v in tags.items()}


def create_figure_clustering_task(
    project: str,
    dataset: str,
    *,
    user_data: str | Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    notification: Mapping[str, Any] | None = None,
    wait: bool = False,
    timeout: float = 3600.0,
    poll: float = 5.0,
    max_poll: float = 60.0,
    progress: bool = True,
    **client_options: Any,
) -> pd.DataFrame:
    """Start a face-clustering run on a dataset with IMM's ``CreateFigureClusteringTask``.

    The run is incremental (IMM clusters the files indexed since the last run) and asynchronous.

    Parameters
    ----------
    project, dataset : str
        The IMM project and dataset.
    user_data : str or mapping, optional
        IMM's ``UserData`` (a mapping is sent as JSON), returned in notifications. Over 2,048 bytes
        is refused before any call, as IMM would.
    tags : mapping, optional
        IMM's ``Tags``, to find the task with ``list_tasks(tag_selector=...)``.
    notification : mapping, optional
        IMM's ``Notification``: ``{"MNS": {"TopicName": ...}}`` or ``{"RocketMQ": {...}}``.
    wait : bool, default=False
        Poll ``GetTask`` until the task ends (``Succeeded`` or ``Failed``).
    timeout : float, default=3600
        Seconds to wait when ``wait=True``; then :class:`ImmTaskTimeout` names the task.
    poll, max_poll : float, default=5, 60
        First wait between polls, growing by half each poll up to ``max_poll`` seconds.
    progress : bool, default=True
        A ``tqdm`` bar on IMM's ``Progress`` while waiting.
    **client_options
        ``client``, or ``endpoint`` / ``region_id`` / ``credentials`` (see
        :func:`imm_analysis.imm.make_client`), and ``max_retries`` / ``backoff`` / ``max_backoff``.

    Returns
    -------
    pandas.DataFrame
        One task record (:func:`imm_analysis.load_tasks` columns): ``task_id``, ``event_id`` and
        ``request_id`` from the creation, and with ``wait=True`` the final status, code, message,
        times and progress. A ``Failed`` run is returned (and logged), not raised.

    Raises
    ------
    ValueError
        ``user_data`` over 2,048 bytes, or an empty project or dataset.
    ImmApiError, ImmResponseError, ImmCredentialsError
        As in :func:`imm_analysis.imm.fetch_clusters`.
    ImmTaskTimeout
        ``wait=True`` and the task did not end within ``timeout``.

    Examples
    --------
    These call IMM (credentials and a project needed), so they are not run here:

    >>> task = create_figure_clustering_task("my-project", "my-dataset", wait=True,
    ...                                      region_id="cn-hangzhou")  # doctest: +SKIP
    >>> task[["task_id", "status", "duration"]]  # doctest: +SKIP
    """
    if not project or not dataset:
        raise ValueError("project and dataset must be non-empty")
    params: dict[str, Any] = {"ProjectName": project, "DatasetName": dataset}
    text = _user_data(user_data)
    if text is not None:
        params["UserData"] = text
    if tags is not None:
        params["Tags"] = _tags(tags)
    if notification is not None:
        if not isinstance(notification, Mapping):
            raise TypeError(f"notification must be a mapping like {{'MNS': {{'TopicName': ...}}}}, not {type(notification).__name__}")
        params["Notification"] = dict(notification)
    conn, retry = _options(client_options)
    client = _client_for(conn["client"], conn["endpoint"], conn["region_id"], conn["credentials"])
    body = _one_call(_CREATE, params, conn, retry, client)
    task_id = body.get("TaskId")
    if not isinstance(task_id, str) or not task_id:
        raise ImmResponseError(_CREATE.name, 1, "", f"the response has no TaskId (keys: {sorted(body)})")
    logger.info("CreateFigureClusteringTask %s/%s: task %s", project, dataset, task_id)
    created = {"TaskId": task_id, "EventId": body.get("EventId"), "RequestId": body.get("RequestId"),
               "ProjectName": project, "DatasetName": dataset, "TaskType": "FigureClustering",
               "UserData": text, "Tags": params.get("Tags")}
    records: list[dict[str, Any]] = [{k: v for k, v in created.items() if v is not None}]
    if wait:
        final = _wait(project, task_id, "FigureClustering", conn, retry, client, timeout=timeout, poll=poll,
                      max_poll=max_poll, progress=progress)
        final.pop("RequestId", None)  # keep the creation's RequestId
        records.append(final)
    frame = load_tasks(records)
    if wait and frame["status"].iloc[0] == "Failed":
        logger.warning("IMM task %s failed: %s %s", task_id, frame["code"].iloc[0], frame["message"].iloc[0])
    return frame


def _wait(project: str, task_id: str, task_type: str, conn: Mapping[str, Any], retry: RetryPolicy, client: Any, *,
          timeout: float, poll: float, max_poll: float, progress: bool,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll GetTask until the task ends; its last body."""
    from tqdm.auto import tqdm

    if timeout <= 0 or poll <= 0:
        raise ValueError(f"timeout and poll must be > 0, got timeout={timeout}, poll={poll}")
    deadline = clock() + timeout
    delay = poll
    bar = tqdm(total=100, desc=f"IMM task {task_id[-12:]}", unit="%", disable=not progress, leave=False)
    params = {"ProjectName": project, "TaskId": task_id, "TaskType": task_type}
    try:
        while True:
            body = _one_call(_GET, params, conn, retry, client)
            status, done = body.get("Status"), body.get("Progress")
            if isinstance(done, (int, float)) and done > bar.n:
                bar.update(min(100, int(done)) - bar.n)
            if status in _DONE:
                bar.update(100 - bar.n if status == "Succeeded" else 0)
                return body
            left = deadline - clock()
            if left <= 0:
                raise ImmTaskTimeout(task_id, timeout, status, done)
            sleep(min(delay, left))
            delay = min(delay * 1.5, max(max_poll, poll))
    finally:
        bar.close()


def get_task(project: str, task_id: str, *, task_type: str = "FigureClustering", **client_options: Any) -> pd.DataFrame:
    """Read one task record with IMM's ``GetTask`` (kept by IMM for 7 days).

    Parameters
    ----------
    project : str
        The IMM project.
    task_id : str
        The ``TaskId`` that ``CreateFigureClusteringTask`` returned.
    task_type : str, default="FigureClustering"
        IMM's ``TaskType`` (required by ``GetTask``).
    **client_options
        As in :func:`create_figure_clustering_task`.

    Returns
    -------
    pandas.DataFrame
        One row (:func:`imm_analysis.load_tasks` columns).

    Examples
    --------
    >>> get_task("my-project", "CreateFigureClusteringTask-...", region_id="cn-hangzhou")  # doctest: +SKIP
    """
    if not project or not task_id:
        raise ValueError("project and task_id must be non-empty")
    conn, retry = _options(client_options)
    body = _one_call(_GET, {"ProjectName": project, "TaskId": task_id, "TaskType": task_type}, conn, retry)
    return load_tasks(body)


def _time_range(value: Any, name: str) -> dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: str(v) for k, v in value.items() if v is not None}
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{name} must be (start, end) (times or None) or IMM's {{'Start': ..., 'End': ...}}")
    out = {}
    for key, v in zip(("Start", "End"), value, strict=True):
        if v is not None:
            ts = pd.Timestamp(v)
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            out[key] = ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return out


def list_tasks(
    project: str,
    *,
    task_types: Sequence[str] | str | None = None,
    status: str | None = None,
    start_time_range: Any = None,
    tag_selector: str | None = None,
    max_pages: int | None = None,
    max_results: int = MAX_PAGE_SIZE,
    errors: str = "raise",
    progress: bool = True,
    **client_options: Any,
) -> pd.DataFrame:
    """List task records with IMM's ``ListTasks``, following ``NextToken`` to the end.

    Parameters
    ----------
    project : str
        The IMM project.
    task_types : str or list of str, optional
        IMM's ``TaskTypes`` (e.g. ``["FigureClustering"]``).
    status : {"Running", "Succeeded", "Failed"}, optional
    start_time_range : (start, end) or dict, optional
        Tasks started in this range (times, or None for an open end; or IMM's ``{"Start", "End"}``).
    tag_selector : str, optional
        IMM's ``TagSelector``, e.g. ``"run=nightly"``.
    max_pages : int, optional
        Stop after this many pages (``frame.attrs["imm"]["complete"]`` is then False).
    max_results : int, default=100
        Tasks per page (1 to 100).
    errors : {"raise", "collect"}, default="raise"
        As in :func:`imm_analysis.imm.fetch_clusters`.
    progress : bool, default=True
        A ``tqdm`` bar over pages.
    **client_options
        As in :func:`create_figure_clustering_task`.

    Returns
    -------
    pandas.DataFrame
        One row per task (:func:`imm_analysis.load_tasks` columns); ``attrs["imm"]`` records the
        pages, retries, completeness and request ids.

    Examples
    --------
    >>> list_tasks("my-project", task_types=["FigureClustering"], status="Failed",
    ...            region_id="cn-hangzhou")  # doctest: +SKIP
    """
    if not project:
        raise ValueError("project must be non-empty")
    _check_common(errors, max_results, max_pages)
    if status is not None and status not in ("Running", "Succeeded", "Failed"):
        raise ValueError(f"status must be 'Running', 'Succeeded' or 'Failed', got {status!r}")
    params: dict[str, Any] = {"ProjectName": project, "MaxResults": max_results}
    if task_types is not None:
        params["TaskTypes"] = [task_types] if isinstance(task_types, str) else list(task_types)
    if status is not None:
        params["Status"] = status
    if start_time_range is not None:
        params["StartTimeRange"] = _time_range(start_time_range, "start_time_range")
    if tag_selector is not None:
        params["TagSelector"] = tag_selector
    conn, retry = _options(client_options)
    sdk = _sdk()
    client = _client_for(conn["client"], conn["endpoint"], conn["region_id"], conn["credentials"])
    fetched = _fetch_pages(client, _LIST, params, retry=retry, errors=errors, progress=progress, max_pages=max_pages,
                           secrets=_known_secrets(conn["credentials"]), sdk=sdk)
    frame = load_tasks(fetched.pages, errors=errors) if fetched.pages else tasks_frame([])
    frame.attrs["imm"] = {"operation": _LIST.name, "project_name": project, "pages": len(fetched.pages),
                          "retries": fetched.retries, "complete": fetched.complete,
                          "request_ids": list(fetched.request_ids)}
    if fetched.errors:
        frame.attrs["errors"] = list(frame.attrs.get("errors", [])) + list(fetched.errors)
    return frame

