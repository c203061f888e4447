/*
 * compile.c -- the public entry points of the front end: a formula and its
 * declarations to generated source (rk_generate) and to a loaded kernel
 * (rk_compile).  These are the only setjmp sites of the engine: every
 * error inside parse/dims/emission long-jumps here, where the arena is
 * freed once.
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

void rk_options_default(rk_options *o) {
  o->precision = RK_F64;
  o->scheme = RK_SCHEME_AUTO;
  o->cache_dir = NULL;
  o->keep_source = 0;
  o->backend = RK_BACKEND_CPU;
  o->device = -1;
  o->intr = NULL;
  o->intr_data = NULL;
}

/* the backend's code generator and builder (cpu.c + build.c, cuda.c) */
static void generate(rk_ctx *c, rk_red *r, const rk_options *o, rk_buf *b) {
  if (o->backend == RK_BACKEND_GPU) cuda_generate(c, r, o, b);
  else cpu_generate(c, r, o, b);
}
static int build(const char *src, const rk_options *o, rk_kernel *k, rk_error *err) {
  return o->backend == RK_BACKEND_GPU ? cuda_build(src, o, k, err) : build_kernel(src, o, k, err);
}

/* parse the declarations, then the formula; check positions */
static void front(rk_ctx *c, const char *formula, const char *const *decls, int ndecls) {
  if (ndecls < 0 || ndecls > RK_MAX_ARGS)
    rk_fail(c, RK_EARG, -1, "at most %d arguments are supported", RK_MAX_ARGS);
  if (strlen(formula) > RK_MAX_FORMULA)
    rk_fail(c, RK_EPARSE, -1, "formula longer than %d bytes", RK_MAX_FORMULA);
  for (int i = 0; i < ndecls; i++) {
    if (!decls[i]) rk_fail(c, RK_EARG, -1, "declaration %d is missing", i + 1);
    parse_decl(c, decls[i], i);
  }
  parse_formula(c, formula);
  for (int p = 0; p < c->nargs; p++)
    if (!c->declared[p])
      rk_fail(c, RK_EDIM, -1,
              "no variable is declared at position %d (positions must run from 0 without gaps)", p);
}

/* the kernel's description, before it is built */
static void fill_proto(rk_kernel *k, rk_ctx *c, const rk_red *r, const rk_options *opt, int nargs) {
  k->prec = opt->precision;
  k->nargs = nargs;
  k->nuser = nargs;
  memcpy(k->args, c->args, sizeof(rk_arginfo) * (size_t)nargs);
  k->outcat = r->axis == 0 ? RK_CAT_I : RK_CAT_J;
  k->D = r->D;
  k->K = r->K;
  k->red = r->red;
  k->outdim = r->out;
  k->postsum = r->postsum;
  k->acc = r->acc;
  k->idx = r->idx > 0 ? r->idx : 1;
  k->bi = c->cpu_bi;
}

static rk_ctx *ctx_new(rk_error *err) {
  rk_ctx *c = calloc(1, sizeof *c);
  if (!c) rk_seterr(err, RK_ENOMEM, -1, "out of memory");
  else c->err = err;
  return c;
}

int rk_generate(const char *formula, const char *const *decls, int ndecls, const rk_options *options,
                char **src, rk_error *err) {
  rk_error_clear(err);
  if (src) *src = NULL;
  if (!formula) {
    rk_seterr(err, RK_EARG, -1, "the formula is missing");
    return err->code;
  }
  /* a copy, never written after setjmp (no argument can be clobbered) */
  rk_options def;
  if (options) def = *options;
  else rk_options_default(&def);
  const rk_options *const opt = &def;
  rk_ctx *c = ctx_new(err);
  if (!c) return err->code;
  rk_buf *b = malloc(sizeof *b);
  if (!b) { free(c); rk_seterr(err, RK_ENOMEM, -1, "out of memory"); return err->code; }
  buf_init(b);
  if (setjmp(c->jmp)) {
    buf_free(b);
    free(b);
    arena_free(&c->arena);
    free(c);
    return err->code;
  }
  front(c, formula, decls, ndecls);
  if (c->red.pre_pos >= 0) {
    generate(c, &c->pre, opt, b);
    buf_puts(b, "\n/* ---- the forward kernel above feeds the last input of the kernel below ---- */\n");
  }
  generate(c, &c->red, opt, b);
  if (b->oom) rk_fail(c, RK_ENOMEM, -1, "out of memory while generating code");
  if (src) { *src = b->s; b->s = NULL; }
  buf_free(b);
  free(b);
  arena_free(&c->arena);
  free(c);
  return RK_OK;
}

int rk_compile(const char *formula, const char *const *decls, int ndecls, const rk_options *options,
               rk_kernel **out, rk_error *err) {
  *out = NULL;
  rk_error_clear(err);
  if (!formula) {
    rk_seterr(err, RK_EARG, -1, "the formula is missing");
    return err->code;
  }
  /* a copy, never written after setjmp (no argument can be clobbered) */
  rk_options def;
  if (options) def = *options;
  else rk_options_default(&def);
  const rk_options *const opt = &def;
  rk_ctx *c = ctx_new(err);
  if (!c) return err->code;
  rk_buf *b = malloc(sizeof *b);
  rk_kernel *proto = calloc(1, sizeof *proto);
  if (!b || !proto) {
    free(c); free(b); free(proto);
    rk_seterr(err, RK_ENOMEM, -1, "out of memory");
    return err->code;
  }
  buf_init(b);
  if (setjmp(c->jmp)) {
    buf_free(b);
    free(b);
    free(proto);
    arena_free(&c->arena);
    free(c);
    return err->code;
  }
  front(c, formula, decls, ndecls);
  int nuser = c->red.pre_pos >= 0 ? c->red.pre_pos : c->nargs;
  rk_kernel *pre = NULL;
  int rc = RK_OK;
  if (c->red.pre_pos >= 0) {
    /* the forward reduction, on the caller's inputs */
    generate(c, &c->pre, opt, b);
    if (b->oom) rk_fail(c, RK_ENOMEM, -1, "out of memory while generating code");
    fill_proto(proto, c, &c->pre, opt, nuser);
    rc = build(b->s, opt, proto, err);
    if (rc == RK_OK) pre = proto->next;
    buf_free(b);
    memset(proto, 0, sizeof *proto);
  }
  if (rc == RK_OK) {
    generate(c, &c->red, opt, b);
    if (b->oom) rk_fail(c, RK_ENOMEM, -1, "out of memory while generating code");
    fill_proto(proto, c, &c->red, opt, c->nargs);
    proto->nuser = nuser;
    proto->pre = pre;
    rc = build(b->s, opt, proto, err);
    if (rc == RK_OK) {
      *out = proto->next;
      if (pre && pre->from == RK_FROM_COMPILER) {
        (*out)->seconds += pre->seconds;
        if ((*out)->from != RK_FROM_COMPILER) (*out)->from = RK_FROM_COMPILER;
      }
    }
  }
  buf_free(b);
  free(b);
  free(proto);
  arena_free(&c->arena);
  free(c);
  return rc;
}

/* ------------------------------------------------------------ accessors */

int rk_kernel_nargs(const rk_kernel *k) { return k->nuser; }
const rk_arginfo *rk_kernel_arg(const rk_kernel *k, int pos) {
  return pos >= 0 && pos < k->nuser ? &k->args[pos] : NULL;
}
int rk_kernel_outcat(const rk_kernel *k) { return k->outcat; }
int rk_kernel_outdim(const rk_kernel *k) { return k->outdim; }
const char *rk_kernel_reduction(const rk_kernel *k) { return rk_redops[k->red].name; }
int rk_kernel_redparam(const rk_kernel *k) { return k->K; }
int rk_kernel_from(const rk_kernel *k) { return k->from; }
double rk_kernel_build_seconds(const rk_kernel *k) { return k->seconds; }
const char *rk_kernel_hash(const rk_kernel *k) { return k->hash; }
const char *rk_kernel_path(const rk_kernel *k) { return k->path; }
int rk_kernel_postsum(const rk_kernel *k) { return k->postsum; }
int rk_kernel_pre_outcat(const rk_kernel *k) { return k->pre ? k->pre->outcat : -1; }
