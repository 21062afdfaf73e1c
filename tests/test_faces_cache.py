"""The embedding cache: skip done files, resume after SIGKILL, never mix two models (real pack and photos)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imm_analysis.faces.cache import EmbeddingCache
from imm_analysis.faces.embed import embed_images
from imm_analysis.faces.model import FaceModel


@pytest.fixture(scope="module")
def model(pack_dir):
    return FaceModel(pack_dir, det_size=480)


@pytest.fixture()
def folder(faces_dir, tmp_path):
    """A folder of 14 real photos (symlinks) and one corrupt file."""
    src = sorted((faces_dir / "photos").glob("person_0[0-2]/*.jpg"))[:14]
    d = tmp_path / "imgs"
    d.mkdir()
    for i, p in enumerate(src):
        (d / f"{i:02d}_{p.name}").symlink_to(p)
    (d / "99_corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return d


def _same(a, b):
    cols = ["figure_id", "file_id", "left", "top", "width", "height"]
    pd.testing.assert_frame_equal(a.figures[cols], b.figures[cols])
    np.testing.assert_allclose(a.figures["face_quality"], b.figures["face_quality"], atol=1e-6)
    np.testing.assert_allclose(a.embeddings, b.embeddings, atol=1e-5)
    assert list(a.files["file_id"]) == list(b.files["file_id"])
    assert list(a.errors["path"]) == list(b.errors["path"])


def test_second_run_reads_the_cache(model, folder, tmp_path):
    cache = tmp_path / "cache"
    first = embed_images(folder, model, cache_dir=cache, progress=False, chunk_files=4)
    assert first.stats["new_files"] == 14 and len(first.errors) == 1
    second = embed_images(folder, model, cache_dir=cache, progress=False)
    assert second.stats["new_files"] == 0 and second.stats["cached_files"] == 15
    _same(first, second)
    # the same bytes under another name: served from the cache, with the new uri
    renamed = tmp_path / "renamed"
    shutil.copytree(folder, renamed, symlinks=True)
    third = embed_images(renamed, model, cache_dir=cache, progress=False)
    assert third.stats["new_files"] == 0
    assert third.files["uri"].str.startswith(str(renamed)).all()


def test_two_models_never_mix(model, folder, tmp_path, shared_dir):
    cache = tmp_path / "cache"
    embed_images(sorted(folder.glob("0[0-1]_*")), model, cache_dir=cache, progress=False)
    (store,) = [p for p in cache.iterdir() if p.is_dir()]
    other = FaceModel(shared_dir / "models" / "mbf128_scrfd2.5g", det_size=480)
    # a folder copied (or renamed) to where the other model's results would go: same settings
    # (the other model is configured alike), other model id
    meta = json.loads((store / "meta.json").read_text())
    target = EmbeddingCache(tmp_path / "probe", other.model_id, 128, meta["settings"])
    shutil.rmtree(target.dir)
    shutil.copytree(store, cache / target.dir.name)
    with pytest.raises(ValueError, match="cannot be mixed"):
        embed_images(folder, other, cache_dir=cache, progress=False)
    # a chunk record written by another model is refused as well
    (record,) = sorted(store.glob("*.files.parquet"))[:1]
    frame = pd.read_parquet(record)
    frame["model_id"] = "someone:else@0"
    frame.to_parquet(record, index=False)
    with pytest.raises(ValueError, match="refusing to mix"):
        EmbeddingCache(cache, meta["model_id"], 128, meta["settings"]).load()


class _Killed(BaseException):
    """Stands for SIGKILL in-process: nothing after the failed write step runs."""


def _inject_kill(monkeypatch, cache_mod, at_step: int) -> list[str]:
    """Make the cache's ``at_step``-th file write (1-based) stop half-way, leaving a partial temp file.

    Returns the names written so far (the step counter).
    """
    steps: list[str] = []

    def step(path: Path) -> None:
        steps.append(path.name)
        if len(steps) == at_step:
            (path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp").write_bytes(b"PAR1 half-written")
            raise _Killed(path.name)

    real_frame, real_npy = cache_mod.write_frame, cache_mod.atomic_save_npy

    def write_frame(frame, path, **kw):
        step(Path(path))
        return real_frame(frame, path, **kw)

    def save_npy(path, array):
        step(Path(path))
        return real_npy(path, array)

    monkeypatch.setattr(cache_mod, "write_frame", write_frame)
    monkeypatch.setattr(cache_mod, "atomic_save_npy", save_npy)
    return steps


def _leftovers(cache: Path) -> list[str]:
    """Files of a cache folder that belong to no committed chunk (temporary files included)."""
    out = []
    for store in cache.iterdir():
        committed = {p.name[: -len(".files.parquet")] for p in store.glob("part-*.files.parquet")}
        for p in store.iterdir():
            if p.name == "meta.json":
                continue
            if p.name.startswith(".") or p.name.split(".")[0] not in committed:
                out.append(p.name)
    return out


@pytest.fixture()
def small(folder, tmp_path):
    """Three real photos and the corrupt file: four chunks of one file each."""
    d = tmp_path / "small"
    d.mkdir()
    for p in sorted(folder.iterdir())[:3] + [folder / "99_corrupt.jpg"]:
        (d / p.name).symlink_to(p.resolve()) if p.is_symlink() else shutil.copy(p, d / p.name)
    return d


def test_killed_at_every_write_step_then_resumed(model, small, tmp_path, monkeypatch):
    """Kill ``embed_images`` at each write step in turn: the next run completes, every file once, nothing lost."""
    import imm_analysis.faces.cache as cache_mod

    reference = embed_images(small, model, progress=False)
    assert len(reference.files) == 3 and len(reference.errors) == 1
    # count the write steps of a full run
    with monkeypatch.context() as m:
        steps = _inject_kill(m, cache_mod, at_step=10**9)
        embed_images(small, model, cache_dir=tmp_path / "count", progress=False, chunk_files=1, workers=0)
    n_steps = len(steps)
    assert n_steps == 4 * 4  # a chunk per file (the corrupt file's error last) x 4 files each
    for k in range(1, n_steps + 1):
        cache = tmp_path / f"cache{k}"
        with monkeypatch.context() as m:
            _inject_kill(m, cache_mod, at_step=k)
            with pytest.raises(_Killed):
                embed_images(small, model, cache_dir=cache, progress=False, chunk_files=1, workers=0)
        assert _leftovers(cache), k  # the kill left a half-written part behind
        resumed = embed_images(small, model, cache_dir=cache, progress=False, chunk_files=1)
        assert not _leftovers(cache), (k, _leftovers(cache))  # stale parts cleaned
        assert resumed.stats["cached_files"] == (k - 1) // 4, k  # the chunks committed before the kill are kept
        _same(resumed, reference)
        uris = list(resumed.files["uri"]) + list(resumed.errors["uri"])
        assert len(uris) == len(set(uris)) == 4
        again = embed_images(small, model, cache_dir=cache, progress=False)
        assert again.stats["new_files"] == 0
        _same(again, reference)


KILLED_RUN = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from imm_analysis.faces import cache as cache_mod
    from imm_analysis.faces.embed import embed_images
    from imm_analysis.faces.model import FaceModel

    at = int(sys.argv[4])
    steps = []
    def step(path):
        path = Path(path)
        steps.append(path.name)
        if len(steps) == at:
            (path.parent / f".{path.name}.0123abcd.tmp").write_bytes(b"half")
            os._exit(9)  # no cleanup, no finally: as SIGKILL
    real_frame, real_npy = cache_mod.write_frame, cache_mod.atomic_save_npy
    def write_frame(frame, path, **kw):
        step(path)
        return real_frame(frame, path, **kw)
    def save_npy(path, array):
        step(path)
        return real_npy(path, array)
    cache_mod.write_frame, cache_mod.atomic_save_npy = write_frame, save_npy
    model = FaceModel(sys.argv[1], det_size=480)
    embed_images(sys.argv[2], model, cache_dir=sys.argv[3], progress=False, chunk_files=2, workers=1)
    print("finished")
    """
)


def test_process_killed_mid_chunk_then_resume_is_identical(model, folder, tmp_path, pack_dir):
    """A child process dies (``os._exit``) half-way through its third chunk; the next run resumes from disk."""
    cache = tmp_path / "cache"
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(script), str(pack_dir), str(folder), str(cache), "10"],
                          capture_output=True, env=env, timeout=300)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    assert b"finished" not in proc.stdout
    assert len(list(cache.glob("*/part-*.files.parquet"))) == 2  # steps 1-8: two chunks committed
    assert _leftovers(cache)

    resumed = embed_images(folder, model, cache_dir=cache, progress=False)
    assert resumed.stats["new_files"] == 14 - 4 and resumed.stats["cached_files"] == 4
    assert resumed.figures["figure_id"].is_unique
    assert not _leftovers(cache)
    fresh = embed_images(folder, model, progress=False)
    _same(resumed, fresh)
    again = embed_images(folder, model, cache_dir=cache, progress=False)
    assert again.stats["new_files"] == 0
    _same(again, fresh)


def test_unexpected_load_errors_are_reported_but_not_cached(model, folder, tmp_path, monkeypatch, caplog):
    """A corrupt file's error is cached; an unexpected failure (here a decoder bug) is logged and retried."""
    import imm_analysis.faces.prefetch as loader  # where files are read and decoded

    real = loader.read_image
    victim = sorted(folder.glob("0*.jpg"))[0]

    def flaky(path, **kw):
        if Path(path).name == victim.name:
            raise RuntimeError("decoder bug")
        return real(path, **kw)

    cache = tmp_path / "cache"
    monkeypatch.setattr(loader, "read_image", flaky)
    with caplog.at_level("WARNING", logger="imm_analysis.faces"):
        first = embed_images(folder, model, cache_dir=cache, progress=False)
    assert set(first.errors["error"]) == {"RuntimeError", "MediaError"}
    assert any("decoder bug" in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(loader, "read_image", real)
    again = embed_images(folder, model, cache_dir=cache, progress=False)
    assert set(again.errors["error"]) == {"MediaError"}  # the corrupt file stays an error, from the cache
    assert again.stats["new_files"] == 1  # only the file that failed unexpectedly was worked on again
    assert victim.name in set(again.files["filename"])


def test_chunks_of_the_first_release_still_load(tmp_path):
    """Chunks written before the shared Parquet writer (JSON text under plain names, no metadata) load as before."""
    cache = EmbeddingCache(tmp_path, "pack:abc@1", 4, {"mode": "detect"})
    stem = cache.dir / "part-00000000000000000001-1-aaaaaa"
    np.save(f"{stem}.npy", np.arange(8, dtype=np.float32).reshape(2, 4))
    pd.DataFrame({"cache_key": ["k1", "k1"], "figure_id": ["a", "b"],
                  "extra": ['{"Raw": [1, 2]}', None]}).to_parquet(f"{stem}.figures.parquet", index=False)
    pd.DataFrame({"cache_key": ["k3"], "path": ["/x/bad.jpg"], "error": ["MediaError"],
                  "reason": ["truncated"]}).to_parquet(f"{stem}.errors.parquet", index=False)
    pd.DataFrame({"cache_key": ["k1", "k2", "k3"], "file_id": ["f1", "f2", None], "status": ["ok", "ok", "error"],
                  "extra": ['{"e": 1}', None, None], "custom_labels": [None, '{"shop": "A"}', None],
                  "model_id": "pack:abc@1"}).to_parquet(f"{stem}.files.parquet", index=False)
    entries = cache.load()
    assert set(entries) == {"k1", "k2", "k3"}
    assert [r["extra"] for r in entries["k1"].figures] == [{"Raw": [1, 2]}, None]
    assert entries["k1"].file[0]["extra"] == {"e": 1} and entries["k2"].file[0]["custom_labels"] == {"shop": "A"}
    np.testing.assert_array_equal(entries["k1"].embeddings[1], [4, 5, 6, 7])
    assert entries["k3"].file == [] and entries["k3"].error[0]["reason"] == "truncated"


def test_new_chunks_round_trip_dict_columns(tmp_path):
    cache = EmbeddingCache(tmp_path, "pack:abc@1", 4, {"mode": "detect"})
    files = pd.DataFrame({"cache_key": ["k1"], "file_id": ["f1"], "extra": [{"a": np.int64(3)}], "custom_labels": [None]})
    figures = pd.DataFrame({"cache_key": ["k1"], "figure_id": ["a"], "extra": [{"pose": np.array([1.5, 2.0])}]})
    errors = pd.DataFrame({c: pd.Series([], dtype="string") for c in ("cache_key", "path", "error", "reason")})
    cache.write_chunk(["k1", "k2"], files, figures, np.ones((1, 4), np.float32), errors)
    assert not list(cache.dir.glob(".*"))  # no temporary files left behind
    entries = EmbeddingCache(tmp_path, "pack:abc@1", 4, {"mode": "detect"}).load()
    assert entries["k1"].file[0]["extra"] == {"a": 3} and entries["k1"].figures[0]["extra"] == {"pose": [1.5, 2.0]}
    assert entries["k2"].file == [] and entries["k2"].figures == []


@pytest.mark.parametrize("text", ['{"model_id": "pack:abc@1", "dim": ', "[1, 2]", "\udcff"])
def test_unreadable_meta_json_is_named(tmp_path, text):
    cache = EmbeddingCache(tmp_path, "pack:abc@1", 4, {"mode": "detect"})
    (cache.dir / "meta.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ValueError, match=r"meta\.json: (unreadable cache description|expected a JSON object)"):
        EmbeddingCache(tmp_path, "pack:abc@1", 4, {"mode": "detect"})
