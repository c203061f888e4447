/*
 * parse.c -- declarations and formulas to an expression tree.
 *
 * Recursive descent, one function per production (the grammar is written
 * above each), one precedence table for the binary operators (Lua's
 * priority[]), and a depth bound so that no formula can exhaust the C
 * stack of the R session.  Dimensions are inferred while the tree is
 * built (tree_node calls the op's dimension rule), so a dimension error
 * points at the operation that caused it.
 */
#include <stdio.h>
#include <string.h>
#include "internal.h"

typedef struct P { rk_ctx *c; rk_lexer L; } P;

static int is_punct(P *p, const char *s) {
  return p->L.tok.kind == TK_PUNCT && strcmp(p->L.tok.punct, s) == 0;
}

static void expect(P *p, const char *s) {
  if (!is_punct(p, s)) {
    if (p->L.tok.kind == TK_EOF)
      rk_fail(p->c, RK_EPARSE, p->L.tok.pos, "expected '%s' but the formula ended", s);
    rk_fail(p->c, RK_EPARSE, p->L.tok.pos, "expected '%s'", s);
  }
  lex_next(&p->L);
}

static int tok_is(P *p, const char *word) {
  return p->L.tok.kind == TK_IDENT && p->L.tok.len == strlen(word) &&
         memcmp(p->L.s + p->L.tok.pos, word, p->L.tok.len) == 0;
}

/* int = ["-"] number */
static int parse_int(P *p, const char *what) {
  int neg = 0;
  long pos = p->L.tok.pos;
  if (is_punct(p, "-")) {
    neg = 1;
    lex_next(&p->L);
  }
  if (p->L.tok.kind != TK_NUM)
    rk_fail(p->c, RK_EPARSE, pos, "expected an integer (%s)", what);
  int v = (int)p->L.tok.num;
  lex_next(&p->L);
  return neg ? -v : v;
}

static void enter(P *p) {
  if (++p->c->depth > RK_MAX_DEPTH)
    rk_fail(p->c, RK_EPARSE, p->L.tok.pos, "formula nested too deeply (more than %d levels)",
            RK_MAX_DEPTH);
}
static void leave(P *p) { p->c->depth--; }

/* Registers (or checks against an earlier one) the variable at `pos`. */
static void declare(rk_ctx *c, const char *name, size_t nlen, int pos, int dim, int cat,
                    long srcpos, int from_decl) {
  if (pos < 0 || pos >= RK_MAX_ARGS)
    rk_fail(c, RK_EPARSE, srcpos, "variable position %d is out of range [0, %d)", pos, RK_MAX_ARGS);
  if (dim < 1 || dim > RK_MAX_DIM)
    rk_fail(c, RK_EDIM, srcpos, "variable dimension %d is out of range [1, %d]", dim, RK_MAX_DIM);
  if (cat < 0 || cat > 2)
    rk_fail(c, RK_EPARSE, srcpos, "variable category %d is not 0 (Vi), 1 (Vj) or 2 (Pm)", cat);
  rk_arginfo *a = &c->args[pos];
  if (c->declared[pos]) {
    if (from_decl)
      rk_fail(c, RK_EPARSE, srcpos, "position %d is declared twice", pos);
    if (a->dim != dim || a->cat != cat)
      rk_fail(c, RK_EDIM, srcpos,
              "variable at position %d is used with dimension %d and category %d, "
              "but was declared with dimension %d and category %d",
              pos, dim, cat, a->dim, a->cat);
    return;
  }
  c->declared[pos] = 1;
  a->pos = pos;
  a->dim = dim;
  a->cat = cat;
  if (nlen >= sizeof a->name) nlen = sizeof a->name - 1;
  memcpy(a->name, name, nlen);
  a->name[nlen] = '\0';
  if (pos + 1 > c->nargs) c->nargs = pos + 1;
}

static int cat_of(P *p) {
  if (tok_is(p, "Vi")) return RK_CAT_I;
  if (tok_is(p, "Vj")) return RK_CAT_J;
  if (tok_is(p, "Pm")) return RK_CAT_PM;
  if (tok_is(p, "Var")) return 3;
  return -1;
}

/* varspec = ("Vi"|"Vj"|"Pm") "(" int ["," int] ")" | "Var" "(" int "," int "," int ")"
 * With one integer it is the dimension and the position is `defpos`
 * (-1: a position is required). */
static void parse_varspec(P *p, int defpos, int *pos, int *dim, int *cat, int *haspos) {
  int k = cat_of(p);
  long at = p->L.tok.pos;
  lex_next(&p->L);
  expect(p, "(");
  int a = parse_int(p, "dimension or position");
  *haspos = 0;
  if (k == 3) {
    expect(p, ",");
    *pos = a;
    *dim = parse_int(p, "dimension");
    expect(p, ",");
    *cat = parse_int(p, "category");
    *haspos = 1;
  } else if (is_punct(p, ",")) {
    lex_next(&p->L);
    *pos = a;
    *dim = parse_int(p, "dimension");
    *cat = k;
    *haspos = 1;
  } else {
    if (defpos < 0)
      rk_fail(p->c, RK_EPARSE, at, "a variable written inside a formula needs a position: Vi(pos, dim)");
    *pos = defpos;
    *dim = a;
    *cat = k;
  }
  expect(p, ")");
}

/* decl = ident "=" varspec */
void parse_decl(rk_ctx *c, const char *decl, int index) {
  P p = {c, {0}};
  c->in_decl = index;
  c->text = decl;
  lex_init(&p.L, c, decl);
  if (p.L.tok.kind != TK_IDENT)
    rk_fail(c, RK_EPARSE, p.L.tok.pos, "a declaration starts with a name, as in \"x = Vi(3)\"");
  const char *name = decl + p.L.tok.pos;
  size_t nlen = p.L.tok.len;
  if (nlen >= 64) rk_fail(c, RK_EPARSE, p.L.tok.pos, "variable name longer than 63 characters");
  lex_next(&p.L);
  expect(&p, "=");
  if (cat_of(&p) < 0)
    rk_fail(c, RK_EPARSE, p.L.tok.pos, "expected Vi(...), Vj(...), Pm(...) or Var(...)");
  long at = p.L.tok.pos;
  int pos, dim, cat, haspos;
  parse_varspec(&p, index, &pos, &dim, &cat, &haspos);
  c->decl_styles |= haspos ? 2 : 1;
  if (c->decl_styles == 3)
    rk_fail(c, RK_EPARSE, at,
            "declarations mix \"Vi(dim)\" and \"Vi(pos, dim)\" forms: use one form for all");
  if (p.L.tok.kind != TK_EOF) rk_fail(c, RK_EPARSE, p.L.tok.pos, "unexpected text after the declaration");
  for (int k = 0; k < c->nargs; k++)
    if (c->declared[k] && strlen(c->args[k].name) == nlen &&
        memcmp(c->args[k].name, name, nlen) == 0)
      rk_fail(c, RK_EPARSE, 0, "variable '%s' is declared twice", c->args[k].name);
  declare(c, name, nlen, pos, dim, cat, at, 1);
  c->in_decl = -1;
}

static rk_node *parse_expr(P *p);
static rk_node *parse_special(P *p, const char *name, size_t len, long at);

static rk_node *mk(P *p, int op, rk_node *a, rk_node *b, long pos) {
  rk_node *k[2] = {a, b};
  return tree_node(p->c, op, b ? 2 : 1, k, NULL, pos);
}

static int op_or_fail(P *p, const char *name, long pos) {
  int op = ops_lookup(name, strlen(name));
  if (op < 0) rk_fail(p->c, RK_EPARSE, pos, "operation %s is not supported", name);
  return op;
}


static int name_is(const char *name, size_t len, const char *w) {
  return len == strlen(w) && memcmp(name, w, len) == 0;
}

/* variable = alias | Vi(..) | Vj(..) | Pm(..) | Var(..)  (for Grad & co) */
static rk_node *parse_variable(P *p, const char *what) {
  long at = p->L.tok.pos;
  rk_node *v = parse_expr(p);
  if (v->op != RK_OP_VAR)
    rk_fail(p->c, RK_EPARSE, at, "%s: expected a variable", what);
  return v;
}

/* The autodiff forms, replaced by their result while parsing:
 *   Grad(F, v, e)  GradFromPos(F, pos, e)  Diff(F, v, u)
 *   Divergence(F, v)  Laplacian(F, v)
 * Returns NULL when `name` is none of them. */
static rk_node *parse_special(P *p, const char *name, size_t len, long at) {
  int kind = name_is(name, len, "Grad") ? 1 : name_is(name, len, "GradFromPos") ? 2
           : name_is(name, len, "Diff") ? 3 : name_is(name, len, "Divergence") ? 4
           : name_is(name, len, "Laplacian") ? 5 : 0;
  if (!kind) return NULL;
  lex_next(&p->L);
  expect(p, "(");
  rk_node *f = parse_expr(p), *v, *r;
  expect(p, ",");
  if (kind == 2) {
    long pat = p->L.tok.pos;
    int pos = parse_int(p, "position");
    if (pos < 0 || pos >= p->c->nargs || !p->c->declared[pos])
      rk_fail(p->c, RK_EPARSE, pat, "GradFromPos: no variable is declared at position %d", pos);
    rk_arginfo *a = &p->c->args[pos];
    v = tree_var(p->c, pos, a->dim, a->cat, pat);
  } else {
    v = parse_variable(p, kind == 1 ? "Grad" : kind == 3 ? "Diff" : kind == 4 ? "Divergence" : "Laplacian");
  }
  if (kind <= 3) {
    expect(p, ",");
    rk_node *e = parse_expr(p);
    r = kind == 3 ? diff_forward(p->c, f, v, e, at) : diff_grad(p->c, f, v, e, at);
  } else {
    r = kind == 4 ? diff_divergence(p->c, f, v, at) : diff_laplacian(p->c, f, v, at);
  }
  expect(p, ")");
  return r;
}

/* list = ("[" | "(") [int {"," int}] [","] ("]" | ")")
 * Appends (length, items...) to par at *np. */
static void parse_list(P *p, int *par, int *np) {
  long at = p->L.tok.pos;
  const char *close = is_punct(p, "[") ? "]" : is_punct(p, "(") ? ")" : NULL;
  if (!close) rk_fail(p->c, RK_EPARSE, at, "expected a list of integers such as [2, 3]");
  lex_next(&p->L);
  int lenpos = (*np)++;
  if (*np > RK_MAX_PARAMS) rk_fail(p->c, RK_EPARSE, at, "too many integer parameters");
  par[lenpos] = 0;
  while (!is_punct(p, close)) {
    if (*np >= RK_MAX_PARAMS) rk_fail(p->c, RK_EPARSE, p->L.tok.pos, "too many integer parameters");
    par[(*np)++] = parse_int(p, "list item");
    par[lenpos]++;
    if (is_punct(p, ",")) lex_next(&p->L);
    else if (!is_punct(p, close)) rk_fail(p->c, RK_EPARSE, p->L.tok.pos, "expected ',' or '%s'", close);
  }
  lex_next(&p->L);
}

/* call = ident "(" operand {"," operand} {"," int} ")"
 *        with as many operands and integers as the op table says;
 *        for list ops (OPF_LISTS) the integers are lists */
static rk_node *parse_call(P *p) {
  const char *name = p->L.s + p->L.tok.pos;
  size_t len = p->L.tok.len;
  long at = p->L.tok.pos;
  if (cat_of(p) >= 0) {
    int pos, dim, cat, haspos;
    parse_varspec(p, -1, &pos, &dim, &cat, &haspos);
    declare(p->c, "", 0, pos, dim, cat, at, 0);
    return tree_var(p->c, pos, dim, cat, at);
  }
  if (len > 10 && memcmp(name + len - 10, "_Reduction", 10) == 0)
    rk_fail(p->c, RK_EPARSE, at, "a reduction can only be the outermost operation of a formula");
  rk_node *sf = parse_special(p, name, len, at);
  if (sf) return sf;
  int op = ops_lookup(name, len);
  if (op < 0) rk_fail(p->c, RK_EPARSE, at, "unknown operation '%.*s'", (int)(len > 60 ? 60 : len), name);
  const rk_op *o = &rk_ops[op];
  lex_next(&p->L);
  expect(p, "(");
  rk_node *kids[RK_MAX_KIDS] = {0};
  int par[RK_MAX_PARAMS] = {0};
  int lists = (o->flags & OPF_LISTS) != 0;
  int total = o->arity + o->npar, np = 0;
  int maxtotal = total + ((o->flags & OPF_OPTLIST) ? 1 : 0);
  int i = 0;
  for (; i < maxtotal; i++) {
    if (i >= total && is_punct(p, ")")) break;  /* optional list absent */
    if (i > 0) {
      if (is_punct(p, ")"))
        rk_fail(p->c, RK_EPARSE, p->L.tok.pos, "%s expects %d argument%s, got %d", o->name,
                total, total == 1 ? "" : "s", i);
      expect(p, ",");
    } else if (is_punct(p, ")")) {
      rk_fail(p->c, RK_EPARSE, p->L.tok.pos, "%s expects %d argument%s, got 0", o->name, total,
              total == 1 ? "" : "s");
    }
    if (i < o->arity) kids[i] = parse_expr(p);
    else if (lists) parse_list(p, par, &np);
    else par[np++] = parse_int(p, "integer parameter");
  }
  if (!is_punct(p, ")")) {
    if (is_punct(p, ","))
      rk_fail(p->c, RK_EPARSE, p->L.tok.pos, "%s expects %d argument%s, got more", o->name,
              total, total == 1 ? "" : "s");
    expect(p, ")");
  }
  lex_next(&p->L);
  return tree_node(p->c, op, o->arity, kids, par, at);
}

/* primary = number | ident | call | "(" expr ["|" expr] ")" */
static rk_node *parse_primary(P *p) {
  rk_token t = p->L.tok;
  if (t.kind == TK_NUM) {
    lex_next(&p->L);
    return tree_intcst(p->c, (int)t.num, t.pos);
  }
  if (is_punct(p, "(")) {
    lex_next(&p->L);
    rk_node *a = parse_expr(p);
    if (is_punct(p, "|")) {
      long at = p->L.tok.pos;
      lex_next(&p->L);
      rk_node *b = parse_expr(p);
      a = mk(p, RK_OP_SCALPROD, a, b, at);
    }
    expect(p, ")");
    return a;
  }
  if (t.kind == TK_IDENT) {
    const char *name = p->L.s + t.pos;
    lex_next(&p->L);
    if (is_punct(p, "(")) {
      /* rewind: parse_call wants the name as current token */
      p->L.i = (size_t)t.pos;
      lex_next(&p->L);
      return parse_call(p);
    }
    rk_ctx *c = p->c;
    for (int k = 0; k < c->nargs; k++)
      if (c->declared[k] && c->args[k].name[0] && strlen(c->args[k].name) == t.len &&
          memcmp(c->args[k].name, name, t.len) == 0)
        return tree_var(c, k, c->args[k].dim, c->args[k].cat, t.pos);
    rk_fail(c, RK_EPARSE, t.pos, "unknown variable '%.*s' (not declared in the arguments)",
            (int)(t.len > 60 ? 60 : t.len), name);
  }
  if (t.kind == TK_EOF) rk_fail(p->c, RK_EPARSE, t.pos, "the formula ended where an operand was expected");
  rk_fail(p->c, RK_EPARSE, t.pos, "expected an operand");
  return NULL;
}

/* power = primary ["**" int] */
static rk_node *parse_power(P *p) {
  rk_node *a = parse_primary(p);
  if (is_punct(p, "**")) {
    long at = p->L.tok.pos;
    lex_next(&p->L);
    if (!(p->L.tok.kind == TK_NUM || is_punct(p, "-")))
      rk_fail(p->c, RK_EPARSE, p->L.tok.pos, "the exponent of ** must be an integer (use Powf for others)");
    int n = parse_int(p, "exponent");
    if (n == 2) return mk(p, RK_OP_SQUARE, a, NULL, at);
    int par[RK_MAX_PARAMS] = {n};
    rk_node *k[1] = {a};
    return tree_node(p->c, RK_OP_POW, 1, k, par, at);
  }
  return a;
}

/* unary = "-" unary | power */
static rk_node *parse_unary(P *p) {
  if (is_punct(p, "-")) {
    long at = p->L.tok.pos;
    lex_next(&p->L);
    enter(p);
    rk_node *a = parse_unary(p);
    leave(p);
    return mk(p, RK_OP_MINUS, a, NULL, at);
  }
  return parse_power(p);
}

/* The binary operators, lowest priority first (all left-associative):
 *   < > <= >=     1   LessThan / LessOrEqual (operands swapped for > >=)
 *   + -           2   Add / Subtract
 *   * /           3   Mult / Divide (1/x is Inv)                        */
static const struct { const char *tok; int prio; const char *op; int swap; } binops[] = {
  {"<", 1, "LessThan", 0}, {">", 1, "LessThan", 1},
  {"<=", 1, "LessOrEqual", 0}, {">=", 1, "LessOrEqual", 1},
  {"+", 2, "Add", 0}, {"-", 2, "Subtract", 0},
  {"*", 3, "Mult", 0}, {"/", 3, "Divide", 0},
};

static int find_binop(P *p) {
  if (p->L.tok.kind != TK_PUNCT) return -1;
  for (size_t k = 0; k < sizeof binops / sizeof binops[0]; k++)
    if (strcmp(binops[k].tok, p->L.tok.punct) == 0) return (int)k;
  return -1;
}

/* binary(prio) = unary { binop(>= prio) binary(binop.prio + 1) } */
static rk_node *parse_binary(P *p, int prio) {
  enter(p);
  rk_node *a = parse_unary(p);
  for (;;) {
    int k = find_binop(p);
    if (k < 0 || binops[k].prio < prio) break;
    long at = p->L.tok.pos;
    lex_next(&p->L);
    rk_node *b = parse_binary(p, binops[k].prio + 1);
    if (strcmp(binops[k].tok, "/") == 0 && a->op == RK_OP_INTCST && a->par[0] == 1) {
      a = mk(p, RK_OP_INV, b, NULL, at);
      continue;
    }
    int op = op_or_fail(p, binops[k].op, at);
    a = binops[k].swap ? mk(p, op, b, a, at) : mk(p, op, a, b, at);
  }
  leave(p);
  return a;
}

/* expr = binary(1) */
static rk_node *parse_expr(P *p) { return parse_binary(p, 1); }

/* reduction = name "_Reduction" "(" expr {"," expr} ["," int] "," int ")"
 *             with the extra formula operands and K that the table says
 *           | ("Grad" | "GradFromPos") "(" reduction "," (variable | int) "," expr ")" */
static void parse_reduction(P *p) {
  rk_ctx *c = p->c;
  rk_token t = p->L.tok;
  const char *formula = p->L.s;
  if (t.kind == TK_IDENT && (tok_is(p, "Grad") || tok_is(p, "GradFromPos"))) {
    int frompos = tok_is(p, "GradFromPos");
    enter(p);
    lex_next(&p->L);
    expect(p, "(");
    parse_reduction(p);
    expect(p, ",");
    rk_node *v;
    if (frompos) {
      long pat = p->L.tok.pos;
      int pos = parse_int(p, "position");
      if (pos < 0 || pos >= c->nargs || !c->declared[pos])
        rk_fail(c, RK_EPARSE, pat, "GradFromPos: no variable is declared at position %d", pos);
      v = tree_var(c, pos, c->args[pos].dim, c->args[pos].cat, pat);
    } else {
      v = parse_variable(p, "Grad");
    }
    expect(p, ",");
    rk_node *e = parse_expr(p);
    expect(p, ")");
    leave(p);
    diff_reduction(c, &c->red, v, e, t.pos);
    return;
  }
  if (t.kind != TK_IDENT || t.len <= 10 ||
      memcmp(formula + t.pos + t.len - 10, "_Reduction", 10) != 0)
    rk_fail(c, RK_EPARSE, t.pos,
            "a formula must be a reduction such as Sum_Reduction(<formula>, <axis>)");
  int r = red_lookup(formula + t.pos, t.len - 10);
  if (r < 0)
    rk_fail(c, RK_EPARSE, t.pos, "unknown reduction '%.*s'", (int)(t.len > 60 ? 60 : t.len),
            formula + t.pos);
  const rk_redop *ro = &rk_redops[r];
  lex_next(&p->L);
  expect(p, "(");
  rk_red *red = &c->red;
  memset(red, 0, sizeof *red);
  red->pre_pos = -1;
  red->red = r;
  red->pos = t.pos;
  red->f = parse_expr(p);
  for (int k = 0; k < ro->nextra; k++) {
    expect(p, ",");
    red->g = parse_expr(p);
  }
  if (ro->hasK) {
    expect(p, ",");
    long at = p->L.tok.pos;
    red->K = parse_int(p, "K");
    if (red->K < 1) rk_fail(c, RK_EDIM, at, "K must be at least 1");
  }
  if (!is_punct(p, ","))
    rk_fail(c, RK_EPARSE, p->L.tok.pos, "expected ',' and the axis (0 or 1) of %s_Reduction",
            ro->name);
  lex_next(&p->L);
  long at = p->L.tok.pos;
  int axis = parse_int(p, "axis");
  if (axis != 0 && axis != 1)
    rk_fail(c, RK_EPARSE, at,
            "the axis must be 0 (reduce over j, one row per i) or 1 (reduce over i)");
  red->axis = axis;
  expect(p, ")");
  red->D = red->f->dim;
  red->DG = red->g ? red->g->dim : 0;
  ro->shape(c, red);
}

/* formula = reduction EOF */
void parse_formula(rk_ctx *c, const char *formula) {
  P p = {c, {0}};
  c->in_decl = -1;
  c->text = formula;
  lex_init(&p.L, c, formula);
  parse_reduction(&p);
  if (p.L.tok.kind != TK_EOF) rk_fail(c, RK_EPARSE, p.L.tok.pos, "unexpected text after the reduction");
}
