"""ClusterBrowser: page through clusters by size, look at their faces, and fix them by hand.

Every edit (merge, eject, rename, set cover) is written into the
:class:`~imm_analysis.cluster.state.ClusterState` through its edit methods, so it persists
(``state.save``) and survives later incremental runs (``state.update``). The browser is
drivable headless: its methods edit and return summaries; ``.widget`` builds the UI.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.quality import HD_FAIL_REASONS, HDRule, hd_mask
from imm_analysis.widgets._view import ViewOwner

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from imm_analysis.cluster.state import ClusterState
    from imm_analysis.viz.montage import ImageSource
    from imm_analysis.widgets._browser_view import BrowserView

__all__ = ["ClusterBrowser"]


class ClusterBrowser(ViewOwner["BrowserView"]):
    """Browse and edit a clustering, largest clusters first.

    Parameters
    ----------
    state : ClusterState
        The clustering to browse; edits go through its methods.
    images : ImageSource, optional
        Maps ``file_id`` / ``uri`` to local images for the face montages (see
        :func:`imm_analysis.viz.montage.load_face_crop`).
    page_size : int, default=8
        Clusters per page.
    max_faces : int, default=24
        Faces shown per cluster montage.

    Examples
    --------
    >>> from imm_analysis.cluster.state import ClusterState
    >>> from imm_analysis.synth import make_dataset
    >>> ds = make_dataset(8, seed=1, multi_face_share=0.0)  # one face per image: any clusters can merge
    >>> state = ClusterState.from_figures(ds.figures, ds.embeddings, threshold=0.45, seed=0)
    >>> browser = ClusterBrowser(state)
    >>> largest = browser.page_clusters[:2]  # the largest clusters
    >>> browser.merge(largest)["n_clusters"] == len(state.clusters)
    True
    >>> browser.rename(browser.selected, "regular customer 1")["name"]
    'regular customer 1'
    >>> browser.widget  # in Jupyter: the UI  # doctest: +ELLIPSIS
    VBox(...)
    """

    def __init__(self, state: ClusterState, images: ImageSource = None, *, page_size: int = 8, max_faces: int = 24):
        for attr in ("figures", "clusters", "merge", "eject", "rename", "set_cover"):
            if not hasattr(state, attr):
                raise TypeError(f"ClusterBrowser needs a ClusterState; {type(state).__name__} has no {attr!r}")
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.state = state
        self.images = images
        self.page_size = int(page_size)
        self.max_faces = int(max_faces)
        self.page = 0
        self.selected: str | None = None
        self._view: BrowserView | None = None
        self._select_default()

    # ------------------------------------------------------------------ navigation
    def clusters_by_size(self) -> pd.DataFrame:
        """The clusters frame, largest first (``face_count`` then ``cluster_id``).

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> bool(b.clusters_by_size()["face_count"].is_monotonic_decreasing)
        True
        """
        c = self.state.clusters.copy()
        c["_n"] = pd.to_numeric(c["face_count"], errors="coerce").fillna(0).astype("int64")
        c = c.sort_values(["_n", "cluster_id"], ascending=[False, True], kind="stable")
        return c.drop(columns="_n").reset_index(drop=True)

    @property
    def n_pages(self) -> int:
        """Number of pages (at least 1).

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> b.n_pages == -(-len(b.clusters_by_size()) // 3)
        True
        """
        return max(1, -(-len(self.state.clusters) // self.page_size))

    @property
    def page_clusters(self) -> list[str]:
        """Cluster ids on the current page, largest first.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> b.page_clusters == b.clusters_by_size()["cluster_id"].astype(str).tolist()[:3]
        True
        """
        c = self.clusters_by_size()
        start = self.page * self.page_size
        return c["cluster_id"].astype(str).iloc[start : start + self.page_size].tolist()

    def go(self, page: int) -> list[str]:
        """Show page ``page`` (0-based, clamped) and select its largest cluster; returns its ids.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> ids = b.go(99)  # clamped to the last page
        >>> b.page == b.n_pages - 1 and b.selected == ids[0]
        True
        """
        self.page = int(min(max(page, 0), self.n_pages - 1))
        ids = self.page_clusters
        self.selected = ids[0] if ids else None
        self.refresh()
        return ids

    def next_page(self) -> list[str]:
        """Go to the next page.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> _ = b.next_page()
        >>> b.page == min(1, b.n_pages - 1)
        True
        """
        return self.go(self.page + 1)

    def prev_page(self) -> list[str]:
        """Go to the previous page.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> _ = b.next_page()
        >>> _ = b.prev_page()
        >>> b.page
        0
        """
        return self.go(self.page - 1)

    def select(self, cluster_id: str) -> pd.DataFrame:
        """Select a cluster (moving to its page) and return its faces.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> cid = b.page_clusters[1]
        >>> faces = b.select(cid)
        >>> b.selected == cid and len(faces) == b.summary["face_count"]
        True
        """
        ids = self.clusters_by_size()["cluster_id"].astype(str).tolist()
        if str(cluster_id) not in ids:
            raise KeyError(f"no cluster {cluster_id!r} in the state")
        self.page = ids.index(str(cluster_id)) // self.page_size
        self.selected = str(cluster_id)
        self.refresh()
        return self.faces()

    def _select_default(self) -> None:
        ids = self.clusters_by_size()["cluster_id"].astype(str).tolist()
        if self.selected in ids:
            self.page = ids.index(self.selected) // self.page_size
            return
        self.page = int(min(self.page, self.n_pages - 1))
        on_page = ids[self.page * self.page_size : (self.page + 1) * self.page_size]
        self.selected = on_page[0] if on_page else (ids[0] if ids else None)

    def faces(self, cluster_id: str | None = None) -> pd.DataFrame:
        """The faces of a cluster (default the selected one), best ``face_quality`` first.

        Columns ``figure_id``, ``file_id``, ``face_quality``, ``is_hd``, ``hd_fail``, and the
        row position ``row`` in ``state.figures``.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> faces = b.faces()
        >>> bool(faces["face_quality"].is_monotonic_decreasing), len(faces) == b.summary["face_count"]
        (True, True)
        """
        cid = self.selected if cluster_id is None else str(cluster_id)
        f = self.state.figures
        mask = (f["figure_cluster_id"].astype("string") == cid).fillna(False).to_numpy(bool)
        rows = np.flatnonzero(mask)
        sub = f.iloc[rows]
        hd = self.state.hd[rows]
        # failure reasons exist only for IMM-style threshold rules; a custom rule gives none
        rule = getattr(self.state, "params", {}).get("hd_rule")
        reason = hd_mask(sub, rule)[1] if rule is None or isinstance(rule, (dict, HDRule)) else np.full(len(rows), -1)
        reason = np.where(hd, -1, reason)
        out = pd.DataFrame(
            {
                "row": rows,
                "figure_id": sub["figure_id"].astype("string").to_numpy(),
                "file_id": sub["file_id"].astype("string").to_numpy(),
                "face_quality": pd.to_numeric(sub["face_quality"], errors="coerce").to_numpy(dtype=float)
                if "face_quality" in sub.columns
                else np.nan,
                "is_hd": hd,
                "hd_fail": [None if r < 0 else HD_FAIL_REASONS[r] for r in reason],
            }
        )
        return out.sort_values("face_quality", ascending=False, kind="stable", na_position="last").reset_index(drop=True)

    def montage(self, cluster_id: str | None = None) -> Figure:
        """Montage of a cluster's faces (default the selected one), cover marked, non-HD flagged.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> fig = b.montage()
        >>> type(fig).__name__, len(fig.axes) >= 1
        ('Figure', True)
        """
        from imm_analysis.viz.montage import plot_cluster_montage

        cid = self.selected if cluster_id is None else str(cluster_id)
        if cid is None:
            raise ValueError("there are no clusters to show")
        name = self._row(cid).get("name")
        title = f"{cid}" + (f" ({name})" if isinstance(name, str) and name else "")
        return plot_cluster_montage(
            self.state.figures.assign(is_hd=self.state.hd), cid, self.images, clusters=self.state.clusters,
            max_faces=self.max_faces, title=f"{title}: {int(self._row(cid).get('face_count') or 0)} faces",
        )

    def _row(self, cid: str) -> pd.Series:
        c = self.state.clusters
        hit = c.loc[(c["cluster_id"].astype("string") == cid).fillna(False).to_numpy(bool)]
        return hit.iloc[0] if len(hit) else pd.Series(dtype=object)

    @property
    def summary(self) -> dict[str, Any]:
        """Where the browser stands: page, clusters, the selected cluster and its size, name and cover.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> s = b.summary
        >>> s["page"], s["n_edits"], s["selected"] == b.page_clusters[0]
        (0, 0, True)
        """
        row = self._row(self.selected) if self.selected else pd.Series(dtype=object)
        return {
            "page": self.page,
            "n_pages": self.n_pages,
            "n_clusters": len(self.state.clusters),
            "page_clusters": self.page_clusters,
            "selected": self.selected,
            "face_count": None if row.empty else int(row["face_count"]),
            "name": None if row.empty or pd.isna(row["name"]) else str(row["name"]),
            "cover_file_id": None if row.empty or pd.isna(row["cover_file_id"]) else str(row["cover_file_id"]),
            "n_edits": len(getattr(self.state, "edits", [])),
        }

    # ------------------------------------------------------------------ edits (through ClusterState)
    def merge(self, cluster_ids: Iterable[str], *, into: str | None = None) -> dict[str, Any]:
        """Merge clusters (into ``into``, default the largest) and select the result.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser(multi_face_share=0.0)  # one face per image: any clusters can merge
        >>> a, c = b.page_clusters[:2]
        >>> n = b.summary["n_clusters"]
        >>> out = b.merge([a, c], into=a)
        >>> out["selected"] == a and out["n_clusters"] == n - 1
        True
        """
        ids = [str(c) for c in cluster_ids]
        before = set(self.state.clusters["cluster_id"].astype(str))
        self.state.merge(ids, into=into)
        after = set(self.state.clusters["cluster_id"].astype(str))
        kept = [c for c in ids if c in after]
        self.selected = into if into is not None else (kept[0] if kept else None)
        if self.selected is None and after - before:
            self.selected = sorted(after - before)[0]
        return self._after_edit()

    def eject(self, figure_ids: Iterable[str] | str) -> dict[str, Any]:
        """Make faces independent for good (they never rejoin in later updates).

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> victim = b.faces()["figure_id"].iloc[-1]
        >>> _ = b.eject([victim])
        >>> victim in b.faces()["figure_id"].tolist()
        False
        """
        self.state.eject(figure_ids)
        return self._after_edit()

    def _target(self, cluster_id: str | None) -> str:
        cid = self.selected if cluster_id is None else str(cluster_id)
        if cid is None:
            raise ValueError("no cluster given and none selected: pass cluster_id or select() one first")
        return cid

    def rename(self, cluster_id: str | None, name: str | None) -> dict[str, Any]:
        """Name a cluster (default the selected one).

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> b.rename(None, "regular 1")["name"]
        'regular 1'
        """
        cid = self._target(cluster_id)
        self.state.rename(cid, name)
        self.selected = cid
        return self._after_edit()

    def set_cover(self, cluster_id: str | None, file_id: str) -> dict[str, Any]:
        """Make ``file_id`` (a file with one of the cluster's faces) the cluster's cover.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> b = demo_browser()
        >>> cover = b.faces()["file_id"].iloc[-1]
        >>> b.set_cover(None, cover)["cover_file_id"] == cover
        True
        """
        cid = self._target(cluster_id)
        self.state.set_cover(cid, file_id)
        self.selected = cid
        return self._after_edit()

    def _after_edit(self) -> dict[str, Any]:
        self._select_default()
        self.refresh()
        return self.summary

    # ------------------------------------------------------------------ widget (see ViewOwner)
    def _make_view(self) -> BrowserView:
        from imm_analysis.widgets._browser_view import BrowserView

        return BrowserView(self)
