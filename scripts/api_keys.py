"""Write an API keys file for the judge: new random keys, stored as their SHA-256 digests.

    python scripts/api_keys.py deploy/secrets/api-keys ci-bot team-a     # or: make api-keys

Each key is printed once, on standard output, as `name key`: hand it to its user (a CI secret, say). The
file holds only `name sha256:<digest>` lines (the format of --api-keys-file), so a copy of the file, or of
a Kubernetes Secret made from it, gives nobody a key: it is written readable by all (0644), because
Compose mounts a file secret with its host permissions and the image's user (uid 10001) must read it.
An existing file is kept: new names are appended.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
from pathlib import Path

# 32 bytes of randomness, URL-safe: 43 characters.
KEY_BYTES = 32


def digest_line(name: str, key: str) -> str:
    return f"{name} sha256:{hashlib.sha256(key.encode()).hexdigest()}\n"


def existing_names(path: Path) -> set[str]:
    if not path.exists():
        return set()
    lines = (line.split("#", 1)[0].split() for line in path.read_text(encoding="utf-8").splitlines())
    return {fields[0] for fields in lines if fields}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="the keys file to write (created with mode 0644: digests only)")
    parser.add_argument("names", nargs="+", help="a name for each new key (letters, digits, . _ -)")
    args = parser.parse_args(argv)
    taken = existing_names(args.file)
    for name in args.names:
        if name in taken or not name.replace(".", "").replace("_", "").replace("-", "").isalnum():
            parser.error(f"{name!r}: already in {args.file}, or not a name of letters, digits, '.', '_', '-'")
    args.file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        if not taken:
            out.write("# name  sha256:<digest of the key>  (written by scripts/api_keys.py; keys are never stored)\n")
        for name in args.names:
            key = secrets.token_urlsafe(KEY_BYTES)
            out.write(digest_line(name, key))
            print(f"{name} {key}")
    print(f"wrote {args.file}: give each key to its user now, it is not stored anywhere", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
