"""Input and output: IMM JSON responses (:mod:`imm_analysis.io.imm_json`) and media files.

The IMM JSON names are loaded lazily (``from imm_analysis.io import load_figures``), so
importing another ``imm_analysis.io`` module does not import the JSON readers.

* :mod:`~imm_analysis.io.imm_json`: ``load_clusters``, ``load_files``, ``load_figures``,
  ``load_files_and_figures``, ``to_imm_clusters``, ``to_imm_files`` (the public API)
* :mod:`~imm_analysis.io.media_clips`: ``load_media_clips`` (IMS ``SearchMediaClipByFace``) and the
  other face-search response loaders
* :mod:`~imm_analysis.io.sources`: paths, directories, globs, strings, file objects -> JSON documents
  (the JSON-text-or-path rule, empty inputs, encodings, special files)
* :mod:`~imm_analysis.io.limits`: the input limits below, and the checks that enforce them
* :mod:`~imm_analysis.io.records`: IMM response shapes -> pages of records
* :mod:`~imm_analysis.io.tables`, :mod:`~imm_analysis.io.columns`: records -> typed columns
* :mod:`~imm_analysis.io.assemble`: chunked conversion, duplicates, ``TotalCount`` checks -> frames
* :mod:`~imm_analysis.io.writers`: ``to_imm_clusters``, ``to_imm_files``
* :mod:`~imm_analysis.io.fast_jsonl`: pyarrow fast path for JSON Lines SimpleQuery exports
* :mod:`~imm_analysis.io.errors`: ``IMMFormatError``, ``IMMLoadWarning`` (picklable)
* :mod:`~imm_analysis.io.imm_sdk`: live fetching with the IMM SDK (client, retry, paging, fetch);
  :mod:`imm_analysis.imm` re-exports it
* :mod:`~imm_analysis.io.parquet`: ``write_frame`` / ``read_frame``, frames with dict columns as
  Parquet (used by saved clustering states and the embedding cache)
* :mod:`~imm_analysis.io.dataset`: ``exports_to_parquet`` (IMM JSON exports -> a partitioned
  Parquet dataset), ``read_figures_dask``; ``load_figures(dataset, columns=, filters=)`` reads it back
* :mod:`~imm_analysis.io.atomic`: crash-safe file writes (temporary file, fsync, ``os.replace``)

Input limits (:mod:`imm_analysis.io.limits`; a bad document is an :class:`IMMFormatError` naming
the file, the record and, where it can, the field, or a row of ``attrs["errors"]``):

* ``MAX_DEPTH = 64``: nesting of objects and arrays in one JSON document;
* ``MAX_LINE_BYTES = 64 MiB``: one line of a ``.jsonl`` / ``.ndjson`` file;
* ``MAX_DOCUMENT_BYTES = 1 GiB``: one ``.json`` document, string or bytes source (decompressed);
  also the largest ``.jsonl`` file the pyarrow fast path reads (larger ones stream line by line);
* integer columns hold int64 (``INT64_MIN`` .. ``INT64_MAX``): a value outside is an error, never a
  wrapped number; integers beyond 2**53 are kept exact.
"""

from __future__ import annotations

from imm_analysis._lazy import attach

_EXPORTS = {
    "load_clusters": "imm_analysis.io.imm_json",
    "load_files": "imm_analysis.io.imm_json",
    "load_figures": "imm_analysis.io.imm_json",
    "load_files_and_figures": "imm_analysis.io.imm_json",
    "to_imm_clusters": "imm_analysis.io.imm_json",
    "to_imm_files": "imm_analysis.io.imm_json",
    "load_tasks": "imm_analysis.io.tasks",
    "load_media_clips": "imm_analysis.io.media_clips",
    "exports_to_parquet": "imm_analysis.io.dataset",
    "read_figures_dask": "imm_analysis.io.dataset",
    "IMMFormatError": "imm_analysis.io.errors",
    "IMMLoadWarning": "imm_analysis.io.errors",
}


# submodules reachable as attributes (``imm_analysis.io.media.read_image``) without an explicit import
_SUBMODULES = {"media", "paths", "atomic", "parquet", "limits", "imm_sdk"}
__all__ = sorted([*_EXPORTS, *_SUBMODULES])

__getattr__, __dir__ = attach(__name__, _EXPORTS, _SUBMODULES)
