"""A fake Alibaba Cloud IMM endpoint on 127.0.0.1, for end-to-end tests of :mod:`imm_analysis.imm`.

It is a real :class:`http.server.ThreadingHTTPServer` on an ephemeral port that answers the
official SDK (``alibabacloud-imm20200930``) the way IMM does:

* the SDK sends RPC calls as ``POST /?ProjectName=...&NextToken=...`` with the operation in the
  ``x-acs-action`` header (``Action=`` in the query string for the older v2 signing is accepted too)
  and an ``ACS3-HMAC-SHA256`` ``Authorization`` header. The server checks the signature with the
  secret it was given, so a wrong secret gets IMM's ``403 SignatureDoesNotMatch``;
* ``QueryFigureClusters`` pages its clusters by ``MaxResults`` / ``NextToken`` (``Sort``, ``Order``
  and ``WithTotalCount`` are honoured); ``SimpleQuery`` filters its files with the ``Query`` JSON
  (``eq`` / ``and`` / ``or``, fields like ``Figures.FigureClusterId``) and pages them the same way;
* errors are IMM-shaped JSON bodies: ``{"Code": ..., "Message": ..., "RequestId": ...}``.

Faults are injected per operation and page (:meth:`FakeImm.inject`): a throttled ``429``, a ``503``,
a ``400``, or a body that is not valid JSON. Every request is recorded in :attr:`FakeImm.hits`.

Asynchronous tasks: ``CreateFigureClusteringTask`` starts a task that ``GetTask`` reports ``Running``
(progress rising) for a few polls, then ``Succeeded``, or ``Failed`` with a code and message, as
planned with :meth:`FakeImm.plan_task`; ``ListTasks`` pages every task (filtered by ``Status``,
``TaskTypes`` and ``TagSelector``) by ``MaxResults`` / ``NextToken``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

API_VERSION = "2020-09-30"
PROJECT = "test-project"
DATASET = "test-dataset"
INDEPENDENT = "figure-cluster-id-independent"


# --------------------------------------------------------------------------- data


def _figure(figure_id: str, cluster_id: str, i: int) -> dict[str, Any]:
    """One IMM figure (face) record, shaped like the seeds' SimpleQuery answer."""
    return {
        "Age": 20 + i % 30,
        "AgeSD": 4.0,
        "Attractive": 0.9,
        "Beard": "none",
        "BeardConfidence": 0.99,
        "Boundary": {"Height": 90 + i, "Left": 10 * i, "Top": 20, "Width": 80 + i},
        "Emotion": "happiness" if i % 2 else "calm",
        "EmotionConfidence": 0.7,
        "FaceQuality": round(0.75 + (i % 5) * 0.05, 3),
        "FigureClusterConfidence": 0.95,
        "FigureClusterId": cluster_id,
        "FigureConfidence": 1.0,
        "FigureId": figure_id,
        "FigureType": "face",
        "Gender": "female" if i % 2 else "male",
        "GenderConfidence": 0.98,
        "Glasses": "none",
        "GlassesConfidence": 0.99,
        "Hat": "none",
        "HatConfidence": 1.0,
        "HeadPose": {"Pitch": -3.5 + i, "Roll": 2.25, "Yaw": 7.5 - i},
        "Mask": "none",
        "MaskConfidence": 0.7,
        "Mouth": "close",
        "MouthConfidence": 0.8,
        "Sharpness": 0.9,
    }


def _file(n: int, figures: list[dict[str, Any]]) -> dict[str, Any]:
    """One IMM file record (an image), shaped like the seeds' SimpleQuery answer."""
    return {
        "ContentType": "image/jpeg",
        "CreateTime": f"2026-01-05T10:{n % 60:02d}:00.123456789+08:00",
        "DatasetName": DATASET,
        "Figures": figures,
        "FigureCount": len(figures),
        "FileModifiedTime": "2026-01-05T09:00:00+08:00",
        "Filename": f"{n}.jpg",
        "ImageHeight": 1024,
        "ImageWidth": 683,
        "MediaType": "image",
        "ObjectId": f"file-{n:04d}",
        "ObjectType": "file",
        "OwnerId": "****",
        "ProduceTime": f"2026-01-05T08:{n % 60:02d}:00+08:00",
        "ProjectName": PROJECT,
        "Size": 187674 + n,
        "URI": f"oss://bucket1/store-1/cam-1/{n}.jpg",
        "UpdateTime": "2026-01-05T10:41:19.336736388+08:00",
    }


def make_imm_data(n_clusters: int = 7, files_per_cluster: int = 3, n_independent: int = 2) -> tuple[list, list]:
    """Deterministic IMM records: ``(clusters, files)``.

    Cluster ``k`` (``Cluster-000k``) has ``files_per_cluster + k % 3`` images with one face each; the
    first image of every cluster also shows an independent face, and ``n_independent`` more images
    show only an independent face.
    """
    files: list[dict[str, Any]] = []
    clusters: list[dict[str, Any]] = []
    n = 0
    for k in range(n_clusters):
        cluster_id = f"Cluster-{k:04d}"
        members = []
        for j in range(files_per_cluster + k % 3):
            figures = [_figure(f"fig-{n:04d}-0", cluster_id, n)]
            if j == 0:
                figures.append(_figure(f"fig-{n:04d}-1", INDEPENDENT, n + 1))
            members.append(_file(n, figures))
            n += 1
        files.extend(members)
        cover = dict(members[0], Figures=[members[0]["Figures"][0]])
        clusters.append(
            {
                "AverageAge": 27.125 + k,
                "Cover": cover,
                "CreateTime": f"2026-01-0{1 + k % 9}T16:41:19.336825716+08:00",
                "DatasetName": DATASET,
                "FaceCount": len(members),
                "Gender": "female" if k % 2 else "male",
                "ImageCount": len(members),
                "MaxAge": 30.0 + k,
                "MinAge": 23.0,
                "ObjectId": cluster_id,
                "ObjectType": "figure-cluster",
                "OwnerId": "*****",
                "ProjectName": PROJECT,
                "UpdateTime": "2026-01-09T17:08:59.374781532+08:00",
                "VideoCount": 0,
            }
        )
    for _ in range(n_independent):
        files.append(_file(n, [_figure(f"fig-{n:04d}-0", INDEPENDENT, n)]))
        n += 1
    return clusters, files


# --------------------------------------------------------------------------- faults and hits


@dataclass
class Fault:
    """A canned answer for one operation and page (1-based; ``None`` = any page)."""

    action: str
    page: int | None
    status: int
    body: bytes
    headers: dict[str, str]
    times: int | None  # how many more times it fires; None = always


@dataclass
class Hit:
    """One request the server received."""

    action: str
    params: dict[str, str]
    headers: dict[str, str]
    page: int | None
    status: int = 0


@dataclass
class _State:
    clusters: list[dict[str, Any]]
    files: list[dict[str, Any]]
    access_keys: dict[str, str]
    security_tokens: dict[str, str]
    faults: list[Fault] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    request_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    plans: list[TaskPlan] = field(default_factory=list)
    task_ids: itertools.count = field(default_factory=lambda: itertools.count(1))


@dataclass
class TaskPlan:
    """How the next created task behaves: ``running_polls`` GetTask answers say Running, then it ends."""

    running_polls: int = 2
    code: str | None = None  # set: the task ends Failed with this code and ``message``
    message: str = ""


class ImmError(Exception):
    """Raised inside the handler; becomes an IMM-shaped error answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# --------------------------------------------------------------------------- signature (ACS3-HMAC-SHA256)


def _canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={quote(params[k], safe='~')}" for k in sorted(params))


def check_signature(method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str],
                    body: bytes, secrets: Mapping[str, str]) -> str:
    """Check an ``ACS3-HMAC-SHA256`` ``Authorization`` header; return the AccessKey id or raise :class:`ImmError`."""
    auth = headers.get("authorization", "")
    algorithm, _, rest = auth.partition(" ")
    if algorithm != "ACS3-HMAC-SHA256":
        raise ImmError(400, "MissingAuthorization", "The Authorization header is missing or not ACS3-HMAC-SHA256.")
    parts = dict(p.split("=", 1) for p in rest.split(","))
    key_id, signed, signature = parts.get("Credential", ""), parts.get("SignedHeaders", ""), parts.get("Signature", "")
    if key_id not in secrets:
        raise ImmError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    payload = hashlib.sha256(body).hexdigest()
    if headers.get("x-acs-content-sha256") != payload:
        raise ImmError(400, "InvalidContentSha256", "x-acs-content-sha256 does not match the body.")
    names = signed.split(";")
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in names)
    canonical = f"{method}\n{path or '/'}\n{_canonical_query(params)}\n{canonical_headers}\n{signed}\n{payload}"
    to_sign = f"ACS3-HMAC-SHA256\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(secrets[key_id].encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise ImmError(403, "SignatureDoesNotMatch", "The request signature does not conform to Aliyun standards.")
    return key_id


# --------------------------------------------------------------------------- operations


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ImmError(400, "InvalidArgument.NextToken", f"The NextToken {token!r} is invalid.") from exc


def _max_results(params: Mapping[str, str]) -> int:
    try:
        value = int(params.get("MaxResults", "100"))
    except ValueError as exc:
        raise ImmError(400, "InvalidArgument.MaxResults", "MaxResults must be an integer.") from exc
    if not 0 < value <= 100:
        raise ImmError(400, "InvalidArgument.MaxResults", "MaxResults must be between 1 and 100.")
    return value


def _check_dataset(params: Mapping[str, str]) -> None:
    for name, expected in (("ProjectName", PROJECT), ("DatasetName", DATASET)):
        if not params.get(name):
            raise ImmError(400, f"MissingParameter.{name}", f"{name} is mandatory for this action.")
        if params[name] != expected:
            raise ImmError(404, "ResourceNotFound", f"The {name} {params[name]!r} does not exist.")


def _field(record: Mapping[str, Any], path: str) -> list[Any]:
    """Values at a dotted IMM field path (``Figures.FigureClusterId`` walks into the list)."""
    values: list[Any] = [record]
    for part in path.split("."):
        nxt: list[Any] = []
        for v in values:
            v = v.get(part) if isinstance(v, Mapping) else None
            nxt.extend(v if isinstance(v, list) else [] if v is None else [v])
        values = nxt
    return values


def _matches(record: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    operation = query.get("Operation")
    if operation == "and":
        return all(_matches(record, q) for q in query.get("SubQueries", []))
    if operation == "or":
        return any(_matches(record, q) for q in query.get("SubQueries", []))
    if operation == "eq":
        return str(query.get("Value")) in {str(v) for v in _field(record, str(query.get("Field", "")))}
    raise ImmError(400, "InvalidArgument.Query", f"The fake server does not support Operation {operation!r}.")


def _page(records: list[dict[str, Any]], params: Mapping[str, str]) -> tuple[list, str, int]:
    offset, size = _offset(params.get("NextToken", "")), _max_results(params)
    chunk = records[offset : offset + size]
    token = _token(offset + size) if offset + size < len(records) else ""
    return chunk, token, offset // size + 1


def query_figure_clusters(state: _State, params: Mapping[str, str]) -> dict[str, Any]:
    """Answer ``QueryFigureClusters``."""
    _check_dataset(params)
    clusters = list(state.clusters)
    if params.get("Sort"):
        clusters.sort(key=lambda c: c.get(params["Sort"]) or 0, reverse=params.get("Order", "asc") == "desc")
    chunk, token, _ = _page(clusters, params)
    body: dict[str, Any] = {"FigureClusters": chunk, "NextToken": token}
    if params.get("WithTotalCount", "").lower() == "true":
        body["TotalCount"] = len(clusters)
    return body


def simple_query(state: _State, params: Mapping[str, str]) -> dict[str, Any]:
    """Answer ``SimpleQuery``."""
    _check_dataset(params)
    files = list(state.files)
    if params.get("Query"):
        try:
            query = json.loads(params["Query"])
        except ValueError as exc:
            raise ImmError(400, "InvalidArgument.Query", "Query is not valid JSON.") from exc
        files = [f for f in files if _matches(f, query)]
    chunk, token, _ = _page(files, params)
    return {"Aggregations": [], "Files": chunk, "NextToken": token, "TotalHits": len(files)}


_T0 = "2026-01-05T02:00:00.123456789Z"


def _json_param(params: Mapping[str, str], name: str) -> Any:
    if not params.get(name):
        return None
    try:
        return json.loads(params[name])
    except ValueError as exc:
        raise ImmError(400, f"InvalidArgument.{name}", f"{name} is not valid JSON.") from exc


def _check_project(params: Mapping[str, str]) -> None:
    if not params.get("ProjectName"):
        raise ImmError(400, "MissingParameter.ProjectName", "ProjectName is mandatory for this action.")
    if params["ProjectName"] != PROJECT:
        raise ImmError(404, "ResourceNotFound", f"The ProjectName {params['ProjectName']!r} does not exist.")


def create_figure_clustering_task(state: _State, params: Mapping[str, str]) -> dict[str, Any]:
    """Answer ``CreateFigureClusteringTask``: start a task that follows the next :class:`TaskPlan`."""
    _check_dataset(params)
    user_data = params.get("UserData")
    if user_data is not None and len(user_data.encode()) > 2048:
        raise ImmError(400, "InvalidArgument.UserData", "UserData exceeds 2048 bytes.")
    tags = _json_param(params, "Tags")
    notification = _json_param(params, "Notification")
    with state.lock:
        n = next(state.task_ids)
        plan = state.plans.pop(0) if state.plans else TaskPlan()
    task_id = f"CreateFigureClusteringTask-00000000-0000-4000-8000-{n:012d}"
    definition = {"ProjectName": PROJECT, "DatasetName": params["DatasetName"]}
    if notification:
        definition["Notification"] = notification
    state.tasks[task_id] = {
        "TaskId": task_id, "TaskType": "FigureClustering", "Status": "Running", "Progress": 0,
        "StartTime": _T0, "UserData": user_data, "Tags": tags, "EventId": f"EVT-{n:04d}",
        "TaskRequestDefinition": json.dumps(definition), "_plan": plan, "_polls": 0,
    }
    return {"TaskId": task_id, "EventId": f"EVT-{n:04d}"}


def _public(task: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in task.items() if not k.startswith("_") and v is not None}


def get_task(state: _State, params: Mapping[str, str]) -> dict[str, Any]:
    """Answer ``GetTask``: Running for the planned number of polls, then Succeeded or Failed."""
    _check_project(params)
    for name in ("TaskId", "TaskType"):
        if not params.get(name):
            raise ImmError(400, f"MissingParameter.{name}", f"{name} is mandatory for this action.")
    task = state.tasks.get(params["TaskId"])
    if task is None or task["TaskType"] != params["TaskType"]:
        raise ImmError(404, "ResourceNotFound", f"The task {params['TaskId']!r} does not exist.")
    with state.lock:
        task["_polls"] += 1
        plan: TaskPlan = task["_plan"]
        if task["Status"] == "Running" and task["_polls"] > plan.running_polls:
            task["EndTime"] = "2026-01-05T02:00:09.5Z"
            if plan.code:
                task.update(Status="Failed", Code=plan.code, Message=plan.message)
            else:
                task.update(Status="Succeeded", Progress=100)
        elif task["Status"] == "Running":
            task["Progress"] = min(99, 100 * task["_polls"] // (plan.running_polls + 1))
    return {**_public(task), "ProjectName": PROJECT}


def list_tasks(state: _State, params: Mapping[str, str]) -> dict[str, Any]:
    """Answer ``ListTasks``: every task, filtered and paged."""
    _check_project(params)
    types = _json_param(params, "TaskTypes")
    tasks = [_public(t) for t in state.tasks.values()]
    if types:
        tasks = [t for t in tasks if t.get("TaskType") in types]
    if params.get("Status"):
        tasks = [t for t in tasks if t.get("Status") == params["Status"]]
    window = _json_param(params, "StartTimeRange") or {}
    if window:  # RFC 3339 UTC times compare as text
        tasks = [t for t in tasks if window.get("Start", "") <= t["StartTime"] <= window.get("End", "~")]
    if params.get("TagSelector"):
        key, _, value = params["TagSelector"].partition("=")
        tasks = [t for t in tasks if str((t.get("Tags") or {}).get(key)) == value]
    for t in tasks:
        t.pop("EventId", None)  # TaskInfo has no EventId
    chunk, token, _ = _page(tasks, params)
    return {"ProjectName": PROJECT, "Tasks": chunk, "NextToken": token, "MaxResults": _max_results(params)}


OPERATIONS = {
    "QueryFigureClusters": query_figure_clusters,
    "SimpleQuery": simple_query,
    "CreateFigureClusteringTask": create_figure_clustering_task,
    "GetTask": get_task,
    "ListTasks": list_tasks,
}


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeIMM/1.0"
    state: _State  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep tests quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._answer()

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        self._answer()

    def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _answer(self) -> None:
        state = self.state
        request_id = f"REQ-{next(state.request_ids):06d}"
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if body and "form-urlencoded" in self.headers.get("Content-Type", ""):
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        action = params.get("Action") or headers.get("x-acs-action", "")
        hit = Hit(action, params, headers, None)
        with state.lock:
            state.hits.append(hit)
        try:
            check_signature(self.command, url.path, dict(parse_qsl(url.query, keep_blank_values=True)), headers, body,
                            state.access_keys)
            key_id = headers["authorization"].split("Credential=", 1)[1].split(",", 1)[0]
            token = state.security_tokens.get(key_id)
            if token is not None and headers.get("x-acs-security-token") != token:
                raise ImmError(403, "InvalidSecurityToken.Mismatch", "The security token does not match.")
            if (params.get("Version") or headers.get("x-acs-version")) != API_VERSION:
                raise ImmError(400, "InvalidVersion", "Specified parameter Version is not valid.")
            if action not in OPERATIONS:
                raise ImmError(404, "InvalidAction.NotFound", f"Specified api {action!r} is not found.")
            offset, size = _offset(params.get("NextToken", "")), _max_results(params)
            hit.page = offset // size + 1
            fault = self._fault(action, hit.page)
            if fault is not None:
                hit.status = fault.status
                self._send(fault.status, fault.body, fault.headers)
                return
            answer = OPERATIONS[action](state, params)
        except ImmError as err:
            hit.status = err.status
            payload = {"Code": err.code, "Message": err.message, "RequestId": request_id, "HostId": "127.0.0.1"}
            self._send(err.status, json.dumps(payload).encode())
            return
        answer["RequestId"] = request_id
        hit.status = 200
        self._send(200, json.dumps(answer).encode())

    def _fault(self, action: str, page: int) -> Fault | None:
        with self.state.lock:
            for fault in self.state.faults:
                if fault.action == action and fault.page in (None, page) and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None


class FakeImm:
    """A fake IMM endpoint on ``127.0.0.1`` (ephemeral port) serving the SDK's RPC calls.

    Parameters
    ----------
    clusters, files : list of dict
        IMM records to serve (see :func:`make_imm_data`).
    access_keys : mapping
        AccessKey id -> secret accepted by the signature check.
    security_tokens : mapping, optional
        AccessKey id -> STS token that requests with that key must carry.
    """

    def __init__(self, clusters: list[dict], files: list[dict], *, access_keys: Mapping[str, str],
                 security_tokens: Mapping[str, str] | None = None) -> None:
        self.state = _State(clusters, files, dict(access_keys), dict(security_tokens or {}))
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-imm", daemon=True)

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``, what the SDK's ``Config(endpoint=...)`` takes (with ``protocol="http"``)."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def hits(self) -> list[Hit]:
        """Every request received so far (oldest first)."""
        return self.state.hits

    def count(self, action: str | None = None) -> int:
        """How many requests (for ``action``, or all) were received."""
        return sum(1 for h in self.state.hits if action is None or h.action == action)

    def inject(self, action: str, *, page: int | None = None, status: int = 200, body: Any = b"",
               headers: Mapping[str, str] | None = None, times: int | None = 1) -> None:
        """Answer ``action`` at ``page`` (1-based; None = any) with ``status`` and ``body`` (bytes, or JSON-able)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with self.state.lock:
            self.state.faults.append(Fault(action, page, status, raw, dict(headers or {}), times))

    def reset(self) -> None:
        """Forget the recorded hits, the injected faults, the tasks and their plans."""
        with self.state.lock:
            self.state.faults.clear()
            self.state.hits.clear()
            self.state.tasks.clear()
            self.state.plans.clear()
            self.state.task_ids = itertools.count(1)

    def plan_task(self, running_polls: int = 2, *, code: str | None = None, message: str = "") -> None:
        """Plan the next created task: Running for ``running_polls`` polls, then Failed (``code``) or Succeeded."""
        with self.state.lock:
            self.state.plans.append(TaskPlan(running_polls, code, message))

    def add_task(self, task_id: str, *, status: str = "Succeeded", task_type: str = "FigureClustering",
                 tags: Mapping[str, Any] | None = None, start_time: str = _T0) -> None:
        """Add a finished (or running) task record, for ListTasks."""
        with self.state.lock:
            self.state.tasks[task_id] = {
                "TaskId": task_id, "TaskType": task_type, "Status": status, "StartTime": start_time,
                "Progress": 100 if status == "Succeeded" else 0, "Tags": dict(tags) if tags else None,
                "_plan": TaskPlan(0), "_polls": 0,
            }

    def start(self) -> FakeImm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeImm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: IMM's answer when it throttles a caller (HTTP 400 with this body).
THROTTLED = {"Code": "Throttling.User", "Message": "Request was denied due to user flow control.", "RequestId": "T-1"}
_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@contextmanager
def serving(clusters: list, files: list, **kwargs: Any) -> Iterator[FakeImm]:
    """A started :class:`FakeImm` with the proxy variables unset (the SDK would send 127.0.0.1 to a proxy)."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        for name in _PROXY_VARS:
            mp.delenv(name, raising=False)
        with FakeImm(clusters, files, **kwargs) as srv:
            yield srv


def fresh(srv: FakeImm) -> Iterator[None]:
    """Body of an autouse fixture: the server's data, faults and counters reset around each test."""
    srv.reset()
    yield
    srv.reset()


def client_options(srv: FakeImm, key_id: str, secret: str, **extra: Any) -> dict[str, Any]:
    """Arguments of the live functions for ``srv``: explicit credentials, a tiny backoff; ``extra`` wins."""
    base = dict(
        endpoint=f"http://{srv.endpoint}",
        region_id="cn-hangzhou",
        credentials={"access_key_id": key_id, "access_key_secret": secret},
        backoff=0.001,
        max_backoff=0.01,
    )
    return {**base, **extra}
