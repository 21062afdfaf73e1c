""":func:`forget`: erase one person (or faces, or files) from every store, verifiably.

How it runs
-----------
1. The stores are opened: a :class:`~imm_analysis.ClusterState` (object or saved folder), an
   embedding cache directory, search libraries, output folders (:mod:`imm_analysis.privacy.stores`).
2. The targets become faces. A cluster id is every face of that cluster (a person); a query face
   (an image path or array, embedded with ``model``, or an embedding) is every stored face at or
   above the threshold; both are *person* targets, and with ``sweep=True`` every stored face at or
   above the threshold of a face already chosen is added too (until none is: the person's
   independent faces and copies in other stores). Figure ids and file ids are exact: just those
   faces, or every face of those files (the files' records go too).
3. Unless ``dry_run``: tombstones are written (content id and box of each face, see
   :mod:`imm_analysis.io.tombstones`), then each store is rewritten with the project's atomic
   writers, one store after another: embedding caches (chunk by chunk), libraries, output
   folders, and last the state (a new version of the saved folder). A kill at any step leaves
   every store loading either its old content or the erased one; calling :func:`forget` again
   with the same targets (or with none, once the state is rewritten) finishes the work, because
   faces tombstoned in any store are erased from all of them.
4. Verification: every store is read back, and the receipt records whether any forgotten id is
   left and the highest similarity between any stored face and the forgotten person's faces.

Other people's faces in the same photos stay (only whole-media libraries differ; the receipt says so).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.privacy.outputs import erase_outputs
from imm_analysis.privacy.receipt import ErasureReceipt, StoreErasure
from imm_analysis.privacy.stores import CacheStore, LibraryStore, StateStore

__all__ = ["forget"]

_MAX_SWEEPS = 5
_BLOCK = 8192


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1)


def _max_sim(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Highest cosine of each row of ``x`` against the rows of ``q`` (blockwise; O(block x len(q)) memory)."""
    out = np.full(len(x), -np.inf, dtype=np.float32)
    if not len(x) or not len(q) or x.shape[1] != q.shape[1]:
        return out
    qn = _unit(q)
    for s in range(0, len(x), _BLOCK):
        out[s : s + _BLOCK] = (_unit(x[s : s + _BLOCK]) @ qn.T).max(axis=1)
    return out


def _query_embedding(target: Any, model: Any) -> np.ndarray:
    """Embedding of the largest face in an image (path or RGB array)."""
    if model is None:
        raise ValueError("a query face given as an image needs model=FaceModel(...) to embed it")
    if isinstance(target, np.ndarray):
        rgb = target
    else:
        from imm_analysis.io.media import read_image

        rgb, _info = read_image(Path(target))
    (recs,) = model.analyse([np.ascontiguousarray(rgb)])
    if not len(recs.crops):
        raise ValueError(f"no face found in the query image {target if not isinstance(target, np.ndarray) else '(array)'}")
    area = (recs.boxes[:, 2] - recs.boxes[:, 0]) * (recs.boxes[:, 3] - recs.boxes[:, 1])
    i = int(np.argmax(area))
    return np.asarray(model.embed(recs.crops[i : i + 1]), dtype=np.float32)


def _targets(targets: Any) -> list[Any]:
    if targets is None:
        return []
    if isinstance(targets, str | os.PathLike | np.ndarray):
        return [targets]
    return list(targets)


def forget(
    targets: Any,
    *,
    state: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    libraries: Iterable[Any] = (),
    outputs: Iterable[str | os.PathLike[str]] = (),
    dry_run: bool = False,
    model: Any = None,
    threshold: float | None = None,
    sweep: bool = True,
) -> ErasureReceipt:
    """Erase a person, faces or files from every store given; returns a verified :class:`ErasureReceipt`.

    Parameters
    ----------
    targets : str, path, ndarray, or a list of them
        Cluster ids (a person), figure ids, file ids, query faces (an image path or an RGB
        array, embedded with ``model``; or a 1-d embedding, or a 2-d array of several). An id
        is looked up in the stores: a cluster of the state, else a face, else a file; an id no
        store knows raises ``KeyError``. An empty list erases nothing new but finishes an
        erasure a crash interrupted (tombstoned faces still on disk).
    state : ClusterState or path-like, optional
        The clustering; a folder is loaded and saved again as a new version, an object is
        changed in place (save it yourself; its saved copies are not touched).
    cache_dir : path-like, optional
        An embedding cache directory (``embed_images(..., cache_dir=...)``).
    libraries : iterable, default=()
        Search libraries, objects or folders (see :mod:`imm_analysis.privacy.stores`).
    outputs : iterable of path-like, default=()
        Report and output folders (tables rewritten, pages and crops removed, UMAP caches
        removed; see :mod:`imm_analysis.privacy.outputs`).
    dry_run : bool, default=False
        Change nothing; the receipt says what would go.
    model : FaceModel, optional
        Embeds query faces given as images.
    threshold : float, optional
        Cosine similarity from which a stored face is the person; default
        :func:`~imm_analysis.calibrate_threshold` on the largest store's embeddings. Not needed
        (and not calibrated) when the targets are only figure and file ids, which are erased exactly.
    sweep : bool, default=True
        Also erase faces at or above the threshold of the person's faces (repeated until none).

    Returns
    -------
    ErasureReceipt

    Notes
    -----
    Time is O(n q d) for n stored faces and q forgotten ones (blockwise, no n x n matrix);
    memory holds the stores' embeddings once.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from imm_analysis import ClusterState, forget
    >>> rng = np.random.default_rng(0)
    >>> x = np.repeat(rng.normal(size=(2, 32)), 3, axis=0) + 0.05 * rng.normal(size=(6, 32))
    >>> figs = pd.DataFrame({"figure_id": [f"f{i}" for i in range(6)], "file_id": [f"i{i}" for i in range(6)],
    ...                      "left": 0, "top": 0, "width": 80, "height": 80})
    >>> s = ClusterState.from_figures(figs, x, threshold=0.5, hd_rule=lambda f: np.ones(len(f), bool), seed=0)
    >>> person = s.figures["figure_cluster_id"].iloc[0]
    >>> receipt = forget([person], state=s, threshold=0.5)
    >>> receipt.verified, s.figures["figure_id"].tolist()
    (True, ['f3', 'f4', 'f5'])
    """
    now = pd.Timestamp.now(tz="UTC").isoformat()
    stores: list[Any] = []
    st = StateStore(state) if state is not None else None
    caches = [CacheStore(cache_dir, clean=not dry_run)] if cache_dir is not None else []
    libs = [LibraryStore(lib) for lib in libraries]
    caches += [CacheStore(lib.cache, clean=not dry_run) for lib in libs if lib.cache is not None]
    stores = [*caches, *([st] if st is not None else []), *libs]
    views = {id(s): s.faces() for s in stores}

    # ---- targets -> faces
    clusters: set[str] = set()
    figure_ids: set[str] = set()
    file_ids: set[str] = set()
    queries: list[np.ndarray] = []
    kinds = {"cluster": 0, "figure": 0, "file": 0, "face": 0}
    known_clusters = set(st.state.clusters["cluster_id"].astype(str)) if st is not None else set()
    all_figs = set().union(*(set(v[0]["figure_id"].dropna().astype(str)) for v in views.values())) if views else set()
    all_files = set().union(*(set(v[0]["file_id"].dropna().astype(str)) for v in views.values())) if views else set()
    for t in _targets(targets):
        if isinstance(t, np.ndarray) and t.dtype.kind == "f" and t.ndim in (1, 2):
            queries.append(np.atleast_2d(t).astype(np.float32))
            kinds["face"] += len(np.atleast_2d(t))
        elif isinstance(t, np.ndarray) or (isinstance(t, os.PathLike) or (isinstance(t, str) and Path(t).is_file())):
            queries.append(_query_embedding(t, model))
            kinds["face"] += 1
        elif isinstance(t, str) and t in known_clusters:
            clusters.add(t)
            kinds["cluster"] += 1
        elif isinstance(t, str) and t in all_figs:
            figure_ids.add(t)
            kinds["figure"] += 1
        elif isinstance(t, str) and t in all_files:
            file_ids.add(t)
            kinds["file"] += 1
        else:
            raise KeyError(f"forget: target {str(t)[:80]!r} is no cluster, figure or file id of the stores given")

    # faces tombstoned in one store are erased from every store (this also finishes an interrupted erasure)
    from imm_analysis.io.tombstones import read_tombstones, tombstoned_mask

    old_tombs = [t for c in caches for t in read_tombstones(c.root)]
    old_tombs += list(getattr(st.state, "_tombstones", [])) if st is not None else []
    if old_tombs:
        for f, _x in views.values():
            figure_ids |= set(f.loc[tombstoned_mask(f, old_tombs), "figure_id"].dropna().astype(str))

    seeds_ids: set[str] = set()  # the person's faces (person targets)
    if st is not None and clusters:
        f = st.state.figures
        seeds_ids |= set(f.loc[f["figure_cluster_id"].astype(str).isin(clusters), "figure_id"].astype(str))

    # ---- threshold
    source = "given"
    if threshold is None and not (queries or seeds_ids):  # exact figure and file ids: no similarity is used
        source = "not needed"
    elif threshold is None:
        from imm_analysis.cluster import calibrate

        largest = max((v[1] for v in views.values() if v[1].ndim == 2 and v[1].shape[1]), key=len, default=None)
        if largest is None or len(largest) < 2:
            raise ValueError("forget: no store has embeddings to calibrate a threshold on; pass threshold=")
        threshold = float(calibrate.calibrate_threshold(largest))
        source = "calibrate_threshold"
    threshold = None if threshold is None else float(threshold)

    # ---- person faces: query matches, then the sweep
    def embeddings_of(ids: set[str]) -> list[np.ndarray]:
        out = []
        for f, x in views.values():
            got = f["figure_id"].astype(str).isin(ids).to_numpy(bool)
            if got.any() and x.ndim == 2 and x.shape[1]:
                out.append(x[got])
        return out

    seed_list = ([np.concatenate(queries)] if queries else []) + embeddings_of(seeds_ids)
    dim = seed_list[0].shape[1] if seed_list else 0
    for _ in range(_MAX_SWEEPS):
        if not seed_list or not (queries or sweep):
            break
        seeds = np.concatenate([e for e in seed_list if e.shape[1] == dim])
        new: set[str] = set()
        for f, x in views.values():
            hit = _max_sim(x, seeds) >= threshold  # type: ignore[operator]  # set above: person targets
            new |= set(f.loc[hit, "figure_id"].dropna().astype(str)) - seeds_ids
        seed_list = [seeds, *embeddings_of(new)]
        seeds_ids |= new
        if not new or not sweep:
            break
    person_emb = np.concatenate([e for e in seed_list if e.shape[1] == dim]) if seed_list else None
    figure_ids |= seeds_ids

    # ---- tombstones and per-store plans
    from imm_analysis.io.tombstones import tombstone_rows

    chosen = []
    for v in views.values():
        f = v[0]
        m = f["figure_id"].astype(str).isin(figure_ids) | f["file_id"].astype(str).isin(file_ids)
        chosen.append(f.loc[m.to_numpy(bool)])
    picked = pd.concat(chosen, ignore_index=True).drop_duplicates("figure_id") if chosen else pd.DataFrame()
    tombs = tombstone_rows(picked, time=now) if len(picked) else []
    lost_clusters: set[str] = set(clusters)
    if st is not None:
        f = st.state.figures
        gone = f["figure_id"].astype(str).isin(figure_ids) | f["file_id"].astype(str).isin(file_ids)
        cid = f["figure_cluster_id"].astype(str)
        lost_clusters |= set(cid[gone]) - set(cid[~gone])
        lost_clusters &= set(st.state.clusters["cluster_id"].astype(str))
    names = st.names(lost_clusters) if st is not None else {}

    receipt = ErasureReceipt(time=now, dry_run=dry_run, threshold=threshold, threshold_source=source,
                             targets={k: v for k, v in kinds.items() if v}, tombstones=len(tombs))
    entries: dict[int, StoreErasure] = {}
    for s in stores:
        f = views[id(s)][0]
        m = (f["figure_id"].astype(str).isin(figure_ids) | f["file_id"].astype(str).isin(file_ids)).to_numpy(bool)
        e = StoreErasure(store=s.kind, location=s.location, faces=int(m.sum()),
                         figure_ids=sorted(set(f.loc[m, "figure_id"].dropna().astype(str))),
                         file_ids=sorted(file_ids & set(f["file_id"].dropna().astype(str))))
        if s is st:
            e.clusters_removed = sorted(lost_clusters)
            if st.path is None:
                e.notes.append("the ClusterState object was changed in memory: save it to keep the erasure")
        entries[id(s)] = e
        receipt.stores.append(e)

    # ---- erase: tombstones first, then store by store; the state last, so that until its new
    # version is committed it still names what a repeated call must erase
    tokens = figure_ids | file_ids | lost_clusters
    if not dry_run:
        for c in caches:
            entries[id(c)].faces = c.erase(figure_ids, file_ids, tombs)["faces"]
        for lib in libs:
            n, media, notes = lib.erase(figure_ids, file_ids)
            entries[id(lib)].faces = n
            entries[id(lib)].notes += notes + ([f"media removed: {len(media)}"] if media else [])
    for folder in outputs:
        done = erase_outputs(folder, tokens, names.values(), dry_run=dry_run)
        receipt.stores.append(StoreErasure(store="outputs", location=str(folder), files_rewritten=done["rewritten"],
                                           files_removed=done["removed"]))
    if not dry_run and st is not None:
        erase_ids = figure_ids | set(st.state.figures.loc[
            st.state.figures["file_id"].astype(str).isin(file_ids), "figure_id"].astype(str))
        entries[id(st)].clusters_removed = st.erase(erase_ids)
    if dry_run:
        return receipt

    # ---- verification: read every store back
    ok = True
    for s in stores:
        s.reload()
        f, x = s.faces()
        e = entries[id(s)]
        e.checked_faces = len(f)
        e.remaining_ids = int((f["figure_id"].astype(str).isin(figure_ids) | f["file_id"].astype(str).isin(file_ids)).sum())
        if person_emb is not None and len(f) and x.shape[1] == person_emb.shape[1]:
            e.max_similarity = float(_max_sim(x, person_emb).max())
        ok &= e.remaining_ids == 0 and (e.max_similarity is None or threshold is None or e.max_similarity < threshold)
    for e in receipt.stores:
        if e.store == "outputs":
            left = erase_outputs(e.location, tokens, names.values(), dry_run=True)
            e.remaining_ids = len(left["rewritten"]) + len(left["removed"])
            ok &= e.remaining_ids == 0
    receipt.verified = bool(ok)
    return receipt
