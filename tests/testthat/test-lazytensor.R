lt_sizes <- c(1, 7, 255, 1000, 1031)

test_that("the seed slides' Gaussian kernel sum is right (index = 'j')", {
  set.seed(10)
  for (m in lt_sizes) for (n in lt_sizes) {
    x <- matrix(rnorm(m * 3), m, 3)
    y <- matrix(rnorm(n * 3), n, 3)
    b <- matrix(rnorm(n * 2), n, 2)
    x_i <- LazyTensor(x, "i")
    y_j <- LazyTensor(y, "j")
    b_j <- LazyTensor(b, "j")
    K_ij <- exp(-sum((x_i - y_j)^2))
    a_i <- sum(K_ij * b_j, index = "j")
    expect_true(is.matrix(a_i))
    expect_close(a_i, exp(-sqdist_mat(x, y)) %*% b, 1e-12)
  }
})

test_that("the twin reduction over i is right (index = 'i')", {
  set.seed(11)
  for (m in lt_sizes) for (n in lt_sizes) {
    x <- matrix(rnorm(m * 3), m, 3)
    y <- matrix(rnorm(n * 3), n, 3)
    b <- matrix(rnorm(m * 2), m, 2)
    x_i <- LazyTensor(x, "i")
    y_j <- LazyTensor(y, "j")
    b_i <- LazyTensor(b, "i")
    K_ij <- exp(-sum((x_i - y_j)^2))
    a_j <- sum(K_ij * b_i, index = "i")
    expect_close(a_j, crossprod(exp(-sqdist_mat(x, y)), b), 1e-12)
  }
})

test_that("the Gaussian kernel sum in float32 is within 1e-5", {
  set.seed(12)
  rkeops_use_float32()
  on.exit(rkeops_use_float64())
  for (mn in list(c(1, 1031), c(1031, 1), c(255, 1000), c(1000, 7))) {
    x <- matrix(rnorm(mn[1] * 3), mn[1], 3)
    y <- matrix(rnorm(mn[2] * 3), mn[2], 3)
    b <- matrix(runif(mn[2], 0.5, 1.5), mn[2], 1)
    K_ij <- exp(-sum((Vi(x) - Vj(y))^2))
    expect_close(sum(K_ij * Vj(b), index = "j"),
                 exp(-sqdist_mat(x, y)) %*% b, 1e-5)
  }
})

test_that("LazyTensor() builds Vi, Vj, Pm and IntCst", {
  x <- matrix(runif(6), 3, 2)
  x_i <- LazyTensor(x, "i")
  expect_s3_class(x_i, "LazyTensor")
  expect_true(is.LazyTensor(x_i))
  expect_false(is.ComplexLazyTensor(x_i))
  expect_false(is.LazyTensor(x))
  expect_identical(x_i$dimres, 2L)
  expect_length(x_i$args, 1L)
  expect_match(x_i$args, "^[A-Za-z0-9]+=Vi\\(2\\)$")
  expect_identical(x_i$formula, sub("=.*", "", x_i$args))
  expect_identical(x_i$data[[1]], x)
  expect_match(Vj(x)$args, "=Vj\\(2\\)$")
  expect_match(LazyTensor(x, "j")$args, "=Vj\\(2\\)$")
  expect_match(Vi(x)$args, "=Vi\\(2\\)$")
  p <- Pm(c(1.5, 2.5, 3.5))
  expect_match(p$args, "=Pm\\(3\\)$")
  expect_identical(p$dimres, 3L)
  expect_identical(LazyTensor(2.5)$data[[1]], 2.5)
  expect_match(LazyTensor(2.5)$args, "=Pm\\(1\\)$")
  for (k in list(3, 3L, Pm(3), LazyTensor(3))) {
    if (!is.LazyTensor(k)) k <- LazyTensor(k)
    expect_identical(k$formula, "IntCst(3)")
    expect_null(k$args)
    expect_null(k$data)
    expect_identical(k$dimres, 1L)
  }
  expect_identical(LazyTensor(-4)$formula, "IntCst(-4)")
  # integer matrices are stored as doubles
  expect_true(is.double(Vi(matrix(1:4, 2))$data[[1]]))
  # distinct data objects give distinct variables
  expect_false(identical(Vi(x)$args, Vi(x)$args))
})

test_that("LazyTensor creation errors have the documented messages", {
  x <- matrix(runif(6), 3, 2)
  x_i <- Vi(x)
  expect_error(LazyTensor(x_i), "Input `x` is already a LazyTensor.",
               fixed = TRUE)
  expect_error(LazyTensor("a"), paste0("`x` input argument should be a ",
               "matrix, a vectora scalar or a complex value."), fixed = TRUE)
  expect_error(LazyTensor(x), "missing `index` argument.", fixed = TRUE)
  expect_error(LazyTensor(c(1, 2), index = "i"),
               "`index` must be NA with a vector or a single value.",
               fixed = TRUE)
  expect_error(LazyTensor(x, index = "k"), "`index` should be")
  expect_error(Vi(c(1, 2)), "`x` must be a matrix.", fixed = TRUE)
  expect_error(Vj(3), "`x` must be a matrix.", fixed = TRUE)
  expect_error(Pm(x_i), "`x` input is already a LazyTensor.", fixed = TRUE)
  expect_error(Pm(x), "`x` input must be a vector or a single value.",
               fixed = TRUE)
  expect_error(Pm("a"), "`x` input must be a vector or a single value.",
               fixed = TRUE)
})

test_that("operators build explicit formulas", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  y_j <- Vj(matrix(runif(8), 4, 2))
  s <- Pm(0.5)
  fx <- x_i$formula
  fy <- y_j$formula
  expect_identical((x_i + y_j)$formula, sprintf("Add(%s,%s)", fx, fy))
  expect_identical((x_i - y_j)$formula, sprintf("Subtract(%s,%s)", fx, fy))
  expect_identical((x_i * y_j)$formula, sprintf("Mult(%s,%s)", fx, fy))
  expect_identical((x_i / y_j)$formula, sprintf("Divide(%s,%s)", fx, fy))
  expect_identical((-x_i)$formula, sprintf("Minus(%s)", fx))
  expect_identical((x_i | y_j)$formula, sprintf("Scalprod(%s,%s)", fx, fy))
  expect_identical((x_i | y_j)$dimres, 1L)
  expect_identical((x_i^2)$formula, sprintf("Square(%s)", fx))
  expect_identical((x_i^3)$formula, sprintf("Pow(%s,3)", fx))
  expect_identical((x_i^-2)$formula, sprintf("Pow(%s,-2)", fx))
  expect_identical((x_i^0.5)$formula, sprintf("Sqrt(%s)", fx))
  expect_identical((x_i^-0.5)$formula, sprintf("Rsqrt(%s)", fx))
  expect_match((x_i^1.5)$formula, sprintf("^Powf\\(%s,A", fx))
  expect_match((x_i^y_j)$formula, sprintf("^Powf\\(%s,%s\\)$", fx, fy))
  expect_identical((x_i + 3)$formula, sprintf("Add(%s,IntCst(3))", fx))
  expect_identical((2 * x_i)$formula, sprintf("Mult(IntCst(2),%s)", fx))
  expect_identical(((x_i + y_j) * s)$formula,
                   sprintf("Mult(Add(%s,%s),%s)", fx, fy, s$formula))
  expect_identical(exp(x_i)$formula, sprintf("Exp(%s)", fx))
  expect_identical(log(x_i)$formula, sprintf("Log(%s)", fx))
  expect_identical(sqrt(x_i)$formula, sprintf("Sqrt(%s)", fx))
  expect_identical(abs(x_i)$formula, sprintf("Abs(%s)", fx))
  expect_identical(sum(x_i)$formula, sprintf("Sum(%s)", fx))
  expect_identical(sum(x_i)$dimres, 1L)
  expect_identical(sqnorm2(x_i)$formula, sprintf("SqNorm2(%s)", fx))
  expect_identical(norm2(x_i)$formula, sprintf("Norm2(%s)", fx))
  expect_identical(sqdist(x_i, y_j)$formula, sprintf("SqDist(%s,%s)", fx, fy))
  expect_identical(sqdist(x_i, y_j)$dimres, 1L)
  # the same variable used twice is one argument
  xx <- x_i * x_i + x_i
  expect_length(xx$args, 1L)
  expect_length(xx$data, 1L)
  k <- exp(-sqdist(x_i, y_j)) * (x_i - y_j)
  expect_length(k$args, 2L)
  expect_identical(k$dimres, 2L)
})

test_that("operator errors name the problem", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  z_j <- Vj(matrix(runif(12), 4, 3))
  expect_error(x_i + z_j, paste0("Operation `+` expects inputs of the same ",
               "dimension or dimension 1. Received 2 and 3."), fixed = TRUE,
               class = "rkeops_error_dim")
  expect_error(x_i | 3, paste0("Operation `|` expects inputs of the ",
               "same dimension. Received 2 and 1."), fixed = TRUE)
  expect_error(+x_i, "'+' operand not implemented for a single LazyTensor",
               fixed = TRUE)
  expect_error(x_i + matrix(1, 2, 2), "If you want to use a matrix",
               fixed = TRUE)
  expect_error(x_i & x_i, "not available", class = "rkeops_error_unsupported")
  expect_error(cumsum(x_i), "`cumsum()` is not available", fixed = TRUE)
  expect_error(prod(x_i, index = "j"), "`prod()` is not available", fixed = TRUE)
  expect_error(log(x_i, base = -1), "`base` should be a positive number")
  expect_error(sum(x_i, index = "k"), paste0("`index` input argument should ",
               "be a character, either 'i' or 'j', or NA."), fixed = TRUE)
  expect_error(sum(x_i, index = 1), "either 'i' or 'j', or NA")
  expect_error(sum(LazyTensor(3) + LazyTensor(4), index = "j"),
               "at least one variable")
})

test_that("LazyTensor operations match R", {
  set.seed(13)
  m <- 9
  n <- 8
  x <- matrix(rnorm(m * 3), m, 3)
  y <- matrix(rnorm(n * 3), n, 3)
  p <- matrix(runif(m * 3, 0.5, 2), m, 3)
  q <- matrix(runif(n * 3, 0.5, 2), n, 3)
  x_i <- Vi(x)
  y_j <- Vj(y)
  p_i <- Vi(p)
  q_j <- Vj(q)
  ref_j <- function(fun) dense_sum(fun, list(x = x, p = p), list(y = y, q = q), 0)
  ref_i <- function(fun) dense_sum(fun, list(x = x, p = p), list(y = y, q = q), 1)
  cases <- list(
    list(x_i + y_j, function(a, b) a$x + b$y),
    list(x_i - 2 * y_j, function(a, b) a$x - 2 * b$y),
    list(x_i * y_j / q_j, function(a, b) a$x * b$y / b$q),
    list((-x_i + 0.25) * q_j, function(a, b) (-a$x + 0.25) * b$q),
    list((x_i - y_j)^2, function(a, b) (a$x - b$y)^2),
    list((x_i - y_j)^3, function(a, b) (a$x - b$y)^3),
    list((p_i + q_j)^0.5, function(a, b) sqrt(a$p + b$q)),
    list((p_i + q_j)^-0.5, function(a, b) 1 / sqrt(a$p + b$q)),
    list(exp(x_i - y_j), function(a, b) exp(a$x - b$y)),
    list(log(p_i * q_j), function(a, b) log(a$p * b$q)),
    list(log(p_i * q_j, base = 2), function(a, b) log(a$p * b$q, base = 2)),
    list(log(p_i, 10) + y_j, function(a, b) log10(a$p) + b$y),
    list(sqrt(p_i) * y_j, function(a, b) sqrt(a$p) * b$y),
    list(abs(x_i - y_j), function(a, b) abs(a$x - b$y)),
    list(sum(x_i * y_j), function(a, b) sum(a$x * b$y)),
    list(sqnorm2(x_i - y_j), function(a, b) sum((a$x - b$y)^2)),
    list(norm2(x_i - y_j), function(a, b) sqrt(sum((a$x - b$y)^2))),
    list(sqdist(x_i, y_j), function(a, b) sum((a$x - b$y)^2)),
    list(x_i | y_j, function(a, b) sum(a$x * b$y)),
    list(sqnorm2(x_i) * y_j, function(a, b) sum(a$x^2) * b$y),
    list(exp(-sqdist(x_i, y_j) / 2) * (x_i - y_j),
         function(a, b) exp(-sum((a$x - b$y)^2) / 2) * (a$x - b$y)),
    list(x_i * c(1, 2, 3) + y_j, function(a, b) a$x * c(1, 2, 3) + b$y),
    list((x_i * x_i - x_i) / q_j, function(a, b) (a$x * a$x - a$x) / b$q)
  )
  for (k in seq_along(cases)) {
    lt <- cases[[k]][[1]]
    fun <- cases[[k]][[2]]
    expect_close(sum(lt, index = "j"), ref_j(fun), 1e-12)
    expect_close(sum(lt, index = "i"), ref_i(fun), 1e-12)
  }
  # index given as second argument
  expect_close(sum(x_i - y_j, "j"), ref_j(function(a, b) a$x - b$y), 1e-12)
})

test_that("%*% is sum(x * y, index = 'j') and base %*% is unchanged", {
  set.seed(14)
  x <- matrix(rnorm(30), 10, 3)
  y <- matrix(rnorm(36), 12, 3)
  b <- matrix(rnorm(12), 12, 1)
  K_ij <- exp(-sqdist(Vi(x), Vj(y)))
  expect_close(K_ij %*% Vj(b), exp(-sqdist_mat(x, y)) %*% b, 1e-12)
  expect_close(K_ij %*% 2.5, 2.5 * rowSums(exp(-sqdist_mat(x, y))), 1e-12)
  expect_error(x %*% K_ij, "If you want to use a matrix")
  m <- matrix(1:6, 2)
  expect_identical(m %*% c(1, 2, 3), base::`%*%`(m, c(1, 2, 3)))
  expect_identical(m %*% t(m), base::`%*%`(m, t(m)))
  expect_error(m %*% m)
})

test_that("degenerate outer sizes: no Vj variable means one j", {
  x <- matrix(rnorm(6), 2, 3)
  expect_close(sum(Vi(x), index = "i"), matrix(colSums(x), 1), 1e-12)
  expect_close(sum(Vi(x), index = "j"), x, 1e-12)
  expect_close(sum(Vi(x) * Pm(c(1, 2, 3)), index = "j"),
               sweep(x, 2, c(1, 2, 3), "*"), 1e-12)
})

test_that("a LazyTensor survives saveRDS() and a repeated reduction reuses its kernel", {
  set.seed(15)
  x <- matrix(rnorm(30), 10, 3)
  y <- matrix(rnorm(36), 12, 3)
  b <- matrix(rnorm(12), 12, 1)
  f <- tempfile(fileext = ".rds")
  saveRDS(exp(-sqdist(Vi(x), Vj(y))) * Vj(b), f)
  Kb <- readRDS(f)
  ref <- exp(-sqdist_mat(x, y)) %*% b
  expect_close(sum(Kb, index = "j"), ref, 1e-12)
  rkeops_enable_verbosity()
  on.exit(rkeops_disable_verbosity())
  again <- collect_messages(sum(Kb, index = "j"))
  expect_length(again$messages, 0L)
  expect_close(again$value, ref, 1e-12)
  # the same formula on other data reuses the compiled kernel too
  y2 <- matrix(rnorm(15), 5, 3)
  b2 <- matrix(rnorm(5), 5, 1)
  other <- collect_messages(sum(exp(-sqdist(Vi(x), Vj(y2))) * Vj(b2), index = "j"))
  expect_length(other$messages, 0L)
  expect_close(other$value, exp(-sqdist_mat(x, y2)) %*% b2, 1e-12)
})

test_that("a LazyTensor reduction compiles a new kernel with one message", {
  n <- unique_int()
  x <- matrix(rnorm(6), 2, 3)
  y <- matrix(rnorm(9), 3, 3)
  rkeops_enable_verbosity()
  on.exit(rkeops_disable_verbosity())
  lt <- exp(-sqdist(Vi(x), Vj(y))) * n
  first <- collect_messages(sum(lt, index = "j"))
  expect_length(first$messages, 1L)
  expect_match(first$messages, "^compiling kernel ")
  expect_close(first$value, n * rowSums(exp(-sqdist_mat(x, y))), 1e-12)
  expect_length(collect_messages(sum(lt, index = "j"))$messages, 0L)
})

test_that("formula_only prints the formula and arguments and stops", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  y_j <- Vj(matrix(runif(8), 4, 2))
  old <- set_rkeops_options(list(formula_only = TRUE))
  on.exit(set_rkeops_options(list(formula_only = old$formula_only)))
  expect_output(
    expect_error(sum(sqdist(x_i, y_j), index = "i"),
                 "Debugging LazyTensor reduction: printing formula and arguments only.",
                 fixed = TRUE, class = "rkeops_error_debug"),
    "Formula: Sum_Reduction\\(SqDist\\(V0,V1\\),1\\).*Arguments: V0=Vi\\(2\\), V1=Vj\\(2\\)"
  )
  # as.matrix() too prints the formula of its kernel instead of computing
  expect_output(
    expect_error(as.matrix(sqdist(x_i, y_j)), class = "rkeops_error_debug"),
    "Formula: Sum_Reduction\\(SqDist\\(V0,V1\\),1\\)"  # M < N: over i
  )
})

test_that("print shows the formula, dimension and variables", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  y_j <- Vj(matrix(runif(8), 4, 2))
  p <- Pm(c(1.5, 2.5))
  expect_output(
    print(sqdist(x_i, y_j) * p),
    paste0("inner dimension 2.*Mult\\(SqDist\\(V0,V1\\),V2\\)",
           ".*V0=Vi\\(2\\).*3 x 2.*V1=Vj\\(2\\).*4 x 2",
           ".*V2=Pm\\(2\\).*length 2")
  )
  expect_output(print(LazyTensor(3)), "IntCst\\(3\\)")
})

test_that("complex data are stored interleaved; + and - and reductions work", {
  set.seed(16)
  z <- matrix(complex(real = rnorm(6), imaginary = rnorm(6)), 3, 2)
  w <- matrix(complex(real = rnorm(8), imaginary = rnorm(8)), 4, 2)
  z_i <- LazyTensor(z, "i")
  expect_true(is.ComplexLazyTensor(z_i))
  expect_true(is.LazyTensor(z_i))
  expect_identical(z_i$dimres, 2L)
  expect_match(z_i$args, "=Vi\\(4\\)$")
  expect_identical(z_i$data[[1]],
                   cbind(Re(z[, 1]), Im(z[, 1]), Re(z[, 2]), Im(z[, 2])))
  v <- Pm(c(1 + 2i, 3 - 1i))
  expect_identical(v$data[[1]], c(1, 2, 3, -1))
  expect_match(v$args, "=Pm\\(4\\)$")
  r <- LazyTensor(matrix(1:4, 2), "j", is_complex = TRUE)
  expect_true(is.ComplexLazyTensor(r))
  expect_identical(r$data[[1]], cbind(c(1, 2), 0, c(3, 4), 0))
  w_j <- Vj(w)
  s <- sum(z_i - w_j, index = "j")
  ref <- 4 * z - matrix(colSums(w), 3, 2, byrow = TRUE)
  expect_close(s, cbind(Re(ref[, 1]), Im(ref[, 1]), Re(ref[, 2]), Im(ref[, 2])),
               1e-12)
  # a real operand is converted to complex (see test-lazytensor-complex.R)
  r <- matrix(rnorm(8), 4, 2)
  s2 <- sum(z_i + Vj(r), index = "i")
  ref2 <- matrix(colSums(z), 4, 2, byrow = TRUE) + 3 * r
  expect_close(s2, cbind(Re(ref2[, 1]), Im(ref2[, 1]), Re(ref2[, 2]),
                         Im(ref2[, 2])), 1e-12)
  expect_error(z_i < w_j, class = "rkeops_error_unsupported")
})

test_that("type predicates", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  p <- Pm(c(1.5, 2))
  expect_true(is.LazyParameter(Pm(2.5)))
  expect_true(is.LazyParameter(LazyTensor(3)))
  expect_true(is.LazyParameter(Pm(2.5) * 3))
  expect_false(is.LazyParameter(p))
  expect_false(is.LazyParameter(x_i + 3))
  expect_false(is.LazyParameter(sum(x_i)))
  expect_true(is.LazyVector(p))
  expect_true(is.LazyVector(LazyTensor(3)))
  expect_false(is.LazyVector(x_i * p))
  expect_true(is.LazyMatrix(x_i * p))
  expect_false(is.LazyMatrix(p))
  expect_true(is.int(3))
  expect_true(is.int(-2L))
  expect_false(is.int(3.5))
  expect_false(is.int(c(1, 2)))
  expect_false(is.int("3"))
  expect_false(is.int(NA))
  expect_snapshot(error = TRUE, {
    is.LazyParameter(3)
    is.ComplexLazyParameter(3)
    is.LazyVector("a")
    is.LazyMatrix(matrix(1))
  })
})
