"""Shared fixtures: one embedded chDB path per test process (chDB allows one per process),
a fresh database per test, in-process receivers on free loopback ports, and `serve`
subprocesses for tests that kill and restart the receiver."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from receiver.config import load_config
from receiver.server import Receiver
from receiver.store.chdb_store import ChdbStore

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def chdb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def store(chdb_root: Path) -> Iterator[ChdbStore]:
    """A chDB store in a database of its own on the process's one chDB path."""
    s = ChdbStore(chdb_root, database=f"t_{uuid.uuid4().hex[:12]}")
    yield s
    s.close()


def start_receiver(store: ChdbStore, **config: object) -> Receiver:
    """In-process receiver; acknowledges once in the store (``ack="store"``) unless told
    otherwise, so a test can query right after an export."""
    config.setdefault("ack", "store")
    # alert rules (the shipped pack) would add audit.alert.fired events to the tests' tenants
    config.setdefault("alerts", {"enabled": False})
    cfg = load_config(
        None, grpc_listen="127.0.0.1:0", http_listen="127.0.0.1:0", admin_listen="127.0.0.1:0", **config
    )
    receiver = Receiver(cfg, store=store)
    receiver.start()
    return receiver


@pytest.fixture
def receiver(store: ChdbStore) -> Iterator[Receiver]:
    r = start_receiver(store)
    yield r
    r.stop_listeners()


class ServeProcess:
    """`otel-audit serve` in a subprocess, on its own data directory and free ports.
    Acknowledges once in the store (``--ack store``) unless ``ack`` says otherwise (None: the
    product default, the journal), so a test can query right after an export."""

    def __init__(
        self,
        data_dir: Path,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        ack: str | None = "store",
    ) -> None:
        self.ack = ack
        self.data_dir = data_dir
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.admin_port = free_port()
        self.extra_args = extra_args
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 60.0) -> ServeProcess:
        cmd = [
            sys.executable,
            "-m",
            "receiver.cli",
            "serve",
            "--store",
            f"chdb://{self.data_dir}",
            "--grpc-listen",
            self.grpc_endpoint,
            "--http-listen",
            f"127.0.0.1:{self.http_port}",
            "--admin-listen",
            f"127.0.0.1:{self.admin_port}",
            *(("--ack", self.ack) if self.ack else ()),
            *self.extra_args,
        ]
        env = dict(os.environ, PYTHONPATH=str(REPO), **(self.env or {}))
        self.log_path = self.data_dir.parent / f"serve-{self.admin_port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"serve exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{self.admin_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve did not become healthy: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode if self.proc else 0


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[ServeProcess]:
    procs: list[ServeProcess] = []

    def make(extra_args: tuple[str, ...] = (), ack: str | None = "store") -> ServeProcess:
        p = ServeProcess(tmp_path / "data", extra_args, ack=ack)
        procs.append(p)
        return p

    yield make  # type: ignore[misc]
    for p in procs:
        p.stop()


@pytest.fixture(scope="session", autouse=True)
def _spool_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The emitter's default spool lives under $XDG_STATE_HOME: keep test runs out of ~/.local/state
    (and a spool one test left behind out of the next run)."""
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if previous is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = previous


# -- process exit ------------------------------------------------------------------------------
# This one test process opens many embedded stores, receivers and engine sessions in turn. On
# some runs the interpreter's final teardown then crashes inside the engine's native code
# (SIGSEGV after the summary, exit 139: seen with 29 integrity/journal tests passing, not with
# any of their files alone, and never under -X faulthandler), which would turn a green run red.
# `serve` itself exits cleanly (the tests assert its exit code 0). So once pytest has reported,
# the process leaves with pytest's own status without running the native teardown.
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _EXIT_STATUS and os.environ.get("OTEL_AUDIT_TEST_NATIVE_TEARDOWN") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
