"""`make demo` (examples/chat/app.py) says where it serves and what to try, and serves there."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.servers import ROOT, free_port

pytestmark = [pytest.mark.live, pytest.mark.timeout(30)]


def test_demo_prints_its_url_and_what_to_try() -> None:
    port = free_port()
    command = [sys.executable, "examples/chat/app.py", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        url = f"http://127.0.0.1:{port}/"
        assert lines[0].strip() == f"realtime chat demo: open {url}"
        assert "two tabs" in lines[1]
        assert f"{url}?transports=polling" in lines[2]
        deadline = time.monotonic() + 20
        while True:  # the greeting comes before uvicorn listens
            try:
                page = httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo did not start serving"
                time.sleep(0.05)
        assert page.status_code == 200
        assert 'id="messages"' in page.text
    finally:
        proc.terminate()
        proc.wait(10)
