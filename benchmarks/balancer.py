"""nginx (Debian's package) as the balancer of the ``--relay`` benchmark.

One nginx process (``daemon off``, ``master_process off``) on a free 127.0.0.1
port, its config, pid, logs and temp files in a directory of its own, stopped
when the block ends. Upstream connections are kept alive (as a production
balancer keeps them), so the measurement is not dominated by TCP set-up to the
nodes. Every response carries ``X-Upstream: 127.0.0.1:<port>``, the node that
served it: the loader counts from it the requests that landed on a node other
than their session's owner. No access log: it would cost per request.

``policy="round-robin"``: every request (each long-poll, each POST, each
WebSocket) goes to the next node, as a router without affinity does.
``policy="sticky"``: ``hash $http_x_bench_client``, affinity on a per-client
token the loader sends (as an affinity cookie would be), so each client's
requests all reach one node. ``ip_hash`` would not do here: every client comes
from 127.0.0.1, so all would land on one node.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks.run import wait_port

NGINX = "/usr/sbin/nginx"
POLICIES = ("round-robin", "sticky")
#: Idle connections to the nodes nginx keeps open (more than the clients' concurrency).
UPSTREAM_KEEPALIVE = 256
#: Long enough for a long-poll (ping interval 25 s) and a WebSocket held for a run.
READ_TIMEOUT_S = 120
START_TIMEOUT_S = 10


class BalancerError(RuntimeError):
    """nginx is missing, or did not start."""


def nginx_binary() -> str:
    found = NGINX if Path(NGINX).exists() else shutil.which("nginx")
    if found is None:
        raise BalancerError("nginx is not installed (apt-get install -y nginx)")
    return found


def config(workdir: Path, port: int, upstreams: list[int], policy: str) -> str:
    """The whole nginx.conf: one process in the foreground, every path in ``workdir``."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}")
    hashing = "        hash $http_x_bench_client;\n" if policy == "sticky" else ""
    servers = "".join(f"        server 127.0.0.1:{p};\n" for p in upstreams)
    temp = "".join(
        f"    {kind}_temp_path {workdir / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{
    worker_connections 4096;
}}
http {{
{temp}    access_log off;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}
    upstream realtime {{
{hashing}{servers}        keepalive {UPSTREAM_KEEPALIVE};
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://realtime;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout {READ_TIMEOUT_S}s;
            proxy_send_timeout {READ_TIMEOUT_S}s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def nginx(
    upstreams: list[int],
    policy: str = "round-robin",
    preexec: Callable[[], None] | None = None,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Run nginx in front of ``upstreams`` (ports on 127.0.0.1); yields (port, process)."""
    binary = nginx_binary()
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp:
        workdir = Path(tmp)
        port = _free_port()
        conf = workdir / "nginx.conf"
        conf.write_text(config(workdir, port, upstreams, policy))
        proc = subprocess.Popen(
            [binary, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=preexec,
        )
        try:
            _wait_listening(proc, port, workdir)
            yield port, proc
        finally:
            if proc.poll() is None:
                proc.terminate()  # SIGTERM: fast shutdown, open connections dropped
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
    try:
        wait_port(port, proc, START_TIMEOUT_S)
    except RuntimeError as exc:
        raise BalancerError(f"nginx did not start ({exc}): {_errors(workdir)}") from exc


def _errors(workdir: Path) -> str:
    path = workdir / "error.log"
    return path.read_text()[-2000:] if path.exists() else ""
