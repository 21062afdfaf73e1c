"""ClusterState.save never leaves a window without a loadable state (issue 11, item 8).

The fault-injection test stops ``save`` at every write step in turn: a forked child process
replaces each disk-changing function of :mod:`imm_analysis.cluster.store` by one that counts
calls and ``os._exit``s at step ``k``; the parent then loads and must get the old or the new
state, never an error.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cluster_data import figures_for, people

from imm_analysis.cluster import store
from imm_analysis.cluster.state import ClusterState

STEPS = ("_write_frame", "_save_npy", "_write_bytes", "_rename", "_remove_tree", "_remove_file")
KILLED = 17

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork to kill a save mid-way")


@pytest.fixture(scope="module")
def states():
    """Old state (8 faces) and new state (12 faces, renamed cluster, an edit)."""
    x, _ = people([4, 4, 4], seed=3)
    figs = figures_for(12)
    old = ClusterState.from_figures(figs.iloc[:8], x[:8], threshold=0.5, seed=0)
    new = ClusterState.from_figures(figs.iloc[:8], x[:8], threshold=0.5, seed=0)
    new.rename(new.clusters["cluster_id"].iloc[0], "Alice")
    new.update(figs.iloc[8:], x[8:])
    assert len(new.figures) == 12 and len(old.figures) == 8
    return old, new


def _legacy(path: Path) -> None:
    """Rewrite a saved state in the first release's layout (files directly in ``path``)."""
    current = store.current_version(path)
    for f in current.iterdir():
        shutil.move(str(f), path / f.name)
    shutil.rmtree(current)
    (path / store.POINTER).unlink()


def _save_killed_at(state: ClusterState, path: Path, k: int) -> int:
    """Save ``state`` in a forked child stopped (``os._exit``) just before write step ``k``; its exit code."""
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            count = [0]
            for name in STEPS:
                real = getattr(store, name)

                def step(*args, _real=real, **kwargs):
                    count[0] += 1
                    if count[0] == k:
                        os._exit(KILLED)
                    return _real(*args, **kwargs)

                setattr(store, name, step)
            state.save(path)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _count_steps(state: ClusterState, path: Path) -> int:
    count = [0]
    saved = {name: getattr(store, name) for name in STEPS}
    try:
        for name, real in saved.items():

            def step(*args, _real=real, **kwargs):
                count[0] += 1
                return _real(*args, **kwargs)

            setattr(store, name, step)
        state.save(path)
    finally:
        for name, real in saved.items():
            setattr(store, name, real)
    return count[0]


def _same(a: ClusterState, b: ClusterState) -> bool:
    if len(a.figures) != len(b.figures):
        return False
    pd.testing.assert_frame_equal(a.figures, b.figures)
    pd.testing.assert_frame_equal(a.clusters, b.clusters)
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    assert a.edits == b.edits
    return True


@pytest.mark.parametrize("layout", ["versioned", "legacy"])
def test_save_killed_at_every_write_step_leaves_old_or_new(tmp_path, states, layout):
    old, new = states
    probe = tmp_path / "probe"
    old.save(probe)
    if layout == "legacy":
        _legacy(probe)
    n_steps = _count_steps(new, probe)
    assert n_steps >= 11  # 3 frames, 5 arrays, state.json, the folder rename, the pointer, clean-up
    outcomes = []
    for k in range(1, n_steps + 2):
        path = tmp_path / f"k{k}"
        old.save(path)
        if layout == "legacy":
            _legacy(path)
        code = _save_killed_at(new, path, k)
        assert code == (KILLED if k <= n_steps else 0), f"step {k}: child exited {code}"
        loaded = ClusterState.load(path)  # never fails
        got = "new" if _same(loaded, new) else "old" if _same(loaded, old) else "other"
        assert got in ("old", "new"), f"killed at step {k}: neither state"
        outcomes.append(got)
        # the load cleaned what the killed save left: one version folder, no temporary parts
        left = sorted(p.name for p in path.iterdir())
        assert not [n for n in left if n.startswith((".tmp-", ".CURRENT."))], left
        assert len([n for n in left if n.startswith("v-")]) <= 1, left
        # and the next save works and wins
        ClusterState.load(path).save(path)
        assert _same(ClusterState.load(path), loaded)
    # early kills keep the old state, late ones (after the pointer) the new one, never back again
    assert outcomes[0] == "old" and outcomes[-1] == "new"
    assert outcomes == sorted(outcomes, key=["old", "new"].index)


def test_layout_pointer_and_cleanup(tmp_path, states):
    old, new = states
    path = old.save(tmp_path / "s")
    assert (path / "CURRENT").read_text().strip() == "v-1" and (path / "v-1" / "state.json").is_file()
    new.save(path)
    assert (path / "CURRENT").read_text().strip() == "v-2"
    assert sorted(p.name for p in path.iterdir()) == ["CURRENT", "v-2"]  # the old version is removed
    # stale leftovers of a crash are removed by the next load
    (path / ".tmp-v-3-dead").mkdir()
    (path / "v-9").mkdir()
    assert _same(ClusterState.load(path), new)
    assert sorted(p.name for p in path.iterdir()) == ["CURRENT", "v-2"]


def test_legacy_layout_loads_and_moves_on_save(tmp_path, states):
    old, new = states
    path = old.save(tmp_path / "s")
    _legacy(path)
    assert (path / "state.json").is_file() and not (path / "CURRENT").exists()
    assert _same(ClusterState.load(path), old)
    new.save(path)
    assert sorted(p.name for p in path.iterdir()) == ["CURRENT", "v-1"]
    assert _same(ClusterState.load(path), new)


def test_legacy_crash_between_renames_still_loads(tmp_path, states):
    """The first release renamed ``path`` aside before moving the new folder in; a kill there left no ``path``."""
    old, _ = states
    path = old.save(tmp_path / "s")
    _legacy(path)
    path.rename(tmp_path / ".s.old-0123")
    assert _same(ClusterState.load(path), old)


def test_bad_pointer_and_not_a_folder(tmp_path, states):
    old, _ = states
    path = old.save(tmp_path / "s")
    (path / "CURRENT").write_text("../../etc")
    with pytest.raises(ValueError, match="not a version name"):
        ClusterState.load(path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        old.save(tmp_path / "file")


def test_corrupt_state_record_names_the_file(tmp_path, states):
    old, _ = states
    path = old.save(tmp_path / "s")
    meta = store.current_version(path) / "state.json"
    assert ClusterState.load(path).figures.shape == old.figures.shape
    meta.write_text('{"format": ')  # cut short
    with pytest.raises(ValueError, match=r"state\.json: not a state record \(invalid JSON"):
        ClusterState.load(path)
    meta.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"state\.json: not a state record \(a JSON list"):
        ClusterState.load(path)
