"""load_tasks on every task-record shape IMM documents, from every kind of source, and on bad input."""

from __future__ import annotations

import base64
import gzip
import json

import pandas as pd
import pytest

from imm_analysis import load_tasks
from imm_analysis.io import IMMFormatError
from imm_analysis.io.tasks import TASK_COLUMNS, TASK_STATUSES

DEFINITION = json.dumps({"ProjectName": "immtest", "DatasetName": "dataset001"})
GET_TASK = {
    "RequestId": "B7C5B6A2-1", "EventId": "0ED-1Bz8z71k5TtsUejT4UJ16****", "ProjectName": "immtest",
    "TaskId": "CreateFigureClusteringTask-a1", "TaskType": "FigureClustering", "Status": "Running", "Progress": 40,
    "StartTime": "2021-12-24T03:01:41.662060377Z", "UserData": '{"ID": "user1"}', "Tags": {"test": "val1"},
    "TaskRequestDefinition": DEFINITION,
}
LIST_PAGE = {
    "ProjectName": "immtest", "RequestId": "R-2", "NextToken": "", "MaxResults": 100,
    "Tasks": [
        {"TaskId": "CreateFigureClusteringTask-b2", "TaskType": "FigureClustering", "Status": "Failed",
         "Code": "ResourceNotFound", "Message": "The specified resource dataset is not found.",
         "StartTime": "2021-12-24T03:00:00+08:00", "EndTime": "2021-12-24T03:00:02.5+08:00", "Progress": 0},
        {"TaskId": "CreateFigureClusteringTask-c3", "TaskType": "FigureClustering", "Status": "Succeeded",
         "StartTime": "2021-12-25T01:00:00Z", "EndTime": "2021-12-25T01:10:00Z", "Progress": 100,
         "TaskRequestDefinition": DEFINITION},
    ],
}
CREATED = {"RequestId": "1B3D5E0A-D8B8", "TaskId": "CreateFigureClusteringTask-d4", "EventId": "0ED-d4"}
NOTIFICATION = {
    "ProjectName": "immtest", "DatasetName": "dataset001", "TaskId": "CreateFigureClusteringTask-a1",
    "TaskType": "FigureClustering", "Status": "Succeeded", "StartTime": "2021-12-24T03:01:41.662060377Z",
    "EndTime": "2021-12-24T03:01:49.480109219Z", "UserData": '{"ID": "user1"}', "RequestId": "N-1",
}
MNS = {"TopicOwner": "1234", "TopicName": "imm-topic", "Subscriber": "1234", "SubscriptionName": "s",
       "MessageId": "m-1", "MessageMD5": "x", "PublishTime": 1640314909000, "Message": json.dumps(NOTIFICATION)}


def test_get_task_response():
    frame = load_tasks(GET_TASK)
    assert list(frame.columns) == list(TASK_COLUMNS)
    row = frame.iloc[0]
    assert row["task_id"] == "CreateFigureClusteringTask-a1" and row["status"] == "Running" and row["progress"] == 40
    assert row["dataset_name"] == "dataset001"  # from the request definition
    assert row["tags"] == {"test": "val1"} and row["event_id"].startswith("0ED-")
    assert row["start_time"] == pd.Timestamp("2021-12-24T03:01:41.662060377Z")
    assert pd.isna(row["end_time"]) and pd.isna(row["duration"])


def test_list_tasks_page_with_offsets_and_durations():
    frame = load_tasks(LIST_PAGE)
    assert frame["task_id"].tolist() == ["CreateFigureClusteringTask-b2", "CreateFigureClusteringTask-c3"]
    assert str(frame["start_time"].dtype) == "datetime64[ns, UTC]"
    assert frame["start_time"].iloc[0] == pd.Timestamp("2021-12-23T19:00:00Z")
    assert frame["duration"].tolist() == [pd.Timedelta(seconds=2.5), pd.Timedelta(minutes=10)]
    assert frame["code"].iloc[0] == "ResourceNotFound"
    assert (frame["project_name"] == "immtest").all()  # from the page
    assert frame["status"].dtype == pd.CategoricalDtype(list(TASK_STATUSES))


def test_creation_response_then_notification_merge_into_one_row():
    envelope = dict(MNS, Message=json.dumps(dict(NOTIFICATION, TaskId=CREATED["TaskId"])))
    frame = load_tasks([CREATED, envelope])
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["status"] == "Succeeded" and row["event_id"] == "0ED-d4" and row["dataset_name"] == "dataset001"
    assert row["duration"] == pd.Timestamp(NOTIFICATION["EndTime"]) - pd.Timestamp(NOTIFICATION["StartTime"])


def test_the_most_advanced_record_wins_whatever_the_order():
    for records in ([GET_TASK, NOTIFICATION], [NOTIFICATION, GET_TASK]):
        row = load_tasks(records).iloc[0]
        assert row["status"] == "Succeeded" and row["tags"] == {"test": "val1"}  # tags only in GetTask


def test_envelopes_and_wrappers():
    queue = {"MessageId": "m", "ReceiptHandle": "h",
             "MessageBody": base64.b64encode(json.dumps(NOTIFICATION).encode()).decode()}
    event = {"specversion": "1.0", "source": "acs.imm", "type": "imm:Task:Succeeded", "data": NOTIFICATION}
    sdk = {"headers": {}, "statusCode": 200, "body": LIST_PAGE}
    for value in (MNS, queue, event, sdk):
        assert len(load_tasks(value)) in (1, 2)
    assert load_tasks(event)["status"].iloc[0] == "Succeeded"


def test_files_folders_globs_jsonl_gz(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(GET_TASK))
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(x) for x in (LIST_PAGE, CREATED)) + "\n")
    (tmp_path / "c.json.gz").write_bytes(gzip.compress(json.dumps(MNS).encode()))
    folder = load_tasks(tmp_path)
    assert sorted(folder["task_id"]) == ["CreateFigureClusteringTask-a1", "CreateFigureClusteringTask-b2",
                                         "CreateFigureClusteringTask-c3", "CreateFigureClusteringTask-d4"]
    assert folder.set_index("task_id").loc["CreateFigureClusteringTask-a1", "status"] == "Succeeded"
    pd.testing.assert_frame_equal(load_tasks(str(tmp_path / "*.json*")), folder)
    assert len(load_tasks(tmp_path / "b.jsonl")) == 3


def test_empty_input_is_a_typed_empty_frame():
    for empty in ([], {"Tasks": []}, {"ProjectName": "p", "Tasks": None, "RequestId": "r"}):
        frame = load_tasks(empty)
        assert len(frame) == 0 and list(frame.columns) == list(TASK_COLUMNS)
        assert str(frame["start_time"].dtype) == "datetime64[ns, UTC]"
        assert str(frame["duration"].dtype) == "timedelta64[ns]"


def test_a_record_of_the_wrong_type_names_file_record_and_field(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(CREATED) + "\n" + json.dumps({"FigureClusters": []}) + "\n")
    with pytest.raises(IMMFormatError, match=r"tasks.jsonl, line 2: not a task record \(keys: FigureClusters\)"):
        load_tasks(path)
    bad_progress = {"Tasks": [LIST_PAGE["Tasks"][0], dict(LIST_PAGE["Tasks"][1], Progress="ten")]}
    with pytest.raises(IMMFormatError, match=r"<dict>, document, Tasks\[1\], field 'Progress'"):
        load_tasks(bad_progress)
    with pytest.raises(IMMFormatError, match="field 'Status'"):
        load_tasks(dict(GET_TASK, Status="Done"))
    with pytest.raises(IMMFormatError, match="field 'StartTime'"):
        load_tasks(dict(GET_TASK, StartTime="yesterday"))
    with pytest.raises(IMMFormatError, match=r"Tasks\[0\]: expected a TaskInfo object, got str"):
        load_tasks({"Tasks": ["CreateFigureClusteringTask-x"]})


def test_a_notification_whose_body_is_not_json():
    bad = dict(MNS, Message="<xml>not json</xml>")
    with pytest.raises(IMMFormatError, match=r"field 'Message': the MNS message body is not JSON"):
        load_tasks(bad)
    frame = load_tasks([bad, GET_TASK, dict(GET_TASK, TaskId=7)], errors="collect")
    assert frame["task_id"].tolist() == ["CreateFigureClusteringTask-a1"]
    errors = frame.attrs["errors"]
    assert [(e["record"], e["field"]) for e in errors] == [("item 0", "Message"), ("item 2", "TaskId")]


def _wrapped(wrap: str, message: dict) -> dict:
    text = json.dumps(message)
    return {"mns": dict(MNS, Message=text),
            "queue": {"MessageId": "m", "ReceiptHandle": "h", "MessageBody": base64.b64encode(text.encode()).decode()},
            "event": {"specversion": "1.0", "source": "acs.imm", "data": text}}[wrap]


@pytest.mark.parametrize("wrap", ["mns", "queue", "event"])
def test_a_message_parsed_from_envelope_text_obeys_the_depth_limit(wrap):
    """The text inside an envelope is parsed after the document's depth check: it gets one of its own."""
    from imm_analysis.io import limits

    def nested(levels: int) -> object:
        deep: object = 1
        for _ in range(levels):
            deep = {"k": deep}
        return deep

    value = _wrapped(wrap, dict(NOTIFICATION, TaskRequestDefinition=nested(limits.MAX_DEPTH + 5)))
    with pytest.raises(IMMFormatError, match="nested deeper than"):
        load_tasks(value)
    frame = load_tasks([value, GET_TASK], errors="collect")
    assert frame["task_id"].tolist() == ["CreateFigureClusteringTask-a1"]
    (error,) = frame.attrs["errors"]
    assert error["record"].startswith("item 0, ") and error["field"].startswith("TaskRequestDefinition.k.k")
    ok = load_tasks(_wrapped(wrap, dict(NOTIFICATION, TaskRequestDefinition=nested(3))))  # within the limit
    assert ok["request_definition"].iloc[0] == nested(3) and ok["status"].iloc[0] == "Succeeded"


@pytest.mark.parametrize("key", ["TaskRequestDefinition", "Tags"])
def test_json_text_fields_obey_the_depth_limit(key):
    """``TaskRequestDefinition`` and ``Tags`` sent as JSON text are held to MAX_DEPTH once parsed."""
    from imm_analysis.io import limits

    deep: object = 1
    for _ in range(limits.MAX_DEPTH + 5):
        deep = {"k": deep}
    bad = dict(GET_TASK, TaskId="deep", **{key: json.dumps(deep)})
    with pytest.raises(IMMFormatError, match=rf"field '{key}\.k\.k.*nested deeper than"):
        load_tasks(bad)
    frame = load_tasks([bad, GET_TASK], errors="collect")
    assert frame["task_id"].tolist() == [GET_TASK["TaskId"]] and len(frame.attrs["errors"]) == 1
    ok = load_tasks(dict(GET_TASK, **{key: json.dumps({"k": {"k": "v"}})}))  # within the limit: parsed as before
    column = {"TaskRequestDefinition": "request_definition", "Tags": "tags"}[key]
    assert ok[column].iloc[0] == {"k": {"k": "v"}}
