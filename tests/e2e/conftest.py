"""End-to-end fixtures: a real server on a real channel, in this process or in a child.

In-process: `build_server` on 127.0.0.1 port 0 over a real Engine whose clock is fixed at
`NOW_MS`. Child process: `python -m server.cli serve` on a free port, waited on through the
standard health check, stopped with SIGTERM (killed if it does not stop). Every wait is
bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core.engine import Engine
from server.app import SegmentdServer, build_server
from server.pb import segmentd_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
NOW_MS = 1_768_478_400_000  # 2026-01-15T12:00:00Z: the fixed "now" of in-process servers
START_TIMEOUT_S = 120.0  # a cold start compiles kernels; the machine may be busy
STOP_TIMEOUT_S = 20.0
CLI_TIMEOUT_S = 120.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


# --------------------------------------------------------------------------- in process


@pytest.fixture
def engine() -> Engine:
    """A ready engine whose clock always says NOW_MS."""
    e = Engine(clock=lambda: NOW_MS)
    e.ready = True
    return e


@dataclass
class Running:
    server: SegmentdServer
    port: int
    channel: grpc.Channel

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_in_process(engine: Engine) -> Running:
    server, port = build_server(engine, "127.0.0.1:0", max_workers=4)
    server.start()
    return Running(server, port, grpc.insecure_channel(f"127.0.0.1:{port}"))


@pytest.fixture
def running(engine: Engine) -> Iterator[Running]:
    """The engine behind a started server, with a channel to it."""
    run = start_in_process(engine)
    yield run
    run.channel.close()
    run.server.stop(None).wait(STOP_TIMEOUT_S)


@pytest.fixture
def stub(running: Running) -> pb_grpc.SegmentdStub:
    return pb_grpc.SegmentdStub(running.channel)


def health_status(channel: grpc.Channel, service: str = "", timeout: float = 5.0) -> int:
    """The health status of `service`, as a HealthCheckResponse enum value."""
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return reply.status


def wait_for_status(channel: grpc.Channel, status: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    """Polls the overall health until it is `status`; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if not alive():
            pytest.fail("the server process exited while starting")
        try:
            last = health_status(channel, timeout=2.0)
            if last == status:
                return
        except grpc.RpcError as exc:
            last = exc.code()
        time.sleep(0.05)
    pytest.fail(f"health never reached {status} within {timeout}s (last: {last})")


# --------------------------------------------------------------------------- child process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.pop("SEGMENTD_SERVER", None)
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    address: str
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_S; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
                pytest.fail("the server did not stop on SIGTERM")
        return int(self.process.returncode)


def start_process(workdir: Path, *args: str) -> ServerProcess:
    """`segmentd serve --listen 127.0.0.1:PORT ARGS` in a child, returned once SERVING."""
    address = f"127.0.0.1:{free_port()}"
    stdout, stderr = workdir / "serve.out", workdir / "serve.err"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--listen", address, *args],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    child = ServerProcess(process, address, stdout, stderr)
    channel = grpc.insecure_channel(address)
    try:
        wait_for_status(channel, health_pb2.HealthCheckResponse.SERVING, START_TIMEOUT_S, lambda: process.poll() is None)
    except BaseException:
        child.stop()
        print(child.output(), file=sys.stderr)
        raise
    finally:
        channel.close()
    return child


@pytest.fixture(scope="session")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One `segmentd serve` child for the CLI tests of the session (tests use distinct data)."""
    child = start_process(tmp_path_factory.mktemp("serve"))
    yield child
    child.stop()


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def run_cli_against(address: str, *args: str, input: str | None = None, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """`segmentd ARGS` as a child process with SEGMENTD_SERVER=address."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=ROOT,
        env=child_env(SEGMENTD_SERVER=address),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli(server_process: ServerProcess) -> CliRunner:
    """Runs the CLI against the session's server process."""

    def run(*args: str, input: str | None = None, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return run_cli_against(server_process.address, *args, input=input, timeout=timeout)

    return run
