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

static rk_ctx *ctx_new(rk_error *err) {
  rk_ctx *c = calloc(1, sizeof *c);
  if (!c) rk_seterr(err, RK_ENOMEM, -1, "out of memory");
  else c->err = err;
  return c;
}

int rk_generate(const char *formula, const char *const *decls, int ndecls, const rk_options *opt,
                char **src, rk_error *err) {
  rk_error_clear(err);
  if (src) *src = NULL;
  if (!formula) {
    rk_seterr(err, RK_EARG, -1, "the formula is missing");
    return err->code;
  }
  rk_options def;
  if (!opt) { rk_options_default(&def); opt = &def; }
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
  cpu_generate(c, opt, b);
  if (b->oom) rk_fail(c, RK_ENOMEM, -1, "out of memory while generating code");
  if (src) { *src = b->s; b->s = NULL; }
  buf_free(b);
  free(b);
  arena_free(&c->arena);
  free(c);
  return RK_OK;
}

int rk_compile(const char *formula, const char *const *decls, int ndecls, const rk_options *opt,
               rk_kernel **out, rk_error *err) {
  *out = NULL;
  rk_error_clear(err);
  if (!formula) {
    rk_seterr(err, RK_EARG, -1, "the formula is missing");
    return err->code;
  }
  rk_options def;
  if (!opt) { rk_options_default(&def); opt = &def; }
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
  cpu_generate(c, opt, b);
  if (b->oom) rk_fail(c, RK_ENOMEM, -1, "out of memory while generating code");
  proto->prec = opt->precision;
  proto->nargs = c->nargs;
  memcpy(proto->args, c->args, sizeof(rk_arginfo) * (size_t)c->nargs);
  proto->outcat = c->red.axis == 0 ? RK_CAT_I : RK_CAT_J;
  proto->D = c->red.D;
  proto->K = c->red.K;
  proto->red = c->red.red;
  proto->outdim = c->red.out;
  int rc = build_kernel(b->s, opt, proto, err);
  if (rc == RK_OK) *out = proto->next;
  buf_free(b);
  free(b);
  free(proto);
  arena_free(&c->arena);
  free(c);
  return rc;
}

/* ------------------------------------------------------------ accessors */

int rk_kernel_nargs(const rk_kernel *k) { return k->nargs; }
const rk_arginfo *rk_kernel_arg(const rk_kernel *k, int pos) {
  return pos >= 0 && pos < k->nargs ? &k->args[pos] : NULL;
}
int rk_kernel_outcat(const rk_kernel *k) { return k->outcat; }
int rk_kernel_outdim(const rk_kernel *k) { return k->outdim; }
const char *rk_kernel_reduction(const rk_kernel *k) { return rk_redops[k->red].name; }
int rk_kernel_redparam(const rk_kernel *k) { return k->K; }
int rk_kernel_from(const rk_kernel *k) { return k->from; }
double rk_kernel_build_seconds(const rk_kernel *k) { return k->seconds; }
const char *rk_kernel_hash(const rk_kernel *k) { return k->hash; }
const char *rk_kernel_path(const rk_kernel *k) { return k->path; }
