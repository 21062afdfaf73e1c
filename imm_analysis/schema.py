"""Column names, dtypes and the IMM field mapping shared by every layer.

Every frame the toolkit produces (clusters, files, figures) is built against the
specifications below, so frames loaded from IMM JSON, fetched live through the SDK,
computed by the local insightface pipeline or produced by the clusterer all have the
same columns and dtypes and can be compared directly.

Conventions
-----------
* Column names are IMM's field names in snake_case (``FaceQuality`` -> ``face_quality``);
  ``ObjectId`` becomes ``cluster_id`` or ``file_id``; ``Boundary`` flattens to
  ``left, top, width, height``; ``HeadPose`` to ``pitch, roll, yaw``.
* Times are tz-aware ``datetime64[ns, UTC]``: IMM's ``+08:00`` offsets are converted to
  the same instant in UTC, nanoseconds kept. Convert with ``.dt.tz_convert`` for display.
* Counts and pixel measures are nullable ``Int64``; measurements are ``float64`` with
  ``NaN`` for missing; enumerations are ``category``; free text is ``string``.
* Fields the loader does not model are kept in the ``extra`` column (a dict per row).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import numpy as np
import pandas as pd

__all__ = [
    "CLUSTER_INDEPENDENT",
    "CLUSTER_UNAVAILABLE",
    "CLUSTER_STATES",
    "CLUSTER_COLUMNS",
    "FILE_COLUMNS",
    "FIGURE_COLUMNS",
    "FIGURE_OPTIONAL_COLUMNS",
    "SPECS",
    "cluster_state",
    "empty_frame",
    "coerce_frame",
    "snake_case",
]

#: Reserved ``FigureClusterId`` of a face that belongs to no cluster.
CLUSTER_INDEPENDENT = "figure-cluster-id-independent"
#: Reserved ``FigureClusterId`` of a face indexed after the last clustering run.
CLUSTER_UNAVAILABLE = "figure-cluster-id-unavailable"
#: Values of the ``cluster_state`` column.
CLUSTER_STATES = ("clustered", "independent", "unavailable")

STRING: Final = "string"
CATEGORY: Final = "category"
INT: Final = "Int64"
FLOAT: Final = "float64"
TIME: Final = "datetime64[ns, UTC]"
OBJECT: Final = "object"
BOOL: Final = "boolean"

# (column, dtype, IMM field). IMM field None: computed by the toolkit.
CLUSTER_SPEC: tuple[tuple[str, str, str | None], ...] = (
    ("cluster_id", STRING, "ObjectId"),
    ("name", STRING, "Name"),
    ("gender", CATEGORY, "Gender"),
    ("face_count", INT, "FaceCount"),
    ("image_count", INT, "ImageCount"),
    ("video_count", INT, "VideoCount"),
    ("average_age", FLOAT, "AverageAge"),
    ("min_age", FLOAT, "MinAge"),
    ("max_age", FLOAT, "MaxAge"),
    ("cover_file_id", STRING, None),  # Cover.ObjectId
    ("cover_uri", STRING, None),  # Cover.URI
    ("create_time", TIME, "CreateTime"),
    ("update_time", TIME, "UpdateTime"),
    ("project_name", STRING, "ProjectName"),
    ("dataset_name", STRING, "DatasetName"),
    ("owner_id", STRING, "OwnerId"),
    ("object_type", STRING, "ObjectType"),
    ("custom_id", STRING, "CustomId"),
    ("custom_labels", OBJECT, "CustomLabels"),
    ("meta_lock_version", INT, "MetaLockVersion"),
    ("extra", OBJECT, None),
)

FILE_SPEC: tuple[tuple[str, str, str | None], ...] = (
    ("file_id", STRING, "ObjectId"),
    ("uri", STRING, "URI"),
    ("oss_uri", STRING, "OSSURI"),
    ("filename", STRING, "Filename"),
    ("media_type", CATEGORY, "MediaType"),
    ("content_type", STRING, "ContentType"),
    ("size", INT, "Size"),
    ("file_hash", STRING, "FileHash"),
    ("image_width", INT, "ImageWidth"),
    ("image_height", INT, "ImageHeight"),
    ("video_width", INT, "VideoWidth"),
    ("video_height", INT, "VideoHeight"),
    ("duration", FLOAT, "Duration"),
    ("orientation", INT, "Orientation"),
    ("lat_long", STRING, "LatLong"),
    ("produce_time", TIME, "ProduceTime"),
    ("file_create_time", TIME, "FileCreateTime"),
    ("file_modified_time", TIME, "FileModifiedTime"),
    ("create_time", TIME, "CreateTime"),
    ("update_time", TIME, "UpdateTime"),
    ("figure_count", INT, "FigureCount"),
    ("project_name", STRING, "ProjectName"),
    ("dataset_name", STRING, "DatasetName"),
    ("owner_id", STRING, "OwnerId"),
    ("custom_id", STRING, "CustomId"),
    ("custom_labels", OBJECT, "CustomLabels"),
    ("object_type", STRING, "ObjectType"),
    ("extra", OBJECT, None),
)

FIGURE_SPEC: tuple[tuple[str, str, str | None], ...] = (
    # file-level context repeated on every face
    ("file_id", STRING, None),
    ("uri", STRING, None),
    ("media_type", CATEGORY, None),
    ("produce_time", TIME, None),
    # the face itself (File.Figures[])
    ("figure_id", STRING, "FigureId"),
    ("figure_cluster_id", STRING, "FigureClusterId"),
    ("cluster_state", CATEGORY, None),
    ("figure_confidence", FLOAT, "FigureConfidence"),
    ("figure_cluster_confidence", FLOAT, "FigureClusterConfidence"),
    ("figure_type", CATEGORY, "FigureType"),
    ("face_quality", FLOAT, "FaceQuality"),
    ("sharpness", FLOAT, "Sharpness"),
    ("left", INT, "Boundary.Left"),
    ("top", INT, "Boundary.Top"),
    ("width", INT, "Boundary.Width"),
    ("height", INT, "Boundary.Height"),
    ("pitch", FLOAT, "HeadPose.Pitch"),
    ("roll", FLOAT, "HeadPose.Roll"),
    ("yaw", FLOAT, "HeadPose.Yaw"),
    ("age", FLOAT, "Age"),
    ("age_sd", FLOAT, "AgeSD"),
    ("gender", CATEGORY, "Gender"),
    ("gender_confidence", FLOAT, "GenderConfidence"),
    ("emotion", CATEGORY, "Emotion"),
    ("emotion_confidence", FLOAT, "EmotionConfidence"),
    ("mask", CATEGORY, "Mask"),
    ("mask_confidence", FLOAT, "MaskConfidence"),
    ("glasses", CATEGORY, "Glasses"),
    ("glasses_confidence", FLOAT, "GlassesConfidence"),
    ("hat", CATEGORY, "Hat"),
    ("hat_confidence", FLOAT, "HatConfidence"),
    ("beard", CATEGORY, "Beard"),
    ("beard_confidence", FLOAT, "BeardConfidence"),
    ("mouth", CATEGORY, "Mouth"),
    ("mouth_confidence", FLOAT, "MouthConfidence"),
    ("attractive", FLOAT, "Attractive"),
    ("timestamp", FLOAT, "Timestamp"),  # seconds from the start of a video; NaN for images
    ("extra", OBJECT, None),
)

#: Columns some producers add to figures frames (local pipeline, video faces).
FIGURE_OPTIONAL_COLUMNS: dict[str, str] = {
    "det_score": FLOAT,
    "frame_index": INT,
}

CLUSTER_COLUMNS: dict[str, str] = {c: d for c, d, _ in CLUSTER_SPEC}
FILE_COLUMNS: dict[str, str] = {c: d for c, d, _ in FILE_SPEC}
FIGURE_COLUMNS: dict[str, str] = {c: d for c, d, _ in FIGURE_SPEC}
SPECS = {"clusters": CLUSTER_SPEC, "files": FILE_SPEC, "figures": FIGURE_SPEC}
_COLUMNS = {"clusters": CLUSTER_COLUMNS, "files": FILE_COLUMNS, "figures": FIGURE_COLUMNS}


def snake_case(name: str) -> str:
    """Convert an IMM field name to the toolkit's column name.

    Examples
    --------
    >>> snake_case("FaceQuality"), snake_case("AgeSD"), snake_case("OSSURI")
    ('face_quality', 'age_sd', 'ossuri')
    """
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (
            name[i - 1].islower() or (i + 1 < len(name) and name[i + 1].islower() and name[i - 1].isupper())
        ):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def cluster_state(cluster_ids: pd.Series) -> pd.Series:
    """Map ``figure_cluster_id`` values to ``clustered`` / ``independent`` / ``unavailable``.

    A missing id counts as ``unavailable`` (clustering has not seen the face).

    Examples
    --------
    >>> import pandas as pd
    >>> cluster_state(pd.Series(["Cluster-1", CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE, None])).tolist()
    ['clustered', 'independent', 'unavailable', 'unavailable']
    """
    ids = cluster_ids.astype(STRING)
    state = pd.Series("clustered", index=ids.index, dtype=object)
    state[(ids == CLUSTER_INDEPENDENT).fillna(False).to_numpy(bool)] = "independent"
    state[(ids == CLUSTER_UNAVAILABLE).fillna(True).to_numpy(bool)] = "unavailable"
    return pd.Series(pd.Categorical(state, categories=list(CLUSTER_STATES)), index=ids.index)


def _cast(series: pd.Series, dtype: Any) -> pd.Series:
    if dtype == TIME:
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            return series.dt.tz_convert("UTC").astype(TIME)
        return pd.to_datetime(series, utc=True, format="ISO8601").astype(TIME)
    if dtype == CATEGORY:
        if isinstance(series.dtype, pd.CategoricalDtype):
            return series
        return series.astype(STRING).astype(CATEGORY)
    if dtype == INT and series.dtype.kind == "f":
        return series.round().astype(INT)
    return series.astype(dtype)


def _null_column(dtype: Any, index: pd.Index) -> pd.Series:
    """An all-missing column of ``dtype``, built without a Python object per row."""
    n = len(index)
    if dtype == OBJECT:
        return pd.Series(np.full(n, None, dtype=object), index=index)
    if dtype == CATEGORY:
        cats = pd.Index([], dtype=STRING)
        return pd.Series(pd.Categorical.from_codes(np.full(n, -1, dtype=np.int8), categories=cats), index=index)
    if dtype == FLOAT:
        return pd.Series(np.full(n, np.nan), index=index)
    if dtype == TIME:
        return pd.Series(pd.DatetimeIndex(np.full(n, np.datetime64("NaT", "ns"))).tz_localize("UTC"), index=index)
    return pd.Series(pd.NA, index=index, dtype=dtype)


def empty_frame(kind: str, extra_columns: Iterable[str] = ()) -> pd.DataFrame:
    """An empty frame of ``kind`` (``"clusters"``, ``"files"`` or ``"figures"``) with every column and dtype.

    Examples
    --------
    >>> empty = empty_frame("figures")
    >>> len(empty), str(empty["produce_time"].dtype), str(empty["width"].dtype)
    (0, 'datetime64[ns, UTC]', 'Int64')
    """
    cols = dict(_columns(kind))
    for c in extra_columns:
        cols[c] = FIGURE_OPTIONAL_COLUMNS.get(c, OBJECT)
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in cols.items()})


def coerce_frame(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Return ``frame`` with every schema column present (missing ones null) and cast to its dtype.

    Columns outside the schema are kept after the schema columns; known optional
    figure columns (``det_score``, ``timestamp``, ``frame_index``) get their dtype. For
    figures, ``cluster_state`` is always derived from ``figure_cluster_id`` here, so every
    producer agrees on its values and categories.

    Examples
    --------
    >>> import pandas as pd
    >>> f = coerce_frame(pd.DataFrame({"figure_id": ["a"], "width": [80.4], "figure_cluster_id": ["Cluster-1"]}), "figures")
    >>> int(f.loc[0, "width"]), f.loc[0, "cluster_state"], bool(pd.isna(f.loc[0, "face_quality"]))
    (80, 'clustered', True)
    """
    cols = _columns(kind)
    out: dict[str, pd.Series] = {}
    for c, d in cols.items():
        if c in frame.columns:
            out[c] = _cast(frame[c], d)
        else:
            out[c] = _null_column(d, frame.index)
    if kind == "figures":
        out["cluster_state"] = cluster_state(out["figure_cluster_id"])
    for c in frame.columns:
        if c not in cols:
            opt = FIGURE_OPTIONAL_COLUMNS.get(c) if kind == "figures" else None
            out[c] = _cast(frame[c], opt) if opt else frame[c]
    return pd.DataFrame(out, index=frame.index)


def _columns(kind: str) -> dict[str, str]:
    try:
        return _COLUMNS[kind]
    except KeyError:
        raise ValueError(f"kind must be one of {sorted(_COLUMNS)}, got {kind!r}") from None
