"""One small check per verdict of :func:`~imm_analysis.cluster.diagnose.diagnose_clustering`.

Each check has a ``name`` (the verdict), a ``description``, ``applies(facts)`` and
``headline(facts)``. :data:`CHECKS` lists them in the order they are tried; the first that
applies gives the verdict and the first finding.
"""

from __future__ import annotations

from typing import ClassVar

from imm_analysis.cluster.diagnose.facts import Facts

__all__ = [
    "CHECKS",
    "Check",
    "Clustered",
    "CouldForm",
    "NoFaces",
    "NoHDFaces",
    "NoSamePerson",
    "NotRun",
    "TooFewImages",
    "plural",
    "run_advice",
]


def plural(k: int, word: str) -> str:
    """``"1 face"``, ``"2 faces"``.

    >>> plural(2, "face")
    '2 faces'
    """
    return f"{k:,} {word}{'' if k == 1 else 's'}"


def run_advice(facts: Facts) -> str:
    """How to (re)run clustering: locally ``cluster_faces``, on IMM ``CreateFigureClusteringTask``.

    >>> from imm_analysis.quality import HDRule
    >>> run_advice(Facts({}, {}, None, 3, HDRule(), local=True)).startswith("call cluster_faces")
    True
    """
    if facts.local:
        return (
            "call cluster_faces(figures, embeddings) (or FigureClusterer.fit; ClusterState.update for faces "
            "added later) to cluster them locally"
        )
    return "call CreateFigureClusteringTask (it is incremental)"


class Check:
    """Base of the checks: a verdict ``name``, a ``description`` and two methods.

    Examples
    --------
    >>> [c.name for c in CHECKS][:2]
    ['no_faces', 'clustered']
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def applies(self, facts: Facts) -> bool:  # pragma: no cover - abstract
        """Whether this verdict holds (the checks before it did not)."""
        raise NotImplementedError

    def headline(self, facts: Facts) -> str:  # pragma: no cover - abstract
        """The first finding, in plain language."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<check {self.name}: {self.description}>"


class NoFaces(Check):
    """No face was indexed."""

    name = "no_faces"
    description = "No faces were indexed, so there is nothing to cluster."

    def applies(self, facts: Facts) -> bool:
        return facts.counts["faces"] == 0

    def headline(self, facts: Facts) -> str:
        if facts.local:
            return ("No faces were found, so there is nothing to cluster. Check that embed_images found the "
                    "images and that they show faces (its errors frame lists files it could not read).")
        return ("No faces were indexed, so there is nothing to cluster. Check that IndexFileMeta or CreateBinding "
                "indexed the images and that the images show faces (GetFileMeta lists Figures).")


class Clustered(Check):
    """Clusters exist."""

    name = "clustered"
    description = "Clustering has run and formed clusters."

    def applies(self, facts: Facts) -> bool:
        return facts.counts["clusters"] > 0

    def headline(self, facts: Facts) -> str:
        c = facts.counts
        return (f"Clustering has run: {plural(c['clusters'], 'cluster')} hold {plural(c['clustered'], 'face')} of "
                f"{c['faces']:,}; {c['independent']:,} faces are independent (in no cluster).")


class NotRun(Check):
    """Every face is ``figure-cluster-id-unavailable``."""

    name = "not_run"
    description = "Clustering has not run on these faces."

    def applies(self, facts: Facts) -> bool:
        return facts.counts["unavailable"] == facts.counts["faces"]

    def headline(self, facts: Facts) -> str:
        n = facts.counts["faces"]
        if facts.local:
            return (f"Clustering has not run on these faces: all {n:,} are figure-cluster-id-unavailable "
                    f"(found by the local pipeline, never clustered); {run_advice(facts)}.")
        return (f"Clustering has not run on these faces: all {n:,} are figure-cluster-id-unavailable. Call "
                "CreateFigureClusteringTask (it is incremental), wait for it to finish (usually seconds, up to "
                "180 s), then wait about 10 s before QueryFigureClusters or SimpleQuery.")


class NoHDFaces(Check):
    """No candidate face is high-definition."""

    name = "no_hd_faces"
    description = "None of the faces outside clusters is high-definition."

    def applies(self, facts: Facts) -> bool:
        return facts.counts["candidate_hd_faces"] == 0

    def headline(self, facts: Facts) -> str:
        return ("No cluster: clustering has run but none of the faces is high-definition, and a cluster is "
                f"founded only on {facts.min_faces} high-definition faces of one person.")


class TooFewImages(Check):
    """Candidate HD faces lie in fewer than ``min_faces`` images."""

    name = "too_few_images"
    description = "High-definition faces lie in too few distinct images to found a cluster."

    def applies(self, facts: Facts) -> bool:
        return facts.counts["candidate_hd_images"] < facts.min_faces

    def headline(self, facts: Facts) -> str:
        k = facts.counts["candidate_hd_images"]
        return (f"No cluster: only {plural(k, 'image')} holds a high-definition face, fewer than the "
                f"{facts.min_faces} images of one person needed.")


class NoSamePerson(Check):
    """Enough HD faces, but no person has ``min_faces`` of them."""

    name = "no_same_person"
    description = "Enough high-definition faces, but not of one person in enough images."

    def applies(self, facts: Facts) -> bool:
        return (facts.groups is not None and not facts.groups) or facts.counts["unavailable"] == 0

    def headline(self, facts: Facts) -> str:
        if facts.groups is not None and not facts.groups:
            return (f"No cluster: there are enough high-definition faces, but no person has {facts.min_faces} of "
                    "them in distinct images; add more good photos of the same people.")
        return ("No cluster: clustering has run; the high-definition faces probably show different people (fewer "
                f"than {facts.min_faces} images of any one person).")


class CouldForm(Check):
    """Faces indexed after the last run could form a cluster."""

    name = "could_form"
    description = "Faces not yet clustered could form a cluster once clustering runs again."

    def applies(self, facts: Facts) -> bool:
        return True

    def headline(self, facts: Facts) -> str:
        if facts.local:
            return ("No cluster yet: some faces are figure-cluster-id-unavailable (added after the last run); "
                    f"{run_advice(facts)}.")
        return ("No cluster yet: some faces are figure-cluster-id-unavailable (indexed after the last run); run "
                "CreateFigureClusteringTask again.")


#: The checks in the order they are tried.
CHECKS: tuple[Check, ...] = (
    NoFaces(), Clustered(), NotRun(), NoHDFaces(), TooFewImages(), NoSamePerson(), CouldForm()
)
