/*
 * tutil.c -- helpers shared by the C tests and rk-check (see tutil.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "tutil.h"

double tu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64: small, good enough, identical on every platform */
void tu_seed(tu_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull; }

static uint64_t next64(tu_rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double tu_unif(tu_rng *r, double lo, double hi) {
  double u = (double)(next64(r) >> 11) * 0x1.0p-53;
  return lo + (hi - lo) * u;
}

int tu_make_inputs(const rk_arginfo *args, int nargs, int64_t M, int64_t N, tu_rng *rng,
                   double lo, double hi, int grid, rk_input *in) {
  double q = grid > 0 ? ldexp(1.0, grid) : 0;
  for (int p = 0; p < nargs; p++) in[p].data = NULL;
  for (int p = 0; p < nargs; p++) {
    const rk_arginfo *a = &args[p];
    int64_t nrow = a->cat == RK_CAT_I ? M : a->cat == RK_CAT_J ? N : 1;
    int64_t ncol = a->dim;
    double *d = malloc((size_t)(nrow * ncol > 0 ? nrow * ncol : 1) * sizeof *d);
    if (!d) {
      tu_free_inputs(in, p);
      return -1;
    }
    for (int64_t k = 0; k < nrow * ncol; k++) {
      d[k] = tu_unif(rng, lo, hi);
      if (q > 0) {
        d[k] = floor(d[k] * q) / q;
        if (d[k] < lo) d[k] += 1 / q;
      }
    }
    in[p].data = d;
    in[p].nrow = a->cat == RK_CAT_PM ? ncol : nrow;
    in[p].ncol = a->cat == RK_CAT_PM ? 1 : ncol;
  }
  return 0;
}

void tu_free_inputs(rk_input *in, int nargs) {
  for (int p = 0; p < nargs; p++) {
    free((void *)in[p].data);
    in[p].data = NULL;
  }
}

char *tu_tempdir(const char *prefix) {
  const char *t = getenv("TMPDIR");
  if (!t || !*t) t = "/tmp";
  size_t n = strlen(t) + strlen(prefix) + 16;
  char *path = malloc(n);
  if (!path) return NULL;
  snprintf(path, n, "%s/%sXXXXXX", t, prefix);
  if (!mkdtemp(path)) {
    free(path);
    return NULL;
  }
  return path;
}

static void rm_level(const char *dir, int depth) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    size_t n = strlen(dir) + strlen(e->d_name) + 2;
    char *p = malloc(n);
    if (!p) continue;
    snprintf(p, n, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
      if (depth > 0) rm_level(p, depth - 1);
      rmdir(p);
    } else {
      unlink(p);
    }
    free(p);
  }
  closedir(d);
}

void tu_rmtree(const char *dir) {
  if (!dir || !*dir) return;
  rm_level(dir, 1);
  rmdir(dir);
}

double tu_max_relerr(const double *got, const double *ref, const double *scale, int64_t n,
                     int64_t *worst) {
  double m = 0;
  int64_t w = 0;
  for (int64_t k = 0; k < n; k++) {
    double e;
    if (isnan(got[k]) && isnan(ref[k])) e = 0;  /* NA where NA is due */
    else if (isnan(got[k]) || isnan(ref[k])) e = INFINITY;
    else if (got[k] == ref[k]) e = 0;  /* also equal infinities */
    else e = fabs(got[k] - ref[k]) / (scale ? scale[k] : fmax(fabs(ref[k]), 1e-300));
    if (isnan(e)) e = INFINITY;
    if (e > m) {
      m = e;
      w = k;
    }
  }
  if (worst) *worst = w;
  return m;
}
