#!/usr/bin/env bash
# Install everything the tests need (Debian packages when missing, Python packages), then run
# the linter and the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
command -v xmlsec1 >/dev/null 2>&1 || missing+=(xmlsec1)
# the shared store's tests start a throwaway PostgreSQL cluster (initdb, pg_ctl: Debian keeps
# them out of PATH); in CI they must run, so the server is installed when missing
command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
  || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m ruff check mcn_cli tests bench
python3 -m pytest "$@"
