"""The fetches: :func:`fetch_clusters` (``QueryFigureClusters``) and :func:`fetch_files` (``SimpleQuery``).

Each builds the request, pages through it (:mod:`~imm_analysis.io.imm_sdk.paging`) and hands the
pages to the JSON loaders, so a live fetch gives exactly the frames a saved export gives.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from imm_analysis.io import limits
from imm_analysis.io.imm_sdk.client import _known_secrets, _sdk, make_client
from imm_analysis.io.imm_sdk.paging import _CLUSTERS, _FILES, MAX_PAGE_SIZE, _fetch_pages, _FetchResult, _Operation
from imm_analysis.io.imm_sdk.retry import RetryPolicy

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["fetch_clusters", "fetch_files", "FetchedFiles"]

logger = logging.getLogger("imm_analysis.imm")
_QUERY_KEYS = frozenset({"Field", "Operation", "Value", "SubQueries"})


def _client_for(client: Any, endpoint: str | None, region_id: str | None, credentials: Any) -> Any:
    if client is not None:
        if endpoint or region_id or credentials is not None:
            raise ValueError("pass either client= or endpoint/region_id/credentials, not both")
        return client
    return make_client(endpoint=endpoint, region_id=region_id, credentials=credentials)


def _check_common(errors: str, max_results: int, max_pages: int | None) -> None:
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors must be 'raise' or 'collect', got {errors!r}")
    if not 1 <= max_results <= MAX_PAGE_SIZE:
        raise ValueError(f"max_results must be between 1 and {MAX_PAGE_SIZE} (IMM's limit), got {max_results}")
    if max_pages is not None and max_pages < 1:
        raise ValueError(f"max_pages must be >= 1 or None, got {max_pages}")


def _run(op: _Operation, params: dict[str, Any], *, client: Any, endpoint: str | None, region_id: str | None,
         credentials: Any, retry: RetryPolicy, errors: str, progress: bool, max_pages: int | None) -> _FetchResult:
    sdk = _sdk()
    client = _client_for(client, endpoint, region_id, credentials)
    logger.info("%s %s/%s (MaxResults=%s)", op.name, params.get("ProjectName"), params.get("DatasetName"),
                params.get("MaxResults"))
    return _fetch_pages(client, op, params, retry=retry, errors=errors, progress=progress, max_pages=max_pages,
                        secrets=_known_secrets(credentials), sdk=sdk)


#: The page keys the loaders compare with the records they load.
_TOTAL_KEYS = ("TotalCount", "TotalHits")


def _load(loader: Callable[..., pd.DataFrame], fetched: _FetchResult, errors: str) -> pd.DataFrame:
    """Run a loader on the pages.

    A complete fetch keeps ``TotalCount`` / ``TotalHits``, so the loader warns (and logs) when IMM's
    total and the records disagree. A fetch that stopped early (``max_pages``, or a malformed page
    collected) has fewer records than the total by design: the loader gets the pages without their
    totals (shallow copies; the pages returned to the caller keep them), so there is neither a
    warning nor a log line for it.
    """
    pages = fetched.pages
    if not fetched.complete:
        pages = [{k: v for k, v in page.items() if k not in _TOTAL_KEYS} for page in pages]
    return loader(pages, errors=errors)


def _annotate(frame: pd.DataFrame, op: _Operation, params: Mapping[str, Any], fetched: _FetchResult) -> pd.DataFrame:
    """Record where the frame came from in ``frame.attrs`` (small, no credentials) and add fetch errors."""
    frame.attrs["imm"] = {
        "operation": op.name,
        "project_name": params.get("ProjectName"),
        "dataset_name": params.get("DatasetName"),
        "pages": len(fetched.pages),
        "retries": fetched.retries,
        "complete": fetched.complete,
        "request_ids": list(fetched.request_ids),
    }
    if fetched.errors or "errors" in frame.attrs:
        frame.attrs["errors"] = list(frame.attrs.get("errors", [])) + list(fetched.errors)
    return frame


def _parse_query(query: Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    """A SimpleQuery ``Query`` as a dict (from a dict or a JSON string), with its keys checked."""
    if query is None:
        return None
    if isinstance(query, str):
        text = query
        try:
            query = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"query is not valid JSON ({exc}): {text[:200]!r}") from exc
        except RecursionError:
            raise ValueError(f"query is {limits.depth_reason()}: {text[:200]!r}") from None
    if not isinstance(query, Mapping):
        raise TypeError(f"query must be a dict or a JSON object string, not {type(query).__name__}")
    where = limits.too_deep(query)  # before the recursive check below
    if where is not None:
        raise ValueError(f"query.{where} is {limits.depth_reason()}")

    def check(node: Any, path: str) -> None:
        if not isinstance(node, Mapping):
            raise TypeError(f"query{path} must be an object, not {type(node).__name__}")
        unknown = sorted(set(node) - _QUERY_KEYS)
        if unknown:
            raise ValueError(f"query{path} has unknown key(s) {unknown}; IMM's SimpleQuery takes {sorted(_QUERY_KEYS)}")
        if not node.get("Operation"):
            raise ValueError(f"query{path} needs an 'Operation' (eq, and, or, prefix, range...)")
        for i, sub in enumerate(node.get("SubQueries") or []):
            check(sub, f"{path}.SubQueries[{i}]")

    check(query, "")
    return dict(query)


def _common_params(project_name: str, dataset_name: str, max_results: int, sort: str | None, order: str | None,
                   params: Mapping[str, Any] | None) -> dict[str, Any]:
    if not project_name or not dataset_name:
        raise ValueError("project_name and dataset_name must be non-empty")
    out: dict[str, Any] = {"ProjectName": project_name, "DatasetName": dataset_name, "MaxResults": max_results}
    if sort:
        out["Sort"] = sort
    if order:
        out["Order"] = order
    for key, value in (params or {}).items():
        if key in ("ProjectName", "DatasetName", "NextToken"):
            raise ValueError(f"params must not set {key!r} (it is an argument, or managed by the paging)")
        out[key] = value
    return out


def fetch_clusters(
    project_name: str,
    dataset_name: str,
    *,
    client: Any = None,
    endpoint: str | None = None,
    region_id: str | None = None,
    credentials: Any = None,
    max_results: int = MAX_PAGE_SIZE,
    sort: str | None = None,
    order: Literal["asc", "desc"] | None = None,
    params: Mapping[str, Any] | None = None,
    max_pages: int | None = None,
    errors: Literal["raise", "collect"] = "raise",
    progress: bool = True,
    max_retries: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 20.0,
    return_pages: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Fetch every face cluster of a dataset with IMM's ``QueryFigureClusters``.

    Follows ``NextToken`` to the last page and loads the pages with
    :func:`imm_analysis.load_clusters`, so the frame equals the one loaded from a saved export.

    Parameters
    ----------
    project_name, dataset_name : str
        The IMM project and dataset.
    client : alibabacloud_imm20200930.client.Client, optional
        A ready client (see :func:`make_client`); otherwise one is made from ``endpoint``,
        ``region_id`` and ``credentials`` (same meaning as in :func:`make_client`).
    endpoint, region_id, credentials : optional
        Passed to :func:`make_client` when ``client`` is None.
    max_results : int, default=100
        Clusters per page (IMM's ``MaxResults``, 1 to 100).
    sort, order : str, optional
        IMM's ``Sort`` (``ImageCount``, ``FaceCount``, ``CreateTime``, ``UpdateTime``...) and
        ``Order`` (``asc`` / ``desc``).
    params : mapping, optional
        More request parameters under their IMM names, e.g. ``{"CustomLabels": "..."}`` or
        ``{"WithTotalCount": False}`` (default True: the progress bar then knows the page count).
        Unknown names raise ValueError.
    max_pages : int, optional
        Stop after this many pages (``frame.attrs["imm"]["complete"]`` is then False).
    errors : {"raise", "collect"}, default="raise"
        ``"raise"``: a malformed response raises :class:`ImmResponseError`. ``"collect"``: the
        fetch stops at the malformed page (its ``NextToken`` is unknowable), keeps the pages fetched
        before it, lists the failure in ``frame.attrs["errors"]`` and sets
        ``frame.attrs["imm"]["complete"] = False``; bad records inside good pages are skipped and
        listed by the loader. API errors (4xx, retries used up) and missing credentials always raise.
    progress : bool, default=True
        A ``tqdm`` bar over pages.
    max_retries, backoff, max_backoff : int, float, float
        Retries per page for throttling (HTTP 429, ``Throttling*`` codes), 5xx and network errors,
        with exponential backoff and full jitter (see :class:`RetryPolicy`). 4xx errors are never retried.
    return_pages : bool, default=False
        Also return the raw pages (IMM-shaped dicts, one per response). They are not put in
        ``frame.attrs``, which pandas deep-copies on every operation.

    Returns
    -------
    pandas.DataFrame or (pandas.DataFrame, list of dict)
        The :func:`~imm_analysis.load_clusters` frame; ``frame.attrs["imm"]`` records the operation,
        project, dataset, pages, retries, completeness and IMM ``RequestId`` s (never credentials).

    Raises
    ------
    ImmResponseError
        A response that is not valid JSON or not shaped like the operation's answer (the message
        names the operation, the page and the ``NextToken`` sent).
    ImmApiError
        IMM answered with a client error, or kept failing after ``max_retries`` retries.
    ImmCredentialsError
        No credentials could be found.
    ImportError
        The SDK is missing: ``pip install "imm_analysis[imm]"``.

    Examples
    --------
    >>> clusters = fetch_clusters("my-project", "my-dataset", region_id="cn-hangzhou")  # doctest: +SKIP
    >>> clusters.sort_values("image_count", ascending=False).head()  # doctest: +SKIP
    """
    _check_common(errors, max_results, max_pages)
    request = {"WithTotalCount": True, **_common_params(project_name, dataset_name, max_results, sort, order, params)}
    retry = RetryPolicy(max_retries, backoff, max_backoff)
    fetched = _run(_CLUSTERS, request, client=client, endpoint=endpoint, region_id=region_id,
                   credentials=credentials, retry=retry, errors=errors, progress=progress, max_pages=max_pages)
    from imm_analysis.io.imm_json import load_clusters

    frame = _annotate(_load(load_clusters, fetched, errors), _CLUSTERS, request, fetched)
    return (frame, fetched.pages) if return_pages else frame


class FetchedFiles(NamedTuple):
    """What :func:`fetch_files` returns: ``files, figures, pages = fetch_files(...)`` or by attribute.

    Attributes
    ----------
    files : pandas.DataFrame
        One row per file (:func:`imm_analysis.load_files`).
    figures : pandas.DataFrame
        One row per face (:func:`imm_analysis.load_figures`).
    pages : list of dict
        The raw ``SimpleQuery`` responses, IMM-shaped.

    Examples
    --------
    >>> import pandas as pd
    >>> got = FetchedFiles(pd.DataFrame({"file_id": ["f1"]}), pd.DataFrame(), [{"Files": []}])
    >>> files, figures, pages = got
    >>> got
    FetchedFiles(files=1 rows, figures=0 rows, pages=1)
    """

    files: pd.DataFrame
    figures: pd.DataFrame
    pages: list[dict[str, Any]]

    def __repr__(self) -> str:
        return f"FetchedFiles(files={len(self.files)} rows, figures={len(self.figures)} rows, pages={len(self.pages)})"


def fetch_files(
    project_name: str,
    dataset_name: str,
    *,
    query: Mapping[str, Any] | str | None = None,
    client: Any = None,
    endpoint: str | None = None,
    region_id: str | None = None,
    credentials: Any = None,
    max_results: int = MAX_PAGE_SIZE,
    sort: str | None = None,
    order: str | None = None,
    params: Mapping[str, Any] | None = None,
    max_pages: int | None = None,
    errors: Literal["raise", "collect"] = "raise",
    progress: bool = True,
    max_retries: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 20.0,
) -> FetchedFiles:
    """Fetch the files (and their faces) matching a query with IMM's ``SimpleQuery``.

    Parameters
    ----------
    project_name, dataset_name : str
        The IMM project and dataset.
    query : dict or str, optional
        IMM's ``Query``, as a dict or a JSON string, e.g. the images of one cluster:
        ``{"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": cluster_id}``. Keys are
        checked (``Field``, ``Operation``, ``Value``, ``SubQueries``) so a typo cannot silently
        widen the query. None: every file of the dataset.
    client, endpoint, region_id, credentials : optional
        As in :func:`fetch_clusters`.
    max_results : int, default=100
        Files per page (1 to 100).
    sort, order : str, optional
        IMM's ``Sort`` (e.g. ``ProduceTime``) and ``Order``.
    params : mapping, optional
        More request parameters under their IMM names (``WithFields``, ``WithoutTotalHits``...).
    max_pages, errors, progress, max_retries, backoff, max_backoff
        As in :func:`fetch_clusters`.

    Returns
    -------
    FetchedFiles
        ``(files, figures, pages)``; both frames carry ``attrs["imm"]`` (and ``attrs["errors"]``).

    Raises
    ------
    ImmResponseError, ImmApiError, ImmCredentialsError, ImportError
        As in :func:`fetch_clusters`. ValueError for a query that is not valid JSON or has unknown keys.

    Examples
    --------
    >>> query = {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-7bdbcedb-..."}
    >>> files, figures, pages = fetch_files("my-project", "my-dataset", query=query)  # doctest: +SKIP
    >>> figures.groupby("figure_cluster_id").size()  # doctest: +SKIP
    """
    _check_common(errors, max_results, max_pages)
    request = _common_params(project_name, dataset_name, max_results, sort, order, params)
    parsed = _parse_query(query)
    if parsed is not None:
        request["Query"] = parsed
    retry = RetryPolicy(max_retries, backoff, max_backoff)
    fetched = _run(_FILES, request, client=client, endpoint=endpoint, region_id=region_id,
                   credentials=credentials, retry=retry, errors=errors, progress=progress, max_pages=max_pages)
    from imm_analysis.io.imm_json import load_figures, load_files

    files = _annotate(_load(load_files, fetched, errors), _FILES, request, fetched)
    figures = _annotate(_load(load_figures, fetched, errors), _FILES, request, fetched)
    return FetchedFiles(files, figures, fetched.pages)
