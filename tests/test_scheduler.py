"""``--scheduler`` addresses: strict checks, and a clean error within the limit for anything that is not Dask."""
import functools
import http.server
import socket
import socketserver
import threading
import time

import pytest

from pipeline import lake_screen
from pipeline.lake_screen import check_scheduler, dask_client

LIMIT = 2
"""Seconds given to a connect in these tests (CONNECT_TIMEOUT_S, patched)."""


@pytest.fixture(autouse=True)
def short_limit(monkeypatch):
    monkeypatch.setattr(lake_screen, "CONNECT_TIMEOUT_S", LIMIT)


@pytest.mark.parametrize("address", ["local", "none", "tcp://127.0.0.1:8786", "tls://scheduler.example:8786",
                                     "10.0.0.5:8786", "tcp://[::1]:8786", "my-host_1.lan:1"])
def test_addresses_accepted(address):
    check_scheduler(address)


@pytest.mark.parametrize("address", ["inproc://x", "tcp://127.0.0.1:8786/../../", "tcp://127.0.0.1:8786/",
                                     "tcp://127.0.0.1", "127.0.0.1", "ucx://10.0.0.5:8786", "ws://h:1",
                                     "tcp://h:0", "tcp://h:65536", "tcp://h:99999", "not an address", "",
                                     "tcp://:8786", "tcp://h:8786?x=1", "tcp://a b:1", "http://h:8786"])
def test_addresses_refused(address):
    with pytest.raises(ValueError, match="--scheduler"):
        check_scheduler(address)


@pytest.mark.parametrize("address", ["inproc://x", "tcp://127.0.0.1:8786/../../"])
def test_dask_client_refuses_bad_addresses_with_a_value_error(address):
    with pytest.raises(ValueError, match="--scheduler"):
        with dask_client(address):
            pass


class _Banner(socketserver.BaseRequestHandler):
    banner = b"SSH-2.0-x\r\n"

    def handle(self):
        self.request.sendall(self.banner)
        try:
            self.request.recv(1 << 16)
            time.sleep(30)  # keep the connection open, as a real service would
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def serve():
    servers = []

    def start(handler):
        server = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"tcp://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("kind", ["banner", "http", "closed"])
def test_a_port_that_is_not_a_dask_scheduler_is_a_clean_error_within_the_limit(serve, tmp_path, kind):
    if kind == "banner":
        address = serve(_Banner)
    elif kind == "http":
        address = serve(functools.partial(_Quiet, directory=str(tmp_path)))
    else:
        address = f"tcp://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="cannot reach the Dask scheduler"):
        with dask_client(address):
            pass
    assert time.monotonic() - started < LIMIT + 8


def test_quiet_lake_screen_on_local_workers_prints_the_error_once_without_worker_logs(tmp_path):
    """Without -v, a task failure on a LocalCluster worker is the `error:` line alone (no worker traceback)."""
    import subprocess
    import sys
    from pathlib import Path

    from conftest import shipment, write_ledger
    from pipeline.lake import Lake, ingest

    ingest([write_ledger([shipment("A1"), shipment("B1", "2025-04-02")], tmp_path / "a.csv")], tmp_path / "lake")
    path = tmp_path / "lake" / Lake.open(tmp_path / "lake").partition("2025-03").path
    path.write_bytes(path.read_bytes()[:200])
    cli = Path(sys.executable).with_name("chipscreen")
    result = subprocess.run([str(cli), "screen", "--lake", str(tmp_path / "lake"), "-p", "post-rescission-2025",
                             "-o", str(tmp_path / "o"), "--workers", "2", "-q"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "error:" in output and "chipscreen lake verify" in output, output
    assert "distributed.worker" not in output and "Traceback" not in output and "Compute Failed" not in output, output


class _Recorder:
    """Stands in for ``LocalCUDACluster`` and ``distributed.Client``: records how it was built."""

    made: list = []

    def __init__(self, *args, **kwargs):
        self.kwargs = kwargs
        self.ran = []
        _Recorder.made.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, function, *args):
        self.ran.append(function)


@pytest.mark.parametrize("with_rmm", [False, True])
def test_gpu_cluster_uses_an_rmm_pool_only_when_rmm_imports(monkeypatch, with_rmm):
    import sys
    import types

    import distributed

    fake = types.ModuleType("dask_cuda")
    fake.LocalCUDACluster = _Recorder
    monkeypatch.setitem(sys.modules, "dask_cuda", fake)
    monkeypatch.setitem(sys.modules, "rmm", types.ModuleType("rmm") if with_rmm else None)  # None: ImportError
    monkeypatch.setattr(distributed, "Client", _Recorder)
    _Recorder.made = []
    with dask_client("local", backend="cupy"):
        pass
    cluster, client = _Recorder.made
    assert ("rmm_pool_size" in cluster.kwargs) is with_rmm  # without rmm: CuPy's own pool, no ValueError
    assert (lake_screen._route_cupy_through_rmm in client.ran) is with_rmm
