"""End-to-end fixtures: a real server on a real channel, in this process or in a child.

`stub` talks to an in-process server over a real Engine whose clock is fixed at NOW_MS;
`cli` runs the `segmentd` command as a child process against a `segmentd serve` child that
lives for the session (tests keep their data apart by using distinct identifiers and types).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.engine import Engine
from server.pb import segmentd_pb2_grpc as pb_grpc
from tests.e2e.harness import (
    CLI_TIMEOUT_S,
    NOW_MS,
    CliRunner,
    Running,
    ServerProcess,
    run_cli,
    start_in_process,
    start_process,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def engine() -> Engine:
    """A ready engine whose clock always says NOW_MS."""
    e = Engine(clock=lambda: NOW_MS)
    e.ready = True
    return e


@pytest.fixture
def running(engine: Engine) -> Iterator[Running]:
    """The engine behind a started in-process server, with a channel to it."""
    run = start_in_process(engine)
    yield run
    run.close()


@pytest.fixture
def stub(running: Running) -> pb_grpc.SegmentdStub:
    return pb_grpc.SegmentdStub(running.channel)


@pytest.fixture(scope="session")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One `segmentd serve` child for the CLI tests of the session."""
    child = start_process(tmp_path_factory.mktemp("serve"))
    yield child
    child.stop()


@pytest.fixture
def cli(server_process: ServerProcess) -> CliRunner:
    """Runs `segmentd ARGS` as a child process against the session's server process."""

    def run(*args: str, input: str | None = None, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, server=server_process.address, input=input, timeout=timeout)

    return run
