"""Reading a file's provenance evidence: XMP/IPTC fields, PNG text chunks, EXIF, and (through
`fakescope.provenance.c2pa`) C2PA manifests, within the bounds in the package docstring."""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from PIL import Image

from fakescope.provenance.evidence import (
    SOURCES,
    TEXT_HEAD,
    Evidence,
    EvidenceItem,
    _clip,
    _item,
    _slug,
    markers,
    match_free_text,
    match_tool,
)

SCAN_BLOCK = 1 << 20
MAX_SCAN = 256 << 20  # bytes searched for XMP fields and a C2PA label
MAX_PNG_CHUNKS = 100_000
MAX_EXIF = 1 << 20
MAX_HITS = 16  # XMP values kept per field and file
_OVERLAP = 512  # block overlap, so that a field split by a block boundary is still found


def _sniff(head: bytes) -> str:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:4] in (b"GIF8",):
        return "image/gif"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"):
            return "image/heif"
    if head.startswith(b"\xff\x0a") or head[4:12] == b"JXL \r\n\x87\n":
        return "image/jxl"
    return ""


# ---- XMP (format-agnostic: a byte scan) ----------------------------------------------------------

_XMP_KEYS = (b"DigitalSourceType", b"AISystemUsed", b"CreatorTool")
# `Prefix:Field="v"`, `<Prefix:Field>v<`, `<Prefix:Field rdf:resource="v"/>`, lang-alt lists.
_XMP_VALUE = re.compile(
    rb"(DigitalSourceType|AISystemUsed|CreatorTool)\b[^<>]{0,80}?(?:=\s*[\"']|>)\s*"
    rb"(?:<rdf:Alt>\s*<rdf:li[^<>]{0,80}>\s*)?([^\"'<>]{1,300})"
)


def _xmp_hits(buf: bytes, hits: dict[str, list[str]], final: bool = True) -> None:
    """Collect XMP field values from `buf`. Unless `final`, a match starting in the last
    `_OVERLAP` bytes is left for the next block (which starts with them), so that a value cut
    by the block's end is never taken."""
    if not any(k in buf for k in _XMP_KEYS):
        return
    stop = len(buf) if final else len(buf) - _OVERLAP
    for n, m in enumerate(_XMP_VALUE.finditer(buf, 0, len(buf))):
        if m.start() >= stop or n >= 4 * MAX_HITS:
            break
        key, value = m.group(1).decode(), m.group(2).decode("utf-8", "replace").strip()
        vals = hits.setdefault(key, [])
        if value and value not in vals and len(vals) < MAX_HITS:
            vals.append(value)


def _scan(fp: IO[bytes]) -> tuple[bool, dict[str, list[str]], bool]:
    """One pass in blocks: (mentions 'c2pa', XMP field values, stopped at MAX_SCAN)."""
    fp.seek(0)
    c2pa, hits, tail, done = False, {}, b"", 0
    block = fp.read(min(SCAN_BLOCK, MAX_SCAN))
    while block:
        done += len(block)
        nxt = fp.read(min(SCAN_BLOCK, MAX_SCAN - done)) if done < MAX_SCAN else b""
        buf = tail + block
        c2pa = c2pa or b"c2pa" in buf
        _xmp_hits(buf, hits, final=not nxt)
        tail, block = buf[-_OVERLAP:], nxt
    return c2pa, hits, done >= MAX_SCAN and bool(fp.read(1))


def _xmp_items(hits: dict[str, list[str]]) -> list[EvidenceItem]:
    m, out = markers(), []
    for value in hits.get("DigitalSourceType", []):
        code = value.rstrip("/").rsplit("/", 1)[-1]
        claim = m.source_types.get(code, "unknown")
        out.append(
            _item("iptc", claim, "asserted", f"IPTC digital source type {code}", f"iptc:{claim}")
        )
    for value in hits.get("AISystemUsed", []):
        g = match_tool(value)
        out.append(
            _item(
                "iptc",
                "ai-generated",
                "asserted",
                f"IPTC AI system used: {value}",
                f"iptc-ai-system:{g[0] if g else _slug(value)}",
            )
        )
    for value in hits.get("CreatorTool", []):
        g = match_tool(value)
        if g:
            out.append(
                _item("xmp", g[1], "asserted", f"CreatorTool {value}", f"xmp-creatortool:{g[0]}")
            )
        else:
            out.append(_item("xmp", "software", "weak", f"CreatorTool {value}", "xmp:software"))
    return out


# ---- text fields (PNG chunks, or a PIL image's info) -------------------------------------------


def _inflate(data: bytes) -> str | None:
    try:
        return zlib.decompressobj().decompress(data, TEXT_HEAD).decode("utf-8", "replace")
    except zlib.error:
        return None


def _png_text(ctype: bytes, raw: bytes) -> tuple[str, str] | None:
    """(keyword, head of the text) of a tEXt/zTXt/iTXt chunk whose first bytes are `raw`."""
    key, sep, rest = raw.partition(b"\0")
    if not sep or not key or len(key) > 79:
        return None
    keyword = key.decode("latin-1")
    if ctype == b"tEXt":
        return keyword, rest[:TEXT_HEAD].decode("latin-1")
    if ctype == b"zTXt":
        text = _inflate(rest[1:]) if rest[:1] == b"\0" else None
        return (keyword, text) if text is not None else None
    if len(rest) < 2:  # iTXt: compression flag, method, language, translated keyword, text
        return None
    compressed, rest = rest[0], rest[2:]
    _lang, _, rest = rest.partition(b"\0")
    _tkey, _, text = rest.partition(b"\0")
    if compressed:
        t = _inflate(text)
        return (keyword, t) if t is not None else None
    return keyword, text[:TEXT_HEAD].decode("utf-8", "replace")


def _png_chunks(fp: IO[bytes]) -> tuple[list[tuple[str, str, int]], bytes | None]:
    """Walk a PNG's chunk headers, skipping pixel data: text chunks (keyword, head, size) and
    the eXIf payload. Pillow reads text after the pixel data only by decoding the pixels."""
    texts: list[tuple[str, str, int]] = []
    exif = None
    pos = 8
    for _ in range(MAX_PNG_CHUNKS):
        fp.seek(pos)
        head = fp.read(8)
        if len(head) < 8:
            break
        length, ctype = struct.unpack(">I4s", head)
        if ctype in (b"tEXt", b"zTXt", b"iTXt") and len(texts) < 256:
            parsed = _png_text(ctype, fp.read(min(length, TEXT_HEAD + 4096)))
            if parsed:
                texts.append((*parsed, length))
        elif ctype == b"eXIf" and length <= MAX_EXIF:
            exif = fp.read(length)
        elif ctype == b"IEND":
            break
        pos += 12 + length
    return texts, exif


def _text_items(texts: Iterable[tuple[str, str, int]]) -> list[EvidenceItem]:
    m, out = markers(), []
    for key, text, size in texts:
        big = f" ({size:,} bytes, first {TEXT_HEAD // 1024} KiB read)" if size > TEXT_HEAD else ""
        slug = _slug(key)
        rule = m.png_text.get(key)
        if rule and (rule[2] is None or rule[2].search(text)):
            out.append(
                _item(
                    "png-text",
                    "ai-generated",
                    "asserted",
                    f"'{key}' text chunk as written by {rule[1]}{big}: {text[:50]}",
                    f"png-{slug}:{rule[0]}",
                )
            )
        elif key in m.tool_keys and (g := match_tool(text)):
            out.append(
                _item("png-text", g[1], "asserted", f"{key}: {text[:80]}", f"png-{slug}:{g[0]}")
            )
        elif key in m.free_text_keys and (g := match_free_text(text)):
            out.append(
                _item(
                    "png-text",
                    "ai-generated",
                    "asserted",
                    f"'{key}' text holds {g[1]}",
                    f"png-{slug}:{g[0]}",
                )
            )
    return out


# ---- EXIF ----------------------------------------------------------------------------------------

_MAKE, _MODEL, _SOFTWARE, _DESCRIPTION, _EXIF_IFD = 0x010F, 0x0110, 0x0131, 0x010E, 0x8769
_EXPOSURE, _FNUMBER, _ISO, _USER_COMMENT = 0x829A, 0x829D, 0x8827, 0x9286


def _str(v: Any) -> str:
    if isinstance(v, bytes):
        v = v.decode("latin-1")
    if isinstance(v, tuple):
        v = v[0] if v else ""
    return _clip(str(v).replace("\x00", " "), 200) if v is not None else ""


def _user_comment(v: Any) -> str:
    """EXIF UserComment: 8 bytes naming the character set, then the text."""
    if not isinstance(v, bytes):
        return _str(v)
    code, body = v[:8], v[8 : 8 + 2 * TEXT_HEAD]
    if code.startswith(b"UNICODE"):
        be, le = body.decode("utf-16-be", "replace"), body.decode("utf-16-le", "replace")
        return be if be.isprintable() or be.count("\ufffd") <= le.count("\ufffd") else le
    return body.decode("utf-8", "replace").replace("\x00", "")


def _exposure(sub: Any) -> str:
    parts = []
    try:
        t = float(sub[_EXPOSURE]) if _EXPOSURE in sub else 0.0
        if t > 0:
            parts.append(f"1/{round(1 / t)} s" if t < 1 else f"{t:g} s")
        if _FNUMBER in sub and float(sub[_FNUMBER]) > 0:
            parts.append(f"f/{float(sub[_FNUMBER]):.1f}")
        iso = sub.get(_ISO)
        if iso:
            parts.append(f"ISO {iso[0] if isinstance(iso, tuple) else iso}")
    except (TypeError, ValueError, ZeroDivisionError):
        pass
    return ", ".join(parts)


_COMFY_EXIF = re.compile(r"\s*(workflow|prompt)\s*:\s*[{\[]", re.IGNORECASE)


def _exif_items(exif: Image.Exif | None) -> list[EvidenceItem]:
    if exif is None or not len(exif):
        return []
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:  # noqa: BLE001 -- a broken sub-IFD: read what the main one has
        sub = {}
    make, model, software = _str(exif.get(_MAKE)), _str(exif.get(_MODEL)), _str(exif.get(_SOFTWARE))
    out = []
    g = match_tool(software) if software else None
    if g:
        out.append(
            _item("exif", g[1], "asserted", f"Software: {software}", f"exif-software:{g[0]}")
        )
    for name, text in (
        ("ImageDescription", _str(exif.get(_DESCRIPTION))),
        ("UserComment", _user_comment(sub.get(_USER_COMMENT))),
    ):
        if text and (f := match_free_text(text)):
            tag = f"exif-{name.lower()}:{f[0]}"
            out.append(_item("exif", "ai-generated", "asserted", f"{name} holds {f[1]}", tag))
    for name, text in (("Make", make), ("Model", model)):
        if text and _COMFY_EXIF.match(text):
            # ComfyUI's WebP/JPEG saver writes `workflow:{json}` into Make and `prompt:{json}`
            # into Model: a generator's workflow, not a camera
            key = text.split(":", 1)[0].strip().lower()
            out.append(
                _item(
                    "exif",
                    "ai-generated",
                    "asserted",
                    f"{name} holds a ComfyUI {key}",
                    f"exif-{name.lower()}:comfyui",
                )
            )
            make, model = ("", model) if name == "Make" else (make, "")
    if make or model:
        camera = model if make and model.lower().startswith(make.lower()) else f"{make} {model}"
        extra = [
            x for x in (_exposure(sub), f"software {software}" if software and not g else "") if x
        ]
        out.append(
            _item("exif", "camera", "weak", "; ".join([camera.strip(), *extra]), "exif:camera")
        )
    elif software and not g:
        out.append(_item("exif", "software", "weak", f"Software: {software}", "exif:software"))
    return out


def _load_exif(raw: bytes | None) -> Image.Exif | None:
    if not raw:
        return None
    exif = Image.Exif()
    exif.load(raw)
    return exif


def _pillow_exif(fp: IO[bytes]) -> Image.Exif | None:
    """EXIF of a non-PNG image through Pillow's lazy open (headers only, pixels not decoded)."""
    fp.seek(0)
    with Image.open(fp) as im:
        if im.info.get("exif"):
            return _load_exif(im.info["exif"])
        if im.format == "TIFF":  # tags are read with the header
            return im.getexif()
    return None


# ---- reading a file ------------------------------------------------------------------------------


def _guard(fn, *args) -> list[EvidenceItem]:
    """Run one reader; a hostile file that breaks it yields nothing from that reader (and no
    warnings from Pillow about its corrupt EXIF: the pixel path reports a bad image)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)
    except Exception:  # noqa: BLE001 -- metadata is optional evidence, never a reason to fail
        return []


def _from_stream(fp: IO[bytes]) -> list[EvidenceItem]:
    fp.seek(0)
    mime = _sniff(fp.read(32))
    c2pa_label, hits, truncated = _scan(fp)
    items: list[EvidenceItem] = []
    if c2pa_label:
        from fakescope.provenance.c2pa import c2pa_items

        items += _guard(c2pa_items, fp, mime)
    if mime == "image/png":
        texts, exif_raw = _png_chunks(fp)
        for key, text, _ in texts:
            if key == "XML:com.adobe.xmp":  # maybe compressed: invisible to the byte scan
                _xmp_hits(text.encode("utf-8"), hits)
        items += _text_items(texts)
        items += _guard(lambda: _exif_items(_load_exif(exif_raw)))
    else:
        items += _guard(lambda: _exif_items(_pillow_exif(fp)))
    items += _xmp_items(hits)
    if truncated:
        items.append(
            _item(
                "xmp",
                "unknown",
                "none",
                f"only the first {MAX_SCAN >> 20} MiB scanned",
                "xmp:partial-scan",
            )
        )
    return items


def _from_pil(im: Image.Image) -> list[EvidenceItem]:
    """What Pillow kept of an opened image: its `info` and EXIF (no C2PA: the bytes are gone)."""
    info = im.info
    texts = [
        (k, v[:TEXT_HEAD], len(v))
        for k, v in info.items()
        if isinstance(k, str) and isinstance(v, str)
    ]
    hits: dict[str, list[str]] = {}
    for k in ("xmp", "XML:com.adobe.xmp"):
        v = info.get(k)
        if isinstance(v, str):
            v = v.encode("utf-8")
        if isinstance(v, bytes):
            _xmp_hits(v[:MAX_SCAN], hits)
    items = _text_items(texts)
    if info.get("exif"):
        items += _guard(lambda: _exif_items(_load_exif(info["exif"])))
    elif im.format != "PNG":  # PNG's getexif() would decode the pixels to look after them
        items += _guard(lambda: _exif_items(im.getexif()))
    return items + _xmp_items(hits)


def read_evidence(src: str | os.PathLike | bytes | Image.Image) -> Evidence:
    """All the provenance evidence `src` (a path, the file's bytes, or a PIL image) carries.
    Never raises; a missing or unreadable file has no evidence."""
    items: list[EvidenceItem] = []
    try:
        if isinstance(src, Image.Image):
            items = _from_pil(src)
        elif isinstance(src, bytes | bytearray | memoryview):
            items = _from_stream(io.BytesIO(bytes(src)))
        elif Path(src).is_file():
            with open(src, "rb") as fp:
                items = _from_stream(fp)
    except Exception:  # noqa: BLE001 -- see _guard
        items = []
    unique = list(dict.fromkeys(items))
    # a reader's item of a source not (yet) in SOURCES sorts last instead of raising: this
    # function promises never to raise, and one reader must not abort a whole run
    order = {s: i for i, s in enumerate(SOURCES)}
    return Evidence(sorted(unique, key=lambda i: order.get(i.source, len(order))))
