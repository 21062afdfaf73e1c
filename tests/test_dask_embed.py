"""Embedding on a Dask ``LocalCluster`` (2 worker processes): the single-process answer, exactly once."""

from __future__ import annotations

import os
import signal

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask.distributed")
pytest.importorskip("onnxruntime")

from imm_analysis.faces import distributed as dist  # noqa: E402
from imm_analysis.faces.embed import embed_crops, embed_images  # noqa: E402
from imm_analysis.faces.pack import PackError  # noqa: E402
from imm_analysis.faces.sources import resolve_sources  # noqa: E402

TOL = 1e-4  # onnxruntime in another process: equal up to float rounding


@pytest.fixture(scope="module")
def model(pack_dir):
    from imm_analysis.faces.model import FaceModel

    return FaceModel(pack_dir, threads=1)


@pytest.fixture(scope="module")
def crops(faces_dir):
    files = sorted((faces_dir / "lfw_dev").glob("*/*.jpg"))[:160]
    assert len(files) == 160
    return files


def _same(a, b):
    """Same files, figures (ids and rows) and errors; embeddings within TOL."""
    pd.testing.assert_frame_equal(a.files, b.files)
    fa, fb = a.figures.drop(columns=["extra"]), b.figures.drop(columns=["extra"])
    pd.testing.assert_frame_equal(fa, fb, check_exact=False, rtol=1e-4, atol=1e-4)
    assert a.figures["extra"].tolist() == b.figures["extra"].tolist()
    pd.testing.assert_frame_equal(a.errors.reset_index(drop=True), b.errors.reset_index(drop=True))
    assert a.embeddings.dtype == b.embeddings.dtype == np.float32
    assert a.embeddings.shape == b.embeddings.shape
    np.testing.assert_allclose(a.embeddings, b.embeddings, atol=TOL)


def test_crops_equal_single_process(dask_client, model, crops, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    src = [*crops[:40], broken, crops[3], *crops[40:80]]  # an unreadable file and a repeated one
    local = embed_crops(src, model, progress=False)
    out = embed_crops(src, model, progress=False, client=dask_client, cache_dir=tmp_path / "cache")
    _same(local, out)
    assert set(out.errors["error"]) == {"MediaError", "DuplicateFile"}
    assert out.stats == local.stats  # 80 new files, 2 errors, as one process counts them
    again = embed_crops(src, model, progress=False, client=dask_client, cache_dir=tmp_path / "cache")
    _same(local, again)
    assert again.stats["new_files"] == 0  # a second run skips what is done
    # the cache the workers wrote serves a single process too, with the same answer and counts
    single = embed_crops(src, model, progress=False, cache_dir=tmp_path / "cache")
    _same(single, again)
    assert single.stats == again.stats


def test_images_equal_single_process(dask_client, model, faces_dir, tmp_path):
    photos = sorted((faces_dir / "photos").glob("person_0[0-4]/*.jpg"))
    local = embed_images(photos, model, progress=False)
    out = embed_images(photos, model, progress=False, client=dask_client, cache_dir=tmp_path)
    assert len(out.files) == len(photos) and len(out.figures) >= len(photos) - 2
    _same(local, out)


def test_worker_sigkill_every_file_exactly_once(dask_client, model, crops, tmp_path):
    before = dask_client.run(os.getpid)
    killed: list[int] = []

    def kill_one(done: int, total: int) -> None:
        if killed or done >= total:
            return
        busy = [w for w, keys in dask_client.processing().items() if keys] or list(before)
        pid = before[busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    items = resolve_sources(crops)
    opts = {"detect": True, "batch_size": 64, "workers": 0, "chunk_files": 4}
    out = dist.embed_on_cluster("crops", items, model, dask_client, tmp_path, opts,
                                progress=False, task_files=4, on_progress=kill_one)
    assert killed, "no worker was killed while tasks remained"
    assert len(out.files) == len(crops) and out.files["file_id"].is_unique
    assert out.figures["figure_id"].is_unique and len(out.errors) == 0
    local = embed_crops(crops, model, progress=False)
    _same(local, out)
    dask_client.wait_for_workers(2, timeout=60)
    assert killed[0] not in dask_client.run(os.getpid).values()


def test_wrong_scheduler_fails_fast(model, crops, tmp_path, monkeypatch):
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", 2.0)
    with pytest.raises(ConnectionError, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        embed_crops(crops[:4], model, progress=False, client="tcp://127.0.0.1:9", cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()  # nothing started


def test_workers_without_pack_fail_before_work(dask_client, model, crops, tmp_path, monkeypatch):
    real = dist.model_spec(model)
    monkeypatch.setattr(dist, "model_spec", lambda m: dict(real, pack=str(tmp_path / "no-such-pack")))
    with pytest.raises(PackError, match=r"2 of 2 Dask workers cannot load the model pack.*no-such-pack"):
        embed_crops(crops[:4], model, progress=False, client=dask_client, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_cache_dir_required(dask_client, model, crops):
    with pytest.raises(ValueError, match="cache_dir is required"):
        embed_crops(crops[:2], model, progress=False, client=dask_client)


def test_cli_scheduler_unreachable(pack_dir, faces_dir, tmp_path, monkeypatch, capsys):
    from imm_analysis.cli import main

    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", 2.0)
    photos = faces_dir / "photos" / "person_01"
    argv = ["embed", str(photos), "--models", str(pack_dir), "--out", str(tmp_path / "out"), "-q",
            "--scheduler", "tcp://127.0.0.1:9"]
    assert main(argv) == 1
    assert "--scheduler needs --cache-dir" in capsys.readouterr().err
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", [0, -4, 2.5])
def test_task_files_must_be_a_positive_whole_number(model, crops, tmp_path, bad):
    # checked before any cluster is reached (a negative size used to leave every file unassembled)
    with pytest.raises(ValueError, match="task_files must be a whole number >= 1"):
        dist.embed_on_cluster("crops", resolve_sources(crops[:2]), model, "tcp://127.0.0.1:9", tmp_path, {},
                              progress=False, task_files=bad)
