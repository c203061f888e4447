/*
 * test_nvrtc.c -- compile-only tests of the GPU backend: no GPU, no driver,
 * only libnvrtc (what CI has).  Standalone program, engine sources linked
 * in, no R.
 *
 *   1. generation limits (no NVRTC needed): formulas beyond the GPU
 *      scheme's shared-memory and per-thread budgets are refused with
 *      RK_EDIM and a message that says why; the largest accepted ones pass;
 *   2. every op of ops.def (walked with its own X macro, as the engine
 *      includes it), in float64 reducing over j and float32 over i;
 *   3. every reduction of reductions.def, float32 and float64, both axes,
 *      and its gradient where one exists (a forward kernel and the gradient
 *      kernel: both compiled);
 *   4. the three summation schemes, float32 and float64;
 *   5. CUBIN output (sm_75, and the newest architecture NVRTC knows);
 *   6. the loader without a driver: rk_compile with the GPU backend fails
 *      with RK_ELOAD and the loader's diagnosis, rk_gpu_status reports,
 *      rk_gpu_unload and a reload work.
 *
 * Each kernel is generated as CUDA and compiled by NVRTC for compute_75
 * (PTX) through rk_nvrtc_compile_check, which needs no device.  Where
 * libnvrtc does not load, parts 2 to 5 are skipped with a message.  The
 * last line is "NVRTC tests: N passed, M failed"; the exit status is 1 on
 * failure.  A kernel that fails prints NVRTC's log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static int passed, failed;

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

/* x, y: 3-vectors; b: a scalar; s: a scalar parameter; z, w: 4-vectors
 * (two complex numbers); q: a 3x3 matrix parameter; t: a complex
 * parameter (as in test_tables.c) */
static const char *const DECLS[] = {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)",
                                    "z = Vi(4)", "w = Vj(4)", "q = Pm(9)", "t = Pm(2)", NULL};
#define NDECLS 8

/* operands and parameters where the defaults ("x * y", "x, y", "x, y, b";
 * 1 for every integer parameter) do not fit the op's dimension rule */
static const struct { const char *name, *operands, *params; } special[] = {
  {"IntCst", "", "3"}, {"RatCst", "", "3, 4"}, {"IntInv", "", "3"}, {"Zero", "", "3"},
  {"Pow", "x * y", "3"}, {"Round", "x * y", "1"}, {"Atan2", "x - y, y", ""},
  {"Clamp", "x * y, b, s + 1", ""}, {"ClampInt", "x * y * 3", "1, 2"},
  {"DiffClampInt", "x * y * 3", "1, 2"}, {"IfElse", "x - y, x, y", ""},
  {"Mod", "x * y * 5, b + 1, s", ""}, {"SumT", "Sum(x * y)", "3"}, {"Elem", "x * y", "2"},
  {"ElemT", "Sum(x * y)", "3, 1"}, {"Extract", "x * y", "1, 2"}, {"ExtractT", "x * y", "1, 5"},
  {"OneHot", "Elem(x * y, 0) * 2", "4"}, {"WeightedSqNorm", "y, x", ""},
  {"WeightedSqDist", "b, x, y", ""}, {"SqNormIso", "b, x", ""}, {"SqNormDiag", "y, x", ""},
  {"SymSqNorm", "q, x", ""}, {"MatVecMult", "q, x", ""}, {"VecMatMult", "x, q", ""},
  {"TensorDot", "q, x", "[3, 3], [3], [1], [0]"}, {"Kron", "x, y", "[3], [3]"},
  {"ComplexReal", "z * w", ""}, {"ComplexImag", "z * w", ""}, {"Conj", "z * w", ""},
  {"ComplexAbs", "z * w", ""}, {"ComplexSquareAbs", "z * w", ""}, {"ComplexAngle", "z - w", ""},
  {"ComplexSum", "z * w", ""}, {"ComplexSumT", "ComplexSum(z)", "4"}, {"ComplexAdd", "z, w", ""},
  {"ComplexSubtract", "z, w", ""}, {"ComplexMult", "z, w", ""}, {"ComplexScal", "z, t", ""},
  {"ComplexRealScal", "b, z", ""}, {"ComplexDivide", "z, w", ""}, {"ComplexExp", "z - w", ""},
  {"BSpline", "Concat(s, Concat(s + 1, Concat(s + 2, Concat(s + 3, s + 4)))), s + Elem(x * y, 0) * 3 / 2",
   "2"},
};

typedef struct oprow { const char *name; int arity, npar, flags; } oprow;
#define X(id, name, arity, npar, dimrule, emitter, tmpl, fn, rname, deriv, flags) {name, arity, npar, flags},
static const oprow oprows[] = {
#include "ops.def"
};
#undef X

typedef struct redrow { const char *name; int nextra, hasK, flags; } redrow;
#define X(id, name, nextra, hasK, shape, init, update, tile, merge, fin, deriv, flags) \
  {name, nextra, hasK, flags},
static const redrow redrows[] = {
#include "reductions.def"
};
#undef X

static void op_call(const oprow *r, char *buf, size_t n) {
  const char *operands = NULL, *params = NULL;
  for (size_t k = 0; k < sizeof special / sizeof special[0]; k++)
    if (strcmp(special[k].name, r->name) == 0) {
      operands = special[k].operands;
      params = special[k].params;
    }
  char dflt[64] = "";
  if (!operands) {
    static const char *by_arity[] = {"", "x * y", "x, y", "x, y, b"};
    operands = r->arity <= 3 ? by_arity[r->arity] : "x";
  }
  if (!params) {
    for (int k = 0; k < r->npar && k < 8; k++) strcat(dflt, k ? ", 1" : "1");
    params = dflt;
  }
  snprintf(buf, n, "%s(%s%s%s)", r->name, operands, *operands && *params ? ", " : "", params);
}

static int ndecls(const char *const *d) {
  int n = 0;
  while (d[n]) n++;
  return n;
}

static rk_options opts(rk_precision prec, rk_scheme scheme) {
  rk_options o;
  rk_options_default(&o);
  o.precision = prec;
  o.scheme = scheme;
  o.backend = RK_BACKEND_GPU;
  return o;
}

/* one NVRTC compilation, counted as one check */
static int compiles(const char *what, const char *f, const char *const *decls, rk_precision prec,
                    rk_scheme scheme, const char *arch) {
  rk_options o = opts(prec, scheme);
  rk_error e;
  rk_error_init(&e);
  char *log = NULL;
  int rc = rk_nvrtc_compile_check(f, decls, ndecls(decls), &o, arch, &log, &e);
  int ok = check(rc == RK_OK, "%s: %s [%s, %s]: %s error: %s", what, f,
                 prec == RK_F32 ? "float32" : "float64", arch, rk_error_code_name(e.code), e.msg);
  if (!ok && (e.log || log)) printf("%s\n", e.log ? e.log : log);
  free(log);
  rk_error_clear(&e);
  return ok;
}

/* ------------------------------------------------------------ 1. limits */

static void limits(void) {
  static const struct { const char *decl; rk_precision prec; int ok; const char *why; } rows[] = {
    {"y = Vj(384)", RK_F32, 1, NULL},
    {"y = Vj(385)", RK_F32, 0, "shared memory"},
    {"y = Vj(192)", RK_F64, 1, NULL},
    {"y = Vj(193)", RK_F64, 0, "shared memory"},
    {"y = Vj(3000)", RK_F32, 0, "at most 384 columns in float32, 192 in float64"},
    {"y = Vj(4000)", RK_F64, 0, "use the CPU backend"},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const char *decls[] = {"x = Vi(1)", rows[i].decl};
    rk_options o = opts(rows[i].prec, RK_SCHEME_AUTO);
    rk_error e;
    rk_error_init(&e);
    char *src = NULL;
    int rc = rk_generate("Sum_Reduction(x * y, 0)", decls, 2, &o, &src, &e);
    if (rows[i].ok)
      check(rc == RK_OK && src && strstr(src, "extern \"C\" __global__"),
            "limits: %s in %s should generate CUDA: %s", rows[i].decl,
            rows[i].prec == RK_F32 ? "float32" : "float64", e.msg);
    else
      check(rc == RK_EDIM && strstr(e.msg, rows[i].why) && strstr(e.msg, "Vj variables"),
            "limits: %s in %s: expected an RK_EDIM error naming \"%s\", got %s: %s", rows[i].decl,
            rows[i].prec == RK_F32 ? "float32" : "float64", rows[i].why,
            rk_error_code_name(e.code), e.msg);
    free(src);
    rk_error_clear(&e);
  }
  /* the reduced variables are those of i when reducing over i */
  {
    const char *decls[] = {"x = Vi(500)", "y = Vj(1)"};
    rk_options o = opts(RK_F32, RK_SCHEME_AUTO);
    rk_error e;
    rk_error_init(&e);
    int rc = rk_generate("Sum_Reduction(x * y, 1)", decls, 2, &o, NULL, &e);
    check(rc == RK_EDIM && strstr(e.msg, "Vi variables"),
          "limits: Vi(500) reduced over i: expected RK_EDIM naming the Vi variables, got %s: %s",
          rk_error_code_name(e.code), e.msg);
    rk_error_clear(&e);
    rc = rk_generate("Sum_Reduction(x * y, 0)", decls, 2, &o, NULL, &e);
    check(rc == RK_OK, "limits: Vi(500) kept in registers over j should generate: %s", e.msg);
    rk_error_clear(&e);
  }
  /* per-thread temporaries */
  {
    const char *decls[] = {"x = Vi(5000)", "y = Vj(1)"};
    rk_options o = opts(RK_F32, RK_SCHEME_AUTO);
    rk_error e;
    rk_error_init(&e);
    int rc = rk_generate("Sum_Reduction(Exp(x) * y, 0)", decls, 2, &o, NULL, &e);
    check(rc == RK_EDIM && strstr(e.msg, "bytes per thread"),
          "limits: Exp(Vi(5000)): expected RK_EDIM about the per-thread budget, got %s: %s",
          rk_error_code_name(e.code), e.msg);
    rk_error_clear(&e);
  }
  /* the generated source: one entry point with the fixed name, no #include */
  {
    const char *decls[] = {"x = Vi(3)", "y = Vj(3)"};
    rk_options o = opts(RK_F64, RK_SCHEME_AUTO);
    rk_error e;
    rk_error_init(&e);
    char *src = NULL;
    int rc = rk_generate("Sum_Reduction(SqDist(x, y), 0)", decls, 2, &o, &src, &e);
    check(rc == RK_OK && src && !strstr(src, "#include") && strstr(src, "rk_cuda_entry(") &&
              strstr(src, "rk_cuda_merge(") && strstr(src, "/* rkeops-launch block=256 "),
          "source: no #include, rk_cuda_entry, rk_cuda_merge and the launch line");
    free(src);
    rk_error_clear(&e);
  }
}

/* ------------------------------------------------------------ 2 to 5. NVRTC */

static void per_op(void) {
  for (size_t i = 0; i < sizeof oprows / sizeof oprows[0]; i++) {
    const oprow *r = &oprows[i];
    if (r->flags & OPF_INTERNAL) continue;
    char call[256], f[400], what[96];
    op_call(r, call, sizeof call);
    for (int v = 0; v < 2; v++) {
      snprintf(f, sizeof f, "Sum_Reduction(%s * b, %d)", call, v);
      snprintf(what, sizeof what, "op %s", r->name);
      compiles(what, f, DECLS, v ? RK_F32 : RK_F64, RK_SCHEME_AUTO, "compute_75");
    }
  }
}

/* the gradient of f in x, with e = Vi(D) for the first D that fits the
 * output's dimension; 0 when no D does (not differentiable) */
static int gradient(const char *what, const char *f, rk_precision prec) {
  const char *decls[NDECLS + 2];
  char edecl[32], g[512];
  for (int d = 0; d < NDECLS; d++) decls[d] = DECLS[d];
  decls[NDECLS + 1] = NULL;
  snprintf(g, sizeof g, "Grad(%s, x, e)", f);
  for (int D = 1; D <= 12; D++) {
    snprintf(edecl, sizeof edecl, "e = Vi(%d)", D);
    decls[NDECLS] = edecl;
    rk_options o = opts(prec, RK_SCHEME_AUTO);
    rk_error e;
    rk_error_init(&e);
    int rc = rk_generate(g, decls, NDECLS + 1, &o, NULL, &e);
    rk_error_clear(&e);
    if (rc != RK_OK) continue;
    compiles(what, g, decls, prec, RK_SCHEME_AUTO, "compute_75");
    return 1;
  }
  return 0;
}

static void per_reduction(void) {
  int grads = 0;
  for (size_t i = 0; i < sizeof redrows / sizeof redrows[0]; i++) {
    const redrow *r = &redrows[i];
    char f[256], what[96];
    for (int v = 0; v < 4; v++) {
      snprintf(f, sizeof f, "%s_Reduction(SqDist(x, y) * b%s%s, %d)", r->name,
               r->nextra ? ", y" : "", r->hasK ? ", 3" : "", v & 1);
      snprintf(what, sizeof what, "reduction %s", r->name);
      compiles(what, f, DECLS, v < 2 ? RK_F64 : RK_F32, RK_SCHEME_AUTO, "compute_75");
    }
    /* vector-valued formulas where the reduction allows them */
    if (!(r->flags & REDF_ACC_DOUBLE)) {
      snprintf(f, sizeof f, "%s_Reduction(x - y%s, 0)", r->name, r->hasK ? ", 2" : "");
      snprintf(what, sizeof what, "reduction %s of a 3-vector", r->name);
      compiles(what, f, DECLS, RK_F32, RK_SCHEME_AUTO, "compute_75");
    }
    snprintf(f, sizeof f, "%s_Reduction(SqDist(x, y) * b%s%s, 0)", r->name, r->nextra ? ", y" : "",
             r->hasK ? ", 3" : "");
    snprintf(what, sizeof what, "gradient of %s", r->name);
    grads += gradient(what, f, RK_F64);
    gradient(what, f, RK_F32);
  }
  check(grads >= 4, "only %d reductions have a gradient that generates", grads);
  /* a forward kernel feeding the gradient kernel: two programs */
  compiles("gradient through a saved forward kernel",
           "Grad(LogSumExp_Reduction(SqDist(x, y) * b, 0), y, Var(8, 1, 0))", DECLS, RK_F64,
           RK_SCHEME_AUTO, "compute_75");
}

static void schemes(void) {
  static const rk_scheme s[] = {RK_SCHEME_DIRECT, RK_SCHEME_BLOCK, RK_SCHEME_KAHAN};
  static const char *names[] = {"direct", "block", "kahan"};
  for (int k = 0; k < 3; k++)
    for (int v = 0; v < 2; v++) {
      char what[64];
      snprintf(what, sizeof what, "scheme %s", names[k]);
      compiles(what, "Sum_Reduction(Exp(-SqDist(x, y)) * (b | z), 0)", DECLS,
               v ? RK_F32 : RK_F64, s[k], "compute_75");
    }
}

static void cubin(void) {
  compiles("CUBIN", "Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", DECLS, RK_F32, RK_SCHEME_AUTO,
           "sm_75");
  compiles("CUBIN", "ArgKMin_Reduction(SqDist(x, y), 4, 1)", DECLS, RK_F64, RK_SCHEME_AUTO,
           "sm_75");
  int archs[128];
  int n = gpu_nvrtc_archs(archs, 128), hi = 0;
  for (int k = 0; k < n; k++) if (archs[k] > hi) hi = archs[k];
  if (hi > 0) {
    char arch[32];
    snprintf(arch, sizeof arch, "sm_%d", hi);
    compiles("CUBIN, newest architecture", "LogSumExp_Reduction(-SqDist(x, y), 0)", DECLS, RK_F32,
             RK_SCHEME_AUTO, arch);
  }
  rk_options o = opts(RK_F64, RK_SCHEME_AUTO);
  rk_error e;
  rk_error_init(&e);
  int rc = rk_nvrtc_compile_check("Sum_Reduction(x, 0)", DECLS, NDECLS, &o, "gfx90a", NULL, &e);
  check(rc == RK_EARG, "an architecture that is not compute_XY or sm_XY: RK_EARG, got %s",
        rk_error_code_name(rc));
  rk_error_clear(&e);
  /* an NVRTC failure is RK_EBUILD with the log: an architecture NVRTC lacks */
  rc = rk_nvrtc_compile_check("Sum_Reduction(x, 0)", DECLS, NDECLS, &o, "compute_10", NULL, &e);
  check(rc == RK_EBUILD && e.log && strlen(e.log) > 0,
        "NVRTC failure: RK_EBUILD with a log, got %s: %s", rk_error_code_name(rc), e.msg);
  rk_error_clear(&e);
}

/* ------------------------------------------------------------ 6. loader */

static void loader(int have_nvrtc) {
  char *rep = malloc(16384);
  if (!check(rep != NULL, "out of memory")) return;
  int st = rk_gpu_status(rep, 16384);
  check(strncmp(rep, "GPU backend: ", 13) == 0 && strstr(rep, "load attempts for libcuda:") &&
            strstr(rep, "load attempts for libnvrtc:"),
        "rk_gpu_status: the report lacks its sections:\n%s", rep);
  check(st == RK_GPU_OK ? rk_gpu_available() : !rk_gpu_available(),
        "rk_gpu_available() disagrees with rk_gpu_status() = %s", rk_gpu_status_name(st));
  check(have_nvrtc == (strstr(rep, "libnvrtc") && strstr(rep, ": loaded") &&
                       strstr(rep, "NVRTC: not found") == NULL),
        "rk_gpu_status: NVRTC %s but the report says:\n%s", have_nvrtc ? "loads" : "does not load",
        rep);
  printf("%s", rep);
  if (st != RK_GPU_OK) {
    /* no GPU here: compiling for the GPU fails with the loader's diagnosis */
    const char *decls[] = {"x = Vi(3)", "y = Vj(3)"};
    rk_options o = opts(RK_F64, RK_SCHEME_AUTO);
    rk_error e;
    rk_error_init(&e);
    rk_kernel *k = (rk_kernel *)&o;
    int rc = rk_compile("Sum_Reduction(SqDist(x, y), 0)", decls, 2, &o, &k, &e);
    check(rc == RK_ELOAD && k == NULL && strlen(e.msg) > 20,
          "rk_compile on the GPU without one: expected RK_ELOAD and a diagnosis, got %s: %s",
          rk_error_code_name(rc), e.msg);
    if (st == RK_GPU_NO_DRIVER)
      check(strstr(e.msg, "no CUDA driver") && strstr(e.msg, "libcuda.so.1"),
            "the diagnosis names the driver and the attempts: %s", e.msg);
    rk_error_clear(&e);
  }
  /* unload, then everything loads again */
  rk_gpu_unload();
  int st2 = rk_gpu_status(rep, 16384);
  check(st2 == st, "rk_gpu_status after rk_gpu_unload: %s, before: %s", rk_gpu_status_name(st2),
        rk_gpu_status_name(st));
  if (have_nvrtc)
    compiles("after rk_gpu_unload", "Sum_Reduction(SqDist(x, y), 0)", DECLS, RK_F32,
             RK_SCHEME_AUTO, "compute_75");
  /* a report that does not fit is cut, terminated */
  char small[16];
  memset(small, 'x', sizeof small);
  rk_gpu_status(small, sizeof small);
  check(small[15] == '\0' && strncmp(small, "GPU backend", 11) == 0, "a short report buffer");
  free(rep);
}

int main(void) {
  limits();
  rk_options o = opts(RK_F64, RK_SCHEME_AUTO);
  rk_error e;
  rk_error_init(&e);
  int rc = rk_nvrtc_compile_check("Sum_Reduction(x, 0)", DECLS, NDECLS, &o, "compute_75", NULL, &e);
  int have = rc != RK_ELOAD;
  if (!have) {
    printf("NVRTC tests: libnvrtc cannot be loaded here, NVRTC compilations skipped (%s)\n", e.msg);
  } else {
    check(rc == RK_OK, "the first NVRTC compilation: %s error: %s", rk_error_code_name(rc), e.msg);
    per_op();
    per_reduction();
    schemes();
    cubin();
  }
  rk_error_clear(&e);
  loader(have);
  rk_gpu_unload();
  rk_unload_all();
  printf("NVRTC tests: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
