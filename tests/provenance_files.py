"""Real files carrying provenance metadata, built the way the tools that make them write it.

- PNG text chunks as AUTOMATIC1111 (`parameters`) and ComfyUI (`prompt`, `workflow`) write them;
- JPEG with an XMP packet holding `Iptc4xmpExt:DigitalSourceType`;
- EXIF with a generator in `Software`, with a camera's make/model/exposure, and AUTOMATIC1111's
  settings in `UserComment` (its JPEG/WebP output);
- C2PA Content Credentials signed with c2pa-python's own Builder and a signer callback, under a
  throw-away certificate chain (root CA -> signing certificate) made here with `cryptography`.
"""

from __future__ import annotations

import datetime
import io
import json
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, PngImagePlugin
from PIL.TiffImagePlugin import IFDRational

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
A1111 = (
    "a photo of a cat on a sofa, soft light\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 64x64, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.9.4"
)
COMFY_PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 8.0}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
}
COMFY_WORKFLOW = {"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}], "links": []}


def pixels(w: int = 64, h: int = 64, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8))


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def a1111_png(prompt: str = A1111) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", prompt)  # tEXt, or iTXt when not Latin-1 (as A1111 saves it)
    return encode(pixels(), "PNG", pnginfo=info)


def comfyui_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(COMFY_PROMPT))
    info.add_text("workflow", json.dumps(COMFY_WORKFLOW), zip=True)  # a zTXt/iTXt compressed
    return encode(pixels(seed=1), "PNG", pnginfo=info)


def novelai_png() -> bytes:
    """NovelAI names itself and its model in `Software` and `Source` text chunks."""
    info = PngImagePlugin.PngInfo()
    for k, v in (
        ("Title", "AI generated image"),
        ("Description", "a cat on a sofa"),
        ("Software", "NovelAI"),
        ("Source", "Stable Diffusion XL C1E1DE52"),
        ("Comment", json.dumps({"steps": 28, "sampler": "k_euler_ancestral", "scale": 5})),
    ):
        info.add_text(k, v)
    return encode(pixels(seed=5), "PNG", pnginfo=info)


def chunk_after_pixels_png(key: str = "parameters", text: str = A1111) -> bytes:
    """A tEXt chunk after IDAT (legal; some tools append metadata there)."""
    data = encode(pixels(seed=2), "PNG")
    iend = data.rindex(b"IEND") - 4
    return (
        data[:iend]
        + png_chunk(b"tEXt", key.encode() + b"\0" + text.encode("latin-1"))
        + data[iend:]
    )


def xmp_packet(source_type: str = "trainedAlgorithmicMedia", creator_tool: str = "") -> bytes:
    tool = f"<xmp:CreatorTool>{creator_tool}</xmp:CreatorTool>" if creator_tool else ""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        f"<Iptc4xmpExt:DigitalSourceType>{IPTC}{source_type}</Iptc4xmpExt:DigitalSourceType>{tool}"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def xmp_jpeg(source_type: str = "trainedAlgorithmicMedia", creator_tool: str = "") -> bytes:
    return encode(pixels(seed=3), "JPEG", xmp=xmp_packet(source_type, creator_tool))


def exif(**tags) -> Image.Exif:
    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    for tag, value in tags.items():
        code = {"make": 0x010F, "model": 0x0110, "software": 0x0131, "description": 0x010E}.get(tag)
        if code:
            exif[code] = value
        else:
            sub[{"exposure": 0x829A, "fnumber": 0x829D, "iso": 0x8827, "comment": 0x9286}[tag]] = (
                value
            )
    return exif


def exif_jpeg(**tags) -> bytes:
    return encode(pixels(seed=4), "JPEG", exif=exif(**tags).tobytes())


def camera_exif() -> Image.Exif:
    return exif(
        make="Canon",
        model="Canon EOS 5D Mark IV",
        software="Firmware Version 1.2.0",
        exposure=IFDRational(1, 200),
        fnumber=IFDRational(8, 1),
        iso=100,
    )


def camera_jpeg() -> bytes:
    return encode(pixels(seed=4), "JPEG", exif=camera_exif().tobytes())


def generator_software_jpeg(software: str = "Midjourney") -> bytes:
    return exif_jpeg(software=software)


def a1111_jpeg() -> bytes:
    """AUTOMATIC1111's JPEG/WebP output: its settings in EXIF UserComment, UTF-16 ('UNICODE')."""
    return exif_jpeg(comment=b"UNICODE\0" + A1111.encode("utf-16-be"))


# ---- C2PA --------------------------------------------------------------------------------------


@dataclass
class ThrowawayCA:
    """A throw-away root CA and a signing certificate it issued (ES256)."""

    root_pem: str
    chain_pem: str  # signing certificate, then the root
    key: object

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


def make_test_ca(org: str = "Example Generator Inc") -> ThrowawayCA:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str, o: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
            ]
        )

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=not sign,
            crl_sign=not sign,
            encipher_only=False,
            decipher_only=False,
        )

    now = datetime.datetime.now(datetime.UTC)
    days = datetime.timedelta(days=1)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = name("fakescope test root CA", "fakescope tests")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - days)
        .not_valid_after(now + 30 * days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("fakescope test signer", org))
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - days)
        .not_valid_after(now + 30 * days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    root_pem = root.public_bytes(pem).decode()
    return ThrowawayCA(root_pem, leaf.public_bytes(pem).decode() + root_pem, key)


def c2pa_signed(
    ca: ThrowawayCA,
    image: bytes,
    mime: str,
    source_type: str = "trainedAlgorithmicMedia",
    action: str = "c2pa.created",
    generator: str = "Example Image Generator",
) -> bytes:
    """`image` with a C2PA manifest whose one action carries `source_type`, signed by `ca`."""
    import c2pa

    manifest = {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": "test image",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": action,
                            "digitalSourceType": IPTC + source_type,
                            "softwareAgent": {"name": generator},
                        }
                    ]
                },
            }
        ],
    }
    settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    signer = c2pa.Signer.from_callback(ca.sign, c2pa.C2paSigningAlg.ES256, ca.chain_pem, None)
    out = io.BytesIO()
    with signer, c2pa.Builder(manifest, c2pa.Context(settings)) as builder:
        builder.sign(signer, mime, io.BytesIO(image), out)
    return out.getvalue()


def tamper(data: bytes) -> bytes:
    """Flip one byte near the end (pixel data, after the manifest): the hashes no longer match."""
    b = bytearray(data)
    b[-20] ^= 0xFF
    return bytes(b)
