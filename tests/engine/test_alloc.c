/*
 * test_alloc.c -- allocation failures injected at every allocation site of
 * a compilation and a run (guideline 10, after Lua's ltests.c).
 *
 *   test_alloc alloc
 *
 * Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup
 * (tests/engine/Makefile): every call of these in the engine goes through
 * the wrappers below, which can fail the Nth call.  For each case and for
 * N = 1, 2, ... until a compile + run makes fewer than N allocations:
 * rk_compile then rk_run with the Nth allocation failing must either
 * succeed with the result of a run without failures (a failure the engine
 * may tolerate, such as the cache eviction's listing) or return an error
 * code with a message; nothing may crash, the cache folder keeps no
 * temporary file and the private build folders are removed.  Under ASan
 * and LeakSanitizer (make check), every error path is also checked for
 * leaks, read after free and double free.
 *
 * Three ways through build.c: the compiler (a fresh cache folder for each
 * N), the disk cache (the memo emptied), the memo.  The last line is
 * "C tests: N passed, M failed".
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "tutil.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);

static long fail_at = -1, alloc_count;
static int failed;

static int fail_now(void) {
  if (fail_at < 0 || ++alloc_count != fail_at) return 0;
  failed = 1;
  return 1;
}
void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : __real_strdup(s); }

static int passed, nfailed;
#define CHECK(ok, ...)                                              \
  do {                                                              \
    if (ok) passed++;                                               \
    else {                                                          \
      nfailed++;                                                    \
      printf("FAIL test_alloc.c:%d: ", __LINE__);                   \
      printf(__VA_ARGS__);                                          \
      printf("\n");                                                 \
    }                                                               \
  } while (0)

/* the number of entries of dir whose name starts with prefix */
static int count_prefix(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) n++;
  closedir(d);
  return n;
}

typedef struct {
  const char *what, *formula;
  const char *decls[6];
  rk_precision prec;
} alloc_case;

enum { WAY_COMPILER, WAY_DISK, WAY_MEMO };
static const char *way_name[] = {"compiler", "disk cache", "memo"};

/* compile + run of c with allocation number n failing (n < 0: none);
 * returns the engine's status, *nallocs the allocations made */
static int attempt(const alloc_case *c, const char *cache, long n, const rk_input *in, int nin,
                   double *out, size_t nout, long *nallocs, rk_error *err) {
  rk_options o;
  rk_options_default(&o);
  o.precision = c->prec;
  o.cache_dir = cache;
  int nd = 0;
  while (c->decls[nd]) nd++;
  rk_kernel *k = NULL;
  memset(out, 0, nout * sizeof *out);
  alloc_count = 0;
  failed = 0;
  fail_at = n;
  int rc = rk_compile(c->formula, c->decls, nd, &o, &k, err);
  if (rc == RK_OK) {
    int64_t rows;
    rc = rk_check_inputs(k, in, nin, &rows, err);
    if (rc == RK_OK) rc = rk_run(k, in, nin, out, 1, NULL, NULL, err);
  }
  fail_at = -1;
  *nallocs = alloc_count;
  return rc;
}

static void run_case(const alloc_case *c, const char *tmp) {
  int nd = 0;
  while (c->decls[nd]) nd++;
  /* the reference: a run without failures (and the kernel's arguments) */
  char *cache = tu_tempdir("rk-alloc-cache-");
  rk_options o;
  rk_options_default(&o);
  o.precision = c->prec;
  o.cache_dir = cache;
  rk_error err;
  rk_error_init(&err);
  rk_kernel *k = NULL;
  int rc = rk_compile(c->formula, c->decls, nd, &o, &k, &err);
  CHECK(rc == RK_OK, "%s: compiles (%s)", c->what, err.msg);
  if (rc != RK_OK) {
    rk_error_clear(&err);
    tu_rmtree(cache);
    free(cache);
    return;
  }
  int nin = rk_kernel_nargs(k);
  rk_arginfo args[8];
  for (int p = 0; p < nin; p++) args[p] = *rk_kernel_arg(k, p);
  rk_input in[8];
  tu_rng rng;
  tu_seed(&rng, 21);
  /* 7 x 5: more than one row block, odd sizes */
  tu_make_inputs(args, nin, 7, 5, &rng, 0.5, 1.5, 10, in);
  int64_t rows = 0;
  rk_check_inputs(k, in, nin, &rows, &err);
  size_t nout = (size_t)rows * (size_t)rk_kernel_outdim(k);
  double *ref = calloc(nout, sizeof *ref), *out = calloc(nout, sizeof *out);
  rc = rk_run(k, in, nin, ref, 1, NULL, NULL, &err);
  CHECK(rc == RK_OK, "%s: runs (%s)", c->what, err.msg);
  rk_error_clear(&err);
  rk_unload_all();

  for (int way = WAY_COMPILER; way <= WAY_MEMO; way++) {
    long n, nallocs = 0;
    int errors = 0, tolerated = 0, bad = 0;
    for (n = 1; n < 100000; n++) {
      char *dir = cache;
      if (way == WAY_COMPILER) dir = tu_tempdir("rk-alloc-fresh-");
      if (way == WAY_MEMO) {
        /* the kernel in the memo first, without failures */
        long dummy;
        attempt(c, dir, -1, in, nin, out, nout, &dummy, &err);
        rk_error_clear(&err);
      }
      rc = attempt(c, dir, n, in, nin, out, nout, &nallocs, &err);
      int inject = failed;
      if (rc == RK_OK) {
        int same = memcmp(out, ref, nout * sizeof *out) == 0;
        if (!same && bad++ < 3)
          CHECK(same, "%s (%s): allocation %ld failed, yet a success with other values",
                c->what, way_name[way], n);
        if (inject) tolerated++;
      } else {
        errors++;
        int clean = err.code > RK_OK && err.code <= RK_EINTERNAL && err.msg[0] != '\0';
        if (!clean && bad++ < 3)
          CHECK(clean, "%s (%s): allocation %ld failed: code %d, message '%s'", c->what,
                way_name[way], n, err.code, err.msg);
        if (!inject && bad++ < 3)
          CHECK(inject, "%s (%s): an error with no failed allocation: %s", c->what,
                way_name[way], err.msg);
      }
      rk_error_clear(&err);
      int left = count_prefix(dir, "tmp-") + count_prefix(tmp, "rkeops-build-");
      if (left != 0 && bad < 3 && getenv("RK_TEST_VERBOSE")) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "ls -la %s %s/rkeops-build-* %s", tmp, tmp, dir);
        if (system(cmd) != 0) printf("(ls failed)\n");
      }
      if (left != 0 && bad++ < 3)
        CHECK(left == 0, "%s (%s): allocation %ld failed: %d temporary files or folders left",
              c->what, way_name[way], n, left);
      if (way != WAY_MEMO) rk_unload_all();
      if (way == WAY_COMPILER) {
        tu_rmtree(dir);
        free(dir);
      }
      if (!inject) break; /* fewer than n allocations: every site was tried */
    }
    CHECK(bad == 0, "%s (%s): every allocation failure handled", c->what, way_name[way]);
    CHECK(rc == RK_OK && !failed, "%s (%s): a run with no failure succeeds", c->what,
          way_name[way]);
    if (getenv("RK_TEST_VERBOSE"))
      printf("  %-24s %-10s %3ld allocations, %d errors, %d failures tolerated\n", c->what,
             way_name[way], n - 1, errors, tolerated);
    rk_unload_all();
  }
  tu_free_inputs(in, nin);
  free(ref);
  free(out);
  tu_rmtree(cache);
  free(cache);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 2 || (argc == 2 && strcmp(argv[1], "alloc") != 0)) {
    fprintf(stderr, "usage: test_alloc [alloc]\n");
    printf("C tests: 0 passed, 1 failed\n");
    return 2;
  }
  /* the private build folders go to a folder of ours, to be counted */
  char *tmp = tu_tempdir("rk-alloc-tmp-");
  if (!tmp || setenv("TMPDIR", tmp, 1) != 0) {
    printf("C tests: 0 passed, 1 failed\n");
    return 1;
  }
  static const alloc_case cases[] = {
    /* a gradient: a forward kernel feeding the gradient's, float32 copies */
    {"gradient, float32", "Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 0), x, e)",
     {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "e = Vi(1)", NULL}, RK_F32},
    /* a parameter's gradient: per-row values, then their sum */
    {"parameter gradient", "Grad(LogSumExp_Reduction(-s * SqDist(x, y), 1), s, e)",
     {"x = Vi(2)", "y = Vj(2)", "s = Pm(1)", "e = Vj(1)", NULL}, RK_F64},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], tmp);
  tu_rmtree(tmp);
  free(tmp);
  printf("C tests: %d passed, %d failed\n", passed, nfailed);
  return nfailed > 0;
}
