#!/usr/bin/env bash
# Download and install size of a set of pip requirements, as the README quotes them.
#
#   bash scripts/install_size.sh 'torch==2.14.1 torchvision==0.29.1' [--project]
#
# Downloads the wheels into a fresh folder (download size = that folder), installs them into a
# fresh virtualenv from that folder only (install size = the venv minus an empty venv), and with
# --project then installs this project with every extra on top (`pip install -e ".[all]"`) and
# reports the venv again. Needs the network or a local package mirror for the requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
reqs=$1
project=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

mb() { du -sm "$1" | cut -f1; }

python3 -m venv "$work/empty"
# shellcheck disable=SC2086
python3 -m pip download -q -d "$work/wheels" $reqs
python3 -m venv "$work/venv"
# shellcheck disable=SC2086
"$work/venv/bin/pip" install -q --no-index --find-links "$work/wheels" $reqs
"$work/venv/bin/python" -c "import torch; print('installed torch', torch.__version__)"
echo "requirements: $reqs"
echo "download: $(mb "$work/wheels") MB in $(find "$work/wheels" -name '*.whl' | wc -l) wheels"
echo "installed: $(($(mb "$work/venv") - $(mb "$work/empty"))) MB (venv $(mb "$work/venv") MB," \
    "an empty venv $(mb "$work/empty") MB)"
if [ "$project" = "--project" ]; then
    "$work/venv/bin/pip" install -q -e ".[all]"
    echo "with fakescope[all]: $(($(mb "$work/venv") - $(mb "$work/empty"))) MB installed"
fi
