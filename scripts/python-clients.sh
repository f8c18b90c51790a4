#!/usr/bin/env bash
# Sets up the Python clients (clients/python): a project-local virtual
# environment with the pinned requirements, then checks that every client
# file compiles and that aiohttp imports. Idempotent: a second run only
# checks. Usage: bash scripts/python-clients.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=clients/python
venv=$dir/.venv
python=${PYTHON:-python3}

if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: $python not found: install Python 3.11 or newer (Debian: apt-get install python3 python3-venv), or set PYTHON=/path/to/python3" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "error: $("$python" --version 2>&1) is too old: the clients use asyncio.timeout (Python 3.11 or newer); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with $("$python" --version 2>&1)"
  if ! "$python" -m venv "$venv"; then
    echo "error: could not create a virtual environment: install the venv module (Debian: apt-get install python3-venv) and run: bash scripts/python-clients.sh" >&2
    rm -rf "$venv"
    exit 1
  fi
fi
stamp=$venv/.requirements
if ! cmp -s "$dir/requirements.txt" "$stamp"; then
  echo "installing $dir/requirements.txt into $venv (from PyPI)"
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$dir/requirements.txt"; then
    echo "error: pip could not install $dir/requirements.txt (no access to PyPI?); fix that and run: bash scripts/python-clients.sh" >&2
    exit 1
  fi
  cp "$dir/requirements.txt" "$stamp"
fi
"$venv/bin/python" -m py_compile "$dir"/*.py
"$venv/bin/python" -c 'import aiohttp' 
echo "python clients ready: $venv/bin/python ($("$venv/bin/python" --version 2>&1), aiohttp $("$venv/bin/python" -c 'import aiohttp; print(aiohttp.__version__)'))"
echo "try: rates compare --scenario fanout --strategies tokio,pool,py-asyncio,py-threadpool"
