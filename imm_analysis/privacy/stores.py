"""The stores :func:`~imm_analysis.forget` erases from, behind one small interface.

Each store lists its faces (``figure_id``, ``file_id``, ``frame_index``, box, and where known
``figure_cluster_id``) row-aligned with their embeddings, and erases a set of faces. Search
libraries are duck-typed (``imm_analysis.search.SearchLibrary`` or anything alike):

* ``faces``: a frame with ``figure_id`` and ``media_id`` (the file id), plus the box;
* ``face_embeddings``: float32 array row-aligned with ``faces`` (optional: without it the
  library is erased by id only, and the verification cannot search it);
* ``remove_faces(figure_ids)`` when the library can drop single faces, else ``remove(media_ids)``
  which drops whole media (other people's faces in those media go from the library too; the
  receipt says so);
* ``save(path)`` and a ``path`` attribute for a library kept in a folder; a folder given instead
  of an object is opened with ``SearchLibrary.load`` (``cache/`` inside it, the library's
  embedding cache, is erased as a cache).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.io.tombstones import add_tombstones, read_tombstones, tombstoned_mask
from imm_analysis.privacy import cache_store as C

__all__ = ["CacheStore", "LibraryStore", "StateStore", "face_frame"]

_COLS = ["figure_id", "file_id", "frame_index", "left", "top", "width", "height", "figure_cluster_id"]


def face_frame(figures: pd.DataFrame, file_col: str = "file_id") -> pd.DataFrame:
    """The columns every store lists, as text and numbers (missing columns filled with NA).

    Examples
    --------
    >>> face_frame(pd.DataFrame({"figure_id": ["a"], "media_id": ["m"]}), "media_id")[["figure_id", "file_id"]].iloc[0].tolist()
    ['a', 'm']
    """
    out = pd.DataFrame(index=range(len(figures)))
    for c in _COLS:
        src = file_col if c == "file_id" else c
        out[c] = figures[src].to_numpy() if src in figures.columns else pd.NA
    for c in ("figure_id", "file_id", "figure_cluster_id"):
        out[c] = out[c].astype("string")
    return out


class StateStore:
    """A ClusterState (object, or the folder it was saved in: rewritten with its own versioned save)."""

    kind = "cluster_state"

    def __init__(self, state: Any) -> None:
        from imm_analysis.cluster.state import ClusterState

        self.path: Path | None = None
        if isinstance(state, str | os.PathLike):
            self.path = Path(state)
            with warnings.catch_warnings():  # a callable hd_rule is not needed to erase
                warnings.simplefilter("ignore")
                state = ClusterState.load(self.path)
        self.state = state
        self.location = str(self.path) if self.path is not None else "<in memory>"

    def faces(self) -> tuple[pd.DataFrame, np.ndarray]:
        return face_frame(self.state.figures), np.asarray(self.state.embeddings)

    def names(self, cluster_ids: set[str]) -> dict[str, str]:
        c = self.state.clusters
        rows = c[c["cluster_id"].astype(str).isin(cluster_ids)]
        return {str(k): str(v) for k, v in zip(rows["cluster_id"], rows["name"], strict=True) if not pd.isna(v)}

    def erase(self, figure_ids: set[str]) -> list[str]:
        """Erase the faces; returns the cluster ids deleted (left empty)."""
        before = set(self.state.clusters["cluster_id"].astype(str))
        self.state.remove_figures(sorted(figure_ids))
        if self.path is not None:
            self.state.save(self.path)
        return sorted(before - set(self.state.clusters["cluster_id"].astype(str)))

    def reload(self) -> None:
        if self.path is not None:
            self.__init__(self.path)  # type: ignore[misc]


def _clean(folder: Path) -> None:
    """Remove what killed writers left in a cache folder (uncommitted parts, temporary files)."""
    from imm_analysis.faces.cache import EmbeddingCache

    cache = EmbeddingCache.__new__(EmbeddingCache)  # clean_stale needs only the folder
    cache.dir = folder
    cache.clean_stale()


class CacheStore:
    """An embedding cache directory (every model folder in it) read chunk by chunk.

    ``clean=False`` (a dry run) reads without removing what killed writers left.
    """

    kind = "embedding_cache"

    def __init__(self, root: str | os.PathLike[str], *, clean: bool = True) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        self.clean = clean
        self.reload()

    def reload(self) -> None:
        self.chunks: list[C.Chunk] = []
        self.shadowed: list[C.Chunk] = []  # committed chunks whose every key an earlier chunk serves
        for folder in C.cache_folders(self.root):
            if self.clean:
                _clean(folder)
            seen: set[str] = set()
            for ch in C.read_chunks(folder):
                keys = set(ch.files["cache_key"].astype(str))
                (self.shadowed if keys and keys <= seen else self.chunks).append(ch)
                seen |= keys

    def faces(self) -> tuple[pd.DataFrame, np.ndarray]:
        frames = [face_frame(ch.figures) for ch in self.chunks + self.shadowed]
        embs = [ch.embeddings for ch in self.chunks + self.shadowed]
        if not frames:
            return face_frame(pd.DataFrame()), np.zeros((0, 0), np.float32)
        dims = {e.shape[1] for e in embs}
        emb = np.concatenate(embs) if len(dims) == 1 else np.zeros((sum(map(len, embs)), 0), np.float32)
        return pd.concat(frames, ignore_index=True), emb

    def file_keys(self, file_ids: set[str]) -> set[str]:
        keys: set[str] = set()
        for ch in self.chunks + self.shadowed:
            if file_ids and "file_id" in ch.files:
                hit = ch.files["file_id"].astype(str).isin(file_ids).to_numpy(bool)
                keys |= set(ch.files.loc[hit, "cache_key"].astype(str))
        return keys

    def plan(self, figure_ids: set[str], file_ids: set[str], tombstones: list[dict]) -> list[tuple[C.Chunk, np.ndarray]]:
        """(chunk, faces to erase) for every chunk that changes; shadowed chunks go whole."""
        out = []
        for ch in self.chunks:
            fig = ch.figures
            gone = fig["figure_id"].astype(str).isin(figure_ids).to_numpy(bool)
            if file_ids and "file_id" in fig:
                gone = gone | fig["file_id"].astype(str).isin(file_ids).to_numpy(bool)
            if tombstones:
                gone = gone | tombstoned_mask(fig, tombstones)
            drop_files = file_ids and "file_id" in ch.files and ch.files["file_id"].astype(str).isin(file_ids).any()
            if gone.any() or drop_files:
                out.append((ch, gone))
        return out

    def erase(self, figure_ids: set[str], file_ids: set[str], tombstones: list[dict]) -> dict[str, Any]:
        """Write tombstones, rewrite the chunks that change, remove shadowed chunks."""
        add_tombstones(self.root, tombstones, write=C._write_bytes)
        every = read_tombstones(self.root)
        keys = self.file_keys(file_ids)
        faces = 0
        for ch, gone in self.plan(figure_ids, file_ids, every):
            C.rewrite_chunk(ch, ~gone, drop_keys=keys)
            faces += int(gone.sum())
        for ch in self.shadowed:
            for suffix in (".files.parquet", ".npy", ".figures.parquet", ".errors.parquet"):
                C._remove_file(ch.folder / f"{ch.stem}{suffix}")
        return {"faces": faces, "chunks_removed": len(self.shadowed)}


class LibraryStore:
    """A search library (object or folder), duck-typed (see the module docstring)."""

    kind = "search_library"

    def __init__(self, library: Any) -> None:
        self.path: Path | None = None
        if isinstance(library, str | os.PathLike):
            self.path = Path(library)
            try:
                from imm_analysis.search import SearchLibrary  # type: ignore[import-not-found,import-untyped,unused-ignore]
            except ImportError as exc:
                raise TypeError(
                    f"{library}: a search library folder needs imm_analysis.search.SearchLibrary, which this "
                    "installation lacks; pass the library object instead (see imm_analysis.privacy.stores)"
                ) from exc
            library = SearchLibrary.load(self.path)
        if not hasattr(library, "faces") or not (hasattr(library, "remove") or hasattr(library, "remove_faces")):
            raise TypeError(f"{type(library).__name__} is not a search library: it needs .faces and .remove(media_ids)")
        self.library = library
        if self.path is None and getattr(library, "path", None) is not None:
            self.path = Path(library.path)
        self.location = str(self.path) if self.path is not None else "<in memory>"
        self.cache = self.path / "cache" if self.path is not None and (self.path / "cache").is_dir() else None

    def faces(self) -> tuple[pd.DataFrame, np.ndarray]:
        faces = self.library.faces
        col = "media_id" if "media_id" in faces.columns else "file_id"
        emb = getattr(self.library, "face_embeddings", None)
        emb = np.asarray(emb) if emb is not None else np.zeros((len(faces), 0), np.float32)
        return face_frame(faces, col), emb

    def erase(self, figure_ids: set[str], file_ids: set[str]) -> tuple[int, list[str], list[str]]:
        """Returns (faces removed, media removed, notes)."""
        f = self.faces()[0]
        gone = f["figure_id"].astype(str).isin(figure_ids) | f["file_id"].astype(str).isin(file_ids)
        notes: list[str] = []
        media = sorted(set(f.loc[gone, "file_id"].astype(str)))
        n_before = len(f)
        if hasattr(self.library, "remove_faces") and not (set(media) & file_ids):
            self.library.remove_faces(sorted(set(f.loc[gone, "figure_id"].astype(str))))
            media = []
        elif media:
            others = int((f["file_id"].astype(str).isin(media) & ~gone).sum())
            if others:
                notes.append(f"the library removes whole media: {others} face(s) of other people in the same "
                             "media left the library too (add the media again to bring them back)")
            self.library.remove(media)
        if self.path is not None and getattr(self.library, "path", None) is None:
            self.library.save(self.path)
        return n_before - len(self.library.faces), media, notes

    def reload(self) -> None:
        if self.path is not None and type(self.library).__name__ == "SearchLibrary":
            self.library = type(self.library).load(self.path)
