/*
 * r_lazy.c -- the hot paths of LazyTensor building, in C.
 *
 * A LazyTensor is an R list (formula, args, data, dimres) of class
 * "LazyTensor" (or c("ComplexLazyTensor", "LazyTensor")):
 *
 *   formula  one string, KeOps syntax, whose variables are identifiers
 *            unique among all LazyTensors of all sessions
 *   args     the declarations "<id>=Vi(3)", ..., without duplicates
 *   data     the data of each declaration, in the same order
 *   dimres   the inner dimension seen by R (d for complex data of 2d reals)
 *
 * R/ does every check and every error message; these functions only
 * build values, so a LazyTensor operation costs one .Call instead of a
 * dozen R-level string operations, and a repeated reduction finds its
 * compiled kernel from a key in which identifiers are replaced by their
 * positions (V0, V1, ...), the same for every LazyTensor of the same
 * formula whatever its data.
 *
 * Nothing here is pasted into C source: the engine parses the formula
 * against its op table.
 */
#include <R.h>
#include <Rinternals.h>
#include <stdio.h>
#include <string.h>

static char lt_token[64] = "0000000000000000";
static double lt_count = 0; /* identifiers made in this session */

/* rk_lt_init_r(token): the per-session token of the identifiers */
SEXP rk_lt_init_r(SEXP token) {
  if (TYPEOF(token) != STRSXP || XLENGTH(token) != 1 || STRING_ELT(token, 0) == NA_STRING ||
      strlen(CHAR(STRING_ELT(token, 0))) >= sizeof lt_token)
    Rf_error("`token` must be a short string");
  snprintf(lt_token, sizeof lt_token, "%s", CHAR(STRING_ELT(token, 0)));
  return R_NilValue;
}

static SEXP lt_names;     /* c("formula", "args", "data", "dimres") */
static SEXP lt_class_re;  /* "LazyTensor" */
static SEXP lt_class_cx;  /* c("ComplexLazyTensor", "LazyTensor") */

static void lt_constants(void) {
  if (lt_names) return;
  static const char *nm[] = {"formula", "args", "data", "dimres"};
  lt_names = Rf_allocVector(STRSXP, 4);
  R_PreserveObject(lt_names);
  for (int k = 0; k < 4; k++) SET_STRING_ELT(lt_names, k, Rf_mkChar(nm[k]));
  lt_class_re = Rf_mkString("LazyTensor");
  R_PreserveObject(lt_class_re);
  lt_class_cx = Rf_allocVector(STRSXP, 2);
  R_PreserveObject(lt_class_cx);
  SET_STRING_ELT(lt_class_cx, 0, Rf_mkChar("ComplexLazyTensor"));
  SET_STRING_ELT(lt_class_cx, 1, Rf_mkChar("LazyTensor"));
}

/* The LazyTensor list; formula, args and data must be protected by the
 * caller. */
static SEXP lt_new(SEXP formula, SEXP args, SEXP data, int dimres, int cplx) {
  lt_constants();
  SEXP res = PROTECT(Rf_allocVector(VECSXP, 4));
  SET_VECTOR_ELT(res, 0, formula);
  SET_VECTOR_ELT(res, 1, args);
  SET_VECTOR_ELT(res, 2, data);
  SET_VECTOR_ELT(res, 3, Rf_ScalarInteger(dimres));
  Rf_setAttrib(res, R_NamesSymbol, lt_names);
  Rf_setAttrib(res, R_ClassSymbol, cplx ? lt_class_cx : lt_class_re);
  UNPROTECT(1);
  return res;
}

/* A field of a LazyTensor list, by name (R_NilValue when absent). */
static SEXP lt_field(SEXP x, const char *name) {
  SEXP nms = Rf_getAttrib(x, R_NamesSymbol);
  if (TYPEOF(x) != VECSXP || TYPEOF(nms) != STRSXP) return R_NilValue;
  R_xlen_t n = XLENGTH(x);
  for (R_xlen_t k = 0; k < n; k++)
    if (strcmp(CHAR(STRING_ELT(nms, k)), name) == 0) return VECTOR_ELT(x, k);
  return R_NilValue;
}

static int int1(SEXP x, const char *what) {
  if ((TYPEOF(x) != INTSXP && TYPEOF(x) != REALSXP) || XLENGTH(x) != 1)
    Rf_error("`%s` must be a single integer", what);
  double v = Rf_asReal(x);
  if (!(v >= 0 && v < 2147483647.0)) Rf_error("`%s` must be a single integer", what);
  return (int)v;
}

static const char *str1(SEXP x, const char *what) {
  if (TYPEOF(x) != STRSXP || XLENGTH(x) != 1 || STRING_ELT(x, 0) == NA_STRING)
    Rf_error("`%s` must be a single string", what);
  return CHAR(STRING_ELT(x, 0));
}

/* rk_lt_leaf_r(data, category, kdim, dimres, complex): a variable with a
 * new identifier "A<token>n<count><suffix>" (suffix i, j or NA). */
SEXP rk_lt_leaf_r(SEXP data, SEXP category, SEXP kdim, SEXP dimres, SEXP cplx) {
  const char *cat = str1(category, "category");
  const char *suffix = strcmp(cat, "Vi") == 0 ? "i" : strcmp(cat, "Vj") == 0 ? "j" :
                       strcmp(cat, "Pm") == 0 ? "NA" : NULL;
  if (!suffix) Rf_error("`category` must be \"Vi\", \"Vj\" or \"Pm\"");
  int kd = int1(kdim, "kdim"), dr = int1(dimres, "dimres");
  lt_count += 1;
  char id[128], decl[192];
  snprintf(id, sizeof id, "A%sn%.0f%s", lt_token, lt_count, suffix);
  snprintf(decl, sizeof decl, "%s=%s(%d)", id, cat, kd);
  SEXP formula = PROTECT(Rf_mkString(id));
  SEXP args = PROTECT(Rf_mkString(decl));
  SEXP dl = PROTECT(Rf_allocVector(VECSXP, 1));
  SET_VECTOR_ELT(dl, 0, data);
  SEXP res = lt_new(formula, args, dl, dr, Rf_asLogical(cplx) == 1);
  UNPROTECT(3);
  return res;
}

/* ------------------------------------------------------------ strings */

typedef struct {
  char *p;
  size_t n, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *q = R_alloc(cap, 1); /* freed by R at the end of the .Call */
    if (b->n) memcpy(q, b->p, b->n);
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}
static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static SEXP sb_string(sbuf *b) {
  return Rf_mkCharLen(b->n ? b->p : "", (int)b->n);
}

static const char *formula_of(SEXP x, int k) {
  SEXP f = lt_field(x, "formula");
  if (TYPEOF(f) != STRSXP || XLENGTH(f) != 1 || STRING_ELT(f, 0) == NA_STRING)
    Rf_error("operand %d is not a LazyTensor (no formula)", k + 1);
  return CHAR(STRING_ELT(f, 0));
}

/* The variables (args) and data of the operands, without duplicates, in
 * order of first appearance, as list(args, data): one operand's own when
 * the others have none, else a merge.  NULL when there is none. */
static SEXP lt_vars(SEXP operands) {
  int n = (int)XLENGTH(operands);
  SEXP args = R_NilValue, data = R_NilValue;
  R_xlen_t total = 0;
  for (int k = 0; k < n; k++) {
    SEXP a = lt_field(VECTOR_ELT(operands, k), "args");
    if (a != R_NilValue && TYPEOF(a) != STRSXP) Rf_error("operand %d has invalid `args`", k + 1);
    SEXP d = lt_field(VECTOR_ELT(operands, k), "data");
    if (Rf_xlength(a) != (d == R_NilValue ? 0 : Rf_xlength(d)) ||
        (d != R_NilValue && TYPEOF(d) != VECSXP))
      Rf_error("operand %d has `args` and `data` of different lengths", k + 1);
    total += Rf_xlength(a);
    if (Rf_xlength(a) > 0 && args == R_NilValue) {
      args = a;
      data = d;
    }
  }
  SEXP out = PROTECT(Rf_allocVector(VECSXP, 2));
  SEXP nms = PROTECT(Rf_allocVector(STRSXP, 2));
  SET_STRING_ELT(nms, 0, Rf_mkChar("args"));
  SET_STRING_ELT(nms, 1, Rf_mkChar("data"));
  Rf_setAttrib(out, R_NamesSymbol, nms);
  if (total > (args == R_NilValue ? 0 : Rf_xlength(args))) {
    /* several operands have variables: merge (the strings and data stay
     * reachable from the operands while the result is allocated) */
    SEXP *ua = (SEXP *)R_alloc((size_t)total, sizeof(SEXP));
    SEXP *ud = (SEXP *)R_alloc((size_t)total, sizeof(SEXP));
    R_xlen_t m = 0;
    for (int k = 0; k < n; k++) {
      SEXP a = lt_field(VECTOR_ELT(operands, k), "args");
      SEXP d = lt_field(VECTOR_ELT(operands, k), "data");
      for (R_xlen_t q = 0; q < Rf_xlength(a); q++) {
        SEXP s = STRING_ELT(a, q);
        int dup = 0;
        for (R_xlen_t r = 0; r < m && !dup; r++)
          dup = ua[r] == s || strcmp(CHAR(ua[r]), CHAR(s)) == 0;
        if (dup) continue;
        ua[m] = s;
        ud[m] = VECTOR_ELT(d, q);
        m++;
      }
    }
    args = Rf_allocVector(STRSXP, m);
    SET_VECTOR_ELT(out, 0, args);
    data = Rf_allocVector(VECSXP, m);
    SET_VECTOR_ELT(out, 1, data);
    for (R_xlen_t r = 0; r < m; r++) {
      SET_STRING_ELT(args, r, ua[r]);
      SET_VECTOR_ELT(data, r, ud[r]);
    }
  } else {
    SET_VECTOR_ELT(out, 0, args);
    SET_VECTOR_ELT(out, 1, data);
  }
  UNPROTECT(2);
  return out;
}

/* rk_lt_node_r(op, infix, operands, extra, dimres, complex): the
 * LazyTensor op(x1,...,xn<extra>), or (x1<op>x2) when infix, whose
 * variables are those of the operands without duplicates (in order of
 * first appearance). */
SEXP rk_lt_node_r(SEXP op, SEXP infix, SEXP operands, SEXP extra, SEXP dimres, SEXP cplx) {
  const char *o = str1(op, "op");
  const char *ex = str1(extra, "extra");
  int inf = Rf_asLogical(infix) == 1, dr = int1(dimres, "dimres");
  if (TYPEOF(operands) != VECSXP || XLENGTH(operands) < 1 || XLENGTH(operands) > 3)
    Rf_error("`operands` must be a list of 1 to 3 LazyTensors");
  int n = (int)XLENGTH(operands);
  if (inf && n != 2) Rf_error("an infix operation takes 2 operands");

  sbuf b = {0};
  if (inf) {
    sb_puts(&b, "(");
    sb_puts(&b, formula_of(VECTOR_ELT(operands, 0), 0));
    sb_puts(&b, o);
    sb_puts(&b, formula_of(VECTOR_ELT(operands, 1), 1));
    sb_puts(&b, ")");
  } else {
    sb_puts(&b, o);
    sb_puts(&b, "(");
    for (int k = 0; k < n; k++) {
      if (k) sb_puts(&b, ",");
      sb_puts(&b, formula_of(VECTOR_ELT(operands, k), k));
    }
    sb_puts(&b, ex);
    sb_puts(&b, ")");
  }
  SEXP formula = PROTECT(Rf_ScalarString(sb_string(&b)));

  SEXP vars = PROTECT(lt_vars(operands));
  SEXP res = lt_new(formula, VECTOR_ELT(vars, 0), VECTOR_ELT(vars, 1), dr, Rf_asLogical(cplx) == 1);
  UNPROTECT(2);
  return res;
}

/* rk_lt_merge_r(operands): list(args, data) of the LazyTensors (NULL
 * elements allowed) without duplicates, as for an operation on them */
SEXP rk_lt_merge_r(SEXP operands) {
  if (TYPEOF(operands) != VECSXP) Rf_error("`operands` must be a list");
  return lt_vars(operands);
}

/* ------------------------------------------------------------ renaming */

static int id_char(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
         ch == '_';
}

/* Appends formula f to b with every identifier token that is one of the
 * n ids replaced by V<position>. */
static void rename_into(sbuf *b, const char *f, const char **ids, const size_t *len, int n) {
  const char *p = f;
  while (*p) {
    if (!id_char(*p)) {
      const char *q = p;
      while (*q && !id_char(*q)) q++;
      sb_put(b, p, (size_t)(q - p));
      p = q;
      continue;
    }
    const char *q = p;
    while (id_char(*q)) q++;
    size_t tl = (size_t)(q - p);
    int hit = -1;
    for (int k = 0; k < n && hit < 0; k++)
      if (len[k] == tl && memcmp(ids[k], p, tl) == 0) hit = k;
    if (hit >= 0) {
      char v[24];
      snprintf(v, sizeof v, "V%d", hit);
      sb_puts(b, v);
    } else {
      sb_put(b, p, tl);
    }
    p = q;
  }
}

/* identifiers (before '=') of the declarations */
static int split_args(SEXP args, const char ***ids, size_t **len) {
  if (args != R_NilValue && TYPEOF(args) != STRSXP) Rf_error("`args` must be a character vector");
  int n = args == R_NilValue ? 0 : (int)Rf_xlength(args);
  *ids = (const char **)R_alloc((size_t)n + 1, sizeof(char *));
  *len = (size_t *)R_alloc((size_t)n + 1, sizeof(size_t));
  for (int k = 0; k < n; k++) {
    if (STRING_ELT(args, k) == NA_STRING) Rf_error("`args` must not contain NA");
    const char *s = CHAR(STRING_ELT(args, k));
    const char *eq = strchr(s, '=');
    if (!eq) Rf_error("declaration %d has no '='", k + 1);
    (*ids)[k] = s;
    (*len)[k] = (size_t)(eq - s);
  }
  return n;
}

/* renamed declarations: "V<k>=" followed by what follows '=' */
static SEXP renamed_args(SEXP args, const size_t *len, int n) {
  SEXP out = PROTECT(Rf_allocVector(STRSXP, n));
  for (int k = 0; k < n; k++) {
    sbuf b = {0};
    char v[24];
    snprintf(v, sizeof v, "V%d", k);
    sb_puts(&b, v);
    sb_puts(&b, CHAR(STRING_ELT(args, k)) + len[k]);
    SET_STRING_ELT(out, k, sb_string(&b));
  }
  UNPROTECT(1);
  return out;
}

/* rk_lt_rename_r(formulas, args): list(formula, args) with the variables
 * renamed V0, V1, ... in the order of args. */
SEXP rk_lt_rename_r(SEXP formulas, SEXP args) {
  if (TYPEOF(formulas) != STRSXP) Rf_error("`formulas` must be a character vector");
  const char **ids;
  size_t *len;
  int n = split_args(args, &ids, &len);
  R_xlen_t nf = XLENGTH(formulas);
  SEXP fo = PROTECT(Rf_allocVector(STRSXP, nf));
  for (R_xlen_t k = 0; k < nf; k++) {
    if (STRING_ELT(formulas, k) == NA_STRING) Rf_error("`formulas` must not contain NA");
    sbuf b = {0};
    rename_into(&b, CHAR(STRING_ELT(formulas, k)), ids, len, n);
    SET_STRING_ELT(fo, k, sb_string(&b));
  }
  SEXP ao = PROTECT(renamed_args(args, len, n));
  SEXP res = PROTECT(Rf_allocVector(VECSXP, 2));
  SET_VECTOR_ELT(res, 0, fo);
  SET_VECTOR_ELT(res, 1, ao);
  SEXP nms = PROTECT(Rf_allocVector(STRSXP, 2));
  SET_STRING_ELT(nms, 0, Rf_mkChar("formula"));
  SET_STRING_ELT(nms, 1, Rf_mkChar("args"));
  Rf_setAttrib(res, R_NamesSymbol, nms);
  UNPROTECT(4);
  return res;
}

/* rk_lt_reduction_r(red, index, formulas, args): the reduction
 * "<red>_Reduction(<f1>,<f2>...,<0|1>)" of the renamed formulas, as
 * c(key, formula, renamed args...), where key is
 * "<formula>|<arg1>;<arg2>..." (the key of the kernel-state memo). */
SEXP rk_lt_reduction_r(SEXP red, SEXP index, SEXP formulas, SEXP args) {
  const char *rd = str1(red, "red"), *ix = str1(index, "index");
  if (strcmp(ix, "i") != 0 && strcmp(ix, "j") != 0) Rf_error("`index` must be \"i\" or \"j\"");
  if (TYPEOF(formulas) != STRSXP || XLENGTH(formulas) < 1)
    Rf_error("`formulas` must be a character vector");
  const char **ids;
  size_t *len;
  int n = split_args(args, &ids, &len);
  sbuf b = {0};
  sb_puts(&b, rd);
  sb_puts(&b, "_Reduction(");
  for (R_xlen_t k = 0; k < XLENGTH(formulas); k++) {
    if (STRING_ELT(formulas, k) == NA_STRING) Rf_error("`formulas` must not contain NA");
    rename_into(&b, CHAR(STRING_ELT(formulas, k)), ids, len, n);
    sb_puts(&b, ",");
  }
  sb_puts(&b, ix[0] == 'j' ? "0)" : "1)");
  size_t flen = b.n;
  SEXP ao = PROTECT(renamed_args(args, len, n));
  SEXP out = PROTECT(Rf_allocVector(STRSXP, 2 + (R_xlen_t)n));
  SET_STRING_ELT(out, 1, Rf_mkCharLen(b.p, (int)flen));
  sb_puts(&b, "|");
  for (int k = 0; k < n; k++) {
    if (k) sb_puts(&b, ";");
    sb_puts(&b, CHAR(STRING_ELT(ao, k)));
    SET_STRING_ELT(out, 2 + k, STRING_ELT(ao, k));
  }
  SET_STRING_ELT(out, 0, sb_string(&b));
  UNPROTECT(2);
  return out;
}

/* ------------------------------------------------------------ fast paths */

/* The common operations, done without any R-level work when both
 * operands are real LazyTensors (class exactly "LazyTensor") of
 * compatible dimensions; anything else (numbers, complex operands,
 * mismatched dimensions, extra arguments) returns NULL, and R/ takes its
 * general path, which also writes the error messages. */
enum { FAST_UNARY, FAST_SAMEOR1, FAST_SAMEOR1_DIM1, FAST_SAME_DIM1 };
static const struct {
  const char *generic, *op;
  int nargs, kind;
} fast_ops[] = {
  {"+", "Add", 2, FAST_SAMEOR1},      {"-", "Subtract", 2, FAST_SAMEOR1},
  {"*", "Mult", 2, FAST_SAMEOR1},     {"/", "Divide", 2, FAST_SAMEOR1},
  {"-", "Minus", 1, FAST_UNARY},      {"exp", "Exp", 1, FAST_UNARY},
  {"log", "Log", 1, FAST_UNARY},      {"sqrt", "Sqrt", 1, FAST_UNARY},
  {"abs", "Abs", 1, FAST_UNARY},      {"sign", "Sign", 1, FAST_UNARY},
  {"cos", "Cos", 1, FAST_UNARY},      {"sin", "Sin", 1, FAST_UNARY},
  {"acos", "Acos", 1, FAST_UNARY},    {"asin", "Asin", 1, FAST_UNARY},
  {"atan", "Atan", 1, FAST_UNARY},    {"floor", "Floor", 1, FAST_UNARY},
  {"sqdist", "SqDist", 2, FAST_SAMEOR1_DIM1}, {"|", "Scalprod", 2, FAST_SAME_DIM1},
};

static int real_lt(SEXP x) {
  SEXP cl = Rf_getAttrib(x, R_ClassSymbol);
  return TYPEOF(x) == VECSXP && TYPEOF(cl) == STRSXP && XLENGTH(cl) == 1 &&
         strcmp(CHAR(STRING_ELT(cl, 0)), "LazyTensor") == 0;
}

static int dimres_of(SEXP x) {
  SEXP d = lt_field(x, "dimres");
  if (TYPEOF(d) == INTSXP && Rf_xlength(d) == 1 && INTEGER(d)[0] > 0) return INTEGER(d)[0];
  if (TYPEOF(d) == REALSXP && Rf_xlength(d) == 1 && REAL(d)[0] >= 1 && REAL(d)[0] < 2147483647.0)
    return (int)REAL(d)[0];
  return -1;
}

/* rk_lt_fast_r(generic, nargs, e1, e2) */
SEXP rk_lt_fast_r(SEXP generic, SEXP nargs, SEXP e1, SEXP e2) {
  if (TYPEOF(generic) != STRSXP || XLENGTH(generic) != 1) return R_NilValue;
  const char *g = CHAR(STRING_ELT(generic, 0));
  int na = Rf_asInteger(nargs);
  for (size_t k = 0; k < sizeof fast_ops / sizeof fast_ops[0]; k++) {
    if (fast_ops[k].nargs != na || strcmp(fast_ops[k].generic, g) != 0) continue;
    if (!real_lt(e1) || (na == 2 && !real_lt(e2))) return R_NilValue;
    int d1 = dimres_of(e1), d2 = na == 2 ? dimres_of(e2) : d1, dr;
    if (d1 < 0 || d2 < 0) return R_NilValue;
    switch (fast_ops[k].kind) {
    case FAST_UNARY: dr = d1; break;
    case FAST_SAMEOR1:
    case FAST_SAMEOR1_DIM1:
      if (d1 != d2 && d1 != 1 && d2 != 1) return R_NilValue;
      dr = fast_ops[k].kind == FAST_SAMEOR1_DIM1 ? 1 : d1 > d2 ? d1 : d2;
      break;
    default:
      if (d1 != d2) return R_NilValue;
      dr = 1;
      break;
    }
    SEXP ops = PROTECT(Rf_allocVector(VECSXP, na));
    SET_VECTOR_ELT(ops, 0, e1);
    if (na == 2) SET_VECTOR_ELT(ops, 1, e2);
    SEXP op = PROTECT(Rf_mkString(fast_ops[k].op));
    SEXP infix = PROTECT(Rf_ScalarLogical(0));
    SEXP extra = PROTECT(Rf_mkString(""));
    SEXP dims = PROTECT(Rf_ScalarInteger(dr));
    SEXP res = rk_lt_node_r(op, infix, ops, extra, dims, infix);
    UNPROTECT(5);
    return res;
  }
  return R_NilValue;
}

/* rk_lt_var_r(x, category): Vi(x) / Vj(x) of a non-empty double matrix,
 * else NULL */
SEXP rk_lt_var_r(SEXP x, SEXP category) {
  if (TYPEOF(x) != REALSXP || XLENGTH(x) == 0 || !Rf_isMatrix(x)) return R_NilValue;
  SEXP d = PROTECT(Rf_ScalarInteger(Rf_ncols(x)));
  SEXP f = PROTECT(Rf_ScalarLogical(0));
  SEXP res = rk_lt_leaf_r(x, category, d, d, f);
  UNPROTECT(2);
  return res;
}
