"""Load IMM asynchronous task records (``GetTask``, ``ListTasks``, ``Create*Task``, notifications) into a frame.

Shapes read (from IMM's API documents and the official SDK's models):

* ``GetTask`` response: ``{"TaskId", "TaskType", "Status", "Code", "Message", "Progress", "StartTime",
  "EndTime", "ProjectName", "UserData", "Tags", "EventId", "TaskRequestDefinition", "RequestId"}``
* ``ListTasks`` page: ``{"ProjectName", "Tasks": [TaskInfo, ...], "NextToken", "RequestId"}``
* ``CreateFigureClusteringTask`` (or any ``Create*Task``) response: ``{"RequestId", "TaskId", "EventId"}``
* an asynchronous notification message (the task fields, plus ``DatasetName`` and ``RequestDefinition``
  in some versions), bare or inside a transport envelope: the MNS envelope (``{"TopicOwner", "TopicName",
  "MessageId", "Message": "<JSON text>"}``, or ``"MessageBody"`` for a queue; base64 bodies are decoded),
  a CloudEvents / EventBridge event (``{"specversion", "source", "data": {...}}``) or a RocketMQ body;
* an SDK ``to_map()`` wrapper ``{"headers", "statusCode", "body": {...}}`` around any of these.

Records of one task (the creation response, polls, the final notification) merge into one row: the most
advanced status wins (``Succeeded`` / ``Failed`` over ``Running`` over unknown, later over earlier), and
fields it lacks are taken from the other records of the task.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from typing import Any, cast

import numpy as np
import orjson
import pandas as pd

from imm_analysis import schema
from imm_analysis.io import limits
from imm_analysis.io.errors import ErrorLog
from imm_analysis.io.sources import iter_documents

__all__ = ["TASK_COLUMNS", "TASK_STATUSES", "load_tasks", "empty_tasks", "tasks_frame"]

#: IMM's task statuses, in the order of the ``status`` categorical.
TASK_STATUSES = ("Running", "Succeeded", "Failed")
#: Columns and dtypes of a tasks frame.
TASK_COLUMNS: dict[str, Any] = {
    "task_id": schema.STRING,
    "task_type": schema.STRING,
    "status": pd.CategoricalDtype(list(TASK_STATUSES)),
    "code": schema.STRING,
    "message": schema.STRING,
    "progress": schema.INT,
    "start_time": schema.TIME,
    "end_time": schema.TIME,
    "duration": "timedelta64[ns]",
    "project_name": schema.STRING,
    "dataset_name": schema.STRING,
    "user_data": schema.STRING,
    "tags": schema.OBJECT,
    "event_id": schema.STRING,
    "request_id": schema.STRING,
    "request_definition": schema.OBJECT,
}
_TEXT_FIELDS = {
    "TaskId": "task_id", "TaskType": "task_type", "Code": "code", "Message": "message",
    "ProjectName": "project_name", "DatasetName": "dataset_name", "UserData": "user_data",
    "EventId": "event_id", "RequestId": "request_id",
}
_RANK = {"Running": 1, "Succeeded": 2, "Failed": 2}
_STATUS = {s.lower(): s for s in TASK_STATUSES}
_ENVELOPE_KEYS = ("Message", "MessageBody")  # MNS topic push / queue message
EXPECTED = (
    "a GetTask response {'TaskId', 'Status', ...}, a ListTasks page {'Tasks': [...]}, a Create*Task response "
    "{'TaskId', 'EventId', 'RequestId'}, a notification message, an MNS envelope {'Message': '<JSON>'} or an "
    "EventBridge event {'data': {...}}"
)


def empty_tasks() -> pd.DataFrame:
    """An empty tasks frame with every column and dtype.

    Examples
    --------
    >>> frame = empty_tasks()
    >>> len(frame), list(frame["status"].cat.categories)
    (0, ['Running', 'Succeeded', 'Failed'])
    """
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in TASK_COLUMNS.items()})


def load_tasks(source: Any, *, errors: str = "raise", progress: bool = False) -> pd.DataFrame:
    """Load IMM task records into a tasks frame, one row per task.

    Parameters
    ----------
    source : path, directory, glob, dict, list, JSON string, bytes or binary file object
        ``GetTask`` responses, ``ListTasks`` pages, ``CreateFigureClusteringTask`` responses and
        asynchronous notification messages (bare, or in an MNS envelope whose message body is JSON
        text, or an EventBridge event), as ``.json`` / ``.jsonl`` files (gzipped or not), folders,
        globs or in memory, like the other loaders.
    errors : {"raise", "collect"}, default="raise"
        ``"raise"``: the first bad record raises :class:`~imm_analysis.io.errors.IMMFormatError`
        naming the file, the record and the field. ``"collect"``: bad records are skipped and listed
        in ``frame.attrs["errors"]``.
    progress : bool, default=False
        A progress bar over the files of a folder or glob.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TASK_COLUMNS`: ``task_id``, ``task_type``, ``status`` (categorical of
        :data:`TASK_STATUSES`), ``code``, ``message``, ``progress``, ``start_time`` / ``end_time``
        (tz-aware UTC), ``duration`` (``end_time - start_time``), ``project_name``,
        ``dataset_name`` (also from the request definition), ``user_data``, ``tags`` (dict),
        ``event_id``, ``request_id`` and ``request_definition`` (dict). Ordered by start time.

    Examples
    --------
    >>> from imm_analysis import load_tasks
    >>> page = {"ProjectName": "p", "Tasks": [{"TaskId": "t1", "TaskType": "FigureClustering",
    ...         "Status": "Succeeded", "StartTime": "2026-01-05T10:00:00Z", "EndTime": "2026-01-05T10:00:09Z",
    ...         "TaskRequestDefinition": '{"ProjectName": "p", "DatasetName": "d"}'}]}
    >>> load_tasks(page)[["task_id", "status", "dataset_name", "duration"]]
      task_id     status dataset_name        duration
    0      t1  Succeeded            d 0 days 00:00:09
    """
    log = ErrorLog(errors)
    rows = list(_rows(iter_documents(source, log, progress=progress), log))
    frame = tasks_frame(rows)
    if log.errors:
        frame.attrs["errors"] = list(log.errors)
    return frame


def tasks_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A tasks frame from row dicts (column names of :data:`TASK_COLUMNS`), records of one task merged.

    Examples
    --------
    >>> tasks_frame([{"task_id": "t", "event_id": "e"}, {"task_id": "t", "status": "Running"}])[
    ...     ["task_id", "status", "event_id"]]
      task_id   status event_id
    0       t  Running        e
    """
    if not rows:
        return empty_tasks()
    raw = pd.DataFrame(rows, columns=[c for c in TASK_COLUMNS if c != "duration"])
    raw["_rank"] = raw["status"].map(_RANK).fillna(0).to_numpy()
    raw["_order"] = np.arange(len(raw))
    raw = raw.sort_values(["_rank", "_order"], ascending=False, kind="stable")
    merged = raw.groupby("task_id", sort=False, dropna=False).first()  # first non-null, best record first
    merged = merged.reset_index().sort_values("_order", kind="stable")
    out: dict[str, pd.Series] = {}
    for col, dtype in TASK_COLUMNS.items():
        if col == "duration":
            continue
        values = merged[col]
        if dtype == schema.TIME:
            out[col] = pd.to_datetime(values, utc=True, format="ISO8601").astype(cast(Any, schema.TIME))
        elif dtype == schema.INT:
            out[col] = pd.to_numeric(values).round().astype(cast(Any, schema.INT))
        elif dtype == schema.OBJECT:
            out[col] = values.astype(object).where(values.notna(), None)
        else:
            out[col] = values.astype(cast(Any, dtype))
    frame = pd.DataFrame(out).reset_index(drop=True)
    frame.insert(8, "duration", frame["end_time"] - frame["start_time"])
    order = np.argsort(frame["start_time"].to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT")),
                       kind="stable")
    return frame.iloc[order].reset_index(drop=True)


# --------------------------------------------------------------------------- shapes


def _rows(docs: Iterator[tuple[str, str, Any]], log: ErrorLog) -> Iterator[dict[str, Any]]:
    for source, label, value in docs:
        yield from _records(source, label, value, log, {})


def _records(source: str, label: str, value: Any, log: ErrorLog, context: Mapping[str, Any]) -> Iterator[dict]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _records(source, f"{label}, item {i}", item, log, context)
        return
    if not isinstance(value, dict):
        log.add(source, label, None, f"not a task record (a JSON {type(value).__name__}); expected {EXPECTED}")
        return
    if isinstance(value.get("body"), dict) and "statusCode" in value:  # SDK to_map() wrapper
        yield from _records(source, label, value["body"], log, context)
        return
    if "Tasks" in value:  # ListTasks page
        tasks = value["Tasks"] if value["Tasks"] is not None else []
        if not isinstance(tasks, list):
            log.add(source, label, "Tasks", f"expected a list, got {type(tasks).__name__}")
            return
        page = {"ProjectName": value.get("ProjectName")} if value.get("ProjectName") is not None else {}
        for i, task in enumerate(tasks):
            where = f"{label}, Tasks[{i}]"
            if not isinstance(task, dict):
                log.add(source, where, None, f"expected a TaskInfo object, got {type(task).__name__}")
                continue
            row = _row(source, where, {**page, **task}, log)
            if row is not None:
                yield row
        return
    if "TaskId" not in value:
        inner = _unwrap(source, label, value, log)
        if inner is _BAD:
            return
        if inner is not None:
            yield from _records(source, inner[0], inner[1], log, context)
            return
        keys = ", ".join(sorted(map(str, value))[:12]) or "none"
        log.add(source, label, None, f"not a task record (keys: {keys}); expected {EXPECTED}")
        return
    row = _row(source, label, value, log)
    if row is not None:
        yield row


_BAD = object()


def _unwrap(source: str, label: str, value: dict, log: ErrorLog) -> Any:
    """The message inside a transport envelope: ``(label, value)``, None when not an envelope, ``_BAD`` on error."""
    for key in _ENVELOPE_KEYS:
        if key in value and ("TopicOwner" in value or "MessageId" in value or "TopicName" in value
                             or "SubscriptionName" in value or "ReceiptHandle" in value):
            body = value[key]
            if isinstance(body, dict):
                return f"{label}, {key}", body
            parsed = _json_text(body)
            if parsed is None:
                log.add(source, label, key, f"the MNS message body is not JSON: {_short(body)}")
                return _BAD
            return _within_depth(source, f"{label}, {key}", parsed, log)
    if "data" in value and ("specversion" in value or "source" in value):  # CloudEvents / EventBridge
        data = value["data"]
        if isinstance(data, str):
            data = _json_text(data)
        if not isinstance(data, (dict, list)):
            log.add(source, label, "data", f"the event's data is not a JSON object: {_short(value['data'])}")
            return _BAD
        return _within_depth(source, f"{label}, data", data, log)
    return None


def _within_depth(source: str, label: str, value: Any, log: ErrorLog) -> Any:
    """``(label, value)`` when the message parsed from an envelope's text is within ``MAX_DEPTH``, else ``_BAD``.

    The document around it was checked before parsing; text inside it was not.
    """
    where = limits.too_deep(value)
    if where is not None:
        log.add(source, label, where, limits.depth_reason())
        return _BAD
    return label, value


def _json_text(body: Any) -> Any:
    """A JSON value from text (or base64 of JSON text, as MNS queues may send); None when it is neither."""
    if not isinstance(body, (str, bytes)):
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        decoded = base64.b64decode(body, validate=True)
        return orjson.loads(decoded)
    except (binascii.Error, ValueError):
        return None


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _row(source: str, where: str, record: Mapping[str, Any], log: ErrorLog) -> dict[str, Any] | None:
    """One task record -> a row dict (None when the record is bad; the log has raised or collected it)."""
    row: dict[str, Any] = {}
    for key, col in _TEXT_FIELDS.items():
        v = record.get(key)
        if v is not None and not isinstance(v, str):
            return _bad(log, source, where, key, f"expected a string, got {type(v).__name__} {_short(v)}")
        row[col] = v or None
    if not row["task_id"]:
        return _bad(log, source, where, "TaskId", "a task record needs a non-empty TaskId")
    status = record.get("Status")
    if status is not None:
        if not isinstance(status, str) or status.lower() not in _STATUS:
            return _bad(log, source, where, "Status", f"expected one of {list(TASK_STATUSES)}, got {_short(status)}")
        status = _STATUS[status.lower()]
    row["status"] = status
    progress = record.get("Progress")
    if progress is not None and (isinstance(progress, bool) or not isinstance(progress, (int, float))):
        return _bad(log, source, where, "Progress", f"expected a number, got {_short(progress)}")
    row["progress"] = progress
    for key, col in (("StartTime", "start_time"), ("EndTime", "end_time")):
        v = record.get(key)
        if v in (None, ""):
            row[col] = None
            continue
        if not isinstance(v, str):
            return _bad(log, source, where, key, f"expected a time string, got {_short(v)}")
        try:
            row[col] = pd.Timestamp(v).tz_convert("UTC") if pd.Timestamp(v).tzinfo else pd.Timestamp(v, tz="UTC")
        except ValueError:
            return _bad(log, source, where, key, f"not an RFC 3339 time: {_short(v)}")
    tags = record.get("Tags")
    if isinstance(tags, str):
        tags = _json_text(tags) if tags.strip() else None
        if tags is None and record.get("Tags", "").strip():
            return _bad(log, source, where, "Tags", f"not a JSON object: {_short(record['Tags'])}")
    if tags is not None and not isinstance(tags, dict):
        return _bad(log, source, where, "Tags", f"expected an object, got {type(tags).__name__}")
    if isinstance(record.get("Tags"), str) and (deep := limits.too_deep(tags)) is not None:
        return _bad(log, source, where, f"Tags.{deep}", limits.depth_reason())
    row["tags"] = tags or None
    definition = None
    for key in ("TaskRequestDefinition", "RequestDefinition"):
        raw = record.get(key)
        if raw in (None, ""):
            continue
        definition = _json_text(raw) if isinstance(raw, str) else raw
        if not isinstance(definition, dict):
            return _bad(log, source, where, key, f"expected a JSON object, got {_short(raw)}")
        if isinstance(raw, str) and (deep := limits.too_deep(definition)) is not None:  # text the document check did not see
            return _bad(log, source, where, f"{key}.{deep}", limits.depth_reason())
        break
    row["request_definition"] = definition
    if definition:
        for key, col in (("DatasetName", "dataset_name"), ("ProjectName", "project_name")):
            if row[col] is None and isinstance(definition.get(key), str):
                row[col] = definition[key]
    return row


def _bad(log: ErrorLog, source: str, where: str, field: str, reason: str) -> dict[str, Any] | None:
    """Report a bad record (raises in ``errors="raise"`` mode); None, the row that is not made."""
    log.add(source, where, field, reason)
    return None
