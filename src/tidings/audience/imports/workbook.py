"""An Excel workbook (.xlsx) as a source of rows: its first sheet, read as the CSV source reads
a file, so that columns, the check, consent dates and bad rows work the same.

- Only the first worksheet is read (a note says so when there are more); old binary workbooks
  (.xls), password-protected ones and OpenDocument spreadsheets (.ods) are refused with what to
  do, before anything is read.
- The sheet is streamed (openpyxl's read-only mode): a sheet of a million rows takes no more
  memory than one of ten.  What openpyxl does hold whole (the shared strings, the styles) is
  bounded by the sizes the ZIP declares, which bound what it can inflate to; a member inflating
  to hundreds of times its size (a ZIP bomb) is refused before it is opened.  XML is parsed with
  defusedxml (openpyxl uses it when installed): no entity expansion, no external entities.
- Formulas are never evaluated: a cell gives the value Excel last saved for it (data_only), or
  nothing when it has none.
- A cell becomes the text a CSV export would hold: a date or time in ISO 8601 (read exactly by
  the consent-date parser), a whole number without ".0" (a phone number, an ID), TRUE/FALSE.
- A row's line is its row number in the sheet, as Excel shows it.
"""

from __future__ import annotations

import warnings
import zipfile
import zlib
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

from .source import CELL_LIMIT, FileFormat, ImportFailed, SourceRow

XLSX = "xlsx"  # FileFormat.encoding (and Import.encoding) of a workbook
XLSX_FORMAT = FileFormat(XLSX, ",")

# Excel's own limit: a row number past it is a damaged (or forged) sheet.
MAX_SHEET_ROWS = 1_048_576
# What a workbook's members may inflate to.  The shared strings are held in memory whole.
MAX_SHARED_STRINGS_BYTES = 256 << 20
MAX_MEMBER_BYTES = 4 << 30
# A member this large that inflates to more than RATIO times its compressed size is a ZIP bomb
# (a real sheet's XML compresses 5 to 20 times, a column of one repeated value some 100 times).
BOMB_MIN_BYTES = 64 << 20
BOMB_RATIO = 500

DAMAGED = (
    "the workbook cannot be read (damaged, or not an Excel workbook): open it in Excel, save it "
    "again as an Excel Workbook (.xlsx) or save the sheet as CSV, and import that"
)
BOMB = (
    "the workbook is refused: it inflates to far more than its size (a ZIP bomb, or a damaged "
    "file); save the sheet as CSV and import that"
)
ODS = (
    "an OpenDocument spreadsheet (.ods) cannot be imported: save it as an Excel Workbook (.xlsx) "
    "or as CSV and import that"
)
XLS = (
    "an old Excel workbook (.xls) cannot be imported: save it in Excel as an Excel Workbook "
    "(.xlsx) or as CSV and import that"
)
ENCRYPTED = (
    "the workbook is protected by a password: remove the password in Excel (File > Info > "
    "Protect Workbook), save it and import it again, or save the sheet as CSV"
)
_ODS_MIMETYPE = b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet"
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
# What openpyxl and the ZIP and XML layers under it raise on a damaged workbook.
_BROKEN = (
    zipfile.BadZipFile,
    zlib.error,
    ParseError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    EOFError,
    OSError,
)


def ole_refusal(sample: bytes) -> str:
    """Why an OLE2 compound file (an .xls, or an encrypted .xlsx, which Excel stores in one) is
    refused: the stream an encrypted workbook holds names it."""
    return ENCRYPTED if _ENCRYPTED_STREAM in sample else XLS


def zip_refusal(sample: bytes) -> str | None:
    """From a ZIP archive's first bytes: why it is not a workbook to import, or None when it may
    be an XLSX workbook (check_workbook decides, with the whole file)."""
    if _ODS_MIMETYPE in sample[:256]:
        return ODS
    if b"xl/" not in sample:  # an Office file's parts are named at the start of each entry
        for part, kind in ((b"word/", "a Word document"), (b"ppt/", "a PowerPoint file")):
            if part in sample:
                return f"not a CSV file: it is {kind}, not an Excel workbook"
    if b"xl/" in sample or b"[Content_Types].xml" in sample:
        return None
    return "not a CSV file: it is a ZIP archive, not an Excel workbook"


def check_workbook(path: Path) -> FileFormat:
    """The format of an XLSX workbook, once its ZIP directory shows it is one and will not
    inflate past what can be read.  Raises ImportFailed otherwise."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ImportFailed(DAMAGED) from None
    names = {info.filename for info in members}
    if "mimetype" in names and "content.xml" in names:
        raise ImportFailed(ODS)
    if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        raise ImportFailed(DAMAGED)
    total = 0
    for info in members:
        size = info.file_size
        total += size
        if size > MAX_MEMBER_BYTES or total > 2 * MAX_MEMBER_BYTES:
            raise ImportFailed(BOMB)
        if size > BOMB_MIN_BYTES and size > BOMB_RATIO * max(info.compress_size, 1):
            raise ImportFailed(BOMB)
        if info.filename.casefold() == "xl/sharedstrings.xml" and size > MAX_SHARED_STRINGS_BYTES:
            raise ImportFailed(BOMB)
    return XLSX_FORMAT


def cell_text(value: Any) -> str:
    """A cell's value as the text a CSV export of the sheet would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))  # 447700900123.0, as a phone number is typed: no ".0"
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


class XlsxSource:
    """The rows of a workbook's first sheet after its header, as CsvSource gives a file's."""

    format = XLSX_FORMAT
    encoding = XLSX

    def __init__(self, path: Path, fmt: FileFormat = XLSX_FORMAT):
        # Imported here: only an import of a workbook pays for it.
        from openpyxl import load_workbook  # type: ignore[import-untyped]
        from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

        self.path = path
        self.total_bytes = path.stat().st_size
        self._row = 0
        self._workbook = None
        # Opened here and handed over: given a path, openpyxl goes by its extension, and an
        # upload is stored under a name of tidings' own.
        self._fp = path.open("rb")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "no default style" and the like
                self._workbook = load_workbook(
                    self._fp, read_only=True, data_only=True, keep_links=False
                )
            sheets = self._workbook.worksheets
            if not sheets:
                raise ImportFailed("the workbook has no sheet of rows: save the sheet as CSV")
            self.sheets = len(sheets)
            sheet = sheets[0]
            # The rows a damaged sheet's dimension claims, for progress only; then forgotten, so
            # that a sheet claiming the last cell XFD1048576 is not padded out to it.
            self._declared_rows = max(sheet.max_row or 0, 0)
            sheet.reset_dimensions()
            self._rows_iter = sheet.iter_rows(values_only=True)
        except ImportFailed:
            self.close()
            raise
        except (*_BROKEN, InvalidFileException):
            self.close()
            raise ImportFailed(DAMAGED) from None
        self.header: list[str] = []
        for row in self._rows():
            if row.problem is not None:
                self.close()
                raise ImportFailed(
                    f"the header row (row {row.line}) cannot be read: {row.problem[1]}"
                )
            self.header = [h.strip().lstrip("\ufeff") for h in row.values]
            break

    def close(self) -> None:
        if self._workbook is not None:
            self._workbook.close()
        self._fp.close()

    @property
    def processed_bytes(self) -> int:
        if not self._declared_rows:
            return 0
        return min(self.total_bytes, self.total_bytes * self._row // self._declared_rows)

    def _rows(self) -> Iterator[SourceRow]:
        while True:
            try:
                cells = next(self._rows_iter)
            except StopIteration:
                return
            except _BROKEN:
                raise ImportFailed(DAMAGED) from None
            self._row += 1
            if self._row > MAX_SHEET_ROWS:
                raise ImportFailed(DAMAGED)
            if not cells:
                continue
            values = [cell_text(value) for value in cells]
            while values and not values[-1]:
                values.pop()
            if not any(values):
                continue
            if any(len(value) > CELL_LIMIT for value in values):
                detail = f"a cell longer than {CELL_LIMIT:,} characters (row {self._row})"
                yield SourceRow(self._row, [], 0, ("cell too long", detail))
                continue
            yield SourceRow(self._row, values)

    def __iter__(self) -> Iterator[SourceRow]:
        return self._rows()
