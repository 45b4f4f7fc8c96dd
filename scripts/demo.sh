#!/usr/bin/env bash
# Install mcn and run its main job against the built-in sandbox: set it up, log in with the
# sandbox eID (SoftHSM2 when installed, else the personal fallback certificate), consult.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e .
mcn="$(python3 -c 'import shutil,sys,os; print(shutil.which("mcn", path=os.path.dirname(sys.executable)) or "mcn")')"
"$mcn" demo
