/*
 * test_minmax.c -- Min, Max, ArgMin, ArgMax, Min_ArgMin and Max_ArgMax,
 * whose CPU kernels take one vectorised pass per tile (reductions.c,
 * minmax_tile: the tile's min, then the first index of it):
 *
 *   F = x_i + y_j on a coarse grid (many ties, within and across tiles of
 *   BJ = 512), with -Inf, +Inf and NaN terms at tile edges and rows
 *   shifted by +-Inf and NaN, at N around the tile edges, float64 and
 *   float32 (every value is exact in both), one thread and the few-rows
 *   mode where two threads split a reduced range cut into chunks.  The
 *   reference is the scalar semantics written here: NaN comes first (the
 *   first NaN wins), ties keep the smallest index, and an index slot takes
 *   the first term even when it is +Inf (-Inf for Max).  Results must be
 *   identical, not close.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "test.h"
#include "tutil.h"

typedef struct mm_red {
  const char *name;
  int max, value, index;
} mm_red;

static const mm_red reds[] = {
  {"Min", 0, 1, 0},        {"Max", 1, 1, 0},        {"ArgMin", 0, 0, 1},
  {"ArgMax", 1, 0, 1},     {"Min_ArgMin", 0, 1, 1}, {"Max_ArgMax", 1, 1, 1},
};
#define NREDS ((int)(sizeof reds / sizeof reds[0]))

/* f comes strictly before b: NaN first, then ascending (descending for
 * Max) */
static int before(double f, double b, int max) {
  if (isnan(f)) return !isnan(b);
  return max ? f > b : f < b;
}

static void ref_rows(const mm_red *rd, const double *x, int64_t M, const double *y, int64_t N,
                     double *out) {
  for (int64_t i = 0; i < M; i++) {
    double best = rd->max ? -INFINITY : INFINITY;
    int64_t bi = -1;
    for (int64_t j = 0; j < N; j++) {
      double f = x[i] + y[j];
      if ((rd->index && bi < 0) || before(f, best, rd->max)) {
        best = f;
        bi = j;
      }
    }
    int c = 0;
    if (rd->value) out[i + M * c++] = best;
    if (rd->index) out[i + M * c] = (double)(bi + 1);
  }
}

enum { P_TIES, P_NAN, P_NANFIRST, P_POSINF, P_NEGINF, P_ALLPOS, P_ALLNEG, P_COUNT };
static const char *pattern_name[P_COUNT] = {"ties", "one NaN", "NaN first and later",
                                            "+Inf at edges", "-Inf at edges", "all +Inf",
                                            "all -Inf"};

static void make_y(int pat, double *y, int64_t N, tu_rng *r) {
  for (int64_t j = 0; j < N; j++) y[j] = floor(tu_unif(r, -2, 2) * 4) / 4;
  int64_t edges[] = {0, 511, 512, 513, 1023, 1024, N - 1};
  int ne = (int)(sizeof edges / sizeof edges[0]);
  switch (pat) {
  case P_NAN:
    y[N > 600 ? 600 : N - 1] = NAN;
    break;
  case P_NANFIRST:
    y[0] = NAN;
    if (N > 513) y[513] = NAN;
    break;
  case P_POSINF:
  case P_NEGINF:
    for (int k = 0; k < ne; k++)
      if (edges[k] < N) y[edges[k]] = pat == P_POSINF ? INFINITY : -INFINITY;
    break;
  case P_ALLPOS:
  case P_ALLNEG:
    for (int64_t j = 0; j < N; j++) y[j] = pat == P_ALLPOS ? INFINITY : -INFINITY;
    break;
  default:
    break;
  }
}

static int same(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  return a == b && signbit(a) == signbit(b);
}

static void run_all(const char *what, const int64_t *n, int nn, int nthreads) {
  enum { M = 7 };
  static const double xs[M] = {0, 1.5, -INFINITY, INFINITY, NAN, -3, 0.25};
  const char *d[] = {"x = Vi(1)", "y = Vj(1)"};
  for (int q = 0; q < NREDS; q++)
    for (int prec = 0; prec < 2; prec++) {
      char f[96];
      snprintf(f, sizeof f, "%s_Reduction(x + y, 0)", reds[q].name);
      rk_options o = t_opts(prec ? RK_F32 : RK_F64, RK_SCHEME_AUTO);
      rk_error e;
      rk_error_init(&e);
      rk_kernel *k = NULL;
      if (!CHECK(rk_compile(f, d, 2, &o, &k, &e) == RK_OK, "%s: %s: %s", what, f, e.msg)) {
        rk_error_clear(&e);
        continue;
      }
      int od = rk_kernel_outdim(k);
      CHECK(od == reds[q].value + reds[q].index, "%s: %s has %d result columns", what, f, od);
      for (int s = 0; s < nn; s++) {
        int64_t N = n[s];
        double *y = malloc((size_t)N * sizeof *y);
        double out[M * 2], ref[M * 2];
        if (!CHECK(y != NULL, "out of memory")) continue;
        tu_rng r;
        tu_seed(&r, 77 + (uint64_t)N);
        for (int pat = 0; pat < P_COUNT; pat++) {
          make_y(pat, y, N, &r);
          rk_input in[2] = {{xs, M, 1}, {y, N, 1}};
          for (int c = 0; c < M * 2; c++) out[c] = 12345;
          int rc = rk_run(k, in, 2, out, nthreads, NULL, NULL, &e);
          ref_rows(&reds[q], xs, M, y, N, ref);
          int ok = rc == RK_OK, bad = -1;
          for (int c = 0; ok && c < M * od; c++)
            if (!same(out[c], ref[c])) { ok = 0; bad = c; }
          CHECK(ok, "%s: %s (%s), N = %lld, y: %s: %s row %d col %d: %.17g, expected %.17g", what,
                f, prec ? "float32" : "float64", (long long)N, pattern_name[pat],
                rc == RK_OK ? "" : e.msg, bad < 0 ? 0 : bad % M + 1, bad < 0 ? 0 : bad / M + 1,
                bad < 0 ? 0 : out[bad], bad < 0 ? 0 : ref[bad]);
        }
        free(y);
      }
      rk_error_clear(&e);
    }
}

void test_minmax(void) {
  static const int64_t n[] = {1, 2, 15, 17, 50, 511, 512, 513, 1100, 2049};
  run_all("minmax", n, (int)(sizeof n / sizeof n[0]), 1);
  /* few rows, two threads, the reduced range cut into chunks of 8192
   * pairs: partial states merged across threads and chunks */
  static const int64_t nbig[] = {50001};
  run_set_chunk_pairs(8192);
  run_all("minmax, chunked", nbig, 1, 2);
  run_set_chunk_pairs(0);
}
