"""Download the standard super-resolution image sets into data/, each file checked against its sha256.

    python scripts/get_data.py set5 set14 t91 bsd200      # into data/Set5, data/Set14, data/T91, data/BSD200
    python scripts/get_data.py --list                     # what is known, where it comes from, its licence

The sets are fetched file by file from public GitHub repositories at fixed commits (scripts/datasets.json gives
the address, origin paper and licence of each), the same bytes `upscale`'s models were trained and measured on.
A file whose sha256 differs from the manifest's is refused (exit 1) and never kept under its final name; files
already present with the right sha256 are not fetched again, so an interrupted run can simply be repeated.
``--manifest`` and ``--mirror`` point at another manifest or a copy of the files (a mirror, an offline cache).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

MANIFEST = Path(__file__).with_name("datasets.json")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, target: Path, sha256: str) -> bool:
    """Download ``url`` to ``target`` through a temporary file beside it; False (nothing kept) on a mismatch."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while block := response.read(1 << 20):
                out.write(block)
        if sha256_of(Path(name)) != sha256:
            return False
        os.replace(name, target)
        return True
    finally:
        Path(name).unlink(missing_ok=True)


def get(key: str, entry: dict, to: Path, mirror: str | None) -> int:
    """Fetch one set; the number of files refused."""
    base = f"{mirror.rstrip('/')}/{entry['folder']}/" if mirror else entry["base"]
    folder = to / entry["folder"]
    refused = fetched = 0
    for name, sha256 in entry["files"].items():
        target = folder / name
        if target.is_file() and sha256_of(target) == sha256:
            continue
        try:
            ok = fetch(base + name, target, sha256)
        except OSError as exc:
            print(f"error: {base + name}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
            refused += 1
            continue
        if not ok:
            print(f"error: {base + name}: sha256 differs from the manifest's; not kept", file=sys.stderr)
            refused += 1
        fetched += ok
    have = len(entry["files"]) - refused
    print(f"{key}: {have} of {len(entry['files'])} files in {folder} ({fetched} fetched now)")
    return refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", help="set5, set14, t91, bsd200, bsds500-test200")
    parser.add_argument("--to", type=Path, default=Path("data"), help="where the set folders go (default: data)")
    parser.add_argument("--list", action="store_true", help="list the sets, their origin and licence")
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--mirror", help="fetch from MIRROR/<folder>/<file> instead of the manifest's addresses")
    args = parser.parse_args()
    manifest = json.loads(args.manifest.read_text())
    if args.list or not args.sets:
        for key, entry in manifest.items():
            print(f"{key}: {len(entry['files'])} images -> {args.to / entry['folder']}; {entry['origin']}; "
                  f"licence: {entry['licence']}")
        return 0 if args.list else 2
    unknown = [s for s in args.sets if s.lower() not in manifest]
    if unknown:
        print(f"error: unknown set {', '.join(unknown)} (known: {', '.join(manifest)})", file=sys.stderr)
        return 2
    refused = sum(get(s.lower(), manifest[s.lower()], args.to, args.mirror) for s in args.sets)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
