"""Origin checks and CORS headers (pure), and the config rule they rely on."""

from __future__ import annotations

import pytest

from realtime.engineio.config import EngineConfig
from realtime.engineio.cors import (
    cors_headers,
    origin_allowed,
    preflight_headers,
    same_origin,
)

HOST = "app.example:8000"
SAME = "http://app.example:8000"
FOREIGN = "https://evil.example"


def names(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    return {name for name, _ in headers}


class TestOffByDefault:
    config = EngineConfig()

    def test_no_headers(self) -> None:
        assert self.config.cors_origins is None
        assert cors_headers(self.config, SAME) == []
        assert cors_headers(self.config, FOREIGN) == []
        assert cors_headers(self.config, None) == []
        assert preflight_headers(self.config, FOREIGN, "content-type") == []

    def test_foreign_origin_refused(self) -> None:
        assert not origin_allowed(self.config, FOREIGN, HOST)
        # Same host name, other port or scheme-less junk: still foreign.
        assert not origin_allowed(self.config, "http://app.example:9000", HOST)
        assert not origin_allowed(self.config, "null", HOST)
        assert not origin_allowed(self.config, SAME, None)

    def test_same_origin_allowed(self) -> None:
        assert origin_allowed(self.config, SAME, HOST)
        assert origin_allowed(self.config, "https://APP.example:8000", HOST)

    def test_no_origin_allowed(self) -> None:
        assert origin_allowed(self.config, None, HOST)
        assert origin_allowed(self.config, None, None)


class TestSameOrigin:
    @pytest.mark.parametrize(
        ("origin", "host", "expected"),
        [
            ("http://a.example", "a.example", True),
            ("http://a.example:81", "a.example", False),
            ("http://a.example", "b.example", False),
            ("http://[::1]:80", "[::1]:80", True),
            ("http://[::1", "[::1]", False),  # urlsplit raises ValueError
            ("", "a.example", False),
        ],
    )
    def test_cases(self, origin: str, host: str, expected: bool) -> None:
        assert same_origin(origin, host) is expected


class TestAnyOrigin:
    config = EngineConfig(cors_origins="*")

    def test_any_origin_allowed(self) -> None:
        assert origin_allowed(self.config, FOREIGN, HOST)
        assert origin_allowed(self.config, FOREIGN, None)

    def test_star_without_credentials(self) -> None:
        assert cors_headers(self.config, FOREIGN) == [(b"access-control-allow-origin", b"*")]
        assert b"access-control-allow-credentials" not in names(
            preflight_headers(self.config, FOREIGN, None)
        )

    def test_no_origin_no_headers(self) -> None:
        assert cors_headers(self.config, None) == []

    def test_preflight(self) -> None:
        headers = dict(preflight_headers(self.config, FOREIGN, "content-type, x-token"))
        assert headers[b"access-control-allow-origin"] == b"*"
        assert headers[b"access-control-allow-methods"] == b"GET, POST, OPTIONS"
        assert headers[b"access-control-allow-headers"] == b"content-type, x-token"
        assert b"access-control-max-age" in headers

    def test_star_with_credentials_rejected(self) -> None:
        with pytest.raises(ValueError, match="credentials"):
            EngineConfig(cors_origins="*", cors_credentials=True)


class TestAllowList:
    config = EngineConfig(
        cors_origins=["https://good.example", "http://localhost:3000"], cors_credentials=True
    )

    def test_listed_origin_echoed_with_credentials_and_vary(self) -> None:
        headers = cors_headers(self.config, "https://good.example")
        assert dict(headers) == {
            b"access-control-allow-origin": b"https://good.example",
            b"vary": b"Origin",
            b"access-control-allow-credentials": b"true",
        }
        assert origin_allowed(self.config, "https://good.example", HOST)
        assert origin_allowed(self.config, "http://localhost:3000", HOST)

    def test_unlisted_origin_refused_and_gets_no_allow_origin(self) -> None:
        assert not origin_allowed(self.config, FOREIGN, HOST)
        # Exact match only: no prefix or suffix tricks.
        assert not origin_allowed(self.config, "https://good.example.evil", HOST)
        assert not origin_allowed(self.config, "https://good.examplE", HOST)
        headers = cors_headers(self.config, FOREIGN)
        assert b"access-control-allow-origin" not in names(headers)
        assert b"access-control-allow-credentials" not in names(headers)
        assert preflight_headers(self.config, FOREIGN, "content-type") == [(b"vary", b"Origin")]

    def test_same_origin_still_allowed(self) -> None:
        assert origin_allowed(self.config, SAME, HOST)

    def test_without_credentials(self) -> None:
        config = EngineConfig(cors_origins=["https://good.example"])
        assert dict(cors_headers(config, "https://good.example")) == {
            b"access-control-allow-origin": b"https://good.example",
            b"vary": b"Origin",
        }

    def test_preflight(self) -> None:
        headers = dict(preflight_headers(self.config, "https://good.example", None))
        assert headers[b"access-control-allow-origin"] == b"https://good.example"
        assert headers[b"access-control-allow-credentials"] == b"true"
        assert headers[b"access-control-allow-methods"] == b"GET, POST, OPTIONS"
        assert headers[b"vary"] == b"Origin"
        assert b"access-control-allow-headers" not in headers


class TestConfigValidation:
    @pytest.mark.parametrize(
        "options",
        [
            {"ping_interval": 0},
            {"ping_timeout": -1},
            {"max_payload": 0},
            {"max_buffer_bytes": 0},
            {"transports": ()},
            {"transports": ("polling", "flash")},
        ],
    )
    def test_rejects(self, options: dict[str, object]) -> None:
        with pytest.raises(ValueError):  # noqa: PT011
            EngineConfig(**options)  # type: ignore[arg-type]

    def test_path_gets_a_trailing_slash(self) -> None:
        assert EngineConfig(path="/rt").path == "/rt/"
