"""Errors that reach the user as one line, without a traceback."""


class FakescopeError(Exception):
    """A problem the user can fix (bad path, bad option, bad file); the CLI prints it plainly."""


class ImageError(FakescopeError):
    """One image could not be read; the message says why in a few words."""


def missing_extra(package: str, extra: str) -> FakescopeError:
    """The error for an optional dependency that is not installed."""
    return FakescopeError(
        f"this feature needs the '{package}' package: pip install 'fakescope[{extra}]'"
    )
