#!/usr/bin/env bash
# Builds the Matrix homeserver Dendrite (version pinned in tools/dendrite/go.mod) into build/bin:
# dendrite, create-account, generate-keys, generate-config. It is a tool of the local run and the
# end-to-end tests, kept outside the project's module graph. Binaries that exist are reused; delete
# them (or run `make clean`) to rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/build/bin"
tools=(dendrite create-account generate-keys generate-config)
missing() {
  for t in "${tools[@]}"; do [[ -x "$bin/$t" ]] || return 0; done
  return 1
}
missing || exit 0
# One build at a time (.ci/run starts one early in the background; make test waits for it here).
mkdir -p "$bin"
exec 9>"$bin/.dendrite-build.lock"
flock 9
missing || exit 0
version=$(awk '$1 == "github.com/matrix-org/dendrite" {print $2}' tools/dendrite/go.mod)
echo "Building Dendrite $version into build/bin (first run only; several CPU-minutes with cgo for SQLite)..." >&2
start=$(date +%s)
cd tools/dendrite
export CGO_ENABLED=1
echo "  downloading modules..." >&2
go mod download
total=$(go list -deps tool 2>/dev/null | wc -l)
# go build -v names each package as it is compiled: count them as progress.
go build -v -trimpath -o "$bin/" tool 2>&1 | {
  n=0
  while IFS= read -r line; do
    case "$line" in
      *" "*|"#"*) echo "$line" >&2 ;;  # compiler output, not a package name
      *) n=$((n + 1)); if (( n % 25 == 0 )); then echo "  compiled $n of at most $total packages" >&2; fi ;;
    esac
  done
}
status=${PIPESTATUS[0]}
if (( status != 0 )); then
  echo "Building Dendrite failed" >&2
  exit "$status"
fi
echo "Dendrite $version built in $(( $(date +%s) - start )) s" >&2
