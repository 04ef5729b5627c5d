"""Streaming import of profiles from JSON Lines or CSV files into the store.

Used by ``segport import profiles FILE``. The file is read row by row (never
whole), each row is validated on its own, and valid rows are written through
:meth:`Store.upsert_profiles` in batches. A broken row is reported with its
line number and reason and the rest of the file is still imported.

JSON Lines: one object per line, either nested::

    {"id": "p1", "attributes": {"email": "a@example.com"}, "segments": ["VIP"]}

or flat, where every key except ``id`` and ``segments`` is an attribute::

    {"id": "p1", "email": "a@example.com", "segments": ["VIP"]}

CSV: a header row with an ``id`` column; an optional ``segments`` column holds
``;``-separated segment names; every other column is an attribute (kept as
text); empty cells are omitted. A quoted cell may span lines; a quote that is
never closed (or closes only where the row no longer has the header's columns)
rejects the row it opens on, and the lines it would have swallowed are read
again as rows of their own, so every line is imported or rejected by number.

A segment is named either by its name or by its id; names that do not exist
yet are created.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

from service.domain import Profile, Segment, new_id, utcnow
from service.store.base import Store

ImportFormat = Literal["jsonl", "csv"]

MAX_LISTED_REJECTIONS = 20
"""How many rejected rows the summary keeps with their reasons (the count is always exact)."""

DEFAULT_BATCH_SIZE = 1000

_FORMATS: dict[str, ImportFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}
MAX_ROW_LINES = 1000
"""Most lines one CSV row may span: a quote left open gives the lines back past this."""

_SEGMENT_PAGE = 500


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unknown type, unreadable, CSV without ``id``,
    no rows at all)."""


@dataclass(slots=True)
class RowRejection:
    line: int
    reason: str


@dataclass(slots=True)
class ImportSummary:
    rows_read: int = 0
    upserted: int = 0
    rejected: int = 0
    rejections: list[RowRejection] = field(default_factory=list)
    """The first :data:`MAX_LISTED_REJECTIONS` rejected rows."""
    segments_created: list[str] = field(default_factory=list)
    """Names of the segments the import created."""
    spanning_rows: int = 0
    """Imported CSV rows with a line break in a quoted cell (each took several lines)."""
    spanning_lines: list[tuple[int, int]] = field(default_factory=list)
    """The first and last line of the first :data:`MAX_LISTED_REJECTIONS` such rows."""

    def span(self, first: int, last: int) -> None:
        self.spanning_rows += 1
        if len(self.spanning_lines) < MAX_LISTED_REJECTIONS:
            self.spanning_lines.append((first, last))

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_LISTED_REJECTIONS:
            self.rejections.append(RowRejection(line, reason))


@dataclass(slots=True)
class _Row:
    """A row that passed validation, before its segment names are resolved to ids."""

    line: int
    id: str
    attributes: dict[str, Any]
    segments: list[str]


class _RowError(Exception):
    pass


def detect_format(path: Path) -> ImportFormat:
    """The format named by the file's extension."""
    found = _FORMATS.get(path.suffix.lower())
    if found is None:
        known = ", ".join(sorted(_FORMATS))
        raise ImportFileError(
            f"cannot tell the format of {str(path)!r} from its extension {path.suffix!r} "
            f"(expected one of {known})"
        )
    return found


def _describe(value: object) -> str:
    """A JSON type name for error messages."""
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
    return type(value).__name__


def _profile_id(value: object) -> str:
    # Integer ids are common in exports from other systems; they are kept as their text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _RowError(f"id must be a string, found {_describe(value)}")
    if not value.strip():
        raise _RowError("id is empty")
    return value


def _json_segments(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _RowError(f"segments must be an array of strings, found {_describe(value)}")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise _RowError(f"segments must hold non-empty strings, found {item!r}")
        names.append(item.strip())
    return names


def parse_json_row(line: int, text: bytes) -> _Row:
    """Validate one JSON Lines row (raises ``_RowError`` with the reason)."""
    # Without its line ending the row is one line, so the parser's column is the line's.
    text = text.rstrip(b"\r\n")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise _RowError(
                "invalid JSON: the line ends before the JSON value does (a truncated line?)"
            ) from None
        raise _RowError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise _RowError(f"expected a JSON object, found {_describe(data)}")
    if "id" not in data:
        raise _RowError("missing id")
    profile_id = _profile_id(data.pop("id"))
    segments = _json_segments(data.pop("segments", None))
    if "attributes" in data:
        attributes = data.pop("attributes")
        if not isinstance(attributes, dict):
            raise _RowError(f"attributes must be a JSON object, found {_describe(attributes)}")
        if data:
            extra = ", ".join(sorted(data))
            raise _RowError(
                f"unexpected keys beside attributes: {extra} (put them inside attributes)"
            )
    else:
        attributes = data
    return _Row(line, profile_id, attributes, segments)


def _counted_lines(handle: BinaryIO, on_bytes: Callable[[int], None]) -> Iterator[bytes]:
    for raw in handle:
        on_bytes(len(raw))
        yield raw


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise ImportFileError(f"cannot read {str(path)!r}: {exc.strerror}") from None


def iter_json_rows(
    path: Path, summary: ImportSummary, on_bytes: Callable[[int], None]
) -> Iterator[_Row]:
    with _open(path) as handle:
        for number, raw in enumerate(_counted_lines(handle, on_bytes), start=1):
            if not raw.strip():
                continue
            summary.rows_read += 1
            try:
                yield parse_json_row(number, raw)
            except _RowError as exc:
                summary.reject(number, str(exc))


@dataclass(slots=True)
class _Line:
    number: int
    text: str
    utf8: bool
    """False when the bytes were not UTF-8 (``text`` then holds surrogate escapes)."""


class _RowTooLong(Exception):
    """A CSV row reached :data:`MAX_ROW_LINES` lines: a quote was left open."""


class _CsvLines:
    """The file's lines for :func:`csv.reader`, remembering the lines of the row being read.

    A row that swallowed lines (an unclosed quote) gives them back with :meth:`give_back`,
    and they are read again. ``reached_end`` tells that the reader asked past the last
    line while reading the row, which it does only from inside a quoted cell.
    """

    def __init__(self, handle: BinaryIO, on_bytes: Callable[[int], None]) -> None:
        self._handle = handle
        self._on_bytes = on_bytes
        self._read = 0
        self._returned: deque[_Line] = deque()
        self.row: list[_Line] = []
        self.reached_end = False

    def start_row(self) -> None:
        self.row = []
        self.reached_end = False

    def give_back(self, lines: list[_Line]) -> None:
        self._returned.extendleft(reversed(lines))

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        if len(self.row) >= MAX_ROW_LINES:
            raise _RowTooLong
        line = self._returned.popleft() if self._returned else self._next_in_file()
        self.row.append(line)
        return line.text

    def _next_in_file(self) -> _Line:
        raw = self._handle.readline()
        if not raw:
            self.reached_end = True
            raise StopIteration
        self._on_bytes(len(raw))
        self._read += 1
        try:
            text, utf8 = raw.decode("utf-8"), True
        except UnicodeDecodeError:
            # Kept (as surrogate escapes) so the row's shape is parsed; the row is rejected.
            text, utf8 = raw.decode("utf-8", "surrogateescape"), False
        if self._read == 1:
            # Spreadsheets like to start a UTF-8 CSV with a byte-order mark.
            text = text.removeprefix("\ufeff")
        return _Line(self._read, text, utf8)


def _csv_header(path: Path, lines: _CsvLines) -> list[str]:
    lines.start_row()
    try:
        header = [name.strip() for name in next(csv.reader(lines))]
    except StopIteration:
        raise ImportFileError(f"{str(path)!r} is empty: a CSV needs a header row") from None
    except (csv.Error, _RowTooLong) as exc:
        raise ImportFileError(f"cannot read the CSV header of {str(path)!r}: {exc}") from None
    if lines.reached_end:
        raise ImportFileError(f"the CSV header of {str(path)!r} has an unclosed quote")
    if not all(line.utf8 for line in lines.row):
        raise ImportFileError(f"the CSV header of {str(path)!r} is not UTF-8 text")
    if "id" not in header:
        raise ImportFileError(
            f"the CSV header of {str(path)!r} has no 'id' column "
            f"(found: {', '.join(header) or 'nothing'})"
        )
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ImportFileError(
            f"the CSV header of {str(path)!r} repeats column(s): {', '.join(duplicates)}"
        )
    return header


def _read_again(rows: list[_Line]) -> str:
    """What happens to the lines a broken row took after its first."""
    first, last = rows[1].number, rows[-1].number
    if first == last:
        return f"line {first} is read again as a row"
    return f"lines {first}-{last} are read again as rows"


def _not_utf8(rows: list[_Line]) -> str:
    text = next(line.text for line in rows if not line.utf8)
    # surrogateescape decoded each undecodable byte b as the code point U+DC00 + b
    byte = next(ord(char) - 0xDC00 for char in text if "\udc80" <= char <= "\udcff")
    return f"not UTF-8 text (byte 0x{byte:02x})"


def _csv_row_problem(lines: _CsvLines, cells: list[str], columns: int) -> str | None:
    """Why the row just read as ``cells`` must not be kept as read (it swallowed lines),
    or None; the caller then gives the row's lines after the first back to be read again."""
    rows = lines.row
    if lines.reached_end:
        again = f"; {_read_again(rows)}" if len(rows) > 1 else ""
        return f"unclosed quote: a quoted cell opened on this line never closes{again}"
    if len(rows) == 1:
        return None
    if len(cells) != columns:
        return (
            f"expected {columns} columns as in the header, found {len(cells)} in a row "
            f"running to line {rows[-1].number} (a quote left open?); {_read_again(rows)}"
        )
    if not _well_formed(rows):
        return (
            f"a quoted cell opened on this line closes on line {rows[-1].number} inside a "
            f"cell (a quote left open?); {_read_again(rows)}"
        )
    return None


def _well_formed(rows: list[_Line]) -> bool:
    """Whether a row read across lines is strict CSV (RFC 4180): a genuine line break in a
    cell is quoted cleanly, while a stray quote tends to close just before more text."""
    try:
        next(csv.reader([line.text for line in rows], strict=True))
    except csv.Error:
        return False
    return True


def iter_csv_rows(
    path: Path, summary: ImportSummary, on_bytes: Callable[[int], None]
) -> Iterator[_Row]:
    with _open(path) as handle:
        lines = _CsvLines(handle, on_bytes)
        header = _csv_header(path, lines)
        id_index = header.index("id")
        segments_index = header.index("segments") if "segments" in header else None
        reader = csv.reader(lines)
        while True:
            lines.start_row()
            cells: list[str] | None = None
            try:
                cells = next(reader)
            except StopIteration:
                return
            except _RowTooLong:
                problem: str | None = (
                    f"unclosed quote: a quoted cell opened on this line runs past "
                    f"{MAX_ROW_LINES} lines; {_read_again(lines.row)}"
                )
            except csv.Error as exc:
                problem = f"unreadable CSV row: {exc}"
            else:
                problem = _csv_row_problem(lines, cells, len(header))
            start = lines.row[0].number
            if problem is not None:
                summary.rows_read += 1
                summary.reject(start, problem)
                lines.give_back(lines.row[1:])
                reader = csv.reader(lines)  # a fresh parser: the old one may be inside a cell
                continue
            assert cells is not None
            if not cells or all(not cell.strip() for cell in cells):
                continue
            summary.rows_read += 1
            if not all(line.utf8 for line in lines.row):
                summary.reject(start, _not_utf8(lines.row))
                continue
            if len(cells) != len(header):
                summary.reject(
                    start, f"expected {len(header)} columns as in the header, found {len(cells)}"
                )
                continue
            profile_id = cells[id_index].strip()
            if not profile_id:
                summary.reject(start, "missing id")
                continue
            segments: list[str] = []
            if segments_index is not None:
                segments = [s.strip() for s in cells[segments_index].split(";") if s.strip()]
            attributes = {
                name: cell
                for index, (name, cell) in enumerate(zip(header, cells, strict=True))
                if index not in (id_index, segments_index) and cell != ""
            }
            if len(lines.row) > 1:
                summary.span(start, lines.row[-1].number)
            yield _Row(start, profile_id, attributes, segments)


class SegmentResolver:
    """Turns segment names or ids into ids, creating segments named for the first time."""

    def __init__(self, store: Store, summary: ImportSummary) -> None:
        self._store = store
        self._summary = summary
        self._by_name: dict[str, str] = {}
        self._ids: set[str] = set()

    async def load(self) -> None:
        # Segments are few (a customer-data platform has hundreds, not millions), so one
        # pass over them up front saves a query per row.
        after: str | None = None
        while True:
            page = await self._store.list_segments(_SEGMENT_PAGE, after=after)
            for segment in page.items:
                self._by_name[segment.name] = segment.id
                self._ids.add(segment.id)
            if not page.has_next_page or not page.items:
                return
            after = page.items[-1].id

    async def resolve(self, name_or_id: str) -> str:
        if name_or_id in self._ids:
            return name_or_id
        found = self._by_name.get(name_or_id)
        if found is not None:
            return found
        now = utcnow()
        segment = Segment(
            id=new_id(), name=name_or_id, description=None, created_at=now, updated_at=now
        )
        await self._store.save_segment(segment)
        self._by_name[segment.name] = segment.id
        self._ids.add(segment.id)
        self._summary.segments_created.append(segment.name)
        return segment.id


class ProfileImporter:
    """Imports one file into ``store``.

    ``segments`` are names (or ids) every imported row is added to;
    ``on_progress`` is called with the number of bytes read so far.
    """

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        segments: Sequence[str] = (),
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self._store = store
        self._batch_size = batch_size
        self._extra_segments = [s.strip() for s in segments if s.strip()]
        self._on_progress = on_progress
        self._bytes_read = 0

    def _count_bytes(self, size: int) -> None:
        self._bytes_read += size
        if self._on_progress is not None:
            self._on_progress(self._bytes_read)

    async def import_file(
        self, path: Path, file_format: ImportFormat | None = None
    ) -> ImportSummary:
        """Import every valid row of ``path``; raises :class:`ImportFileError` when the file
        as a whole is unusable."""
        chosen = file_format or detect_format(path)
        summary = ImportSummary()
        resolver = SegmentResolver(self._store, summary)
        await resolver.load()
        rows = (iter_csv_rows if chosen == "csv" else iter_json_rows)(
            path, summary, self._count_bytes
        )
        extra_ids: list[str] | None = None  # made with the first row: an empty file makes none
        batch: list[Profile] = []
        for row in rows:
            if extra_ids is None:
                extra_ids = [await resolver.resolve(name) for name in self._extra_segments]
            segment_ids = [await resolver.resolve(name) for name in row.segments]
            # dict.fromkeys: keep the order, drop repeats
            merged = list(dict.fromkeys([*segment_ids, *extra_ids]))
            batch.append(Profile(row.id, row.attributes, merged))
            if len(batch) >= self._batch_size:
                summary.upserted += await self._store.upsert_profiles(batch)
                batch = []
        if batch:
            summary.upserted += await self._store.upsert_profiles(batch)
        if summary.rows_read == 0:
            raise ImportFileError(f"no profiles found in {str(path)!r}: it has no rows")
        return summary
