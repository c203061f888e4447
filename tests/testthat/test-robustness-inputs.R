# Robustness: nothing a user types crashes R. A table of bad inputs, each
# evaluated once and checked to be an rkeops error (class "rkeops_error")
# whose message names the argument, then R is checked to be usable (a small
# reduction runs) before the next case; every error text is snapshotted.
# Valid edge cases (NaN data, K > N, a formula of 1 MB of spaces) are
# tested for their values.

rb_x <- matrix(c(0.1, 0.2, 0.3, 0.4, 0.5, 0.6), 2, 3)
rb_y <- matrix(c(0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5), 3, 3)
rb_args <- c("x = Vi(3)", "y = Vj(3)")
rb_f <- "Sum_Reduction(SqDist(x, y), 0)"
rb_op <- keops_kernel(rb_f, rb_args)
rb_ref <- matrix(rowSums(sqdist_mat(rb_x, rb_y)))
rb_op6 <- keops_kernel("Sum_Reduction(SqDist(x, y) * b, 0)",
                       c(rb_args, "b = Vj(1)"))
rb_opz <- keops_kernel("Sum_Reduction(x + z, 0)", c("x = Vi(3)", "z = Vi(3)"))
rb_ops <- keops_kernel("Sum_Reduction(x * s, 0)", c("x = Vi(3)", "s = Pm(1)"))
rb_D <- sqdist(Vi(rb_x), Vj(rb_y))
rb_Z <- Vi(matrix(complex(real = 1:4, imaginary = 4:1), 2, 2))

# Big and deep formulas, kept in variables so that snapshots stay short.
rb_deep_exp <- paste0("Sum_Reduction(", strrep("Exp(", 250), "x",
                      strrep(")", 250), ", 0)")
rb_deep_par <- paste0("Sum_Reduction(", strrep("(", 1e5), "x",
                      strrep(")", 1e5), ", 0)")
rb_deep_minus <- paste0("Sum_Reduction(", strrep("-", 1e5), "x, 0)")
rb_1mb_ops <- paste0("Sum_Reduction(",
                     paste(rep("x", 5e5), collapse = "+"), ", 0)")
rb_2mb <- paste0("Sum_Reduction(x", strrep(" ", 2e6), ", 0)")
rb_300_args <- paste0("a", 1:300, " = Vi(1)")
rb_long_name <- strrep("a", 64)
rb_file <- file.path(tempdir(), "rb-a-file-not-a-folder")
writeLines("not a folder", rb_file)

rb_data <- function() list(rb_x, rb_y)

# Run expr with the R option "rkeops" set by hand (bypassing the checks of
# set_rkeops_options()), restoring it afterwards.
with_raw_rkeops_option <- function(value, expr) {
  old <- options(rkeops = value)
  on.exit(options(old))
  expr
}

# The option list with one field changed by hand.
options_with <- function(name, value) {
  o <- get_rkeops_options()
  o[name] <- list(value)
  o
}

# Paths of this session's temporary folder, for stable snapshots.
rb_scrub <- function(lines) {
  for (p in unique(c(normalizePath(tempdir()), tempdir()))) {
    lines <- gsub(p, "<tempdir>", lines, fixed = TRUE)
  }
  lines
}

# A case: an expression (quoted) and a regular expression its error
# message must match (the argument it names).
bad <- function(expr, pattern) {
  list(expr = substitute(expr), pattern = pattern)
}

# Each case must fail with an rkeops error matching its pattern, leave R
# usable (a reduction runs and is right), and its error text is
# snapshotted (the snapshot shows the case's code).
check_bad_inputs <- function(cases, env = parent.frame()) {
  for (cs in cases) {
    label <- paste(deparse(cs$expr, width.cutoff = 200L), collapse = " ")
    cnd <- tryCatch({
      eval(cs$expr, env)
      NULL
    }, error = identity)
    expect(
      inherits(cnd, "rkeops_error"),
      sprintf("`%s` should fail with an rkeops_error; %s", label,
              if (is.null(cnd)) "it did not fail" else
                paste0("got <", paste(class(cnd), collapse = "/"), "> ",
                       conditionMessage(cnd)))
    )
    if (inherits(cnd, "error")) {
      expect_match(conditionMessage(cnd), cs$pattern, info = label)
    }
    expect_equal(rb_op(rb_data()), rb_ref, info = label)
  }
  for (cs in cases) {
    eval(bquote(expect_snapshot(.(cs$expr), error = TRUE,
                                transform = rb_scrub)), env)
  }
}

test_that("bad formulas, declarations and schemes given to keops_kernel()", {
  check_bad_inputs(list(
    bad(keops_kernel(1, rb_args), "`formula` should be a single character"),
    bad(keops_kernel(NA_character_, rb_args), "`formula`"),
    bad(keops_kernel(c(rb_f, rb_f), rb_args), "`formula`"),
    bad(keops_kernel("", rb_args), "`formula`"),
    bad(keops_kernel(" \n\t ", rb_args), "`formula`"),
    bad(keops_kernel(NULL, rb_args), "`formula`"),
    bad(keops_kernel(rb_f, 3), "`args` should be a character vector"),
    bad(keops_kernel(rb_f, character()), "`args`"),
    bad(keops_kernel(rb_f, c("x = Vi(3)", NA)), "`args`"),
    bad(keops_kernel(rb_f, list("x = Vi(3)", "y = Vj(3)")), "`args`"),
    bad(keops_kernel(rb_f, rb_300_args), "`args` declares 300 arguments"),
    bad(keops_kernel(rb_f, c("x = Vk(3)", "y = Vj(3)")), "x = Vk\\(3\\)"),
    bad(keops_kernel(rb_f, c("x = Vi(0)", "y = Vj(3)")), "x = Vi\\(0\\)"),
    bad(keops_kernel(rb_f, c("x = Vi(-1)", "y = Vj(3)")), "x = Vi\\(-1\\)"),
    bad(keops_kernel(rb_f, c("x = Vi(2.5)", "y = Vj(3)")), "x = Vi\\(2.5\\)"),
    bad(keops_kernel(rb_f, c("x = Vi(99999999999)", "y = Vj(3)")),
        "99999999999"),
    bad(keops_kernel(rb_f, c("x = Vi(1000000000)", "y = Vj(3)"))(rb_data()),
        "1000000000"),
    bad(keops_kernel(rb_f, c("x = Vi()", "y = Vj(3)")), "x = Vi\\(\\)"),
    bad(keops_kernel(rb_f, c("x = Vi(3)", "x = Vj(3)")), "'x' declared more"),
    bad(keops_kernel(rb_f, c("x = Vi(0, 3)", "y = Vj(3)")), "consistency"),
    bad(keops_kernel(rb_f, c("x = Vi(0, 3)", "y = Vj(0, 3)")), "positions"),
    bad(keops_kernel(rb_f, c("x = Vi(0, 3)", "y = Vj(7, 3)")), "positions"),
    bad(keops_kernel("Sum_Reduction(SqDist(1x, y), 0)",
                     c("1x = Vi(3)", "y = Vj(3)"))(rb_data()), "1x=Vi"),
    bad(keops_kernel("Sum_Reduction(SqDist(a-b, y), 0)",
                     c("a-b = Vi(3)", "y = Vj(3)"))(rb_data()), "a-b=Vi"),
    bad(keops_kernel("Sum_Reduction(x, 0)",
                     paste(rb_long_name, "= Vi(3)"))(list(rb_x)),
        "name longer than 63"),
    bad(keops_kernel("Sum_Reduction(\u00e9, 0)", "\u00e9 = Vi(3)"),
        "\u00e9 = Vi\\(3\\)"),
    bad(keops_kernel("Sum_Reduction(Vi(3), 0)", rb_args), "args"),
    bad(keops_kernel("Sum_Reduction(Var(0, 3, 0), 0)", rb_args), "args"),
    bad(keops_kernel("Sum_Reduction(x$y, 0)", rb_args), "'\\$'"),
    bad(keops_kernel(rb_f, rb_args, sum_scheme = "foo"), "`sum_scheme`"),
    bad(keops_kernel(rb_f, rb_args, sum_scheme = NA), "`sum_scheme`"),
    bad(keops_kernel(rb_f, rb_args, sum_scheme = c("auto", "block_sum")),
        "`sum_scheme`"),
    bad(keops_kernel(rb_f, rb_args, sum_scheme = 1), "`sum_scheme`")
  ))
})

test_that("bad formulas are errors at the first call, never code", {
  check_bad_inputs(list(
    bad(keops_kernel("Sum_Reduction(Foo(x), 0)", rb_args)(rb_data()),
        "unknown operation 'Foo'"),
    bad(keops_kernel("Foo_Reduction(x, 0)", rb_args)(rb_data()),
        "unknown reduction"),
    bad(keops_kernel("Sum_Reduction(Exp(x), 0", rb_args)(rb_data()), "'\\)'"),
    bad(keops_kernel("Sum_Reduction(Exp(x)), 0)", rb_args)(rb_data()),
        "axis"),
    bad(keops_kernel("Sum_Reduction((x, 0)", rb_args)(rb_data()), "\\^"),
    bad(keops_kernel("Sum_Reduction(x)", rb_args)(rb_data()), "axis"),
    bad(keops_kernel("Sum_Reduction(x, 2)", rb_args)(rb_data()), "axis"),
    bad(keops_kernel("Sum_Reduction(x, -1)", rb_args)(rb_data()), "axis"),
    bad(keops_kernel("SqDist(x, y)", rb_args)(rb_data()), "reduction"),
    bad(keops_kernel("Sum_Reduction(x, 0) + 1", rb_args)(rb_data()),
        "after the reduction"),
    bad(keops_kernel("Sum_Reduction(Sum_Reduction(x, 0), 0)",
                     rb_args)(rb_data()), "outermost"),
    bad(keops_kernel(rb_deep_exp, rb_args)(rb_data()), "nested too deeply"),
    bad(keops_kernel(rb_deep_par, rb_args)(rb_data()), "nested too deeply"),
    bad(keops_kernel(rb_deep_minus, rb_args)(rb_data()), "nested too deeply"),
    bad(keops_kernel(rb_1mb_ops, rb_args)(rb_data()), "formula too large"),
    bad(keops_kernel(rb_2mb, rb_args)(rb_data()), "formula longer than"),
    bad(keops_kernel("Sum_Reduction(Exp(x\u00e9), 0)", rb_args)(rb_data()),
        "non-ASCII"),
    bad(keops_kernel("Sum_Reduction(x \u2212 y, 0)", rb_args)(rb_data()),
        "non-ASCII"),
    bad(keops_kernel('Sum_Reduction(x); system("rm -rf /"); //, 0)',
                     rb_args)(rb_data()), "axis"),
    bad(keops_kernel("#include <stdio.h>\nSum_Reduction(x, 0)",
                     rb_args)(rb_data()), "'#'"),
    bad(keops_kernel("Sum_Reduction(x, 0)\n#define x 1", rb_args)(rb_data()),
        "'#'"),
    bad(keops_kernel("Sum_Reduction(Exp(x) /* */, 0)", rb_args)(rb_data()),
        "operand"),
    bad(keops_kernel("Sum_Reduction(x, 0) // comment", rb_args)(rb_data()),
        "after the reduction"),
    bad(keops_kernel('Sum_Reduction(x * "a", 0)', rb_args)(rb_data()),
        "unexpected character"),
    bad(keops_kernel("Sum_Reduction({x; y}, 0)", rb_args)(rb_data()),
        "unexpected character"),
    bad(keops_kernel("Sum_Reduction(x \\\n, 0)", rb_args)(rb_data()),
        "unexpected character"),
    bad(keops_kernel("Sum_Reduction(SqDist(x, z), 0)", rb_args)(rb_data()),
        "unknown variable 'z'"),
    bad(keops_kernel("Sum_Reduction(TensorDot(x, y, [3, [3], [0], [0]), 0)",
                     rb_args)(rb_data()), "integer"),
    bad(keops_kernel("Sum_Reduction(Add(x, b), 0)",
                     c(rb_args, "b = Vj(2)"))(list(rb_x, rb_y, rb_y[, 1:2])),
        "dimensions 3 and 2"),
    bad(keops_kernel("Sum_Reduction(x * 2.5, 0)", rb_args)(rb_data()),
        "integer constants"),
    bad(keops_kernel("Sum_Reduction(x * IntCst(99999999999), 0)",
                     rb_args)(rb_data()), "too large"),
    bad(keops_kernel("Sum_Reduction(Elem(x, 3), 0)", rb_args)(rb_data()),
        "Elem: index 3"),
    bad(keops_kernel("Sum_Reduction(Extract(x, 2, 5), 0)", rb_args)(rb_data()),
        "Extract"),
    bad(keops_kernel("Sum_Reduction(x + Zero(0), 0)", rb_args)(rb_data()),
        "Zero: dimension 0"),
    bad(keops_kernel("Sum_Reduction(Zero(1000000000), 0)", rb_args)(rb_data()),
        "Zero: dimension 1000000000"),
    bad(keops_kernel("Sum_Reduction(x * RatCst(1, 0), 0)", rb_args)(rb_data()),
        "denominator"),
    bad(keops_kernel("ArgKMin_Reduction(SqDist(x, y), 0, 0)",
                     rb_args)(rb_data()), "K must be at least 1"),
    bad(keops_kernel("ArgKMin_Reduction(SqDist(x, y), 2.5, 0)",
                     rb_args)(rb_data()), "integer constants"),
    bad(keops_kernel("KMin_Reduction(SqDist(x, y), 1000000000, 0)",
                     rb_args)(rb_data()), "K \\* dimension"),
    bad(keops_kernel("Grad(Sum_Reduction(SqDist(x, y), 0), x, e)",
                     c(rb_args, "e = Vi(2)"))(list(rb_x, rb_y, rb_x[, 1:2])),
        "cotangent")
  ))
})

test_that("bad data given to an operator", {
  check_bad_inputs(list(
    bad(rb_op(rb_x), "'input' argument should be a list"),
    bad(rb_op(list(rb_x)), "number of elements in the 'input'"),
    bad(rb_op(list(rb_x, rb_y, rb_y)), "number of elements in the 'input'"),
    bad(rb_op(list()), "number of elements in the 'input'"),
    bad(rb_op(list(rb_x, NULL)), "'y' should be numeric; received NULL"),
    bad(rb_op(list(NULL, NULL)), "argument 'x'"),
    bad(rb_op(list(rb_x, matrix("a", 3, 3))), "'y'.*character matrix"),
    bad(rb_op(list(rb_x, data.frame(a = c("u", "v", "w"), b = 1:3, c = 1:3))),
        "'y'.*character matrix"),
    bad(rb_op(list(rb_x, factor(1:3))), "'y'.*factor"),
    bad(rb_op(list(rb_x, rb_y + 0i)), "'y'.*complex matrix"),
    bad(rb_op(list(rb_x, list(1, 2, 3))), "'y'.*list"),
    bad(rb_op(list(rb_x, as.raw(1:9))), "'y'.*raw"),
    bad(rb_op(list(rb_x, sum)), "'y'.*function"),
    bad(rb_op(list(rb_x, rb_y[, 1:2])), "'y'.*must have 3 columns, not 2"),
    bad(rb_op(list(rb_x, 1:3)), "'y'.*must have 3 columns, not 1"),
    bad(rb_op(list(array(0.5, c(2, 3, 1)), rb_y)), "'x'.*3 columns"),
    bad(rb_opz(list(rb_x, rb_y)), "'z'.*3 rows but argument 'x'.* has 2"),
    bad(rb_op(list(rb_x[0, , drop = FALSE], rb_y)), "'x'.*has no rows"),
    bad(rb_op(list(rb_x, rb_y[0, , drop = FALSE])), "'y'.*has no rows"),
    bad(rb_op(list(numeric(0), rb_y)), "'x'.*3 columns, not 1"),
    bad(rb_op(list(matrix(numeric(0), 0, 0), rb_y)), "'x'"),
    bad(rb_op(rb_data(), inner_dim = "foo"), "`inner_dim`"),
    bad(rb_op(rb_data(), inner_dim = NA), "`inner_dim`"),
    bad(rb_op(rb_data(), inner_dim = 1), "`inner_dim`"),
    bad(rb_op(rb_data(), inner_dim = c("col", "row")), "`inner_dim`"),
    bad(rb_op(rb_data(), inner_dim = "row"), "'x'.*3 columns, not 2"),
    bad(rb_op(list(a = rb_x, b = rb_y)), "names of the 'input'"),
    bad(rb_op(list(x = rb_x, x = rb_y)), "names of the 'input'"),
    bad(rb_op(list(x = rb_x, rb_y)), "names of the 'input'"),
    bad(rb_ops(list(rb_x, c(1, 2))), "'s'.*length 1, not 2"),
    bad(rb_ops(list(rb_x, numeric(0))), "'s'.*length 1, not 0"),
    bad(rb_ops(list(rb_x, "a")), "'s'.*character vector"),
    bad(rb_ops(list(rb_x, NULL)), "'s'.*NULL"),
    bad(rb_ops(list(rb_x, 1i)), "'s'.*complex")
  ))
})

test_that("bad LazyTensors and reduction arguments", {
  check_bad_inputs(list(
    bad(Vi(matrix("a", 2, 2)), "`x` input argument should be a matrix"),
    bad(Vi(as.data.frame(rb_x)), "`x` must be a matrix"),
    bad(Vj(1:3), "`x` must be a matrix"),
    bad(LazyTensor(list(1, 2)), "`x` input argument"),
    bad(LazyTensor(NULL), "`x` input argument"),
    bad(Pm(factor(1:3)), "`x` input argument"),
    bad(Pm(rb_x), "`x` input must be a vector"),
    bad(LazyTensor(rb_x), "missing `index`"),
    bad(LazyTensor(rb_x, "k"), "`index` should be \"i\" or \"j\""),
    bad(LazyTensor(c(1, 2), "i"), "`index` must be NA"),
    bad(Vi(matrix(numeric(0), 0, 3)), "`x` should not be empty"),
    bad(Vi(rb_x, is_complex = NA), "`is_complex`"),
    bad(Vi(Vi(rb_x)), "`x` must be a matrix"),
    bad(LazyTensor(Vi(rb_x)), "already a LazyTensor"),
    bad(sum(rb_D, index = "k"), "`index`"),
    bad(sum(rb_D, index = 1), "`index`"),
    bad(sum_reduction(rb_D, c("i", "j")), "`index`"),
    bad(sum_reduction(rb_x, "j"), "`x` input should be a LazyTensor"),
    bad(Kmin(rb_D, NA_integer_, "j"), "`K`"),
    bad(Kmin(rb_D, 2.5, "j"), "`K`"),
    bad(Kmin(rb_D, "a", "j"), "`K`"),
    bad(Kmin(rb_D, 0, "j"), "`K`"),
    bad(argKmin(rb_D, -2, "i"), "`K`"),
    bad(argKmin(rb_D, 1e10, "i"), "`K`"),
    bad(Kmin(rb_D, 200000, "j"), "K \\* dimension"),
    bad(min(rb_Z, "j"), "ComplexLazyTensor"),
    bad(Kmin(rb_Z, 2, "j"), "ComplexLazyTensor"),
    bad(logsumexp(Vi(rb_x), "j"), "inner dimension 1"),
    bad(logsumexp(rb_D, "j", weight = "a"), "`weight`"),
    bad(sumsoftmaxweight(rb_D, "j"), "`weight`"),
    bad(reduction.LazyTensor(rb_D, "Foo", "j"), "unknown reduction"),
    bad(reduction.LazyTensor(rb_D, 'Sum_Reduction(x, 0); system("ls") //',
                             "j"), "\\^"),
    bad(reduction.LazyTensor(rb_D, NA_character_, "j"), "`opstr`"),
    bad(sum(Reduce(function(z, k) exp(z), 1:300, Vi(rb_x)), "j"),
        "nested too deeply"),
    bad(sum(LazyTensor(3), "j"), "at least one variable"),
    bad(Vi(rb_x) + Vj(rb_y[, 1:2]), "dimension"),
    bad(Vi(rb_x) + rb_x, "`y` input argument should be a LazyTensor"),
    bad(elem(Vi(rb_x), 3), "`m`|index|bounds"),
    bad(atan2(rb_Z, Vj(rb_y[, 1:2])), "cannot be complex")
  ))
})

test_that("bad options, cache folders and gradients", {
  op_grad <- keops_kernel("Sum_Reduction(SqDist(x, y) * IntCst(7), 0)", rb_args)
  check_bad_inputs(list(
    bad(set_rkeops_options(list(precision = "float16")), "`precision`"),
    bad(set_rkeops_options(list(foo = 1)), "Unknown rkeops option.*'foo'"),
    bad(set_rkeops_options("float32"), "`input`"),
    bad(set_rkeops_options(list("float32")), "`input`"),
    bad(set_rkeops_options(list(verbosity = 3)), "`verbosity`"),
    bad(set_rkeops_options(list(formula_only = NA)), "`formula_only`"),
    bad(set_rkeops_options(list(backend = "TPU")), "`backend`"),
    bad(set_rkeops_options(list(device_id = "a")), "`device_id`"),
    bad(set_rkeops_options(list(ncore = 1.5)), "`ncore`"),
    bad(rkeops_use_cpu(-1), "`ncore`"),
    bad(rkeops_use_cpu("a"), "`ncore`"),
    bad(rkeops_use_gpu(-5), "`device_id`"),
    bad(get_rkeops_options("foo"), "`option`"),
    bad(set_rkeops_cache_dir(NA), "`cache_dir`"),
    bad(set_rkeops_cache_dir(c("a", "b")), "`cache_dir`"),
    bad(set_rkeops_cache_dir(rb_file), "`cache_dir` should be a folder"),
    bad(set_rkeops_cache_dir(file.path(rb_file, "sub")),
        "`cache_dir` should be a folder that can be created"),
    bad(clean_rkeops(all = NA), "`all`"),
    bad(clean_rkeops(remove_cache_dir = "yes"), "`remove_cache_dir`"),
    bad(with_raw_rkeops_option("junk", rb_op(rb_data())),
        "R option \"rkeops\""),
    bad(with_raw_rkeops_option(options_with("precision", "float16"),
                               op_grad(rb_data())), "`precision`"),
    bad(with_raw_rkeops_option(options_with("cache_dir", 3),
                               op_grad(rb_data())), "`cache_dir`"),
    bad(with_raw_rkeops_option(options_with("backend", NULL),
                               op_grad(rb_data())), "`backend`"),
    bad(keops_grad(op_grad, 99), "'var'.*position 99"),
    bad(keops_grad(op_grad, NA), "'var'"),
    bad(keops_grad(op_grad, "z"), "'var'.*'z'"),
    bad(keops_grad(sum, "x"), "`operator`"),
    bad(keops_grad(keops_kernel("Sum_Reduction(a1, 0)", rb_300_args[1:256]),
                   "a1"), "at most 256")
  ))
})

test_that("NaN, NA and Inf data are computed, not refused", {
  y_nan <- rb_y
  y_nan[2, 1] <- NaN
  res <- rb_op(list(rb_x, y_nan))
  expect_true(all(is.nan(res)))
  res <- rb_op(list(rb_x, rb_y * NA))
  expect_true(all(is.na(res)))
  res <- rb_op(list(rb_x, rb_y * Inf))
  expect_identical(res, matrix(Inf, 2, 1))
  # a NaN in one row i only touches that row
  x_nan <- rb_x
  x_nan[2, 3] <- NaN
  res <- rb_op(list(x_nan, rb_y))
  expect_equal(res[1, 1], rb_ref[1, 1])
  expect_true(is.nan(res[2, 1]))
  # min of values with a NaN is NaN (decision 9); Inf is a value
  op_min <- keops_kernel("Min_Reduction(SqDist(x, y), 0)", rb_args)
  expect_true(all(is.nan(op_min(list(rb_x, y_nan)))))
  expect_identical(op_min(list(rb_x, rb_y * Inf)), matrix(Inf, 2, 1))
  # a NaN or Inf parameter
  expect_true(all(is.nan(rb_ops(list(rb_x, NaN)))))
  expect_identical(rb_ops(list(rb_x, Inf)), matrix(Inf, 2, 3))
})

test_that("K larger than the number of candidates: Inf values, NA indices", {
  op <- keops_kernel("KMin_ArgKMin_Reduction(SqDist(x, y), 5, 0)", rb_args)
  res <- op(rb_data())
  d <- sqdist_mat(rb_x, rb_y)
  ord <- t(apply(d, 1, order))
  expect_equal(res[[1]][, 1:3], t(apply(d, 1, sort)))
  expect_identical(res[[1]][, 4:5], matrix(Inf, 2, 2))
  expect_identical(res[[2]][, 1:3], ord + 0)
  expect_identical(res[[2]][, 4:5], matrix(NA_real_, 2, 2))
  # the LazyTensor API, both axes
  idx <- argKmin(rb_D, K = 4, index = "j")
  expect_identical(idx[, 1:3], ord + 0)
  expect_true(all(is.na(idx[, 4])))
  val <- Kmin(rb_D, K = 3, index = "i")
  expect_equal(val[, 1:2], t(apply(d, 2, sort)))
  expect_identical(val[, 3], rep(Inf, 3))
})

test_that("long formulas with spaces, odd names and odd data types work", {
  # 1 MB of spaces (below the engine's limit): linear time (0.1 s; 11 s
  # under valgrind; hours when a regular expression was quadratic in it),
  # right value
  f <- paste0("Sum_Reduction(SqDist(x,", strrep(" ", 1e6), "y), 0)")
  t0 <- proc.time()[["elapsed"]]
  res <- keops_kernel(f, rb_args)(rb_data())
  expect_lt(proc.time()[["elapsed"]] - t0, 60)
  expect_equal(res, rb_ref)
  # newlines, tabs and CRLF are spaces
  f <- "Sum_Reduction(\n\tSqDist(x,\ty)\r\n, 0)"
  expect_equal(keops_kernel(f, rb_args)(rb_data()), rb_ref)
  # C keywords and names of the generated code are plain variable names
  op <- keops_kernel("Sum_Reduction(SqDist(int, main) + 0 * return, 0)",
                     c("int = Vi(3)", "main = Vj(3)", "return = Vi(1)"))
  expect_equal(op(list(rb_x, rb_y, rb_x[, 1, drop = FALSE])), rb_ref)
  # numeric data frames, integer and logical matrices are converted
  expect_equal(rb_op(list(as.data.frame(rb_x), rb_y)), rb_ref)
  yi <- matrix(1:9, 3, 3)
  expect_equal(rb_op(list(rb_x, yi)),
               matrix(rowSums(sqdist_mat(rb_x, yi + 0))))
  yl <- matrix(rep_len(c(TRUE, FALSE), 9), 3, 3)
  expect_equal(rb_op(list(rb_x, yl)),
               matrix(rowSums(sqdist_mat(rb_x, yl + 0))))
  # transposed data
  expect_equal(rb_op(list(t(rb_x), t(rb_y)), inner_dim = "row"), rb_ref)
})
