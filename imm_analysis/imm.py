"""Live fetching from Alibaba Cloud IMM with the official SDK (``alibabacloud-imm20200930``).

:func:`fetch_clusters` calls ``QueryFigureClusters`` and :func:`fetch_files` calls ``SimpleQuery``;
both follow ``NextToken`` to the last page, retry throttling and server errors with exponential
backoff and jitter, and hand the pages (plain dicts, converted with the SDK's own ``to_map()``) to
the JSON loaders, so a live fetch gives exactly the frames a saved export gives.

Credentials come from ``credentials=``, else from ``ALIBABA_CLOUD_ACCESS_KEY_ID`` /
``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (and ``ALIBABA_CLOUD_SECURITY_TOKEN``) read when the client is
made, else from the SDK's default credential chain (``~/.alibabacloud/credentials.ini``, the
``aliyun`` CLI profile, an ECS RAM role, OIDC...). They are handed to the SDK and nowhere else:
never logged, never in a frame, its ``attrs``, an error message or a ``repr``.

The SDK is an optional extra: ``pip install "imm_analysis[imm]"``. It is imported when a function
here is called, never at ``import imm_analysis``.

The code lives in :mod:`imm_analysis.io.imm_sdk` (client and credentials, retries, paging,
fetches, task runs); this module re-exports its public names, so ``from imm_analysis import imm`` and
``imm.fetch_clusters(...)`` keep working. Everything logs to the ``imm_analysis.imm`` logger.
"""

from __future__ import annotations

from imm_analysis.io.imm_sdk.client import (  # noqa: F401 (the constants stay importable from here)
    ENV_ACCESS_KEY_ID,
    ENV_ACCESS_KEY_SECRET,
    ENV_REGION_ID,
    ENV_SECURITY_TOKEN,
    INSTALL_HINT,
    make_client,
)
from imm_analysis.io.imm_sdk.errors import ImmApiError, ImmCredentialsError, ImmFetchError, ImmResponseError
from imm_analysis.io.imm_sdk.fetch import FetchedFiles, fetch_clusters, fetch_files
from imm_analysis.io.imm_sdk.paging import MAX_PAGE_SIZE  # noqa: F401
from imm_analysis.io.imm_sdk.retry import RetryPolicy
from imm_analysis.io.imm_sdk.tasks import ImmTaskTimeout, create_figure_clustering_task, get_task, list_tasks

__all__ = [
    "FetchedFiles",
    "ImmApiError",
    "ImmCredentialsError",
    "ImmFetchError",
    "ImmResponseError",
    "ImmTaskTimeout",
    "RetryPolicy",
    "create_figure_clustering_task",
    "fetch_clusters",
    "fetch_files",
    "get_task",
    "list_tasks",
    "make_client",
]
