#!/bin/sh
# gpu-check.sh -- the GPU backend on a machine with a GPU: GPU against CPU on
# a table of formulas and sizes, then the Gaussian benchmark.  No R needed.
#
#   sh tests/engine/gpu-check.sh PATH/TO/rk-check [--quick] [--require]
#
# Every reduction of reductions.def, in float64 and float32, at output x
# reduced sizes from 1 x 1 to 1e6 rows (a single output row over 1e6 terms
# takes the split-and-merge path), each run by `rk-check --backend gpu` and
# `rk-check --backend cpu`: rk-check compares each backend with its own
# reference evaluator (all rows, or evenly spread sampled rows when that
# would be slow) and prints PASS or FAIL and the pairs per second.  The CPU
# is skipped above CPU_MAX_PAIRS pairs (default 2e9) and shown as "-".
#
# Benchmark: Sum_Reduction(Exp(-SqDist(x, y)) * b, 0), D = 3, float32,
# M = N = 1e4, 1e5, 1e6; best of BENCH_REPEAT (default 3) runs after the
# first; kernel compilation is not timed (rk-check times it apart).
#
#   --quick      three sizes per reduction instead of seven
#   --require    exit 1 (not 0) when the GPU backend is not available
#   RK_CHECK_GPU_ARGS   extra rk-check options for the GPU runs (e.g.
#                       "--device 1")
#   CPU_MAX_PAIRS, BENCH_REPEAT   see above
#
# Prints one line per run and a table; the last line is
# "gpu-check: N passed, M failed" (or "gpu-check: skipped (...)").
# Exit status: 0 when nothing failed (or skipped), 1 otherwise, 2 on usage.

# RK_CHECK_GPU_ARGS and the extra options are split into words on purpose
# shellcheck disable=SC2086

RKCHECK=${1:-}
if [ -z "$RKCHECK" ] || [ ! -x "$RKCHECK" ]; then
  echo "usage: gpu-check.sh PATH/TO/rk-check [--quick] [--require]" >&2
  exit 2
fi
shift
QUICK=0
REQUIRE=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --require) REQUIRE=1 ;;
    *) echo "gpu-check.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
CPU_MAX_PAIRS=${CPU_MAX_PAIRS:-2e9}
BENCH_REPEAT=${BENCH_REPEAT:-3}
GPU_ARGS=${RK_CHECK_GPU_ARGS:-}  # split into words on purpose

CACHE=$(mktemp -d "${TMPDIR:-/tmp}/rk-gpu-check.XXXXXX") || exit 1
TABLE=$CACHE/table.txt
trap 'rm -rf "$CACHE"' EXIT INT TERM

# ---------------------------------------------------------------- probe
probe=$("$RKCHECK" -q --repeat 0 --cache-dir "$CACHE" --backend gpu $GPU_ARGS -M 1 -N 1 \
          'Sum_Reduction(x * y, 0)' 'x=Vi(1)' 'y=Vj(1)' 2>&1)
rc=$?
if [ $rc -eq 2 ]; then
  echo "$probe" | sed 's/^/  /'
  echo "gpu-check: skipped (the GPU backend is not available here: see above)"
  [ $REQUIRE -eq 1 ] && exit 1
  exit 0
fi

# ---------------------------------------------------------------- runs
# one rk-check run; prints its line; sets RES (PASS/FAIL/ERR), ERR, RATE
run() {  # backend prec M N formula decls...
  be=$1; prec=$2; m=$3; n=$4; f=$5; shift 5
  extra=
  [ "$be" = gpu ] && extra=$GPU_ARGS
  out=$("$RKCHECK" -q --repeat 1 --cache-dir "$CACHE" --backend "$be" $extra --"$prec" \
          -M "$m" -N "$n" "$f" "$@" 2>&1)
  code=$?
  line=$(printf '%s\n' "$out" | grep '^rk-check ' | tail -n 1)
  ERR=$(printf '%s\n' "$line" | sed -n 's/.*: err \([^ ]*\) tol.*/\1/p')
  RATE=$(printf '%s\n' "$line" | sed -n 's/.*, \([^ ]*\) pairs\/s.*/\1/p')
  case $code in
    0) RES=PASS ;;
    1) RES=FAIL ;;
    *) RES=ERR; ERR=-; RATE= ;;
  esac
  if [ $code -ne 0 ]; then
    echo "$RES: rk-check --backend $be --$prec -M $m -N $n '$f' $*"
    printf '%s\n' "$out" | sed 's/^/    /'
  fi
}

# seconds = pairs / rate (rate "0" or empty: "-")
secs() {
  awk -v m="$1" -v n="$2" -v r="$3" 'BEGIN { if (r + 0 > 0) printf "%.3g", m * n / r; else printf "-" }'
}
big() {  # is M * N above CPU_MAX_PAIRS?
  awk -v m="$1" -v n="$2" -v t="$CPU_MAX_PAIRS" 'BEGIN { exit !(m * n > t + 0) }'
}

pass=0
fail=0
if [ $QUICK -eq 1 ]; then
  SIZES="1x1 1x1000000 1031x1000"
else
  SIZES="1x1 1x1000000 1000000x1 1031x1000 1000x1000000 1000000x1000 20000x20000"
fi

# name | extra operand | K
REDS='Sum||
Min||
Max||
ArgMin||
ArgMax||
Min_ArgMin||
Max_ArgMax||
KMin||, 3
ArgKMin||, 3
KMin_ArgKMin||, 3
LogSumExp||
LogSumExpWeight|, y|
SumSoftMaxWeight|, y|
Max_SumShiftExp||
Max_SumShiftExpWeight|, y|'

printf '%-62s %-7s %-15s %-9s %-9s %-9s %-9s %-8s %s\n' formula prec "M x N" "gpu err" "gpu s" \
  "cpu err" "cpu s" speedup status > "$TABLE"
echo "== GPU against CPU: every reduction, float64 and float32, sizes $SIZES"
printf '%s\n' "$REDS" | while IFS='|' read -r name extra k; do
  [ -z "$name" ] && continue
  f="${name}_Reduction(Exp(-SqDist(x, y)) * b${extra}${k}, 0)"
  for prec in float64 float32; do
    for size in $SIZES; do
      m=${size%x*}; n=${size#*x}
      run gpu "$prec" "$m" "$n" "$f" 'x=Vi(3)' 'y=Vj(3)' 'b=Vj(1)'
      gres=$RES; gerr=$ERR; gt=$(secs "$m" "$n" "$RATE")
      if big "$m" "$n"; then
        cres=skip; cerr=-; ct=-
      else
        run cpu "$prec" "$m" "$n" "$f" 'x=Vi(3)' 'y=Vj(3)' 'b=Vj(1)'
        cres=$RES; cerr=$ERR; ct=$(secs "$m" "$n" "$RATE")
      fi
      sp=$(awk -v a="$ct" -v b="$gt" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.3gx", a / b; else printf "-" }')
      status=PASS
      [ "$gres" != PASS ] && status="GPU $gres"
      [ "$cres" != PASS ] && [ "$cres" != skip ] && status="$status, CPU $cres"
      printf '%-62s %-7s %-15s %-9s %-9s %-9s %-9s %-8s %s\n' "$f" "$prec" "$m x $n" "$gerr" "$gt" \
        "$cerr" "$ct" "$sp" "$status" >> "$TABLE"
      echo "$status" >> "$CACHE/status"
    done
  done
done
cat "$TABLE"
pass=$(grep -c '^PASS$' "$CACHE/status" 2>/dev/null)
fail=$(grep -vc '^PASS$' "$CACHE/status" 2>/dev/null)

# ---------------------------------------------------------------- benchmark
echo
echo "== Gaussian benchmark: Sum_Reduction(Exp(-SqDist(x, y)) * b, 0), D = 3, float32"
g='Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)'
printf '%-9s %-11s %-13s %-11s %-13s %-8s %s\n' "M = N" "gpu s" "gpu pairs/s" "cpu s" \
  "cpu pairs/s" speedup status
for n in 10000 100000 1000000; do
  out=$("$RKCHECK" -q --repeat "$BENCH_REPEAT" --cache-dir "$CACHE" --backend gpu $GPU_ARGS \
          --float32 -M $n -N $n "$g" 'x=Vi(3)' 'y=Vj(3)' 'b=Vj(1)' 2>&1)
  code=$?
  grate=$(printf '%s\n' "$out" | sed -n 's/.*, \([^ ]*\) pairs\/s.*/\1/p' | tail -n 1)
  st=PASS
  [ $code -ne 0 ] && { st="GPU FAIL"; printf '%s\n' "$out" | sed 's/^/    /'; }
  if big $n $n; then
    crate=
  else
    if ! out=$("$RKCHECK" -q --repeat "$BENCH_REPEAT" --cache-dir "$CACHE" --backend cpu \
                 --float32 -M $n -N $n "$g" 'x=Vi(3)' 'y=Vj(3)' 'b=Vj(1)' 2>&1); then
      st="$st, CPU FAIL"
      printf '%s\n' "$out" | sed 's/^/    /'
    fi
    crate=$(printf '%s\n' "$out" | sed -n 's/.*, \([^ ]*\) pairs\/s.*/\1/p' | tail -n 1)
  fi
  [ "$st" = PASS ] && pass=$((pass + 1)) || fail=$((fail + 1))
  gt=$(secs $n $n "$grate"); ct=$(secs $n $n "$crate")
  sp=$(awk -v a="$ct" -v b="$gt" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.3gx", a / b; else printf "-" }')
  printf '%-9s %-11s %-13s %-11s %-13s %-8s %s\n' $n "$gt" "${grate:--}" "$ct" "${crate:--}" "$sp" "$st"
done

echo "gpu-check: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
