"""The committed gRPC code in server/pb is exactly what `python -m server.pb.generate` writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.pb import generate

GENERATED = ("segmentd_pb2.py", "segmentd_pb2.pyi", "segmentd_pb2_grpc.py")
COMMITTED = Path(generate.__file__).resolve().parent


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pb")
    (out / "server" / "pb").mkdir(parents=True)
    assert generate.generate(out) == 0
    return out / "server" / "pb"


@pytest.mark.parametrize("name", GENERATED)
def test_committed_code_matches_a_fresh_generation(regenerated: Path, name: str) -> None:
    fresh = (regenerated / name).read_text()
    committed = (COMMITTED / name).read_text()
    assert fresh == committed, f"server/pb/{name} is stale: run `python -m server.pb.generate` and commit"


def test_generated_imports_are_package_relative(regenerated: Path) -> None:
    grpc_module = (regenerated / "segmentd_pb2_grpc.py").read_text()
    assert "from server.pb import segmentd_pb2" in grpc_module
