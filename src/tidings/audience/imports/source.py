"""The file: what it is (a CSV file at all, its encoding and delimiter), and its rows with the
physical lines each spans.

Hostile or broken files are expected, and each gets a clear answer rather than a crash or a
silent mix-up:

- An empty file, an image, a PDF or any other binary file is "not a CSV file" (ImportFailed,
  before anything is read as rows), not "no email column".  An XLSX workbook is read by
  workbook.XlsxSource (open_source); an .xls, .ods or password-protected workbook is refused
  with what to do.
- UTF-16 (with a byte-order mark, or recognised by its NUL bytes) is read as UTF-16.  UTF-32 is
  refused as such.
- The file is decoded line by line: each line is UTF-8 when it is valid UTF-8, else
  Windows-1252 (else Latin-1, which decodes any byte) — or Mac Roman (Excel for Mac's "CSV
  (Macintosh)"), when the first megabyte's lines that are not UTF-8 (up to 64 KiB of them) read
  as names in Mac Roman and not in Windows-1252 (``legacy_encoding``).  A file that mixes both
  (an export edited in two programs) is read correctly, and how many lines were not UTF-8 is
  counted per source (``CsvSource.legacy_lines``) for the import to report.  Blocks of a
  megabyte are tried as UTF-8 at once, so a clean file pays for no line-by-line work.
- A cell over the csv module's limit (128 KiB) does not stop the import: its row is reported
  bad (``SourceRow.problem``) and the rows after it are read.
- A quote that is never closed makes a csv reader read the following lines into one cell, so
  another person's address would land in this person's name.  The reader is strict, so such a
  cell ends in an error (at the next quote that does not end a cell, or at the end of the
  file): the lines it covers are reported as one bad row, and reading goes on after them.
  When the quote that ends it happens to end a cell, a row that spans several lines, one of
  which reads as a row of its own (a cell that is an address, beside a delimiter), is reported
  bad the same way.  A quote in the middle of a cell ("Ann" Smith) is a bad row too.

Every decision here is per source: two imports at once share nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .exporters import recognise

if TYPE_CHECKING:
    from .workbook import XlsxSource

SNIFF_BYTES = 1 << 20
BLOCK_BYTES = 1 << 20
# A physical line longer than this (bytes, no line break) is not read into memory: its row is
# reported bad.  Far above any real row; it bounds the memory a hostile file can take.
MAX_LINE_BYTES = 16 << 20
DELIMITERS = (",", ";", "\t", "|")
# Excel's first line naming the delimiter ("sep=;"), which it honours and some tools write.
_SEP_LINE = re.compile(r'^"?sep=([,;\t|])"?\s*$')
CELL_LIMIT = csv.field_size_limit()  # the csv module's limit, process-wide: read, never set

# Files that are plainly not text, by their first bytes: what to call them.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"RIFF", "a media file"),
    (b"\x7fELF", "a program"),
)
# An OLE2 compound file: an old Excel workbook (.xls), or a password-protected .xlsx.
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_LOOKS_LIKE_ADDRESS = re.compile(r"^[^@\s\"',;|]+@[^@\s\"',;|]+\.[^@\s\"',;|]+$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class ImportFailed(Exception):
    """Unusable input or a failed run.  The message is one line and holds no personal data."""


@dataclass(frozen=True)
class FileFormat:
    # utf-8, utf-8-sig, cp1252 or mac_roman (lines that are not UTF-8), utf-16-le, utf-16-be
    encoding: str
    delimiter: str
    bom: bytes = b""  # the byte-order mark the file starts with, skipped when reading
    # The file starts with Excel's "sep=;" line, which names the delimiter: skipped, the header
    # is the next row.
    sep_line: bool = False


def not_a_csv_file(sample: bytes) -> str | None:
    """Why this start of a file is not a file to import, or None when it may be one: a CSV file,
    or an XLSX workbook (a ZIP archive that looks like one: detect_format looks at all of it)."""
    if not sample.strip(b" \t\r\n\x00" + codecs.BOM_UTF8):
        return "not a CSV file: the file is empty"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "a UTF-32 text file: save it as UTF-8 (or UTF-16) CSV and import that"
    if sample.startswith(b"PK\x03\x04") and _first_zip_entry(sample).casefold().endswith(".csv"):
        # Mailchimp's audience export is a ZIP of one CSV per status: the first thing a
        # Mailchimp user uploads.  "Save the sheet as CSV" would send them to a spreadsheet.
        return (
            "not a CSV file: it is a ZIP archive of CSV files, as Mailchimp's audience export is:"
            " unpack it and import each CSV file in it (subscribed, unsubscribed, cleaned; its"
            " non-subscribed contacts never opted in and are not imported)"
        )
    if sample.startswith(b"PK\x03\x04"):  # an XLSX workbook is let through (workbook.py)
        from .workbook import zip_refusal

        return zip_refusal(sample)
    if sample.startswith(OLE2):
        from .workbook import ole_refusal

        return ole_refusal(sample)
    for magic, what in MAGIC:
        if sample.startswith(magic):
            return f"not a CSV file: it is {what}"
    return None


def _first_zip_entry(sample: bytes) -> str:
    """The name of a ZIP archive's first member, from its local file header (the name's length
    is at bytes 26-27, the name from byte 30); "" when the sample is too short to hold it."""
    if len(sample) < 30:
        return ""
    length = int.from_bytes(sample[26:28], "little")
    return sample[30 : 30 + length].decode("cp437", errors="replace")


def _utf16(sample: bytes) -> tuple[str, bytes] | None:
    """("utf-16-le" or "utf-16-be", the BOM) when the sample is UTF-16 text, else None."""
    if sample.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", codecs.BOM_UTF16_LE
    if sample.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", codecs.BOM_UTF16_BE
    head = sample[:4096]
    if len(head) < 4:
        return None
    # Text in UTF-16 without a BOM: mostly ASCII, so every other byte is NUL.
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if odd > 0.4 * len(head[1::2]) and even < 0.05 * len(head[0::2]):
        return "utf-16-le", b""
    if even > 0.4 * len(head[0::2]) and odd < 0.05 * len(head[1::2]):
        return "utf-16-be", b""
    return None


def detect_format(path: Path) -> FileFormat:
    """What the file is, from its first megabyte (cheap: the file is not read twice).

    Raises ImportFailed when it is not a CSV file at all.
    """
    with path.open("rb") as fp:
        sample = fp.read(SNIFF_BYTES)
        complete = not fp.read(1)
    refusal = not_a_csv_file(sample)
    if refusal:
        raise ImportFailed(refusal)
    if sample.startswith(b"PK\x03\x04"):
        from .workbook import check_workbook

        return check_workbook(path)
    utf16 = _utf16(sample)
    bom = b""
    if utf16 is not None:
        encoding, bom = utf16
        text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample[len(bom) :])
    else:
        # Binary data that no magic number named: control characters that text does not hold.
        if len(_CONTROL.findall(sample[:65536])) > max(8, len(sample[:65536]) // 100):
            raise ImportFailed("not a CSV file: it holds binary data, not text")
        if sample.startswith(codecs.BOM_UTF8):
            encoding, bom = "utf-8-sig", codecs.BOM_UTF8
        else:
            try:
                # final=False: a sample cut inside a multi-byte character is still valid UTF-8.
                codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
                encoding = "utf-8"
            except UnicodeDecodeError:
                encoding = legacy_encoding(sample)
        text = sample[len(bom) :].decode(
            "utf-8" if encoding.startswith("utf") else encoding, errors="replace"
        )
    header = next((line for line in text.splitlines() if line.strip()), "")
    hint = _SEP_LINE.match(header)
    if hint:
        return FileFormat(encoding, hint[1], bom, sep_line=True)
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: counts[d])
    return FileFormat(encoding, delimiter if counts[delimiter] else ",", bom)


# Windows-1252 and Mac Roman both decode every byte, so which of them a file is in is a guess.
# Hand-written because charset-normalizer (3.5), tried first, misreads the short runs of accents
# a contact list has: a Mac Roman "Zoë Brontë Ægir Müller" came out as Windows-1252 "Zo‘ Bront‘
# ®gir MŸller".  Each reading is scored by whether its non-ASCII characters sit in words as
# letters and punctuation do ("MŸller", "Bront‘", "PÈrez" do not).
_TYPOGRAPHY = frozenset("–—…€•·«»°\u00a0")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
LEGACY_SAMPLE_BYTES = 1 << 16  # of lines that are not UTF-8: plenty to tell the two apart


def _plausibility(text: str) -> int:
    score = 0
    for match in _NON_ASCII.finditer(text):
        i, char = match.start(), match.group()
        before = text[i - 1] if i else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if char.islower():
            good = not after.isupper()
        elif char.isupper():  # starts a word, or is in one in capitals
            good = not before.isalpha() or (before.isupper() and not after.islower())
        elif char == "’":  # O’Brien, not Mar’a
            good = not (before.isalpha() and after.islower())
        elif char in "‘“":
            good = not before.isalpha()
        elif char == "”":
            good = not after.isalpha()
        else:
            good = char in _TYPOGRAPHY
        score += 1 if good else -1
    return score


def legacy_encoding(sample: bytes) -> str:
    """The codec for the sample's lines that are not UTF-8: "mac_roman" when they read better
    as Mac Roman than as Windows-1252, else "cp1252" (the usual case, and the answer in doubt)."""
    legacy: list[bytes] = []
    size = 0
    for raw in sample.splitlines():
        if raw.isascii():
            continue
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            legacy.append(raw)
            size += len(raw)
            if size > LEGACY_SAMPLE_BYTES:
                break
    data = b"\n".join(legacy)
    windows = _plausibility(data.decode("cp1252", errors="replace"))
    return "mac_roman" if _plausibility(data.decode("mac_roman")) > windows else "cp1252"


@dataclass(slots=True)
class SourceRow:
    line: int  # physical line on which the row starts
    values: list[str]
    end_line: int = 0  # the last physical line it spans (0: the same line)
    # Why the row cannot be read as it stands ((reason, detail), neither holding a value), or
    # None: set by the source for rows the csv module could not split safely.
    problem: tuple[str, str] | None = None


def _split_lines(text: str) -> list[str]:
    """Lines with their ends, split only at \\r, \\n and \\r\\n as the csv module does (not at
    the other breaks str.splitlines() knows, such as \\x0c, which are a cell's characters)."""
    return list(io.StringIO(text, newline=""))


class Lines:
    """The file's lines, decoded, in blocks: an iterable for csv.reader, with the byte count read
    so far, the count of lines that were not UTF-8, and the lines that could not be read."""

    def __init__(self, fp: BinaryIO, fmt: FileFormat):
        self._fp = fp
        self.format = fmt
        self.bytes_read = 0
        self.lines_out = 0  # lines handed to the csv reader so far
        # Lines that are not UTF-8 are read as Windows-1252, or Mac Roman (legacy_encoding).
        self.legacy = "mac_roman" if fmt.encoding == "mac_roman" else "cp1252"
        self.legacy_lines = 0  # lines that are not UTF-8
        self.saw_utf8 = False  # whether some line is UTF-8 beyond ASCII
        self.first_legacy_line = 0
        self.bad_lines: dict[int, tuple[str, str]] = {}  # line -> (reason, detail)

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self._blocks())

    def _read(self) -> bytes:
        block = self._fp.read(BLOCK_BYTES)
        self.bytes_read += len(block)
        return block

    def _blocks(self) -> Iterator[list[str]]:
        skip = len(self.format.bom)
        if skip:
            self._fp.read(skip)
            self.bytes_read += skip
        if self.format.encoding.startswith("utf-16"):
            yield from self._utf16_blocks()
        else:
            yield from self._byte_blocks()

    # --- UTF-8, Windows-1252 and mixtures: split at line ends in bytes, decode line by line
    def _byte_blocks(self) -> Iterator[list[str]]:
        pending: list[bytes] = []  # the start of a line whose end is not read yet
        pending_bytes = 0
        while True:
            block = self._read()
            if not block:
                if pending:
                    yield self._decode_lines(b"".join(pending))
                return
            # The last line end in the block; a \r at its very end may be half of a \r\n.
            cut = max(block.rfind(b"\n"), block.rfind(b"\r", 0, len(block) - 1)) + 1
            if cut == 0:
                pending.append(block)
                pending_bytes += len(block)
                if pending_bytes > MAX_LINE_BYTES:
                    yield self._overlong()
                    rest = self._skip_line()
                    pending, pending_bytes = [rest], len(rest)
                continue
            head = b"".join([*pending, block[:cut]])
            pending, pending_bytes = [block[cut:]], len(block) - cut
            yield self._decode_lines(head)

    def _decode_lines(self, data: bytes) -> list[str]:
        try:
            text = data.decode("utf-8")
            lines = _split_lines(text)
            if not self.saw_utf8 and len(text) != len(data):
                self.saw_utf8 = True  # characters of more than one byte: UTF-8 at work
        except UnicodeDecodeError:
            lines = []
            for raw in data.splitlines(keepends=True):
                try:
                    lines.append(raw.decode("utf-8"))
                    if not self.saw_utf8 and not raw.isascii():
                        self.saw_utf8 = True
                    continue
                except UnicodeDecodeError:
                    pass
                try:
                    lines.append(raw.decode(self.legacy))
                except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
                    lines.append(raw.decode("latin-1"))
                self.legacy_lines += 1
                if not self.first_legacy_line:
                    self.first_legacy_line = self.lines_out + len(lines)
        self.lines_out += len(lines)
        return lines

    def _overlong(self) -> list[str]:
        """A line over MAX_LINE_BYTES: an empty line stands in for it, marked bad."""
        self.lines_out += 1
        self.bad_lines[self.lines_out] = (
            "line too long",
            f"a line longer than {MAX_LINE_BYTES // (1 << 20)} MB",
        )
        return ["\n"]

    def _skip_line(self) -> bytes:
        """Read on to the end of the current (overlong) line; returns what follows it."""
        while True:
            block = self._read()
            if not block:
                return b""
            ends = [i for i in (block.find(b"\n"), block.find(b"\r")) if i >= 0]
            if ends:
                end = min(ends) + 1
                if block[end - 1 : end + 1] == b"\r\n":
                    end += 1
                return block[end:]

    # --- UTF-16: decode incrementally, split at line ends in text
    def _utf16_blocks(self) -> Iterator[list[str]]:
        decoder = codecs.getincrementaldecoder(self.format.encoding)(errors="strict")
        carry = ""
        while True:
            block = self._read()
            final = not block
            try:
                text = decoder.decode(block, final=final)
                undecodable = False
            except UnicodeDecodeError:
                decoder = codecs.getincrementaldecoder(self.format.encoding)(errors="replace")
                text = decoder.decode(block, final=final)
                undecodable = True
            data = carry + text
            if final:
                carry = ""
            else:
                cut = max(data.rfind("\n"), data.rfind("\r", 0, len(data) - 1)) + 1
                if cut == 0 and len(data) > MAX_LINE_BYTES:
                    yield self._overlong()
                    data, carry = "", ""
                    continue
                data, carry = data[:cut], data[cut:]
            lines = _split_lines(data)
            if undecodable:
                why = ("undecodable text", "bytes that are not valid UTF-16 text")
                for offset, line in enumerate(lines, start=self.lines_out + 1):
                    if "\ufffd" in line:
                        self.bad_lines[offset] = why
            self.lines_out += len(lines)
            if lines:
                yield lines
            if final:
                return


def swallowed_rows(values: list[str], delimiter: str) -> bool:
    """Whether a row's cells hold a line that reads as a row of its own: the mark of an opening
    quote that was never closed (the csv module then reads the next lines into one cell)."""
    for value in values:
        if "\n" not in value and "\r" not in value:
            continue
        for piece in _LINE_BREAK.split(value)[1:]:
            if delimiter in piece and any(
                _LOOKS_LIKE_ADDRESS.match(cell.strip().strip("\"'"))
                for cell in piece.split(delimiter)
            ):
                return True
    return False


class CsvSource:
    """The rows of a CSV file after its header, with line numbers and progress in bytes."""

    def __init__(self, path: Path, fmt: FileFormat):
        self.path = path
        self.format = fmt
        self.total_bytes = path.stat().st_size
        self._fp = path.open("rb")
        self.lines = Lines(self._fp, fmt)
        # strict: a quote that does not end its cell is an error rather than a character, which
        # is how an unterminated quote shows itself (see swallowed_rows for the rest).
        self._line_iter = iter(self.lines)  # one iterator: a second reader goes on from here
        self._reader = csv.reader(self._line_iter, delimiter=fmt.delimiter, strict=True)
        self.header: list[str] = []
        self._last_line = 0
        self._line_offset = 0  # lines read before the reader in use started (its line_num's 0)
        self._cells = 0  # when not 0: every row has this many cells, or it is misread
        hint = fmt.sep_line
        for row in self._rows():
            if hint:
                hint = False
                continue
            if row.problem is not None:  # else "no email column", which would mislead
                self.close()
                raise ImportFailed(
                    f"the header row (line {row.line}) cannot be read: {row.problem[1]}"
                )
            self.header = [h.strip().lstrip("\ufeff") for h in row.values]
            break
        if self.header and recognise(self.header).backslash_quotes:
            # MailPoet writes a quote inside a cell as \" (not ""): read the rows so, or a
            # nickname in quotes would make its row bad; "" still reads as a quote, as in the
            # same file saved again by a spreadsheet.  A cell ending in a backslash would run
            # into the next: MailPoet writes every cell of every row, so a row whose cells do
            # not match the header is bad.  Line numbers go on from the header's.
            self._line_offset = self._last_line
            self._cells = len(self.header)
            self._reader = csv.reader(
                self._line_iter,
                delimiter=fmt.delimiter,
                strict=True,
                escapechar="\\",
            )

    def close(self) -> None:
        self._fp.close()

    @property
    def processed_bytes(self) -> int:
        return min(self.lines.bytes_read, self.total_bytes)

    @property
    def encoding(self) -> str:
        """The encoding the file turned out to have: its format's, or "utf-8+cp1252" for a file
        whose lines are some UTF-8 and some Windows-1252 ("utf-8+mac_roman": Mac Roman)."""
        lines = self.lines
        if lines.legacy_lines and (lines.saw_utf8 or self.format.encoding.startswith("utf-8")):
            return f"utf-8+{lines.legacy}"
        return self.format.encoding

    def _rows(self) -> Iterator[SourceRow]:
        reader = self._reader
        delimiter = self.format.delimiter
        bad_lines = self.lines.bad_lines
        while True:
            start = self._last_line + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = reader.line_num + self._line_offset
                self._last_line = end
                yield SourceRow(start, [], end, _csv_problem(exc, start, end))
                continue
            end = self._last_line = reader.line_num + self._line_offset
            if not (values and any(values)):
                if bad_lines and start in bad_lines:  # a line that could not be read at all
                    yield SourceRow(start, values, end, bad_lines[start])
                continue
            if self._cells and len(values) != self._cells:
                span = f"line {start}" if start == end else f"lines {start} to {end}"
                yield SourceRow(start, values, end, _cells_problem(len(values), self._cells, span))
                continue
            if end == start:
                if bad_lines and start in bad_lines:
                    yield SourceRow(start, values, end, bad_lines[start])
                else:
                    yield SourceRow(start, values)
                continue
            problem = None
            if bad_lines:
                problem = next(
                    (bad_lines[n] for n in range(start, end + 1) if n in bad_lines), None
                )
            if problem is None and swallowed_rows(values, delimiter):
                problem = (
                    "unterminated quote",
                    f"a quote opened on line {start} is not closed where the cell ends: lines "
                    f"{start} to {end} were read as one row; close the quote and import the "
                    "report again",
                )
            yield SourceRow(start, values, end, problem)

    def __iter__(self) -> Iterator[SourceRow]:
        return self._rows()


def _cells_problem(found: int, expected: int, span: str) -> tuple[str, str]:
    """A row of a file that writes every cell (MailPoet's) with more or fewer cells than its
    header: read wrong, most likely as a cell ending in a backslash ran into the next."""
    return "cells out of line", (
        f"{span} has {found} cells where the header has {expected}: perhaps a cell ends in a "
        "backslash; remove it and import these lines again"
    )


def _csv_problem(exc: csv.Error, start: int, end: int) -> tuple[str, str]:
    """A csv.Error as a bad row's (reason, detail).  The csv module's messages hold no value;
    ours name lines only."""
    message = str(exc)
    span = f"line {start}" if start == end else f"lines {start} to {end}"
    if "field larger than field limit" in message:
        detail = f"a cell longer than {CELL_LIMIT:,} characters ({span})"
        if end > start:
            detail += ": perhaps a quote that is not closed"
        return "cell too long", detail
    if "unexpected end of data" in message:
        return "unterminated quote", (
            f"a quote opened on line {start} is never closed: {span}, to the end of the file, "
            "could not be read; close the quote and import these lines again"
        )
    if "expected after" in message:
        if end > start:
            return "unterminated quote", (
                f"a quote opened on line {start} is not closed where its cell ends: {span} "
                "could not be read; close the quote and import these lines again"
            )
        return "stray quote", (
            f"a quote in the middle of a cell ({span}): quote the whole cell, and double the "
            "quotes inside it"
        )
    return "unreadable CSV", f"the csv reader could not read {span} ({type(exc).__name__})"


def open_source(path: Path, fmt: FileFormat) -> CsvSource | XlsxSource:
    """The rows of the file, as detect_format found it: a CSV file's or a workbook's first
    sheet's."""
    from .workbook import XLSX, XlsxSource

    if fmt.encoding == XLSX:
        return XlsxSource(path, fmt)
    return CsvSource(path, fmt)
