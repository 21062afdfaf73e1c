"""The run and cache loop of one embedding run.

:class:`_Run` keeps the results in source order, pools aligned faces of several files for the
recognizer, commits them in chunks (written to :mod:`imm_analysis.faces.cache` as soon as made),
serves files already cached, and records failures as rows of ``errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.faces.prefetch import _Loaded
from imm_analysis.faces.result import _EXTRA_FIGURE_COLUMNS, ERROR_COLUMNS, EmbedResult
from imm_analysis.faces.rows import _Pending
from imm_analysis.faces.sources import _Item
from imm_analysis.io.media import clean_reason
from imm_analysis.schema import coerce_frame, empty_frame

if TYPE_CHECKING:
    from imm_analysis.faces.model import FaceModel

__all__: list[str] = []


class _Run:
    """State of one embedding run: output lists in source order, pending faces, cache."""

    def __init__(self, model: FaceModel, items: list[_Item], cache, batch_size: int, chunk_files: int) -> None:
        self.model = model
        self.cache = cache
        self.batch_size = batch_size
        self.chunk_files = chunk_files
        self.cached = cache.load() if cache is not None else {}
        self.slots: list[Any] = [None] * len(items)  # per item: (files_df, figures_df, emb, errors_df)
        self.pending: list[tuple[int, _Pending]] = []
        self.pending_errors: list[tuple[int, str, dict]] = []  # errors to commit with the next chunk
        self.seen: dict[str, str] = {}
        # per item: (how it settled, its cache key); read by imm_analysis.faces.distributed
        self.trace: list[tuple[str, str | None] | None] = [None] * len(items)
        self.n_faces_pending = 0
        self.stats = {"cached_files": 0, "new_files": 0, "errors": 0, "faces": 0}

    def error(self, pos: int, ld: _Loaded, err: tuple[str, str], *, cache: bool) -> None:
        row = {"uri": ld.item.uri, "path": str(ld.item.path), "file_id": ld.sha[:32] if ld.sha else None,
               "error": err[0], "reason": clean_reason(err[1])}
        self.stats["errors"] += 1
        self.slots[pos] = (None, None, None, pd.DataFrame([row]))
        if cache and self.cache is not None and ld.key is not None:
            self.pending_errors.append((pos, ld.key, row))

    def add(self, pos: int, pend: _Pending) -> None:
        self.pending.append((pos, pend))
        self.n_faces_pending += len(pend.crops)
        if self.n_faces_pending >= self.batch_size * 4 or len(self.pending) >= self.chunk_files:
            self.flush()

    def settled(self, pos: int, ld: _Loaded) -> bool:
        """Record a file that needs no inference (load error, duplicate content, cache hit); True if so."""
        if ld.error is not None:
            self.trace[pos] = ("load-error", ld.key)
            self.error(pos, ld, ld.error, cache=ld.error_cacheable and ld.key is not None)
            return True
        self.trace[pos] = ("duplicate" if ld.key in self.seen else "cached" if ld.cached else "new", ld.key)
        if ld.key in self.seen:
            self.error(pos, ld, ("DuplicateFile", f"same content as {self.seen[ld.key]} (embedded once)"), cache=False)
            return True
        assert ld.key is not None  # set for every file read without error
        self.seen[ld.key] = ld.item.uri
        if ld.cached:
            self.from_cache(pos, ld)
            return True
        return False

    def from_cache(self, pos: int, ld: _Loaded) -> None:
        e = self.cached[ld.key]
        self.stats["cached_files"] += 1
        if e.error:
            err = e.error[0]
            self.error(pos, ld, (str(err["error"]), clean_reason(str(err["reason"]))), cache=False)
            return
        path = str(ld.item.path)
        files = [dict(r, uri=ld.item.uri, filename=ld.item.path.name, extra={**(r.get("extra") or {}), "path": path})
                 for r in e.file]
        figs = [dict(r, uri=ld.item.uri) for r in e.figures]
        self.slots[pos] = (files, figs, e.embeddings, None)  # plain rows, like a new file's
        self.stats["faces"] += len(figs)

    def flush(self) -> None:
        if not self.pending and not self.pending_errors:
            return
        crops = [c for _, p in self.pending for c in p.crops]
        emb = (self.model.embed(np.stack(crops), batch_size=self.batch_size) if crops
               else np.zeros((0, self.model.embedding_dim), np.float32))
        keys, f_rows, g_rows, start = [], [], [], 0
        for pos, p in self.pending:
            n = len(p.crops)
            # plain rows here; frames are built once per chunk (cache) and once per run (result)
            self.slots[pos] = ([p.file_row], p.face_rows, emb[start : start + n], None)
            start += n
            keys.append(p.loaded.key)
            f_rows.append(dict(p.file_row, cache_key=p.loaded.key))
            g_rows += [dict(r, cache_key=p.loaded.key) for r in p.face_rows]
            self.stats["new_files"] += 1
            self.stats["faces"] += n
        if self.cache is not None:
            err_rows = [dict(r, cache_key=k) for _, k, r in self.pending_errors]
            keys += [k for _, k, _ in self.pending_errors]
            files_df = (coerce_frame(pd.DataFrame(f_rows), "files") if f_rows
                        else coerce_frame(pd.DataFrame({"cache_key": pd.Series([], dtype="string")}), "files"))
            figs_df = (coerce_frame(pd.DataFrame(g_rows), "figures") if g_rows
                       else empty_frame("figures", (*_EXTRA_FIGURE_COLUMNS, "cache_key")))
            errs = pd.DataFrame(err_rows, columns=[*ERROR_COLUMNS, "cache_key"]).astype("string")
            self.cache.write_chunk(keys, files_df, figs_df, emb, errs)
        self.pending, self.pending_errors, self.n_faces_pending = [], [], 0

    def result(self) -> EmbedResult:
        self.flush()
        files: list[pd.DataFrame] = []
        figs: list[pd.DataFrame] = []
        embs, errs = [], []
        f_buf: list[dict] = []
        g_buf: list[dict] = []

        def spill() -> None:
            if f_buf:
                files.append(pd.DataFrame(f_buf))
                f_buf.clear()
            if g_buf:
                figs.append(pd.DataFrame(g_buf))
                g_buf.clear()

        for slot in self.slots:
            if slot is None:
                continue
            f, g, e, r = slot
            if isinstance(f, list):  # fresh rows
                f_buf += f
                g_buf += g
            elif f is not None:  # frames from the cache
                spill()
                files.append(f)
                if g is not None and len(g):
                    figs.append(g)
            if e is not None and len(e):
                embs.append(e)
            if r is not None:
                errs.append(r)
        spill()
        files_df = coerce_frame(pd.concat(files, ignore_index=True), "files") if files else empty_frame("files")
        figs_df = (coerce_frame(pd.concat(figs, ignore_index=True), "figures") if figs
                   else empty_frame("figures", _EXTRA_FIGURE_COLUMNS))
        for col in _EXTRA_FIGURE_COLUMNS:
            if col not in figs_df:
                figs_df[col] = pd.Series(np.nan if col != "frame_index" else pd.NA, index=figs_df.index)
        figs_df = coerce_frame(figs_df, "figures")
        emb = np.concatenate(embs).astype(np.float32, copy=False) if embs else np.zeros((0, self.model.embedding_dim), np.float32)
        err_df = (pd.concat(errs, ignore_index=True) if errs else pd.DataFrame(columns=list(ERROR_COLUMNS)))
        err_df = err_df.astype(ERROR_COLUMNS)
        if len(emb) != len(figs_df):  # pragma: no cover - an internal invariant
            raise RuntimeError(f"internal error: {len(emb)} embeddings for {len(figs_df)} faces")
        if self.cache is not None:  # forgotten or expired faces never come back (imm_analysis.io.tombstones)
            figs_df, emb, files_df = _drop_tombstoned(self.cache.dir.parent, figs_df, emb, files_df)
        return EmbedResult(files_df, figs_df, emb, err_df, self.model.model_id, dict(self.stats))


def _drop_tombstoned(root, figs: pd.DataFrame, emb: np.ndarray,
                     files: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    from imm_analysis.io.tombstones import read_tombstones, tombstoned_mask

    tombstones = read_tombstones(root)
    gone = tombstoned_mask(figs, tombstones) if tombstones and len(figs) else np.zeros(len(figs), bool)
    if not gone.any():
        return figs, emb, files
    figs = figs.loc[~gone].reset_index(drop=True)
    if "figure_count" in files.columns and len(files):
        counts = figs.groupby(figs["file_id"].astype(str)).size()
        files = files.copy()
        files["figure_count"] = files["file_id"].astype(str).map(counts).fillna(0).astype(files["figure_count"].dtype)
    return figs, emb[~gone], files


def _decode_reduction(decode_scale: int | str) -> int:
    if decode_scale == "auto":
        return 8
    if decode_scale in (1, 2, 4, 8) and not isinstance(decode_scale, bool):
        return int(decode_scale)
    raise ValueError(f"decode_scale must be 'auto', 1, 2, 4 or 8, got {decode_scale!r}")


def _open_cache(cache_dir, model: FaceModel, mode: str, decode_scale: int = 1):
    if cache_dir is None:
        return None
    from imm_analysis.faces.cache import EmbeddingCache

    settings = {"mode": mode, "det_size": list(model.det_size), "det_thresh": model.det_thresh,
                "rec_norm": [model.rec_mean, model.rec_std]}
    if decode_scale != 1:  # full decoding keeps the settings (and so the cache folders) it always had
        settings["decode_scale"] = decode_scale
    if mode == "detect" and model.det_canvas != "square":  # likewise the padded canvas of the first release
        settings["det_canvas"] = model.det_canvas
    return EmbeddingCache(cache_dir, model.model_id, model.embedding_dim, settings)

