#!/usr/bin/env bash
# Runs every Go fuzz target (func FuzzXxx(f *testing.F)) in the given
# packages (default ./...) for FUZZTIME each (default 30s), one after the
# other: `go test -fuzz` takes one target per package per run. The targets
# are found in the packages' test files, so a new one needs no entry
# anywhere.
# Every target runs even if an earlier one fails; the exit status is 1 if
# any failed. A failing input is written to the package's
# testdata/fuzz/FuzzXxx/ (commit it with the fix: it is then a regression
# test that plain `go test` runs).
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-30s}"
if [ "$#" -eq 0 ]; then
  set -- ./...
fi

# The test files go would build (build constraints applied), and in them
# the functions that `go test` takes for fuzz targets. No compiling.
files=$(go list -f '{{$p := .ImportPath}}{{range .TestGoFiles}}{{$p}} {{$.Dir}}/{{.}}
{{end}}{{range .XTestGoFiles}}{{$p}} {{$.Dir}}/{{.}}
{{end}}' "$@")
targets=()
while read -r pkg file; do
  [ -n "$file" ] || continue
  for name in $(sed -nE 's/^func (Fuzz([A-Z0-9_][A-Za-z0-9_]*)?)\(\s*[A-Za-z_][A-Za-z0-9_]*\s+\*testing\.F\s*\).*/\1/p' "$file"); do
    targets+=("$pkg $name")
  done
done <<<"$files"

if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz: no fuzz targets in $*" >&2
  exit 1
fi

echo "fuzz: ${#targets[@]} targets, $fuzztime each"
failed=()
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "== $name ($pkg)"
  # On a loaded machine `go test -fuzz` can end with "context deadline
  # exceeded" at the -fuzztime deadline, without any failing input: a race
  # in Go's fuzzing coordinator (golang/go#75804, fixed in Go 1.27). A real failure always writes its input
  # ("Failing input written to testdata/fuzz/..."). So: a deadline report
  # without a failing input is tried once more, and counted as passed if
  # it happens again; anything else fails.
  for try in 1 2; do
    out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1) && { echo "$out"; break; }
    echo "$out"
    if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
      if [ "$try" -eq 2 ]; then
        echo "fuzz: $name: the toolchain timed out at the deadline again, with no failing input: counted as passed"
      else
        echo "fuzz: $name: the toolchain timed out at the deadline with no failing input: trying once more"
      fi
      continue
    fi
    failed+=("$name ($pkg)")
    break
  done
done

if [ "${#failed[@]}" -gt 0 ]; then
  printf 'fuzz: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"
