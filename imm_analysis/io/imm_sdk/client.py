"""The IMM SDK client: importing the optional SDK, endpoints, and credentials (never logged or shown).

Credentials come from ``credentials=``, else from ``ALIBABA_CLOUD_ACCESS_KEY_ID`` /
``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (and ``ALIBABA_CLOUD_SECURITY_TOKEN``) read when the client is
made, else from the SDK's default credential chain. They are handed to the SDK and nowhere else.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from imm_analysis._optional import require

__all__ = ["make_client", "INSTALL_HINT", "ENV_ACCESS_KEY_ID", "ENV_ACCESS_KEY_SECRET", "ENV_SECURITY_TOKEN", "ENV_REGION_ID"]

logger = logging.getLogger("imm_analysis.imm")

INSTALL_HINT = 'pip install "imm_analysis[imm]"'
ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"
ENV_REGION_ID = "ALIBABA_CLOUD_REGION_ID"
_REDACTED = "***"


def _sdk() -> dict[str, Any]:
    """Import the SDK pieces used here; an ImportError naming the pip extra when it is missing."""
    require("alibabacloud_imm20200930.client", purpose="Live IMM fetching")  # the message names the extra
    try:
        from alibabacloud_credentials.client import Client as CredentialClient
        from alibabacloud_credentials.exceptions import CredentialException
        from alibabacloud_imm20200930 import models
        from alibabacloud_imm20200930.client import Client
        from Tea.exceptions import RetryError as TeaRetryError
        from Tea.exceptions import UnretryableException

        try:  # SDK 5.x (darabonba); 4.x kept Config in alibabacloud_tea_openapi.models and used Tea's errors
            from alibabacloud_tea_openapi.utils_models import Config
            from darabonba.exceptions import RetryError

            retry_errors: tuple[type, ...] = (RetryError, TeaRetryError)
        except ImportError:  # pragma: no cover - older SDK
            from alibabacloud_tea_openapi.models import Config

            retry_errors = (TeaRetryError,)
    except ImportError as exc:
        raise ImportError(
            "Live IMM fetching needs the official Alibaba Cloud IMM SDK (alibabacloud-imm20200930): "
            f"{INSTALL_HINT}"
        ) from exc
    return {
        "Client": Client,
        "Config": Config,
        "CredentialClient": CredentialClient,
        "CredentialException": CredentialException,
        "RetryError": retry_errors,
        "UnretryableException": UnretryableException,
        "models": models,
    }


def _split_endpoint(endpoint: str, protocol: str | None) -> tuple[str, str]:
    """``"http://host:port/"`` -> ``("host:port", "http")``; a bare host keeps ``protocol`` (default https)."""
    scheme, sep, rest = endpoint.partition("://")
    if sep:
        if protocol and protocol.lower() != scheme.lower():
            raise ValueError(f"endpoint {endpoint!r} says {scheme!r} but protocol={protocol!r}")
        return rest.rstrip("/"), scheme.lower()
    return endpoint.rstrip("/"), (protocol or "https").lower()


def make_client(
    *,
    endpoint: str | None = None,
    region_id: str | None = None,
    credentials: Any = None,
    protocol: str | None = None,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
) -> Any:
    """Make an IMM SDK client (``alibabacloud_imm20200930.client.Client``).

    Parameters
    ----------
    endpoint : str, optional
        ``imm.cn-hangzhou.aliyuncs.com``, or ``host:port`` / ``http://host:port`` (a scheme sets the
        protocol). Default: the SDK's endpoint for ``region_id``.
    region_id : str, optional
        ``cn-hangzhou``... Default: ``$ALIBABA_CLOUD_REGION_ID``. One of endpoint / region is needed.
    credentials : mapping, credential client or None, default=None
        A mapping with ``access_key_id``, ``access_key_secret`` and optional ``security_token``; or an
        ``alibabacloud_credentials.client.Client`` (any object with ``get_credential()``); or None: the
        ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` /
        ``ALIBABA_CLOUD_SECURITY_TOKEN`` environment variables when set, else the SDK's default chain.
    protocol : {"https", "http"}, optional
        Default https (or the endpoint's scheme).
    connect_timeout, read_timeout : float, default=10.0, 60.0
        Seconds.

    Returns
    -------
    alibabacloud_imm20200930.client.Client

    Raises
    ------
    ImportError
        When the SDK is not installed (``pip install "imm_analysis[imm]"``).
    ValueError
        When neither an endpoint nor a region is known, or ``credentials`` is incomplete.

    Examples
    --------
    >>> client = make_client(region_id="cn-hangzhou")  # doctest: +SKIP
    >>> client = make_client(endpoint="http://127.0.0.1:8080", credentials={"access_key_id": "id",
    ...                      "access_key_secret": "secret"})  # doctest: +SKIP
    """
    sdk = _sdk()
    region_id = region_id or os.environ.get(ENV_REGION_ID) or None
    if not endpoint and not region_id:
        raise ValueError(
            f"make_client needs endpoint= (e.g. 'imm.cn-hangzhou.aliyuncs.com') or region_id= (or ${ENV_REGION_ID})"
        )
    config = sdk["Config"](
        region_id=region_id,
        connect_timeout=int(connect_timeout * 1000),
        read_timeout=int(read_timeout * 1000),
    )
    if endpoint:
        config.endpoint, config.protocol = _split_endpoint(endpoint, protocol)
    elif protocol:
        config.protocol = protocol.lower()
    source = _apply_credentials(config, credentials, sdk)
    client = sdk["Client"](config)
    logger.debug("IMM client for %s (credentials from %s)", config.endpoint or region_id, source)
    return client


def _apply_credentials(config: Any, credentials: Any, sdk: Mapping[str, Any]) -> str:
    """Put ``credentials`` on the SDK config; return where they came from (words, no secret)."""
    if credentials is None:
        key_id, secret = os.environ.get(ENV_ACCESS_KEY_ID), os.environ.get(ENV_ACCESS_KEY_SECRET)
        if key_id and secret:
            config.access_key_id, config.access_key_secret = key_id, secret
            config.security_token = os.environ.get(ENV_SECURITY_TOKEN) or None
            return "the environment"
        config.credential = sdk["CredentialClient"]()
        return "the SDK's default credential chain"
    if isinstance(credentials, Mapping):
        missing = [k for k in ("access_key_id", "access_key_secret") if not credentials.get(k)]
        if missing:
            raise ValueError(f"credentials is missing {', '.join(missing)} (it has: {', '.join(sorted(credentials))})")
        unknown = set(credentials) - {"access_key_id", "access_key_secret", "security_token"}
        if unknown:
            raise ValueError(f"credentials has unknown keys {sorted(unknown)}")
        config.access_key_id = credentials["access_key_id"]
        config.access_key_secret = credentials["access_key_secret"]
        config.security_token = credentials.get("security_token") or None
        return "the credentials mapping"
    if callable(getattr(credentials, "get_credential", None)):
        config.credential = credentials
        return f"a {type(credentials).__name__}"
    raise TypeError(
        "credentials must be None, a mapping with access_key_id/access_key_secret, or an "
        f"alibabacloud_credentials client, not {type(credentials).__name__}"
    )


def _known_secrets(credentials: Any) -> list[str]:
    """Secret strings to scrub from any message we write (belt and braces: they should never get there)."""
    values = [os.environ.get(ENV_ACCESS_KEY_SECRET), os.environ.get(ENV_SECURITY_TOKEN)]
    if isinstance(credentials, Mapping):
        values += [credentials.get("access_key_secret"), credentials.get("security_token")]
    return [v for v in values if isinstance(v, str) and len(v) >= 4]


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _REDACTED)
    return text
