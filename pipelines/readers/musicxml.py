"""MusicXML and MXL: note-seq's reader on bytes in memory, the zip's score member, zip checks.

``parse.reader_chain`` tries :func:`read_musicxml_note_seq` then (for .mxl) :func:`read_mxl_inner`
before music21; ``music21_reader`` reads the same score member (:func:`mxl_score_member`).
``parse.parse_file`` runs the zip-bomb guard :func:`check_zip` before any reader, and asks
:func:`zip_truncated` / :func:`xml_truncated` why a file no reader could take failed.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile

from note_seq import musicxml_parser, musicxml_reader

from pipelines.readers.common import MXL, Limits, NoteSequence, ReaderError


class _ParsedMusicXML(musicxml_parser.MusicXMLDocument):
    """note-seq's MusicXML document model over an already-parsed score (note-seq wants a path)."""

    def __init__(self, score: ET.Element) -> None:
        self._given_score = score
        super().__init__("")

    def _get_score(self, filename: str) -> ET.Element:  # type: ignore[override]
        return self._given_score


class _InMemoryMXL(io.BytesIO):
    """An .mxl in memory for note-seq's own container code, which takes a file name and picks the
    zip branch by its extension (``zipfile`` itself accepts any file object)."""

    def endswith(self, suffix: str | tuple[str, ...]) -> bool:
        return ".mxl".endswith(suffix)


def _musicxml_root_to_sequence(root: ET.Element) -> NoteSequence:
    return musicxml_reader.musicxml_to_sequence_proto(_ParsedMusicXML(root))


def read_musicxml_note_seq(data: bytes, fmt: str) -> list[NoteSequence]:
    """note-seq's MusicXML reader; for .mxl its own container handling (Magenta's path)."""
    if fmt != MXL:
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            raise musicxml_parser.MusicXMLParseError(exc) from exc
        return [_musicxml_root_to_sequence(root)]
    return [musicxml_reader.musicxml_file_to_sequence_proto(_InMemoryMXL(data))]


def _zip_member_name(info: zipfile.ZipInfo) -> str:
    """Member name decoded as UTF-8 even without the zip UTF-8 flag (as note-seq does)."""
    if info.flag_bits & 0x800:
        return info.filename
    return info.filename.encode("cp437").decode("utf-8", "replace")


def mxl_score_member(data: bytes) -> bytes:
    """The MusicXML score inside an .mxl, found without trusting ``container.xml`` to parse.

    A well-formed container is used when present; otherwise the single non-``META-INF`` XML
    member, or the member whose name appears verbatim in the (malformed) container text.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        names = {_zip_member_name(info): info for info in infos}
        container = names.get("META-INF/container.xml")
        container_text = archive.read(container) if container is not None else b""
        if container_text:
            try:
                root = ET.fromstring(container_text)
                for rootfile in root.iter("rootfile"):
                    path = rootfile.attrib.get("full-path", "")
                    media = rootfile.attrib.get("media-type", musicxml_parser.MUSICXML_MIME_TYPE)
                    if media == musicxml_parser.MUSICXML_MIME_TYPE and path in names:
                        return archive.read(names[path])
            except ET.ParseError:
                pass  # the case this reader exists for: fall through to the members
        scores = [
            name
            for name in names
            if not name.startswith("META-INF/") and name.lower().endswith((".xml", ".musicxml"))
        ]
        if len(scores) > 1:
            text = container_text.decode("utf-8", "replace")
            scores = [name for name in scores if name in text] or scores[:0]
        if len(scores) != 1:
            raise ReaderError(f"cannot tell the score among {len(scores)} XML members")
        return archive.read(names[scores[0]])


def read_mxl_inner(data: bytes) -> list[NoteSequence]:
    """note-seq's MusicXML reader on the score member read straight out of the .mxl."""
    return [_musicxml_root_to_sequence(ET.fromstring(mxl_score_member(data)))]


def check_zip(data: bytes, limits: Limits) -> str | None:
    """Zip-bomb guard from the central directory alone (nothing is inflated).

    zipfile enforces each member's declared size while inflating, so checking declared sizes and
    ratios here bounds what any later reader can inflate. Returns a detail string when over a cap.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None  # not a readable zip: the readers will report it
    if len(infos) > limits.max_zip_members:
        return f"{len(infos)} members > {limits.max_zip_members}"
    total = sum(info.file_size for info in infos)
    if total > limits.max_unzipped_bytes:
        return f"{total} bytes uncompressed > {limits.max_unzipped_bytes}"
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_zip_ratio and info.file_size > 1024 * 1024:
            return f"member {info.filename!r} inflates {ratio:.0f}x > {limits.max_zip_ratio:.0f}x"
    return None


def zip_truncated(data: bytes) -> bool:
    """A zip that starts like one but has no end-of-central-directory record was cut short."""
    return data.startswith(b"PK\x03\x04") and b"PK\x05\x06" not in data[-(22 + 65535) :]


_TRUNCATION_CODES = {3, 5, 6}  # expat: no element found, unclosed token, partial character


def xml_truncated(data: bytes) -> bool:
    """True when the XML parser ran out of document rather than meeting bad syntax."""
    try:
        ET.fromstring(data)
    except ET.ParseError as exc:
        return exc.code in _TRUNCATION_CODES
    return False
