#!/bin/sh
# tools/test.sh -- the body of `make test` (after `make install`):
#   1. the C engine tests: `make -C tests/engine check` (ASan/UBSan), which
#      print "C tests: N passed, M failed", and the GPU backend on the
#      emulated driver (gpu-emu-check: "GPU emulation tests: ...") and
#      the generated CUDA through NVRTC (nvrtc-check: "NVRTC tests: ...");
#   2. the testthat suite against the package installed in $RKEOPS_LIB, with
#      OMP_THREAD_LIMIT=2 and a fresh RKEOPS_CACHE_DIR (tests/run-r-tests.R),
#      which prints "R tests: N passed, M failed, K skipped";
#   3. one final line "N passed, M failed, K skipped" summing both.
# Exits non-zero when anything failed or when nothing ran at all.

cd "$(dirname "$0")/.." || exit 1
MAKE=${MAKE:-make}
RSCRIPT=${RSCRIPT:-Rscript}
LIB=${RKEOPS_LIB:-$PWD/.lib}

work=$(mktemp -d "${TMPDIR:-/tmp}/rkeops-test.XXXXXX") || exit 1
trap 'rm -rf "$work"' 0
trap 'exit 130' HUP INT TERM

# "X tests: N passed, M failed[, K skipped]" -> "N M K" (or nothing).
counts() {
  sed -n "s/^$1 tests: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed\(, \([0-9][0-9]*\) skipped\)\{0,1\}.*/\1 \2 \4/p" "$2" |
    tail -n 1
}

# ------------------------------------------------------------- C tests ----
c_pass=0 c_fail=0 c_skip=0
echo "== C engine tests (tests/engine, ASan/UBSan) =="
if [ -f tests/engine/Makefile ]; then
  { $MAKE --no-print-directory -C tests/engine check < /dev/null 2>&1
    echo $? > "$work/c.rc"; } | tee "$work/c.log"
  c_rc=$(cat "$work/c.rc")
  set -- $(counts C "$work/c.log")
  if [ $# -ge 2 ]; then
    c_pass=$1 c_fail=$2
  else
    echo "C tests: no summary line from tests/engine (exit status $c_rc); counted as 1 failure"
    c_fail=1
  fi
  if [ "$c_rc" != 0 ] && [ "$c_fail" = 0 ]; then
    echo "C tests: make exited with status $c_rc; counted as 1 failure"
    c_fail=1
  fi
else
  echo "note: tests/engine/Makefile not found; C tests skipped (counted as 0)"
fi

# ------------------------------------------- GPU backend, no GPU ----
# One tests/engine GPU target, its "<label> tests: N passed, M failed" line
# added to the C counts: gpu_group TARGET LABEL TITLE.
gpu_group() {
  echo
  echo "== $3 (tests/engine, $1) =="
  { $MAKE --no-print-directory -C tests/engine -f Makefile -f gpu.mk "$1" < /dev/null 2>&1
    echo $? > "$work/$1.rc"; } > "$work/$1.log"
  grep -E "^(FAIL|== )" "$work/$1.log"
  set -- "$@" $(counts "$2" "$work/$1.log")
  if [ $# -ge 5 ]; then
    tail -n 1 "$work/$1.log"
    c_pass=$((c_pass + $4)) c_fail=$((c_fail + $5))
    if [ "$(cat "$work/$1.rc")" != 0 ] && [ "$5" = 0 ]; then
      tail -n 40 "$work/$1.log"
      echo "$2 tests: exit status $(cat "$work/$1.rc"); counted as 1 failure"
      c_fail=$((c_fail + 1))
    fi
  else
    tail -n 40 "$work/$1.log"
    echo "$2 tests: no summary line; counted as 1 failure"
    c_fail=$((c_fail + 1))
  fi
}
if [ -f tests/engine/gpu.mk ]; then
  # The CUDA scheme end to end on the fake driver and NVRTC of
  # tests/engine/fakecuda (no GPU needed; a C++ compiler builds the kernels).
  gpu_group gpu-emu-check "GPU emulation" "GPU backend on the emulated driver"
  # Every op and reduction's CUDA source compiled by the real NVRTC to PTX
  # and CUBIN (skipped inside the group when libnvrtc cannot be loaded).
  gpu_group nvrtc-check NVRTC "generated CUDA through NVRTC"
fi

# ------------------------------------------------- ground-rule linters ----
# C in src/ never prints to stdout/stderr, never exits or aborts, never
# touches OpenMP's global state (one check each; grep, like data.table's).
echo
echo "== linters (src/) =="
lint() {
  name=$1; pattern=$2; filter=$3
  hits=$(grep -rnE "$pattern" src --include='*.c' --include='*.h' | grep -vE "$filter" || true)
  if [ -n "$hits" ]; then
    echo "FAIL lint: $name"
    echo "$hits"
    c_fail=$((c_fail + 1))
  else
    echo "ok lint: $name"
    c_pass=$((c_pass + 1))
  fi
}
lint "no exit() or abort()" '(^|[^_a-zA-Z])(exit|abort)[[:space:]]*\(' '^[^:]*:[0-9]+:[[:space:]]*(/?\*|//)'
lint "no printing to stdout/stderr" '(^|[^_a-zA-Z.>])(printf|puts|putchar|perror|vprintf)[[:space:]]*\(|fprintf[[:space:]]*\([[:space:]]*std(out|err)' 'snprintf|vsnprintf|Rprintf|REprintf'
lint "no omp_set_num_threads/omp_set_nested" 'omp_set_num_threads|omp_set_nested' '^$'

# -------------------------------------------------- fuzz corpus replay ----
if [ -f tests/fuzz/Makefile ]; then
  echo
  echo "== fuzz corpus replay (tests/fuzz, ASan/UBSan) =="
  if $MAKE --no-print-directory -C tests/fuzz replay < /dev/null > "$work/fuzz.log" 2>&1; then
    tail -n 1 "$work/fuzz.log"
    c_pass=$((c_pass + 1))
  else
    cat "$work/fuzz.log"
    echo "FAIL fuzz corpus replay"
    c_fail=$((c_fail + 1))
  fi
fi

# ------------------------------------------------------------- R tests ----
echo
echo "== R tests (testthat, installed package in $LIB) =="
r_pass=0 r_fail=0 r_skip=0
mkdir -p "$work/cache"
{ OMP_THREAD_LIMIT=2 RKEOPS_CACHE_DIR="$work/cache" NOT_CRAN=true \
    R_LIBS="$LIB${R_LIBS:+:$R_LIBS}" \
    $RSCRIPT tests/run-r-tests.R tests/testthat rkeops < /dev/null 2>&1
  echo $? > "$work/r.rc"; } | tee "$work/r.log"
r_rc=$(cat "$work/r.rc")
set -- $(counts R "$work/r.log")
if [ $# -ge 2 ]; then
  r_pass=$1 r_fail=$2 r_skip=${3:-0}
else
  echo "R tests: no summary line (exit status $r_rc); counted as 1 failure"
  r_fail=1
fi
if [ "$r_rc" != 0 ] && [ "$r_fail" = 0 ]; then
  echo "R tests: Rscript exited with status $r_rc; counted as 1 failure"
  r_fail=1
fi

# --------------------------------------------------------------- total ----
pass=$((c_pass + r_pass))
fail=$((c_fail + r_fail))
skip=$((c_skip + r_skip))
echo
echo "C: $c_pass passed, $c_fail failed; R: $r_pass passed, $r_fail failed, $r_skip skipped"
if [ "$pass" = 0 ] && [ "$fail" = 0 ]; then
  echo "nothing ran: no C tests and no R tests found"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
