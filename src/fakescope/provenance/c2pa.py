"""C2PA Content Credentials as provenance evidence (the `provenance` extra: c2pa-python).

Validation is c2pa-python's (c2pa-rs): the claim signature, the hashes binding the manifest to
the file's bytes, and the signer's certificate chain. Its three states map to our strengths:
``Trusted`` -> ``verified``; ``Valid`` (intact, but the signer chains to no trust anchor) ->
``untrusted``; ``Invalid`` -> ``invalid``. No trust list ships with fakescope and nothing is
fetched at run time (remote manifests and OCSP are switched off), so every credential is
``untrusted`` unless you point ``$FAKESCOPE_C2PA_TRUST_ANCHORS`` at a PEM file of root
certificates (for example the C2PA trust list, downloaded by you).

What a manifest claims comes from its actions: the IPTC ``digitalSourceType`` of each action
(``trainedAlgorithmicMedia`` on ``c2pa.created`` is AI generation; on any other action, or
``compositeWithTrainedAlgorithmicMedia``, an AI composite), else a known generator named as the
action's software agent or the claim generator. AI found only in an ingredient's manifest makes
the image an AI composite.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import IO, Any

from fakescope.errors import missing_extra
from fakescope.provenance.evidence import (
    CLAIMS,
    EvidenceItem,
    _clip,
    _item,
    markers,
    match_tool,
)

TRUST_ENV = "FAKESCOPE_C2PA_TRUST_ANCHORS"
_STRENGTH = {"Trusted": "verified", "Valid": "untrusted", "Invalid": "invalid"}
_STATUS = {
    "verified": "signature valid, signer trusted",
    "untrusted": "signature valid, signer on no configured trust list",
}
_lock = threading.Lock()
_contexts: dict[str, tuple[Any, str]] = {}


def _context(c2pa) -> tuple[Any, str]:
    """A shared reading Context (no network; trust anchors from $FAKESCOPE_C2PA_TRUST_ANCHORS)
    and a note when that file could not be used."""
    pem_path = os.environ.get(TRUST_ENV, "")
    with _lock:
        if pem_path not in _contexts:
            cfg: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
            note = ""
            if pem_path:
                try:
                    cfg["trust"] = {"trust_anchors": Path(pem_path).read_text("ascii")}
                except (OSError, UnicodeError) as e:
                    note = f"; trust anchors {pem_path} unreadable ({e.__class__.__name__})"
            _contexts[pem_path] = (c2pa.Context(c2pa.Settings.from_dict(cfg)), note)
        return _contexts[pem_path]


def _agent(action: dict) -> str:
    a = action.get("softwareAgent") or ""
    return str(a.get("name", "")) if isinstance(a, dict) else str(a)


def _generator(manifest: dict) -> str:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict):
        return " ".join(str(info[0].get(k, "")) for k in ("name", "version")).strip()
    return str(manifest.get("claim_generator") or "")


def manifest_claim(manifest: dict) -> tuple[str, str]:
    """(claim, how) for one manifest, the strongest claim its actions or generator make."""
    types = markers().source_types
    best, how = "unknown", ""
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in ((assertion.get("data") or {}).get("actions") or [])[:200]:
            if not isinstance(action, dict):
                continue
            name, agent = str(action.get("action", "")), _agent(action)
            dst = str(action.get("digitalSourceType") or "").rstrip("/").rsplit("/", 1)[-1]
            claim = types.get(dst, "unknown") if dst else "software"
            if claim == "software" and agent and (g := match_tool(agent)):
                claim = g[1]
            if claim == "ai-generated" and name != "c2pa.created":
                claim = "ai-composite"
            if CLAIMS.index(claim) < CLAIMS.index(best):
                best = claim
                how = " ".join(x for x in (name, dst, f"by {agent}" if agent else "") if x)
    gen = _generator(manifest)
    if CLAIMS.index(best) > CLAIMS.index("ai-edited") and gen and (g := match_tool(gen)):
        best, how = g[1], f"claim generator {gen}"
    return best, how


def _failures(store: dict) -> list[str]:
    active = (store.get("validation_results") or {}).get("activeManifest") or {}
    codes = [f.get("code", "") for f in active.get("failure") or [] if isinstance(f, dict)]
    codes += [
        s.get("code", "") for s in store.get("validation_status") or [] if isinstance(s, dict)
    ]
    return [c for c in dict.fromkeys(codes) if c]


def store_item(store: dict, note: str = "") -> EvidenceItem:
    """The evidence item for a manifest store (c2pa-python's `Reader.json()`, parsed)."""
    manifests = store.get("manifests") or {}
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) or {}
    failures = _failures(store)
    state = store.get("validation_state")
    if state not in _STRENGTH:
        bad = [c for c in failures if c != "signingCredential.untrusted"]
        state = "Invalid" if bad else "Valid"
    strength = _STRENGTH[state]
    claim, how = manifest_claim(active)
    if claim not in ("ai-generated", "ai-composite"):
        for label, m in manifests.items():
            c, h = manifest_claim(m) if label != active_label else ("unknown", "")
            if c in ("ai-generated", "ai-composite"):
                claim, how = "ai-composite", f"ingredient '{_clip(m.get('title', label), 40)}': {h}"
                break
    sig = active.get("signature_info") or {}
    who = _clip(sig.get("issuer") or sig.get("common_name") or "unknown signer", 48)
    bad = [c for c in failures if c != "signingCredential.untrusted"]
    status = _STATUS.get(strength) or "validation failed: " + (", ".join(bad[:3]) or "unknown")
    cn = sig.get("common_name")
    parts = [f"signed by {who}" + (f" ({_clip(cn, 48)})" if cn and cn != who else "")]
    parts.append(status + note)
    if gen := _generator(active):
        parts.append(f"claim generator {gen}")
    if how:
        parts.append(how)
    return _item("c2pa", claim, strength, "; ".join(parts), f"c2pa:{claim} ({who}, {strength})")


def c2pa_items(fp: IO[bytes], mime: str) -> list[EvidenceItem]:
    """The C2PA evidence of a file that mentions 'c2pa' (its bytes are in `fp`)."""
    try:
        import c2pa
    except ImportError:
        hint = missing_extra("c2pa-python", "provenance")
        return [
            _item(
                "c2pa",
                "unknown",
                "none",
                f"the file may carry Content Credentials; {hint}",
                "c2pa:unread",
            )
        ]
    ctx, note = _context(c2pa)
    fp.seek(0)
    try:
        reader = c2pa.Reader.try_create(mime or None, fp, None, ctx)
        if reader is None:
            return []
        with reader:
            store = json.loads(reader.json())
    except c2pa.C2paError.NotSupported:
        return []
    except Exception as e:  # noqa: BLE001 -- a malformed manifest is evidence of nothing
        msg = _clip(str(e) or e.__class__.__name__, 100)
        return [_item("c2pa", "unknown", "invalid", f"manifest unreadable: {msg}", "c2pa:invalid")]
    return [store_item(store, note)]
