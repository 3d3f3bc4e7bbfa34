"""nginx from Debian as a round-robin balancer in front of several realtime processes.

No ``ip_hash``, no cookie, no keep-alive to the upstreams: every request (each long-poll,
each POST, each WebSocket) goes to the next process in turn, which is what a router
without session affinity does. ``proxy_next_upstream error timeout`` makes nginx try the
next process when one refuses the connection (a killed node), for requests it may retry
(not a POST it has already sent). The access log records, per request, the upstream(s)
tried and their status, so a test can tell which requests went through which node.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port, require

NGINX_CANDIDATES = ("/usr/sbin/nginx",)
#: Long enough for a long-poll (ping interval 25 s) and a WebSocket that lives for a test.
READ_TIMEOUT_S = 3600
#: A killed node refuses at once; this bounds a node that accepts but never answers.
CONNECT_TIMEOUT_S = 2
LOG_FORMAT = (
    '$msec $request_time $status "$upstream_addr" "$upstream_status" $request_method "$request_uri"'
)


def nginx_binary() -> str:
    """Debian's nginx (``apt-get install nginx``); skip locally, fail under CI=true."""
    found = next((p for p in NGINX_CANDIDATES if os.access(p, os.X_OK)), None)
    found = found or shutil.which("nginx")
    require(found is not None, "nginx is not installed (apt-get install -y nginx)")
    assert found is not None
    return found


def config(workdir: Path, port: int, upstreams: list[int]) -> str:
    """The whole nginx.conf: foreground, every path under ``workdir``."""
    servers = "".join(f"        server 127.0.0.1:{p};\n" for p in upstreams)
    temp = "".join(
        f"    {kind}_temp_path {workdir / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
master_process off;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{
    worker_connections 8192;
}}
http {{
{temp}    log_format upstreams '{LOG_FORMAT}';
    access_log {workdir / "access.log"} upstreams;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream realtime {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://realtime;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_connect_timeout {CONNECT_TIMEOUT_S}s;
            proxy_read_timeout {READ_TIMEOUT_S}s;
            proxy_send_timeout {READ_TIMEOUT_S}s;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class LogLine:
    """One request as nginx logged it when it ended."""

    ended: float  # epoch seconds
    duration: float
    status: int
    upstreams: tuple[str, ...]  # every upstream tried, in order ("127.0.0.1:port")
    upstream_statuses: tuple[str, ...]
    method: str
    uri: str

    @property
    def sid(self) -> str | None:
        for part in self.uri.partition("?")[2].split("&"):
            name, _, value = part.partition("=")
            if name == "sid":
                return value
        return None


def parse_log(text: str) -> list[LogLine]:
    lines = []
    for raw in text.splitlines():
        head, _, rest = raw.partition(' "')
        ended, duration, status = head.split()
        upstreams, _, rest = rest.partition('" "')
        statuses, _, rest = rest.partition('" ')
        method, _, uri = rest.partition(' "')
        lines.append(
            LogLine(
                ended=float(ended),
                duration=float(duration),
                status=int(status),
                upstreams=tuple(u.strip() for u in upstreams.split(",")),
                upstream_statuses=tuple(s.strip() for s in statuses.split(",")),
                method=method,
                uri=uri.rstrip('"'),
            )
        )
    return lines


class Balancer:
    """A running nginx on ``url`` in front of ``upstreams`` (ports on 127.0.0.1)."""

    def __init__(self, workdir: Path, upstreams: list[int]) -> None:
        self.binary = nginx_binary()
        self.workdir = workdir
        self.upstreams = upstreams
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(config(self.workdir, self.port, self.upstreams))
        args = [self.binary, "-p", str(self.workdir), "-e", str(self.workdir / "error.log")]
        self.proc = subprocess.Popen([*args, "-c", str(conf)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.errors()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on {self.port}: {self.errors()}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown: drops open connections
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def errors(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text() if path.exists() else ""

    def log(self) -> list[LogLine]:
        path = self.workdir / "access.log"
        return parse_log(path.read_text()) if path.exists() else []


@contextlib.contextmanager
def balancer(workdir: Path, upstreams: list[int]) -> Iterator[Balancer]:
    """nginx round-robin over ``upstreams`` until the block ends."""
    lb = Balancer(workdir, upstreams)
    lb.start()
    try:
        yield lb
    finally:
        lb.stop()
