#!/usr/bin/env bash
# Print the absolute path of a CPython <version> interpreter (the Lambda
# runtime's Python), or nothing when there is none.
#
#   proving-ground/scripts/runtime_python.sh 3.13              search: python3.13 on PATH, then pyenv
#   proving-ground/scripts/runtime_python.sh 3.13 CANDIDATE    check CANDIDATE only (an explicit
#                                               choice that does not work means none)
#
# A candidate counts only if it runs and is CPython <version>: a pyenv shim for
# a version that is installed but not selected fails to run and is skipped.
set -u
want=${1:?usage: runtime_python.sh VERSION [CANDIDATE]}
candidate=${2:-}

check() {
	"$1" -c "import sys
ok = sys.implementation.name == 'cpython' and '%d.%d' % sys.version_info[:2] == '$want'
print(sys.executable) if ok else sys.exit(1)" 2>/dev/null
}

if [ -n "$candidate" ]; then
	check "$candidate"
	exit 0
fi
if command -v "python$want" >/dev/null 2>&1 && check "python$want"; then
	exit 0
fi
root=$( { command -v pyenv >/dev/null 2>&1 && pyenv root 2>/dev/null; } || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for python in $(ls -d "$root"/versions/"$want"*/bin/"python$want" 2>/dev/null | sort -rV); do
	check "$python" && exit 0
done
exit 0
