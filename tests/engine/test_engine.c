/*
 * test_engine.c -- main of the C tests of the engine (no R).
 *
 *   test_engine [rows] [tables] [runtime] [lse] [minmax] [chunks] [ranges] [gpu] [math]
 *                                       (default: all; math when test_math.c
 *                                        is linked in)
 *
 * Runs the groups of test.h against a fresh kernel cache folder, unloads
 * every kernel (so that LeakSanitizer sees a clean heap), removes the
 * folder and prints, as its last line,
 *
 *   C tests: N passed, M failed
 *
 * counting individual checks.  Exit status 1 when M > 0.
 *
 * Environment: RK_TEST_VERBOSE=1 prints a line per group, 2 also one per
 * kernel (formula, time, compiled or cached).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "refeval.h"
#include "test.h"
#include "tutil.h"

int t_passed, t_failed, t_verbose;
const char *t_cache;
int t_backend = RK_BACKEND_CPU;

int t_check(int ok, const char *file, int line, const char *fmt, ...) {
  if (ok) {
    t_passed++;
    return 1;
  }
  t_failed++;
  const char *base = strrchr(file, '/');
  printf("FAIL %s:%d: ", base ? base + 1 : file, line);
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
  return 0;
}

rk_options t_opts(rk_precision prec, rk_scheme scheme) {
  rk_options o;
  rk_options_default(&o);
  o.precision = prec;
  o.scheme = scheme;
  o.cache_dir = t_cache;
  o.backend = t_backend;
  return o;
}

int t_ndecls(const char *const *decls) {
  int n = 0;
  while (decls && decls[n]) n++;
  return n;
}

void t_result_free(t_result *r) {
  free(r->colerr);
  r->colerr = NULL;
}

int t_eval(const char *formula, const char *const *decls, int ndecls, rk_precision prec,
           rk_scheme scheme, int64_t M, int64_t N, double tol, uint64_t seed, t_result *res) {
  memset(res, 0, sizeof *res);
  double t_start = tu_now();
  rk_options o = t_opts(prec, scheme);
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = NULL;
  int rc = rk_compile(formula, decls, ndecls, &o, &k, &e);
  if (rc != RK_OK || !k) {
    snprintf(res->why, sizeof res->why, "does not compile: %s error: %s%s%.*s",
             rk_error_code_name(e.code), e.msg, e.log ? "\ncompiler output:\n" : "", 1500,
             e.log ? e.log : "");
    rk_error_clear(&e);
    return 0;
  }
  res->compiled = 1;
  int nargs = 0;
  rk_input in[REF_MAX_ARGS];
  double *out = NULL, *ref = NULL, *scale = NULL;
  ref_formula *F = malloc(sizeof *F);
  char *why = res->why;
  size_t nwhy = sizeof res->why;
  if (!F) {
    snprintf(why, nwhy, "out of memory");
    goto done;
  }
  if (ref_parse(formula, decls, ndecls, F) != 0) {
    snprintf(why, nwhy, "%s", F->err);
    goto done;
  }
  /* the kernel describes its arguments as they were declared */
  res->args_ok = rk_kernel_nargs(k) == F->nargs;
  for (int p = 0; res->args_ok && p < F->nargs; p++) {
    const rk_arginfo *a = rk_kernel_arg(k, p);
    res->args_ok = a && a->dim == F->args[p].dim && a->cat == F->args[p].cat &&
                   strcmp(a->name, F->args[p].name) == 0;
  }
  tu_rng rng;
  tu_seed(&rng, seed);
  /* grid data (see tu_make_inputs), but for gradients: on a grid, x - y is
   * exactly 0 now and then, where ReLU, Abs... have a kink and central
   * differences measure the mean of the two slopes */
  if (tu_make_inputs(F->args, F->nargs, M, N, &rng, 0.5, 1.5, F->grad ? 0 : 10, in) != 0) {
    snprintf(why, nwhy, "out of memory");
    goto done;
  }
  nargs = F->nargs;
  int64_t nout;
  if (rk_check_inputs(k, in, nargs, &nout, &e) != RK_OK) {
    snprintf(why, nwhy, "rk_check_inputs: %s", e.msg);
    goto done;
  }
  int outdim = rk_kernel_outdim(k);
  res->outdim = outdim;
  size_t n = (size_t)(nout * outdim);
  out = malloc((n + 1) * sizeof *out);
  ref = malloc((n + 1) * sizeof *ref);
  scale = malloc((n + 1) * sizeof *scale);
  res->colerr = calloc((size_t)outdim + 1, sizeof *res->colerr);
  if (!out || !ref || !scale || !res->colerr) {
    snprintf(why, nwhy, "out of memory");
    goto done;
  }
  for (size_t q = 0; q < n; q++) out[q] = NAN;
  if (rk_run(k, in, nargs, out, 0, NULL, NULL, &e) != RK_OK) {
    snprintf(why, nwhy, "rk_run: %s error: %s", rk_error_code_name(e.code), e.msg);
    goto done;
  }
  if (ref_outdim(F) != outdim || ref_nout(F, in, nargs) != nout) {
    snprintf(why, nwhy, "engine output %lld x %d, reference %lld x %d", (long long)nout, outdim,
             (long long)ref_nout(F, in, nargs), ref_outdim(F));
    goto done;
  }
  if (ref_eval(F, in, nargs, ref, scale) != 0) {
    snprintf(why, nwhy, "%s", F->err);
    goto done;
  }
  int64_t nred = 1;
  int redcat = rk_kernel_outcat(k) == RK_CAT_I ? RK_CAT_J : RK_CAT_I;
  for (int p = 0; p < nargs; p++)
    if (F->args[p].cat == redcat) { nred = in[p].nrow; break; }
  double grow = sqrt((double)nred / 1000.0);
  if (grow < 1) grow = 1;
  if (tol < 0) tol = F->grad ? (prec == RK_F32 ? 1e-4 : 1e-6) : (prec == RK_F32 ? 1e-5 : 1e-12) * grow;
  res->tol = tol;
  res->compared = 1;
  double worst = -1;
  int64_t wq = 0;
  for (int c = 0; c < outdim; c++) {
    int64_t w = 0;
    res->colerr[c] = tu_max_relerr(out + c * nout, ref + c * nout, scale + c * nout, nout, &w);
    if (res->colerr[c] > worst) { worst = res->colerr[c]; wq = c * nout + w; }
  }
  res->maxerr = worst;
  res->agrees = worst <= tol;
  if (!res->agrees)
    snprintf(why, nwhy, "max rel err %.3e > tol %.1e at row %lld col %lld: %.17g vs reference %.17g",
             worst, tol, (long long)(wq % nout) + 1, (long long)(wq / nout) + 1, out[wq], ref[wq]);
done:
  if (t_verbose > 1)
    printf("    %s: %.3f s (build %.3f s, %s)\n", formula, tu_now() - t_start,
           rk_kernel_build_seconds(k), rk_kernel_from(k) == RK_FROM_COMPILER ? "compiled" : "cached");
  rk_error_clear(&e);
  tu_free_inputs(in, nargs);
  free(out);
  free(ref);
  free(scale);
  free(F);
  return res->agrees;
}

int t_compare(const char *what, const char *formula, const char *const *decls, int ndecls,
              rk_precision prec, rk_scheme scheme, int64_t M, int64_t N, double tol,
              uint64_t seed) {
  t_result r;
  t_eval(formula, decls, ndecls, prec, scheme, M, N, tol, seed, &r);
  const char *pname = t_backend == RK_BACKEND_GPU ? (prec == RK_F32 ? "gpu, float32" : "gpu, float64")
                                                  : (prec == RK_F32 ? "float32" : "float64");
  CHECK(r.compiled, "%s: %s (%s) %s", what, formula, pname, r.why);
  if (r.compiled)
    CHECK(r.args_ok || !r.compared, "%s: %s: the kernel's arguments differ from the declarations",
          what, formula);
  CHECK(r.agrees, "%s: %s (%s, M=%lld, N=%lld) disagrees with the reference: %s", what, formula,
        pname, (long long)M, (long long)N, r.compiled ? r.why : "no kernel");
  t_result_free(&r);
  return r.agrees;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct { const char *name; void (*fn)(void); } groups[] = {
    {"rows", test_rows}, {"tables", test_tables}, {"runtime", test_runtime}, {"lse", test_lse},
    {"minmax", test_minmax}, {"chunks", test_chunks}, {"ranges", test_ranges}, {"gpu", test_gpu}, {"math", test_math},
  };
  int ngroups = (int)(sizeof groups / sizeof groups[0]);
  if (!test_math) ngroups--;   /* test_math.c not linked in */
  int run[16] = {0};
  for (int a = 1; a < argc; a++) {
    int found = 0;
    for (int g = 0; g < ngroups; g++)
      if (strcmp(argv[a], groups[g].name) == 0) run[g] = found = 1;
    if (!found) {
      fprintf(stderr, "usage: test_engine [rows] [tables] [runtime] [lse] [minmax] [chunks] [ranges] [gpu] [math]   "
                      "(default: all)\n");
      printf("C tests: 0 passed, 1 failed\n");
      return 2;
    }
  }
  if (argc == 1)
    for (int g = 0; g < ngroups; g++) run[g] = 1;
  char *dir = tu_tempdir("rk-ctest-");
  if (!dir) {
    perror("cannot create a temporary folder for the kernel cache");
    printf("C tests: 0 passed, 1 failed\n");
    return 1;
  }
  t_cache = dir;
  t_verbose = getenv("RK_TEST_VERBOSE") ? atoi(getenv("RK_TEST_VERBOSE")) : 0;
  for (int g = 0; g < ngroups; g++) {
    if (!run[g]) continue;
    int p0 = t_passed, f0 = t_failed;
    double t0 = tu_now();
    groups[g].fn();
    if (t_verbose > 0)
      printf("  %-8s %4d passed, %d failed (%.1f s)\n", groups[g].name, t_passed - p0,
             t_failed - f0, tu_now() - t0);
  }
  rk_unload_all();
  tu_rmtree(dir);
  free(dir);
  printf("C tests: %d passed, %d failed\n", t_passed, t_failed);
  return t_failed > 0;
}
