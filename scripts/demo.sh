#!/usr/bin/env bash
# Install mcn and run its main job on the brochure's annex examples.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e .
mcn="$(python3 -c 'import shutil,sys,os; print(shutil.which("mcn", path=os.path.dirname(sys.executable)) or "mcn")')"

echo "\$ mcn check niss 85.07.30-033.28 17073003384"
"$mcn" check niss 85.07.30-033.28 17073003384
echo
echo "\$ mcn coverage --date 2011-12-25 --consulted 2011-12-25 --period 110/110:2011-01-01..2011-12-31 --period 110/110:2012-01-01..2012-12-31"
"$mcn" coverage --date 2011-12-25 --consulted 2011-12-25 \
  --period 110/110:2011-01-01..2011-12-31 --period 110/110:2012-01-01..2012-12-31
echo
echo "\$ mcn fallback --no-network --known --covered"
"$mcn" fallback --no-network --known --covered
