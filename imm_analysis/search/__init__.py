"""Face search in photos and videos: find a person, and the clips where they appear.

* :mod:`~imm_analysis.search.library`: :func:`build_search_library`, :class:`SearchLibrary`
  (photo faces and video tracks, searched by face, saved and reopened)
* :mod:`~imm_analysis.search.tracks`: linking the faces of a video into tracks
* :mod:`~imm_analysis.search.score`: the library's own threshold and its similarity score
* :mod:`~imm_analysis.search.shapes`: answers shaped as IMS ``SearchMediaByFace`` /
  ``SearchMediaClipByFace`` and IMM ``SearchImageFigureCluster`` / ``CompareImageFaces``
* :mod:`~imm_analysis.search.query`: the faces of a query image
* the ``index`` and ``search`` command-line subcommands live in :mod:`imm_analysis.cli.search`

Responses are read back with :func:`imm_analysis.load_media_clips` and the other loaders of
:mod:`imm_analysis.io.media_clips`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imm_analysis._lazy import attach

_EXPORTS = {
    "build_search_library": "imm_analysis.search.library",
    "SearchLibrary": "imm_analysis.search.library",
    "search_media_by_face": "imm_analysis.search.shapes",
    "search_media_clip_by_face": "imm_analysis.search.shapes",
    "search_image_figure_cluster": "imm_analysis.search.shapes",
    "compare_image_faces": "imm_analysis.search.shapes",
    "NoFaceError": "imm_analysis.search.query",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.search.library import SearchLibrary, build_search_library
    from imm_analysis.search.query import NoFaceError
    from imm_analysis.search.shapes import (
        compare_image_faces,
        search_image_figure_cluster,
        search_media_by_face,
        search_media_clip_by_face,
    )

__getattr__, __dir__ = attach(__name__, _EXPORTS)
