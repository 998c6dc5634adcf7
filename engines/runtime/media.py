"""What a file is, told from its first bytes, never from its name: an image (with its size, read from the header
before anything is decoded) or a video container. Everything else (text, playlists such as FFmpeg's ffconcat or
HLS, SDP session files, archives) is not media: OpenCV's FFmpeg would otherwise follow a playlist to files or
URLs the client never sent.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 1 << 18            # enough for any image header we read (a JPEG's EXIF block is at most 64 KiB)


@dataclass(frozen=True)
class Media:
    kind: str                   # "image" | "video"
    format: str                 # png, jpeg, bmp, tiff, webp | mp4, avi, mkv, mpeg-ts, mpeg-ps, asf, flv
    width: int = 0              # images: from the header (0 when the header does not say)
    height: int = 0

    @property
    def suffix(self) -> str:
        """A file-name suffix that matches the content (temporary files are named by what they hold)."""
        return {"jpeg": ".jpg", "mpeg-ts": ".ts", "mpeg-ps": ".mpg", "tiff": ".tif"}.get(self.format,
                                                                                         "." + self.format)


def _png(b: bytes) -> tuple[int, int] | None:
    if len(b) >= 24 and b[12:16] == b"IHDR":
        return struct.unpack(">II", b[16:24])
    return None


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(b: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:
            return None
        marker = b[i + 1]
        if marker == 0xFF:                      # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", b[i + 2:i + 4])
        if marker in _SOF and i + 9 <= len(b):
            h, w = struct.unpack(">HH", b[i + 5:i + 9])
            return w, h
        if marker == 0xDA or length < 2:        # scan data before any frame header: not a valid JPEG
            return None
        i += 2 + length
    return None


def _bmp(b: bytes) -> tuple[int, int] | None:
    if len(b) < 26:
        return None
    (dib,) = struct.unpack("<I", b[14:18])
    if dib == 12:
        return struct.unpack("<HH", b[18:22])
    w, h = struct.unpack("<ii", b[18:26])
    return abs(w), abs(h)


def _tiff(b: bytes) -> tuple[int, int] | None:
    e = "<" if b[:2] == b"II" else ">"
    try:
        (off,) = struct.unpack(e + "I", b[4:8])
        (n,) = struct.unpack(e + "H", b[off:off + 2])
        size = {}
        for k in range(n):
            p = off + 2 + 12 * k
            tag, typ = struct.unpack(e + "HH", b[p:p + 4])
            if tag in (256, 257):
                size[tag] = struct.unpack(e + ("H" if typ == 3 else "I"), b[p + 8:p + (10 if typ == 3 else 12)])[0]
    except struct.error:
        return None
    return (size[256], size[257]) if len(size) == 2 else None


def _webp(b: bytes) -> tuple[int, int] | None:
    chunk = b[12:16]
    if chunk == b"VP8 " and len(b) >= 30:
        w, h = struct.unpack("<HH", b[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(b) >= 25:
        (bits,) = struct.unpack("<I", b[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(b) >= 30:
        return int.from_bytes(b[24:27], "little") + 1, int.from_bytes(b[27:30], "little") + 1
    return None


_IMAGES = ((b"\x89PNG\r\n\x1a\n", "png", _png), (b"\xff\xd8\xff", "jpeg", _jpeg), (b"BM", "bmp", _bmp),
           (b"II*\x00", "tiff", _tiff), (b"MM\x00*", "tiff", _tiff))


def sniff(head: bytes) -> Media | None:
    """The media ``head`` (a file's first bytes, ``HEAD_BYTES`` or all of it) starts, or None when it is none."""
    for magic, fmt, size in _IMAGES:
        if head.startswith(magic):
            wh = size(head)
            return Media("image", fmt, *(wh or (0, 0)))
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        wh = _webp(head)
        return Media("image", "webp", *(wh or (0, 0)))
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Media("video", "avi")
    if head[4:8] == b"ftyp" or (head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip") and len(head) >= 16):
        return Media("video", "mp4")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return Media("video", "mkv")
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return Media("video", "mpeg-ts")
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return Media("video", "mpeg-ps")
    if head[:8] == b"\x30\x26\xb2\x75\x8e\x66\xcf\x11":
        return Media("video", "asf")
    if head[:4] == b"FLV\x01":
        return Media("video", "flv")
    return None


def sniff_file(path: str | Path) -> Media | None:
    """``sniff`` of a file's first bytes; None for an unreadable or empty file too."""
    try:
        with open(path, "rb") as f:
            return sniff(f.read(HEAD_BYTES))
    except OSError:
        return None


KNOWN = "images: PNG, JPEG, BMP, TIFF, WebP; videos: MP4/MOV, AVI, MKV/WebM, MPEG-TS/PS, ASF, FLV"
