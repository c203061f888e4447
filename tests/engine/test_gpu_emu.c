/*
 * test_gpu_emu.c -- the GPU backend end to end, on a machine without a GPU:
 * the engine loads fakecuda/fake_cuda.c and fakecuda/fake_nvrtc.c through
 * RKEOPS_LIBCUDA and RKEOPS_LIBNVRTC (exactly as it loads the real
 * libraries), NVRTC's stand-in builds the generated CUDA as host C++
 * (fakecuda/emu.h), and the fake driver runs every block as real threads
 * with a barrier for __syncthreads.  So everything but the device itself
 * runs: the loader and its stubs, the status report, the architecture
 * choice (CUBIN, or PTX when the device is newer than NVRTC), the disk
 * cache and the memo, module loading, the launch geometry with its split
 * of the reduced index and the merge kernel, the gradient orchestration
 * (forward kernel, row sums), copies in and out, runs over two devices
 * (FAKECUDA_NDEV=2: rows shared, results identical to one device), and the
 * freeing of device memory on every path (failures injected).  Every result is compared with
 * the CPU backend on the same data.
 *
 *   test_gpu_emu DIR      DIR holds libfakecuda.so and libfakenvrtc.so
 *
 * The last line is "GPU emulation tests: N passed, M failed".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

static int passed, failed;
static const char *cache;

static int check(int ok, const char *fmt, ...) {
  if (ok) {
    passed++;
    return 1;
  }
  failed++;
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  return 0;
}

/* the fake driver's test hooks */
static int (*live_allocations)(void), (*launches)(void), (*driver_errors)(void);
static void (*fail_alloc_in)(int), (*fail_launch)(int);

static uint64_t rng_state = 88172645463325252ull;
static double unif(double lo, double hi) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return lo + (hi - lo) * (double)(rng_state >> 11) * 0x1.0p-53;
}

static const char *const DECLS[] = {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)",
                                    "z = Vi(4)", "w = Vj(4)", NULL};
#define NDECLS 6

static int compile(const char *f, const char *const *decls, int nd, rk_precision prec,
                   rk_scheme scheme, int backend, int device, rk_kernel **k, rk_error *e) {
  rk_options o;
  rk_options_default(&o);
  o.precision = prec;
  o.scheme = scheme;
  o.cache_dir = cache;
  o.backend = backend;
  o.device = device;
  return rk_compile(f, decls, nd, &o, k, e);
}

typedef struct data {
  int n;
  rk_input in[RK_MAX_ARGS];
} data;

static void make_data(const rk_kernel *k, int64_t M, int64_t N, data *d) {
  d->n = rk_kernel_nargs(k);
  for (int p = 0; p < d->n; p++) {
    const rk_arginfo *a = rk_kernel_arg(k, p);
    int64_t rows = a->cat == RK_CAT_I ? M : a->cat == RK_CAT_J ? N : 1;
    double *v = malloc(sizeof(double) * (size_t)(rows * a->dim));
    for (int64_t q = 0; v && q < rows * a->dim; q++) v[q] = unif(0.5, 1.5);
    d->in[p].data = v;
    d->in[p].nrow = a->cat == RK_CAT_PM ? a->dim : rows;
    d->in[p].ncol = a->cat == RK_CAT_PM ? 1 : a->dim;
  }
}

static void free_data(data *d) {
  for (int p = 0; p < d->n; p++) free((void *)d->in[p].data);
}

/* largest |gpu - cpu| relative to the largest |cpu| of its column; a NaN
 * must be a NaN on both sides (R's NA included) */
static double max_err(const double *g, const double *c, int64_t n, int cols) {
  double worst = 0;
  for (int j = 0; j < cols; j++) {
    double scale = 0;
    for (int64_t i = 0; i < n; i++)
      if (isfinite(c[i + j * n]) && fabs(c[i + j * n]) > scale) scale = fabs(c[i + j * n]);
    if (scale == 0) scale = 1;
    for (int64_t i = 0; i < n; i++) {
      double a = g[i + j * n], b = c[i + j * n], e;
      if (isnan(a) || isnan(b)) e = isnan(a) && isnan(b) ? 0 : INFINITY;
      else if (isinf(a) || isinf(b)) e = a == b ? 0 : INFINITY;
      else e = fabs(a - b) / scale;
      if (e > worst || e != e) worst = e;
    }
  }
  return worst;
}

/* GPU against CPU on one formula at M x N; returns 1 when it agreed */
static int compare(const char *f, const char *const *decls, int nd, rk_precision prec,
                   rk_scheme scheme, int64_t M, int64_t N) {
  const char *pn = prec == RK_F32 ? "float32" : "float64";
  rk_error e;
  rk_error_init(&e);
  rk_kernel *kc = NULL, *kg = NULL;
  if (!check(compile(f, decls, nd, prec, scheme, RK_BACKEND_CPU, -1, &kc, &e) == RK_OK,
             "%s [%s]: CPU compile: %s", f, pn, e.msg) ||
      !check(compile(f, decls, nd, prec, scheme, RK_BACKEND_GPU, -1, &kg, &e) == RK_OK,
             "%s [%s]: GPU compile: %s error: %s%s%s", f, pn, rk_error_code_name(e.code), e.msg,
             e.log ? "\n" : "", e.log ? e.log : "")) {
    rk_error_clear(&e);
    return 0;
  }
  data d;
  make_data(kc, M, N, &d);
  int64_t nout = 0;
  int ok = 0;
  if (check(rk_check_inputs(kg, d.in, d.n, &nout, &e) == RK_OK, "%s: inputs: %s", f, e.msg)) {
    int cols = rk_kernel_outdim(kg);
    double *oc = malloc(sizeof(double) * (size_t)(nout * cols));
    double *og = malloc(sizeof(double) * (size_t)(nout * cols));
    for (int64_t q = 0; og && q < nout * cols; q++) og[q] = -12345.0;
    int before = launches();
    int rc_c = rk_run(kc, d.in, d.n, oc, 2, NULL, NULL, &e);
    int rc_g = rc_c == RK_OK ? rk_run(kg, d.in, d.n, og, 0, NULL, NULL, &e) : rc_c;
    if (check(rc_c == RK_OK && rc_g == RK_OK, "%s [%s] %lldx%lld: run: %s", f, pn, (long long)M,
              (long long)N, e.msg)) {
      double err = max_err(og, oc, nout, cols);
      double grow = sqrt((double)(M > N ? M : N) / 1000.0);
      double tol = (prec == RK_F32 ? 2e-5 : 1e-12) * (grow > 1 ? grow : 1);
      ok = check(err <= tol, "%s [%s] %lldx%lld: GPU vs CPU error %.3g > %.3g", f, pn,
                 (long long)M, (long long)N, err, tol);
      check(launches() > before, "%s: no kernel was launched", f);
    }
    check(live_allocations() == 0, "%s: %d device allocations left after the run", f,
          live_allocations());
    free(oc);
    free(og);
  }
  free_data(&d);
  rk_error_clear(&e);
  return ok;
}

/* (M, N): several blocks and tiles without split; few rows (split into
 * 2 and 6 parts with 4 multiprocessors); a single pair */
static const int64_t SIZES[][2] = {{700, 300}, {67, 1100}, {5, 3000}, {1, 1}};
#define NSIZES 4

static void reductions(void) {
  static const char *const reds[][3] = {
    /* name, extra operand, K */
    {"Sum", "", ""}, {"Min", "", ""}, {"Max", "", ""}, {"ArgMin", "", ""}, {"ArgMax", "", ""},
    {"Min_ArgMin", "", ""}, {"Max_ArgMax", "", ""}, {"KMin", "", ", 3"}, {"ArgKMin", "", ", 3"},
    {"KMin_ArgKMin", "", ", 3"}, {"LogSumExp", "", ""}, {"LogSumExpWeight", ", y", ""},
    {"SumSoftMaxWeight", ", y", ""}, {"Max_SumShiftExp", "", ""},
    {"Max_SumShiftExpWeight", ", y", ""}};
  for (size_t r = 0; r < sizeof reds / sizeof reds[0]; r++) {
    if (red_lookup(reds[r][0], strlen(reds[r][0])) < 0) continue;
    for (int axis = 0; axis < 2; axis++) {
      char f[256];
      snprintf(f, sizeof f, "%s_Reduction(SqDist(x, y) * b%s%s, %d)", reds[r][0], reds[r][1],
               reds[r][2], axis);
      for (int v = 0; v < 2; v++)
        for (int s = 0; s < NSIZES; s++)
          compare(f, DECLS, NDECLS, v ? RK_F32 : RK_F64, RK_SCHEME_AUTO, SIZES[s][axis],
                  SIZES[s][1 - axis]);
    }
  }
  /* every row of the table is covered above */
  check(RK_RED_COUNT == 15, "reductions.def has %d rows: add the new ones to this test",
        RK_RED_COUNT);
}

/* Block-sparse runs (rk_run_ranges): GPU against CPU on the same random
 * ranges (the CPU's ranged runs are checked against the reference in
 * test_ranges.c): blocks larger than a GPU block, gaps, empty and
 * overlapping reduced ranges, both axes, a reduction with indices. */
static void ranges(void) {
  static const char *const f[] = {
    "Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", "Min_ArgMin_Reduction(SqDist(x, y) * b, 1)",
    "KMin_ArgKMin_Reduction(SqDist(x, y), 3, 0)", "LogSumExp_Reduction(-SqDist(x, y) * s, 0)"};
  const int64_t M = 700, N = 650;
  for (size_t q = 0; q < sizeof f / sizeof f[0]; q++) {
    for (int v = 0; v < 2; v++) {
      rk_precision prec = v ? RK_F32 : RK_F64;
      rk_error e;
      rk_error_init(&e);
      rk_kernel *kc = NULL, *kg = NULL;
      if (!check(compile(f[q], DECLS, NDECLS, prec, RK_SCHEME_AUTO, RK_BACKEND_CPU, -1, &kc, &e) ==
                     RK_OK &&
                     compile(f[q], DECLS, NDECLS, prec, RK_SCHEME_AUTO, RK_BACKEND_GPU, -1, &kg,
                             &e) == RK_OK,
                 "ranges: %s: compile: %s", f[q], e.msg)) {
        rk_error_clear(&e);
        continue;
      }
      data d;
      make_data(kc, M, N, &d);
      int axis = rk_kernel_outcat(kc) == RK_CAT_I ? 0 : 1;
      int64_t nout = axis ? N : M, nred = axis ? M : N;
      /* blocks of 1 .. 600 rows (a GPU block has at most 256), gaps */
      int64_t blocks[2 * 64], slices[64], red[2 * 256], nb = 0, nr = 0;
      for (int64_t r = 0; r < nout && nb < 64;) {
        if (unif(0, 1) < 0.25) r += 1 + (int64_t)unif(0, 40);
        if (r >= nout) break;
        int64_t len = 1 + (int64_t)unif(0, 600);
        if (r + len > nout) len = nout - r;
        blocks[2 * nb] = r;
        blocks[2 * nb + 1] = r + len;
        int nq = (int)unif(0, 4);
        for (int k = 0; k < nq; k++) {
          int64_t a = (int64_t)unif(0, (double)nred), b = a + (int64_t)unif(0, (double)(nred - a));
          red[2 * nr] = a;
          red[2 * nr + 1] = k == 2 ? a : b;
          nr++;
        }
        slices[nb++] = nr;
        r += len;
      }
      rk_ranges rg = {nb, blocks, slices, nr, red};
      int cols = rk_kernel_outdim(kc);
      double *oc = malloc(sizeof(double) * (size_t)(nout * cols));
      double *og = malloc(sizeof(double) * (size_t)(nout * cols));
      int before = launches();
      int rc_c = rk_run_ranges(kc, d.in, d.n, oc, axis ? NULL : &rg, axis ? &rg : NULL, 2, NULL,
                               NULL, &e);
      int rc_g = rc_c == RK_OK ? rk_run_ranges(kg, d.in, d.n, og, axis ? NULL : &rg,
                                               axis ? &rg : NULL, 0, NULL, NULL, &e)
                               : rc_c;
      if (check(oc && og && rc_c == RK_OK && rc_g == RK_OK, "ranges: %s: run: %s", f[q], e.msg)) {
        double err = max_err(og, oc, nout, cols);
        check(err <= (v ? 2e-5 : 1e-12), "ranges: %s [%s]: GPU vs CPU error %.3g", f[q],
              v ? "float32" : "float64", err);
        check(launches() > before, "ranges: %s: no kernel was launched", f[q]);
      }
      check(live_allocations() == 0, "ranges: %s: %d device allocations left", f[q],
            live_allocations());
      /* a failed allocation midway: an error, nothing left on the device */
      fail_alloc_in(3);
      int rc_f = rk_run_ranges(kg, d.in, d.n, og, axis ? NULL : &rg, axis ? &rg : NULL, 0, NULL,
                               NULL, &e);
      fail_alloc_in(0);
      check(rc_f != RK_OK && live_allocations() == 0,
            "ranges: %s: injected allocation failure: %s, %d allocations left", f[q],
            rk_error_code_name(rc_f), live_allocations());
      free(oc);
      free(og);
      free_data(&d);
      rk_error_clear(&e);
    }
  }
}

static void formulas(void) {
  static const char *const f[] = {
    "Sum_Reduction(Exp(-SqDist(x, y)) * (b | z), 0)",
    "Sum_Reduction(Exp(-s * SqDist(x, y)) * x, 1)",
    "Sum_Reduction(Sqrt(Abs(x - y) + 1) * Log(b) - (x | y) / Norm2(x + y) + Rsqrt(b) ** 3, 0)",
    "Sum_Reduction(x - y, 0)",
    "Min_ArgMin_Reduction(x - y, 0)",
    "KMin_ArgKMin_Reduction(x - y, 2, 1)",
    "KMin_ArgKMin_Reduction(SqDist(x, y), 5, 0)",  /* K > N at 1 x 1: empty slots, NA */
    "Sum_Reduction(ComplexMult(z, w), 0)",
    "Sum_Reduction(s * z, 1)",                     /* no Vj variable: a reduced index of 1 */
  };
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    for (int v = 0; v < 2; v++)
      for (int s = 0; s < NSIZES; s++)
        compare(f[i], DECLS, NDECLS, v ? RK_F32 : RK_F64, RK_SCHEME_AUTO, SIZES[s][0], SIZES[s][1]);
  static const rk_scheme sch[] = {RK_SCHEME_DIRECT, RK_SCHEME_BLOCK, RK_SCHEME_KAHAN};
  for (int k = 0; k < 3; k++)
    for (int v = 0; v < 2; v++)
      compare("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", DECLS, NDECLS, v ? RK_F32 : RK_F64,
              sch[k], 5, 3000);
  /* the widest tile the scheme accepts: 32 rows of 384 float32 columns */
  const char *wide[] = {"x = Vi(1)", "y = Vj(384)"};
  compare("Sum_Reduction(x * y, 0)", wide, 2, RK_F32, RK_SCHEME_AUTO, 70, 100);
}

static void gradients(void) {
  const char *decls[NDECLS + 2];
  for (int d = 0; d < NDECLS; d++) decls[d] = DECLS[d];
  decls[NDECLS] = "e = Vi(1)";
  decls[NDECLS + 1] = NULL;
  static const char *const g[] = {
    "Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 0), x, e)",
    "Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 0), y, e)",        /* over i */
    "Grad(Sum_Reduction(Exp(-s * SqDist(x, y)) * b, 0), s, e)",    /* row sums */
    "Grad(LogSumExp_Reduction(-SqDist(x, y) * b, 0), x, e)",       /* forward kernel */
    "Grad(LogSumExp_Reduction(-SqDist(x, y) * b, 0), y, e)",
    "Grad(Min_Reduction(SqDist(x, y) * b, 0), y, e)",
  };
  for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
    rk_options o;
    rk_options_default(&o);
    rk_error e;
    rk_error_init(&e);
    int rc = rk_generate(g[i], decls, NDECLS + 1, &o, NULL, &e);
    rk_error_clear(&e);
    if (rc != RK_OK) {
      printf("note: %s does not generate on the CPU either: skipped\n", g[i]);
      continue;
    }
    for (int v = 0; v < 2; v++)
      for (int s = 0; s < 3; s++)
        compare(g[i], decls, NDECLS + 1, v ? RK_F32 : RK_F64, RK_SCHEME_AUTO, SIZES[s][0],
                SIZES[s][1]);
  }
}

/* ------------------------------------------------------------ machinery */

static void cache_and_memo(void) {
  const char *f = "Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)";
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k1 = NULL, *k2 = NULL;
  rk_unload_all();
  int rc = compile(f, DECLS, NDECLS, RK_F32, RK_SCHEME_AUTO, RK_BACKEND_GPU, -1, &k1, &e);
  check(rc == RK_OK && rk_kernel_from(k1) != RK_FROM_MEMO, "first compile: %s", e.msg);
  rc = compile(f, DECLS, NDECLS, RK_F32, RK_SCHEME_AUTO, RK_BACKEND_GPU, 0, &k2, &e);
  check(rc == RK_OK && k2 == k1 && rk_kernel_from(k2) == RK_FROM_MEMO,
        "device -1 and 0 are the same kernel, from the memo");
  const char *p = rc == RK_OK ? rk_kernel_path(k2) : "";
  check(strstr(p, ".cubin") != NULL, "compute capability 8.6, NVRTC knows 8.6: a CUBIN, got %s", p);
  rk_unload_all();
  rc = compile(f, DECLS, NDECLS, RK_F32, RK_SCHEME_AUTO, RK_BACKEND_GPU, -1, &k1, &e);
  check(rc == RK_OK && rk_kernel_from(k1) == RK_FROM_DISK, "after rk_unload_all: from the disk, got %d",
        rc == RK_OK ? rk_kernel_from(k1) : -1);
  compare(f, DECLS, NDECLS, RK_F32, RK_SCHEME_AUTO, 100, 100);
  /* a torn file is rebuilt */
  if (rc == RK_OK) {
    char *path = strdup(rk_kernel_path(k1));
    rk_unload_all();
    FILE *fp = path ? fopen(path, "r+b") : NULL;
    if (fp) {
      fseek(fp, 100, SEEK_SET);
      fputc('#', fp);
      fclose(fp);
    }
    rc = compile(f, DECLS, NDECLS, RK_F32, RK_SCHEME_AUTO, RK_BACKEND_GPU, -1, &k1, &e);
    check(rc == RK_OK && rk_kernel_from(k1) == RK_FROM_COMPILER, "a corrupted kernel file is rebuilt");
    free(path);
  }
  /* same source, other declarations (an unused argument's dimension is not
   * in the source): distinct kernels, each checking its own */
  {
    const char *u1[] = {"x = Vi(3)", "y = Vj(1)"}, *u2[] = {"x = Vi(3)", "y = Vj(2)"};
    rk_kernel *ku1 = NULL, *ku2 = NULL;
    rc = compile("Sum_Reduction(x * IntCst(31), 0)", u1, 2, RK_F64, RK_SCHEME_AUTO,
                 RK_BACKEND_GPU, -1, &ku1, &e);
    if (rc == RK_OK)
      rc = compile("Sum_Reduction(x * IntCst(31), 0)", u2, 2, RK_F64, RK_SCHEME_AUTO,
                   RK_BACKEND_GPU, -1, &ku2, &e);
    check(rc == RK_OK && ku1 != ku2 && rk_kernel_arg(ku2, 1)->dim == 2,
          "declarations y = Vj(1) then Vj(2): two kernels (%s)", e.msg);
  }
  /* CPU and GPU kernels of one formula are different kernels */
  rc = compile(f, DECLS, NDECLS, RK_F32, RK_SCHEME_AUTO, RK_BACKEND_CPU, -1, &k2, &e);
  check(rc == RK_OK && k2 != k1, "the CPU kernel is not the GPU one");
  /* a device that does not exist */
  rc = compile(f, DECLS, NDECLS, RK_F32, RK_SCHEME_AUTO, RK_BACKEND_GPU, 3, &k1, &e);
  check(rc == RK_EARG && strstr(e.msg, "no GPU device 3") && k1 == NULL,
        "device 3 of 1: RK_EARG, got %s: %s", rk_error_code_name(rc), e.msg);
  rk_error_clear(&e);
}

/* device memory is freed when a run fails half-way */
static void failures(void) {
  const char *f = "Grad(LogSumExp_Reduction(-SqDist(x, y) * b, 0), x, Var(6, 1, 0))";
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = NULL;
  if (!check(compile(f, DECLS, NDECLS, RK_F64, RK_SCHEME_AUTO, RK_BACKEND_GPU, -1, &k, &e) == RK_OK,
             "failures: compile %s", e.msg))
    return;
  data d;
  make_data(k, 40, 2000, &d);
  int64_t nout;
  rk_check_inputs(k, d.in, d.n, &nout, &e);
  double *out = malloc(sizeof(double) * (size_t)(nout * rk_kernel_outdim(k)));
  int errs = driver_errors();
  for (int n = 1; n <= 24; n++) {
    fail_alloc_in(n);
    int rc = rk_run(k, d.in, d.n, out, 0, NULL, NULL, &e);
    fail_alloc_in(0);
    check(rc == RK_OK || (rc == RK_ENOMEM && strstr(e.msg, "out of GPU memory")),
          "allocation %d fails: RK_ENOMEM expected, got %s: %s", n, rk_error_code_name(rc), e.msg);
    check(live_allocations() == 0, "allocation %d fails: %d allocations left", n, live_allocations());
    rk_error_clear(&e);
  }
  fail_launch(1);
  int rc = rk_run(k, d.in, d.n, out, 0, NULL, NULL, &e);
  fail_launch(0);
  check(rc == RK_EINTERNAL && strstr(e.msg, "cuLaunchKernel") && strstr(e.msg, "CUDA_ERROR_LAUNCH_FAILED"),
        "a failed launch: RK_EINTERNAL naming the call and the error, got %s: %s",
        rk_error_code_name(rc), e.msg);
  check(live_allocations() == 0, "a failed launch: %d allocations left", live_allocations());
  check(driver_errors() > errs, "the injected failures reached the driver");
  rk_error_clear(&e);
  /* interrupted: only between chunks of rows, which need far more rows than
   * a test can afford: the callback must simply not be called here */
  free(out);
  free_data(&d);
}

/* ------------------------------------------------------------ several devices */

static int (*live_on)(int), (*launches_on)(int);
static void (*fail_launch_on)(int);

/* rk_run_devices over devs against rk_run on devs[0]'s kernel alone (bit
 * for bit) and the CPU (tolerance); launches on every device when the
 * output has rows enough for both, nothing left on any device */
static void compare_devices(const char *f, const char *const *decls, int nd, rk_precision prec,
                            int64_t M, int64_t N, const int *devs, int ndev) {
  const char *pn = prec == RK_F32 ? "float32" : "float64";
  rk_error e;
  rk_error_init(&e);
  rk_kernel *kc = NULL, *kg = NULL;
  if (!check(compile(f, decls, nd, prec, RK_SCHEME_AUTO, RK_BACKEND_CPU, -1, &kc, &e) == RK_OK &&
                 compile(f, decls, nd, prec, RK_SCHEME_AUTO, RK_BACKEND_GPU, devs[0], &kg, &e) ==
                     RK_OK,
             "devices: %s [%s]: compile: %s", f, pn, e.msg)) {
    rk_error_clear(&e);
    return;
  }
  data d;
  make_data(kc, M, N, &d);
  int64_t nout = 0;
  rk_check_inputs(kg, d.in, d.n, &nout, &e);
  int cols = rk_kernel_outdim(kg);
  size_t bytes = sizeof(double) * (size_t)(nout * cols);
  double *oc = malloc(bytes), *o1 = malloc(bytes), *o2 = malloc(bytes);
  for (int64_t q = 0; q < nout * cols; q++) o1[q] = o2[q] = -12345.0;
  int l0 = launches_on(devs[0]), l1 = launches_on(devs[1]);
  int rc = rk_run(kc, d.in, d.n, oc, 2, NULL, NULL, &e);
  if (rc == RK_OK) rc = rk_run(kg, d.in, d.n, o1, 0, NULL, NULL, &e);
  int mid0 = launches_on(devs[0]), mid1 = launches_on(devs[1]);
  if (rc == RK_OK) rc = rk_run_devices(kg, devs, ndev, d.in, d.n, o2, NULL, NULL, &e);
  if (check(rc == RK_OK, "devices: %s [%s] %lldx%lld: run: %s", f, pn, (long long)M, (long long)N,
            e.msg)) {
    check(memcmp(o1, o2, bytes) == 0, "devices: %s [%s] %lldx%lld: %d devices differ from one", f,
          pn, (long long)M, (long long)N, ndev);
    double err = max_err(o2, oc, nout, cols);
    double tol = prec == RK_F32 ? 2e-5 : 1e-12;
    check(err <= tol, "devices: %s [%s] %lldx%lld: GPU vs CPU error %.3g", f, pn, (long long)M,
          (long long)N, err);
    check(mid1 == l1 && mid0 > l0, "devices: %s: the one-device run launched on device %d only", f,
          devs[0]);
    /* both devices get blocks when the output has two blocks of rows or more */
    if (nout >= 512)
      check(launches_on(devs[0]) > mid0 && launches_on(devs[1]) > mid1,
            "devices: %s %lldx%lld: launches on devices %d and %d: %d and %d", f, (long long)M,
            (long long)N, devs[0], devs[1], launches_on(devs[0]) - mid0,
            launches_on(devs[1]) - mid1);
  }
  check(live_allocations() == 0, "devices: %s: %d allocations left", f, live_allocations());
  free(oc);
  free(o1);
  free(o2);
  free_data(&d);
  rk_error_clear(&e);
}

static void devices(void) {
  rk_unload_all();
  rk_gpu_unload();
  setenv("FAKECUDA_NDEV", "2", 1);
  char rep[8192];
  int st = rk_gpu_status(rep, sizeof rep);
  check(st == RK_GPU_OK && strstr(rep, "devices: 2") && strstr(rep, "[0] rkeops fake GPU 0") &&
            strstr(rep, "[1] rkeops fake GPU 1"),
        "two devices: the report lists both:\n%s", rep);
  const char *decls[NDECLS + 2];
  for (int d = 0; d < NDECLS; d++) decls[d] = DECLS[d];
  decls[NDECLS] = "e = Vi(1)";
  decls[NDECLS + 1] = NULL;
  static const char *const f[] = {
    "Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
    "Min_ArgMin_Reduction(SqDist(x, y) * b, 1)",
    "KMin_ArgKMin_Reduction(SqDist(x, y), 3, 0)",
    "LogSumExp_Reduction(-SqDist(x, y) * s, 1)",
    "Grad(LogSumExp_Reduction(-SqDist(x, y) * b, 0), x, e)",     /* forward kernel */
    "Grad(Sum_Reduction(Exp(-s * SqDist(x, y)) * b, 0), s, e)",  /* row sums */
  };
  /* rows over several blocks (no split), few rows (split, merge), one row */
  static const int64_t sizes[][2] = {{1300, 300}, {600, 2000}, {67, 1100}, {1, 50}};
  const int d01[] = {0, 1}, d10[] = {1, 0};
  for (size_t q = 0; q < sizeof f / sizeof f[0]; q++) {
    int axis = strstr(f[q], ", 1)") != NULL;
    for (int s = 0; s < 4; s++)
      compare_devices(f[q], decls, NDECLS + 1, s == 1 ? RK_F32 : RK_F64, sizes[s][axis],
                      sizes[s][1 - axis], d01, 2);
  }
  /* the kernel compiled for device 1, run on 1 then 0 */
  compare_devices(f[0], decls, NDECLS + 1, RK_F64, 1300, 300, d10, 2);
  /* unequal devices: device 1 with three times the multiprocessors gets
   * three quarters of the blocks; the plan stays device 0's */
  rk_unload_all();
  rk_gpu_unload();
  setenv("FAKECUDA_SMS1", "12", 1);
  compare_devices(f[0], decls, NDECLS + 1, RK_F64, 1300, 300, d01, 2);
  compare_devices(f[4], decls, NDECLS + 1, RK_F32, 2100, 700, d01, 2);
  unsetenv("FAKECUDA_SMS1");
  rk_unload_all();
  rk_gpu_unload();

  /* bad device lists, a CPU kernel */
  rk_error e;
  rk_error_init(&e);
  rk_kernel *kg = NULL, *kc = NULL;
  if (!check(compile(f[4], decls, NDECLS + 1, RK_F64, RK_SCHEME_AUTO, RK_BACKEND_GPU, 0, &kg, &e) ==
                 RK_OK &&
                 compile(f[4], decls, NDECLS + 1, RK_F64, RK_SCHEME_AUTO, RK_BACKEND_CPU, -1, &kc,
                         &e) == RK_OK,
             "devices: compile: %s", e.msg)) {
    rk_error_clear(&e);
    unsetenv("FAKECUDA_NDEV");
    return;
  }
  data d;
  make_data(kg, 900, 700, &d);
  int64_t nout;
  rk_check_inputs(kg, d.in, d.n, &nout, &e);
  double *out = malloc(sizeof(double) * (size_t)(nout * rk_kernel_outdim(kg)));
  const int d00[] = {0, 0}, d02[] = {0, 2}, dm[] = {-1, 1};
  int rc = rk_run_devices(kg, d00, 2, d.in, d.n, out, NULL, NULL, &e);
  check(rc == RK_EARG && strstr(e.msg, "device 0 is listed twice"), "devices 0, 0: %s: %s",
        rk_error_code_name(rc), e.msg);
  rc = rk_run_devices(kg, d02, 2, d.in, d.n, out, NULL, NULL, &e);
  check(rc == RK_EARG && strstr(e.msg, "no GPU device 2") && strstr(e.msg, "2 devices"),
        "devices 0, 2 of 2: %s: %s", rk_error_code_name(rc), e.msg);
  check(live_allocations() == 0, "bad device list: %d allocations left", live_allocations());
  rc = rk_run_devices(kc, d01, 2, d.in, d.n, out, NULL, NULL, &e);
  check(rc == RK_EARG && strstr(e.msg, "GPU kernel"), "a CPU kernel on devices: %s: %s",
        rk_error_code_name(rc), e.msg);
  rc = rk_run_devices(kg, d01, 0, d.in, d.n, out, NULL, NULL, &e);
  check(rc == RK_EARG, "no device: %s", rk_error_code_name(rc));
  rc = rk_run_devices(kg, dm, 2, d.in, d.n, out, NULL, NULL, &e);
  check(rc == RK_OK, "devices -1 (the default, 0) and 1: %s", e.msg);

  /* failures on either device: an error, nothing left on any device */
  int n_ok = 0, n_oom = 0;
  for (int n = 1; n <= 40; n++) {
    fail_alloc_in(n);
    rc = rk_run_devices(kg, d01, 2, d.in, d.n, out, NULL, NULL, &e);
    fail_alloc_in(0);
    n_ok += rc == RK_OK;
    n_oom += rc == RK_ENOMEM;
    check(rc == RK_OK || (rc == RK_ENOMEM && strstr(e.msg, "out of GPU memory")),
          "devices: allocation %d fails: RK_ENOMEM expected, got %s: %s", n,
          rk_error_code_name(rc), e.msg);
    check(live_on(0) == 0 && live_on(1) == 0, "devices: allocation %d fails: %d + %d left", n,
          live_on(0), live_on(1));
    rk_error_clear(&e);
  }
  check(n_oom > 10 && n_ok > 0, "devices: the injected failures reached both devices (%d, %d)",
        n_oom, n_ok);
  for (int dv = 0; dv < 2; dv++) {
    fail_launch_on(dv);
    int before = launches_on(1 - dv);
    rc = rk_run_devices(kg, d01, 2, d.in, d.n, out, NULL, NULL, &e);
    fail_launch_on(-1);
    check(rc == RK_EINTERNAL && strstr(e.msg, "CUDA_ERROR_LAUNCH_FAILED"),
          "devices: launches on device %d fail: %s: %s", dv, rk_error_code_name(rc), e.msg);
    check(dv == 1 ? launches_on(0) > before : 1, "devices: device 0 launched before device 1 failed");
    check(live_on(0) == 0 && live_on(1) == 0, "devices: failed launch on %d: %d + %d left", dv,
          live_on(0), live_on(1));
    rk_error_clear(&e);
  }
  free(out);
  free_data(&d);
  rk_error_clear(&e);
  rk_unload_all();
  rk_gpu_unload();
  unsetenv("FAKECUDA_NDEV");
}

/* a device newer than NVRTC knows: PTX for the newest known architecture */
static void ptx_path(void) {
  rk_gpu_unload();
  setenv("FAKECUDA_CC", "90", 1);
  const char *f = "ArgKMin_Reduction(SqDist(x, y), 3, 0)";
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = NULL;
  int rc = compile(f, DECLS, NDECLS, RK_F32, RK_SCHEME_AUTO, RK_BACKEND_GPU, -1, &k, &e);
  check(rc == RK_OK && strstr(rk_kernel_path(k), ".ptx"),
        "compute capability 9.0, NVRTC up to 8.6: PTX, got %s %s", rk_error_code_name(rc),
        rc == RK_OK ? rk_kernel_path(k) : e.msg);
  compare(f, DECLS, NDECLS, RK_F32, RK_SCHEME_AUTO, 67, 1100);
  /* older than every architecture NVRTC knows */
  rk_gpu_unload();
  setenv("FAKECUDA_CC", "61", 1);
  rc = compile(f, DECLS, NDECLS, RK_F32, RK_SCHEME_AUTO, RK_BACKEND_GPU, -1, &k, &e);
  check(rc == RK_EBUILD && strstr(e.msg, "compute capability 6.1"),
        "compute capability 6.1: RK_EBUILD naming it, got %s: %s", rk_error_code_name(rc), e.msg);
  rk_gpu_unload();
  setenv("FAKECUDA_CC", "86", 1);
  rk_error_clear(&e);
}

static void status(void) {
  char rep[8192];
  int st = rk_gpu_status(rep, sizeof rep);
  check(st == RK_GPU_OK && rk_gpu_available(), "status with the fake libraries: %s\n%s",
        rk_gpu_status_name(st), rep);
  check(strstr(rep, "[0] rkeops fake GPU 0 (CPU emulation): compute capability 8.6") &&
            strstr(rep, "CUDA 12.4") && strstr(rep, "NVRTC: ") && strstr(rep, "version 12.4"),
        "the report names the device, the driver and NVRTC:\n%s", rep);
  printf("%s", rep);
  /* cuInit failing: the status says so, and so does rk_compile */
  rk_gpu_unload();
  setenv("FAKECUDA_FAIL_INIT", "1", 1);
  st = rk_gpu_status(rep, sizeof rep);
  check(st == RK_GPU_INIT_FAILED && strstr(rep, "cuInit failed"), "cuInit failing: %s\n%s",
        rk_gpu_status_name(st), rep);
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = NULL;
  int rc = compile("Sum_Reduction(x, 0)", DECLS, NDECLS, RK_F64, RK_SCHEME_AUTO, RK_BACKEND_GPU, -1,
                   &k, &e);
  check(rc == RK_ELOAD && strstr(e.msg, "cuInit"), "cuInit failing: rk_compile says %s: %s",
        rk_error_code_name(rc), e.msg);
  rk_error_clear(&e);
  unsetenv("FAKECUDA_FAIL_INIT");
  rk_gpu_unload();
  /* no device */
  setenv("FAKECUDA_NDEV", "0", 1);
  st = rk_gpu_status(rep, sizeof rep);
  check(st == RK_GPU_NO_DEVICE, "no device: %s", rk_gpu_status_name(st));
  unsetenv("FAKECUDA_NDEV");
  rk_gpu_unload();
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_gpu_emu DIR (holding libfakecuda.so and libfakenvrtc.so)\n");
    return 2;
  }
  char lc[4096], ln[4096];
  snprintf(lc, sizeof lc, "%s/libfakecuda.so", argv[1]);
  snprintf(ln, sizeof ln, "%s/libfakenvrtc.so", argv[1]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  setenv("RKEOPS_LIBCUDA", lc, 1);
  setenv("RKEOPS_LIBNVRTC", ln, 1);
  unsetenv("FAKECUDA_CC");
  char tmpl[] = "/tmp/rk-gpu-emu-XXXXXX";
  cache = mkdtemp(tmpl);
  void *h = dlopen(lc, RTLD_NOW | RTLD_LOCAL);
  if (!cache || !h) {
    printf("GPU emulation tests: cannot set up (%s)\nGPU emulation tests: 0 passed, 1 failed\n",
           h ? "no temporary folder" : dlerror());
    return 1;
  }
#define HOOK(var, name) do { void *s_ = dlsym(h, name); memcpy(&var, &s_, sizeof s_); } while (0)
  HOOK(live_allocations, "fakecuda_live_allocations");
  HOOK(launches, "fakecuda_launches");
  HOOK(driver_errors, "fakecuda_errors");
  HOOK(fail_alloc_in, "fakecuda_fail_alloc_in");
  HOOK(fail_launch, "fakecuda_fail_launch");
  HOOK(live_on, "fakecuda_live_allocations_on");
  HOOK(launches_on, "fakecuda_launches_on");
  HOOK(fail_launch_on, "fakecuda_fail_launch_on");
#undef HOOK
  static const struct { const char *name; void (*fn)(void); } parts[] = {
    {"status", status}, {"cache and memo", cache_and_memo}, {"reductions", reductions},
    {"formulas", formulas}, {"ranges", ranges}, {"gradients", gradients}, {"failures", failures},
    {"several devices", devices}, {"PTX path", ptx_path}};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int f0 = failed;
    parts[i].fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("== %s: %s (%.1f s)\n", parts[i].name, failed == f0 ? "ok" : "FAILED",
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
  }
  rk_unload_all();
  rk_gpu_unload();
  void (*shutdown)(void);
  void *sd = dlsym(h, "fakecuda_shutdown");
  memcpy(&shutdown, &sd, sizeof sd);
  if (shutdown) shutdown();
  dlclose(h);
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
  if (system(cmd) != 0) printf("note: could not remove %s\n", cache);
  printf("GPU emulation tests: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
