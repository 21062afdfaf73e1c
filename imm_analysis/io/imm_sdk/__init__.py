"""Live fetching from Alibaba Cloud IMM with the official SDK (``alibabacloud-imm20200930``), by job.

* :mod:`~imm_analysis.io.imm_sdk.client`: the SDK import (optional extra ``[imm]``), ``make_client``,
  endpoints and credentials (never logged, never in a frame, an error or a ``repr``)
* :mod:`~imm_analysis.io.imm_sdk.retry`: ``RetryPolicy`` (exponential backoff, full jitter) and the
  sorting of SDK exceptions into retry / fail / malformed
* :mod:`~imm_analysis.io.imm_sdk.paging`: one operation page after page along ``NextToken``
* :mod:`~imm_analysis.io.imm_sdk.fetch`: ``fetch_clusters``, ``fetch_files``
* :mod:`~imm_analysis.io.imm_sdk.errors`: ``ImmFetchError`` and its subclasses (picklable)

:mod:`imm_analysis.imm` re-exports the public names. Everything logs to the ``imm_analysis.imm``
logger. The SDK is imported when a fetch runs, never on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imm_analysis._lazy import attach

_EXPORTS = {
    "make_client": "imm_analysis.io.imm_sdk.client",
    "RetryPolicy": "imm_analysis.io.imm_sdk.retry",
    "fetch_clusters": "imm_analysis.io.imm_sdk.fetch",
    "fetch_files": "imm_analysis.io.imm_sdk.fetch",
    "FetchedFiles": "imm_analysis.io.imm_sdk.fetch",
    "ImmFetchError": "imm_analysis.io.imm_sdk.errors",
    "ImmResponseError": "imm_analysis.io.imm_sdk.errors",
    "ImmApiError": "imm_analysis.io.imm_sdk.errors",
    "ImmCredentialsError": "imm_analysis.io.imm_sdk.errors",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.io.imm_sdk.client import make_client
    from imm_analysis.io.imm_sdk.errors import ImmApiError, ImmCredentialsError, ImmFetchError, ImmResponseError
    from imm_analysis.io.imm_sdk.fetch import FetchedFiles, fetch_clusters, fetch_files
    from imm_analysis.io.imm_sdk.retry import RetryPolicy

__getattr__, __dir__ = attach(__name__, _EXPORTS)
