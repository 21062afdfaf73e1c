"""Task records for local clustering runs, in IMM's shape, kept with a :class:`ClusterState`.

Every local run (:meth:`ClusterState.from_figures`, :meth:`ClusterState.update`) is recorded the way
IMM records a ``CreateFigureClusteringTask``: a ``TaskId`` of the form
``CreateFigureClusteringTask-<uuid>``, ``TaskType`` ``FigureClustering``, ``Status``, ``StartTime``,
``EndTime``, ``Progress``, the request definition (project and dataset), plus ``Counts`` (faces new,
skipped, joined, new clusters, independent). Records are kept for a retention period (7 days by
default, as IMM keeps its task records) and saved with the state as a ``ListTasks``-shaped page
(``tasks.json``), so :func:`imm_analysis.load_tasks` reads a saved state's runs like IMM's.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from imm_analysis.io.atomic import atomic_write_bytes
from imm_analysis.io.tasks import load_tasks

__all__ = ["DEFAULT_RETENTION", "TASK_PREFIX", "TaskLog", "COUNT_COLUMNS"]

TASK_PREFIX = "CreateFigureClusteringTask-"
#: IMM keeps task records for 7 days.
DEFAULT_RETENTION = pd.Timedelta(days=7)
#: Count columns :meth:`TaskLog.frame` adds (from ``ClusterState.last_update``).
COUNT_COLUMNS = ("new_faces", "skipped", "joined", "new_clusters", "independent", "faces", "clusters")
FILE_NAME = "tasks.json"


def _iso(ts: pd.Timestamp) -> str:
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{ts.nanosecond:03d}Z"


class TaskLog:
    """The task records of a clustering state's local runs.

    Parameters
    ----------
    records : list of dict, optional
        IMM-shaped task records (``GetTask`` fields plus ``Counts``).
    retention : pandas.Timedelta, str or float, default=7 days
        Records whose run started longer ago are dropped; a number is days.

    Examples
    --------
    >>> log = TaskLog()
    >>> t0 = pd.Timestamp("2026-01-05T10:00:00Z")
    >>> rec = log.record(t0, t0 + pd.Timedelta(seconds=2), project_name="p", dataset_name="d",
    ...                  counts={"new_faces": 10, "new_clusters": 2})
    >>> rec["TaskId"].startswith("CreateFigureClusteringTask-")
    True
    >>> log.frame(now=t0)[["status", "dataset_name", "new_faces", "new_clusters"]]
          status dataset_name  new_faces  new_clusters
    0  Succeeded            d         10             2
    >>> len(log.frame(now=t0 + pd.Timedelta(days=8)))
    0
    """

    def __init__(self, records: list[dict[str, Any]] | None = None, retention: Any = DEFAULT_RETENTION) -> None:
        self.records = list(records or [])
        self.retention = retention

    @property
    def retention(self) -> pd.Timedelta:
        """How long records are kept (default 7 days, as IMM); settable (a number is days)."""
        return self._retention

    @retention.setter
    def retention(self, value: Any) -> None:
        td = pd.Timedelta(days=value) if isinstance(value, (int, float)) else pd.Timedelta(value)
        if pd.isna(td) or td <= pd.Timedelta(0):
            raise ValueError(f"retention must be a positive duration, got {value!r}")
        self._retention = td

    def record(self, started: pd.Timestamp, ended: pd.Timestamp, *, project_name: str | None = None,
               dataset_name: str | None = None, counts: Mapping[str, int] | None = None,
               status: str = "Succeeded", code: str | None = None, message: str | None = None) -> dict[str, Any]:
        """Add the record of one run; returns it."""
        definition = {"ProjectName": project_name, "DatasetName": dataset_name}
        rec: dict[str, Any] = {
            "TaskId": f"{TASK_PREFIX}{uuid.uuid4()}",
            "TaskType": "FigureClustering",
            "Status": status,
            "Progress": 100 if status == "Succeeded" else 0,
            "StartTime": _iso(pd.Timestamp(started)),
            "EndTime": _iso(pd.Timestamp(ended)),
            "TaskRequestDefinition": json.dumps({k: v for k, v in definition.items() if v is not None}),
            "Counts": {k: int(v) for k, v in (counts or {}).items()},
        }
        if project_name:
            rec["ProjectName"] = project_name
        if code:
            rec["Code"], rec["Message"] = code, message or ""
        self.records.append(rec)
        return rec

    def record_run(self, state: Any, started: pd.Timestamp, counts: Mapping[str, int]) -> Any:
        """Record a finished run of ``state`` (a ClusterState) that started at ``started``; returns ``state``."""
        counts = {**counts, "faces": len(state.figures), "clusters": len(state.clusters)}
        self.record(started, pd.Timestamp.now(tz="UTC"), project_name=state.params.get("project_name"),
                    dataset_name=state.params.get("dataset_name"), counts=counts)
        return state

    def kept(self, now: pd.Timestamp | None = None) -> list[dict[str, Any]]:
        """The records within the retention period at ``now`` (default: the current time; a naive time is UTC)."""
        now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
        if now.tzinfo is None:  # as the records' times (_iso): a naive time is UTC
            now = now.tz_localize("UTC")
        cutoff = now - self.retention
        return [r for r in self.records if pd.Timestamp(r["StartTime"]) >= cutoff]

    def prune(self, now: pd.Timestamp | None = None) -> None:
        """Forget the records past the retention period."""
        self.records = self.kept(now)

    def frame(self, now: pd.Timestamp | None = None) -> pd.DataFrame:
        """The kept records as a tasks frame (:func:`imm_analysis.load_tasks`) plus the count columns."""
        kept = self.kept(now)
        frame = load_tasks(kept)
        counts = pd.DataFrame([r.get("Counts") or {} for r in kept], columns=list(COUNT_COLUMNS))
        counts.index = pd.Index([r["TaskId"] for r in kept])
        aligned = counts.reindex(frame["task_id"].astype(str).to_numpy())
        for c in COUNT_COLUMNS:
            frame[c] = pd.array(aligned[c].to_numpy(), dtype="Int64") if len(frame) else pd.array([], dtype="Int64")
        return frame

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the kept records to ``folder/tasks.json`` (a ``ListTasks`` page) atomically.

        Examples
        --------
        >>> import tempfile
        >>> from imm_analysis import load_tasks
        >>> log = TaskLog(retention="30 days")
        >>> _ = log.record(pd.Timestamp.now(tz="UTC"), pd.Timestamp.now(tz="UTC"), dataset_name="d")
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = log.save(folder)
        ...     print(TaskLog.load(folder), len(load_tasks(path)))
        TaskLog(1 runs, retention 30 days 00:00:00) 1
        """
        path = Path(folder) / FILE_NAME
        atomic_write_bytes(path, self.to_bytes())
        return path

    def to_bytes(self) -> bytes:
        """The kept records as a ``ListTasks`` page, JSON-encoded (what :meth:`save` writes)."""
        self.prune()
        page = {"Tasks": self.records, "NextToken": "", "RetentionSeconds": self.retention.total_seconds()}
        return json.dumps(page, indent=1).encode()

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TaskLog:
        """Read ``folder/tasks.json`` (an empty log when the state was saved before task records existed)."""
        path = Path(folder) / FILE_NAME
        if not path.exists():
            return cls()
        load_tasks(path)  # checks the records (IMMFormatError names the file, the record and the field)
        page = json.loads(path.read_text())
        return cls(page.get("Tasks") or [], pd.Timedelta(seconds=page.get("RetentionSeconds") or 7 * 86400))

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"TaskLog({len(self.records)} runs, retention {self.retention})"
