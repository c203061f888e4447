/*
 * lex.c -- tokens of the formula language.
 *
 *   number  = [0-9]+                    (integers only: real constants
 *                                        are parameters, as in KeOps)
 *   ident   = [A-Za-z_][A-Za-z0-9_]*
 *   punct   = ** <= >= + - * / ( ) [ ] , | < > =
 *
 * Spaces, tabs and newlines separate tokens.  Anything else is an error at
 * its byte offset.
 */
#include <ctype.h>
#include <string.h>
#include "internal.h"

void lex_init(rk_lexer *L, rk_ctx *c, const char *s) {
  L->c = c;
  L->s = s;
  L->n = strlen(s);
  L->i = 0;
  lex_next(L);
}

void lex_next(rk_lexer *L) {
  const char *s = L->s;
  while (L->i < L->n && (s[L->i] == ' ' || s[L->i] == '\t' || s[L->i] == '\n' ||
                         s[L->i] == '\r'))
    L->i++;
  rk_token *t = &L->tok;
  memset(t, 0, sizeof *t);
  t->pos = (long)L->i;
  if (L->i >= L->n) {
    t->kind = TK_EOF;
    return;
  }
  unsigned char ch = (unsigned char)s[L->i];
  if (isdigit(ch)) {
    size_t j = L->i;
    long long v = 0;
    while (j < L->n && isdigit((unsigned char)s[j])) {
      v = v * 10 + (s[j] - '0');
      if (v > 2147483647LL)
        rk_fail(L->c, RK_EPARSE, t->pos, "integer constant too large");
      j++;
    }
    if (j < L->n && (s[j] == '.' || s[j] == 'e' || s[j] == 'E'))
      rk_fail(L->c, RK_EPARSE, t->pos,
              "only integer constants are allowed in formulas (use a parameter Pm for real values)");
    t->kind = TK_NUM;
    t->num = v;
    t->len = j - L->i;
    L->i = j;
    return;
  }
  if (isalpha(ch) || ch == '_') {
    size_t j = L->i;
    while (j < L->n && (isalnum((unsigned char)s[j]) || s[j] == '_')) j++;
    t->kind = TK_IDENT;
    t->len = j - L->i;
    L->i = j;
    return;
  }
  static const char *two[] = {"**", "<=", ">="};
  for (int k = 0; k < 3; k++) {
    if (L->i + 1 < L->n && s[L->i] == two[k][0] && s[L->i + 1] == two[k][1]) {
      t->kind = TK_PUNCT;
      memcpy(t->punct, two[k], 2);
      t->len = 2;
      L->i += 2;
      return;
    }
  }
  if (strchr("+-*/()[],|<>=", ch) && ch != '\0') {
    t->kind = TK_PUNCT;
    t->punct[0] = (char)ch;
    t->len = 1;
    L->i++;
    return;
  }
  if (ch >= 128)
    rk_fail(L->c, RK_EPARSE, t->pos, "non-ASCII character in formula");
  rk_fail(L->c, RK_EPARSE, t->pos, "unexpected character '%c'", ch >= 32 && ch < 127 ? ch : '?');
}
