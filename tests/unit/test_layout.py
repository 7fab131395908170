"""The import direction of DESIGN.md and the single jit configuration, checked on the source.

core.kernels <- core <- snapshots <- server: core imports no grpc, msgpack, protobuf, server
or snapshots; core.kernels imports nothing of core outside core.kernels; snapshots imports
no server. `numba.njit` / `numba.jit` are named in exactly one module, under core/kernels/.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "snapshots", "server", "bench")
JIT_NAMES = frozenset({"njit", "jit"})


@dataclass(frozen=True)
class Source:
    path: Path
    module: str  # dotted name, e.g. "core.kernels.runs"
    tree: ast.Module

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def _sources(package: str) -> list[Source]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append(Source(path, ".".join(parts), ast.parse(path.read_text(), str(path))))
    return found


SOURCES = {package: _sources(package) for package in PACKAGES}


def imported_modules(source: Source) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, relative ones resolved."""
    is_package = source.path.name == "__init__.py"
    here = source.module.split(".") if is_package else source.module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.append((node.lineno, prefix))
            # `from core import store` imports core.store
            found += [(node.lineno, f"{prefix}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def _violations(package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    bad = []
    for source in SOURCES[package]:
        for line, module in imported_modules(source):
            top_match = any(module == f or module.startswith(f + ".") for f in forbidden)
            if top_match and not any(module == a or module.startswith(a + ".") for a in allowed):
                bad.append(f"{source.rel}:{line} imports {module}")
    return sorted(set(bad))


def test_the_scan_sees_every_package() -> None:
    assert SOURCES["core"] and SOURCES["server"]
    assert any(s.module == "core.kernels" for s in SOURCES["core"])


def test_import_resolution_handles_relative_imports() -> None:
    tree = ast.parse("from . import runs\nfrom ..errors import InvalidArgument\nimport numpy as np\n")
    source = Source(ROOT / "core" / "kernels" / "x.py", "core.kernels.x", tree)
    names = [m for _, m in imported_modules(source)]
    assert "core.kernels.runs" in names
    assert "core.errors" in names
    assert "numpy" in names


def test_core_imports_no_transport_storage_or_upper_layers() -> None:
    assert _violations("core", ("grpc", "grpc_health", "grpc_reflection", "google.protobuf", "msgpack", "server", "snapshots")) == []


def test_kernels_import_nothing_of_core_but_kernels() -> None:
    kernels = [s for s in SOURCES["core"] if s.module == "core.kernels" or s.module.startswith("core.kernels.")]
    bad = []
    for source in kernels:
        for line, module in imported_modules(source):
            if (module == "core" or module.startswith("core.")) and not module.startswith("core.kernels"):
                bad.append(f"{source.rel}:{line} imports {module}")
    assert bad == []


def test_snapshots_import_no_server() -> None:
    assert _violations("snapshots", ("server", "grpc")) == []


def _jit_references(source: Source) -> list[int]:
    """Lines of `source` that name numba.njit / numba.jit, under any alias."""
    numba_aliases = {"numba"}
    lines = []
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            numba_aliases |= {a.asname or a.name for a in node.names if a.name == "numba"}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "numba"
            and node.level == 0
            and any(a.name in JIT_NAMES for a in node.names)
        ):
            lines.append(node.lineno)
    for node in ast.walk(source.tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in JIT_NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id in numba_aliases
        ):
            lines.append(node.lineno)
    return lines


def test_jit_detection_finds_every_spelling() -> None:
    tree = ast.parse("import numba as nb\nfrom numba import njit\nf = nb.jit(g)\nh = numba.vectorize\n")
    found = _jit_references(Source(ROOT / "server" / "x.py", "server.x", tree))
    assert sorted(found) == [2, 3]


def test_numba_jit_is_configured_in_one_kernels_module() -> None:
    users = {s.rel for package in PACKAGES for s in SOURCES[package] if _jit_references(s)}
    assert all(rel.startswith("core/kernels/") for rel in users), sorted(users)
    assert len(users) <= 1, f"one jit configuration module expected, found {sorted(users)}"
