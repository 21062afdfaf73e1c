"""Live fetching (:mod:`imm_analysis.imm`) end to end: the real IMM SDK against a fake IMM on 127.0.0.1.

The server (``tests/imm_server.py``) checks the SDK's ACS3-HMAC-SHA256 signature, pages by
``MaxResults`` / ``NextToken`` and filters ``SimpleQuery`` by its ``Query``; faults (throttling,
5xx, 4xx, malformed bodies) are injected per page and every request is counted.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import subprocess
import sys
import textwrap
import time
import traceback
import warnings
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("alibabacloud_imm20200930", reason="the optional IMM SDK extra is not installed")

from imm_server import (  # noqa: E402
    DATASET,
    INDEPENDENT,
    PROJECT,
    THROTTLED,
    FakeImm,
    client_options,
    fresh,
    make_imm_data,
    serving,
)

from imm_analysis import imm  # noqa: E402

KEY_ID = "LTAI-test-key-id"
SECRET = "S3cr3t-never-log-me-7f1c2e"
TOKEN = "STS-token-never-log-me-99a0b"
CLUSTERS, FILES = make_imm_data(n_clusters=7, files_per_cluster=3, n_independent=2)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server():
    with serving(CLUSTERS, FILES, access_keys={KEY_ID: SECRET}) as srv:
        yield srv


@pytest.fixture(scope="module")
def sts_server():
    """A second endpoint that also requires an STS security token."""
    with FakeImm(CLUSTERS, FILES, access_keys={KEY_ID: SECRET}, security_tokens={KEY_ID: TOKEN}) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fresh(server):
    yield from fresh(server)


def kwargs(srv: FakeImm, **extra):
    """Fetch arguments for the fake server: explicit credentials, no bar, tiny backoff."""
    return client_options(srv, KEY_ID, SECRET, **{"progress": False, **extra})


def cluster_query(cluster_id: str) -> dict:
    return {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": cluster_id}


def contains(big, small) -> bool:
    """Whether ``big`` has every key and value of ``small`` (recursively)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and contains(big[k], v) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and all(map(contains, big, small))
    return big == small


def tokens_sent(srv: FakeImm, action: str) -> list[str]:
    return [h.params.get("NextToken", "") for h in srv.hits if h.action == action]


# --------------------------------------------------------------------------- paging


def test_fetch_clusters_follows_next_token_over_three_pages(server):
    frame, pages = imm.fetch_clusters(PROJECT, DATASET, max_results=3, return_pages=True, **kwargs(server))

    assert [len(p["FigureClusters"]) for p in pages] == [3, 3, 1]
    # the SDK sent the operation and the token IMM gave on the previous page
    assert server.count("QueryFigureClusters") == 3
    assert tokens_sent(server, "QueryFigureClusters") == ["", pages[0]["NextToken"], pages[1]["NextToken"]]
    assert pages[-1]["NextToken"] == "" and pages[0]["TotalCount"] == 7
    # pages are plain IMM-shaped dicts (the SDK's to_map): all the server sent, plus IMM's empty lists
    assert contains(pages[0]["FigureClusters"][0], CLUSTERS[0])
    assert pages[0]["FigureClusters"][0]["Cover"]["Addresses"] == []
    assert isinstance(pages[0]["FigureClusters"][0]["Cover"]["Figures"][0]["HeadPose"], dict)

    assert sorted(frame["cluster_id"]) == [c["ObjectId"] for c in CLUSTERS]
    by_id = frame.set_index("cluster_id")
    assert by_id.loc["Cluster-0002", "image_count"] == 5
    assert by_id.loc["Cluster-0002", "cover_file_id"] == CLUSTERS[2]["Cover"]["ObjectId"]
    assert frame.attrs["imm"]["pages"] == 3 and frame.attrs["imm"]["complete"] is True
    assert frame.attrs["imm"]["retries"] == 0 and len(frame.attrs["imm"]["request_ids"]) == 3
    # a live fetch gives the same frame as loading the saved pages
    pd.testing.assert_frame_equal(frame, imm_json().load_clusters(pages))


def test_sort_and_order_reach_imm(server):
    frame = imm.fetch_clusters(PROJECT, DATASET, sort="ImageCount", order="desc", max_results=100, **kwargs(server))
    hit = server.hits[-1]
    assert (hit.params["Sort"], hit.params["Order"], hit.params["MaxResults"]) == ("ImageCount", "desc", "100")
    assert list(frame["image_count"]) == sorted(frame["image_count"], reverse=True)
    assert server.count() == 1


def test_fetch_files_of_one_cluster_over_two_pages(server):
    result = imm.fetch_files(PROJECT, DATASET, query=cluster_query("Cluster-0002"), max_results=3, **kwargs(server))

    assert [len(p["Files"]) for p in result.pages] == [3, 2]
    assert json.loads(server.hits[0].params["Query"])["Value"] == "Cluster-0002"
    assert tokens_sent(server, "SimpleQuery") == ["", result.pages[0]["NextToken"]]
    expected = [f for f in FILES if any(g["FigureClusterId"] == "Cluster-0002" for g in f["Figures"])]
    assert len(expected) == 5
    assert sorted(result.files["file_id"]) == sorted(f["ObjectId"] for f in expected)
    # five faces of the cluster, plus the independent face sharing its first image
    assert len(result.figures) == 6
    assert set(result.figures["figure_cluster_id"]) == {"Cluster-0002", INDEPENDENT}
    files, figures, pages = result
    assert files is result.files and figures.attrs["imm"]["operation"] == "SimpleQuery"
    assert "6 rows" in repr(result) and "pages=2" in repr(result)


def test_query_as_json_string_gives_the_same_files(server):
    as_dict = imm.fetch_files(PROJECT, DATASET, query=cluster_query("Cluster-0004"), **kwargs(server))
    as_text = imm.fetch_files(PROJECT, DATASET, query=json.dumps(cluster_query("Cluster-0004")), **kwargs(server))
    pd.testing.assert_frame_equal(as_dict.figures, as_text.figures)
    assert len(as_dict.files) == 3 + 4 % 3


def test_max_pages_stops_early_without_a_total_warning_or_log(server, caplog):
    caplog.set_level(logging.DEBUG)  # every logger: the loader's included
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # max_pages asked for it: no "TotalCount 7 but 6" warning
        frame, pages = imm.fetch_clusters(PROJECT, DATASET, max_results=3, max_pages=2, return_pages=True,
                                          **kwargs(server))
        result = imm.fetch_files(PROJECT, DATASET, max_results=3, max_pages=2, **kwargs(server))
    assert len(frame) == 6 and server.count() == 4
    assert frame.attrs["imm"]["complete"] is False and result.figures.attrs["imm"]["complete"] is False
    assert len(result.files) == 6 and len(FILES) > 6
    assert "max_pages=2" in caplog.text  # the early stop itself is logged (INFO)...
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # ...but no TotalCount warning
    # the caller's pages keep IMM's totals (only the loader's copies lose them)
    assert pages[0]["TotalCount"] == 7 and result.pages[0]["TotalHits"] == len(FILES)


def test_a_genuine_total_mismatch_on_a_complete_fetch_still_warns(server, caplog):
    # one last page (empty NextToken) announcing 7 clusters but holding 3: IMM's count and the records disagree
    server.inject("QueryFigureClusters", page=1,
                  body={"FigureClusters": CLUSTERS[:3], "NextToken": "", "TotalCount": 7, "RequestId": "R"})
    with caplog.at_level(logging.WARNING, logger="imm_analysis.io.imm_json"):
        with pytest.warns(imm_json().IMMLoadWarning, match="TotalCount says 7 clusters but 3 were loaded"):
            frame = imm.fetch_clusters(PROJECT, DATASET, **kwargs(server))
    assert len(frame) == 3 and frame.attrs["imm"]["complete"] is True
    assert "TotalCount says 7 clusters but 3 were loaded" in caplog.text


def test_progress_bar_over_pages(server, capsys):
    imm.fetch_clusters(PROJECT, DATASET, max_results=3, **{**kwargs(server), "progress": True})
    err = capsys.readouterr().err
    assert "QueryFigureClusters" in err and "/3 [" in err  # TotalCount 7 at 3 per page: 3 pages


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, THROTTLED),
        (400, {"Code": "Throttling.Api", "Message": "Request was denied due to api flow control.", "RequestId": "T"}),
        (503, {"Code": "ServiceUnavailable", "Message": "The request has failed due to a temporary failure.",
               "RequestId": "T"}),
    ],
)
def test_throttling_and_5xx_are_retried(server, caplog, status, body):
    server.inject("QueryFigureClusters", page=2, status=status, body=body)
    with caplog.at_level(logging.WARNING, logger="imm_analysis.imm"):
        frame = imm.fetch_clusters(PROJECT, DATASET, max_results=3, **kwargs(server))

    assert len(frame) == 7 and frame.attrs["imm"]["retries"] == 1
    assert [h.page for h in server.hits] == [1, 2, 2, 3]
    assert [h.status for h in server.hits] == [200, status, 200, 200]
    assert body["Code"] in caplog.text and "retry 1/5" in caplog.text


def test_throttled_files_page_is_retried(server):
    server.inject("SimpleQuery", page=2, status=429, body=THROTTLED)
    result = imm.fetch_files(PROJECT, DATASET, query=cluster_query("Cluster-0002"), max_results=3, **kwargs(server))
    assert len(result.files) == 5 and server.count("SimpleQuery") == 3


def test_retry_after_header_is_honoured(server, caplog):
    server.inject("QueryFigureClusters", page=1, status=429, body=THROTTLED, headers={"x-acs-retry-after": "150"})
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="imm_analysis.imm"):
        frame = imm.fetch_clusters(PROJECT, DATASET, **kwargs(server, max_backoff=1.0))
    assert "retry 1/5 in 0.15 s" in caplog.text  # the wait chosen: IMM's 150 ms, whatever the clock says
    assert time.perf_counter() - start >= 0.15
    assert len(frame) == 7 and server.count() == 2


def test_retries_run_out(server):
    server.inject("QueryFigureClusters", page=2, status=503, body={"Code": "InternalError", "RequestId": "R-9"},
                  times=None)
    with pytest.raises(imm.ImmApiError) as info:
        imm.fetch_clusters(PROJECT, DATASET, max_results=3, max_retries=2, **kwargs(server))
    err = info.value
    assert (err.status_code, err.code, err.request_id, err.attempts, err.page) == (503, "InternalError", "R-9", 3, 2)
    assert "QueryFigureClusters page 2" in str(err) and "gave up after 3 attempts" in str(err)
    assert server.count() == 1 + 3


def test_client_errors_are_not_retried(server):
    server.inject("QueryFigureClusters", page=2, status=400,
                  body={"Code": "InvalidArgument", "Message": "Sort is invalid.", "RequestId": "R-4"})
    with pytest.raises(imm.ImmApiError) as info:
        imm.fetch_clusters(PROJECT, DATASET, max_results=3, **kwargs(server))
    assert info.value.code == "InvalidArgument" and info.value.attempts == 1
    assert server.count() == 2  # page 1, then page 2 once


def test_wrong_secret_is_a_signature_error_not_retried(server):
    creds = {"access_key_id": KEY_ID, "access_key_secret": "not-the-secret"}
    with pytest.raises(imm.ImmApiError) as info:
        imm.fetch_clusters(PROJECT, DATASET, **kwargs(server, credentials=creds))
    assert (info.value.status_code, info.value.code) == (403, "SignatureDoesNotMatch")
    assert server.count() == 1 and server.hits[0].status == 403


def test_network_errors_are_retried_then_reported():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(imm.ImmApiError, match="network error") as info:
        imm.fetch_clusters(PROJECT, DATASET, max_retries=2, **{**kwargs_for(f"http://127.0.0.1:{port}")})
    assert info.value.attempts == 3 and info.value.status_code is None


def kwargs_for(endpoint: str) -> dict:
    return dict(endpoint=endpoint, credentials={"access_key_id": KEY_ID, "access_key_secret": SECRET},
                progress=False, backoff=0.001, max_backoff=0.01)


def test_retry_policy_delays():
    policy = imm.RetryPolicy(max_retries=5, backoff=1.0, max_backoff=5.0)
    rng = random.Random(0)
    for retry in range(1, 8):
        delays = [policy.delay(retry, rng=rng) for _ in range(200)]
        cap = min(5.0, 2.0 ** (retry - 1))
        assert 0 <= min(delays) and max(delays) <= cap
        assert max(delays) > 0.7 * cap  # jitter spans the window
    assert policy.delay(1, retry_after=3.0, rng=rng) == 3.0
    assert policy.delay(1, retry_after=60.0, rng=rng) == 5.0
    with pytest.raises(ValueError):
        imm.RetryPolicy(max_retries=-1)


# --------------------------------------------------------------------------- malformed responses


def test_invalid_json_names_operation_page_and_token(server):
    server.inject("QueryFigureClusters", page=2, status=200, body=b'{"FigureClusters": [{"ObjectId": "Clu')
    with pytest.raises(imm.ImmResponseError) as info:
        imm.fetch_clusters(PROJECT, DATASET, max_results=3, **kwargs(server))
    err = info.value
    token = tokens_sent(server, "QueryFigureClusters")[1]
    assert token and (err.operation, err.page, err.next_token) == ("QueryFigureClusters", 2, token)
    assert "QueryFigureClusters page 2" in str(err) and token in str(err) and "not valid JSON" in str(err)
    assert server.count() == 2  # a malformed answer is not retried


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"FigureClusters": "oops", "RequestId": "R"}, "FigureClusters must be a list of objects"),
        ([{"ObjectId": "Cluster-1"}], "expected a JSON object, got list"),
        ({"FigureClusters": [], "NextToken": 5, "RequestId": "R"}, "NextToken must be a string"),
        ({"Clusters": [], "Status": "ok"}, "not an IMM QueryFigureClusters response"),
    ],
)
def test_wrong_shape_is_a_clear_error(server, body, words):
    server.inject("QueryFigureClusters", page=1, body=body)
    with pytest.raises(imm.ImmResponseError, match=words) as info:
        imm.fetch_clusters(PROJECT, DATASET, **kwargs(server))
    assert "QueryFigureClusters page 1 (NextToken '')" in str(info.value)


def test_malformed_files_page(server):
    server.inject("SimpleQuery", page=2, body={"Files": [{"ObjectId": "f"}, 7], "RequestId": "R"})
    with pytest.raises(imm.ImmResponseError, match="SimpleQuery page 2"):
        imm.fetch_files(PROJECT, DATASET, query=cluster_query("Cluster-0002"), max_results=3, **kwargs(server))


def test_collect_keeps_the_pages_before_a_malformed_one(server):
    server.inject("QueryFigureClusters", page=3, body=b"<html>502 Bad Gateway</html>")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the stop is in attrs["errors"]; no extra TotalCount warning
        frame, pages = imm.fetch_clusters(PROJECT, DATASET, max_results=3, errors="collect", return_pages=True,
                                          **kwargs(server))
    assert len(pages) == 2 and len(frame) == 6
    assert frame.attrs["imm"]["complete"] is False
    (error,) = [e for e in frame.attrs["errors"] if e["source"].startswith("QueryFigureClusters")]
    assert error["source"] == "QueryFigureClusters page 3" and pages[1]["NextToken"] in error["record"]
    assert "not valid JSON" in error["reason"]


def test_a_repeated_next_token_is_caught(server):
    first = imm.fetch_clusters(PROJECT, DATASET, max_results=3, max_pages=1, return_pages=True, **kwargs(server))[1]
    token = first[0]["NextToken"]
    server.reset()
    server.inject("QueryFigureClusters", page=2, body={"FigureClusters": [], "NextToken": token, "RequestId": "R"},
                  times=None)
    with pytest.raises(imm.ImmResponseError, match="paging loop"):
        imm.fetch_clusters(PROJECT, DATASET, max_results=3, **kwargs(server))
    assert server.count() == 2


def test_collect_passes_bad_records_to_the_loader(server):
    bad = json.loads(json.dumps(FILES[:2]))
    bad[1]["Figures"][0]["FaceQuality"] = "high"
    server.inject("SimpleQuery", page=1, body={"Files": bad, "NextToken": "", "RequestId": "R"})
    result = imm.fetch_files(PROJECT, DATASET, errors="collect", **kwargs(server))
    good_faces = len(bad[0]["Figures"])
    assert len(result.figures) == good_faces
    assert any(e["field"] and "FaceQuality" in e["field"] for e in result.figures.attrs["errors"])
    assert result.figures.attrs["imm"]["complete"] is True
    with pytest.raises(ValueError, match="FaceQuality"):
        server.inject("SimpleQuery", page=1, body={"Files": bad, "NextToken": "", "RequestId": "R"})
        imm.fetch_files(PROJECT, DATASET, **kwargs(server))


# --------------------------------------------------------------------------- credentials


def test_secrets_never_reach_logs_errors_or_frames(sts_server, caplog):
    creds = {"access_key_id": KEY_ID, "access_key_secret": SECRET, "security_token": TOKEN}
    args = dict(kwargs(sts_server), credentials=creds)
    sts_server.inject("QueryFigureClusters", page=2, status=429, body=THROTTLED)
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's included
    frame, pages = imm.fetch_clusters(PROJECT, DATASET, max_results=3, return_pages=True, **args)
    result = imm.fetch_files(PROJECT, DATASET, query=cluster_query("Cluster-0001"), **args)
    assert len(frame) == 7 and sts_server.hits[0].headers["x-acs-security-token"] == TOKEN  # the token was used

    failures = []
    sts_server.inject("QueryFigureClusters", page=1, body=b"not json")
    sts_server.inject("SimpleQuery", page=1, status=500, body={"Code": "InternalError"}, times=None)
    for call in (lambda: imm.fetch_clusters(PROJECT, DATASET, **args),
                 lambda: imm.fetch_files(PROJECT, DATASET, max_retries=1, **args),
                 lambda: imm.fetch_clusters(PROJECT, DATASET, **dict(args, credentials={**creds, "security_token": "x"})),
                 lambda: imm.fetch_clusters(PROJECT, DATASET, **kwargs_for("http://127.0.0.1:1"), max_retries=0)):
        with pytest.raises(imm.ImmFetchError) as info:
            call()
        failures.append(info.value)
    assert [type(e).__name__ for e in failures] == ["ImmResponseError", "ImmApiError", "ImmApiError", "ImmApiError"]

    texts = [caplog.text, repr(frame.attrs), repr(result.files.attrs), repr(result.figures.attrs), repr(result),
             json.dumps(pages), json.dumps(result.pages)]
    for err in failures:
        texts += [str(err), repr(err), "".join(traceback.format_exception(err)), repr(vars(err))]
    for text in texts:
        assert SECRET not in text and TOKEN not in text


def test_credentials_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
    frame = imm.fetch_clusters(PROJECT, DATASET, **kwargs(server, credentials=None))
    assert len(frame) == 7
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong")
    with pytest.raises(imm.ImmApiError, match="SignatureDoesNotMatch"):
        imm.fetch_clusters(PROJECT, DATASET, **kwargs(server, credentials=None))


def test_credentials_client_object_and_ready_client(server):
    from alibabacloud_credentials.client import Client as CredentialClient
    from alibabacloud_credentials.models import Config as CredentialConfig

    provider = CredentialClient(CredentialConfig(type="access_key", access_key_id=KEY_ID, access_key_secret=SECRET))
    client = imm.make_client(endpoint=server.endpoint, protocol="http", credentials=provider)
    frame = imm.fetch_clusters(PROJECT, DATASET, client=client, progress=False)
    assert len(frame) == 7
    with pytest.raises(ValueError, match="either client"):
        imm.fetch_clusters(PROJECT, DATASET, client=client, endpoint=server.endpoint)


def test_default_credential_chain_in_a_fresh_process(server, tmp_path):
    """The SDK's chain reads its environment at import time, so run it in a fresh interpreter."""
    home = tmp_path / "home"
    (home / ".alibabacloud").mkdir(parents=True)
    (home / ".alibabacloud" / "credentials.ini").write_text(
        f"[default]\ntype = access_key\naccess_key_id = {KEY_ID}\naccess_key_secret = {SECRET}\n"
    )
    script = textwrap.dedent(
        f"""
        from imm_analysis import imm
        frame = imm.fetch_clusters({PROJECT!r}, {DATASET!r}, endpoint="http://{server.endpoint}", progress=False)
        print("rows", len(frame))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_") and "proxy" not in k.lower()}
    env.update(HOME=str(home), ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", ALIBABA_CLOUD_CLI_PROFILE_DISABLED="true")
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "rows 7" in run.stdout and SECRET not in run.stdout + run.stderr

    (home / ".alibabacloud" / "credentials.ini").unlink()
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode != 0 and "ImmCredentialsError" in run.stderr and "no usable Alibaba Cloud credentials" in run.stderr


# --------------------------------------------------------------------------- arguments and the optional extra


def test_bad_arguments_fail_before_any_request(server):
    args = kwargs(server)
    with pytest.raises(ValueError, match="unknown key"):
        imm.fetch_files(PROJECT, DATASET, query={"Field": "Figures.FigureClusterId", "Operator": "eq"}, **args)
    with pytest.raises(ValueError, match="not valid JSON"):
        imm.fetch_files(PROJECT, DATASET, query='{"Field": ', **args)
    with pytest.raises(ValueError, match="SubQueries"):
        imm.fetch_files(PROJECT, DATASET, query={"Operation": "and", "SubQueries": [{"Field": "x", "Value": 1}]},
                        **args)
    for depth in (100, 5000):  # a nested query fails with ValueError, not RecursionError, as text or as dicts
        deep = '{"Operation": "and", "SubQueries": [' * depth + '{"Operation": "eq"}' + "]}" * depth
        with pytest.raises(ValueError, match="nested deeper than"):
            imm.fetch_files(PROJECT, DATASET, query=deep, **args)
    nested: dict = {"Operation": "eq"}
    for _ in range(100):
        nested = {"Operation": "and", "SubQueries": [nested]}
    with pytest.raises(ValueError, match=r"query\.SubQueries\[0\].*nested deeper than"):
        imm.fetch_files(PROJECT, DATASET, query=nested, **args)
    with pytest.raises(ValueError, match="no parameter"):
        imm.fetch_clusters(PROJECT, DATASET, params={"Bogus": 1}, **args)
    with pytest.raises(ValueError, match="max_results"):
        imm.fetch_clusters(PROJECT, DATASET, max_results=101, **args)
    with pytest.raises(ValueError, match="errors"):
        imm.fetch_clusters(PROJECT, DATASET, errors="ignore", **args)
    with pytest.raises(ValueError, match="access_key_secret"):
        imm.fetch_clusters(PROJECT, DATASET, **dict(args, credentials={"access_key_id": KEY_ID}))
    assert server.count() == 0


def test_make_client_needs_an_endpoint_or_region(monkeypatch):
    monkeypatch.delenv("ALIBABA_CLOUD_REGION_ID", raising=False)
    with pytest.raises(ValueError, match="region_id"):
        imm.make_client(credentials={"access_key_id": KEY_ID, "access_key_secret": SECRET})
    with pytest.raises(ValueError, match="protocol"):
        imm.make_client(endpoint="http://127.0.0.1:1", protocol="https")


def test_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "alibabacloud_imm20200930.client", None)
    with pytest.raises(ImportError, match=r'pip install "imm_analysis\[imm\]"'):
        imm.fetch_clusters(PROJECT, DATASET, endpoint="127.0.0.1:1")


def test_importing_the_module_does_not_import_the_sdk():
    code = "import sys, imm_analysis.imm; print(sorted(m for m in sys.modules if m.startswith('alibabacloud')))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def imm_json():
    from imm_analysis.io import imm_json

    return imm_json
