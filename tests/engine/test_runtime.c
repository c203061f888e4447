/*
 * test_runtime.c -- everything after the front end: hand-computed
 * results, the kernel cache (memo, disk, compiler, corrupted files), input
 * checks, summation schemes, sizes, thread counts, interrupts, and build
 * failures (whose error paths must not leak: the whole run is under
 * LeakSanitizer).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"
#include "refeval.h"
#include "test.h"
#include "tutil.h"

/* ------------------------------------------------ hand-computed values */

static void golden(void) {
  static const double x[] = {1, 2};                 /* Vi(1), 2 rows   */
  static const double y[] = {1, 2, 3};              /* Vj(1), 3 rows   */
  static const double p[] = {1, 3, 2, 4};           /* Vi(2): [1 2; 3 4] */
  static const double s[] = {10, 20};               /* Pm(2)           */
  const rk_input in[] = {{x, 2, 1}, {y, 3, 1}, {p, 2, 2}, {s, 2, 1}};
  const char *d[] = {"x = Vi(1)", "y = Vj(1)", "p = Vi(2)", "s = Pm(2)"};
  const double e1 = exp(-1.0), e4 = exp(-4.0);
  static struct { const char *f; int n; double want[6]; } g[] = {
    {"Sum_Reduction(x * y, 0)", 2, {6, 12}},
    {"Sum_Reduction(x * y, 1)", 3, {3, 6, 9}},
    {"Sum_Reduction(SqDist(x, y), 0)", 2, {5, 2}},
    {"Sum_Reduction(Rsqrt(x - 1), 0)", 2, {0, 3}},
    {"Sum_Reduction(x ** -2, 1)", 3, {1.25, 1.25, 1.25}},
    {"Sum_Reduction(p * y, 0)", 4, {6, 18, 12, 24}},
    {"Sum_Reduction(s * y, 0)", 4, {60, 60, 120, 120}},
    {"Sum_Reduction(Norm2(p), 0)", 2, {0, 15}},            /* [0] below */
    {"Sum_Reduction(Exp(-SqDist(x, y)), 0)", 2, {0, 0}},   /* below */
    {"Sum_Reduction(Zero(2) + x, 0)", 4, {3, 6, 3, 6}},
    {"Sum_Reduction(Abs(x - y), 0)", 2, {3, 2}},
    {"Sum_Reduction((p | s) - Sum(p) * 10, 1)", 3, {0, 0, 0}},  /* below */
    {"Sum_Reduction(Square(y) - 2 * y / x, 1)", 3, {-1, 2, 9}},
  };
  g[7].want[0] = 3 * sqrt(5.0);
  g[8].want[0] = 1 + e1 + e4;
  g[8].want[1] = 2 * e1 + 1;
  /* (p|s) - 10 * Sum(p) = 10 p1 + 20 p2 - 10 (p1 + p2) = 10 p2; summed
   * over the two rows i: 10 * (2 + 4) = 60 for every j */
  for (int k = 0; k < 3; k++) g[11].want[k] = 60;
  for (size_t c = 0; c < sizeof g / sizeof g[0]; c++) {
    for (int prec = 0; prec < 2; prec++) {
      rk_options o = t_opts(prec ? RK_F32 : RK_F64, RK_SCHEME_AUTO);
      rk_error e;
      rk_error_init(&e);
      rk_kernel *k = NULL;
      double out[6] = {-7, -7, -7, -7, -7, -7};
      int rc = rk_compile(g[c].f, d, 4, &o, &k, &e);
      if (rc == RK_OK) rc = rk_run(k, in, 4, out, 1, NULL, NULL, &e);
      if (CHECK(rc == RK_OK, "golden %s: %s", g[c].f, e.msg)) {
        double tol = prec ? 2e-6 : 1e-15, worst = 0;
        for (int q = 0; q < g[c].n; q++) {
          double err = fabs(out[q] - g[c].want[q]) / fmax(1, fabs(g[c].want[q]));
          if (err > worst) worst = err;
        }
        CHECK(worst <= tol, "golden %s (%s): got [%g %g %g %g], want [%g %g %g %g]", g[c].f,
              prec ? "float32" : "float64", out[0], out[1], out[2], out[3], g[c].want[0],
              g[c].want[1], g[c].want[2], g[c].want[3]);
        CHECK(g[c].n == 6 || out[g[c].n] == -7, "golden %s: wrote past the output", g[c].f);
      }
      rk_error_clear(&e);
    }
  }
}

/* ------------------------------------------------------------ cache */

static int count_files(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
  closedir(d);
  return n;
}

static int is_hex64(const char *h) {
  if (!h || strlen(h) != 64) return 0;
  for (int i = 0; i < 64; i++)
    if (!strchr("0123456789abcdef", h[i])) return 0;
  return 1;
}

static void cache(void) {
  const char *d[] = {"x = Vi(3)", "y = Vj(3)"};
  const char *f = "Sum_Reduction(Exp(-SqDist(x, y)) * IntCst(4242), 0)";
  rk_options o = t_opts(RK_F64, RK_SCHEME_AUTO);
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = NULL;
  int rc = rk_compile(f, d, 2, &o, &k, &e);
  if (!CHECK(rc == RK_OK, "cache: first compile: %s", e.msg)) return;
  CHECK(rk_kernel_from(k) == RK_FROM_COMPILER, "cache: a new formula came from %d, not the compiler",
        rk_kernel_from(k));
  CHECK(rk_kernel_build_seconds(k) > 0, "cache: build time %g", rk_kernel_build_seconds(k));
  CHECK(is_hex64(rk_kernel_hash(k)), "cache: hash \"%s\" is not 64 hex digits", rk_kernel_hash(k));
  const char *path = rk_kernel_path(k);
  char *saved = path ? strdup(path) : NULL;
  CHECK(saved && strncmp(saved, t_cache, strlen(t_cache)) == 0 && strstr(saved, rk_kernel_hash(k)) &&
            strstr(saved, "rk" RK_ENGINE_VERSION "-") && access(saved, R_OK) == 0,
        "cache: kernel path \"%s\" is not rk<version>-<hash>.so in the cache folder",
        saved ? saved : "(null)");
  CHECK(strcmp(rk_kernel_reduction(k), "Sum") == 0 && rk_kernel_redparam(k) == 0 &&
            rk_kernel_nargs(k) == 2 && rk_kernel_arg(k, 2) == NULL && rk_kernel_arg(k, -1) == NULL &&
            strcmp(rk_kernel_arg(k, 1)->name, "y") == 0 && rk_kernel_arg(k, 1)->cat == RK_CAT_J,
        "cache: kernel accessors");
  rk_kernel *k2 = NULL;
  rc = rk_compile(f, d, 2, &o, &k2, &e);
  CHECK(rc == RK_OK && k2 == k && rk_kernel_from(k2) == RK_FROM_MEMO,
        "cache: the same formula again does not come from the memo");
  /* same source, other argument names: same file, another memo entry */
  const char *d2[] = {"alpha = Vi(3)", "beta = Vj(3)"};
  rc = rk_compile("Sum_Reduction(Exp(-SqDist(alpha, beta)) * IntCst(4242), 0)", d2, 2, &o, &k2, &e);
  CHECK(rc == RK_OK && k2 != k && rk_kernel_from(k2) == RK_FROM_DISK &&
            strcmp(rk_kernel_hash(k2), rk_kernel_hash(k)) == 0 &&
            strcmp(rk_kernel_arg(k2, 0)->name, "alpha") == 0,
        "cache: renamed arguments should reuse the file (from %d)", rc == RK_OK ? rk_kernel_from(k2) : -1);
  /* kernels whose sources are equal (an unused argument's dimension does
   * not appear in the source) but whose declarations differ are distinct:
   * each one checks its inputs against its own declarations */
  const char *u1[] = {"x = Vi(3)", "y = Vj(1)"}, *u2[] = {"x = Vi(3)", "y = Vj(2)"};
  rk_kernel *ku1 = NULL, *ku2 = NULL;
  rc = rk_compile("Sum_Reduction(x * IntCst(31), 0)", u1, 2, &o, &ku1, &e);
  if (rc == RK_OK) rc = rk_compile("Sum_Reduction(x * IntCst(31), 0)", u2, 2, &o, &ku2, &e);
  if (CHECK(rc == RK_OK, "cache: %s", e.msg)) {
    CHECK(ku1 != ku2 && rk_kernel_arg(ku2, 1)->dim == 2,
          "cache: declarations y = Vj(1) then y = Vj(2) with the same formula: the second "
          "kernel is the first one (memo key without the declarations), y has dimension %d",
          rk_kernel_arg(ku2, 1)->dim);
    static double xd[6], yd[6];
    rk_input uin[] = {{xd, 2, 3}, {yd, 3, 2}};
    int64_t unout;
    CHECK(rk_check_inputs(ku2, uin, 2, &unout, &e) == RK_OK,
          "cache: y declared Vj(2) but 3 x 2 data are refused: %s", e.msg);
  }
  /* after unloading: from the disk.  (The process goes on after
   * rk_unload_all(), as an R session does: OpenMP's idle threads must not
   * be left running in an unloaded library.) */
  rk_unload_all();
  rc = rk_compile(f, d, 2, &o, &k, &e);
  CHECK(rc == RK_OK && rk_kernel_from(k) == RK_FROM_DISK, "cache: after rk_unload_all the kernel "
        "should come from the disk (rc %d, from %d)", rc, rc == RK_OK ? rk_kernel_from(k) : -1);
  /* a corrupted file is detected and rebuilt */
  rk_unload_all();
  if (saved) {
    FILE *fp = fopen(saved, "r+b");
    if (CHECK(fp != NULL, "cache: cannot open %s", saved)) {
      fseek(fp, 100, SEEK_SET);
      fputs("garbage", fp);
      fclose(fp);
    }
    rc = rk_compile(f, d, 2, &o, &k, &e);
    CHECK(rc == RK_OK && rk_kernel_from(k) == RK_FROM_COMPILER,
          "cache: a corrupted file was not rebuilt (rc %d: %s)", rc, e.msg);
    rk_unload_all();
    fp = fopen(saved, "r+b");
    if (fp) {  /* torn: half the file */
      fseek(fp, 0, SEEK_END);
      long n = ftell(fp);
      fclose(fp);
      CHECK(truncate(saved, n / 2) == 0, "cache: truncate");
    }
    rc = rk_compile(f, d, 2, &o, &k, &e);
    CHECK(rc == RK_OK && rk_kernel_from(k) == RK_FROM_COMPILER,
          "cache: a torn file was not rebuilt (rc %d: %s)", rc, e.msg);
    if (rc == RK_OK) t_compare("cache: rebuilt kernel", f, d, 2, RK_F64, RK_SCHEME_AUTO, 5, 9, -1, 3);
  }
  free(saved);
  /* keep_source writes the generated C beside the kernel */
  o.keep_source = 1;
  rc = rk_compile("Sum_Reduction(x * IntCst(777), 0)", d, 2, &o, &k, &e);
  if (CHECK(rc == RK_OK, "cache: keep_source: %s", e.msg)) {
    char c_path[4096];
    snprintf(c_path, sizeof c_path, "%s", rk_kernel_path(k));
    size_t n = strlen(c_path);
    if (n > 3 && strcmp(c_path + n - 3, ".so") == 0) strcpy(c_path + n - 3, ".c");
    CHECK(access(c_path, R_OK) == 0, "cache: keep_source did not keep %s", c_path);
  }
  CHECK(count_files(t_cache, "tmp-") == 0, "cache: temporary files left in the cache folder");
  /* an impossible cache folder: the engine falls back to a folder under
   * $TMPDIR (decision 11) and says which folder it refused; $TMPDIR points
   * into our own cache folder meanwhile, so that nothing is left behind */
  o.keep_source = 0;
  o.cache_dir = "/proc/rk-no-such-folder/cache";
  char *oldtmp = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
  setenv("TMPDIR", t_cache, 1);
  k = NULL;
  rc = rk_compile("Sum_Reduction(x * IntCst(778), 0)", d, 2, &o, &k, &e);
  const char *fb = rk_cache_fallback();
  CHECK(rc == RK_OK && k && strncmp(rk_kernel_path(k), t_cache, strlen(t_cache)) == 0 && fb &&
            strcmp(fb, o.cache_dir) == 0,
        "cache: an impossible cache folder gave %s \"%s\", kernel %s, fallback from %s",
        rk_error_code_name(rc), e.msg, k ? rk_kernel_path(k) : "none", fb ? fb : "none");
  o.cache_dir = t_cache;
  rc = rk_compile("Sum_Reduction(x * IntCst(779), 0)", d, 2, &o, &k, &e);
  CHECK(rc == RK_OK && rk_cache_fallback() == NULL,
        "cache: rk_cache_fallback() still reports %s after a compilation in a good folder",
        rk_cache_fallback() ? rk_cache_fallback() : "");
  if (oldtmp) setenv("TMPDIR", oldtmp, 1);
  else unsetenv("TMPDIR");
  free(oldtmp);
  rk_error_clear(&e);
}

/* ---------------------------------------------------- build failures */

static void build_failures(void) {
  const rk_toolchain *tc = rk_toolchain_get();
  CHECK(tc && tc->cc && tc->cc[0] && tc->cflags && tc->openmp, "toolchain: incomplete record");
  char *cc = strdup(tc->cc), *cflags = strdup(tc->cflags), *openmp = strdup(tc->openmp);
  int have = tc->have_openmp;
  const char *d[] = {"x = Vi(3)", "y = Vj(3)"};
  rk_options o = t_opts(RK_F64, RK_SCHEME_AUTO);
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = (rk_kernel *)&e;

  rk_toolchain_set("rk-no-such-compiler", NULL, NULL, -1);
  int rc = rk_compile("Sum_Reduction(x * IntCst(901), 0)", d, 2, &o, &k, &e);
  CHECK(rc == RK_EBUILD && k == NULL && strstr(e.msg, "rk-no-such-compiler"),
        "build: a missing compiler gave %s \"%s\"", rk_error_code_name(rc), e.msg);
  rk_error_clear(&e);

  rk_toolchain_set(cc, "-O1 -fno-such-flag-rkeops", NULL, -1);
  rc = rk_compile("Sum_Reduction(x * IntCst(902), 0)", d, 2, &o, &k, &e);
  CHECK(rc == RK_EBUILD && k == NULL && e.log && strstr(e.log, "no-such-flag-rkeops"),
        "build: a failing compiler gave %s \"%s\" with log \"%s\"", rk_error_code_name(rc), e.msg,
        e.log ? e.log : "(none)");
  rk_error_clear(&e);
  CHECK(count_files(t_cache, "tmp-") == 0, "build: temporary files left after a failed build");

  rk_toolchain_set(cc, cflags, openmp, have);
  tc = rk_toolchain_get();
  CHECK(strcmp(tc->cc, cc) == 0 && strcmp(tc->cflags, cflags) == 0 && strcmp(tc->openmp, openmp) == 0,
        "build: the toolchain was not restored");
  rc = rk_compile("Sum_Reduction(x * IntCst(902), 0)", d, 2, &o, &k, &e);
  CHECK(rc == RK_OK && rk_kernel_from(k) == RK_FROM_COMPILER,
        "build: compiling after a failure: %s", e.msg);
  rk_error_clear(&e);
  free(cc);
  free(cflags);
  free(openmp);
}

/* ------------------------------------------------------ input checks */

static void inputs(void) {
  const char *d[] = {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(2)"};
  const char *f = "Sum_Reduction(Exp(-SqDist(x, y)) * b * Sum(s), 0)";
  rk_options o = t_opts(RK_F64, RK_SCHEME_AUTO);
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = NULL;
  if (!CHECK(rk_compile(f, d, 4, &o, &k, &e) == RK_OK, "inputs: %s", e.msg)) return;
  static double buf[64];
  rk_input ok[] = {{buf, 5, 3}, {buf, 4, 3}, {buf, 4, 1}, {buf, 2, 1}};
  rk_input in[4];
  int64_t nout = -1;
  CHECK(rk_check_inputs(k, ok, 4, &nout, &e) == RK_OK && nout == 5, "inputs: valid inputs: %s",
        e.msg);
  CHECK(rk_check_inputs(k, ok, 3, &nout, &e) == RK_ESHAPE && strstr(e.msg, "4 arguments"),
        "inputs: too few inputs: \"%s\"", e.msg);
  static const struct { int arg; int64_t nrow, ncol; int nodata; const char *msg; } bad[] = {
    {0, 5, 2, 0, "must have 3 columns"},
    {2, 6, 1, 0, "rows"},
    {3, 3, 1, 0, "length 2"},
    {3, 1, 1, 0, "length 2"},
    {0, 0, 3, 0, "no rows"},
    {1, 4, 3, 1, "no data"},
  };
  double out[16];
  for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
    memcpy(in, ok, sizeof in);
    in[bad[c].arg].nrow = bad[c].nrow;
    in[bad[c].arg].ncol = bad[c].ncol;
    if (bad[c].nodata) in[bad[c].arg].data = NULL;
    int rc = rk_check_inputs(k, in, 4, &nout, &e);
    CHECK(rc == RK_ESHAPE && strstr(e.msg, bad[c].msg),
          "inputs: case %zu: got %s \"%s\", expected a shape error with \"%s\"", c + 1,
          rk_error_code_name(rc), e.msg, bad[c].msg);
    out[0] = 12345;
    rc = rk_run(k, in, 4, out, 0, NULL, NULL, &e);
    CHECK(rc == RK_ESHAPE && out[0] == 12345, "inputs: case %zu: rk_run did not refuse", c + 1);
  }
  rk_error_clear(&e);
}

/* -------------------------------------------- schemes, sizes, threads */

static double last_err(const char *f, const char *const *d, int nd, rk_precision prec,
                       rk_scheme sch, int64_t M, int64_t N) {
  /* the largest relative error, computed here, for comparisons between
   * schemes (t_compare only says pass or fail) */
  rk_options o = t_opts(prec, sch);
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = NULL;
  double err = INFINITY;
  if (rk_compile(f, d, nd, &o, &k, &e) != RK_OK) { rk_error_clear(&e); return err; }
  rk_arginfo a[8];
  rk_input in[8];
  int na = rk_kernel_nargs(k);
  for (int p = 0; p < na; p++) a[p] = *rk_kernel_arg(k, p);
  tu_rng r;
  tu_seed(&r, 99);
  if (tu_make_inputs(a, na, M, N, &r, 0.5, 1.5, 0, in) != 0) return err;
  double *out = malloc((size_t)M * 8), *ref = malloc((size_t)M * 8), *sc = malloc((size_t)M * 8);
  ref_formula *F = malloc(sizeof *F);
  if (out && ref && sc && F && rk_run(k, in, na, out, 0, NULL, NULL, &e) == RK_OK &&
      ref_parse(f, d, nd, F) == 0 && ref_eval(F, in, na, ref, sc) == 0)
    err = tu_max_relerr(out, ref, sc, M, NULL);
  free(out); free(ref); free(sc); free(F);
  tu_free_inputs(in, na);
  rk_error_clear(&e);
  return err;
}

static void schemes(void) {
  const char *d[] = {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", NULL};
  const char *f = "Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)";
  static const char *names[] = {"auto", "direct", "block", "kahan"};
  for (int s = 0; s < 4; s++)
    for (int prec = 0; prec < 2; prec++) {
      char what[64];
      snprintf(what, sizeof what, "scheme %s %s", names[s], prec ? "float32" : "float64");
      t_compare(what, f, d, 3, prec ? RK_F32 : RK_F64, (rk_scheme)s, 50, 5000, -1, 11);
    }
  /* a long float32 sum: block and Kahan must beat the direct sum */
  double ed = last_err(f, d, 3, RK_F32, RK_SCHEME_DIRECT, 8, 200000);
  double eb = last_err(f, d, 3, RK_F32, RK_SCHEME_BLOCK, 8, 200000);
  double ek = last_err(f, d, 3, RK_F32, RK_SCHEME_KAHAN, 8, 200000);
  CHECK(eb < ed && ek < ed && ek < 2e-6 && eb < 2e-6,
        "float32 sums of 200000 terms: relative errors direct %.2e, block %.2e, kahan %.2e "
        "(block and kahan should be below direct and 2e-6)", ed, eb, ek);
  if (getenv("RK_TEST_VERBOSE"))
    printf("  float32, 200000 terms: direct %.2e, block %.2e, kahan %.2e\n", ed, eb, ek);
}

static void sizes(void) {
  const char *d[] = {"x = Vi(3)", "y = Vj(3)", "b = Vj(2)", NULL};
  const char *f0 = "Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)";
  const char *f1 = "Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)";
  static const int64_t mn[][2] = {{1, 1}, {1, 3000}, {3000, 1}, {17, 16}, {16, 17}, {15, 1025}, {33, 2049}};
  for (size_t c = 0; c < sizeof mn / sizeof mn[0]; c++)
    for (int ax = 0; ax < 2; ax++) {
      char what[64];
      snprintf(what, sizeof what, "size %lldx%lld axis %d", (long long)mn[c][0], (long long)mn[c][1], ax);
      t_compare(what, ax ? f1 : f0, d, 3, RK_F64, RK_SCHEME_AUTO, mn[c][0], mn[c][1], -1, 5 + c);
    }
  /* only i variables (nothing to reduce over: one term) and only j */
  const char *di[] = {"x = Vi(3)", NULL};
  t_compare("only Vi", "Sum_Reduction(Exp(x), 0)", di, 1, RK_F64, RK_SCHEME_AUTO, 9, 1, -1, 1);
  const char *dj[] = {"y = Vj(2)", NULL};
  t_compare("only Vj", "Sum_Reduction(Exp(y), 1)", dj, 1, RK_F64, RK_SCHEME_AUTO, 1, 9, -1, 1);
  t_compare("only Vj reduced", "Sum_Reduction(Exp(y), 0)", dj, 1, RK_F64, RK_SCHEME_AUTO, 1, 9, -1, 1);
  /* a large inner dimension */
  const char *dbig[] = {"x = Vi(200)", "y = Vj(200)", NULL};
  t_compare("dim 200", "Sum_Reduction(Exp(-SqDist(x, y) / 100) * y, 0)", dbig, 2, RK_F64,
            RK_SCHEME_AUTO, 20, 300, -1, 1);
}

static void threads(void) {
  char *lim = getenv("OMP_THREAD_LIMIT") ? strdup(getenv("OMP_THREAD_LIMIT")) : NULL;
  char *num = getenv("OMP_NUM_THREADS") ? strdup(getenv("OMP_NUM_THREADS")) : NULL;
  unsetenv("OMP_THREAD_LIMIT");
  unsetenv("OMP_NUM_THREADS");
  CHECK(rk_ncores() >= 1, "rk_ncores() = %d", rk_ncores());
  CHECK(rk_threads(0, 1e9) == rk_ncores(), "rk_threads(0) = %d, cores %d", rk_threads(0, 1e9),
        rk_ncores());
  CHECK(rk_threads(3, 1e9) == 3, "rk_threads(3) = %d", rk_threads(3, 1e9));
  CHECK(rk_threads(3, 100) == 1, "rk_threads(3, tiny work) = %d", rk_threads(3, 100));
  setenv("OMP_NUM_THREADS", "3", 1);
  CHECK(rk_threads(0, 1e9) == 3, "OMP_NUM_THREADS=3: rk_threads(0) = %d", rk_threads(0, 1e9));
  CHECK(rk_threads(5, 1e9) == 5, "OMP_NUM_THREADS=3: rk_threads(5) = %d", rk_threads(5, 1e9));
  setenv("OMP_THREAD_LIMIT", "2", 1);
  CHECK(rk_threads(0, 1e9) == 2 && rk_threads(8, 1e9) == 2,
        "OMP_THREAD_LIMIT=2: rk_threads gives %d and %d", rk_threads(0, 1e9), rk_threads(8, 1e9));
  setenv("OMP_THREAD_LIMIT", "junk", 1);
  CHECK(rk_threads(4, 1e9) == 4, "OMP_THREAD_LIMIT=junk: rk_threads(4) = %d", rk_threads(4, 1e9));
  if (lim) setenv("OMP_THREAD_LIMIT", lim, 1); else unsetenv("OMP_THREAD_LIMIT");
  if (num) setenv("OMP_NUM_THREADS", num, 1); else unsetenv("OMP_NUM_THREADS");
  free(lim);
  free(num);

  /* results do not depend on the number of threads (each output row is
   * summed by one thread in a fixed order) */
  const char *d[] = {"x = Vi(3)", "y = Vj(3)", "b = Vj(2)"};
  rk_options o = t_opts(RK_F32, RK_SCHEME_AUTO);
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = NULL;
  if (!CHECK(rk_compile("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", d, 3, &o, &k, &e) == RK_OK,
             "threads: %s", e.msg))
    return;
  rk_arginfo a[3];
  rk_input in[3];
  for (int p = 0; p < 3; p++) a[p] = *rk_kernel_arg(k, p);
  tu_rng r;
  tu_seed(&r, 5);
  enum { M = 300, N = 3000 };
  tu_make_inputs(a, 3, M, N, &r, 0.5, 1.5, 0, in);
  static double o1[M * 2], o2[M * 2];
  int rc1 = rk_run(k, in, 3, o1, 1, NULL, NULL, &e);
  int used1 = rk_last_threads();
  int rc2 = rk_run(k, in, 3, o2, 2, NULL, NULL, &e);
  int used2 = rk_last_threads();
  CHECK(rc1 == RK_OK && rc2 == RK_OK && memcmp(o1, o2, sizeof o1) == 0,
        "threads: 1 and 2 threads give different results");
  CHECK(used1 == 1 && used2 >= 1 && used2 <= 2, "threads: used %d and %d threads", used1, used2);
  tu_free_inputs(in, 3);
  rk_error_clear(&e);
}

/* ------------------------------------------------------ interrupts */

static int calls;
static int stop_now(void *data) { calls++; return *(int *)data; }

static void interrupts(void) {
  const char *d[] = {"x = Vi(1)", "b = Vj(1)"};
  rk_options o = t_opts(RK_F64, RK_SCHEME_AUTO);
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = NULL;
  if (!CHECK(rk_compile("Sum_Reduction(x * b, 0)", d, 2, &o, &k, &e) == RK_OK, "interrupt: %s",
             e.msg))
    return;
  /* 2^24 pairs per chunk: 2^18 values of j make chunks of 64 rows */
  enum { M = 128, N = 1 << 18 };
  double *x = malloc(M * sizeof *x), *b = malloc(N * sizeof *b), *out = malloc(M * sizeof *out);
  if (!CHECK(x && b && out, "out of memory")) { free(x); free(b); free(out); return; }
  for (int i = 0; i < M; i++) x[i] = 1;
  for (int j = 0; j < N; j++) b[j] = 1;
  rk_input in[] = {{x, M, 1}, {b, N, 1}};
  int stop = 1;
  calls = 0;
  int rc = rk_run(k, in, 2, out, 0, stop_now, &stop, &e);
  CHECK(rc == RK_EINTERRUPT && calls == 1 && e.code == RK_EINTERRUPT,
        "interrupt: rk_run returned %s after %d calls of the callback", rk_error_code_name(rc), calls);
  stop = 0;
  calls = 0;
  rc = rk_run(k, in, 2, out, 0, stop_now, &stop, &e);
  CHECK(rc == RK_OK && calls == 1 && out[0] == N && out[M - 1] == N,
        "interrupt: a run that is not stopped: %s, %d calls, out %g", rk_error_code_name(rc), calls,
        out[0]);
  free(x);
  free(b);
  free(out);
  rk_error_clear(&e);
}

void test_runtime(void) {
  golden();
  inputs();
  sizes();
  schemes();
  threads();
  interrupts();
  cache();          /* unloads every kernel */
  build_failures();
}
