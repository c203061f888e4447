/*
 * test_math.c -- accuracy of the generated code's own exp and log (the
 * vectorisable kernels of cpu.c's prologue), measured in ulps against the
 * C library's long double expl/logl, through the engine itself:
 * Sum_Reduction(Exp(x), 0) with one j is exp(x_i).  Bounds: 2 ulp in
 * float64, 3 ulp in float32 (issue: CPU speed); special values follow IEEE
 * (exp: 0 below the range, Inf above, NaN kept; log: -Inf at 0, NaN below).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"

static double ulps(double v, long double ref, int f32) {
  if (isnan(v) && isnan((double)ref)) return 0;
  if (isinf((double)ref) || isinf(v)) return v == (double)ref ? 0 : INFINITY;
  if (f32) {
    float r = (float)ref;
    float u = nextafterf(fabsf(r), INFINITY) - fabsf(r);
    if (u == 0 || !isfinite(u)) u = 1.4e-45f;
    return (double)(fabsl((long double)v - ref) / u);
  }
  double r = (double)ref;
  double u = nextafter(fabs(r), INFINITY) - fabs(r);
  if (u == 0 || !isfinite(u)) u = 4.9e-324;
  return (double)(fabsl((long double)v - ref) / u);
}

/* values: a dense sweep of the useful range plus the edges */
static int fill(double *x, int n, int f32, int is_log) {
  int k = 0;
  double lo = is_log ? -40 : (f32 ? -103.0 : -744.0), hi = is_log ? 40 : (f32 ? 88.5 : 709.7);
  uint64_t s = 12345;
  while (k < n - 16) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    double u = (double)(s >> 11) / 9007199254740992.0;
    double v = lo + (hi - lo) * u;
    x[k++] = is_log ? pow(10.0, v) * (f32 ? 1 : 1) : v;
  }
  if (is_log) {
    double edge[] = {1, 1 + 1e-9, 1 - 1e-9, 0.5, 2, f32 ? 1.2e-38 : 2.3e-308, f32 ? 1e-40 : 1e-310,
                     f32 ? 3e38 : 1.7e308, 0.7071067811865476, 1.4142135623730951};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) x[k++] = edge[i];
  } else {
    double edge[] = {0, -0.0, 1e-300, -1e-300, 0.34657359, -0.34657359, 1, -1,
                     f32 ? -87.3 : -708.3, f32 ? -103.5 : -745.0, f32 ? 88.7 : 709.78};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) x[k++] = edge[i];
  }
  return k;
}

static void check_fn(const char *fname, int f32) {
  int is_log = strcmp(fname, "Log") == 0;
  enum { N = 100000 };
  double *x = malloc(sizeof(double) * N), *out = malloc(sizeof(double) * N);
  if (!x || !out) { free(x); free(out); CHECK(0, "out of memory"); return; }
  int n = fill(x, N, f32, is_log);
  if (f32) for (int i = 0; i < n; i++) x[i] = (double)(float)x[i];
  char formula[64];
  snprintf(formula, sizeof formula, "Sum_Reduction(%s(x), 0)", fname);
  const char *decls[] = {"x = Vi(1)"};
  rk_options o = t_opts(f32 ? RK_F32 : RK_F64, RK_SCHEME_AUTO);
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = NULL;
  if (!CHECK(rk_compile(formula, decls, 1, &o, &k, &e) == RK_OK, "%s compiles: %s", formula, e.msg)) {
    rk_error_clear(&e);
    free(x); free(out);
    return;
  }
  rk_input in = {x, n, 1};
  CHECK(rk_run(k, &in, 1, out, 1, NULL, NULL, &e) == RK_OK, "%s runs: %s", formula, e.msg);
  double worst = 0, at = 0;
  for (int i = 0; i < n; i++) {
    long double ref = is_log ? logl((long double)x[i]) : expl((long double)x[i]);
    if (f32) ref = (long double)(float)ref == 0 && ref != 0 ? ref : ref;
    double u = ulps(out[i], ref, f32);
    if (u > worst) { worst = u; at = x[i]; }
  }
  double bound = f32 ? 3.0 : 2.0;
  CHECK(worst <= bound, "%s %s: %.2f ulp at x = %.17g (bound %.0f)", fname, f32 ? "float32" : "float64",
        worst, at, bound);
  /* special values */
  double sp[] = {NAN, INFINITY, -INFINITY, 0.0, -1.0};
  rk_input in2 = {sp, 5, 1};
  double o2[5];
  CHECK(rk_run(k, &in2, 1, o2, 1, NULL, NULL, &e) == RK_OK, "%s runs on special values", formula);
  if (is_log) {
    CHECK(isnan(o2[0]) && o2[1] == INFINITY && isnan(o2[2]) && o2[3] == -INFINITY && isnan(o2[4]),
          "Log %s special values: %g %g %g %g %g", f32 ? "float32" : "float64", o2[0], o2[1], o2[2],
          o2[3], o2[4]);
  } else {
    CHECK(isnan(o2[0]) && o2[1] == INFINITY && o2[2] == 0 && o2[3] == 1 && fabs(o2[4] - exp(-1.0)) < 1e-6,
          "Exp %s special values: %g %g %g %g %g", f32 ? "float32" : "float64", o2[0], o2[1], o2[2],
          o2[3], o2[4]);
  }
  rk_error_clear(&e);
  free(x);
  free(out);
}

static void test_gradient_size(void);

void test_math(void) {
  test_gradient_size();
  check_fn("Exp", 0);
  check_fn("Exp", 1);
  check_fn("Log", 0);
  check_fn("Log", 1);
}

/* Hash-consing keeps gradients small: the gradient of the Gaussian kernel
 * reuses the kernel value instead of recomputing it, so its kernel
 * evaluates Exp exactly as often as a forward formula of the same output
 * dimension (once per unrolled output row), and its temporaries stay
 * within twice the forward formula's. */
static int count(const char *s, const char *what) {
  int n = 0;
  for (const char *p = strstr(s, what); p; p = strstr(p + 1, what)) n++;
  return n;
}

static void test_gradient_size(void) {
  const char *decls[] = {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "e = Vi(1)"};
  rk_options o = t_opts(RK_F64, RK_SCHEME_AUTO);
  rk_error e;
  rk_error_init(&e);
  char *fwd = NULL, *grad = NULL;
  int ok = rk_generate("Sum_Reduction(Exp(-SqDist(x, y)) * b * (x - y), 0)", decls, 4, &o, &fwd, &e) == RK_OK &&
           rk_generate("Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 0), x, e)", decls, 4, &o, &grad, &e) == RK_OK;
  if (CHECK(ok, "gradient size: generation failed: %s", e.msg)) {
    int ef = count(fwd, "RK_EXP("), eg = count(grad, "RK_EXP(");
    CHECK(eg == ef && eg > 0, "the Gaussian gradient evaluates Exp %d times per j, the forward formula %d", eg, ef);
    int tf = count(fwd, "rk_t t"), tg = count(grad, "rk_t t");
    CHECK(tg <= 2 * tf, "the Gaussian gradient has %d temporaries, the forward formula %d", tg, tf);
  }
  free(fwd);
  free(grad);
  rk_error_clear(&e);
}
