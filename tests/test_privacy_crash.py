"""SIGKILL during ``forget`` at every write step: every store loads, holding the old or the erased content.

Synthetic stores (an embedding cache of two chunks, a saved ClusterState, a report folder) are
copied for each step k; a subprocess runs ``forget`` with every disk-changing function wrapped
so that the k-th call kills the process (SIGKILL) before it acts. Then each store is loaded,
compared with its content before and after a complete erasure, and ``forget`` is called again
to finish the work.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DIM = 16
MODEL_ID = "pack:synthetic@1"

SCRIPT = r"""
import os, signal, sys
from imm_analysis.cluster import store
from imm_analysis.privacy import cache_store, outputs
k = int(sys.argv[1]); state, cache, out, person = sys.argv[2:6]
count = [0]
def wrap(mod, name):
    fn = getattr(mod, name)
    def step(*a, **kw):
        count[0] += 1
        if count[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*a, **kw)
    setattr(mod, name, step)
for n in ("_write_frame", "_save_npy", "_write_bytes", "_rename", "_remove_tree", "_remove_file"):
    wrap(store, n)
for n in ("_write_frame", "_save_npy", "_write_bytes", "_remove_file"):
    wrap(cache_store, n)
for n in ("_write_bytes", "_remove_file"):
    wrap(outputs, n)
from imm_analysis import forget
r = forget([person], state=state, cache_dir=cache, outputs=[out], threshold=0.5)
print("steps", count[0])
sys.exit(0 if r.verified else 3)
"""


def _synthetic(root: Path) -> tuple[str, set[str]]:
    """Stores under ``root``; returns the person's cluster id and figure ids."""
    from imm_analysis import ClusterState
    from imm_analysis.faces.cache import EmbeddingCache
    from imm_analysis.faces.result import ERROR_COLUMNS
    from imm_analysis.schema import coerce_frame

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(3, DIM))
    rows, emb = [], []
    for k in range(12):
        people = [k % 3] + ([(k + 1) % 3] if k < 4 else [])  # four photos hold two people
        for i, p in enumerate(people):
            rows.append({"file_id": f"{k:032x}", "figure_id": f"{k:032x}-0-{i}", "uri": f"/photos/{k}.jpg",
                         "left": 10 + 120 * i, "top": 10, "width": 90, "height": 90, "pitch": 0.0, "roll": 0.0,
                         "yaw": 0.0, "face_quality": 0.9, "frame_index": pd.NA, "cache_key": f"key{k}", "p": p})
            emb.append(centres[p] + 0.15 * rng.normal(size=DIM))
    figs = pd.DataFrame(rows)
    x = np.asarray(emb, np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cache = EmbeddingCache(root / "cache", MODEL_ID, DIM, {"mode": "detect"})
    for part in (figs["cache_key"].isin([f"key{k}" for k in range(6)]), ~figs["cache_key"].isin([f"key{k}" for k in range(6)])):
        part = part.to_numpy()
        f = figs.loc[part].drop(columns=["p"]).reset_index(drop=True)
        files = f.groupby("cache_key", as_index=False).agg(file_id=("file_id", "first"), uri=("uri", "first"),
                                                            figure_count=("figure_id", "size"))
        errors = pd.DataFrame(columns=[*ERROR_COLUMNS, "cache_key"]).astype("string")
        cache.write_chunk(files["cache_key"].tolist(), coerce_frame(files, "files"), coerce_frame(f, "figures"),
                          x[part], errors)
    state = ClusterState.from_figures(figs.drop(columns=["cache_key", "p"]), x, threshold=0.5, min_faces=2, seed=0)
    state.save(root / "state")
    person = str(state.figures["figure_cluster_id"].iloc[0])
    members = set(state.figures.loc[state.figures["figure_cluster_id"].astype(str) == person, "figure_id"].astype(str))
    out = root / "report"
    (out / "tables").mkdir(parents=True)
    (out / "thumbs").mkdir()
    c = state.clusters[["cluster_id", "face_count"]].rename(columns={"cluster_id": "visitor_id"})
    c.to_csv(out / "tables" / "visitors.csv", index=False)
    state.figures[["figure_id", "figure_cluster_id"]].astype(str).to_parquet(out / "tables" / "faces.parquet")
    (out / "report.html").write_text("<table>" + "".join(f"<tr><td>{v}</td></tr>" for v in c["visitor_id"]) + "</table>")
    for v in c["visitor_id"]:
        (out / "thumbs" / f"{v}.png").write_bytes(b"png")
    np.save(out / "umap-0123.npy", np.zeros((len(x), 2), np.float32))
    return person, members


def _load_all(root: Path) -> dict:
    """Every store loaded the ordinary way (the loaders also clean what a killed writer left)."""
    from imm_analysis import ClusterState
    from imm_analysis.faces.cache import EmbeddingCache

    state = ClusterState.load(root / "state")
    entries = EmbeddingCache(root / "cache", MODEL_ID, DIM, {"mode": "detect"}).load()
    cache = {}
    for e in entries.values():
        for f, v in zip(e.figures, e.embeddings, strict=True):
            cache[f["figure_id"]] = v
    files = {str(p.relative_to(root / "report")): p.read_bytes()
             for p in (root / "report").rglob("*") if p.is_file() and not p.name.startswith(".")}
    return {"state": state, "cache": cache, "files": files}


def _run(k: int, root: Path, person: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", SCRIPT, str(k), str(root / "state"), str(root / "cache"),
                           str(root / "report"), person], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_at_every_write_step(tmp_path):
    from imm_analysis import forget

    base = tmp_path / "base"
    person, members = _synthetic(base)
    old = _load_all(base)
    ref = tmp_path / "ref"
    shutil.copytree(base, ref)
    done = _run(0, ref, person)  # no kill: the complete erasure, and the number of write steps
    assert done.returncode == 0, done.stderr[-2000:]
    n_steps = int(done.stdout.split("steps")[-1])
    new = _load_all(ref)
    assert n_steps >= 10 and not set(new["cache"]) & members
    others = set(old["cache"]) - members
    assert set(new["cache"]) == others

    for k in range(1, n_steps + 1):
        work = tmp_path / f"k{k}"
        shutil.copytree(base, work)
        proc = _run(k, work, person)
        assert proc.returncode == -9, (k, proc.returncode, proc.stderr[-2000:])
        got = _load_all(work)
        # the state: old or erased, never in between
        ids = set(got["state"].figures["figure_id"].astype(str))
        assert ids in (set(old["state"].figures["figure_id"].astype(str)),
                       set(new["state"].figures["figure_id"].astype(str))), k
        # the cache: every other face with its embedding; the person's faces all there or none
        assert set(got["cache"]) - members == others, k
        assert set(got["cache"]) & members in (members, set()), k
        for fid in others:
            np.testing.assert_array_equal(got["cache"][fid], old["cache"][fid])
        # the report folder: each file as it was or as the erasure leaves it
        for name, data in got["files"].items():
            assert data == old["files"].get(name) or data == new["files"].get(name), (k, name)
        assert set(new["files"]) <= set(got["files"]) <= set(old["files"]), k
        # calling forget again finishes the work
        again = [person] if person in set(got["state"].clusters["cluster_id"].astype(str)) else []
        receipt = forget(again, state=work / "state", cache_dir=work / "cache", outputs=[work / "report"], threshold=0.5)
        assert receipt.verified, (k, receipt.to_json())
        fin = _load_all(work)
        assert set(fin["cache"]) == others and fin["files"] == new["files"], k
        # and nothing of the person is left on disk: only committed chunks, no temporary files
        for folder in (work / "cache").iterdir():
            if folder.is_dir():
                names = {p.name for p in folder.iterdir()}
                stems = {n[: -len(".files.parquet")] for n in names if n.endswith(".files.parquet")}
                assert names == {"meta.json"} | {f"{s}{x}" for s in stems
                                                 for x in (".files.parquet", ".figures.parquet", ".errors.parquet", ".npy")}, k
        assert not [p for p in (work / "state").rglob("*") if p.name.startswith(".")], k
        assert not [p for p in (work / "report").rglob("*") if p.name.startswith(".")], k
        assert set(fin["state"].figures["figure_id"].astype(str)) == set(new["state"].figures["figure_id"].astype(str))
        shutil.rmtree(work)
