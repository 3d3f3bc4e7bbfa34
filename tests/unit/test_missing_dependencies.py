"""A missing real dependency skips a test locally but fails it under CI=true."""

from __future__ import annotations

import pytest

import tests.servers
from tests.live.conformance_client import conformance_server


@pytest.fixture
def no_conformance_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONFORMANCE_URL", "CONFORMANCE_EIO_URL", "CONFORMANCE_SIO_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_conformance_url")
def test_a_missing_conformance_server_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tests.servers, "IN_CI", True)
    # Catch any outcome, so that a skip is seen as the failure it is here.
    with pytest.raises(BaseException, match=r"no_such_server\.py") as outcome:
        next(conformance_server("no_such_server.py", "CONFORMANCE_EIO_URL"))
    assert outcome.type is pytest.fail.Exception


@pytest.mark.usefixtures("no_conformance_url")
def test_a_missing_conformance_server_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tests.servers, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match=r"no_such_server\.py"):
        next(conformance_server("no_such_server.py", "CONFORMANCE_EIO_URL"))
