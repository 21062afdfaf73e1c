"""Pick a cosine-similarity threshold from the embeddings alone, for any recognizer.

Random pairs of faces are, in a collection with many people, almost all pairs of different
people. Their similarities describe the impostor distribution of *this* recognizer on *this*
data; a threshold far enough in its upper tail keeps false matches at a chosen rate without
any per-model constant (a 128-d MobileFaceNet and a 512-d ArcFace get different thresholds).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from scipy.special import log_ndtr, ndtri, ndtri_exp

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.cluster.knn import KNNGraph

__all__ = ["DEFAULT_JOIN_FMR_FACTOR", "DEFAULT_TARGET_FMR", "calibrate_threshold", "looser_threshold", "pair_similarities"]

#: Default false-match rate per pair of different people.
DEFAULT_TARGET_FMR = 1e-5
#: Default ratio of the join level's false-match rate to the founding threshold's (one decade).
DEFAULT_JOIN_FMR_FACTOR = 10.0
_BLOCK = 16_384
_TRIM_Z = 3.0  # pairs above centre + 3 scales are treated as possibly same-person while fitting
_FEW_IDENTITIES_RATE = 0.05


def pair_similarities(
    embeddings: np.ndarray, n_pairs: int = 200_000, *, random_state: int | np.random.Generator | None = 0
) -> np.ndarray:
    """Cosine similarities of ``n_pairs`` random pairs of distinct rows (all pairs when fewer exist).

    Rows need not be normalised: each sampled pair is divided by its two norms. Works in blocks
    of rows, so memory stays O(block x dim) whatever the size of ``embeddings``.

    Examples
    --------
    >>> x = np.eye(4, dtype=np.float32)
    >>> pair_similarities(x).tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-d (n_faces, dim), got shape {x.shape}")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 embeddings to sample pairs, got {n}")
    total = n * (n - 1) // 2
    if total <= n_pairs:
        i, j = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(random_state)
        i = rng.integers(0, n, size=n_pairs)
        j = (i + rng.integers(1, n, size=n_pairs)) % n  # never equal to i
    out = np.empty(len(i), dtype=np.float64)
    for s in range(0, len(i), _BLOCK):
        a = np.asarray(x[i[s : s + _BLOCK]], dtype=np.float32)
        b = np.asarray(x[j[s : s + _BLOCK]], dtype=np.float32)
        dot = np.einsum("ij,ij->i", a, b, dtype=np.float64)
        den = np.linalg.norm(a, axis=1).astype(np.float64) * np.linalg.norm(b, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s : s + _BLOCK] = dot / den
    if not np.isfinite(out).all():
        raise ValueError("embeddings contain zero, NaN or infinite rows; cosine similarity is undefined for them")
    return out


def _fit_impostor(sims: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """Robust centre, lower and upper scale of the impostor similarities (trimming the top)."""
    kept = sims
    for _ in range(8):
        q16, centre, q84 = np.quantile(kept, [0.158655, 0.5, 0.841345])
        lo, hi = centre - q16, q84 - centre
        cut = centre + _TRIM_Z * min(lo, hi)
        new = sims[sims <= cut]
        if len(new) == len(kept):
            break
        kept = new
    return float(centre), float(lo), float(hi), kept


@overload
def calibrate_threshold(
    embeddings: np.ndarray,
    *,
    target_fmr: float = ...,
    knn: KNNGraph | None = ...,
    n_pairs: int = ...,
    random_state: int | np.random.Generator | None = ...,
    return_details: Literal[False] = ...,
) -> float: ...


@overload
def calibrate_threshold(
    embeddings: np.ndarray,
    *,
    target_fmr: float = ...,
    knn: KNNGraph | None = ...,
    n_pairs: int = ...,
    random_state: int | np.random.Generator | None = ...,
    return_details: Literal[True],
) -> tuple[float, dict[str, Any]]: ...


def calibrate_threshold(
    embeddings: np.ndarray,
    *,
    target_fmr: float = DEFAULT_TARGET_FMR,
    knn: KNNGraph | None = None,
    n_pairs: int = 200_000,
    random_state: int | np.random.Generator | None = 0,
    return_details: bool = False,
) -> float | tuple[float, dict[str, Any]]:
    """Choose a cosine-similarity threshold from unlabelled embeddings at a target false-match rate.

    Parameters
    ----------
    embeddings : ndarray of shape (n, d)
        Face embeddings of any recognizer (128-d, 512-d, ...); ideally L2-normalised (each
        sampled pair is normalised anyway).
    target_fmr : float, default=1e-5
        Wanted probability that two faces of *different* people have a similarity at or above
        the threshold. Lower is stricter (fewer false merges, more split people).
    knn : KNNGraph, optional
        A neighbour graph of these embeddings (``build_knn``). Not needed for the threshold;
        when given, the details also report the share of faces whose nearest neighbour passes
        the threshold and the median similarity of those matches (a genuine-side estimate).
    n_pairs : int, default=200_000
        Random pairs to sample (all pairs when the collection has fewer).
    random_state : int, Generator or None, default=0
        Seed of the pair sampling; the result is deterministic for a given seed.
    return_details : bool, default=False
        Also return a dict describing the fit.

    Returns
    -------
    threshold : float
        Faces belong together when their cosine similarity is ``>= threshold``.
    details : dict, only with ``return_details=True``
        ``threshold``, ``target_fmr``, ``z`` (standard-normal quantile used), ``centre``,
        ``scale_lower``, ``scale_upper`` (robust fit of the impostor distribution),
        ``n_pairs``, ``trimmed_share`` (share of sampled pairs set aside as possibly
        same-person), ``observed_rate`` (share of sampled pairs at or above the threshold),
        ``expected_false_pairs`` (``target_fmr`` x number of pairs in the collection),
        ``matched_share`` and ``genuine_median`` (with ``knn``) and ``warnings``.

    Notes
    -----
    Method:

    1. Sample ``n_pairs`` random pairs of distinct faces and compute their cosine similarity.
    2. Fit the impostor (different-person) distribution robustly: the centre is the median
       and the scales are the distances from it to the 15.9 % and 84.1 % quantiles (one
       standard deviation each side for a normal law, so skew is allowed). Pairs above
       centre + 3 x the smaller scale are set aside and the fit repeated until stable, so
       that same-person pairs among the random pairs do not inflate it.
    3. Return ``centre + z * scale_upper`` with ``z`` the standard-normal quantile of
       ``1 - target_fmr`` (4.26 for 1e-5): a normal tail extrapolated from the central part.

    Assumptions: many identities and few faces per identity relative to ``n`` (random pairs
    are then mostly different people: with identity shares ``p_i`` the same-person share of
    pairs is ``sum p_i**2``); embeddings compared by cosine (L2-normalised); the impostor
    distribution is roughly normal in its upper tail.

    Failure modes: with few identities (a family album, one person in half the photos)
    random pairs mix two modes and the fit can be pulled up; the trimming copes with a few
    percent of same-person pairs, and a warning is raised when 5 % or more of the sampled
    pairs pass the threshold. Recognizers with a heavier than normal impostor tail give a real false-match rate above ``target_fmr`` (on LFW with a
    128-d MobileFaceNet the empirical rate at the 1e-5 threshold is about 3e-5). Many
    near-duplicate faces (burst shots, video frames) do not move the impostor fit but make
    same-person pairs common; collections dominated by one demographic shift the impostor
    centre up, which this method follows by design.

    Cost: O(n_pairs x d) time, O(block x d) memory; it never looks at all pairs.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(300, 128))
    >>> x = np.repeat(centres, 4, axis=0) + 0.5 * rng.normal(size=(1200, 128))
    >>> x /= np.linalg.norm(x, axis=1, keepdims=True)
    >>> t = calibrate_threshold(x)
    >>> 0.2 < t < 0.7
    True
    """
    if not 0 < target_fmr < 0.5:
        raise ValueError(f"target_fmr must be in (0, 0.5), got {target_fmr}")
    if n_pairs < 100:
        raise ValueError(f"n_pairs must be at least 100, got {n_pairs}")
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(f"embeddings must be 2-d with at least 3 rows, got shape {x.shape}")
    sims = pair_similarities(x, n_pairs, random_state=random_state)
    centre, lo, hi, kept = _fit_impostor(sims)
    if hi <= 0 or not math.isfinite(hi):
        raise ValueError("the sampled similarities have no spread (identical embeddings?); cannot calibrate")
    z = float(ndtri(1.0 - target_fmr))
    threshold = float(min(centre + z * hi, 1.0))
    observed = float(np.mean(sims >= threshold))
    notes: list[str] = []
    if observed >= _FEW_IDENTITIES_RATE:
        notes.append(
            f"{observed:.1%} of random pairs pass the calibrated threshold {threshold:.3f}: the collection "
            "probably holds few identities, so random pairs are not mostly different people and the "
            "threshold may be too high; set it by hand or with labels (sweep_thresholds)"
        )
    n = x.shape[0]
    details: dict[str, Any] = {
        "threshold": threshold,
        "target_fmr": float(target_fmr),
        "z": z,
        "centre": centre,
        "scale_lower": lo,
        "scale_upper": hi,
        "n_pairs": int(len(sims)),
        "trimmed_share": float(1 - len(kept) / len(sims)),
        "observed_rate": observed,
        "expected_false_pairs": float(target_fmr * n * (n - 1) / 2),
        "matched_share": None,
        "genuine_median": None,
        "warnings": notes,
    }
    if knn is not None:
        top = np.asarray(knn.similarities)
        if top.shape[0] != n:
            raise ValueError(f"knn has {top.shape[0]} rows but embeddings has {n}")
        first = top[:, 0] if top.shape[1] else np.full(n, -np.inf, np.float32)
        matched = first >= threshold
        details["matched_share"] = float(matched.mean())
        details["genuine_median"] = float(np.median(top[top >= threshold])) if matched.any() else None
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    return (threshold, details) if return_details else threshold


def looser_threshold(threshold: float, centre: float, scale: float, fmr_factor: float = DEFAULT_JOIN_FMR_FACTOR) -> float:
    """The similarity whose modelled false-match rate is ``fmr_factor`` times that of ``threshold``.

    Uses the impostor model of :func:`calibrate_threshold` (``centre`` and ``scale_upper`` of its
    details): ``FMR(t) = 1 - Phi((t - centre) / scale)``. The answer is
    ``centre + scale * z_j`` with ``Phi(-z_j) = fmr_factor * Phi(-z)``, computed in log space so
    that it stays finite far in the tail. It is never above ``threshold``; when the looser rate
    would reach one half (``threshold`` at or below the impostor centre) ``threshold`` itself is
    returned.

    Parameters
    ----------
    threshold : float
        A cosine-similarity threshold (calibrated or set by hand).
    centre, scale : float
        Impostor centre and upper scale (``calibrate_threshold(..., return_details=True)``).
    fmr_factor : float, default=10
        How many times more false matches the returned level admits (>= 1; 1 returns ``threshold``).

    Returns
    -------
    float

    Examples
    --------
    >>> t = 0.0 + 0.1 * float(ndtri(1 - 1e-5))  # the 1e-5 threshold of a N(0, 0.1) impostor law
    >>> round(looser_threshold(t, 0.0, 0.1, 10.0), 4) == round(0.1 * float(ndtri(1 - 1e-4)), 4)
    True
    """
    if fmr_factor < 1:
        raise ValueError(f"fmr_factor must be >= 1, got {fmr_factor}")
    if fmr_factor == 1 or not (scale > 0 and math.isfinite(scale)) or not math.isfinite(threshold):
        return float(threshold)
    log_rate = float(log_ndtr(-(threshold - centre) / scale)) + math.log(fmr_factor)
    if log_rate >= math.log(0.5):
        return float(threshold)
    z = -float(ndtri_exp(log_rate))
    return float(min(centre + scale * z, threshold))
