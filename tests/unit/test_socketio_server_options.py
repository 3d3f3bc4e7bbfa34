"""Server options that are checked when the server is built."""

from __future__ import annotations

import math

import pytest

from realtime import Server


@pytest.mark.parametrize("timeout", [0, 0.0, -1, math.nan])
def test_connect_timeout_must_be_positive(timeout: float) -> None:
    # Zero made the no-CONNECT sweep sleep 0 s in a loop: a busy loop, not a sweep.
    with pytest.raises(ValueError, match="connect_timeout"):
        Server(connect_timeout=timeout)


def test_small_positive_connect_timeout_is_accepted() -> None:
    assert Server(connect_timeout=0.001).connect_timeout == 0.001
