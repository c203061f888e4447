# solve() of LazyTensors and keops_kernel_solve(), against base R's solve()
# of the stored matrix on small random problems.

# the solution without its attributes (iterations, residual...)
sol <- function(a) {
  attributes(a) <- attributes(a)["dim"]
  a
}

gauss_dense <- function(x, y, s) {
  exp(-(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * x %*% t(y)) / s)
}

test_that("solve() matches the dense solve for every preconditioner", {
  set.seed(21)
  N <- 157
  x <- matrix(runif(N * 2), N, 2)
  b <- matrix(rnorm(N * 3), N, 3)
  K_ij <- exp(-sqdist(Vi(x), Vj(x)) / 0.05)
  ref <- solve(gauss_dense(x, x, 0.05) + 0.3 * diag(N), b)
  for (pc in c("nystrom", "jacobi", "none")) {
    a <- solve(K_ij, b, lambda = 0.3, tol = 1e-11, precond = pc)
    expect_equal(sol(a), ref, tolerance = 1e-8, info = pc)
    expect_true(attr(a, "iterations") >= 1)
    expect_lt(attr(a, "residual"), 1e-11)
    expect_length(attr(a, "residuals"), 3)
  }
  # the preconditioner cuts the iterations
  n0 <- attr(solve(K_ij, b, lambda = 0.3, precond = "none"), "iterations")
  n1 <- attr(solve(K_ij, b, lambda = 0.3), "iterations")
  expect_lt(n1, n0)
  # a vector right-hand side gives a vector
  v <- solve(K_ij, b[, 1], lambda = 0.3, tol = 1e-11)
  expect_null(dim(v))
  expect_equal(sol(v), ref[, 1], tolerance = 1e-8)
  # a starting point
  a0 <- solve(K_ij, b, lambda = 0.3, tol = 1e-11, x0 = ref)
  expect_equal(sol(a0), ref, tolerance = 1e-8)
})

test_that("solve() of a single point and of a Laplace kernel", {
  x <- matrix(0.3, 1, 1)
  a <- solve(exp(-sqdist(Vi(x), Vj(x))), matrix(2, 1, 1), lambda = 1)
  expect_equal(as.numeric(sol(a)), 1, tolerance = 1e-12)
  set.seed(22)
  N <- 73
  y <- matrix(rnorm(N * 3), N, 3)
  b <- matrix(rnorm(N), N, 1)
  L <- unname(exp(-as.matrix(dist(y)) / 0.7))
  a <- solve(exp(-sqrt(sqdist(Vi(y), Vj(y))) / 0.7), b, lambda = 0.1, tol = 1e-11)
  expect_equal(sol(a), solve(L + 0.1 * diag(N), b), tolerance = 1e-8)
})

test_that("solve() with ranges solves the masked system", {
  set.seed(23)
  N <- 211
  x <- matrix(runif(N * 2), N, 2)
  b <- matrix(rnorm(N), N, 1)
  rg <- keops_ranges(x, cutoff = 0.15)
  keep <- matrix(FALSE, rg$nclusters[1], rg$nclusters[2])
  keep[rg$pairs] <- TRUE
  mask <- keep[rg$cluster_i, rg$cluster_j]
  K <- gauss_dense(x, x, 0.01) * mask
  a <- solve(exp(-sqdist(Vi(x), Vj(x)) / 0.01), b, lambda = 0.5, tol = 1e-11,
             ranges = rg)
  expect_equal(sol(a), solve(K + 0.5 * diag(N), b), tolerance = 1e-8)
})

test_that("keops_kernel_solve() matches the dense solve", {
  set.seed(24)
  N <- 120
  x <- matrix(runif(N * 2), N, 2)
  b <- matrix(rnorm(N * 2), N, 2)
  Kinv <- keops_kernel_solve("Exp(-SqDist(x, y) * g) * v",
                             c("x = Vi(2)", "y = Vj(2)", "v = Vj(2)", "g = Pm(1)"),
                             var = "v", lambda = 0.2)
  ref <- solve(gauss_dense(x, x, 1 / 8) + 0.2 * diag(N), b)
  expect_equal(sol(Kinv(list(x = x, y = x, v = b, g = 8), tol = 1e-11)), ref, tolerance = 1e-8)
  expect_equal(sol(Kinv(list(x, x, b, 8), tol = 1e-11, precond = "jacobi")), ref, tolerance = 1e-8)
  ref2 <- solve(gauss_dense(x, x, 1 / 8) + 1 * diag(N), b)
  expect_equal(sol(Kinv(list(x, x, b, 8), lambda = 1, tol = 1e-11)), ref2, tolerance = 1e-8)
})

test_that("solve() errors and warnings", {
  x <- matrix(runif(20), 10, 2)
  y <- matrix(runif(16), 8, 2)
  b <- matrix(1, 10, 1)
  expect_error(solve(exp(-sqdist(Vi(x), Vj(y))), b), "square",
               class = "rkeops_error_shape")
  expect_error(solve(exp(-Vi(x)), b), "symbolic matrix", class = "rkeops_error_arg")
  expect_error(solve(exp(-sqdist(Vi(x), Vj(x))), matrix(1, 9, 1)), "`b`",
               class = "rkeops_error_shape")
  expect_error(solve(Vi(x) - Vj(x), b), "inner dimension", class = "rkeops_error_dim")
  expect_error(solve(exp(-sqdist(Vi(x), Vj(x))), b, lambda = -1), "lambda",
               class = "rkeops_error_arg")
  expect_error(solve(exp(-sqdist(Vi(x), Vj(x))), b, precond = "ilu"), "precond",
               class = "rkeops_error_arg")
  expect_error(solve(exp(-sqdist(Vi(x), Vj(x))), b, maxit = 0), "maxit",
               class = "rkeops_error_arg")
  set.seed(25)
  z <- matrix(runif(200), 100, 2)
  expect_warning(a <- solve(exp(-sqdist(Vi(z), Vj(z)) / 0.1), matrix(rnorm(100), 100, 1),
                            lambda = 1e-3, maxit = 2, precond = "none"), "maxit")
  expect_equal(attr(a, "iterations"), 2)
  expect_error(keops_kernel_solve("Sum_Reduction(x * v, 0)", c("x = Vi(1)", "v = Vj(1)"),
                                  var = "v"), "no reduction", class = "rkeops_error_arg")
  expect_error(keops_kernel_solve("x * v", c("x = Vi(1)", "v = Vj(1)"), var = "x"),
               "Vj", class = "rkeops_error_arg")
})
