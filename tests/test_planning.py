"""The planning rules, on listings made here (no files, no CLI): one pure function for local and remote folders."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from upscale.errors import UpscaleError
from upscale.job import OutputOptions
from upscale.planning import Entry, Listing, output_name, plan_entries

P = PurePosixPath


def listing(entries: list[Entry], others=(), existing=(), same_folder: bool = False) -> Listing:
    return Listing(entries=entries, others=[P(o) for o in others], same_folder=same_folder,
                   input_at=lambda rel: P("/in") / rel, output_at=lambda rel: P("/out") / rel,
                   existing=lambda targets: {t for t in targets if str(t) in set(existing)}, output_label="/out")


def test_output_names_keep_or_replace_the_extension_and_never_double_it() -> None:
    assert output_name(P("a.png"), "JPEG", "") == P("a.jpg")
    assert output_name(P("b.jpeg"), "JPEG", "_x2") == P("b_x2.jpeg")
    assert output_name(P("sub/c.tif"), "PNG", "") == P("sub/c.png")
    assert output_name(P("d.png.png"), "PNG", "") == P("d.png.png")


def test_jobs_take_the_header_format_or_the_extension() -> None:
    jobs, known = plan_entries(listing([Entry(P("a.png"), (4, 3), "PNG"), Entry(P("b.jpg")),
                                        Entry(P("c.gif"), (2, 2), "GIF")]), OutputOptions())
    assert [(str(j.input), str(j.output), j.output_format, j.size) for j in jobs] == [
        ("/in/a.png", "/out/a.png", "PNG", (4, 3)),
        ("/in/b.jpg", "/out/b.jpg", "JPEG", None),  # no header read (object stores): the extension decides
        ("/in/c.gif", "/out/c.png", "PNG", (2, 2)),  # a format we do not write becomes PNG
    ]
    assert known == [] and jobs[0].pixels == 12 and jobs[1].pixels is None


def test_other_files_are_ignored_and_unreadable_headers_fail() -> None:
    jobs, known = plan_entries(listing([Entry(P("bad.png"), error="file is truncated")], others=["notes.txt"]),
                               OutputOptions())
    assert jobs == []
    assert [(k.input, k.status, k.error) for k in known] == [
        ("/in/notes.txt", "ignored", "not an image file extension"), ("/in/bad.png", "failed", "file is truncated")]


def test_a_clash_fails_the_second_input_never_overwrites() -> None:
    jobs, known = plan_entries(listing([Entry(P("a.jpg"), (1, 1), "JPEG"), Entry(P("a.png"), (1, 1), "PNG")]),
                               OutputOptions(format="png"))
    assert [str(j.input) for j in jobs] == ["/in/a.jpg"]
    assert known[0].status == "failed" and known[0].error == "output name clashes with /in/a.jpg"
    assert known[0].output == "/out/a.png"


def test_existing_outputs_are_skipped_unless_overwrite() -> None:
    entries = [Entry(P("a.png"), (2, 2), "PNG"), Entry(P("b.png"), (2, 2), "PNG")]
    jobs, known = plan_entries(listing(entries, existing=["a.png"]), OutputOptions())
    assert [str(j.input) for j in jobs] == ["/in/b.png"]
    assert [(k.input, k.status, k.input_size) for k in known] == [("/in/a.png", "skipped", (2, 2))]
    jobs, known = plan_entries(listing(entries, existing=["a.png"]), OutputOptions(overwrite=True))
    assert len(jobs) == 2 and known == []


def test_same_folder_needs_a_suffix_and_never_reads_its_outputs_again() -> None:
    entries = [Entry(P("a.png"), (2, 2), "PNG"), Entry(P("a_x2.png"), (4, 4), "PNG")]
    with pytest.raises(UpscaleError, match="give --suffix"):
        plan_entries(listing(entries, same_folder=True), OutputOptions())
    jobs, known = plan_entries(listing(entries, same_folder=True), OutputOptions(suffix="_x2"))
    # a_x2.png is what a.png writes: an earlier output, not an input (else a re-run makes a_x2_x2.png)
    assert [str(j.input) for j in jobs] == ["/in/a.png"] and known == []
    apart, _ = plan_entries(listing(entries), OutputOptions(suffix="_x2"))  # another folder: both are inputs
    assert len(apart) == 2
