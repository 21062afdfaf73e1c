"""Errors and warnings raised while reading IMM JSON, and the ``errors="collect"`` log."""

from __future__ import annotations

from typing import Any

__all__ = ["IMMFormatError", "IMMLoadWarning", "ErrorLog"]


class IMMFormatError(ValueError):
    """An IMM JSON input that cannot be read.

    Attributes
    ----------
    source : str
        The file (or ``<dict>``, ``<string>``, ...) the bad record came from.
    record : str
        Where inside it: ``line 3``, ``line 3, Files[2].Figures[0]``, ``document``...
    field : str or None
        The IMM field at fault (``FaceQuality``, ``Boundary.Left``), None for whole-record errors.
    reason : str
        What is wrong, in words.

    Examples
    --------
    >>> import pickle
    >>> err = IMMFormatError("a.json", "line 3, Files[2]", "Size", "expected a number, got str 'x'")
    >>> str(pickle.loads(pickle.dumps(err))) == str(err)
    True
    """

    def __init__(self, source: str, record: str, field: str | None, reason: str) -> None:
        self.source, self.record, self.field, self.reason = source, record, field, reason
        where = f"{source}, {record}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the fields, so the error survives a worker process (``ProcessPoolExecutor``, Dask)."""
        return (type(self), (self.source, self.record, self.field, self.reason))

    def as_dict(self) -> dict[str, Any]:
        """The error as one row of ``frame.attrs["errors"]``."""
        return {"source": self.source, "record": self.record, "field": self.field, "reason": self.reason}


class IMMLoadWarning(UserWarning):
    """Something in the input looks wrong but the load went on (duplicates, ``TotalCount`` mismatch).

    Examples
    --------
    >>> import warnings
    >>> from imm_analysis import load_clusters
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     frame = load_clusters({"FigureClusters": [{"ObjectId": "c1"}, {"ObjectId": "c1"}]})
    >>> len(frame), [w.category.__name__ for w in caught]
    (1, ['IMMLoadWarning'])
    """


class ErrorLog:
    """Raise on the first bad record (``mode="raise"``) or collect them all (``mode="collect"``)."""

    MODES = ("raise", "collect")

    def __init__(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(f"errors must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.errors: list[dict[str, Any]] = []

    @property
    def collect(self) -> bool:
        return self.mode == "collect"

    def add(self, source: str, record: str, field: str | None, reason: str) -> None:
        """Report one bad record: raise :class:`IMMFormatError`, or remember it when collecting."""
        err = IMMFormatError(source, record, field, reason)
        if not self.collect:
            raise err
        self.errors.append(err.as_dict())
