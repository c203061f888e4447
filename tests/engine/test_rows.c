/*
 * test_rows.c -- table-driven tests of the front end (tinyexpr's smoke.c
 * spirit): one row per formula, with either the expected result shape or
 * the expected error (code, position, part of the message).
 *
 * The expected position of an error is drawn: the string under the
 * formula (or under the declaration, for errors in a declaration) has a
 * '^' at that byte offset.  Rows that compile are also run on random data
 * against the reference evaluator (refeval.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "test.h"

typedef struct row {
  const char *formula;
  const char *caret;   /* '^' under the error offset; NULL: no offset (-1) */
  int code;            /* RK_OK or the expected error code                 */
  int in_decl;         /* errors: -1 in the formula, k in declaration k    */
  const char *msg;     /* errors: a part of the message                   */
  int outdim, outcat;  /* RK_OK: the result's shape                        */
  const char *const *decls;  /* NULL-terminated                            */
} row;

#define OK(f, dim, cat, d) {f, NULL, RK_OK, -1, NULL, dim, cat, d}
#define ERR(f, caret, code, in_decl, msg, d) {f, caret, code, in_decl, msg, 0, 0, d}
#define I RK_CAT_I
#define J RK_CAT_J

/* the usual declarations: positions 0..5 */
static const char *const STD[] = {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)",
                                  "u = Vi(6)", "w = Vj(6)", NULL};
static const char *const POS[] = {"x = Vi(0, 3)", "y = Vj(1, 3)", NULL};
static const char *const NONE[] = {NULL};
#define DECLS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const row rows[] = {
  /* ---------------------------------------------------------- shapes */
  OK("Sum_Reduction(x, 0)", 3, I, STD),
  OK("Sum_Reduction(y, 1)", 3, J, STD),
  OK("Sum_Reduction(x, 1)", 3, J, STD),
  OK("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", 1, I, STD),
  OK("Sum_Reduction(Exp(-s * SqDist(x, y)) * y, 0)", 3, I, STD),
  OK("Sum_Reduction(Exp(-SqDist(x, y)) * u, 1)", 6, J, STD),
  OK("Sum_Reduction(u * w, 0)", 6, I, STD),
  /* every op by name */
  OK("Sum_Reduction(Add(x, y), 0)", 3, I, STD),
  OK("Sum_Reduction(Subtract(x, y), 0)", 3, I, STD),
  OK("Sum_Reduction(Minus(x), 0)", 3, I, STD),
  OK("Sum_Reduction(Mult(x, y), 0)", 3, I, STD),
  OK("Sum_Reduction(Divide(x, y), 0)", 3, I, STD),
  OK("Sum_Reduction(Inv(x * y), 0)", 3, I, STD),
  OK("Sum_Reduction(Square(x - y), 0)", 3, I, STD),
  OK("Sum_Reduction(Pow(x * y, 3), 0)", 3, I, STD),
  OK("Sum_Reduction(Pow(x * y, -2), 0)", 3, I, STD),
  OK("Sum_Reduction(Pow(x - y, 0), 0)", 3, I, STD),
  OK("Sum_Reduction(Sqrt(x * y), 0)", 3, I, STD),
  OK("Sum_Reduction(Rsqrt(x * y), 0)", 3, I, STD),
  OK("Sum_Reduction(Exp(x - y), 0)", 3, I, STD),
  OK("Sum_Reduction(Log(x * y), 0)", 3, I, STD),
  OK("Sum_Reduction(Abs(x - y), 0)", 3, I, STD),
  OK("Sum_Reduction(Sum(x * y), 0)", 1, I, STD),
  OK("Sum_Reduction(SqNorm2(x - y), 0)", 1, I, STD),
  OK("Sum_Reduction(Norm2(x - y), 0)", 1, I, STD),
  OK("Sum_Reduction(SqDist(x, y), 0)", 1, I, STD),
  OK("Sum_Reduction(Scalprod(x, y), 0)", 1, I, STD),
  OK("Sum_Reduction(IntCst(3) * y, 0)", 3, I, STD),
  OK("Sum_Reduction(Zero(3) + x, 0)", 3, I, STD),
  OK("Sum_Reduction(Zero(2), 0)", 2, I, STD),
  /* infix, precedence, associativity */
  OK("Sum_Reduction(x + y * b, 0)", 3, I, STD),
  OK("Sum_Reduction(x - y - b, 0)", 3, I, STD),
  OK("Sum_Reduction(x / y / b * s, 0)", 3, I, STD),
  OK("Sum_Reduction(-x ** 2 + y, 0)", 3, I, STD),
  OK("Sum_Reduction(2 * -x + 3, 0)", 3, I, STD),
  OK("Sum_Reduction(x ** 3 - y ** -2, 0)", 3, I, STD),
  OK("Sum_Reduction(1 / x + 1 / (x + y), 0)", 3, I, STD),
  OK("Sum_Reduction((x | y) * b, 0)", 1, I, STD),
  OK("Sum_Reduction((x - y | x + y), 1)", 1, J, STD),
  OK("Sum_Reduction(((x)) * (((y))), 0)", 3, I, STD),
  OK("Sum_Reduction((x < y) + (x > y) * 2 + (x <= b) * 4 - (y >= b), 0)", 3, I, STD),
  OK("Sum_Reduction(x - y < b + s, 1)", 3, J, STD),
  OK("Sum_Reduction(\n  Exp( - SqDist(x,y) )\t* b ,\r\n 0 )", 1, I, STD),
  /* broadcasting: dim 1 against dim 3 and 6, parameters */
  OK("Sum_Reduction(x * s, 0)", 3, I, STD),
  OK("Sum_Reduction(b - x, 0)", 3, I, STD),
  OK("Sum_Reduction(u / b + s, 1)", 6, J, STD),
  OK("Sum_Reduction(SqDist(x, s), 0)", 1, I, STD),
  OK("Sum_Reduction(Sum(x) * w, 0)", 6, I, STD),
  OK("Sum_Reduction(s, 0)", 1, I, STD),
  OK("Sum_Reduction(s * 2, 1)", 1, J, STD),
  /* shared subexpressions (hash-consing) */
  OK("Sum_Reduction(Exp(x - y) + Exp(x - y) * Exp(x - y), 0)", 3, I, STD),
  /* positional declarations and inline variables */
  OK("Sum_Reduction(x * y, 0)", 3, I, POS),
  OK("Sum_Reduction(Vi(0, 3) * Vj(1, 3), 0)", 3, I, POS),
  OK("Sum_Reduction(x * Vj(2, 1), 0)", 3, I, POS),
  OK("Sum_Reduction(Var(0, 3, 0) * Var(1, 3, 1) + Var(2, 1, 2), 1)", 3, J, NONE),
  OK("Sum_Reduction(Vi(0, 2) - Vj(1, 2), 0)", 2, I, NONE),
  OK("Sum_Reduction(y * x, 0)", 3, I, DECLS("y = Vj(1, 3)", "x = Vi(0, 3)")),
  OK("Sum_Reduction(x_1 * Y2, 0)", 2, I, DECLS("x_1 = Vi(2)", "Y2 = Vj(1)")),
  OK("Sum_Reduction(a, 0)", 4, I, DECLS("a = Var(0, 4, 0)")),

  /* ---------------------------------------------------------- syntax */
  ERR("Sum_Reduction(Foo(x), 0)",
      "              ^", RK_EPARSE, -1, "unknown operation 'Foo'", STD),
  ERR("Sum_Reduction(exp(x), 0)",
      "              ^", RK_EPARSE, -1, "unknown operation 'exp'", STD),
  ERR("Foo_Reduction(x, 0)",
      "^", RK_EPARSE, -1, "unknown reduction", STD),
  ERR("Exp(x)",
      "^", RK_EPARSE, -1, "must be a reduction", STD),
  ERR("",
      "^", RK_EPARSE, -1, "must be a reduction", STD),
  ERR("Sum_Reduction(Exp(x), 0",
      "                       ^", RK_EPARSE, -1, "expected ')' but the formula ended", STD),
  ERR("Sum_Reduction((x, 0)",
      "                ^", RK_EPARSE, -1, "expected ')'", STD),
  ERR("Sum_Reduction(x, 0))",
      "                   ^", RK_EPARSE, -1, "unexpected text after the reduction", STD),
  ERR("Sum_Reduction(x, 0) + 1",
      "                    ^", RK_EPARSE, -1, "unexpected text after the reduction", STD),
  ERR("Sum_Reduction(x)",
      "               ^", RK_EPARSE, -1, "expected ',' and the axis", STD),
  ERR("Sum_Reduction(Exp(x)), 0)",
      "                    ^", RK_EPARSE, -1, "expected ',' and the axis", STD),
  ERR("Sum_Reduction(x, 2)",
      "                 ^", RK_EPARSE, -1, "axis must be 0", STD),
  ERR("Sum_Reduction(x, -1)",
      "                 ^", RK_EPARSE, -1, "axis must be 0", STD),
  ERR("Sum_Reduction(x, y)",
      "                 ^", RK_EPARSE, -1, "expected an integer", STD),
  ERR("Sum_Reduction(x * 2.5, 0)",
      "                  ^", RK_EPARSE, -1, "only integer constants", STD),
  ERR("Sum_Reduction(x * 1e3, 0)",
      "                  ^", RK_EPARSE, -1, "only integer constants", STD),
  ERR("Sum_Reduction(x * 99999999999, 0)",
      "                  ^", RK_EPARSE, -1, "too large", STD),
  ERR("Sum_Reduction(x \xc3\xa9 y, 0)",
      "                ^", RK_EPARSE, -1, "non-ASCII", STD),
  ERR("Sum_Reduction(x @ y, 0)",
      "                ^", RK_EPARSE, -1, "unexpected character '@'", STD),
  ERR("Sum_Reduction(, 0)",
      "              ^", RK_EPARSE, -1, "expected an operand", STD),
  ERR("Sum_Reduction(x + , 0)",
      "                  ^", RK_EPARSE, -1, "expected an operand", STD),
  ERR("Sum_Reduction(x +",
      "                 ^", RK_EPARSE, -1, "formula ended", STD),
  ERR("Sum_Reduction(q * x, 0)",
      "              ^", RK_EPARSE, -1, "unknown variable 'q'", STD),
  ERR("Sum_Reduction(x ** y, 0)",
      "                   ^", RK_EPARSE, -1, "exponent of ** must be an integer", STD),
  ERR("Sum_Reduction(x = y, 0)",
      "                ^", RK_EPARSE, -1, "expected ',' and the axis", STD),
  ERR("Sum_Reduction(Exp(Sum_Reduction(x, 0)), 0)",
      "                  ^", RK_EPARSE, -1, "only be the outermost", STD),
  ERR("Sum_Reduction(Vi(3), 0)",
      "              ^", RK_EPARSE, -1, "needs a position", STD),
  ERR("Sum_Reduction(Var(0, 3, 7), 0)",
      "              ^", RK_EPARSE, -1, "category 7", NONE),

  /* ------------------------------------------ number of arguments */
  ERR("Sum_Reduction(Exp(x, y), 0)",
      "                   ^", RK_EPARSE, -1, "Exp expects 1 argument, got more", STD),
  ERR("Sum_Reduction(Add(x), 0)",
      "                   ^", RK_EPARSE, -1, "Add expects 2 arguments, got 1", STD),
  ERR("Sum_Reduction(Exp(), 0)",
      "                  ^", RK_EPARSE, -1, "Exp expects 1 argument, got 0", STD),
  ERR("Sum_Reduction(Pow(x), 0)",
      "                   ^", RK_EPARSE, -1, "Pow expects 2 arguments, got 1", STD),
  ERR("Sum_Reduction(Pow(x, y), 0)",
      "                     ^", RK_EPARSE, -1, "expected an integer", STD),
  ERR("Sum_Reduction(Pow(x, 2, 3), 0)",
      "                      ^", RK_EPARSE, -1, "Pow expects 2 arguments, got more", STD),
  ERR("Sum_Reduction(IntCst(x), 0)",
      "                     ^", RK_EPARSE, -1, "expected an integer", STD),

  /* ---------------------------------------------------- dimensions */
  ERR("Sum_Reduction(Add(x, u), 0)",
      "              ^", RK_EDIM, -1, "Add: operands have dimensions 3 and 6", STD),
  ERR("Sum_Reduction(x + u, 0)",
      "                ^", RK_EDIM, -1, "Add: operands have dimensions 3 and 6", STD),
  ERR("Sum_Reduction(Exp(x) * y + u, 0)",
      "                         ^", RK_EDIM, -1, "Add: operands have dimensions 3 and 6", STD),
  ERR("Sum_Reduction(w / x, 0)",
      "                ^", RK_EDIM, -1, "Divide: operands have dimensions 6 and 3", STD),
  ERR("Sum_Reduction(SqDist(x, w), 0)",
      "              ^", RK_EDIM, -1, "SqDist", STD),
  ERR("Sum_Reduction((x | u), 0)",
      "                 ^", RK_EDIM, -1, "Scalprod", STD),
  ERR("Sum_Reduction(Zero(0), 0)",
      "              ^", RK_EDIM, -1, "Zero: dimension 0", STD),
  ERR("Sum_Reduction(Vi(0, 4), 0)",
      "              ^", RK_EDIM, -1, "dimension 4", POS),
  ERR("Sum_Reduction(Vj(0, 3), 0)",
      "              ^", RK_EDIM, -1, "category 1", POS),

  /* -------------------------------------------------- declarations */
  ERR("Sum_Reduction(x, 0)",
      "    ^", RK_EPARSE, 1, "mix", DECLS("x = Vi(3)", "y = Vj(1, 3)")),
  ERR("Sum_Reduction(x, 0)",
      "    ^", RK_EPARSE, 1, "mix", DECLS("x = Vi(0, 3)", "y = Vj(3)")),
  ERR("Sum_Reduction(x, 0)",
      "^", RK_EPARSE, 1, "'x' is declared twice", DECLS("x = Vi(3)", "x = Vj(3)")),
  ERR("Sum_Reduction(x, 0)",
      "    ^", RK_EPARSE, 1, "position 0 is declared twice", DECLS("x = Vi(0, 3)", "y = Vj(0, 3)")),
  ERR("Sum_Reduction(x, 0)",
      "    ^", RK_EPARSE, 0, "expected Vi(...), Vj(...), Pm(...) or Var(...)", DECLS("x = Vk(3)")),
  ERR("Sum_Reduction(x, 0)",
      "    ^", RK_EPARSE, 0, "category 5", DECLS("x = Var(0, 3, 5)")),
  ERR("Sum_Reduction(x, 0)",
      "^", RK_EPARSE, 0, "starts with a name", DECLS("= Vi(3)")),
  ERR("Sum_Reduction(x, 0)",
      "  ^", RK_EPARSE, 0, "expected '='", DECLS("x Vi(3)")),
  ERR("Sum_Reduction(x, 0)",
      "          ^", RK_EPARSE, 0, "unexpected text after the declaration", DECLS("x = Vi(3) y")),
  ERR("Sum_Reduction(x, 0)",
      "    ^", RK_EDIM, 0, "dimension 0", DECLS("x = Vi(0)")),
  ERR("Sum_Reduction(x, 0)",
      "       ^", RK_EPARSE, 0, "expected an integer", DECLS("x = Vi(three)")),
  ERR("Sum_Reduction(x, 0)",
      "    ^", RK_EPARSE, 0, "out of range", DECLS("x = Vi(300, 3)")),
  ERR("Sum_Reduction(x * y, 0)",
      NULL, RK_EDIM, -1, "no variable is declared at position 1", DECLS("x = Vi(0, 3)", "y = Vj(2, 3)")),
};

/* one row: compile (errors) or generate + compile + run (shapes) */
static void run_row(const row *r, int idx) {
  int nd = t_ndecls(r->decls);
  rk_options o = t_opts(RK_F64, RK_SCHEME_AUTO);
  rk_error e;
  rk_error_init(&e);
  char label[96];
  snprintf(label, sizeof label, "row %d", idx + 1);
  if (r->code == RK_OK) {
    char *src = NULL;
    int rc = rk_generate(r->formula, r->decls, nd, &o, &src, &e);
    CHECK(rc == RK_OK && src && strstr(src, "rk_entry"),
          "%s: rk_generate(%s) failed: %s error at %ld: %s", label, r->formula,
          rk_error_code_name(e.code), e.pos, e.msg);
    free(src);
    rk_error_clear(&e);
    rk_kernel *k = NULL;
    rc = rk_compile(r->formula, r->decls, nd, &o, &k, &e);
    if (CHECK(rc == RK_OK && k, "%s: rk_compile(%s) failed: %s error at %ld: %s", label,
              r->formula, rk_error_code_name(e.code), e.pos, e.msg)) {
      CHECK(rk_kernel_outdim(k) == r->outdim && rk_kernel_outcat(k) == r->outcat,
            "%s: %s: result has %d columns per %s, expected %d per %s", label, r->formula,
            rk_kernel_outdim(k), rk_kernel_outcat(k) == RK_CAT_I ? "i" : "j", r->outdim,
            r->outcat == RK_CAT_I ? "i" : "j");
      t_compare(label, r->formula, r->decls, nd, RK_F64, RK_SCHEME_AUTO, 7, 13, -1,
                1000 + (uint64_t)idx);
    }
    rk_error_clear(&e);
    return;
  }
  long want_pos = -1;
  if (r->caret) {
    const char *c = strchr(r->caret, '^');
    want_pos = c ? (long)(c - r->caret) : -2;
  }
  /* the front end alone (no build) must report the error, as rk_compile */
  for (int pass = 0; pass < 2; pass++) {
    rk_kernel *k = NULL;
    char *src = NULL;
    int rc = pass == 0 ? rk_generate(r->formula, r->decls, nd, &o, &src, &e)
                       : rk_compile(r->formula, r->decls, nd, &o, &k, &e);
    const char *fn = pass == 0 ? "rk_generate" : "rk_compile";
    CHECK(rc == r->code && e.code == r->code && e.pos == want_pos && e.in_decl == r->in_decl &&
              strstr(e.msg, r->msg) != NULL,
          "%s: %s(\"%s\"): got %s error at offset %ld (declaration %d): \"%s\"; expected %s error "
          "at offset %ld (declaration %d) with \"%s\"",
          label, fn, r->formula, rk_error_code_name(rc), e.pos, e.in_decl, e.msg,
          rk_error_code_name(r->code), want_pos, r->in_decl, r->msg);
    CHECK(pass == 0 ? src == NULL : k == NULL, "%s: %s returned a result with an error", label, fn);
    free(src);
    /* the caret rendering: line 3 has '^' in column 2 + offset (short texts) */
    const char *text = r->in_decl >= 0 ? r->decls[r->in_decl] : r->formula;
    if (pass == 0 && want_pos >= 0 && strlen(text) < 45) {
      char buf[2048];
      rk_error_format(&e, text, buf, sizeof buf);
      const char *l2 = strchr(buf, '\n');
      const char *l3 = l2 ? strchr(l2 + 1, '\n') : NULL;
      int ok = l3 && strncmp(buf, e.msg, strlen(e.msg)) == 0 && strlen(l3 + 1) == (size_t)want_pos + 3 &&
               l3[1 + 2 + want_pos] == '^';
      CHECK(ok, "%s: rk_error_format does not put the caret under offset %ld:\n%s", label,
            want_pos, buf);
    }
    rk_error_clear(&e);
  }
}

/* Formulas nested deeper than the parser allows: an error at the token
 * where level 201 starts, and never a crash, however deep. */
static void deep_nesting(void) {
  static const struct { const char *open, *close; int depth; long pos; } cases[] = {
    {"(", ")", 199, -1},          /* 199 parentheses + the top level: fine */
    {"(", ")", 200, 14 + 200},
    {"(", ")", 300, 14 + 200},
    {"(", ")", 100000, 14 + 200},
    {"Exp(", ")", 150, -1},
    {"Exp(", ")", 300, 14 + 4 * 200},
    {"-", "", 300, 14 + 200},
    {"-", "", 100000, 14 + 200},
  };
  rk_options o = t_opts(RK_F64, RK_SCHEME_AUTO);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    size_t lo = strlen(cases[c].open), lc = strlen(cases[c].close);
    size_t n = 14 + (size_t)cases[c].depth * (lo + lc) + 16;
    char *f = malloc(n);
    if (!CHECK(f != NULL, "out of memory")) return;
    char *p = f;
    p += sprintf(p, "Sum_Reduction(");
    for (int d = 0; d < cases[c].depth; d++) { memcpy(p, cases[c].open, lo); p += lo; }
    *p++ = 'x';
    for (int d = 0; d < cases[c].depth; d++) { memcpy(p, cases[c].close, lc); p += lc; }
    strcpy(p, ", 0)");
    rk_error e;
    rk_error_init(&e);
    int rc = rk_generate(f, STD, 6, &o, NULL, &e);
    if (cases[c].pos < 0)
      CHECK(rc == RK_OK, "nesting %d x \"%s\": %s", cases[c].depth, cases[c].open, e.msg);
    else
      CHECK(rc == RK_EPARSE && e.pos == cases[c].pos && strstr(e.msg, "nested too deeply"),
            "nesting %d x \"%s\": got %s at %ld \"%s\", expected \"nested too deeply\" at %ld",
            cases[c].depth, cases[c].open, rk_error_code_name(rc), e.pos, e.msg, cases[c].pos);
    rk_error_clear(&e);
    free(f);
  }
}

/* Bad calls of the API itself. */
static void api_misuse(void) {
  rk_options o = t_opts(RK_F64, RK_SCHEME_AUTO);
  rk_error e;
  rk_error_init(&e);
  rk_kernel *k = (rk_kernel *)&e;  /* must be reset to NULL */
  CHECK(rk_compile(NULL, STD, 6, &o, &k, &e) == RK_EARG && k == NULL,
        "rk_compile(NULL formula): %s", e.msg);
  rk_error_clear(&e);
  const char *holes[] = {"x = Vi(3)", NULL, "y = Vj(3)"};
  CHECK(rk_generate("Sum_Reduction(x, 0)", holes, 3, &o, NULL, &e) == RK_EARG,
        "a NULL declaration: got %s \"%s\"", rk_error_code_name(e.code), e.msg);
  rk_error_clear(&e);
  CHECK(rk_generate("Sum_Reduction(x, 0)", STD, -1, &o, NULL, &e) == RK_EARG,
        "ndecls = -1: got %s \"%s\"", rk_error_code_name(e.code), e.msg);
  rk_error_clear(&e);
  /* NULL options mean the defaults */
  char *src = NULL;
  CHECK(rk_generate("Sum_Reduction(x, 0)", STD, 6, NULL, &src, &e) == RK_OK && src,
        "rk_generate with NULL options: %s", e.msg);
  free(src);
  rk_error_clear(&e);
  /* an error record can be reused without clearing: no stale fields */
  rk_generate("Sum_Reduction(Foo(x), 0)", STD, 6, &o, NULL, &e);
  CHECK(rk_generate("Sum_Reduction(x, 0)", STD, 6, &o, NULL, &e) == RK_OK && e.code == RK_OK &&
            e.pos == -1 && e.msg[0] == '\0',
        "the error record keeps stale fields after a success: %s %ld \"%s\"",
        rk_error_code_name(e.code), e.pos, e.msg);
  rk_error_clear(&e);
  /* error names */
  for (int c = RK_OK; c <= RK_EINTERNAL; c++)
    CHECK(rk_error_code_name(c) && rk_error_code_name(c)[0], "no name for error code %d", c);
}

/* The generated source never contains the user's text: names of
 * variables do not appear in it (a formula is never pasted). */
static void source_hygiene(void) {
  const char *d[] = {"evil_name_x = Vi(3)", "evil_name_y = Vj(3)", NULL};
  const char *f = "Sum_Reduction(Exp(-SqDist(evil_name_x, evil_name_y)) * evil_name_y, 0)";
  rk_error e;
  rk_error_init(&e);
  char *s64 = NULL, *s64b = NULL, *s32 = NULL;
  rk_options o = t_opts(RK_F64, RK_SCHEME_AUTO);
  rk_generate(f, d, 2, &o, &s64, &e);
  rk_generate(f, d, 2, &o, &s64b, &e);
  o.precision = RK_F32;
  rk_generate(f, d, 2, &o, &s32, &e);
  if (CHECK(s64 && s64b && s32, "rk_generate failed: %s", e.msg)) {
    CHECK(!strstr(s64, "evil_name") && !strstr(s32, "evil_name"),
          "a variable name was pasted into the generated source");
    CHECK(!strstr(s64, "SqDist"), "the formula text was pasted into the generated source");
    CHECK(strcmp(s64, s64b) == 0, "rk_generate is not deterministic");
    CHECK(strcmp(s64, s32) != 0, "float32 and float64 generate the same source");
  }
  free(s64);
  free(s64b);
  free(s32);
  rk_error_clear(&e);
}

void test_rows(void) {
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) run_row(&rows[i], (int)i);
  deep_nesting();
  api_misuse();
  source_hygiene();
}
