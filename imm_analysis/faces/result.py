"""What :func:`~imm_analysis.faces.embed.embed_images` and ``embed_crops`` return."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from imm_analysis.schema import coerce_frame

__all__ = ["EmbedResult", "ERROR_COLUMNS"]

#: Columns of :attr:`EmbedResult.errors`.
ERROR_COLUMNS = {"uri": "string", "path": "string", "file_id": "string", "error": "string", "reason": "string"}
_EXTRA_FIGURE_COLUMNS = ("det_score", "timestamp", "frame_index")


# ---------------------------------------------------------------------------------------------- result
@dataclass
class EmbedResult:
    """What :func:`embed_images` / :func:`embed_crops` return.

    Attributes
    ----------
    files : DataFrame
        One row per usable file (``load_files`` columns; ``figure_count`` filled).
    figures : DataFrame
        One row per face (``load_figures`` columns plus ``det_score``, ``timestamp``, ``frame_index``).
    embeddings : ndarray of float32, shape (n_faces, dim)
        L2-normalised, row-aligned with ``figures``.
    errors : DataFrame
        One row per file that could not be used: ``uri, path, file_id, error, reason``.
    model_id : str
        The :attr:`FaceModel.model_id` that made the embeddings.
    """

    files: pd.DataFrame
    figures: pd.DataFrame
    embeddings: np.ndarray
    errors: pd.DataFrame
    model_id: str
    stats: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.figures)

    def __repr__(self) -> str:
        return (
            f"EmbedResult({len(self.files)} files, {len(self.figures)} faces, {len(self.errors)} errors, "
            f"dim={self.embeddings.shape[1] if self.embeddings.ndim == 2 else 0}, model_id={self.model_id!r})"
        )

    @staticmethod
    def concat(results: Sequence[EmbedResult]) -> EmbedResult:
        """Stack several results made by the same model; raises ``ValueError`` when model ids differ."""
        if not results:
            raise ValueError("nothing to concatenate")
        ids = {r.model_id for r in results}
        if len(ids) > 1:
            raise ValueError(f"cannot mix embeddings of different models: {sorted(ids)}")
        return EmbedResult(
            files=coerce_frame(pd.concat([r.files for r in results], ignore_index=True), "files"),
            figures=coerce_frame(pd.concat([r.figures for r in results], ignore_index=True), "figures"),
            embeddings=np.concatenate([r.embeddings for r in results]).astype(np.float32, copy=False),
            errors=pd.concat([r.errors for r in results], ignore_index=True),
            model_id=results[0].model_id,
        )

