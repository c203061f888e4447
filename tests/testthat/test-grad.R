# grad() of LazyTensor reductions: the true gradient (decision 2) with
# respect to the variable actually given.

test_that("grad() of a Sum reduction is the true gradient for any variable", {
  set.seed(701)
  M <- 6
  N <- 8
  x <- matrix(rnorm(M * 3), M, 3)
  y <- matrix(rnorm(N * 3), N, 3)
  eta <- matrix(rnorm(M), M, 1)
  x_i <- Vi(x)
  y_j <- Vj(y)
  eta_i <- Vi(eta)
  f <- sqnorm2(x_i - y_j)
  # SPEC example, eta = 1: row i is sum_j 2 (x_i - y_j)
  ones <- Vi(matrix(1, M, 1))
  g1 <- grad(f, ones, "Sum", var = x_i, index = "j")
  expect_close(g1, 2 * (N * x - matrix(colSums(y), M, 3, byrow = TRUE)), 1e-12)
  # with respect to x_i and y_j, by LazyTensor, name and position
  gx_ref <- 2 * c(eta) * (N * x - matrix(colSums(y), M, 3, byrow = TRUE))
  gy_ref <- -2 * (matrix(colSums(c(eta) * x), N, 3, byrow = TRUE) - sum(eta) * y)
  expect_close(grad(f, eta_i, "Sum", var = x_i, index = "j"), gx_ref, 1e-12)
  expect_close(grad(f, eta_i, "Sum", var = y_j, index = "j"), gy_ref, 1e-12)
  expect_close(grad(f, eta_i, "Sum", var = "V1", index = "j"), gy_ref, 1e-12)
  expect_close(grad(f, eta_i, "Sum", var = 0, index = "j"), gx_ref, 1e-12)
  # reduction over i: gradin indexed by j
  zeta <- matrix(rnorm(N), N, 1)
  gx2 <- grad(f, Vj(zeta), "Sum", var = x_i, index = "i")
  expect_close(gx2, 2 * (sum(zeta) * x - matrix(colSums(c(zeta) * y), M, 3,
                                                 byrow = TRUE)), 1e-12)
})

test_that("grad() with respect to a parameter, and of LogSumExp", {
  set.seed(702)
  M <- 5
  N <- 7
  x <- matrix(rnorm(M * 2), M, 2)
  y <- matrix(rnorm(N * 2), N, 2)
  b <- matrix(rnorm(N * 2), N, 2)
  e <- matrix(rnorm(M * 2), M, 2)
  s <- Pm(0.7)
  d2 <- sqdist_mat(x, y)
  K <- exp(-0.7 * d2)
  f <- exp(-s * sqdist(Vi(x), Vj(y))) * Vj(b)
  g <- grad(f, Vi(e), "Sum", var = s, index = "j")
  expect_identical(dim(g), c(1L, 1L))
  expect_close(g, sum(-d2 * K * (e %*% t(b))), 1e-12)
  # LogSumExp: d/dy_j sum_i e_i log sum_j exp(-|x_i - y_j|^2)
  y_j <- Vj(y)
  ei <- matrix(rnorm(M), M, 1)
  P <- exp(-d2) / rowSums(exp(-d2))
  W <- P * c(ei)
  ref <- 2 * (crossprod(W, x) - colSums(W) * y)
  expect_close(grad(-sqdist(Vi(x), y_j), Vi(ei), "LogSumExp", var = y_j,
                    index = "j"), ref, 1e-12)
})

test_that("grad() errors", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  y_j <- Vj(matrix(runif(8), 4, 2))
  z_j <- Vj(matrix(runif(8), 4, 2))
  f <- sqnorm2(x_i - y_j)
  eta_i <- Vi(matrix(1, 3, 1))
  expect_snapshot(error = TRUE, {
    grad(f, matrix(1, 3, 1), "Sum", x_i, "j")
    grad(f, eta_i, 1, x_i, "j")
    grad(f, eta_i, "Sum", x_i, "k")
    grad(f, Vj(matrix(1, 4, 1)), "Sum", x_i, "j")
    grad(f, Vi(matrix(1, 3, 2)), "Sum", x_i, "j")
    grad(f, Vi(matrix(1, 5, 1)), "Sum", x_i, "j")
    grad(f, eta_i, "Sum", z_j, "j")
    grad(f, eta_i, "Sum", x_i + 1, "j")
    grad(f, eta_i, "Sum", "V2", "j")
    grad(f, eta_i, "Sum", 2, "j")
  })
  expect_error(grad(f, eta_i, "KMin", x_i, "j"), class = "rkeops_error")
})

test_that("formula_only prints the gradient formula", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  y_j <- Vj(matrix(runif(8), 4, 2))
  old <- set_rkeops_options(list(formula_only = TRUE))
  on.exit(set_rkeops_options(list(formula_only = old$formula_only)))
  expect_output(
    expect_error(grad(sqdist(x_i, y_j), Vi(matrix(1, 3, 1)), "Sum", y_j, "j"),
                 class = "rkeops_error_debug"),
    "Formula: Grad\\(Sum_Reduction\\(SqDist\\(V0,V1\\),0\\),V1,V2\\)"
  )
})
