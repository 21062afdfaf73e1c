""":class:`ErasureReceipt`: what :func:`~imm_analysis.forget` removed from each store, when, and its check.

The receipt holds ids and counts only: no embedding, no image, no similarity vector. Its
verification is a nearest-neighbour search of the forgotten faces' embeddings against every store
*after* the erasure (read back from disk where the store is a folder); it passes when no stored
face is at or above the threshold and no store still holds a forgotten ``figure_id``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from imm_analysis.io.atomic import atomic_write_bytes

__all__ = ["ErasureReceipt", "StoreErasure"]


@dataclass
class StoreErasure:
    """What one store lost (or would lose, in a dry run)."""

    store: str  # "embedding_cache", "cluster_state", "search_library", "outputs"
    location: str  # folder, or "<in memory>"
    faces: int = 0
    figure_ids: list[str] = field(default_factory=list)
    file_ids: list[str] = field(default_factory=list)
    clusters_removed: list[str] = field(default_factory=list)
    files_rewritten: dict[str, int] = field(default_factory=dict)
    files_removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # verification, filled after the erasure
    remaining_ids: int = 0
    max_similarity: float | None = None
    checked_faces: int = 0


@dataclass
class ErasureReceipt:
    """The record of one :func:`~imm_analysis.forget` call.

    Attributes
    ----------
    time : str
        ISO 8601 UTC time of the erasure.
    dry_run : bool
        True when nothing was changed (the counts say what would go).
    threshold : float or None
        Cosine similarity from which two faces count as the same person; None when only exact
        figure and file ids were targeted (no similarity is used then).
    threshold_source : str
        ``"given"``, ``"calibrate_threshold"`` (on the stores' embeddings) or ``"not needed"``.
    targets : dict
        How many targets of each kind were given (cluster, figure, file, face query).
    stores : list of StoreErasure
        One entry per store.
    tombstones : int
        Tombstones written (content id and box of each erased face).
    verified : bool or None
        True when the verification found no trace; None in a dry run.

    Examples
    --------
    >>> r = ErasureReceipt(time="2024-01-01T00:00:00+00:00", dry_run=True, threshold=0.4,
    ...                    threshold_source="given", targets={"cluster": 1})
    >>> r.to_dict()["stores"]
    []
    """

    time: str
    dry_run: bool
    threshold: float | None
    threshold_source: str
    targets: dict[str, int]
    stores: list[StoreErasure] = field(default_factory=list)
    tombstones: int = 0
    verified: bool | None = None

    @property
    def faces(self) -> int:
        """Faces erased over every store (a face kept in several stores counts in each)."""
        return sum(s.faces for s in self.stores)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (ids, counts and similarities of the check; no embedding or image)."""
        return asdict(self)

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The receipt as JSON text; written atomically to ``path`` when given.

        Examples
        --------
        >>> r = ErasureReceipt(time="t", dry_run=False, threshold=0.4, threshold_source="given", targets={})
        >>> json.loads(r.to_json())["threshold"]
        0.4
        """
        text = json.dumps(self.to_dict(), indent=1, default=str)
        if path is not None:
            atomic_write_bytes(Path(path), text.encode("utf-8"))
        return text

    def __repr__(self) -> str:
        what = ", ".join(f"{s.store} {s.faces}" for s in self.stores) or "no store"
        state = "dry run" if self.dry_run else ("verified" if self.verified else "NOT verified")
        t = "None" if self.threshold is None else f"{self.threshold:.3f}"
        return f"ErasureReceipt({self.time}, {what} face(s), threshold={t}, {state})"
