"""Execute a notebook top to bottom on this interpreter's kernel; `--save` writes its outputs
back (how `examples/quickstart.ipynb` got its saved outputs).

    python scripts/run_notebook.py examples/quickstart.ipynb --save

The kernel is this very interpreter (`sys.executable -m ipykernel_launcher`), not whatever
`python3` a Jupyter kernel spec names on PATH: in a fresh virtualenv (CI) that is the same, on a
developer's machine it may not be. The notebook runs in its own folder, as Jupyter runs it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

# what executing examples/quickstart.ipynb imports beyond the light install: the `notebook` extra
NEEDS = ("nbformat", "nbclient", "ipykernel", "pandas", "matplotlib", "sklearn", "pytorch_grad_cam")


def missing_modules(needs: tuple[str, ...] = NEEDS) -> list[str]:
    """The modules of the `notebook` extra this interpreter lacks (checked before running, so a
    user gets the extra's name instead of a traceback from the first cell that needs one)."""
    return [name for name in needs if importlib.util.find_spec(name) is None]


def run_notebook(path: str | os.PathLike, save: bool = False, timeout: int = 600):
    """The executed notebook (nbformat node); raises nbclient's CellExecutionError on a cell
    that fails."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "kernels" / "python3"
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
        )
        old = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([tmp, *([old] if old else [])])
        try:
            client = NotebookClient(
                nb,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent.resolve())}},
            )
            client.execute()
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old
    if save:
        _one_copy_per_picture(nb)
        nbformat.write(nb, path)
    return nb


def _one_copy_per_picture(nb) -> None:
    """A PIL image displays as both JPEG and PNG: keep the PNG only in the saved file (the
    notebook stays a few hundred KB smaller; Jupyter shows the PNG either way)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                data.pop("image/jpeg", None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("notebook")
    p.add_argument("--save", action="store_true", help="write the outputs into the notebook")
    args = p.parse_args()
    missing = missing_modules()
    if missing:
        sys.exit(
            "error: running a notebook needs the `notebook` extra (missing: "
            f"{', '.join(missing)}): pip install -e '.[notebook]'"
        )
    if not Path(args.notebook).is_file():
        sys.exit(f"error: no notebook at {args.notebook}")
    run_notebook(args.notebook, save=args.save)
    print(f"ran {args.notebook}" + (" (outputs saved)" if args.save else ""))


if __name__ == "__main__":
    main()
