# The C fast paths of LazyTensor building (src/r_lazy.c) against plain R
# references: formulas, variables, data, dimensions and classes; the
# renaming of identifiers; and kernel states shared by LazyTensors built
# anew with the same formula.

# Reference: the LazyTensor of op(x1,...,xn) built with R string functions.
ref_node <- function(op, operands, dimres, infix = FALSE) {
  fs <- vapply(operands, function(o) o$formula, "")
  formula <- if (infix) {
    paste0("(", fs[1L], op, fs[2L], ")")
  } else {
    paste0(op, "(", paste(fs, collapse = ","), ")")
  }
  args <- unlist(lapply(operands, function(o) o$args))
  data <- do.call(c, lapply(operands, function(o) o$data))
  keep <- !duplicated(args)
  list(formula = formula, args = args[keep], data = data[keep],
       dimres = as.integer(dimres))
}

# squared distances |x_i - y_j|^2, M x N, coordinate by coordinate
fp_sqdist <- function(x, y) {
  d <- matrix(0, nrow(x), nrow(y))
  for (k in seq_len(ncol(x))) d <- d + outer(x[, k], y[, k], "-")^2
  d
}

expect_same_lt <- function(got, want) {
  expect_s3_class(got, "LazyTensor")
  expect_identical(got$formula, want$formula)
  expect_identical(as.character(got$args), as.character(want$args))
  expect_identical(unname(got$data), unname(want$data))
  expect_identical(got$dimres, want$dimres)
}

# Reference renaming: each identifier replaced by V<position>, whole
# tokens only (gsub with word boundaries on the identifiers' characters).
ref_rename <- function(f, args) {
  ids <- sub("=.*$", "", args)
  for (k in seq_along(ids)) {
    f <- gsub(paste0("(?<![A-Za-z0-9_])", ids[k], "(?![A-Za-z0-9_])"),
              paste0("V", k - 1L), f, perl = TRUE)
  }
  list(formula = f, args = paste0("V", seq_along(ids) - 1L,
                                  sub("^[^=]*", "", args)))
}

test_that("Vi and Vj of double matrices are variables with new identifiers", {
  x <- matrix(runif(12), 4, 3)
  a <- Vi(x)
  b <- Vi(x)
  expect_s3_class(a, "LazyTensor")
  expect_false(inherits(a, "ComplexLazyTensor"))
  expect_identical(a$dimres, 3L)
  expect_identical(a$data, list(x))
  expect_match(a$args, "^A[0-9a-f]{16}n[0-9]+i=Vi\\(3\\)$")
  expect_identical(a$formula, sub("=.*$", "", a$args))
  expect_false(identical(a$formula, b$formula))
  y <- Vj(matrix(runif(5), 5, 1))
  expect_match(y$args, "^A[0-9a-f]{16}n[0-9]+j=Vj\\(1\\)$")
  # integer matrices and complex input go through the general path
  xi <- Vi(matrix(1:6, 3, 2))
  expect_identical(xi$data[[1L]], matrix(as.double(1:6), 3, 2))
  z <- Vi(matrix(complex(real = runif(4), imaginary = runif(4)), 2, 2))
  expect_s3_class(z, "ComplexLazyTensor")
  expect_identical(z$dimres, 2L)
  expect_error(Vi(matrix(numeric(0), 0, 2)), class = "rkeops_error")
  expect_error(Vi(1:3), class = "rkeops_error")
})

test_that("fast operators give the same LazyTensors as plain R references", {
  x_i <- Vi(matrix(runif(12), 4, 3))
  y_j <- Vj(matrix(runif(15), 5, 3))
  b_j <- Vj(matrix(runif(5), 5, 1))
  s <- Pm(0.25)
  expect_same_lt(x_i + y_j, ref_node("Add", list(x_i, y_j), 3))
  expect_same_lt(x_i - b_j, ref_node("Subtract", list(x_i, b_j), 3))
  expect_same_lt(b_j * x_i, ref_node("Mult", list(b_j, x_i), 3))
  expect_same_lt(x_i / s, ref_node("Divide", list(x_i, s), 3))
  expect_same_lt(-x_i, ref_node("Minus", list(x_i), 3))
  expect_same_lt(exp(b_j), ref_node("Exp", list(b_j), 1))
  expect_same_lt(log(x_i), ref_node("Log", list(x_i), 3))
  expect_same_lt(abs(x_i), ref_node("Abs", list(x_i), 3))
  expect_same_lt(sqdist(x_i, y_j), ref_node("SqDist", list(x_i, y_j), 1))
  expect_same_lt(sqdist(x_i, b_j), ref_node("SqDist", list(x_i, b_j), 1))
  expect_same_lt(x_i | y_j, ref_node("Scalprod", list(x_i, y_j), 1))
  # shared variables appear once, in order of first appearance
  g <- exp(-sqdist(x_i, y_j)) * b_j + x_i * y_j
  expect_same_lt(g, ref_node("Add", list(
    ref_node("Mult", list(ref_node("Exp", list(ref_node("Minus", list(
      ref_node("SqDist", list(x_i, y_j), 1)), 1)), 1), b_j), 1),
    ref_node("Mult", list(x_i, y_j), 3)), 3))
  expect_identical(length(g$args), 3L)
  # constants (no variables) combine with variables
  expect_same_lt(x_i + 3, ref_node("Add", list(x_i, LazyTensor(3)), 3))
  expect_same_lt(LazyTensor(2) * LazyTensor(3),
                 ref_node("Mult", list(LazyTensor(2), LazyTensor(3)), 1))
})

test_that("the general path keeps the checks the fast path skips", {
  x_i <- Vi(matrix(runif(12), 4, 3))
  y_j <- Vj(matrix(runif(10), 5, 2))
  expect_error(x_i + y_j, class = "rkeops_error_dim")
  expect_error(x_i | y_j, class = "rkeops_error_dim")
  expect_error(sqdist(x_i, y_j), class = "rkeops_error_dim")
  expect_error(x_i + "a", class = "rkeops_error")
  expect_error(sqdist(x_i, matrix(1, 2, 2)), class = "rkeops_error")
  z <- Vi(matrix(complex(real = runif(6), imaginary = 1), 3, 2))
  expect_s3_class(z + z, "ComplexLazyTensor")
  expect_s3_class(exp(z), "ComplexLazyTensor")
  # a hand-made object of class LazyTensor without the fields is refused
  bad <- structure(list(1), class = "LazyTensor")
  expect_error(x_i + bad)
})

test_that("renaming replaces whole identifiers by their positions", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  y_j <- Vj(matrix(runif(8), 4, 2))
  s <- Pm(c(0.5, 2))
  f <- exp(-sqdist(x_i, y_j) * elem(s, 0)) * (x_i - y_j) + s
  r <- rkeops:::lt_rename(f)
  expect_identical(r, ref_rename(f$formula, f$args))
  expect_identical(r$args, c("V0=Vi(2)", "V1=Vj(2)", "V2=Pm(2)"))
  # several formulas, and variables in another order
  r2 <- rkeops:::lt_rename(f, rev(f$args), c(f$formula, x_i$formula))
  expect_identical(r2, ref_rename(c(f$formula, x_i$formula), rev(f$args)))
  # identifiers that are prefixes of others are not confused
  args <- c("ab=Vi(1)", "abc=Vj(1)", "a=Pm(1)")
  f2 <- "Add(Mult(abc,ab),Sum(a,IntCst(12),abcd))"
  r3 <- rkeops:::lt_rename(list(), args, f2)
  expect_identical(r3, ref_rename(f2, args))
  expect_identical(r3$formula, "Add(Mult(V1,V0),Sum(V2,IntCst(12),abcd))")
})

test_that("LazyTensors built anew with the same formula share a kernel state", {
  st <- rkeops:::.rk_state$ops
  gauss <- function(x, y, b) sum(exp(-sqdist(Vi(x), Vj(y))) * Vj(b), "j")
  m <- 7L
  n <- 9L
  x <- matrix(rnorm(m * 2), m, 2)
  y <- matrix(rnorm(n * 2), n, 2)
  b <- matrix(rnorm(n), n, 1)
  ref <- exp(-fp_sqdist(x, y)) %*% b
  expect_equal(gauss(x, y, b), ref, tolerance = 1e-12)
  before <- ls(st, all.names = TRUE)
  for (r in 1:3) {
    x <- matrix(rnorm(m * 2), m, 2)
    b <- matrix(rnorm(n), n, 1)
    expect_equal(gauss(x, y, b), exp(-fp_sqdist(x, y)) %*% b,
                 tolerance = 1e-12)
  }
  expect_identical(ls(st, all.names = TRUE), before)
  # the memo key is the renamed formula
  key <- grep("^Sum_Reduction\\(Mult\\(Exp\\(Minus\\(SqDist\\(V0,V1\\)\\)\\),V2\\),0\\)\\|",
              before, value = TRUE)
  expect_identical(key, "Sum_Reduction(Mult(Exp(Minus(SqDist(V0,V1))),V2),0)|V0=Vi(2);V1=Vj(2);V2=Vj(1)")
})

test_that("a changed option is seen by a cached LazyTensor reduction", {
  old <- getOption("rkeops")
  on.exit(options(rkeops = old))
  x <- matrix(rnorm(30), 10, 3)
  y <- matrix(rnorm(33), 11, 3)
  f <- function() sum(exp(-sqdist(Vi(x), Vj(y))), index = "j")
  ref <- rowSums(exp(-fp_sqdist(x, y)))
  r64 <- f()
  expect_equal(as.vector(r64), ref, tolerance = 1e-12)
  rkeops_use_float32()
  r32 <- f()
  expect_false(identical(r32, r64))
  expect_equal(as.vector(r32), ref, tolerance = 1e-5)
  rkeops_use_float64()
  expect_identical(f(), r64)
})
