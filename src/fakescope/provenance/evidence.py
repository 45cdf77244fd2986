"""Evidence types, the combination rule and the marker table (the package docstring of
`fakescope.provenance` describes the sources, strengths and the rule)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import Any

FIELDS_EXTRA = ("provenance", "verdict_source")
SOURCES = ("c2pa", "iptc", "xmp", "png-text", "exif")
CLAIMS = ("ai-generated", "ai-composite", "ai-edited", "camera", "software", "unknown")
STRENGTHS = ("verified", "untrusted", "asserted", "weak", "invalid", "none")
# The rule: these claims, at these strengths, decide `fake`.
DECIDING_CLAIMS = ("ai-generated", "ai-composite")
DECIDING_STRENGTHS = ("verified", "untrusted", "asserted")
TEXT_HEAD = 64 << 10  # bytes of any one text field looked at


@dataclass(frozen=True)
class EvidenceItem:
    """One piece of evidence. `tag` is its token in the row's `provenance` field."""

    source: str  # c2pa | iptc | xmp | png-text | exif
    claim: str  # ai-generated | ai-composite | ai-edited | camera | software | unknown
    strength: str  # verified | untrusted | asserted | weak | invalid | none
    detail: str  # short human text: signer, claim generator, generator name, camera ...
    tag: str

    @property
    def decides(self) -> bool:
        return self.claim in DECIDING_CLAIMS and self.strength in DECIDING_STRENGTHS


@dataclass
class Evidence:
    items: list[EvidenceItem] = field(default_factory=list)

    def summary(self) -> str:
        """The row's `provenance` field: item tags joined by '; ' ('' when there are none)."""
        return "; ".join(dict.fromkeys(i.tag for i in self.items))

    def decisive(self) -> EvidenceItem | None:
        """The item that decides the verdict under the rule, strongest first; None: pixels do."""
        deciding = [i for i in self.items if i.decides]
        return min(deciding, key=lambda i: STRENGTHS.index(i.strength), default=None)

    def to_dict(self) -> dict[str, Any]:
        d = self.decisive()
        return {
            "summary": self.summary(),
            "decided_by": d.tag if d else "",
            "items": [asdict(i) for i in self.items],
        }


def combine(row: dict[str, Any], evidence: Evidence) -> dict[str, Any]:
    """A copy of a Detector row with `provenance` and `verdict_source` added, under the rule in
    the module docstring. `prob_fake` is always the pixel score; a row with an error passes
    through with empty provenance and verdict_source (nothing was decided)."""
    out = dict(row)
    if row.get("error"):
        out["provenance"] = out["verdict_source"] = ""
        return out
    out["provenance"] = evidence.summary()
    if evidence.decisive() is not None:
        out["label"], out["verdict_source"] = "fake", "metadata"
    else:
        out["verdict_source"] = "pixels"
    return out


# ---- the marker table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Markers:
    generators: tuple[tuple[str, str, re.Pattern[str]], ...]  # (id, claim, whole-word names)
    made_with: re.Pattern[str]  # "made with NAME" in free text
    png_text: dict[str, tuple[str, str, re.Pattern[str] | None]]  # key -> (id, frontend, require)
    settings_blocks: tuple[tuple[str, str, re.Pattern[str]], ...]  # (id, frontend, pattern)
    tool_keys: frozenset[str]
    free_text_keys: frozenset[str]
    source_types: dict[str, str]  # IPTC digital source type -> claim


def _words(names: Iterable[str]) -> str:
    alts = sorted((re.escape(n.lower()) for n in names), key=len, reverse=True)
    return r"(?<![\w.])(?:" + "|".join(alts) + r")(?![\w])"


@cache
def markers() -> Markers:
    """The marker table, loaded once from provenance_markers.json (package data)."""
    text = (
        resources.files("fakescope.provenance")
        .joinpath("provenance_markers.json")
        .read_text("utf-8")
    )
    raw = json.loads(text)
    gens = []
    for g in raw["generators"]:
        if g["claim"] not in CLAIMS:
            raise ValueError(f"provenance_markers.json: bad claim {g['claim']!r} for {g['id']}")
        gens.append((g["id"], g["claim"], re.compile(_words(g["names"]), re.I)))
    every = [n for g in raw["generators"] for n in g["names"]]
    made_with = re.compile(
        r"\b(?:made|generated|created|rendered)\s+(?:with|by|using|in)\s+(?:the\s+)?"
        r"(?P<name>" + _words(every) + ")",
        re.I,
    )
    png = {
        p["key"]: (
            p["generator"],
            p["frontend"],
            re.compile(p["require"]) if "require" in p else None,
        )
        for p in raw["png_text"]
    }
    blocks = tuple(
        (b["generator"], b["frontend"], re.compile(b["pattern"])) for b in raw["settings_blocks"]
    )
    for claim in raw["digital_source_types"].values():
        if claim not in CLAIMS:
            raise ValueError(f"provenance_markers.json: bad claim {claim!r}")
    return Markers(
        tuple(gens),
        made_with,
        png,
        blocks,
        frozenset(raw["tool_keys"]),
        frozenset(raw["free_text_keys"]),
        dict(raw["digital_source_types"]),
    )


def match_tool(name: str) -> tuple[str, str] | None:
    """(generator id, claim) when a field that names a tool names a known generator."""
    for gid, claim, rx in markers().generators:
        if rx.search(name[:1000]):
            return gid, claim
    return None


def match_free_text(text: str) -> tuple[str, str] | None:
    """(generator id, how) when free text holds a generator's settings or 'made with NAME'."""
    m = markers()
    head = text[:TEXT_HEAD]
    for gid, frontend, rx in m.settings_blocks:
        if rx.search(head):
            return gid, frontend
    hit = m.made_with.search(head)
    if hit and (g := match_tool(hit.group("name"))):
        return g[0], f"'{_clip(hit.group(0), 60)}'"
    return None


# ---- helpers -----------------------------------------------------------------------------------


def _clip(s: str, n: int = 120) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", s.lower()).strip("-")[:40] or "unknown"


def _item(source: str, claim: str, strength: str, detail: str, tag: str) -> EvidenceItem:
    return EvidenceItem(source, claim, strength, _clip(detail, 240), tag.replace(";", ","))
