"""Write a generated file, or with `--check` say whether the committed one is current (the tests run it)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(doc: str | None, render: Callable[[], dict[Path, str]], argv: list[str] | None = None) -> int:
    """Parse `--check`; write every file `render` gives (path -> text), or exit 1 naming the stale ones."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file is not current")
    args = parser.parse_args(argv)
    files = render()
    if args.check:
        stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run python scripts/{Path(sys.argv[0]).name}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0
