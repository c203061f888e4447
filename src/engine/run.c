/*
 * run.c -- checking inputs against the declarations, converting them to
 * the kernel's precision, running the kernel in chunks of output rows and
 * reduced indices (the caller's interrupt callback is polled between
 * chunks, on the calling thread), and the single thread-count getter.
 */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"

static const char *cat_name(int cat) {
  return cat == RK_CAT_I ? "Vi" : cat == RK_CAT_J ? "Vj" : "Pm";
}

static void arg_label(const rk_arginfo *a, char *buf, size_t n) {
  if (a->name[0]) snprintf(buf, n, "'%s' (%s(%d), position %d)", a->name, cat_name(a->cat), a->dim, a->pos);
  else snprintf(buf, n, "at position %d (%s(%d))", a->pos, cat_name(a->cat), a->dim);
}

/* Checks the caller's inputs; *rows gets the number of rows of the i and
 * j indices (1 when no variable is indexed by it). */
static int check_rows(const rk_kernel *k, const rk_input *in, int nin, int64_t rows[2],
                      rk_error *err) {
  rk_error_clear(err);
  if (nin != k->nuser) {
    rk_seterr(err, RK_ESHAPE, -1, "the formula has %d argument%s but %d input%s given", k->nuser,
              k->nuser == 1 ? "" : "s", nin, nin == 1 ? " was" : "s were");
    return err->code;
  }
  rows[0] = rows[1] = -1;
  int first[2] = {-1, -1};
  char lab[160], lab2[160];
  for (int p = 0; p < nin; p++) {
    const rk_arginfo *a = &k->args[p];
    arg_label(a, lab, sizeof lab);
    if (!in[p].data && in[p].nrow * in[p].ncol > 0) {
      rk_seterr(err, RK_ESHAPE, -1, "argument %s has no data", lab);
      return err->code;
    }
    if (a->cat == RK_CAT_PM) {
      if (in[p].nrow * in[p].ncol != a->dim) {
        rk_seterr(err, RK_ESHAPE, -1, "argument %s must have length %d, not %lld", lab, a->dim,
                  (long long)(in[p].nrow * in[p].ncol));
        return err->code;
      }
      continue;
    }
    if (in[p].ncol != a->dim) {
      rk_seterr(err, RK_ESHAPE, -1, "argument %s must have %d column%s, not %lld", lab, a->dim,
                a->dim == 1 ? "" : "s", (long long)in[p].ncol);
      return err->code;
    }
    if (in[p].nrow < 1) {
      rk_seterr(err, RK_ESHAPE, -1, "argument %s has no rows", lab);
      return err->code;
    }
    int c = a->cat;
    if (rows[c] < 0) {
      rows[c] = in[p].nrow;
      first[c] = p;
    } else if (rows[c] != in[p].nrow) {
      arg_label(&k->args[first[c]], lab2, sizeof lab2);
      rk_seterr(err, RK_ESHAPE, -1,
                "argument %s has %lld rows but argument %s has %lld: all %s arguments share the "
                "index %s and need the same number of rows",
                lab, (long long)in[p].nrow, lab2, (long long)rows[c], cat_name(c),
                c == RK_CAT_I ? "i" : "j");
      return err->code;
    }
  }
  for (int c = 0; c < 2; c++) if (rows[c] < 0) rows[c] = 1;
  return RK_OK;
}

int rk_check_inputs(const rk_kernel *k, const rk_input *in, int nin, int64_t *nout,
                    rk_error *err) {
  int64_t rows[2];
  if (check_rows(k, in, nin, rows, err) != RK_OK) return err->code;
  *nout = k->postsum ? 1 : rows[k->outcat];
  return RK_OK;
}

/* ------------------------------------------------------------ threads */

static int last_threads = 1;
int rk_last_threads(void) { return last_threads; }

/* read once: sysconf() reads /sys at every call, which costs microseconds
 * on the path of every tiny reduction */
int rk_ncores(void) {
  static int cores = 0;
  if (cores == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cores = n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
  }
  return cores;
}

static int env_int(const char *name) {
  const char *s = getenv(name);
  if (!s || !*s) return 0;
  char *end;
  long v = strtol(s, &end, 10);
  return (v > 0 && v < 100000) ? (int)v : 0;
}

/* Forks (parallel::mclapply, future's multicore): GNU OpenMP's thread pool
 * does not survive fork(), and a child that starts a team waits forever on
 * threads that are not there.  As data.table does, a pthread_atfork child
 * handler makes the child run its kernels on one thread, once this process
 * has asked for a team (a process that never did has no pool to inherit,
 * and its children keep their thread count).  The child keeps one thread,
 * and so do its own children: the pool it inherited stays broken in them;
 * the parent is not affected. */
static volatile int team_asked, forked_child;
static void fork_child(void) { if (team_asked) forked_child = 1; }
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void fork_register(void) { pthread_atfork(NULL, NULL, fork_child); }
int rk_forked_single(void) { return forked_child; }

int rk_threads(int requested, double work) {
  pthread_once(&fork_once, fork_register);
  if (forked_child) return 1;
  int n = requested > 0 ? requested : 0;
  if (n == 0) n = env_int("OMP_NUM_THREADS");
  if (n == 0) n = rk_ncores();
  int limit = env_int("OMP_THREAD_LIMIT");
  if (limit > 0 && n > limit) n = limit;
  if (work < 262144.0) n = 1;  /* a fraction of a millisecond: not worth a team */
  if (n > 1) team_asked = 1;
  return n < 1 ? 1 : n;
}

/* ------------------------------------------------------------ run */

#define CHUNK_PAIRS ((int64_t)1 << 24)  /* pairs between two interrupt checks */

static int64_t chunk_pairs = CHUNK_PAIRS;
void run_set_chunk_pairs(int64_t n) { chunk_pairs = n > 0 ? n : CHUNK_PAIRS; }

/* Runs one compiled kernel on all its inputs (nargs of them): converts to
 * float32 when needed, then calls the kernel on chunks of about
 * chunk_pairs pairs, with interrupt checks in between.  out: nout x
 * outdim, column-major.
 *
 * Chunks: rows [r0, r1), at least bi rows per thread (every thread gets a
 * block) and a multiple of bi; when such a chunk of rows still has too
 * many pairs, its reduced range is cut too, at multiples of RK_CPU_BJ,
 * and the rows' states are carried from one call to the next in scratch,
 * so that a row meets the same tiles in the same order as in one call: the
 * result does not depend on the chunks.  Few rows (at most bi): the
 * threads split the reduced range of each chunk and their partial states
 * are merged in thread order, so the result depends on the number of
 * threads and the chunks, not on the run. */
/* The kernel's view of the inputs: in place in float64, converted copies
 * (conv[p], freed by the caller, also on error) in float32. */
static int kernel_inputs(const rk_kernel *k, const rk_input *in, const void **ptrs, float **conv,
                         rk_error *err) {
  memset(conv, 0, sizeof(float *) * RK_MAX_ARGS);
  for (int p = 0; p < k->nargs; p++) {
    ptrs[p] = in[p].data;
    if (k->prec != RK_F32) continue;
    size_t n = (size_t)(in[p].nrow * in[p].ncol);
    conv[p] = malloc((n ? n : 1) * sizeof(float));
    if (!conv[p]) {
      rk_seterr(err, RK_ENOMEM, -1, "out of memory converting inputs to float32");
      return err->code;
    }
    for (size_t i = 0; i < n; i++) conv[p][i] = (float)in[p].data[i];
    ptrs[p] = conv[p];
  }
  return RK_OK;
}

static int run_kernel(const rk_kernel *k, const rk_input *in, int64_t rows[2], double *out,
                      int nthreads, rk_interrupt_fn intr, void *intr_data, rk_error *err) {
  int64_t nout = rows[k->outcat], nred = rows[1 - k->outcat];
  const void *ptrs[RK_MAX_ARGS];
  float *conv[RK_MAX_ARGS];
  void *scratch = NULL;
  int rc = kernel_inputs(k, in, ptrs, conv, err);
  if (rc != RK_OK) goto done;
  {
    int64_t bi = k->bi > 0 ? k->bi : 1;
    int nt_max = rk_threads(nthreads, (double)nout * (double)nred);
    /* few output rows: the kernel splits the reduced index over the threads */
    int split = nout <= bi && nt_max > 1 && nred >= 4096;
    int64_t rchunk = nout, jchunk = nred;
    if (!split) {
      /* whole blocks, the same number for every thread */
      int64_t step = bi * nt_max;
      rchunk = chunk_pairs / nred;
      rchunk = rchunk < step ? step : (rchunk + step - 1) / step * step;
      if (rchunk > nout) rchunk = nout;
    }
    /* nj chunks of the reduced range, of chunk_pairs to 2 chunk_pairs pairs */
    double nj = floor((double)rchunk * (double)nred / (double)chunk_pairs);
    if (nj >= 2) {
      jchunk = (int64_t)ceil((double)nred / nj);
      jchunk = (jchunk + RK_CPU_BJ - 1) / RK_CPU_BJ * RK_CPU_BJ;
      if (jchunk > nred) jchunk = nred;
    }
    if (split || jchunk < nred) {
      size_t states = (size_t)rchunk + (split ? (size_t)nt_max * (size_t)bi : 0);
      int comp = (rk_redops[k->red].flags & REDF_SUMLIKE) != 0;   /* Kahan's, maybe */
      scratch = malloc(states * RK_STATE_BYTES(k->acc, k->idx, comp));
      if (!scratch) {
        rk_seterr(err, RK_ENOMEM, -1, "out of memory");
        rc = err->code;
        goto done;
      }
    }
    int used = 1;
    for (int64_t r0 = 0; r0 < nout; r0 += rchunk) {
      int64_t r1 = r0 + rchunk < nout ? r0 + rchunk : nout;
      int nt = nt_max;
      if (!split) {
        int64_t blocks = (r1 - r0 + bi - 1) / bi;
        nt = rk_threads(nthreads, (double)(r1 - r0) * (double)nred);
        if (nt > blocks) nt = (int)blocks;
      }
      for (int64_t ja = 0; ja < nred; ja += jchunk) {
        int64_t jb = ja + jchunk < nred ? ja + jchunk : nred;
        if (k->entry(nout, nred, ptrs, out, r0, r1, ja, jb, nt, &used, scratch) != 0) {
          rk_seterr(err, RK_EINTERNAL, -1,
                    "internal error: the kernel refused rows [%lld, %lld) and reduced indices "
                    "[%lld, %lld) (%s:%d)", (long long)r0, (long long)r1, (long long)ja,
                    (long long)jb, __FILE__, __LINE__);
          rc = err->code;
          goto done;
        }
        last_threads = used;
        if ((r1 < nout || jb < nred) && intr && intr(intr_data)) {
          rk_seterr(err, RK_EINTERRUPT, -1, "interrupted");
          rc = err->code;
          goto done;
        }
      }
    }
  }
done:
  for (int p = 0; p < k->nargs; p++) free(conv[p]);
  free(scratch);
  return rc;
}

/* ------------------------------------------------------------ ranges */

/* The work list of a block-sparse run (rk_ranges, engine.h) for a kernel
 * with nout output rows and nred reduced ones: items of at most bi rows,
 * w[4t .. 4t+3] = r0, r1, s0, s1, covering every output row in order (rows
 * in no block get an item with no range); pairs[t] counts the item's pairs.
 * Checks the ranges first: RK_EARG names the faulty entry. */
typedef struct run_work {
  int64_t n;
  int64_t *w;
  double *pairs;
} run_work;

static int ranges_check(const rk_ranges *rg, int64_t nout, int64_t nred, rk_error *err) {
  if (rg->nblocks < 0 || rg->nred < 0 || (rg->nblocks > 0 && (!rg->blocks || !rg->slices)) ||
      (rg->nred > 0 && !rg->red)) {
    rk_seterr(err, RK_EARG, -1, "ranges: negative counts or missing arrays");
    return err->code;
  }
  int64_t prev_end = 0, prev_slice = 0;
  for (int64_t b = 0; b < rg->nblocks; b++) {
    int64_t a = rg->blocks[2 * b], e = rg->blocks[2 * b + 1], s = rg->slices[b];
    if (a < prev_end || e < a || e > nout) {
      rk_seterr(err, RK_EARG, -1,
                "ranges: block %lld covers rows [%lld, %lld) (0-based): blocks must be sorted, "
                "disjoint and within the %lld output rows", (long long)(b + 1), (long long)a,
                (long long)e, (long long)nout);
      return err->code;
    }
    if (s < prev_slice || s > rg->nred) {
      rk_seterr(err, RK_EARG, -1,
                "ranges: slice %lld ends at %lld, before the previous slice's end %lld or past "
                "the %lld reduced ranges", (long long)(b + 1), (long long)s,
                (long long)prev_slice, (long long)rg->nred);
      return err->code;
    }
    prev_end = e;
    prev_slice = s;
  }
  for (int64_t q = 0; q < rg->nred; q++) {
    int64_t a = rg->red[2 * q], e = rg->red[2 * q + 1];
    if (a < 0 || e < a || e > nred) {
      rk_seterr(err, RK_EARG, -1,
                "ranges: reduced range %lld is [%lld, %lld) (0-based), not within the %lld rows "
                "of the reduced index", (long long)(q + 1), (long long)a, (long long)e,
                (long long)nred);
      return err->code;
    }
  }
  return RK_OK;
}

/* items for rows [a, e) with ranges [s0, s1), in pieces of bi rows */
static void work_add(run_work *wk, int64_t a, int64_t e, int64_t s0, int64_t s1, int64_t bi,
                     double len) {
  for (int64_t r = a; r < e; r += bi) {
    int64_t *w = wk->w + 4 * wk->n;
    w[0] = r;
    w[1] = r + bi < e ? r + bi : e;
    w[2] = s0;
    w[3] = s1;
    if (wk->pairs) wk->pairs[wk->n] = (double)(w[1] - w[0]) * len;
    wk->n++;
  }
}

static int ranges_work(const rk_ranges *rg, int64_t nout, int64_t nred, int64_t bi, run_work *wk,
                       rk_error *err) {
  memset(wk, 0, sizeof *wk);
  if (ranges_check(rg, nout, nred, err) != RK_OK) return err->code;
  /* at most one item per bi rows of each block and of each gap, plus one */
  int64_t cap = 1, prev = 0;
  for (int64_t b = 0; b < rg->nblocks; b++) {
    cap += (rg->blocks[2 * b] - prev + bi - 1) / bi + (rg->blocks[2 * b + 1] - rg->blocks[2 * b] +
                                                        bi - 1) / bi;
    prev = rg->blocks[2 * b + 1];
  }
  cap += (nout - prev + bi - 1) / bi;
  wk->w = malloc(sizeof(int64_t) * 4 * (size_t)cap);
  wk->pairs = malloc(sizeof(double) * (size_t)cap);
  if (!wk->w || !wk->pairs) {
    free(wk->w);
    free(wk->pairs);
    memset(wk, 0, sizeof *wk);
    rk_seterr(err, RK_ENOMEM, -1, "out of memory");
    return err->code;
  }
  prev = 0;
  for (int64_t b = 0; b < rg->nblocks; b++) {
    int64_t a = rg->blocks[2 * b], e = rg->blocks[2 * b + 1];
    int64_t s0 = b > 0 ? rg->slices[b - 1] : 0, s1 = rg->slices[b];
    double len = 0;
    for (int64_t q = s0; q < s1; q++) len += (double)(rg->red[2 * q + 1] - rg->red[2 * q]);
    work_add(wk, prev, a, 0, 0, bi, 0);
    work_add(wk, a, e, s0, s1, bi, len);
    prev = e;
  }
  work_add(wk, prev, nout, 0, 0, bi, 0);
  return RK_OK;
}

/* The CPU run of a work list: calls of about chunk_pairs pairs (at least
 * one item), interrupt checks in between. */
static int run_kernel_ranges(const rk_kernel *k, const rk_input *in, int64_t rows[2],
                             double *out, const rk_ranges *rg, int nthreads, rk_interrupt_fn intr,
                             void *intr_data, rk_error *err) {
  int64_t nout = rows[k->outcat], nred = rows[1 - k->outcat];
  const void *ptrs[RK_MAX_ARGS];
  float *conv[RK_MAX_ARGS];
  run_work wk;
  memset(&wk, 0, sizeof wk);
  int rc = kernel_inputs(k, in, ptrs, conv, err);
  if (rc == RK_OK) rc = ranges_work(rg, nout, nred, k->bi > 0 ? k->bi : 1, &wk, err);
  for (int64_t t0 = 0; rc == RK_OK && t0 < wk.n;) {
    int64_t t1 = t0;
    double pairs = 0;
    while (t1 < wk.n && (t1 == t0 || pairs + wk.pairs[t1] <= (double)chunk_pairs))
      pairs += wk.pairs[t1++];
    int nt = rk_threads(nthreads, pairs), used = 1;
    if (nt > t1 - t0) nt = (int)(t1 - t0);
    if (k->entry_ranges(nout, nred, ptrs, out, t1 - t0, wk.w + 4 * t0, rg->red, nt, &used) != 0) {
      rk_seterr(err, RK_EINTERNAL, -1, "internal error: the kernel refused its ranges (%s:%d)",
                __FILE__, __LINE__);
      rc = err->code;
      break;
    }
    last_threads = used;
    t0 = t1;
    if (t0 < wk.n && intr && intr(intr_data)) {
      rk_seterr(err, RK_EINTERRUPT, -1, "interrupted");
      rc = err->code;
    }
  }
  for (int p = 0; p < k->nargs; p++) free(conv[p]);
  free(wk.w);
  free(wk.pairs);
  return rc;
}

/* ------------------------------------------------------------ all kernels */

/* one kernel on the backend it was built for; ranges: NULL, or the pair
 * for output rows i / j (the kernel's own is picked) */
/* devs: NULL, or the ndev GPU devices a run without ranges shares its
 * output rows over (rk_run_devices) */
typedef struct run_devs {
  const int *devs;
  int ndev;
} run_devs;

static int run_any(const rk_kernel *k, const rk_input *in, int64_t rows[2], double *out,
                   const rk_ranges *const *ranges, const run_devs *dv, int nthreads,
                   rk_interrupt_fn intr, void *intr_data, rk_error *err) {
  if (ranges) {
    const rk_ranges *rg = ranges[k->outcat == RK_CAT_I ? 0 : 1];
    if (!rg) {
      rk_seterr(err, RK_EARG, -1, "ranges: no ranges were given for a reduction over %s",
                k->outcat == RK_CAT_I ? "j (output rows indexed by i)" : "i (output rows "
                "indexed by j)");
      return err->code;
    }
    if (k->backend == RK_BACKEND_GPU) {
      run_work wk;
      int rc = ranges_work(rg, rows[k->outcat], rows[1 - k->outcat],
                           k->cu_block > 0 ? k->cu_block : 1, &wk, err);
      if (rc != RK_OK) return rc;
      rc = cuda_run_ranges(k, in, rows, out, wk.n, wk.w, wk.pairs, rg->red, rg->nred, intr,
                           intr_data, err);
      free(wk.w);
      free(wk.pairs);
      return rc;
    }
    return run_kernel_ranges(k, in, rows, out, rg, nthreads, intr, intr_data, err);
  }
  if (k->backend == RK_BACKEND_GPU && dv)
    return cuda_run_devices(k, dv->devs, dv->ndev, in, rows, out, intr, intr_data, err);
  if (k->backend == RK_BACKEND_GPU) return cuda_run_one(k, in, rows, out, intr, intr_data, err);
  return run_kernel(k, in, rows, out, nthreads, intr, intr_data, err);
}

static int run_all(const rk_kernel *k, const rk_input *in, int nin, double *out,
                   const rk_ranges *const *ranges, const run_devs *dv, int nthreads,
                   rk_interrupt_fn intr, void *intr_data, rk_error *err);

int rk_run(const rk_kernel *k, const rk_input *in, int nin, double *out, int nthreads,
           rk_interrupt_fn intr, void *intr_data, rk_error *err) {
  return run_all(k, in, nin, out, NULL, NULL, nthreads, intr, intr_data, err);
}

int rk_run_devices(const rk_kernel *k, const int *devices, int ndevices, const rk_input *in,
                   int nin, double *out, rk_interrupt_fn intr, void *intr_data, rk_error *err) {
  rk_error_clear(err);
  if (k->backend != RK_BACKEND_GPU) {
    rk_seterr(err, RK_EARG, -1, "a run over several GPU devices needs a GPU kernel");
    return err->code;
  }
  if (!devices || ndevices < 1 || ndevices > 64) {
    rk_seterr(err, RK_EARG, -1, "the GPU devices must be 1 to 64 device numbers, not %d",
              devices ? ndevices : 0);
    return err->code;
  }
  run_devs dv = {devices, ndevices};
  return run_all(k, in, nin, out, NULL, &dv, 0, intr, intr_data, err);
}

int rk_run_ranges(const rk_kernel *k, const rk_input *in, int nin, double *out,
                  const rk_ranges *r_out_i, const rk_ranges *r_out_j, int nthreads,
                  rk_interrupt_fn intr, void *intr_data, rk_error *err) {
  const rk_ranges *ranges[2] = {r_out_i, r_out_j};
  return run_all(k, in, nin, out, ranges, NULL, nthreads, intr, intr_data, err);
}

/* a kernel, its forward kernel first (gradients), row sums (Pm gradients) */
static int run_all(const rk_kernel *k, const rk_input *in, int nin, double *out,
                   const rk_ranges *const *ranges, const run_devs *dv, int nthreads,
                   rk_interrupt_fn intr, void *intr_data, rk_error *err) {
  int64_t rows[2];
  if (check_rows(k, in, nin, rows, err) != RK_OK) return err->code;
  rk_input all[RK_MAX_ARGS];
  memcpy(all, in, sizeof(rk_input) * (size_t)nin);
  double *saved = NULL, *tmp = NULL;
  int rc = RK_OK;
  if (k->pre) {
    /* the forward result, as the last input */
    const rk_kernel *f = k->pre;
    int64_t n = rows[f->outcat];
    saved = malloc(sizeof(double) * (size_t)(n * f->outdim > 0 ? n * f->outdim : 1));
    if (!saved) {
      rk_seterr(err, RK_ENOMEM, -1, "out of memory");
      return err->code;
    }
    rc = run_any(f, in, rows, saved, ranges, dv, nthreads, intr, intr_data, err);
    if (rc != RK_OK) goto done;
    all[nin].data = saved;
    all[nin].nrow = n;
    all[nin].ncol = f->outdim;
  }
  if (k->postsum) {
    /* a parameter's gradient: per-row values, then their sum */
    int64_t n = rows[k->outcat];
    tmp = malloc(sizeof(double) * (size_t)(n * k->outdim > 0 ? n * k->outdim : 1));
    if (!tmp) {
      rk_seterr(err, RK_ENOMEM, -1, "out of memory");
      rc = err->code;
      goto done;
    }
    rc = run_any(k, all, rows, tmp, ranges, dv, nthreads, intr, intr_data, err);
    if (rc != RK_OK) goto done;
    for (int c = 0; c < k->outdim; c++) {
      double s = 0;
      for (int64_t r = 0; r < n; r++) s += tmp[r + c * n];
      out[c] = s;
    }
  } else {
    rc = run_any(k, all, rows, out, ranges, dv, nthreads, intr, intr_data, err);
  }
done:
  free(saved);
  free(tmp);
  return rc;
}

/* ------------------------------------------------------------ partial states */

/* Runs split over the reduced index across processes (R/future.R): each
 * part returns the states of all output rows over its share of the reduced
 * index, not finalized; the caller merges them in a fixed order.  The
 * kernel's generated rk_state_bytes, rk_partial and rk_merge_final
 * (cpu.c) are looked up in its shared object on first use. */
typedef int64_t (*rk_state_bytes_fn)(void);
typedef int (*rk_partial_fn)(int64_t nout, int64_t nred, const void *const *args, int64_t r0,
                             int64_t r1, int64_t ja, int64_t jb, int init, int nthreads,
                             void *states, void *scratch);
typedef int (*rk_merge_final_fn)(int64_t nrows, int nparts, void *states,
                                 const int64_t *offsets, double *out);

static void *partial_sym(const rk_kernel *k, const char *name, rk_error *err) {
  void *sym = NULL;
  if (k->backend != RK_BACKEND_CPU || k->pre || k->postsum || !k->dl) {
    rk_seterr(err, RK_EARG, -1,
              "partial states are only available for CPU kernels that are not gradients "
              "running a forward kernel or summing rows");
    return NULL;
  }
  sym = dlsym(k->dl, name);
  if (!sym) rk_seterr(err, RK_ELOAD, -1, "the compiled kernel '%s' has no %s", k->path, name);
  return sym;
}

int64_t rk_partial_bytes(const rk_kernel *k, rk_error *err) {
  rk_error_clear(err);
  void *sym = partial_sym(k, "rk_state_bytes", err);
  if (!sym) return -1;
  rk_state_bytes_fn f;
  memcpy(&f, &sym, sizeof sym);
  return f();
}

int rk_run_partial(const rk_kernel *k, const rk_input *in, int nin, void *states, int nthreads,
                   rk_interrupt_fn intr, void *intr_data, rk_error *err) {
  int64_t rows[2];
  if (check_rows(k, in, nin, rows, err) != RK_OK) return err->code;
  void *sym = partial_sym(k, "rk_partial", err);
  if (!sym) return err->code;
  rk_partial_fn part;
  memcpy(&part, &sym, sizeof sym);
  int64_t nout = rows[k->outcat], nred = rows[1 - k->outcat];
  const void *ptrs[RK_MAX_ARGS];
  float *conv[RK_MAX_ARGS];
  void *scratch = NULL;
  int rc = kernel_inputs(k, in, ptrs, conv, err);
  if (rc != RK_OK) goto done;
  {
    int64_t bi = k->bi > 0 ? k->bi : 1;
    int nt = rk_threads(nthreads, (double)nout * (double)nred);
    if (nout <= bi && nt > 1) {
      int comp = (rk_redops[k->red].flags & REDF_SUMLIKE) != 0;
      scratch = malloc((size_t)nt * (size_t)bi * RK_STATE_BYTES(k->acc, k->idx, comp));
      if (!scratch) {
        rk_seterr(err, RK_ENOMEM, -1, "out of memory");
        rc = err->code;
        goto done;
      }
    }
    /* reduced chunks at multiples of the tile, interrupt checks between */
    int64_t jchunk = chunk_pairs / (nout > 0 ? nout : 1);
    jchunk = (jchunk + RK_CPU_BJ - 1) / RK_CPU_BJ * RK_CPU_BJ;
    if (jchunk < RK_CPU_BJ) jchunk = RK_CPU_BJ;
    for (int64_t ja = 0; ja < nred; ja += jchunk) {
      int64_t jb = ja + jchunk < nred ? ja + jchunk : nred;
      if (part(nout, nred, ptrs, 0, nout, ja, jb, ja == 0, nt, states, scratch) != 0) {
        rk_seterr(err, RK_EINTERNAL, -1, "internal error: the kernel refused the partial run (%s:%d)",
                  __FILE__, __LINE__);
        rc = err->code;
        goto done;
      }
      last_threads = nt;
      if (jb < nred && intr && intr(intr_data)) {
        rk_seterr(err, RK_EINTERRUPT, -1, "interrupted");
        rc = err->code;
        goto done;
      }
    }
  }
done:
  for (int p = 0; p < k->nargs; p++) free(conv[p]);
  free(scratch);
  return rc;
}

int rk_merge_partials(const rk_kernel *k, int64_t nrows, int nparts, void *states,
                      const int64_t *offsets, double *out, rk_error *err) {
  rk_error_clear(err);
  void *sym = partial_sym(k, "rk_merge_final", err);
  if (!sym) return err->code;
  rk_merge_final_fn f;
  memcpy(&f, &sym, sizeof sym);
  if (f(nrows, nparts, states, offsets, out) != 0) {
    rk_seterr(err, RK_EARG, -1, "cannot merge %d parts of %lld rows", nparts, (long long)nrows);
    return err->code;
  }
  return RK_OK;
}
