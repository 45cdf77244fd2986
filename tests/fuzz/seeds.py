"""Valid files to mutate: every container format fakescope parses, each carrying metadata.

Small on purpose (a few KB): a mutation of a small file reaches the parsers' edge cases as
often as one of a big file, and costs less per input.
"""

from __future__ import annotations

import io
import tarfile
import zipfile

from PIL import Image, PngImagePlugin

from tests import provenance_files as pf


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_seeds() -> dict[str, bytes]:
    """Images with the metadata each reader looks for (EXIF, XMP, PNG text, eXIf, animation)."""
    px = pf.pixels(24, 20)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", pf.A1111[:120])
    info.add_text("workflow", '{"nodes": []}', zip=True)
    info.add_itxt("XML:com.adobe.xmp", pf.xmp_packet().decode(), zip=True)
    gif = [Image.new("P", (12, 10), c) for c in (1, 7)]
    exif = pf.camera_exif().tobytes()
    return {
        "exif_xmp.jpg": pf.encode(px, "JPEG", exif=exif, xmp=pf.xmp_packet(), quality=80),
        "a1111.jpg": pf.encode(
            pf.pixels(16, 16),
            "JPEG",
            exif=pf.exif(comment=b"UNICODE\0" + pf.A1111.encode("utf-16-be")).tobytes(),
        ),
        "text.png": _save(px, "PNG", pnginfo=info, exif=exif),
        "text_after_idat.png": pf.chunk_after_pixels_png(text=pf.A1111[:80]),
        "exif.webp": _save(px, "WEBP", exif=exif, xmp=pf.xmp_packet(), quality=70),
        "lossless.webp": _save(pf.pixels(8, 8), "WEBP", lossless=True),
        "anim.gif": _save(gif[0], "GIF", save_all=True, append_images=gif[1:], duration=50),
        "tags.tif": _save(px, "TIFF", tiffinfo={271: "Canon", 272: "EOS", 305: "Midjourney"}),
        "gray16.tif": _save(Image.new("I;16", (9, 7), 300), "TIFF"),
        "palette.bmp": _save(px.convert("P"), "BMP"),
    }


def c2pa_seeds() -> dict[str, bytes]:
    """C2PA-signed JPEG and PNG (throw-away CA), when the provenance extra is installed."""
    try:
        import c2pa  # noqa: F401
    except ImportError:
        return {}
    ca = pf.make_test_ca()
    jpg = pf.encode(pf.pixels(16, 16), "JPEG", quality=70)
    png = pf.encode(pf.pixels(12, 12), "PNG")
    return {
        "c2pa.jpg": pf.c2pa_signed(ca, jpg, "image/jpeg"),
        "c2pa.png": pf.c2pa_signed(ca, png, "image/png", "compositeWithTrainedAlgorithmicMedia"),
    }


def archive_seeds(images: dict[str, bytes]) -> dict[str, bytes]:
    """Zip and tar archives (plain and gzip) of a few images in class folders."""
    members = {
        "real/a.jpg": images["exif_xmp.jpg"],
        "fake/b.png": images["text.png"],
        "fake/c.webp": images["lossless.webp"],
        "notes.txt": b"not an image",
    }
    return {
        "set.zip": _zip(members),
        "set.tar": _tar(members),
        "set.tar.gz": _tar(members, "w:gz"),
    }


def photo_seed() -> dict[str, bytes]:
    """One photo-sized JPEG (over 256 px: the default model routes it to the photo model)."""
    return {"photo.jpg": pf.encode(pf.pixels(320, 240), "JPEG", exif=pf.camera_exif().tobytes())}


def all_seeds() -> dict[str, dict[str, bytes]]:
    """{"image": {...}, "archive": {...}, "photo": {...}}: the seed sets the targets draw from."""
    images = image_seeds() | c2pa_seeds()
    return {"image": images, "archive": archive_seeds(images), "photo": photo_seed()}
