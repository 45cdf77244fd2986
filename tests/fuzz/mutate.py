"""Structure-aware mutations of valid files, reproducible from (seed, index).

Why not a coverage-guided fuzzer (atheris): the parsers that matter here are C (Pillow's
decoders, zlib) and Rust (c2pa-python), which atheris cannot see into without instrumented
builds; and a seeded loop needs no extra dependency and replays any input from its number.
The mutations know the containers' layouts, so that they reach past the first checksum or
signature check: they flip bits, cut files short, duplicate or drop whole PNG chunks, JPEG
segments, RIFF chunks and archive members, and write huge or off-by-a-little values into the
length fields those layouts declare (PNG chunk lengths, JPEG segment lengths, RIFF sizes, GIF
and TIFF dimensions and counts, zip sizes and offsets, tar size fields).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

Block = tuple[int, int]  # (offset, length) of a structural unit
Field = tuple[int, int, str]  # (offset, width in bytes, ">" or "<"; "o" for tar's octal)

INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def png_chunks(d: bytes) -> list[Block]:
    out, pos = [], 8
    while pos + 12 <= len(d) and len(out) < 512:
        (n,) = struct.unpack(">I", d[pos : pos + 4])
        out.append((pos, min(12 + n, len(d) - pos)))
        pos += 12 + n
    return out


def jpeg_segments(d: bytes) -> list[Block]:
    out, pos = [], 2
    while pos + 4 <= len(d) and d[pos] == 0xFF and len(out) < 512:
        marker = d[pos + 1]
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            out.append((pos, len(d) - pos - 2))
            break
        (n,) = struct.unpack(">H", d[pos + 2 : pos + 4])
        out.append((pos, 2 + n))
        pos += 2 + n
    return out


def riff_chunks(d: bytes) -> list[Block]:
    out, pos = [], 12
    while pos + 8 <= len(d) and len(out) < 512:
        (n,) = struct.unpack("<I", d[pos + 4 : pos + 8])
        out.append((pos, min(8 + n + (n & 1), len(d) - pos)))
        pos += 8 + n + (n & 1)
    return out


def tar_headers(d: bytes) -> list[Block]:
    """Each member: its 512-byte header and data blocks."""
    out, pos = [], 0
    while pos + 512 <= len(d) and d[pos + 257 : pos + 262] == b"ustar" and len(out) < 512:
        try:
            size = int(d[pos + 124 : pos + 136].strip(b"\0 ") or b"0", 8)
        except ValueError:
            break
        span = 512 + -(-size // 512) * 512
        out.append((pos, min(span, len(d) - pos)))
        pos += span
    return out


def zip_records(d: bytes) -> list[Block]:
    """Local file headers with their data (up to the next record)."""
    starts = [i for i in _find_all(d, b"PK\x03\x04")] + [len(d)]
    central = d.find(b"PK\x01\x02")
    ends = [min(s, central) if central > 0 else s for s in starts[1:]]
    return [(s, e - s) for s, e in zip(starts, ends, strict=False) if e > s]


def _find_all(d: bytes, needle: bytes, limit: int = 256) -> list[int]:
    out, i = [], d.find(needle)
    while i >= 0 and len(out) < limit:
        out.append(i)
        i = d.find(needle, i + 1)
    return out


def blocks(d: bytes) -> list[Block]:
    """The structural units of `d` by its format (empty when it has none we know)."""
    if d.startswith(b"\x89PNG"):
        return png_chunks(d)
    if d.startswith(b"\xff\xd8"):
        return jpeg_segments(d)
    if d[:4] == b"RIFF":
        return riff_chunks(d)
    if d.startswith(b"PK"):
        return zip_records(d)
    if d[257:262] == b"ustar":
        return tar_headers(d)
    return []


def length_fields(d: bytes) -> list[Field]:
    """Offsets of the size, length, count and offset fields the format declares."""
    out: list[Field] = []
    if d.startswith(b"\x89PNG"):
        out += [(o, 4, ">") for o, _ in png_chunks(d)]
        out += [(16, 4, ">"), (20, 4, ">")]  # IHDR width, height
    elif d.startswith(b"\xff\xd8"):
        for o, _ in jpeg_segments(d):
            out.append((o + 2, 2, ">"))
            if d[o + 1] in (0xC0, 0xC1, 0xC2):  # SOF: height, width
                out += [(o + 5, 2, ">"), (o + 7, 2, ">")]
            if d[o + 4 : o + 8] == b"Exif":
                out += _tiff_fields(d, o + 10)
    elif d[:4] == b"RIFF":
        out.append((4, 4, "<"))
        out += [(o + 4, 4, "<") for o, _ in riff_chunks(d)]
    elif d[:4] == b"GIF8":
        out += [(6, 2, "<"), (8, 2, "<")]
        out += [(i + 5, 2, "<") for i in _find_all(d, b"\x2c", 16)]  # image descriptor sizes
    elif d[:4] in (b"II*\x00", b"MM\x00*"):
        out += _tiff_fields(d, 0)
    elif d.startswith(b"PK"):
        for i in _find_all(d, b"PK\x03\x04"):
            out += [(i + 18, 4, "<"), (i + 22, 4, "<"), (i + 26, 2, "<"), (i + 28, 2, "<")]
        for i in _find_all(d, b"PK\x01\x02"):
            out += [(i + o, w, "<") for o, w in ((20, 4), (24, 4), (28, 2), (30, 2), (42, 4))]
        for i in _find_all(d, b"PK\x05\x06", 4):
            out += [(i + o, w, "<") for o, w in ((8, 2), (10, 2), (12, 4), (16, 4), (20, 2))]
    elif d[257:262] == b"ustar":
        out += [(o + 124, 12, "o") for o, _ in tar_headers(d)]
    return [f for f in out if f[0] + f[1] <= len(d)]


def _tiff_fields(d: bytes, base: int) -> list[Field]:
    """A TIFF header's first IFD offset, entry count, and each entry's count and value."""
    if d[base : base + 2] not in (b"II", b"MM"):
        return []
    e = "<" if d[base : base + 2] == b"II" else ">"
    out: list[Field] = [(base + 4, 4, e)]
    try:
        (ifd,) = struct.unpack(e + "I", d[base + 4 : base + 8])
        (n,) = struct.unpack(e + "H", d[base + ifd : base + ifd + 2])
    except struct.error:
        return out
    out.append((base + ifd, 2, e))
    for k in range(min(n, 64)):
        entry = base + ifd + 2 + 12 * k
        out += [(entry + 4, 4, e), (entry + 8, 4, e)]
    return out


# ---- mutations -------------------------------------------------------------------------------


def bit_flips(rng: random.Random, d: bytearray) -> None:
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(d))
        d[i] ^= 1 << rng.randrange(8)


def interesting_bytes(rng: random.Random, d: bytearray) -> None:
    width = rng.choice((1, 2, 4))
    if len(d) < width:
        return
    i = rng.randrange(len(d) - width + 1)
    v = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
    d[i : i + width] = v.to_bytes(width, rng.choice(("big", "little")))


def truncate(rng: random.Random, d: bytearray) -> None:
    del d[rng.randrange(len(d)) :]


def duplicate_block(rng: random.Random, d: bytearray) -> None:
    """Repeat a chunk/segment/member (some formats keep the last, some the first, some choke),
    sometimes many times (a file of 1,000 copies of one text chunk)."""
    bs = blocks(bytes(d)) or [_random_span(rng, d)]
    o, n = rng.choice(bs)
    times = rng.choice((1, 1, 2, 10, 1000)) if n < 4096 else 1
    d[o:o] = bytes(d[o : o + n]) * times


def drop_block(rng: random.Random, d: bytearray) -> None:
    bs = blocks(bytes(d)) or [_random_span(rng, d)]
    o, n = rng.choice(bs)
    del d[o : o + n]


def swap_blocks(rng: random.Random, d: bytearray) -> None:
    bs = blocks(bytes(d))
    if len(bs) < 2:
        return bit_flips(rng, d)
    (o1, n1), (o2, n2) = sorted(rng.sample(bs, 2))
    if o1 + n1 > o2:
        return None
    d[o1 : o2 + n2] = d[o2 : o2 + n2] + d[o1 + n1 : o2] + d[o1 : o1 + n1]
    return None


def huge_length(rng: random.Random, d: bytearray) -> None:
    """A declared size, length, count or offset set to a huge, zero or slightly wrong value."""
    fields = length_fields(bytes(d))
    if not fields:
        return interesting_bytes(rng, d)
    o, w, e = rng.choice(fields)
    if e == "o":  # tar: octal digits, or base-256 (GNU) for sizes over 8 GiB
        d[o : o + w] = rng.choice(
            (b"77777777777\0", b"00000000000\0", b"\x80" + b"\xff" * 11, b"1" * 12, b"-1\0")
        ).ljust(w, b"\0")[:w]
        return None
    old = int.from_bytes(d[o : o + w], "big" if e == ">" else "little")
    top = (1 << (8 * w)) - 1
    v = rng.choice((top, top - rng.randrange(16), top >> 1, 0, old + rng.randint(-8, 8), old * 16))
    d[o : o + w] = (v & top).to_bytes(w, "big" if e == ">" else "little")
    return None


def insert_random(rng: random.Random, d: bytearray) -> None:
    i = rng.randrange(len(d) + 1)
    d[i:i] = rng.randbytes(rng.choice((1, 4, 64, 1024)))


def _random_span(rng: random.Random, d: bytearray) -> Block:
    o = rng.randrange(len(d))
    return o, rng.randint(1, min(256, len(d) - o))


MUTATIONS: dict[str, Callable[[random.Random, bytearray], None]] = {
    "bit_flips": bit_flips,
    "interesting_bytes": interesting_bytes,
    "truncate": truncate,
    "duplicate_block": duplicate_block,
    "drop_block": drop_block,
    "swap_blocks": swap_blocks,
    "huge_length": huge_length,
    "insert_random": insert_random,
}
_WEIGHTS = {"bit_flips": 3, "huge_length": 3, "duplicate_block": 2, "truncate": 1}


def mutate(seed_bytes: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """One to three stacked mutations of `seed_bytes`; returns the bytes and what was done."""
    d = bytearray(seed_bytes)
    names = list(MUTATIONS)
    weights = [_WEIGHTS.get(n, 1) for n in names]
    done = []
    for name in rng.choices(names, weights, k=rng.choice((1, 1, 2, 3))):
        if not d:
            break
        MUTATIONS[name](rng, d)
        done.append(name)
    return bytes(d), done
