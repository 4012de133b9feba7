"""The standard super-resolution image sets, fetched file by file and each checked against its sha256.

The sets (Set5, Set14, T91, BSD200, BSDS500's test half) come from public GitHub repositories at fixed commits;
`datasets.json` gives each file's address and sha256, and each set's origin paper and licence: the same bytes
`upscale`'s models were trained and measured on. A file whose sha256 differs is refused and never kept under
its final name; files already present with the right sha256 are not fetched again, so an interrupted run can
simply be repeated. Failures are gathered by cause, so a machine without a network gets one line per set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .files import download_checked, sha256_of

MANIFEST = Path(__file__).with_name("datasets.json")


@dataclass
class Outcome:
    """What fetching one set came to."""

    key: str
    folder: Path
    total: int
    fetched: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)
    """cause -> the addresses that failed with it"""

    @property
    def have(self) -> int:
        return self.total - sum(len(urls) for urls in self.failures.values())


def load_manifest(path: Path | None = None) -> dict[str, dict]:
    return json.loads((path or MANIFEST).read_text())


def get(key: str, entry: dict, to: Path, mirror: str | None = None) -> Outcome:
    """Fetch one set into ``to/<its folder>``, skipping files already there with the right sha256."""
    base = f"{mirror.rstrip('/')}/{entry['folder']}/" if mirror else entry["base"]
    outcome = Outcome(key, to / entry["folder"], len(entry["files"]))
    for name, sha256 in entry["files"].items():
        target = outcome.folder / name
        if target.is_file() and sha256_of(target) == sha256:
            continue
        try:
            ok = download_checked(base + name, target, sha256)
            cause = None if ok else "sha256 differs from the manifest's; not kept"
        except OSError as exc:
            cause = str(getattr(exc, "reason", None) or exc)
        if cause:
            outcome.failures.setdefault(cause, []).append(base + name)
        else:
            outcome.fetched += 1
    return outcome
