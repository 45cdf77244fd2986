"""Errors that reach the user as one line, without a traceback."""

import importlib.util


class FakescopeError(Exception):
    """A problem the user can fix (bad path, bad option, bad file); the CLI prints it plainly."""


class ImageError(FakescopeError):
    """One image could not be read; the message says why in a few words."""


def missing_extra(package: str, extra: str) -> FakescopeError:
    """The error for an optional dependency that is not installed: it names the extra to
    install (one step for everything the feature needs), not the side package that failed."""
    return FakescopeError(
        f"this needs the '{extra}' extra ({package} is one of its packages): "
        f"pip install 'fakescope[{extra}]'"
    )


def require_extra(extra: str, modules: dict[str, str]) -> None:
    """Raise one `FakescopeError` naming `extra` when any of `modules` (module -> package) is
    missing, so a user installs everything a feature needs in one step, not one package per
    attempt. Checks without importing (a blocked module, `sys.modules[m] = None`, counts as
    missing)."""
    missing = []
    for module, package in modules.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ValueError, ImportError):
            found = False
        if not found:
            missing.append(package)
    if missing:
        raise FakescopeError(
            f"this needs the '{extra}' extra ({', '.join(missing)} not installed): "
            f"pip install 'fakescope[{extra}]'"
        )
