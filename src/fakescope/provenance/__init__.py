"""Provenance evidence: what an image file says about its own origin, read without decoding pixels.

Sources (each evidence item names one):

- ``c2pa``: C2PA Content Credentials (signed manifests; `fakescope.provenance.c2pa`, needs the
  `provenance` extra). Strength ``verified`` when the signature and content hashes check out and
  the signer chains to a trust anchor you configured (``$FAKESCOPE_C2PA_TRUST_ANCHORS``, a PEM
  file); ``untrusted`` when they check out but the signer is on no configured trust list (the
  signer's name is then only what its certificate says); ``invalid`` when validation fails (the
  file was changed after signing, or the manifest is malformed): never proof of anything.
- ``iptc``: the IPTC digital source type (``Iptc4xmpExt:DigitalSourceType``, e.g.
  ``trainedAlgorithmicMedia``) and ``AISystemUsed`` in the file's XMP. Strength ``asserted``.
- ``xmp``: ``xmp:CreatorTool`` naming a known generator (``asserted``) or other software (``weak``).
- ``png-text``: text chunks written by Stable Diffusion front-ends (AUTOMATIC1111 ``parameters``,
  ComfyUI ``prompt``/``workflow``, InvokeAI, Fooocus; NovelAI's ``Software``). ``asserted``.
- ``exif``: ``Software`` naming a generator, generator settings in ``UserComment`` /
  ``ImageDescription`` (``asserted``); camera make/model/exposure (``weak``: trivial to forge or to
  copy onto any file).

The known generators, front-end keys and source types are data: ``provenance_markers.json``.

The combination rule (`combine`): metadata decides ``fake`` when an item *declares AI generation*
(claim ``ai-generated`` or ``ai-composite``) and is not known to be broken (strength ``verified``,
``untrusted`` or ``asserted``). Nothing else decides: camera EXIF, capture credentials, AI edits,
invalid credentials all leave the verdict to the pixels. Why a declaration of AI is accepted even
unsigned: metadata is easily stripped but rarely forged to accuse one's own image, and a C2PA
signature adds nothing to such a self-declaration when the signer is unknown -- so an untrusted
credential counts exactly like an unsigned tag (never more). The price: someone who wants a real
photo dismissed can add an AI tag; the pixel score stays in ``prob_fake`` and the strength in the
report shows that only metadata decided.

Bounds: the file is read once in 1 MiB blocks (at most `MAX_SCAN` bytes) looking for XMP fields
and a C2PA label; PNG chunks are walked by their headers (pixel data is skipped, at most
`MAX_PNG_CHUNKS` chunks); any text field is looked at up to `TEXT_HEAD` bytes (compressed ones are
inflated only that far). `read_evidence` never raises: what cannot be read is left out or becomes
an item saying so.

Modules: `evidence` (the evidence types, the rule, the marker table), `readers` (the file readers
and `read_evidence`), `c2pa` (C2PA manifests, imported only for a file that has one). They import
each other directly, never this package, which only re-exports their public names.
"""

from __future__ import annotations

from fakescope.provenance.evidence import (
    CLAIMS,
    DECIDING_CLAIMS,
    DECIDING_STRENGTHS,
    FIELDS_EXTRA,
    SOURCES,
    STRENGTHS,
    TEXT_HEAD,
    Evidence,
    EvidenceItem,
    Markers,
    combine,
    markers,
    match_free_text,
    match_tool,
)
from fakescope.provenance.readers import MAX_SCAN, SCAN_BLOCK, read_evidence

__all__ = [
    "CLAIMS",
    "DECIDING_CLAIMS",
    "DECIDING_STRENGTHS",
    "FIELDS_EXTRA",
    "MAX_SCAN",
    "SCAN_BLOCK",
    "SOURCES",
    "STRENGTHS",
    "TEXT_HEAD",
    "Evidence",
    "EvidenceItem",
    "Markers",
    "combine",
    "markers",
    "match_free_text",
    "match_tool",
    "read_evidence",
]
