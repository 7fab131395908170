"""Starting, probing and stopping real segmentd servers for the end-to-end tests.

In-process: `build_server` on 127.0.0.1 port 0 over a real Engine. Child process:
`python -m server.cli serve` on a free port, waited on through the standard health check,
stopped with SIGTERM (killed if it does not stop). Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core.engine import Engine
from server.app import SegmentdServer, build_server

ROOT = Path(__file__).resolve().parents[2]
NOW_MS = 1_768_478_400_000  # 2026-01-15T12:00:00Z: the fixed "now" of in-process servers
START_TIMEOUT_S = 120.0  # a cold start compiles kernels; the machine may be busy
STOP_TIMEOUT_S = 20.0
CLI_TIMEOUT_S = 120.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# --------------------------------------------------------------------------- in process


@dataclass
class Running:
    """A started in-process server and a channel to it."""

    server: SegmentdServer
    port: int
    channel: grpc.Channel

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None).wait(STOP_TIMEOUT_S)


def start_in_process(engine: Engine) -> Running:
    server, port = build_server(engine, "127.0.0.1:0", max_workers=4)
    server.start()
    return Running(server, port, grpc.insecure_channel(f"127.0.0.1:{port}"))


def health_status(channel: grpc.Channel, service: str = "", timeout: float = 5.0) -> int:
    """The health status of `service`, as a HealthCheckResponse enum value."""
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return int(reply.status)


def wait_for_status(
    channel: grpc.Channel, status: int, timeout: float, alive: Callable[[], bool] = lambda: True
) -> None:
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
    """This environment for a child process, with the repository importable."""
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
        wait_for_status(channel, SERVING, START_TIMEOUT_S, lambda: process.poll() is None)
    except BaseException:
        child.stop()
        print(child.output(), file=sys.stderr)
        raise
    finally:
        channel.close()
    return child


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(
    *args: str, server: str | None = None, input: str | None = None, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """`segmentd ARGS` as a child process (with SEGMENTD_SERVER=server when given)."""
    env = child_env(SEGMENTD_SERVER=server) if server else child_env()
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=ROOT,
        env=env,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
