"""A search library's own threshold, and the score that maps cosine similarity to [0, 1].

Threshold
---------
The library is searched by cosine similarity; which similarity means "same person" depends
on the recognizer, so it is taken from the library's data with
:func:`imm_analysis.calibrate_threshold` (no per-model constant). The calibration sample is
one embedding per *search item*: one per video track (the mean of its best faces) and one per
photo face. Random pairs of search items are pairs of different people except when one person
has several tracks or photos; the calibration's robust fit sets those pairs aside. Many
frames of one person therefore do not pull the threshold up, as they would if every sampled
frame counted.

Pairs known to be different people are used too: two faces of one photo, two faces of one
video sample, two tracks of one video that overlap in time (one person is not in two places
at once). Random pairs drawn from few identities (one video of one person) are often the
same person and pull the random-pair threshold up; when at least :data:`MIN_KNOWN_PAIRS` known
pairs exist, the same normal-tail fit on them alone gives a second threshold, and the lower
of the two is used (:attr:`Calibration.method` says which).

Small libraries (two videos and a few photos) have few pairs: the threshold is then the same
normal-tail extrapolation from every pair there is, and its uncertainty is said in
:attr:`Calibration.threshold_se` (a rough standard error, from the spread of the impostor
pairs and their number) and in :attr:`Calibration.warnings`. With fewer than
:data:`MIN_ITEMS` search items no threshold can be fitted; pass ``threshold=`` explicitly.

Score
-----
``score = 1 / (1 + exp(-(similarity - threshold) / scale))`` with the library's calibrated
``threshold`` and the upper spread ``scale`` of its impostor similarities: 0.5 at the
threshold, rising with similarity, in (0, 1). It depends only on the similarity and the
library's calibration, so one similarity always gives one score in a library (also when a
search passes its own ``threshold=``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["MIN_ITEMS", "MIN_KNOWN_PAIRS", "Calibration", "calibrate_library", "similarity_score"]

#: Fewest search items (tracks plus photo faces) a threshold is fitted from.
MIN_ITEMS = 3
#: Fewest pairs known to be different people that give a threshold of their own.
MIN_KNOWN_PAIRS = 20
#: Calibrations from fewer items than this carry a warning about their uncertainty.
_FEW_ITEMS = 30


@dataclass
class Calibration:
    """A library's threshold and score scale (see the module docstring).

    Attributes
    ----------
    threshold : float
        Cosine similarity at or above which two faces are taken for one person.
    scale : float
        Upper spread of the impostor similarities (the score's temperature).
    centre : float
        Median impostor similarity.
    target_fmr : float
        False-match rate per pair the threshold aims at.
    n_items : int
        Search items it was fitted from.
    n_pairs : int
        Pairs of items it used.
    threshold_se : float
        Rough standard error of ``threshold`` (larger for small libraries).
    warnings : list of str
    method : str
        ``"random pairs"`` or ``"known different pairs"``: which fit gave the threshold.
    """

    threshold: float
    scale: float
    centre: float
    target_fmr: float
    n_items: int
    n_pairs: int
    threshold_se: float
    warnings: list[str] = field(default_factory=list)
    method: str = "random pairs"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def calibrate_library(
    embeddings: np.ndarray, *, target_fmr: float = 1e-5, known: np.ndarray | None = None
) -> Calibration:
    """Fit a library's threshold from one embedding per search item.

    Parameters
    ----------
    embeddings : ndarray of shape (n_items, dim)
        One unit-length embedding per track and per photo face.
    target_fmr : float, default=1e-5
        Wanted false-match rate per pair of different people.
    known : ndarray of float, optional
        Cosine similarities of pairs known to be different people (see the module docstring).

    Returns
    -------
    Calibration

    Raises
    ------
    ValueError
        With fewer than :data:`MIN_ITEMS` items, or items whose similarities have no spread.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 64)).astype(np.float32)
    >>> x /= np.linalg.norm(x, axis=1, keepdims=True)
    >>> cal = calibrate_library(x)
    >>> 0.3 < cal.threshold < 0.8 and cal.n_pairs == 200 * 199 // 2
    True
    """
    from imm_analysis.cluster.calibrate import calibrate_threshold

    x = np.asarray(embeddings, np.float32)
    n = len(x)
    if n < MIN_ITEMS:
        raise ValueError(
            f"the library has {n} search item(s) (tracks and photo faces); at least {MIN_ITEMS} are needed "
            "to fit a threshold from its own data: pass threshold= explicitly"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t, d = calibrate_threshold(x, target_fmr=target_fmr, return_details=True)
    notes = [str(w.message) for w in caught]
    m = int(d["n_pairs"])
    # pairs sharing an item are not independent: count at most ~ 10 pairs per item as independent
    m_eff = max(1, min(m, 10 * n))
    z = float(d["z"])
    scale = float(d["scale_upper"])
    se = scale * math.sqrt(1.57 + 1.1 * z * z) / math.sqrt(m_eff)
    method = "random pairs"
    sims = None if known is None else np.asarray(known, np.float64)
    if sims is not None and len(sims) >= MIN_KNOWN_PAIRS:
        centre_k, hi_k = _robust_fit(sims)
        t_k = min(centre_k + z * hi_k, 1.0)
        if hi_k > 0 and t_k < t:
            notes = [w for w in notes if "few identities" not in w]
            t, scale, m, method = t_k, hi_k, len(sims), "known different pairs"
            d["centre"] = centre_k
            m_eff = len(sims)
            se = scale * math.sqrt(1.57 + 1.1 * z * z) / math.sqrt(m_eff)
    if n < _FEW_ITEMS:
        notes.append(
            f"the threshold {t:.3f} comes from only {n} search items ({m} pairs): uncertain by about "
            f"+/-{se:.3f} (one standard error); add photos or videos of other people, or pass threshold="
        )
    return Calibration(float(t), scale, float(d["centre"]), float(target_fmr), n, m, float(se), notes, method)


def _robust_fit(sims: np.ndarray) -> tuple[float, float]:
    """Median and upper spread of impostor similarities, trimming a high tail (as calibrate_threshold does).

    Faces too small or blurred to recognise embed close to one another whoever they are; two
    of them in one frame are a 'known different' pair with a high similarity. The trimming sets
    such pairs aside.
    """
    kept = sims
    centre, hi = float(np.median(sims)), 0.0
    for _ in range(8):
        q16, centre, q84 = (float(v) for v in np.quantile(kept, [0.158655, 0.5, 0.841345]))
        lo, hi = centre - q16, q84 - centre
        new = sims[sims <= centre + 3.0 * min(lo, hi)]
        if len(new) == len(kept) or len(new) < MIN_KNOWN_PAIRS:
            break
        kept = new
    return centre, hi


def similarity_score(similarity: np.ndarray | float, threshold: float, scale: float) -> np.ndarray:
    """Monotonic map of cosine similarity to [0, 1]: 0.5 at ``threshold`` (see the module docstring).

    Examples
    --------
    >>> similarity_score(np.array([0.2, 0.4, 0.6]), 0.4, 0.1).round(3).tolist()
    [0.119, 0.5, 0.881]
    """
    s = np.asarray(similarity, np.float64)
    z = (s - float(threshold)) / max(float(scale), 1e-6)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow
