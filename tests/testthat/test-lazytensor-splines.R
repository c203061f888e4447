# bspline() and softdtw_sqdist() (KeOps' BSpline and SoftDTW_SqDist)
# against dense references in plain R.

# Cox-de Boor's recursion, textbook form (0 on empty intervals)
bspline_ref <- function(t, x, k) {
  D <- length(t)
  B <- as.numeric(t[-D] <= x & x < t[-1])
  for (p in seq_len(k)) {
    nb <- numeric(D - 1 - p)
    for (j in seq_len(D - 1 - p)) {
      a <- if (t[j + p] > t[j]) (x - t[j]) / (t[j + p] - t[j]) * B[j] else 0
      b <- if (t[j + p + 1] > t[j + 1]) {
        (t[j + p + 1] - x) / (t[j + p + 1] - t[j + 1]) * B[j + 1]
      } else 0
      nb[j] <- a + b
    }
    B <- nb
  }
  B
}

# soft-DTW by its definition (soft minimum not shifted)
softdtw_ref <- function(x, y, g) {
  n <- length(x)
  m <- length(y)
  R <- matrix(0, n, m)
  for (j in seq_len(m)) for (i in seq_len(n)) {
    prev <- if (i == 1 && j == 1) 0 else if (j == 1) R[i - 1, 1] else if (i == 1) {
      R[1, j - 1]
    } else {
      v <- c(R[i - 1, j - 1], R[i - 1, j], R[i, j - 1])
      -g * log(sum(exp(-v / g)))
    }
    R[i, j] <- (x[i] - y[j])^2 + prev
  }
  R[n, m]
}

sp_knots <- c(0, 0.2, 0.2, 0.5, 0.7, 1.0, 1.3)   # a double knot

test_that("bspline() gives the B-splines of orders 0 to 3", {
  set.seed(311)
  # 9 points: inside, on a knot, on the double knot, outside the knots
  u <- matrix(c(runif(5, 0, 1.3), 0.5, 0.2, -0.1, 1.3), 9, 1)
  one <- matrix(1, 1, 1)  # N = 1
  for (k in 0:3) {
    ref <- t(sapply(u[, 1], function(x) bspline_ref(sp_knots, x, k)))
    if (length(sp_knots) - k - 1 == 1) ref <- t(ref)
    res <- sum(bspline(sp_knots, Vi(u), k) * Vj(one), index = "j")
    expect_close(res, ref, 1e-13)
  }
  # knots per j, the points as parameter: reduced over j with weights
  w <- matrix(rnorm(4), 4, 1)
  kn <- t(replicate(4, sort(runif(6, -0.2, 1.2))))
  x0 <- 0.37
  res <- sum(bspline(Vj(kn), x0, 2) * Vj(w), index = "j")
  ref <- colSums(t(apply(kn, 1, function(t) bspline_ref(t, x0, 2))) * w[, 1])
  expect_close(res, matrix(ref, 1), 1e-13)
  # float32
  old <- set_rkeops_options(list(precision = "float32"))
  on.exit(set_rkeops_options(old))
  ref <- t(sapply(u[, 1], function(x) bspline_ref(sp_knots, x, 3)))
  expect_close(sum(bspline(sp_knots, Vi(u), 3) * Vj(one), "j"), ref, 1e-5)
})

test_that("bspline() errors", {
  u <- Vi(matrix(runif(3), 3, 1))
  expect_error(bspline(c(0, 1, 2), u, 2), "need at least 4 knots",
               class = "rkeops_error_dim")
  expect_error(bspline(c(0, 1, 2), Vi(matrix(1, 2, 2)), 0),
               "`x` should have inner dimension 1", class = "rkeops_error_dim")
  expect_error(bspline(c(0, 1, 2), u, -1), "`order` should be a whole number",
               class = "rkeops_error_arg")
  expect_error(bspline(c(0, 1, 2), u, 0.5), "`order` should be a whole number")
  # not differentiable, as in KeOps
  op <- keops_kernel("Sum_Reduction(BSpline(t, x, 1), 0)", c("t = Pm(4)", "x = Vi(1)"))
  g <- keops_grad(op, "x")
  expect_error(g(list(c(0, 1, 2, 3), matrix(0.5, 2, 1), matrix(1, 2, 2))),
               "BSpline is not differentiable")
})

test_that("softdtw_sqdist() against its definition, float64 and float32", {
  set.seed(312)
  M <- 7
  N <- 1
  x <- matrix(rnorm(M * 4), M, 4)
  y <- matrix(rnorm(N * 5), N, 5)
  for (g in c(0.1, 1)) {
    ref <- sapply(1:M, function(i) sum(sapply(1:N, function(j) softdtw_ref(x[i, ], y[j, ], g))))
    res <- sum(softdtw_sqdist(Vi(x), Vj(y), g), index = "j")
    expect_close(res, matrix(ref), 1e-12)
  }
  # series of length 1 (plain squared differences summed) and 3 x 2
  x1 <- matrix(rnorm(5), 5, 1)
  y3 <- matrix(rnorm(9), 3, 3)
  ref <- sapply(1:3, function(j) sum(sapply(1:5, function(i) softdtw_ref(x1[i, ], y3[j, ], 0.5))))
  expect_close(sum(softdtw_sqdist(Vi(x1), Vj(y3), 0.5), "i"), matrix(ref), 1e-12)
  old <- set_rkeops_options(list(precision = "float32"))
  on.exit(set_rkeops_options(old))
  y <- matrix(rnorm(3 * 5), 3, 5)
  ref <- sapply(1:M, function(i) sum(sapply(1:3, function(j) softdtw_ref(x[i, ], y[j, ], 0.5))))
  expect_close(sum(softdtw_sqdist(Vi(x), Vj(y), 0.5), "j"), matrix(ref), 1e-5)
})

test_that("the gradient of softdtw_sqdist() in x and y, not in gamma", {
  set.seed(313)
  M <- 3
  N <- 4
  x <- matrix(rnorm(M * 4), M, 4)
  y <- matrix(rnorm(N * 3), N, 3)
  g <- 0.3
  e <- matrix(rnorm(M), M, 1)
  op <- keops_kernel("Sum_Reduction(SoftDTW_SqDist(x, y, g), 0)",
                     c("x = Vi(4)", "y = Vj(3)", "g = Pm(1)"))
  f <- function(x, y) sum(e * sapply(1:M, function(i) {
    sum(sapply(1:N, function(j) softdtw_ref(x[i, ], y[j, ], g)))
  }))
  h <- 1e-5
  num <- function(z, which) {
    out <- z
    for (k in seq_along(z)) {
      zp <- z; zp[k] <- zp[k] + h
      zm <- z; zm[k] <- zm[k] - h
      out[k] <- if (which == "x") (f(zp, y) - f(zm, y)) / (2 * h) else
        (f(x, zp) - f(x, zm)) / (2 * h)
    }
    out
  }
  gx <- keops_grad(op, "x")(list(x, y, g, e))
  expect_close(gx, num(x, "x"), 1e-7)
  gy <- keops_grad(op, "y")(list(x, y, g, e))
  expect_close(gy, num(y, "y"), 1e-7)
  expect_error(keops_grad(op, "g")(list(x, y, g, e)),
               "not differentiable with respect to gamma")
  expect_error(softdtw_sqdist(Vi(x), Vj(y), c(1, 2)),
               "`gamma` should have inner dimension 1", class = "rkeops_error_dim")
})
