# Shared by scripts/test, scripts/demo and scripts/bench (sourced, not run): a clean pip
# environment and a project venv that is rebuilt only when its inputs change.

# The repository root, whatever the caller's working directory.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { printf 'error: %s\n' "$1" >&2; [ -n "${2:-}" ] && printf 'hint: %s\n' "$2" >&2; exit "${3:-2}"; }

# pip reads a global configuration on many machines (extra indexes, constraints, find-links):
# ignore it and every PIP_* variable that says what to install or from where. Only the ones
# that say how to reach the network (certificates, proxy, timeout, retries) are kept.
clean_pip_env() {
  local var
  for var in $(compgen -e | grep '^PIP_' || true); do
    case $var in
      PIP_CERT|PIP_CLIENT_CERT|PIP_PROXY|PIP_DEFAULT_TIMEOUT|PIP_TIMEOUT|PIP_RETRIES) ;;
      *) unset "$var" ;;
    esac
  done
  export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
  unset VIRTUAL_ENV CONDA_PREFIX PYTHONPATH PYTHONHOME
}

# The interpreter that builds the venvs: $PYTHON, else python3. Must be 3.10 or newer.
find_python() {
  local py="${PYTHON:-python3}"
  command -v "$py" >/dev/null 2>&1 || die "no '$py' on PATH: lockenv needs Python 3.10 or newer" \
    "install Python 3.10+ or point PYTHON at one (PYTHON=/path/to/python3.12 $0)"
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    local version
    version="$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)" || version="unknown"
    die "'$py' is Python $version; lockenv needs 3.10 or newer" \
      "install Python 3.10+ or point PYTHON at one (PYTHON=/path/to/python3.12 $0)"
  fi
  "$py" -c 'import venv, ensurepip' 2>/dev/null ||
    die "'$py' cannot create virtual environments (the venv/ensurepip modules are missing)" \
      "install them, e.g. 'apt install python3-venv' on Debian/Ubuntu"
  PY="$py"
}

# ensure_venv DIR SPEC: DIR holds an editable lockenv installed as SPEC (e.g. ".[test]").
# Rebuilt from scratch when pyproject.toml, SPEC or the interpreter changed, or when a previous
# build did not finish (the stamp is written last).
ensure_venv() {
  local dir="$1" spec="$2" key stamp="$1/.lockenv-inputs"
  find_python
  mkdir -p "$(dirname "$dir")"
  if command -v flock >/dev/null 2>&1; then   # two runs at once: the second waits for the first
    exec 9>"$dir.lock"
    flock 9
  fi
  key="$("$PY" - "$ROOT/pyproject.toml" "$spec" <<'PYEOF'
import hashlib, sys
h = hashlib.sha256(open(sys.argv[1], "rb").read())
h.update(sys.argv[2].encode())
h.update(sys.version.encode() + sys.prefix.encode())
print(h.hexdigest())
PYEOF
)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -x "$dir/bin/python" ]; then
    return 0
  fi
  echo "Setting up $dir (lockenv${spec#.} in a fresh venv)..." >&2
  rm -rf "$dir"
  "$PY" -m venv "$dir" || die "could not create the venv $dir"
  "$dir/bin/python" -m pip install -q --upgrade pip ||
    die "could not upgrade pip in $dir" "check the network connection to PyPI" 1
  (cd "$ROOT" && "$dir/bin/python" -m pip install -q -e "$spec") ||
    die "could not install lockenv$spec into $dir" "check the network connection to PyPI" 1
  printf '%s\n' "$key" >"$stamp"
}
