/*
 * rk-check.c -- the standalone driver: one formula, random data, the
 * engine against an independent reference, and timings.  No R.
 *
 *   rk-check [options] FORMULA DECL...
 *   rk-check -M 1000 -N 1031 'Sum_Reduction(Exp(-SqDist(x,y))*b, 0)' \
 *            'x=Vi(3)' 'y=Vj(3)' 'b=Vj(2)'
 *
 * Steps: compile the formula with the engine (time, and whether it came
 * from the compiler, the disk cache or the in-process memo); draw inputs
 * uniform in [lo, hi) (default [0.5, 1.5): never zero); run once (first
 * run) and --repeat more times (best time, pairs/s); evaluate the formula
 * with the reference evaluator of refeval.c (its own parser and a naive
 * double loop in double precision: no generated code, no tiling; central
 * differences for Grad(...) formulas); print the largest error relative
 * to the magnitude of the summed terms, the tolerance, and PASS or FAIL.
 *
 * Backends: a table of {name, engine backend, availability}: "cpu" and
 * "gpu" (CUDA through the driver and NVRTC, which the engine finds at run
 * time; without them rk-check says what is missing and exits with 2).  The
 * reference is the same for every backend, so on the GPU machine (no R)
 * `rk-check --backend gpu ...` validates the CUDA path against it.
 * --nvrtc ARCH only compiles the CUDA source with NVRTC (CI without a GPU).
 *
 * Exit status: 0 PASS, 1 FAIL (numbers disagree), 2 usage or engine error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "refeval.h"
#include "tutil.h"

/* ------------------------------------------------------------ backends */

typedef struct run_cfg {
  rk_options opt;
  int threads;
} run_cfg;

/* A backend: how to compile and run a kernel with the engine, and why it
 * cannot be used here (NULL when it can).  The reference is the same for
 * every backend. */
typedef struct backend {
  const char *name;
  int engine_backend;    /* rk_options.backend                        */
  const char *(*missing)(void);
} backend;

static const char *cpu_missing(void) { return NULL; }

static char gpu_report[8192];
static const char *gpu_missing(void) {
  int st = rk_gpu_status(gpu_report, sizeof gpu_report);
  return st == RK_GPU_OK ? NULL : gpu_report;
}

static const backend backends[] = {
  {"cpu", RK_BACKEND_CPU, cpu_missing},
  {"gpu", RK_BACKEND_GPU, gpu_missing},
};

static int be_compile(const char *formula, const char *const *decls, int ndecls,
                      const run_cfg *cfg, rk_kernel **k, rk_error *err) {
  return rk_compile(formula, decls, ndecls, &cfg->opt, k, err);
}

/* the engine's rk_run dispatches on the kernel's backend */
static int be_run(const rk_kernel *k, const rk_input *in, int nin, double *out,
                  const run_cfg *cfg, rk_error *err) {
  return rk_run(k, in, nin, out, cfg->threads, NULL, NULL, err);
}

/* ------------------------------------------------------------ options */

static void usage(FILE *f) {
  fprintf(f,
    "usage: rk-check [options] FORMULA DECL...\n"
    "  FORMULA          e.g. 'Sum_Reduction(Exp(-SqDist(x,y))*b, 0)'\n"
    "  DECL             e.g. 'x=Vi(3)' 'y=Vj(3)' 'b=Vj(2)' (or 'x=Vi(0,3)' ...)\n"
    "options:\n"
    "  -M ROWS          rows of the Vi variables (default 1000)\n"
    "  -N ROWS          rows of the Vj variables (default 1031)\n"
    "  --float32        compute in float32 (default float64)\n"
    "  --scheme S       auto|direct|block|kahan (default auto)\n"
    "  --seed S         random seed (default 1)\n"
    "  --repeat R       timed runs after the first (default 5)\n"
    "  --threads T      threads (default 0: the engine's choice)\n"
    "  --backend B      cpu (default) or gpu (CUDA, found at run time)\n"
    "  --device D       GPU ordinal (default: the default device)\n"
    "  --nvrtc ARCH     compile-only check: generate the CUDA source and\n"
    "                   compile it with NVRTC for ARCH (compute_75: PTX,\n"
    "                   sm_90: CUBIN); needs libnvrtc, no GPU; no run\n"
    "  --range LO HI    data uniform in [LO, HI) (default 0.5 1.5)\n"
    "  --grid B         round the data to multiples of 2^-B (default: no)\n"
    "  --tol X          tolerance instead of the default (1e-12 in float64,\n"
    "                   1e-5 in float32, times sqrt(n / 1000) for n > 1000\n"
    "                   summed terms; 1e-6 and 1e-4 for gradients, which the\n"
    "                   reference computes by central differences)\n"
    "  --check-rows K   compare K sampled output rows (default: all, or a\n"
    "                   sample when the reference would take long)\n"
    "  --cache-dir DIR  kernel cache (default: a fresh temporary folder)\n"
    "  --keep-source    keep the generated C beside the kernel\n"
    "  -q, --quiet      one line of output\n");
}

static int parse_i64(const char *s, long long lo, long long *v) {
  char *end;
  long long x = strtoll(s, &end, 10);
  if (!*s || *end || x < lo) return -1;
  *v = x;
  return 0;
}

static int parse_dbl(const char *s, double *v) {
  char *end;
  double x = strtod(s, &end);
  if (!*s || *end) return -1;
  *v = x;
  return 0;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv) {
  long long M = 1000, N = 1031, seed = 1, repeat = 5, threads = 0, check_rows = -1, grid = 0;
  double lo = 0.5, hi = 1.5, tol = -1;
  const char *bname = "cpu", *cache_dir = NULL, *nvrtc_arch = NULL;
  int quiet = 0;
  run_cfg cfg;
  rk_options_default(&cfg.opt);
  const char *formula = NULL;
  const char **decls = calloc((size_t)argc + 1, sizeof *decls);
  int ndecls = 0;
  if (!decls) return 2;

#define NEED(k) do { if (a + (k) >= argc) { fprintf(stderr, "rk-check: %s needs a value\n", argv[a]); goto bad_usage; } } while (0)
  for (int a = 1; a < argc; a++) {
    const char *s = argv[a];
    long long v;
    if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) { usage(stdout); free(decls); return 0; }
    else if (strcmp(s, "-M") == 0) { NEED(1); if (parse_i64(argv[++a], 1, &M)) goto bad_value; }
    else if (strcmp(s, "-N") == 0) { NEED(1); if (parse_i64(argv[++a], 1, &N)) goto bad_value; }
    else if (strcmp(s, "--float32") == 0) cfg.opt.precision = RK_F32;
    else if (strcmp(s, "--float64") == 0) cfg.opt.precision = RK_F64;
    else if (strcmp(s, "--scheme") == 0) {
      NEED(1);
      const char *v2 = argv[++a];
      if (strcmp(v2, "auto") == 0) cfg.opt.scheme = RK_SCHEME_AUTO;
      else if (strcmp(v2, "direct") == 0) cfg.opt.scheme = RK_SCHEME_DIRECT;
      else if (strcmp(v2, "block") == 0) cfg.opt.scheme = RK_SCHEME_BLOCK;
      else if (strcmp(v2, "kahan") == 0) cfg.opt.scheme = RK_SCHEME_KAHAN;
      else goto bad_value;
    }
    else if (strcmp(s, "--seed") == 0) { NEED(1); if (parse_i64(argv[++a], 0, &seed)) goto bad_value; }
    else if (strcmp(s, "--repeat") == 0) { NEED(1); if (parse_i64(argv[++a], 0, &repeat)) goto bad_value; }
    else if (strcmp(s, "--threads") == 0) { NEED(1); if (parse_i64(argv[++a], 0, &threads)) goto bad_value; }
    else if (strcmp(s, "--grid") == 0) { NEED(1); if (parse_i64(argv[++a], 0, &grid) || grid > 40) goto bad_value; }
    else if (strcmp(s, "--check-rows") == 0) { NEED(1); if (parse_i64(argv[++a], 0, &check_rows)) goto bad_value; }
    else if (strcmp(s, "--backend") == 0) { NEED(1); bname = argv[++a]; }
    else if (strcmp(s, "--device") == 0) { NEED(1); if (parse_i64(argv[++a], -1, &v) || v > 1024) goto bad_value; cfg.opt.device = (int)v; }
    else if (strcmp(s, "--nvrtc") == 0) { NEED(1); nvrtc_arch = argv[++a]; }
    else if (strcmp(s, "--range") == 0) {
      NEED(2);
      if (parse_dbl(argv[a + 1], &lo) || parse_dbl(argv[a + 2], &hi) || !(lo < hi)) { a++; goto bad_value; }
      a += 2;
    }
    else if (strcmp(s, "--tol") == 0) { NEED(1); if (parse_dbl(argv[++a], &tol) || !(tol > 0)) goto bad_value; }
    else if (strcmp(s, "--cache-dir") == 0) { NEED(1); cache_dir = argv[++a]; }
    else if (strcmp(s, "--keep-source") == 0) cfg.opt.keep_source = 1;
    else if (strcmp(s, "-q") == 0 || strcmp(s, "--quiet") == 0) quiet = 1;
    else if (s[0] == '-' && s[1] == '-') { fprintf(stderr, "rk-check: unknown option %s\n", s); goto bad_usage; }
    else if (!formula) formula = s;
    else decls[ndecls++] = s;
    (void)v;
    continue;
  bad_value:
    fprintf(stderr, "rk-check: bad value for %s: %s\n", argv[a - 1], argv[a]);
    goto bad_usage;
  }
#undef NEED
  if (!formula) {
    fprintf(stderr, "rk-check: no formula\n");
    goto bad_usage;
  }
  if (threads > 4096 || repeat > 100000) {
    fprintf(stderr, "rk-check: --threads or --repeat too large\n");
    goto bad_usage;
  }
  cfg.threads = (int)threads;

  const backend *be = NULL;
  for (size_t b = 0; b < sizeof backends / sizeof backends[0]; b++)
    if (strcmp(backends[b].name, bname) == 0) be = &backends[b];
  if (!be) {
    fprintf(stderr, "rk-check: unknown backend '%s' (cpu or gpu)\n", bname);
    goto bad_usage;
  }
  cfg.opt.backend = be->engine_backend;

  if (nvrtc_arch) {   /* compile-only: NVRTC, no device */
    rk_error e;
    rk_error_init(&e);
    char *log = NULL;
    cfg.opt.backend = RK_BACKEND_GPU;
    int rc = rk_nvrtc_compile_check(formula, decls, ndecls, &cfg.opt, nvrtc_arch, &log, &e);
    if (rc == RK_OK)
      printf("rk-check: NVRTC compiles %s for %s: PASS\n", formula, nvrtc_arch);
    else
      printf("rk-check: NVRTC check of %s for %s: %s error: %s\n%s%s", formula, nvrtc_arch,
             rk_error_code_name(rc), e.msg, log ? log : "", log ? "\n" : "");
    free(log);
    rk_error_clear(&e);
    free(decls);
    return rc == RK_OK ? 0 : rc == RK_EBUILD ? 1 : 2;
  }
  const char *why = be->missing();
  if (why) {
    fprintf(stderr, "rk-check: backend %s is not available here:\n%s\n", be->name, why);
    free(decls);
    return 2;
  }

  int status = 2;
  char *tmpdir = NULL;
  rk_input *in = NULL;
  double *out = NULL, *ref = NULL, *scale = NULL, *got = NULL;
  int64_t *rows = NULL;
  ref_formula *F = NULL;
  rk_kernel *k = NULL;
  int nargs = 0;
  rk_error err;
  rk_error_init(&err);

  if (!cache_dir) {
    tmpdir = tu_tempdir("rk-check-");
    if (!tmpdir) {
      perror("rk-check: cannot create a temporary cache folder");
      goto done;
    }
    cache_dir = tmpdir;
  }
  cfg.opt.cache_dir = cache_dir;

  /* 1. compile */
  double t0 = tu_now();
  int rc = be_compile(formula, decls, ndecls, &cfg, &k, &err);
  double t_compile = tu_now() - t0;
  if (rc != RK_OK) {
    char buf[4096];
    const char *text = err.in_decl >= 0 && err.in_decl < ndecls ? decls[err.in_decl] : formula;
    rk_error_format(&err, text, buf, sizeof buf);
    fprintf(stderr, "rk-check: %s error: %s\n", rk_error_code_name(err.code), buf);
    if (err.log) fprintf(stderr, "compiler output:\n%s\n", err.log);
    goto done;
  }
  static const char *from_name[] = {"memo", "disk cache", "compiler"};
  int from = rk_kernel_from(k);

  /* 2. data */
  nargs = rk_kernel_nargs(k);
  rk_arginfo *args = calloc((size_t)nargs + 1, sizeof *args);
  in = calloc((size_t)nargs + 1, sizeof *in);
  if (!args || !in) { free(args); fprintf(stderr, "rk-check: out of memory\n"); goto done; }
  for (int p = 0; p < nargs; p++) args[p] = *rk_kernel_arg(k, p);
  tu_rng rng;
  tu_seed(&rng, (uint64_t)seed);
  int mk = tu_make_inputs(args, nargs, M, N, &rng, lo, hi, (int)grid, in);
  free(args);
  if (mk != 0) { fprintf(stderr, "rk-check: out of memory for the inputs\n"); nargs = 0; goto done; }
  int64_t nout;
  if (rk_check_inputs(k, in, nargs, &nout, &err) != RK_OK) {
    fprintf(stderr, "rk-check: %s error: %s\n", rk_error_code_name(err.code), err.msg);
    goto done;
  }
  int outdim = rk_kernel_outdim(k);
  int outcat = rk_kernel_outcat(k);
  int64_t nred = 1;
  for (int p = 0; p < nargs; p++)
    if (rk_kernel_arg(k, p)->cat == (outcat == RK_CAT_I ? RK_CAT_J : RK_CAT_I)) {
      nred = in[p].nrow;
      break;
    }
  out = malloc((size_t)(nout * outdim) * sizeof *out);
  if (!out) { fprintf(stderr, "rk-check: out of memory for the output\n"); goto done; }

  /* 3. runs */
  t0 = tu_now();
  rc = be_run(k, in, nargs, out, &cfg, &err);
  double t_first = tu_now() - t0;
  if (rc != RK_OK) {
    fprintf(stderr, "rk-check: run failed: %s error: %s\n", rk_error_code_name(err.code), err.msg);
    goto done;
  }
  int used_threads = rk_last_threads();
  double t_best = t_first;
  for (long long r = 0; r < repeat; r++) {
    t0 = tu_now();
    rc = be_run(k, in, nargs, out, &cfg, &err);
    double t = tu_now() - t0;
    if (rc != RK_OK) {
      fprintf(stderr, "rk-check: run failed: %s\n", err.msg);
      goto done;
    }
    if (r == 0 || t < t_best) t_best = t;
  }

  /* 4. reference on all rows, or on a sample when that would be slow */
  F = malloc(sizeof *F);
  if (!F) { fprintf(stderr, "rk-check: out of memory\n"); goto done; }
  if (ref_parse(formula, decls, ndecls, F) != 0) {
    fprintf(stderr, "rk-check: the reference cannot evaluate this formula: %s\n", F->err);
    goto done;
  }
  if (ref_outdim(F) != outdim || ref_nout(F, in, nargs) != nout) {
    fprintf(stderr, "rk-check: FAIL: the engine says %lld x %d, the reference %lld x %d\n",
            (long long)nout, outdim, (long long)ref_nout(F, in, nargs), ref_outdim(F));
    status = 1;
    goto done;
  }
  int64_t nchk = nout;
  double cost = ref_row_cost(F, in, nargs);   /* pair evaluations per row */
  if (check_rows >= 0) nchk = check_rows < nout ? check_rows : nout;
  else if ((double)nout * cost > 2e7) {
    nchk = (int64_t)(2e7 / cost);
    if (nchk < 4) nchk = 4;
    if (nchk > nout) nchk = nout;
  }
  rows = malloc((size_t)(nchk > 0 ? nchk : 1) * sizeof *rows);
  ref = malloc((size_t)(nchk * outdim + 1) * sizeof *ref);
  scale = malloc((size_t)(nchk * outdim + 1) * sizeof *scale);
  got = malloc((size_t)(nchk * outdim + 1) * sizeof *got);
  if (!rows || !ref || !scale || !got) { fprintf(stderr, "rk-check: out of memory\n"); goto done; }
  for (int64_t q = 0; q < nchk; q++)   /* evenly spread, first and last included */
    rows[q] = nchk == 1 ? 0 : nchk == nout ? q : (int64_t)((double)q * (double)(nout - 1) / (double)(nchk - 1));
  double t_ref0 = tu_now();
  if (ref_eval_rows(F, in, nargs, rows, nchk, ref, nchk, scale) != 0) {
    fprintf(stderr, "rk-check: reference failed: %s\n", F->err);
    goto done;
  }
  double t_ref = tu_now() - t_ref0;
  for (int64_t q = 0; q < nchk; q++)
    for (int c = 0; c < outdim; c++) got[q + c * nchk] = out[rows[q] + c * nout];
  int64_t worst = 0;
  double maxerr = tu_max_relerr(got, ref, scale, nchk * outdim, &worst);
  int f32 = cfg.opt.precision == RK_F32;
  double grow = sqrt((double)nred / 1000.0);
  if (grow < 1) grow = 1;
  /* sums: rounding errors relative to the sum of |terms|, growing like
   * sqrt(n) beyond 1000 terms; gradients: central differences of the
   * reference (about 1e-9 relative to the largest entry) */
  if (tol < 0) tol = F->grad ? (f32 ? 1e-4 : 1e-6) : (f32 ? 1e-5 : 1e-12) * grow;
  int pass = maxerr <= tol;
  status = pass ? 0 : 1;

  double pairs = (double)nout * (double)nred;
  static const char *scheme_name[] = {"auto", "direct", "block", "kahan"};
  if (quiet) {
    printf("rk-check %s %s M=%lld N=%lld %s: err %.2e tol %.1e, %.3g pairs/s  %s\n",
           be->name, f32 ? "float32" : "float64", M, N, formula, maxerr, tol,
           t_best > 0 ? pairs / t_best : 0.0, pass ? "PASS" : "FAIL");
  } else {
    printf("rk-check: %s", formula);
    for (int d = 0; d < ndecls; d++) printf("  %s", decls[d]);
    printf("\n");
    printf("  backend %s, %s, scheme %s, seed %lld, data in [%g, %g)\n", be->name,
           f32 ? "float32" : "float64", scheme_name[cfg.opt.scheme], seed, lo, hi);
    printf("  output %lld x %d (%s), reduced over %lld, %.4g pairs, threads %d\n",
           (long long)nout, outdim, outcat == RK_CAT_I ? "rows i" : "rows j", (long long)nred,
           pairs, used_threads);
    printf("  compile     %9.4f s   (%s)\n", t_compile, from_name[from]);
    printf("  first run   %9.4f s\n", t_first);
    printf("  best of %-3lld %9.4f s   %.4g pairs/s\n", repeat + 1, t_best,
           t_best > 0 ? pairs / t_best : 0.0);
    printf("  reference   %9.4f s   (%lld of %lld rows)\n", t_ref, (long long)nchk, (long long)nout);
    int64_t wq = nchk ? worst % nchk : 0;
    int wc = nchk ? (int)(worst / nchk) : 0;
    printf("  max rel err %.3e (row %lld, column %d: %.17g vs %.17g)\n", maxerr,
           nchk ? (long long)rows[wq] + 1 : 0LL, wc + 1, nchk ? got[worst] : 0.0,
           nchk ? ref[worst] : 0.0);
    printf("  tolerance   %.3e\n", tol);
    printf("  %s\n", pass ? "PASS" : "FAIL");
  }

done:
  rk_error_clear(&err);
  if (in) tu_free_inputs(in, nargs);
  free(in);
  free(out); free(ref); free(scale); free(got); free(rows); free(F);
  if (cfg.opt.backend == RK_BACKEND_GPU) rk_gpu_unload();
  rk_unload_all();
  if (tmpdir) { tu_rmtree(tmpdir); free(tmpdir); }
  free(decls);
  return status;

bad_usage:
  usage(stderr);
  free(decls);
  return 2;
}
