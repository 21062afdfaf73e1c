"""Embedding on a Dask cluster: ``embed_images(..., client=)`` and ``embed_crops(..., client=)``.

How it runs
-----------
1. Before any work: the scheduler is reached (a scheduler address that cannot be reached, or a
   ``Client`` whose scheduler is gone, raises :class:`ConnectionError`), and every worker loads
   the model pack once (``Client.run``) and checks that it makes the driver's ``model_id``;
   a worker without the pack, or with other weights, raises :class:`PackError` naming the
   worker. The model stays loaded in each worker process (a per-process cache keyed by the
   pack and its settings), so no task loads it again.
2. The resolved files are cut into batches in source order, one Dask task per batch. A task runs
   the single-process loop (:func:`imm_analysis.faces.embed.embed_images`' own code) over its
   batch with ``cache_dir``: each chunk is written into the shared cache with the project's
   atomic writers (:mod:`imm_analysis.faces.cache`), and files already committed there are
   skipped. The task returns only, per file, how it settled and its cache key (or its error row).
3. The driver assembles the answer from the cache in source order, with the same rules as a
   single process (a file whose bytes repeat an earlier one's is a ``DuplicateFile`` error), so
   the result equals the single-process answer: same ids, same rows, embeddings within float
   tolerance (onnxruntime on another process may differ in the last bits).

Exactly once
------------
A worker killed in the middle (even SIGKILL) loses nothing: Dask retries its tasks on another
worker (``distributed.scheduler.allowed-failures``), the retried task skips the chunks the dead
one committed, and a chunk it left half written has no commit record, so it is ignored and later
removed. The cache reads each key once, so every file appears exactly once in the result. A
second run skips what is done, as in one process.

Requirements
------------
``cache_dir`` must be on storage every worker and the driver see (a shared folder, one machine's
disk for a ``LocalCluster``); stale-part cleaning uses process ids of one machine, see
:mod:`imm_analysis.faces.cache`. Workers need ``imm_analysis[faces]`` and the model pack at the
same path as the driver.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis._optional import require
from imm_analysis.faces.cache import CachedEntry, EmbeddingCache
from imm_analysis.faces.pack import PackError

if TYPE_CHECKING:
    from imm_analysis.faces.model import FaceModel
    from imm_analysis.faces.result import EmbedResult
    from imm_analysis.faces.sources import _Item

__all__ = ["embed_on_cluster", "connect", "model_spec", "worker_model"]

logger = logging.getLogger(__name__)

#: seconds to wait for a scheduler given by its address
CONNECT_TIMEOUT = 10.0

_MODELS: dict[str, FaceModel] = {}  # per worker process: spec -> loaded model
_MODELS_LOCK = threading.Lock()
_DONE: dict[str, dict[str, set[str]]] = {}  # per process: cache folder -> {commit record: its keys}
_DONE_LOCK = threading.Lock()


# ------------------------------------------------------------------------------------------ client
def connect(client: Any, *, timeout: float | None = None) -> tuple[Any, bool]:
    """``(client, created)``: a ``dask.distributed.Client`` from a client or a scheduler address.

    Raises :class:`ConnectionError` naming the address when the scheduler cannot be reached
    within ``timeout`` seconds (default :data:`CONNECT_TIMEOUT`) or has no workers.

    Examples
    --------
    >>> connect("tcp://127.0.0.1:9", timeout=1)  # doctest: +SKIP
    Traceback (most recent call last):
    ConnectionError: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9' within 1s: ...
    """
    distributed = require("dask.distributed", purpose="running on a Dask cluster")
    timeout = CONNECT_TIMEOUT if timeout is None else float(timeout)
    created = False
    if isinstance(client, (str, os.PathLike)):
        address = str(client)
        try:
            client = distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {address!r} within {timeout:g}s: {exc}"
            ) from None
        created = True
    elif not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a dask.distributed.Client or a scheduler address, got {type(client).__name__}")
    try:  # a client made here is closed again when the checks fail
        if client.status != "running":
            raise ConnectionError(f"the Dask client {client} is {client.status}, not running")
        try:
            n = len(client.scheduler_info().get("workers", {}))
        except (OSError, TimeoutError) as exc:  # pragma: no cover - a scheduler gone since
            raise ConnectionError(f"the Dask scheduler of {client} cannot be reached: {exc}") from None
        if n == 0:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (OSError, TimeoutError):
                raise ConnectionError(f"the Dask scheduler at {client.scheduler.address} has no workers") from None
    except BaseException:
        if created:
            client.close()
        raise
    return client, created


# ------------------------------------------------------------------------------------------ models
def model_spec(model: FaceModel) -> dict:
    """The arguments that rebuild ``model`` in another process (a JSON-able dict).

    Examples
    --------
    >>> from imm_analysis import FaceModel
    >>> spec = model_spec(FaceModel("../shared/models/mbf128_det500m"))  # doctest: +SKIP
    >>> sorted(spec)  # doctest: +SKIP
    ['det_canvas', 'det_size', 'det_thresh', 'pack', 'providers', 'rec_norm', 'roles', 'threads']
    """
    return {
        "pack": str(Path(model.pack).resolve()),
        "det_size": list(model.det_size),
        "det_thresh": model.det_thresh,
        "providers": list(model.providers),
        "threads": model.threads,
        "roles": {role: Path(p).name for role, p in model.files.items()},
        "rec_norm": [model.rec_mean, model.rec_std],
        "det_canvas": model.det_canvas,
    }


def worker_model(spec: dict, model_id: str) -> FaceModel:
    """This process's model for ``spec``, loaded on first use and then kept.

    Raises :class:`PackError` when the pack is missing here or makes another ``model_id``.

    Examples
    --------
    >>> model = worker_model(spec, model.model_id)  # doctest: +SKIP
    """
    key = json.dumps(spec, sort_keys=True)
    with _MODELS_LOCK:  # one load per process, also with several worker threads
        model = _MODELS.get(key)
        if model is None:
            from imm_analysis.faces.model import FaceModel

            if not Path(spec["pack"]).is_dir():
                raise PackError(f"model pack {spec['pack']} is not a folder on this worker")
            model = FaceModel(
                spec["pack"], det_size=tuple(spec["det_size"]), det_thresh=spec["det_thresh"],
                providers=spec["providers"], threads=spec["threads"], roles=spec["roles"],
                rec_norm=tuple(spec["rec_norm"]), det_canvas=spec["det_canvas"],
            )
            _MODELS[key] = model
    if model.model_id != model_id:
        raise PackError(f"model pack {spec['pack']} here is {model.model_id!r}, not the driver's {model_id!r}")
    return model


def _check_pack(spec: dict, model_id: str) -> str | None:
    """Run on every worker before the work: None, or why this worker cannot embed."""
    try:
        worker_model(spec, model_id)
    except Exception as exc:  # noqa: BLE001 - reported to the driver, which raises
        return f"{type(exc).__name__}: {exc}"
    return None


# ------------------------------------------------------------------------------------------ tasks
class _KeysCache(EmbeddingCache):
    """The cache as a worker needs it: which keys are committed, read incrementally, no payloads."""

    def load(self) -> dict[str, CachedEntry]:
        import pyarrow.parquet as pq

        folder = str(self.dir)
        with _DONE_LOCK:  # records read before are not read again; a record removed since drops its keys
            known = _DONE.setdefault(folder, {})
            present = {p.name for p in self.dir.glob("part-*.files.parquet")}
            for name in set(known) - present:
                del known[name]
            for name in sorted(present - set(known)):
                col = pq.read_table(self.dir / name, columns=["cache_key"]).column(0).to_pylist()
                known[name] = {str(k) for k in col}
            done = set().union(*known.values()) if known else set()
        empty = np.zeros((0, self.dim), np.float32)
        return {k: CachedEntry(k, [], [], empty, []) for k in done}


def _embed_batch(kind: str, items: list[_Item], spec: dict, model_id: str, cache: tuple, options: dict) -> dict:
    """One task: embed ``items`` into the shared cache; per item ``(stage, key, error row)``."""
    from imm_analysis.faces.embed import _crops_run, _images_run

    model = worker_model(spec, model_id)
    store = _KeysCache(*cache)
    run = (_images_run if kind == "images" else _crops_run)(items, model, store, progress=False, **options)
    out = []
    for trace, slot in zip(run.trace, run.slots, strict=True):
        stage, key = trace if trace is not None else ("load-error", None)
        err = None
        if slot is not None and slot[3] is not None:
            err = {k: (None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v)
                   for k, v in slot[3].iloc[0].to_dict().items()}
        out.append((stage, key, err))
    return {"items": out, "stats": {k: run.stats[k] for k in ("cached_files", "new_files")}}


# ------------------------------------------------------------------------------------------ driver
def embed_on_cluster(
    kind: str,
    items: list[_Item],
    model: FaceModel,
    client: Any,
    cache_dir: str | os.PathLike[str] | None,
    options: dict,
    *,
    progress: bool = True,
    task_files: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> EmbedResult:
    """Embed resolved ``items`` on the workers of ``client``; the engine of ``embed_*(client=)``.

    Parameters
    ----------
    kind : {"images", "crops"}
    items : list
        Resolved sources (:func:`imm_analysis.faces.sources.resolve_sources`).
    model : FaceModel
        The driver's model; workers load the same pack (same ``model_id``).
    client : dask.distributed.Client or str
        A client, or a scheduler address.
    cache_dir : path-like
        Required: where the workers write their results, seen by every worker and the driver.
    options : dict
        The keyword arguments of the single-process loop.
    progress : bool, default=True
        One tqdm bar over files done for the whole run.
    task_files : int, optional
        Files per task. Default: at least ``chunk_files`` (a task commits whole chunks), about four
        tasks per worker on large runs, at most one task per worker's share.
    on_progress : callable, optional
        Called as ``on_progress(files_done, files_total)`` after each finished task.

    Returns
    -------
    EmbedResult
        Equal to the single-process answer.

    Examples
    --------
    >>> from dask.distributed import Client, LocalCluster  # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))  # doctest: +SKIP
    >>> res = embed_crops("../shared/faces/lfw_dev", model, cache_dir="cache", client=client)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from imm_analysis.faces.embed import _open_cache
    from imm_analysis.faces.run import _Run

    if kind not in ("images", "crops"):
        raise ValueError(f"kind must be 'images' or 'crops', got {kind!r}")
    if task_files is not None and (isinstance(task_files, bool) or int(task_files) != task_files or task_files < 1):
        raise ValueError(f"task_files must be a whole number >= 1, got {task_files!r}")
    if cache_dir is None:
        raise ValueError("cache_dir is required with client=: the workers write their results there "
                         "(a folder every worker and this process can read)")
    distributed = require("dask.distributed", purpose="embedding on a Dask cluster")
    client, created = connect(client)
    try:
        spec = model_spec(model)
        try:
            problems = client.run(_check_pack, spec, model.model_id)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"the Dask scheduler of {client} cannot be reached: {exc}") from None
        bad = {w: p for w, p in problems.items() if p is not None}
        if bad:
            lines = "; ".join(f"{w}: {p}" for w, p in sorted(bad.items()))
            raise PackError(f"{len(bad)} of {len(problems)} Dask workers cannot load the model pack: {lines}")
        if kind == "images":
            cache = _open_cache(cache_dir, model, "detect", decode_scale=options["reduce"])
        else:
            cache = _open_cache(cache_dir, model, "crop" if options["detect"] else "crop-nodetect")
        assert cache is not None
        cache_args = (str(Path(cache_dir).expanduser()), model.model_id, model.embedding_dim, cache.settings)
        n_workers = max(1, len(problems))
        # a task commits whole chunks (each chunk costs a few fsynced files): at least chunk_files per
        # task, about four tasks per worker on large runs, one per worker on small ones
        chunk = int(options["chunk_files"])
        n = max(1, len(items))
        size = int(task_files) if task_files is not None else max(1, min(max(chunk, math.ceil(n / (4 * n_workers))), math.ceil(n / n_workers)))
        batches = [items[i : i + size] for i in range(0, len(items), size)]
        opts = dict(options, chunk_files=min(chunk, size))
        token = uuid.uuid4().hex[:8]
        futures = [
            client.submit(_embed_batch, kind, b, spec, model.model_id, cache_args, opts,
                          key=f"imm-embed-{kind}-{token}-{i}", pure=False)
            for i, b in enumerate(batches)
        ]
        index = {f.key: i for i, f in enumerate(futures)}
        answers: list[Any] = [None] * len(batches)
        done = 0
        bar = tqdm(total=len(items), desc=f"embedding {kind} on {n_workers} workers", unit="file",
                   disable=not progress)
        try:
            with client.as_current():  # as_completed finds the client of these futures
                finished = distributed.as_completed(futures)
            for fut in finished:
                i = index[fut.key]
                answers[i] = fut.result()  # raises the task's error (after Dask's retries)
                fut.release()
                done += len(batches[i])
                bar.update(len(batches[i]))
                if on_progress is not None:
                    on_progress(done, len(items))
        except BaseException:
            client.cancel(futures)
            raise
        finally:
            bar.close()
        return _assemble(model, items, cache, answers, _Run)
    finally:
        if created:
            client.close()


def _assemble(model: FaceModel, items: list[_Item], cache: EmbeddingCache, answers: Sequence[dict], run_cls: Any) -> EmbedResult:
    """The result in source order from the cache, with the single-process rules for each file."""
    from imm_analysis.faces.prefetch import _Loaded

    run = run_cls(model, items, cache, 1, 1)
    pos = new = 0
    for ans in answers:
        for stage, key, err in ans["items"]:
            item = items[pos]
            if stage == "load-error" or (key is None):
                run.slots[pos] = (None, None, None, pd.DataFrame([err]))
                run.stats["errors"] += 1
            elif key in run.seen:  # same bytes as an earlier file (in this batch or another)
                ld = _Loaded(item, key=key, sha=key.split("@")[0])
                run.settled(pos, ld)
            elif err is not None:  # failed after it was read (a late error)
                run.seen[key] = item.uri
                run.slots[pos] = (None, None, None, pd.DataFrame([err]))
                run.stats["errors"] += 1
            else:
                if key not in run.cached:
                    raise RuntimeError(f"internal error: {item.path} is not in the cache {cache.dir} after its task")
                run.settled(pos, _Loaded(item, key=key, sha=key.split("@")[0], cached=True))
                new += stage == "new"
            pos += 1
    run.pending_errors = []  # the workers committed them
    # as one process counts them: files embedded by this run, files found in the cache
    run.stats["cached_files"] -= new
    run.stats["new_files"] = new
    return run.result()
