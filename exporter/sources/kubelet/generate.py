"""Regenerates podresources_pb2.py and .pyi from podresources.proto (`make protos`; `--check` in tests).

The generated module is committed so the exporter needs only the protobuf runtime, not protoc; this
keeps it honest against the .proto. grpcio-tools is a development dependency, imported only here.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from exporter.docs import generator_main

HERE = Path(__file__).resolve().parent
PROTO = "podresources.proto"
OUTPUTS = ("podresources_pb2.py", "podresources_pb2.pyi")


def generated() -> dict[Path, str]:
    """What protoc makes of the .proto now, by the committed file it should equal."""
    from grpc_tools import protoc  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory() as out:
        status = protoc.main(
            ["protoc", f"-I{HERE}", f"--python_out={out}", f"--pyi_out={out}", str(HERE / PROTO)]
        )
        if status != 0:
            raise RuntimeError(f"protoc failed on {PROTO} (exit {status})")
        return {HERE / name: (Path(out) / name).read_text() for name in OUTPUTS}


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated module, or (--check) exit 1 if the committed one differs."""
    return generator_main("python -m exporter.sources.kubelet.generate", generated, "make protos", argv)


if __name__ == "__main__":
    sys.exit(main())
