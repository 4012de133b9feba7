"""Planning a folder: which files run, under which output names, and what is skipped, refused or ignored.

Every rule lives in one pure function, `plan_entries`, fed by one of two thin listers:
- `list_local`: ``os.walk`` (sorted, hidden and temporary files left out, never inside the output folder),
  image headers read for sizes and formats (`images.probe_header`), so progress weighs pixels and unreadable
  files are reported before any work;
- `list_remote`: a pyarrow filesystem (``s3://``, ``gs://``, ``file://``...); headers are not read (one request
  per object would be slow), so ``--format same`` goes by the extension and progress counts files.
`plan_directory` and `plan_remote` are the two of them put together. The rules, in order: IN == OUT needs a
suffix; non-image extensions are ignored; unreadable headers fail; two inputs that would write the same output
fail the second; with IN == OUT, earlier outputs are never inputs again; existing outputs are skipped unless
``overwrite``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath

from .errors import ImageError, UsageError
from .files import TEMP_SUFFIX
from .images import (
    EXTENSIONS,
    format_of_extension,
    image_extensions,
    incomplete_output,
    output_format,
    probe_header,
    upright_size,
)
from .job import FileResult, Job, OutputOptions, Status, failure_message, traceback_of


@dataclass(frozen=True)
class Entry:
    """One candidate image, as a lister found it."""

    path: PurePosixPath  # relative to the input folder
    size: tuple[int, int] | None = None  # (width, height) from the header, when it was read
    source_format: str | None = None  # from the header; None: the extension decides
    error: str | None = None  # the header could not be read
    deep: bool = False  # 16-bit samples
    details: str | None = None  # the traceback of an unexpected error reading the header, for the report


@dataclass(frozen=True)
class Listing:
    """What a lister found: candidate images, other files, and where things are."""

    entries: list[Entry]
    others: list[PurePosixPath]  # files whose extension is not an image format
    same_folder: bool  # the input folder is the output folder
    input_at: Callable[[PurePosixPath], PurePath]  # relative input path -> the path jobs read
    output_at: Callable[[PurePosixPath], PurePath]  # relative output path -> the path jobs write
    existing: Callable[[list[PurePosixPath]], set[PurePosixPath]]  # which of these outputs exist already
    output_label: str  # the output folder as the user gave it, for messages
    special: list[PurePosixPath] = field(default_factory=list)  # FIFOs, sockets, devices: never opened


def output_name(relative: PurePosixPath, fmt: str, suffix: str) -> PurePosixPath:
    """``relative`` renamed for format ``fmt``: the source extension is kept when it already names
    the format (``.jpeg`` stays), else replaced, never doubled."""
    extensions = EXTENSIONS[fmt]
    ext = relative.suffix if relative.suffix.lower() in extensions else extensions[0]
    return relative.with_name(relative.stem + suffix + ext)


def plan_entries(listing: Listing, options: OutputOptions) -> tuple[list[Job], list[FileResult]]:
    """Jobs to run, and the results already known (ignored, unreadable, clashing, skipped): every rule."""
    if listing.same_folder and not options.suffix:
        raise UsageError(f"{listing.output_label}: output folder is the input folder; "
                           "give --suffix so no input is replaced")
    known = [FileResult(str(listing.input_at(p)), None, Status.IGNORED, "not an image file extension")
             for p in listing.others]
    known += [FileResult(str(listing.input_at(p)), None, Status.IGNORED, NOT_REGULAR) for p in listing.special]
    planned: list[tuple[Entry, PurePosixPath, str]] = []
    claimed: dict[PurePosixPath, PurePosixPath] = {}  # output -> the input that writes it
    for entry in listing.entries:
        source = str(listing.input_at(entry.path))
        if entry.error is not None:
            known.append(FileResult(source, None, Status.FAILED, entry.error, traceback=entry.details))
            continue
        fmt = output_format(options.format, entry.source_format or format_of_extension(entry.path.suffix))
        target = output_name(entry.path, fmt, options.suffix)
        if target in claimed:
            known.append(FileResult(source, str(listing.output_at(target)), Status.FAILED,
                                    f"output name clashes with {listing.input_at(claimed[target])}"))
            continue
        claimed[target] = entry.path
        planned.append((entry, target, fmt))
    if listing.same_folder:  # IN == OUT (with a suffix): earlier outputs sit among the inputs; never again
        planned = [p for p in planned if claimed.get(p[0].path, p[0].path) == p[0].path]
    existing = listing.existing([target for _, target, _ in planned]) if not options.overwrite else set()
    jobs = []
    for entry, target, fmt in planned:
        job = Job(listing.input_at(entry.path), listing.output_at(target), fmt, entry.size, entry.deep)
        if target in existing:
            known.append(FileResult(str(job.input), str(job.output), Status.SKIPPED, None, job.size))
        else:
            jobs.append(job)
    return jobs, known


def unfinished_output(source: Path, target: Path,
                      output_size: Callable[[tuple[int, int]], tuple[int, int]]) -> str | None:
    """Why ``target`` is not a finished output of ``source`` (not an image, not ``output_size`` of the source's
    upright size, cut short), or None; ImageError when the source itself cannot be read."""
    return incomplete_output(target, output_size(upright_size(source)))


def redo_incomplete(jobs: list[Job], known: list[FileResult],
                    output_size: Callable[[tuple[int, int]], tuple[int, int]]) -> tuple[list[Job], list[FileResult]]:
    """Skipped local outputs that are not finished results of this run (not an image, another size than
    ``output_size`` of the input's, cut short) become jobs again, with a note saying why; the others stay
    skipped."""
    redo, kept = [], []
    for result in known:
        if result.status != Status.SKIPPED:
            kept.append(result)
            continue
        source, target = Path(result.input), Path(result.output or "")
        try:
            why = unfinished_output(source, target, output_size)
            deep = probe_header(source)[2]
        except Exception:  # the input changed since planning (or cannot be judged): leave the output alone
            kept.append(result)
            continue
        if why is None:
            kept.append(result)
        else:
            fmt = format_of_extension(target.suffix) or "PNG"
            redo.append(Job(source, target, fmt, result.input_size, deep, f"redone: the existing output {why}"))
    return jobs + redo, kept


# --- local folders ---------------------------------------------------------------------------------------------


NOT_REGULAR = "not a regular file (a FIFO, socket or device): never opened"


def _is_regular(path: Path) -> bool:
    """A regular file, or a link to one (a dangling link counts: reading it then fails with its own cause). A FIFO
    would block the first read forever, a device would be read without end."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True


def discover_inputs(in_dir: Path, out_dir: Path, recursive: bool) -> tuple[list[Path], list[Path], list[Path]]:
    """(candidate images, other files, files that are not regular files) under ``in_dir``, sorted, never looking
    inside ``out_dir``.

    Hidden files and our own temporary files are not inputs.
    """
    out_resolved = out_dir.resolve()
    known = image_extensions()
    images: list[Path] = []
    others: list[Path] = []
    special: list[Path] = []
    for root, dirs, files in os.walk(in_dir):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs
            if recursive and not d.startswith(".") and (root_path / d).resolve() != out_resolved
        )
        for name in sorted(files):
            if name.startswith(".") or name.endswith(TEMP_SUFFIX):
                continue
            path = root_path / name
            if not _is_regular(path):
                special.append(path)
            else:
                (images if path.suffix.lower() in known else others).append(path)
    return images, others, special


def _header_entry(path: Path, relative: PurePosixPath) -> Entry:
    try:
        size, source_format, deep = probe_header(path)
    except ImageError as exc:
        return Entry(relative, error=exc.cause)
    except Exception as exc:  # a reader's bug on this file: its row, not the end of the planning
        return Entry(relative, error=failure_message(exc, "decode"), details=traceback_of(exc))
    return Entry(relative, size, source_format, deep=deep)


def list_local(in_dir: Path, out_dir: Path, recursive: bool) -> Listing:
    """A local folder, its image headers read."""
    if not in_dir.is_dir():
        if in_dir.is_file():
            raise UsageError(f"{in_dir}: is a file, not a folder; for one file use: upscale image {in_dir} OUT_FILE")
        raise UsageError(f"{in_dir}: input folder does not exist or is not a folder")
    images, others, special = discover_inputs(in_dir, out_dir, recursive)

    def relative(path: Path) -> PurePosixPath:
        return PurePosixPath(path.relative_to(in_dir).as_posix())

    return Listing(
        entries=[_header_entry(p, relative(p)) for p in images], others=[relative(p) for p in others],
        same_folder=in_dir.resolve() == out_dir.resolve(),
        input_at=lambda rel: in_dir / rel, output_at=lambda rel: out_dir / rel,
        existing=lambda targets: {t for t in targets if (out_dir / t).exists()}, output_label=str(out_dir),
        special=[relative(p) for p in special],
    )


def plan_directory(in_dir: Path, out_dir: Path, options: OutputOptions) -> tuple[list[Job], list[FileResult]]:
    """Jobs to run in a local folder, and results already known (ignored, unreadable, clashing, skipped)."""
    return plan_entries(list_local(in_dir, out_dir, options.recursive), options)


# --- object stores ---------------------------------------------------------------------------------------------


def is_uri(text: str) -> bool:
    return "://" in text


def open_filesystem(uri: str):
    """(pyarrow filesystem, path inside it) for ``uri``."""
    try:
        from pyarrow import fs
    except ImportError:
        raise UsageError("object-store URIs need pyarrow: pip install 'upscale[ray]'") from None
    try:
        return fs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:
        raise UsageError(f"{uri}: {str(exc).splitlines()[0]}") from None


def check_remote_output(out_uri: str) -> None:
    """The output folder's bucket (or, for file://, folder) exists and this credential may look at it, before any
    work: a wrong or expired credential or a missing bucket is one UsageError, not one failure per file after
    all the downloads. (No probe object is written: deleting one makes the store's client leave a folder-marker
    object behind.)"""
    from pyarrow import fs as pafs

    out_fs, root = open_filesystem(out_uri)
    top = root.strip("/").split("/")[0] if not isinstance(out_fs, pafs.LocalFileSystem) else root
    try:
        info = out_fs.get_file_info(top)
    except OSError as exc:
        raise UsageError(f"{out_uri}: cannot reach the output folder: {str(exc).strip().splitlines()[0]}") from None
    if isinstance(out_fs, pafs.LocalFileSystem):
        return
    if info.type != pafs.FileType.Directory:
        raise UsageError(f"{out_uri}: cannot write the output folder: the bucket {top!r} does not exist")


def list_remote(in_uri: str, out_uri: str, recursive: bool) -> Listing:
    """A folder in an object store (any pyarrow filesystem); no headers read. Paths of jobs and results are the
    paths inside the filesystems (as workers open them)."""
    from pyarrow import fs as pafs

    in_fs, in_root = open_filesystem(in_uri)
    out_fs, out_root = open_filesystem(out_uri)
    in_root, out_root = in_root.rstrip("/"), out_root.rstrip("/")
    same_store = type(in_fs) is type(out_fs)
    try:
        infos = in_fs.get_file_info(pafs.FileSelector(in_root, recursive=recursive))
    except (FileNotFoundError, OSError) as exc:
        raise UsageError(f"{in_uri}: cannot list the input folder: {str(exc).splitlines()[0]}") from None
    known_ext = image_extensions()
    entries, others = [], []
    for info in sorted(infos, key=lambda i: i.path):
        relative = PurePosixPath(info.path).relative_to(in_root)
        if info.type != pafs.FileType.File or any(part.startswith(".") for part in relative.parts):
            continue
        if same_store and out_root != in_root and (info.path + "/").startswith(out_root + "/"):
            continue  # OUT inside IN: never read our own outputs
        if relative.suffix.lower() in known_ext:
            entries.append(Entry(relative))
        else:
            others.append(relative)

    def existing(targets: Iterable[PurePosixPath]) -> set[PurePosixPath]:
        paths = {f"{out_root}/{t}": t for t in targets}
        infos = out_fs.get_file_info(list(paths)) if paths else []
        return {paths[i.path] for i in infos if i.type != pafs.FileType.NotFound}

    return Listing(
        entries=entries, others=others, same_folder=same_store and in_root == out_root,
        input_at=lambda rel: PurePosixPath(f"{in_root}/{rel}"),
        output_at=lambda rel: PurePosixPath(f"{out_root}/{rel}"), existing=existing, output_label=out_uri,
    )


def plan_remote(in_uri: str, out_uri: str, options: OutputOptions) -> tuple[list[Job], list[FileResult]]:
    """Jobs and already-known results for a URI folder, by the same rules as a local one."""
    return plan_entries(list_remote(in_uri, out_uri, options.recursive), options)
