"""Regenerates the gRPC code in server/pb from protos/segmentd.proto.

Run from anywhere: ``python -m server.pb.generate``. The ``-I server/pb=protos`` mapping
makes protoc write ``server/pb/segmentd_pb2*.py`` with imports that are right as they stand.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO = "protos/segmentd.proto"


def generate(out_dir: Path = ROOT) -> int:
    """Runs protoc; writes the modules under ``out_dir/server/pb``. Returns protoc's status."""
    from grpc_tools import protoc  # a build tool, imported only when generating

    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{include}",
        f"-Iserver/pb={ROOT / 'protos'}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(Path("server/pb") / Path(PROTO).name),
    ]
    return protoc.main(args)


if __name__ == "__main__":
    sys.exit(generate())
