# keops_value_and_grad(): value and gradient of an objective for optim().

test_that("value and gradient of the sum of a reduction", {
  set.seed(901)
  x <- matrix(rnorm(12), 4, 3)
  y <- matrix(rnorm(15), 5, 3)
  b <- matrix(rnorm(10), 5, 2)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
                     c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)"))
  vg <- keops_value_and_grad(op, "y")
  res <- vg(list(x, y, b))
  K <- exp(-sqdist_mat(x, y))
  expect_equal(res$value, sum(K %*% b), tolerance = 1e-12)
  W <- K * matrix(rowSums(b), 4, 5, byrow = TRUE)
  expect_close(res$gradient, 2 * (crossprod(W, x) - colSums(W) * y), 1e-12)
  # named input, and the same input again gives the same result
  res2 <- vg(list(b = b, x = x, y = y))
  expect_equal(res2, res, tolerance = 1e-14)
  expect_identical(vg(list(b = b, x = x, y = y)), res2)
})

test_that("inner_dim = \"row\": transposed data, gradient of var's shape", {
  set.seed(902)
  x <- matrix(rnorm(21), 7, 3)
  y <- matrix(rnorm(3), 1, 3)
  b <- matrix(rnorm(2), 1, 2)
  s <- 0.7
  op <- keops_kernel("Sum_Reduction(Exp(-s * SqDist(x, y)) * b, 0)",
                     c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)"))
  K <- exp(-s * sqdist_mat(x, y))
  # L(a) = sum((a - 1)^2): dL/da = 2 (a - 1), with a = K b (7 x 2)
  z <- matrix(1, 7, 2)
  loss <- function(a) {
    expect_identical(dim(a), c(7L, 2L))
    list(value = sum((a - z)^2), grad = 2 * (a - z))
  }
  a <- K %*% b
  G <- 2 * (a - z)
  W <- K * matrix(G %*% t(b), 7, 1)  # dL/dK_ij
  ref_x <- -2 * s * (rowSums(W) * x - W %*% y)
  ref_s <- -sum(W * sqdist_mat(x, y))
  vx <- keops_value_and_grad(op, "x", loss = loss)
  col <- vx(list(x, y, b, s))
  expect_close(col$gradient, ref_x, 1e-12)
  row <- vx(list(t(x), t(y), t(b), s), inner_dim = "row")
  expect_equal(row$value, sum((a - z)^2), tolerance = 1e-13)
  expect_close(row$gradient, t(ref_x), 1e-12)
  # the memo tells the two layouts apart
  expect_close(vx(list(x, y, b, s))$gradient, ref_x, 1e-12)
  vs <- keops_value_and_grad(op, "s", loss = loss)
  gs <- vs(list(t(x), t(y), t(b), s), inner_dim = "row")$gradient
  expect_true(is.vector(gs) && length(gs) == 1L)
  expect_equal(gs, ref_s, tolerance = 1e-12)
  expect_error(vx(list(x, y, b, s), inner_dim = "rows"),
               "`inner_dim` should be \"col\" or \"row\"", fixed = TRUE,
               class = "rkeops_error_arg")
})

test_that("an optim() fit of a Gaussian kernel scale uses the right gradient", {
  set.seed(902)
  x <- matrix(runif(200), 200, 1)
  y <- matrix(sin(6 * x) + rnorm(200, sd = 0.1), 200, 1)
  u <- matrix(runif(80), 80, 1)
  z <- sin(6 * u) + rnorm(80, sd = 0.1)
  op <- keops_kernel("SumSoftMaxWeight_Reduction(-s * SqDist(u, x), y, 0)",
                     c("u = Vi(1)", "x = Vj(1)", "y = Vj(1)", "s = Pm(1)"))
  loss <- function(a) list(value = sum((a - z)^2), grad = 2 * (a - z))
  vg <- keops_value_and_grad(op, 3, loss = loss)
  val <- function(s) vg(list(u, x, y, s))$value
  # gradient against finite differences, and against the dense formula
  s0 <- 20
  g <- vg(list(u, x, y, s0))$gradient
  expect_length(g, 1L)
  h <- 1e-5
  expect_equal(g, (val(s0 + h) - val(s0 - h)) / (2 * h), tolerance = 1e-6)
  d2 <- sqdist_mat(u, x)
  dense <- function(s) {
    P <- exp(-s * d2)
    sum((P %*% y / rowSums(P) - z)^2)
  }
  expect_equal(vg(list(u, x, y, s0))$value, dense(s0), tolerance = 1e-12)
  fit <- optim(s0, fn = val, gr = function(s) vg(list(u, x, y, s))$gradient,
               method = "L-BFGS-B", lower = 0.01)
  expect_identical(fit$convergence, 0L)
  expect_lt(fit$value, val(s0))
  expect_lt(abs(vg(list(u, x, y, fit$par))$gradient), 1e-3 * abs(g))
  # the dense optimum agrees
  ref <- optimize(function(ls) dense(exp(ls)), log(c(1, 1e5)), tol = 1e-10)
  expect_equal(fit$par, exp(ref$minimum), tolerance = 1e-3)
})

test_that("keops_value_and_grad() errors", {
  op <- keops_kernel("Sum_Reduction(SqDist(x, y), 0)", c("x = Vi(2)", "y = Vj(2)"))
  x <- matrix(1, 3, 2)
  y <- matrix(0, 4, 2)
  bad_shape <- keops_value_and_grad(op, "x", loss = function(a) {
    list(value = sum(a), grad = c(1, 2))
  })
  bad_value <- keops_value_and_grad(op, "x", loss = function(a) {
    list(value = a, grad = a)
  })
  pair <- keops_kernel("Min_ArgMin_Reduction(SqDist(x, y), 0)",
                       c("x = Vi(2)", "y = Vj(2)"))
  expect_snapshot(error = TRUE, {
    keops_value_and_grad(op, "z")
    keops_value_and_grad(op, "x", loss = 3)
    bad_shape(list(x, y))
    bad_value(list(x, y))
    keops_value_and_grad(pair, "x")(list(x, y))
  })
})
