/*
 * error.c -- error records and their caret rendering (chibicc's verror_at).
 *
 * Inside a compilation, rk_fail() fills the record and long-jumps to the
 * public entry point that owns the rk_ctx; nothing is freed by hand on the
 * way because every allocation belongs to the arena (guideline 4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

void rk_error_init(rk_error *e) {
  e->code = RK_OK;
  e->pos = -1;
  e->in_decl = -1;
  e->msg[0] = '\0';
  e->log = NULL;
}

void rk_error_clear(rk_error *e) {
  free(e->log);
  rk_error_init(e);
}

static void vset(rk_error *e, int code, long pos, const char *fmt, va_list ap) {
  e->code = code;
  e->pos = pos;
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

void rk_seterr(rk_error *e, int code, long pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vset(e, code, pos, fmt, ap);
  va_end(ap);
}

void rk_fail(rk_ctx *c, int code, long pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vset(c->err, code, pos, fmt, ap);
  va_end(ap);
  c->err->in_decl = c->in_decl;
  longjmp(c->jmp, 1);
}

const char *rk_error_code_name(int code) {
  switch (code) {
  case RK_OK: return "ok";
  case RK_EPARSE: return "parse";
  case RK_EDIM: return "dim";
  case RK_EARG: return "arg";
  case RK_ESHAPE: return "shape";
  case RK_EBUILD: return "build";
  case RK_ELOAD: return "load";
  case RK_ENOMEM: return "nomem";
  case RK_EINTERRUPT: return "interrupt";
  default: return "internal";
  }
}

/* "msg\n  text\n  ^": long texts are shown as a window of about 70
 * characters around the position, non-printable bytes as '?'. */
void rk_error_format(const rk_error *e, const char *text, char *buf, size_t n) {
  if (n == 0) return;
  if (!text || e->pos < 0) {
    snprintf(buf, n, "%s", e->msg);
    return;
  }
  size_t len = strlen(text);
  size_t pos = (size_t)e->pos > len ? len : (size_t)e->pos;
  size_t from = pos > 50 ? pos - 50 : 0;
  size_t to = from + 70 < len ? from + 70 : len;
  char line[80], caret[80];
  size_t k = 0;
  if (from > 0) { line[k++] = '.'; line[k++] = '.'; line[k++] = '.'; }
  size_t off = k;
  for (size_t i = from; i < to && k < sizeof line - 4; i++) {
    unsigned char ch = (unsigned char)text[i];
    line[k++] = (ch >= 32 && ch < 127) ? (char)ch : '?';
  }
  if (to < len) { line[k++] = '.'; line[k++] = '.'; line[k++] = '.'; }
  line[k] = '\0';
  size_t cpos = off + (pos - from);
  if (cpos > sizeof caret - 2) cpos = sizeof caret - 2;
  memset(caret, ' ', cpos);
  caret[cpos] = '^';
  caret[cpos + 1] = '\0';
  snprintf(buf, n, "%s\n  %s\n  %s", e->msg, line, caret);
}
