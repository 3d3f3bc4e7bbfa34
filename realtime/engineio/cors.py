"""Origin checks and CORS headers: pure functions of the config and request headers.

The same check guards WebSocket upgrades: browsers do not apply CORS to
WebSockets, so without it any site could open a socket with the user's cookies
(cross-site WebSocket hijacking).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from realtime.engineio.config import EngineConfig

Headers = list[tuple[bytes, bytes]]


def same_origin(origin: str, host: str | None) -> bool:
    """``Origin: http://a.example:8000`` against ``Host: a.example:8000``."""
    if host is None:
        return False
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return netloc.lower() == host.lower()


def origin_allowed(config: EngineConfig, origin: str | None, host: str | None) -> bool:
    """Requests without ``Origin`` come from non-browser clients and pass."""
    if origin is None or config.cors_origins == "*":
        return True
    if config.cors_origins is not None and origin in config.cors_origins:
        return True
    return same_origin(origin, host)


def cors_headers(config: EngineConfig, origin: str | None) -> Headers:
    """Headers for an allowed request; none at all when CORS is off."""
    if config.cors_origins is None or origin is None:
        return []
    if config.cors_origins == "*":
        return [(b"access-control-allow-origin", b"*")]
    if origin not in config.cors_origins:
        return [(b"vary", b"Origin")]
    headers = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
    if config.cors_credentials:
        headers.append((b"access-control-allow-credentials", b"true"))
    return headers


def preflight_headers(
    config: EngineConfig, origin: str | None, request_headers: str | None
) -> Headers:
    """Extra headers answering an ``OPTIONS`` preflight."""
    headers = cors_headers(config, origin)
    if not headers or headers == [(b"vary", b"Origin")]:
        return headers
    headers.append((b"access-control-allow-methods", b"GET, POST, OPTIONS"))
    if request_headers:
        headers.append((b"access-control-allow-headers", request_headers.encode("latin-1")))
    headers.append((b"access-control-max-age", b"86400"))
    return headers
