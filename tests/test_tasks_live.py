"""Live task functions (create, wait, get, list) with the real IMM SDK against the signing-checking fake IMM."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

pytest.importorskip("alibabacloud_imm20200930", reason="the optional IMM SDK extra is not installed")

from imm_server import DATASET, PROJECT, THROTTLED, FakeImm, client_options, fresh, serving  # noqa: E402

from imm_analysis import imm  # noqa: E402
from imm_analysis.io.tasks import TASK_COLUMNS  # noqa: E402

KEY_ID = "LTAI-task-key"
SECRET = "S3cr3t-tasks-never-log-me-42"


@pytest.fixture(scope="module")
def server():
    with serving([], [], access_keys={KEY_ID: SECRET}) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fresh(server):
    yield from fresh(server)


def opts(srv: FakeImm, **extra):
    return client_options(srv, KEY_ID, SECRET, **extra)


def test_create_and_wait_running_then_succeeded(server, caplog):
    server.plan_task(running_polls=3)
    caplog.set_level(logging.DEBUG)
    task = imm.create_figure_clustering_task(PROJECT, DATASET, user_data={"run": "nightly"}, tags={"run": "n1"},
                                             notification={"MNS": {"TopicName": "imm-events"}}, wait=True,
                                             poll=0.001, progress=False, **opts(server))
    assert list(task.columns) == list(TASK_COLUMNS)
    assert len(task) == 1
    row = task.iloc[0]
    assert row["task_id"].startswith("CreateFigureClusteringTask-")
    assert row["status"] == "Succeeded" and row["progress"] == 100
    assert row["event_id"] == "EVT-0001" and row["dataset_name"] == DATASET and row["project_name"] == PROJECT
    assert json.loads(row["user_data"]) == {"run": "nightly"} and row["tags"] == {"run": "n1"}
    assert row["duration"] == pd.Timedelta(seconds=9.5) - pd.Timedelta(microseconds=123456.789).round("ns")
    assert server.count("CreateFigureClusteringTask") == 1
    assert server.count("GetTask") == 4  # three Running answers, then Succeeded
    create = next(h for h in server.hits if h.action == "CreateFigureClusteringTask")
    assert json.loads(create.params["Notification"]) == {"MNS": {"TopicName": "imm-events"}}
    assert all(h.status == 200 for h in server.hits)
    assert SECRET not in caplog.text


def test_failed_task_returns_code_and_message(server):
    server.plan_task(running_polls=1, code="InvalidDataset.NoFiles", message="The dataset has no indexed files.")
    task = imm.create_figure_clustering_task(PROJECT, DATASET, wait=True, poll=0.001, progress=False, **opts(server))
    row = task.iloc[0]
    assert row["status"] == "Failed"
    assert row["code"] == "InvalidDataset.NoFiles" and row["message"] == "The dataset has no indexed files."


def test_no_wait_returns_the_creation_record(server):
    task = imm.create_figure_clustering_task(PROJECT, DATASET, progress=False, **opts(server))
    assert pd.isna(task["status"].iloc[0]) and task["event_id"].iloc[0] == "EVT-0001"
    assert server.count("GetTask") == 0
    got = imm.get_task(PROJECT, task["task_id"].iloc[0], **opts(server))
    assert got["status"].iloc[0] == "Running" and got["request_id"].iloc[0].startswith("REQ-")


def test_throttled_poll_is_retried(server):
    server.plan_task(running_polls=1)
    server.inject("GetTask", status=429, body=THROTTLED, times=1)
    task = imm.create_figure_clustering_task(PROJECT, DATASET, wait=True, poll=0.001, progress=False, **opts(server))
    assert task["status"].iloc[0] == "Succeeded"
    statuses = [h.status for h in server.hits if h.action == "GetTask"]
    assert statuses == [429, 200, 200]


def test_timeout_names_the_task(server):
    server.plan_task(running_polls=10**6)
    with pytest.raises(imm.ImmTaskTimeout, match=r"CreateFigureClusteringTask-\S+ did not end within 0.05 s") as err:
        imm.create_figure_clustering_task(PROJECT, DATASET, wait=True, timeout=0.05, poll=0.01, progress=False,
                                          **opts(server))
    assert err.value.status == "Running"


def test_user_data_over_2048_bytes_is_refused_before_any_call(server):
    with pytest.raises(ValueError, match="2049 bytes"):
        imm.create_figure_clustering_task(PROJECT, DATASET, user_data="é" * 1024 + "x", progress=False, **opts(server))
    assert server.count() == 0


def test_wrong_secret_is_a_signature_error(server):
    bad = opts(server, credentials={"access_key_id": KEY_ID, "access_key_secret": "wrong"}, max_retries=0)
    with pytest.raises(imm.ImmApiError, match="SignatureDoesNotMatch") as err:
        imm.get_task(PROJECT, "x", **bad)
    assert "wrong" not in str(err.value)


def test_unknown_task_is_an_api_error(server):
    with pytest.raises(imm.ImmApiError, match="ResourceNotFound"):
        imm.get_task(PROJECT, "no-such-task", **opts(server))


def test_list_tasks_follows_next_token(server):
    for i in range(7):
        server.add_task(f"task-{i}", status="Failed" if i % 3 == 0 else "Succeeded", tags={"batch": str(i % 2)})
    server.add_task("other", task_type="FileCompression")
    frame = imm.list_tasks(PROJECT, task_types=["FigureClustering"], max_results=3, progress=False, **opts(server))
    assert sorted(frame["task_id"]) == [f"task-{i}" for i in range(7)]
    assert frame.attrs["imm"]["pages"] == 3 and frame.attrs["imm"]["complete"]
    assert (frame["project_name"] == PROJECT).all()
    failed = imm.list_tasks(PROJECT, status="Failed", max_results=2, progress=False, **opts(server))
    assert sorted(failed["task_id"]) == ["task-0", "task-3", "task-6"]
    tagged = imm.list_tasks(PROJECT, tag_selector="batch=1", progress=False, **opts(server))
    assert sorted(tagged["task_id"]) == ["task-1", "task-3", "task-5"]
    first = imm.list_tasks(PROJECT, max_results=2, max_pages=1, progress=False, **opts(server))
    assert len(first) == 2 and not first.attrs["imm"]["complete"]


def test_list_tasks_start_time_range(server):
    for day in (3, 4, 5, 6):
        server.add_task(f"day-{day}", start_time=f"2026-01-0{day}T08:00:00.000000000Z")
    frame = imm.list_tasks(PROJECT, start_time_range=(pd.Timestamp("2026-01-04 12:00", tz="Asia/Shanghai"), None),
                           progress=False, **opts(server))
    assert sorted(frame["task_id"]) == ["day-4", "day-5", "day-6"]  # 12:00 +08:00 is 04:00 UTC
    hit = next(h for h in server.hits if h.action == "ListTasks")
    assert json.loads(hit.params["StartTimeRange"]) == {"Start": "2026-01-04T04:00:00.000000Z"}
    frame = imm.list_tasks(PROJECT, start_time_range=("2026-01-04", "2026-01-05T23:00:00Z"), progress=False,
                           **opts(server))
    assert sorted(frame["task_id"]) == ["day-4", "day-5"]


def test_list_tasks_retries_a_throttled_page(server):
    for i in range(4):
        server.add_task(f"t{i}")
    server.inject("ListTasks", page=2, status=429, body=THROTTLED, times=1)
    frame = imm.list_tasks(PROJECT, max_results=2, progress=False, **opts(server))
    assert len(frame) == 4 and frame.attrs["imm"]["retries"] == 1


def test_bad_arguments():
    with pytest.raises(TypeError, match="unexpected keyword"):
        imm.get_task(PROJECT, "t", regoin_id="cn-hangzhou")
    with pytest.raises(ValueError, match="status"):
        imm.list_tasks(PROJECT, status="Done", region_id="cn-hangzhou")
    # the paging arguments are checked as fetch_clusters / fetch_files check them, before any call
    for bad, match in (({"max_results": 0}, "max_results must be between 1 and 100 \\(IMM's limit\\)"),
                       ({"max_pages": 0}, "max_pages must be >= 1"), ({"errors": "skip"}, "errors must be")):
        with pytest.raises(ValueError, match=match):
            imm.list_tasks(PROJECT, region_id="cn-hangzhou", **bad)
        with pytest.raises(ValueError, match=match):
            imm.fetch_clusters(PROJECT, DATASET, region_id="cn-hangzhou", **bad)
