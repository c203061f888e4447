/*
 * r_engine.c -- the .Call entry points: R values <-> engine types.
 *
 * The only file (with init.c) that includes R headers.  Each entry unpacks
 * and validates, calls the engine, and wraps the result with one protect
 * counter and a single exit.  Engine errors come back to R as a list of
 * class "rkeops_engine_error" (message with the caret rendering, code),
 * which R/ turns into a classed condition naming the user's argument.
 * Compiled kernels belong to the engine's memo; the external pointers
 * only refer to them, so their finalizer has nothing to free, and a
 * pointer restored by readRDS() is NULL and reported as "load".
 */
#include <R.h>
#include <Rinternals.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/engine.h"

/* Formats the error (caret rendering, compiler log), frees the engine's
 * part of the record, then builds the R value: nothing malloc'd is held
 * while R allocates. */
static SEXP engine_error(rk_error *e, const char *text) {
  char buf[4096];
  rk_error_format(e, text, buf, sizeof buf);
  size_t n = strlen(buf);
  if (e->log && n + 32 < sizeof buf)
    snprintf(buf + n, sizeof buf - n, "\ncompiler output:\n%.*s", (int)(sizeof buf - n - 24), e->log);
  const char *code = rk_error_code_name(e->code);
  rk_error_clear(e);
  SEXP res = PROTECT(Rf_allocVector(VECSXP, 2));
  SET_VECTOR_ELT(res, 0, Rf_mkString(buf));
  SET_VECTOR_ELT(res, 1, Rf_mkString(code));
  SEXP nms = PROTECT(Rf_allocVector(STRSXP, 2));
  SET_STRING_ELT(nms, 0, Rf_mkChar("message"));
  SET_STRING_ELT(nms, 1, Rf_mkChar("code"));
  Rf_setAttrib(res, R_NamesSymbol, nms);
  Rf_setAttrib(res, R_ClassSymbol, Rf_mkString("rkeops_engine_error"));
  UNPROTECT(2);
  return res;
}

static const char *string1(SEXP x, const char *what) {
  if (TYPEOF(x) != STRSXP || XLENGTH(x) != 1 || STRING_ELT(x, 0) == NA_STRING)
    Rf_error("`%s` must be a single string", what);
  return CHAR(STRING_ELT(x, 0));
}

static void read_options(SEXP precision, SEXP scheme, SEXP cache_dir, rk_options *o) {
  rk_options_default(o);
  const char *p = string1(precision, "precision");
  if (strcmp(p, "float64") == 0) o->precision = RK_F64;
  else if (strcmp(p, "float32") == 0) o->precision = RK_F32;
  else Rf_error("`precision` must be \"float64\" or \"float32\", not \"%s\"", p);
  const char *s = string1(scheme, "sum_scheme");
  if (strcmp(s, "auto") == 0) o->scheme = RK_SCHEME_AUTO;
  else if (strcmp(s, "direct_sum") == 0) o->scheme = RK_SCHEME_DIRECT;
  else if (strcmp(s, "block_sum") == 0) o->scheme = RK_SCHEME_BLOCK;
  else if (strcmp(s, "kahan_scheme") == 0) o->scheme = RK_SCHEME_KAHAN;
  else Rf_error("`sum_scheme` must be one of \"auto\", \"direct_sum\", \"block_sum\", \"kahan_scheme\"");
  if (cache_dir != R_NilValue) o->cache_dir = string1(cache_dir, "cache_dir");
  const char *keep = getenv("RKEOPS_KEEP_SOURCE");
  o->keep_source = keep && *keep && strcmp(keep, "0") != 0;
}

/* declarations as a C array of strings (R-managed memory: no free needed) */
static const char **decls_of(SEXP args, int *n) {
  if (TYPEOF(args) != STRSXP) Rf_error("`args` must be a character vector");
  R_xlen_t len = XLENGTH(args);
  if (len > 256) Rf_error("`args` has %ld elements; at most 256 are supported", (long)len);
  const char **d = (const char **)R_alloc((size_t)(len ? len : 1), sizeof(char *));
  for (R_xlen_t i = 0; i < len; i++) {
    if (STRING_ELT(args, i) == NA_STRING) Rf_error("`args` must not contain NA");
    d[i] = CHAR(STRING_ELT(args, i));
  }
  *n = (int)len;
  return d;
}

static void kernel_finalizer(SEXP p) { R_ClearExternalPtr(p); }

static int interrupt_pending(void *data);

/* rk_compile_r and rk_compile_gpu_r: the kernel behind an external pointer */
static SEXP compile_kernel(SEXP formula, SEXP args, SEXP precision, SEXP scheme, SEXP cache_dir,
                           int backend, int device) {
  const char *f = string1(formula, "formula");
  int n;
  const char **decls = decls_of(args, &n);
  rk_options o;
  read_options(precision, scheme, cache_dir, &o);
  o.backend = backend;
  o.device = device;
  /* Ctrl-C while the C compiler runs: the engine kills it and returns a
   * record of code "interrupt", raised again in R/ as an interrupt */
  o.intr = interrupt_pending;
  o.intr_data = NULL;
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = NULL;
  int rc = rk_compile(f, decls, n, &o, &k, &e);
  if (rc != RK_OK) {
    const char *text = e.in_decl >= 0 && e.in_decl < n ? decls[e.in_decl] : f;
    return engine_error(&e, text);
  }
  int np = 0;
  SEXP ptr = PROTECT(R_MakeExternalPtr(k, Rf_install("rkeops_kernel"), R_NilValue)); np++;
  R_RegisterCFinalizerEx(ptr, kernel_finalizer, TRUE);
  Rf_setAttrib(ptr, R_ClassSymbol, Rf_mkString("rkeops_kernel"));
  static const char *from[] = {"memo", "disk", "compiler"};
  Rf_setAttrib(ptr, Rf_install("from"), Rf_mkString(from[rk_kernel_from(k)]));
  Rf_setAttrib(ptr, Rf_install("seconds"), Rf_ScalarReal(rk_kernel_build_seconds(k)));
  int na = rk_kernel_nargs(k);
  Rf_setAttrib(ptr, Rf_install("nargs"), Rf_ScalarInteger(na));
  SEXP nm = PROTECT(Rf_allocVector(STRSXP, na)); np++;
  SEXP pos = PROTECT(Rf_allocVector(INTSXP, na)); np++;
  SEXP cat = PROTECT(Rf_allocVector(INTSXP, na)); np++;
  SEXP dim = PROTECT(Rf_allocVector(INTSXP, na)); np++;
  for (int p = 0; p < na; p++) {
    const rk_arginfo *a = rk_kernel_arg(k, p);
    SET_STRING_ELT(nm, p, Rf_mkChar(a->name));
    INTEGER(pos)[p] = a->pos;
    INTEGER(cat)[p] = a->cat;
    INTEGER(dim)[p] = a->dim;
  }
  Rf_setAttrib(ptr, Rf_install("arg_name"), nm);
  Rf_setAttrib(ptr, Rf_install("arg_pos"), pos);
  Rf_setAttrib(ptr, Rf_install("arg_cat"), cat);
  Rf_setAttrib(ptr, Rf_install("arg_dim"), dim);
  Rf_setAttrib(ptr, Rf_install("outcat"), Rf_ScalarInteger(rk_kernel_outcat(k)));
  Rf_setAttrib(ptr, Rf_install("outdim"), Rf_ScalarInteger(rk_kernel_outdim(k)));
  Rf_setAttrib(ptr, Rf_install("reduction"), Rf_mkString(rk_kernel_reduction(k)));
  Rf_setAttrib(ptr, Rf_install("redparam"), Rf_ScalarInteger(rk_kernel_redparam(k)));
  Rf_setAttrib(ptr, Rf_install("hash"), Rf_mkString(rk_kernel_hash(k)));
  Rf_setAttrib(ptr, Rf_install("backend"), Rf_mkString(backend == RK_BACKEND_GPU ? "GPU" : "CPU"));
  Rf_setAttrib(ptr, Rf_install("postsum"), Rf_ScalarLogical(rk_kernel_postsum(k) != 0));
  Rf_setAttrib(ptr, Rf_install("pre_outcat"), Rf_ScalarInteger(rk_kernel_pre_outcat(k)));
  /* rk_cache_fallback() tells about the last folder choice: a kernel from
   * the memo chose none (its fallback, if any, is older news) */
  if (rk_kernel_from(k) != RK_FROM_MEMO && rk_cache_fallback())
    Rf_setAttrib(ptr, Rf_install("cache_fallback"), Rf_mkString(rk_cache_fallback()));
  UNPROTECT(np);
  return ptr;
}

SEXP rk_compile_r(SEXP formula, SEXP args, SEXP precision, SEXP scheme, SEXP cache_dir) {
  return compile_kernel(formula, args, precision, scheme, cache_dir, RK_BACKEND_CPU, -1);
}

/* The same kernel for the GPU: CUDA compiled by NVRTC for device `device`
 * (a whole number, -1 or NA = the default device); rk_run_r runs it there.
 * Without a usable GPU the result is an "rkeops_engine_error" (code "load")
 * whose message is the loader's diagnosis. */
SEXP rk_compile_gpu_r(SEXP formula, SEXP args, SEXP precision, SEXP scheme, SEXP cache_dir,
                      SEXP device) {
  if ((TYPEOF(device) != INTSXP && TYPEOF(device) != REALSXP) || XLENGTH(device) != 1)
    Rf_error("`device` must be a single whole number");
  int d = -1;
  if (TYPEOF(device) == INTSXP) {
    if (INTEGER(device)[0] != NA_INTEGER) d = INTEGER(device)[0];
  } else {
    double v = REAL(device)[0];
    if (!ISNAN(v)) {
      if (!(v >= -1 && v <= 1024) || v != (double)(int)v)
        Rf_error("`device` must be -1 (the default device) or a device number >= 0");
      d = (int)v;
    }
  }
  if (d < -1) Rf_error("`device` must be -1 (the default device) or a device number >= 0");
  return compile_kernel(formula, args, precision, scheme, cache_dir, RK_BACKEND_GPU, d);
}

/* list(report = <the engine's situation report>, available = TRUE/FALSE,
 * status = "ok" | "no-driver" | "no-nvrtc" | "init-failed" | "no-device" |
 * "unsupported", devices = the number of devices the driver sees).  Probes (loads libcuda and libnvrtc, initialises the
 * driver) on each call; cheap after the first. */
SEXP rk_gpu_status_r(void) {
  char *buf = R_alloc(16384, 1);
  int st = rk_gpu_status(buf, 16384);
  SEXP res = PROTECT(Rf_allocVector(VECSXP, 4));
  SET_VECTOR_ELT(res, 0, Rf_mkString(buf));
  SET_VECTOR_ELT(res, 1, Rf_ScalarLogical(st == RK_GPU_OK));
  SET_VECTOR_ELT(res, 2, Rf_mkString(rk_gpu_status_name(st)));
  SET_VECTOR_ELT(res, 3, Rf_ScalarInteger(rk_gpu_device_count()));
  SEXP nms = PROTECT(Rf_allocVector(STRSXP, 4));
  SET_STRING_ELT(nms, 0, Rf_mkChar("report"));
  SET_STRING_ELT(nms, 1, Rf_mkChar("available"));
  SET_STRING_ELT(nms, 2, Rf_mkChar("status"));
  SET_STRING_ELT(nms, 3, Rf_mkChar("devices"));
  Rf_setAttrib(res, R_NamesSymbol, nms);
  UNPROTECT(2);
  return res;
}

/* Forgets the GPU kernels, unloads their modules, releases the contexts and
 * closes libcuda/libnvrtc (also done by the DLL's unload hook, init.c);
 * the next GPU use loads everything again (after RKEOPS_LIBCUDA or
 * RKEOPS_LIBNVRTC changed, for instance). */
SEXP rk_gpu_unload_r(void) {
  rk_gpu_unload();
  return R_NilValue;
}

SEXP rk_generate_r(SEXP formula, SEXP args, SEXP precision, SEXP scheme) {
  const char *f = string1(formula, "formula");
  int n;
  const char **decls = decls_of(args, &n);
  rk_options o;
  read_options(precision, scheme, R_NilValue, &o);
  rk_error e;
  rk_error_init(&e);
  char *src = NULL;
  if (rk_generate(f, decls, n, &o, &src, &e) != RK_OK) {
    const char *text = e.in_decl >= 0 && e.in_decl < n ? decls[e.in_decl] : f;
    return engine_error(&e, text);
  }
  /* mkCharCE can fail (long jump) only on allocation failure: copy first */
  size_t len = strlen(src);
  char *copy = R_alloc(len + 1, 1);
  memcpy(copy, src, len + 1);
  free(src);
  return Rf_mkString(copy);
}

static void check_interrupt(void *data) {
  (void)data;
  R_CheckUserInterrupt();
}

static int interrupt_pending(void *data) {
  (void)data;
  return R_ToplevelExec(check_interrupt, NULL) == FALSE;
}

/* The kernel of an external pointer, or NULL when it was saved from
 * another session (*res then gets the "load" record for R/). */
static rk_kernel *kernel_of(SEXP ptr, SEXP *res) {
  if (TYPEOF(ptr) != EXTPTRSXP || R_ExternalPtrTag(ptr) != Rf_install("rkeops_kernel"))
    Rf_error("internal error: not an rkeops kernel (%s:%d)", __FILE__, __LINE__);
  rk_kernel *k = (rk_kernel *)R_ExternalPtrAddr(ptr);
  if (!k) {
    rk_error e;
    rk_error_init(&e);
    e.code = RK_ELOAD;
    snprintf(e.msg, sizeof e.msg, "this kernel was saved from another R session: compile it again");
    *res = engine_error(&e, NULL);
  }
  return k;
}

/* inputs (a list of double vectors and matrices) -> in[], *nin */
static void inputs_of(SEXP inputs, rk_input *in, int *nin) {
  if (TYPEOF(inputs) != VECSXP) Rf_error("`inputs` must be a list");
  int n = (int)XLENGTH(inputs);
  if (n > 256) Rf_error("at most 256 inputs are supported");
  for (int p = 0; p < n; p++) {
    SEXP x = VECTOR_ELT(inputs, p);
    if (TYPEOF(x) != REALSXP)
      Rf_error("internal error: input %d is not a double vector (%s:%d)", p + 1, __FILE__, __LINE__);
    SEXP d = Rf_getAttrib(x, R_DimSymbol);
    in[p].data = REAL(x);
    if (d != R_NilValue && XLENGTH(d) == 2) {
      in[p].nrow = INTEGER(d)[0];
      in[p].ncol = INTEGER(d)[1];
    } else {
      in[p].nrow = XLENGTH(x);
      in[p].ncol = 1;
    }
  }
  *nin = n;
}

/* R's list(blocks, slices, red) of integers (0-based, checked in R/ and
 * again by the engine) -> rk_ranges, arrays in R_alloc memory; NULL -> NULL */
static const rk_ranges *ranges_of(SEXP x, rk_ranges *r) {
  if (x == R_NilValue) return NULL;
  if (TYPEOF(x) != VECSXP || XLENGTH(x) != 3)
    Rf_error("internal error: ranges must be list(blocks, slices, red) (%s:%d)", __FILE__, __LINE__);
  SEXP b = VECTOR_ELT(x, 0), s = VECTOR_ELT(x, 1), q = VECTOR_ELT(x, 2);
  if (TYPEOF(b) != INTSXP || TYPEOF(s) != INTSXP || TYPEOF(q) != INTSXP ||
      XLENGTH(b) != 2 * XLENGTH(s) || XLENGTH(q) % 2 != 0)
    Rf_error("internal error: malformed ranges (%s:%d)", __FILE__, __LINE__);
  R_xlen_t nb = XLENGTH(s), nq = XLENGTH(q) / 2;
  int64_t *blocks = (int64_t *)R_alloc((size_t)(2 * nb + 1), sizeof(int64_t));
  int64_t *slices = (int64_t *)R_alloc((size_t)(nb + 1), sizeof(int64_t));
  int64_t *red = (int64_t *)R_alloc((size_t)(2 * nq + 1), sizeof(int64_t));
  /* blocks and red: two columns (start, end), column-major in R */
  for (R_xlen_t k = 0; k < nb; k++) {
    blocks[2 * k] = INTEGER(b)[k];
    blocks[2 * k + 1] = INTEGER(b)[k + nb];
    slices[k] = INTEGER(s)[k];
  }
  for (R_xlen_t k = 0; k < nq; k++) {
    red[2 * k] = INTEGER(q)[k];
    red[2 * k + 1] = INTEGER(q)[k + nq];
  }
  *r = (rk_ranges){nb, blocks, slices, nq, red};
  return r;
}

/* A run, plain (ranges_i and ranges_j NULL) or block-sparse. */
static SEXP run(SEXP ptr, SEXP inputs, SEXP nthreads, SEXP ranges_i, SEXP ranges_j, int ranged) {
  SEXP res = R_NilValue;
  rk_kernel *k = kernel_of(ptr, &res);
  if (!k) return res;
  rk_input in[256];
  int nin = 0;
  inputs_of(inputs, in, &nin);
  rk_ranges ri, rj;
  const rk_ranges *pi = ranged ? ranges_of(ranges_i, &ri) : NULL;
  const rk_ranges *pj = ranged ? ranges_of(ranges_j, &rj) : NULL;
  int nt = Rf_asInteger(nthreads);
  if (nt == NA_INTEGER || nt < 0) nt = 0;
  rk_error e;
  rk_error_init(&e);
  int64_t nout;
  if (rk_check_inputs(k, in, nin, &nout, &e) != RK_OK) return engine_error(&e, NULL);
  int outdim = rk_kernel_outdim(k);
  if (nout > INT32_MAX) Rf_error("the result would have %lld rows; R matrices hold at most %d",
                                 (long long)nout, INT32_MAX);
  SEXP out = PROTECT(Rf_allocMatrix(REALSXP, (int)nout, outdim));
  int rc = ranged ? rk_run_ranges(k, in, nin, REAL(out), pi, pj, nt, interrupt_pending, NULL, &e)
                  : rk_run(k, in, nin, REAL(out), nt, interrupt_pending, NULL, &e);
  /* An interrupt (consumed by interrupt_pending's R_ToplevelExec) comes back
   * as a record of code "interrupt", which R/ raises again as a genuine
   * interrupt condition: tryCatch(interrupt = ) sees it. */
  if (rc != RK_OK) {
    res = engine_error(&e, NULL);
    UNPROTECT(1);
    return res;
  }
  UNPROTECT(1);
  return out;
}

SEXP rk_run_r(SEXP ptr, SEXP inputs, SEXP nthreads) {
  return run(ptr, inputs, nthreads, R_NilValue, R_NilValue, 0);
}

/* A GPU kernel run over several devices (rk_run_devices): `devices`, the
 * device numbers (checked in R/ and again by the engine). */
SEXP rk_run_devices_r(SEXP ptr, SEXP inputs, SEXP devices) {
  SEXP res = R_NilValue;
  rk_kernel *k = kernel_of(ptr, &res);
  if (!k) return res;
  if (TYPEOF(devices) != INTSXP || XLENGTH(devices) < 1 || XLENGTH(devices) > 64)
    Rf_error("internal error: `devices` must be 1 to 64 integers (%s:%d)", __FILE__, __LINE__);
  rk_input in[256];
  int nin = 0;
  inputs_of(inputs, in, &nin);
  rk_error e;
  rk_error_init(&e);
  int64_t nout;
  if (rk_check_inputs(k, in, nin, &nout, &e) != RK_OK) return engine_error(&e, NULL);
  if (nout > INT32_MAX) Rf_error("the result would have %lld rows; R matrices hold at most %d",
                                 (long long)nout, INT32_MAX);
  SEXP out = PROTECT(Rf_allocMatrix(REALSXP, (int)nout, rk_kernel_outdim(k)));
  int rc = rk_run_devices(k, INTEGER(devices), (int)XLENGTH(devices), in, nin, REAL(out),
                          interrupt_pending, NULL, &e);
  if (rc != RK_OK) res = engine_error(&e, NULL);
  UNPROTECT(1);
  return rc == RK_OK ? out : res;
}

/* ranges_i: for a kernel whose output rows are i (a reduction over j),
 * ranges_j: over i; NULL where none is needed */
SEXP rk_run_ranges_r(SEXP ptr, SEXP inputs, SEXP nthreads, SEXP ranges_i, SEXP ranges_j) {
  return run(ptr, inputs, nthreads, ranges_i, ranges_j, 1);
}

/* ---- runs split over processes (R/future.R) */

/* The inputs of a run checked against the kernel's declarations, without
 * running it (the parent checks before splitting): the number of output
 * rows, or an "rkeops_engine_error". */
SEXP rk_check_r(SEXP ptr, SEXP inputs) {
  rk_error e;
  rk_error_init(&e);
  SEXP bad = R_NilValue;
  rk_kernel *k = kernel_of(ptr, &bad);
  if (!k) return bad;
  rk_input in[256];
  int nin = 0;
  inputs_of(inputs, in, &nin);
  int64_t nout;
  if (rk_check_inputs(k, in, nin, &nout, &e) != RK_OK) return engine_error(&e, NULL);
  return Rf_ScalarReal((double)nout);
}

/* The states of every output row over the reduced indices of `inputs`,
 * not finalized: a raw vector of nout states (attribute "nrows"), or an
 * "rkeops_engine_error". */
SEXP rk_partial_r(SEXP ptr, SEXP inputs, SEXP nthreads) {
  rk_error e;
  rk_error_init(&e);
  SEXP bad = R_NilValue;
  rk_kernel *k = kernel_of(ptr, &bad);
  if (!k) return bad;
  rk_input in[256];
  int nin = 0;
  inputs_of(inputs, in, &nin);
  int64_t nout;
  if (rk_check_inputs(k, in, nin, &nout, &e) != RK_OK) return engine_error(&e, NULL);
  int64_t bytes = rk_partial_bytes(k, &e);
  if (bytes <= 0) return engine_error(&e, NULL);
  if ((double)nout * (double)bytes > (double)R_XLEN_T_MAX) Rf_error("too many partial states");
  int nt = Rf_asInteger(nthreads);
  if (nt == NA_INTEGER || nt < 0) nt = 0;
  SEXP out = PROTECT(Rf_allocVector(RAWSXP, (R_xlen_t)(nout * bytes)));
  memset(RAW(out), 0, (size_t)(nout * bytes));  /* padding and unused slots too */
  int rc = rk_run_partial(k, in, nin, RAW(out), nt, interrupt_pending, NULL, &e);
  if (rc != RK_OK) {
    SEXP res = engine_error(&e, NULL);
    UNPROTECT(1);
    return res;
  }
  Rf_setAttrib(out, Rf_install("nrows"), Rf_ScalarReal((double)nout));
  UNPROTECT(1);
  return out;
}

/* Merges the parts (a list of raw vectors from rk_partial_r, all of nrows
 * states, in order; offsets: the 0-based first reduced index of each) and
 * finalizes: the nrows x outdim result, or an "rkeops_engine_error".  The
 * parts are copied first (they are not modified). */
SEXP rk_merge_r(SEXP ptr, SEXP parts, SEXP offsets, SEXP nrows) {
  rk_error e;
  rk_error_init(&e);
  SEXP bad = R_NilValue;
  rk_kernel *k = kernel_of(ptr, &bad);
  if (!k) return bad;
  if (TYPEOF(parts) != VECSXP || XLENGTH(parts) < 1 || XLENGTH(parts) > INT32_MAX)
    Rf_error("`parts` must be a non-empty list of raw vectors");
  int np = (int)XLENGTH(parts);
  if (TYPEOF(offsets) != REALSXP || XLENGTH(offsets) != np)
    Rf_error("`offsets` must be a double vector with one value per part");
  double nr = Rf_asReal(nrows);
  if (!(nr >= 1 && nr <= INT32_MAX)) Rf_error("`nrows` must be a whole number >= 1");
  int64_t n = (int64_t)nr;
  int64_t bytes = rk_partial_bytes(k, &e);
  if (bytes <= 0) return engine_error(&e, NULL);
  size_t part = (size_t)n * (size_t)bytes;
  int64_t *off = (int64_t *)R_alloc((size_t)np, sizeof(int64_t));
  char *buf = R_alloc((size_t)np, part);
  for (int t = 0; t < np; t++) {
    SEXP x = VECTOR_ELT(parts, t);
    if (TYPEOF(x) != RAWSXP || (size_t)XLENGTH(x) != part)
      Rf_error("part %d is not the partial states of %lld rows of this kernel", t + 1, (long long)n);
    double o = REAL(offsets)[t];
    if (!(o >= 0 && o < 9007199254740992.0)) Rf_error("offset %d is not a whole number >= 0", t + 1);
    off[t] = (int64_t)o;
    memcpy(buf + (size_t)t * part, RAW(x), part);
  }
  SEXP out = PROTECT(Rf_allocMatrix(REALSXP, (int)n, rk_kernel_outdim(k)));
  if (rk_merge_partials(k, n, np, buf, off, REAL(out), &e) != RK_OK) {
    SEXP res = engine_error(&e, NULL);
    UNPROTECT(1);
    return res;
  }
  UNPROTECT(1);
  return out;
}

SEXP rk_last_threads_r(void) { return Rf_ScalarInteger(rk_last_threads()); }
SEXP rk_ncores_r(void) { return Rf_ScalarInteger(rk_ncores()); }

SEXP rk_toolchain_r(void) {
  const rk_toolchain *t = rk_toolchain_get();
  SEXP res = PROTECT(Rf_allocVector(VECSXP, 4));
  SET_VECTOR_ELT(res, 0, Rf_mkString(t->cc));
  SET_VECTOR_ELT(res, 1, Rf_mkString(t->cflags));
  SET_VECTOR_ELT(res, 2, Rf_mkString(t->openmp));
  SET_VECTOR_ELT(res, 3, Rf_ScalarLogical(t->have_openmp));
  SEXP nms = PROTECT(Rf_allocVector(STRSXP, 4));
  SET_STRING_ELT(nms, 0, Rf_mkChar("cc"));
  SET_STRING_ELT(nms, 1, Rf_mkChar("cflags"));
  SET_STRING_ELT(nms, 2, Rf_mkChar("openmp"));
  SET_STRING_ELT(nms, 3, Rf_mkChar("have_openmp"));
  Rf_setAttrib(res, R_NamesSymbol, nms);
  UNPROTECT(2);
  return res;
}

SEXP rk_unload_r(void) {
  rk_unload_all();
  return R_NilValue;
}
