gauss_formula0 <- "Sum_Reduction(Exp(-s * SqNorm2(x - y)) * b, 0)"
gauss_formula1 <- "Sum_Reduction(Exp(-s * SqNorm2(x - y)) * b, 1)"
gauss_args <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)")
sizes <- c(1, 7, 255, 1000, 1031)

gauss_data <- function(m, n, positive_b = FALSE) {
  list(
    x = matrix(rnorm(m * 3), m, 3),
    y = matrix(rnorm(n * 3), n, 3),
    b = if (positive_b) matrix(runif(n * 6, 0.5, 1.5), n, 6)
        else matrix(rnorm(n * 6), n, 6),
    s = 0.5
  )
}

test_that("the introduction's Gaussian kernel is right for all sizes (float64, axis 0)", {
  set.seed(1)
  op <- keops_kernel(gauss_formula0, gauss_args)
  for (m in sizes) for (n in sizes) {
    d <- gauss_data(m, n)
    res <- op(list(d$x, d$y, d$b, d$s))
    ref <- exp(-d$s * sqdist_mat(d$x, d$y)) %*% d$b
    expect_close(res, ref, 1e-12)
  }
})

test_that("the Gaussian kernel with axis 1 reduces over i (float64)", {
  set.seed(2)
  op1 <- keops_kernel(gauss_formula1, gauss_args)
  # same variables, b indexed by i: a genuine sum over i
  op1i <- keops_kernel(gauss_formula1,
                       c("x = Vi(3)", "y = Vj(3)", "b = Vi(6)", "s = Pm(1)"))
  for (m in sizes) for (n in sizes) {
    d <- gauss_data(m, n)
    K <- exp(-d$s * sqdist_mat(d$x, d$y))
    res <- op1(list(d$x, d$y, d$b, d$s))
    expect_close(res, colSums(K) * d$b, 1e-12)
    bi <- matrix(rnorm(m * 6), m, 6)
    res <- op1i(list(d$x, d$y, bi, d$s))
    expect_close(res, crossprod(K, bi), 1e-12)
  }
})

test_that("float32 is within 1e-5 of the float64 reference for all sizes", {
  set.seed(3)
  rkeops_use_float32()
  on.exit(rkeops_use_float64())
  op0 <- keops_kernel(gauss_formula0, gauss_args)
  op1i <- keops_kernel(gauss_formula1,
                       c("x = Vi(3)", "y = Vj(3)", "b = Vi(6)", "s = Pm(1)"))
  for (m in sizes) for (n in sizes) {
    d <- gauss_data(m, n, positive_b = TRUE)
    K <- exp(-d$s * sqdist_mat(d$x, d$y))
    expect_close(op0(list(d$x, d$y, d$b, d$s)), K %*% d$b, 1e-5)
    bi <- matrix(runif(m * 6, 0.5, 1.5), m, 6)
    expect_close(op1i(list(d$x, d$y, bi, d$s)), crossprod(K, bi), 1e-5)
  }
})

test_that("changing the precision recompiles: float32 differs slightly from float64", {
  set.seed(4)
  d <- gauss_data(200, 300)
  op <- keops_kernel(gauss_formula0, gauss_args)
  r64 <- op(list(d$x, d$y, d$b, d$s))
  rkeops_use_float32()
  on.exit(rkeops_use_float64())
  r32 <- op(list(d$x, d$y, d$b, d$s))
  rkeops_use_float64()
  r64b <- op(list(d$x, d$y, d$b, d$s))
  diff <- max(abs(r32 - r64)) / max(abs(r64))
  expect_gt(diff, 1e-12)
  expect_lt(diff, 1e-5)
  expect_close(r64b, r64, 1e-13)
})

test_that("all summation schemes give the sum", {
  set.seed(5)
  d <- gauss_data(50, 3000)
  ref <- exp(-d$s * sqdist_mat(d$x, d$y)) %*% d$b
  for (scheme in c("auto", "direct_sum", "block_sum", "kahan_scheme")) {
    op <- keops_kernel(gauss_formula0, gauss_args, sum_scheme = scheme)
    expect_close(op(list(d$x, d$y, d$b, d$s)), ref, 1e-12)
    expect_identical(op()$sum_scheme, scheme)
  }
})

test_that("named input in any order, vectors and inner_dim = 'row' are accepted", {
  set.seed(6)
  d <- gauss_data(9, 11)
  op <- keops_kernel(gauss_formula0, gauss_args)
  ref <- exp(-d$s * sqdist_mat(d$x, d$y)) %*% d$b
  expect_close(op(list(s = d$s, b = d$b, y = d$y, x = d$x)), ref, 1e-12)
  expect_close(op(list(t(d$x), t(d$y), t(d$b), d$s), inner_dim = "row"),
               ref, 1e-12)
  # output is never transposed
  expect_equal(dim(op(list(t(d$x), t(d$y), t(d$b), d$s), inner_dim = "row")),
               c(9L, 6L))
  # a vector is a 1-column matrix for a variable of dimension 1
  op2 <- keops_kernel("Sum_Reduction(Exp(-SqNorm2(x - y)) * b, 0)",
                      c("x = Vi(1)", "y = Vj(1)", "b = Vj(1)"))
  x <- rnorm(5)
  y <- rnorm(8)
  b <- rnorm(8)
  ref2 <- exp(-outer(x, y, "-")^2) %*% b
  expect_close(op2(list(x, y, b)), ref2, 1e-12)
  expect_close(op2(list(x, y, b), inner_dim = "row"), ref2, 1e-12)
  # integer data are converted
  xi <- matrix(1:6, 3, 2)
  op3 <- keops_kernel("Sum_Reduction(SqDist(x, y), 0)", c("x=Vi(2)", "y=Vj(2)"))
  yi <- matrix(c(0.5, 1.5, 2.5, 3.5), 2, 2)
  expect_close(op3(list(xi, yi)), rowSums(sqdist_mat(xi, yi)), 1e-12)
})

test_that("(pos, dim) declarations bind data by position", {
  set.seed(7)
  d <- gauss_data(6, 8)
  op <- keops_kernel(gauss_formula0,
                     c("b = Vj(2, 6)", "x = Vi(0, 3)", "s = Pm(3, 1)", "y = Vj(1, 3)"))
  ref <- exp(-d$s * sqdist_mat(d$x, d$y)) %*% d$b
  expect_close(op(list(d$x, d$y, d$b, d$s)), ref, 1e-12)
  expect_close(op(list(b = d$b, s = d$s, x = d$x, y = d$y)), ref, 1e-12)
})

test_that("the operator without input returns its definition", {
  op <- keops_kernel(gauss_formula0, gauss_args, sum_scheme = "kahan_scheme")
  ctx <- op()
  expect_named(ctx, c("formula", "args", "args_info", "sum_scheme"))
  expect_identical(ctx$formula, gauss_formula0)
  expect_identical(ctx$args, gauss_args)
  expect_identical(ctx$sum_scheme, "kahan_scheme")
  expect_identical(ctx$args_info$var_name, c("x", "y", "b", "s"))
  expect_identical(op(NULL), ctx)
})

test_that("parse_args returns names, types, positions, dimensions", {
  info <- rkeops:::parse_args("Sum_Reduction(x, 0)",
                              c("x=Vi(3)", " y = Vj( 2 )", "s=Pm(1)"))
  expect_named(info, c("args", "var_name", "var_type", "var_pos", "var_dim",
                       "decl"))
  expect_identical(info$args, c("x=Vi(3)", "y=Vj(2)", "s=Pm(1)"))
  expect_identical(info$var_name, c("x", "y", "s"))
  expect_identical(info$var_type, c("Vi", "Vj", "Pm"))
  expect_identical(info$var_pos, 0:2)
  expect_identical(info$var_dim, c(3L, 2L, 1L))
  expect_identical(info$decl, "dim")
  info <- rkeops:::parse_args("Sum_Reduction(x, 0)",
                              c("x=Vi(1,3)", "y_2-a=Vj(0,2)"))
  expect_identical(info$var_name, c("x", "y_2-a"))
  expect_identical(info$var_pos, c(1L, 0L))
  expect_identical(info$var_dim, c(3L, 2L))
  expect_identical(info$decl, "pos_dim")
  empty <- rkeops:::parse_args("Sum_Reduction(x, 0)", character())
  expect_true(all(vapply(empty, is.null, logical(1))))
})

test_that("definition-time errors have the documented messages", {
  args <- c("x=Vi(3)", "y=Vj(3)")
  f <- "Sum_Reduction(SqDist(x, y), 0)"
  expect_error(keops_kernel(c(f, f), args), "`formula` should be a single",
               class = "rkeops_error_arg")
  expect_error(keops_kernel(1, args), "`formula` should be a single")
  expect_error(keops_kernel(f, character()), "`args` should be a character")
  expect_error(keops_kernel(f, 3), "`args` should be a character")
  expect_error(keops_kernel(f, args, sum_scheme = "fast"),
               "`sum_scheme` should be one of 'auto', 'direct_sum'")
  expect_error(keops_kernel("Sum_Reduction(SqDist(x, y$a), 0)", args),
               "issue with formula: invalid '$' character", fixed = TRUE)
  inline <- paste0(
    "Issue with formula containing 'Vi|Vj|Pm(<dim>)' or ",
    "'Vi|Vj|Pm(<pos>,<dim>)' arguments not defined in 'args' input list. ",
    "Please use aliases listed in 'args' input list to define all arguments ",
    "in the fomula."
  )
  expect_error(keops_kernel("Sum_Reduction(SqDist(x, Vj(3)), 0)", args),
               inline, fixed = TRUE)
  expect_error(keops_kernel("Sum_Reduction(SqDist(x, Vj(1, 3)), 0)", args),
               inline, fixed = TRUE)
  expect_error(keops_kernel("Sum_Reduction(SqDist(x, Var(1,3,1)), 0)", args),
               inline, fixed = TRUE)
  expect_error(
    keops_kernel(f, c("x=Vi(3)", "y=Vk(3)", "z:Pm(1)")),
    paste0("Issue with input value(s): 'y=Vk(3)', 'z:Pm(1)'\n",
           "All input arguments should follow the pattern ",
           "(with or without spaces): '<name> = Vi|Vj|Pm(<dim>)' ",
           "(see help page or vignette for more details)."),
    fixed = TRUE
  )
  expect_error(
    keops_kernel(f, c("x=Vi(0,3)", "y=Vj(3)")),
    paste0("Issue with input argument consistency, use either '(dim)' or ",
           "'(pos, dim)' with 'Vi', 'Vj' and 'Pm' for all arguments ",
           "(see help page or vignette for more details)."),
    fixed = TRUE
  )
  expect_error(keops_kernel(f, c("x=Vi(0,3)", "y=Vj(0,3)")),
               "positions declared with")
  expect_error(keops_kernel(f, c("x=Vi(3)", "x=Vj(3)")),
               "'x' declared more than once")
  expect_error(keops_kernel(f, c("x=Vi(0)", "y=Vj(3)")),
               "Dimensions should be whole numbers of at least 1")
})

test_that("a malformed formula errors when the operator is called, not before", {
  expect_no_error(op <- keops_kernel("Sum_Reduction(Foo(x), 0)", "x=Vi(3)"))
  expect_true(is.function(op))
  expect_error(op(list(matrix(1, 2, 3))), class = "rkeops_error_parse")
})

test_that("input errors have the documented messages", {
  op <- keops_kernel("Sum_Reduction(SqDist(x, y), 0)", c("x=Vi(3)", "y=Vj(3)"))
  x <- matrix(rnorm(6), 2, 3)
  y <- matrix(rnorm(9), 3, 3)
  msg_list <- paste0("The 'input' argument should be a list of data ",
                     "corresponding to the formula input arguments.")
  msg_len <- paste0("The number of elements in the 'input' argument does not ",
                    "correspond to the number of input arguments in the formula.")
  expect_error(op(x, y), msg_list, fixed = TRUE)
  expect_error(op(c(x, y)), msg_list, fixed = TRUE)
  expect_error(op(list(x)), msg_len, fixed = TRUE)
  expect_error(op(list(x, y, y)), msg_len, fixed = TRUE)
  expect_error(op(list(x = x, z = y)), "names of the 'input' list")
  expect_error(op(list(x, y), inner_dim = "column"), "`inner_dim` should be")
  expect_error(op(list(x, letters)), "should be numeric")
})

test_that("shape errors name the argument, the expected and the given shape", {
  op <- keops_kernel("Sum_Reduction(Exp(-s * SqNorm2(x - y)) * b, 0)",
                     c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)"))
  x <- matrix(rnorm(12), 4, 3)
  y <- matrix(rnorm(15), 5, 3)
  b <- matrix(rnorm(30), 5, 6)
  expect_error(op(list(x[, 1:2], y, b, 1)), "\\bx\\b.*3",
               class = "rkeops_error_shape")
  expect_error(op(list(x, y, b[1:4, ], 1)), "\\bb\\b",
               class = "rkeops_error_shape")
  expect_error(op(list(x, y, b, c(1, 2))), "\\bs\\b",
               class = "rkeops_error_shape")
  op2 <- keops_kernel("Sum_Reduction(SqDist(x, z) * y, 0)",
                      c("x = Vi(3)", "y = Vj(1)", "z = Vi(3)"))
  expect_error(op2(list(x, rnorm(5), x[1:3, ])), "\\bz\\b",
               class = "rkeops_error_shape")
})

test_that("an operator survives saveRDS()/readRDS()", {
  set.seed(8)
  d <- gauss_data(20, 30)
  op <- keops_kernel(gauss_formula0, gauss_args)
  ref <- op(list(d$x, d$y, d$b, d$s))
  f <- tempfile(fileext = ".rds")
  saveRDS(op, f)
  op2 <- readRDS(f)
  expect_close(op2(list(d$x, d$y, d$b, d$s)), ref, 1e-13)
  expect_close(ref, exp(-d$s * sqdist_mat(d$x, d$y)) %*% d$b, 1e-12)
})

test_that("verbosity: one message per newly compiled kernel, none when cached", {
  n <- unique_int()
  f <- sprintf("Sum_Reduction(Mult(IntCst(%d), Exp(-SqNorm2(x - y))), 0)", n)
  x <- matrix(rnorm(10), 5, 2)
  y <- matrix(rnorm(8), 4, 2)
  ref <- n * rowSums(exp(-sqdist_mat(x, y)))
  rkeops_enable_verbosity()
  on.exit(rkeops_disable_verbosity())
  op <- keops_kernel(f, c("x = Vi(2)", "y = Vj(2)"))
  first <- collect_messages(op(list(x, y)))
  expect_length(first$messages, 1L)
  expect_match(first$messages, "^compiling kernel \\S+ \\.\\.\\. [0-9]+\\.[0-9]{2} s\n?$")
  expect_close(first$value, ref, 1e-12)
  second <- collect_messages(op(list(x, y)))
  expect_length(second$messages, 0L)
  # another operator with the same formula finds the compiled kernel
  op_again <- keops_kernel(f, c("x = Vi(2)", "y = Vj(2)"))
  third <- collect_messages(op_again(list(x, y)))
  expect_length(third$messages, 0L)
  expect_close(third$value, ref, 1e-12)
  # verbosity off: a new kernel compiles silently
  rkeops_disable_verbosity()
  f2 <- sprintf("Sum_Reduction(Mult(IntCst(%d), Exp(-SqNorm2(x - y))), 0)", n + 1L)
  op2 <- keops_kernel(f2, c("x = Vi(2)", "y = Vj(2)"))
  fourth <- collect_messages(op2(list(x, y)))
  expect_length(fourth$messages, 0L)
  expect_close(fourth$value, (n + 1) * rowSums(exp(-sqdist_mat(x, y))), 1e-12)
})

test_that("the number of threads is honoured", {
  set.seed(9)
  m <- 2000
  x <- matrix(rnorm(m * 3), m, 3)
  y <- matrix(rnorm(m * 3), m, 3)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 0)",
                     c("x = Vi(3)", "y = Vj(3)"))
  old <- get_rkeops_options("ncore")
  on.exit(set_rkeops_options(list(ncore = old)))
  rkeops_use_cpu(1)
  res <- op(list(x, y))
  expect_identical(.Call(rkeops:::rk_last_threads_r), 1L)
  expect_close(res, rowSums(exp(-sqdist_mat(x, y))), 1e-12)
  tc <- .Call(rkeops:::rk_toolchain_r)
  skip_if_not(isTRUE(as.logical(tc$have_openmp)), "no OpenMP")
  skip_if(.Call(rkeops:::rk_ncores_r) < 2L, "fewer than 2 cores")
  rkeops_use_cpu(2)
  res2 <- op(list(x, y))
  expect_identical(.Call(rkeops:::rk_last_threads_r), 2L)
  expect_close(res2, rowSums(exp(-sqdist_mat(x, y))), 1e-12)
})
