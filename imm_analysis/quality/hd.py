"""IMM's high-definition face rule: :class:`HDRule`, the one place its thresholds live."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["HDRule", "HD_RULE", "HD_FAIL_REASONS", "RuleLike", "describe_hd_rule", "hd_faces", "hd_mask"]

#: Values of the ``hd_fail`` column, in the order the criteria are checked.
HD_FAIL_REASONS = ("missing", "too_small", "extreme_pose", "low_quality")
_FAIL_DTYPE = pd.CategoricalDtype(list(HD_FAIL_REASONS))


def _col(figures: pd.DataFrame, name: str) -> np.ndarray:
    if name not in figures.columns:
        return np.full(len(figures), np.nan)
    return pd.to_numeric(figures[name], errors="coerce").astype("float64").to_numpy(na_value=np.nan)


@dataclass(frozen=True)
class HDRule:
    """IMM's high-definition face rule (immutable).

    A face is high-definition when ``width > min_size`` and ``height > min_size``, each of
    ``|pitch|``, ``|roll|``, ``|yaw|`` is below ``max_pose`` and ``face_quality > min_quality``
    (all strict, as in IMM's face-clustering guide). Only high-definition faces can found a
    cluster. The defaults are IMM's and are written nowhere else in the package.

    Parameters
    ----------
    min_size : float, default=75
        Face width and height must both be greater than this, in pixels.
    max_pose : float, default=30
        Each absolute head-pose angle must be less than this, in degrees.
    min_quality : float, default=0.8
        ``face_quality`` must be greater than this.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"width": [80, 60], "height": [80, 90], "pitch": [0, 0],
    ...                   "roll": [0, 0], "yaw": [10, 0], "face_quality": [0.9, 0.95]})
    >>> rule = HDRule()
    >>> rule.mask(f).tolist()
    [True, False]
    >>> rule.reasons(f).tolist()
    [nan, 'too_small']
    >>> HDRule(min_quality=0.9).describe()
    'width and height > 75 px, |pitch|, |roll|, |yaw| < 30, face_quality > 0.9'
    """

    min_size: float = 75
    max_pose: float = 30
    min_quality: float = 0.8

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or np.isnan(v):
                raise TypeError(f"HDRule.{f.name} must be a number, got {v!r}")

    # ------------------------------------------------------------------ conversion
    @classmethod
    def coerce(cls, rule: RuleLike = None, **overrides: float | None) -> HDRule:
        """An :class:`HDRule` from what callers pass today.

        Parameters
        ----------
        rule : HDRule, mapping or None
            An :class:`HDRule` (returned as is), a mapping of some of ``min_size``,
            ``max_pose``, ``min_quality`` (the others default), or None (IMM's rule).
        **overrides : float or None
            Thresholds that replace the rule's (None values are ignored).

        Examples
        --------
        >>> HDRule.coerce({"min_size": 90})
        HDRule(min_size=90, max_pose=30, min_quality=0.8)
        >>> HDRule.coerce(None, max_pose=20, min_quality=None)
        HDRule(min_size=75, max_pose=20, min_quality=0.8)
        """
        if rule is None:
            out = cls()
        elif isinstance(rule, HDRule):
            out = rule
        elif isinstance(rule, Mapping):
            names = {f.name for f in fields(cls)}
            unknown = set(rule) - names
            if unknown:
                raise TypeError(f"unknown high-definition rule keys {sorted(unknown)}; expected {sorted(names)}")
            out = cls(**dict(rule))
        else:
            raise TypeError(f"an HD rule must be an HDRule, a mapping or None, got {type(rule).__name__}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(out, **given) if given else out

    def as_dict(self) -> dict[str, float]:
        """The thresholds as a dict (``hd_mask`` keyword arguments).

        >>> HDRule().as_dict()
        {'min_size': 75, 'max_pose': 30, 'min_quality': 0.8}
        """
        return asdict(self)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, figures: pd.DataFrame) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int8]]:
        """Flags and first-failure codes (vectorised core of :meth:`mask` and :meth:`reasons`).

        Returns
        -------
        is_hd : ndarray of bool, shape (n,)
        reason : ndarray of int8, shape (n,)
            -1 where the face is high-definition, else the index into :data:`HD_FAIL_REASONS`.

        Examples
        --------
        >>> import pandas as pd
        >>> HDRule().evaluate(pd.DataFrame({"width": [80.0]}))[1].tolist()
        [0]
        """
        w, h = _col(figures, "width"), _col(figures, "height")
        n = len(figures)
        pose = np.column_stack([_col(figures, c) for c in ("pitch", "roll", "yaw")]) if n else np.empty((0, 3))
        q = _col(figures, "face_quality")
        missing = np.isnan(w) | np.isnan(h) | np.isnan(pose).any(axis=1) | np.isnan(q)
        with np.errstate(invalid="ignore"):
            too_small = ~((w > self.min_size) & (h > self.min_size))
            extreme = ~(np.abs(pose) < self.max_pose).all(axis=1)
            low = ~(q > self.min_quality)
        reason = np.full(n, -1, dtype=np.int8)
        for code, failed in reversed(list(enumerate((missing, too_small, extreme, low)))):
            reason[failed] = code
        return reason < 0, reason

    def mask(self, figures: pd.DataFrame) -> np.ndarray:
        """Bool array: which faces of ``figures`` are high-definition.

        >>> import pandas as pd
        >>> HDRule().mask(pd.DataFrame({"width": [80], "height": [80], "pitch": [0], "roll": [0],
        ...                             "yaw": [0], "face_quality": [0.81]})).tolist()
        [True]
        """
        return self.evaluate(figures)[0]

    def reasons(self, figures: pd.DataFrame) -> pd.Series:
        """Categorical Series (index of ``figures``): the first failed criterion, null for HD faces.

        Categories are :data:`HD_FAIL_REASONS`; ``missing`` when a value is absent.

        >>> import pandas as pd
        >>> HDRule().reasons(pd.DataFrame({"width": [80], "height": [80], "pitch": [0], "roll": [0],
        ...                                "yaw": [45], "face_quality": [0.9]})).tolist()
        ['extreme_pose']
        """
        codes = self.evaluate(figures)[1]
        return pd.Series(
            pd.Categorical.from_codes(codes.astype(np.int64), dtype=_FAIL_DTYPE), index=figures.index, name="hd_fail"
        )

    def describe(self) -> str:
        """The rule in words.

        >>> HDRule().describe()
        'width and height > 75 px, |pitch|, |roll|, |yaw| < 30, face_quality > 0.8'
        """
        return (
            f"width and height > {self.min_size:g} px, |pitch|, |roll|, |yaw| < {self.max_pose:g}, "
            f"face_quality > {self.min_quality:g}"
        )


#: What callers may pass as a rule: an :class:`HDRule`, a mapping of its thresholds, or None.
RuleLike = HDRule | Mapping[str, float] | None

#: IMM's rule as a read-only mapping (compatibility alias; prefer ``HDRule()``).
HD_RULE: Mapping[str, float] = MappingProxyType(HDRule().as_dict())


def describe_hd_rule(rule: RuleLike = None) -> str:
    """The rule in words, IMM's defaults overridden by ``rule`` (see :meth:`HDRule.describe`).

    Examples
    --------
    >>> describe_hd_rule({"min_quality": 0.9})
    'width and height > 75 px, |pitch|, |roll|, |yaw| < 30, face_quality > 0.9'
    """
    return HDRule.coerce(rule).describe()


def is_dask_frame(frame: object) -> bool:
    """True for a dask DataFrame (checked by module, so dask is never imported for a pandas frame)."""
    return type(frame).__module__.startswith("dask")


def hd_mask(
    figures: pd.DataFrame,
    rule: RuleLike = None,
    *,
    min_size: float | None = None,
    max_pose: float | None = None,
    min_quality: float | None = None,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int8]]:
    """Flags and first-failure codes of the high-definition rule (see :meth:`HDRule.evaluate`).

    Parameters
    ----------
    figures : DataFrame
    rule : HDRule or mapping, optional
        Default IMM's rule.
    min_size, max_pose, min_quality : float, optional
        Override single thresholds of ``rule``.

    Returns
    -------
    is_hd : ndarray of bool, shape (n,)
    reason : ndarray of int8, shape (n,)
        -1 where the face is high-definition, else the index into :data:`HD_FAIL_REASONS`
        of the first criterion it fails.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"width": [80, 60], "height": [80, 90], "pitch": [0, 0],
    ...                   "roll": [0, 0], "yaw": [10, 0], "face_quality": [0.9, 0.95]})
    >>> hd_mask(f, min_size=50)[0].tolist()
    [True, True]
    """
    r = HDRule.coerce(rule, min_size=min_size, max_pose=max_pose, min_quality=min_quality)
    return r.evaluate(figures)


def hd_faces(figures: pd.DataFrame, rule: RuleLike = None, **overrides: float | None) -> pd.DataFrame:
    """Apply IMM's high-definition face rule (:class:`HDRule`).

    Parameters
    ----------
    figures : DataFrame or dask DataFrame
        A figures frame (``load_figures``, ``embed_images(...).figures``), or a dask dataframe
        (:func:`imm_analysis.io.read_figures_dask`): then the answer is a lazy dask dataframe,
        the rule applied partition by partition.
    rule, **overrides
        The rule and single-threshold overrides, as in :func:`hd_mask`.

    Returns
    -------
    DataFrame
        A copy of ``figures`` with ``is_hd`` (bool) and ``hd_fail`` (categorical: the first
        failed criterion, ``missing`` when a value is absent; null for HD faces).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"width": [80, 60], "height": [80, 90], "pitch": [0, 0],
    ...                   "roll": [0, 0], "yaw": [10, 0], "face_quality": [0.9, 0.95]})
    >>> hd_faces(f)[["is_hd", "hd_fail"]].values.tolist()
    [[True, nan], [False, 'too_small']]
    >>> hd_faces(f, HDRule(min_size=50))["is_hd"].tolist()
    [True, True]
    """
    if is_dask_frame(figures):  # a dask dataframe: the rule per partition, lazily
        ddf: Any = figures
        return ddf.map_partitions(hd_faces, rule, **overrides, meta=hd_faces(ddf._meta, rule, **overrides))
    is_hd, reason = hd_mask(figures, rule, **overrides)
    out = figures.copy()
    out["is_hd"] = is_hd
    out["hd_fail"] = pd.Categorical.from_codes(reason.astype(np.int64), dtype=_FAIL_DTYPE)
    return out


def resolve_hd(figures: pd.DataFrame | None, n: int, hd_rule: Any = None) -> np.ndarray:
    """High-definition flag per face, for the clusterer and the state.

    ``figures`` None: every face is HD. ``hd_rule``: an :class:`HDRule`, a mapping of its
    thresholds, None (IMM's rule), or a callable ``figures -> bool array``.

    Examples
    --------
    >>> resolve_hd(None, 3).tolist()
    [True, True, True]
    """
    if figures is None:
        return np.ones(n, dtype=bool)
    if callable(hd_rule) and not isinstance(hd_rule, HDRule):
        fn: Callable[[pd.DataFrame], Any] = hd_rule
        out = np.asarray(fn(figures), dtype=bool)
    else:
        try:
            rule = HDRule.coerce(hd_rule)
        except TypeError as exc:
            raise TypeError(f"hd_rule must be None, an HDRule, a dict of its thresholds or a callable: {exc}") from None
        out = rule.mask(figures)
    if out.shape != (n,):
        raise ValueError(f"hd_rule returned shape {out.shape}, expected ({n},) (one flag per face)")
    return out
