# as.matrix() of LazyTensors: the dense matrix of a symbolic matrix.

test_that("as.matrix() gives every entry of the formula", {
  set.seed(801)
  for (mn in list(c(7, 4), c(3, 9), c(1, 5), c(6, 1))) {
    x <- matrix(rnorm(mn[1] * 2), mn[1], 2)
    y <- matrix(rnorm(mn[2] * 2), mn[2], 2)
    D <- as.matrix(sqdist(Vi(x), Vj(y)))
    expect_close(D, sqdist_mat(x, y), 1e-12)
    A <- as.matrix(Vi(x) - Vj(y))
    expect_identical(dim(A), c(as.integer(mn), 2L))
    expect_identical(A[, , 1, drop = FALSE],
                     array(outer(x[, 1], y[, 1], "-"), c(mn, 1)))
    expect_identical(A[, , 2, drop = FALSE],
                     array(outer(x[, 2], y[, 2], "-"), c(mn, 1)))
  }
  x <- matrix(rnorm(6), 3, 2)
  # no Vj variable: one column; NaN and Inf are kept
  expect_identical(as.matrix(sum(Vi(x))), matrix(rowSums(x), 3, 1))
  v <- matrix(c(-1, 0, 2), 3, 1)
  w <- matrix(c(1, 0.5), 2, 1)
  L <- suppressWarnings(log(outer(v[, 1], w[, 1])))
  expect_identical(as.matrix(log(Vi(v) * Vj(w))), L)
  expect_identical(as.matrix(Pm(2.5) * Vi(x)), array(x * 2.5, c(3, 1, 2)))
})

test_that("as.matrix() of a ComplexLazyTensor is complex", {
  set.seed(802)
  z <- matrix(complex(real = rnorm(6), imaginary = rnorm(6)), 3, 2)
  w <- matrix(complex(real = rnorm(8), imaginary = rnorm(8)), 4, 2)
  P <- as.matrix(Vi(z) * Vj(w))
  expect_true(is.complex(P))
  expect_identical(dim(P), c(3L, 4L, 2L))
  expect_equal(P[, , 2], outer(z[, 2], w[, 2]), tolerance = 1e-14)
  expect_equal(as.matrix(sum(Vi(z) / Vj(w))), outer(z[, 1], w[, 1], "/") +
                 outer(z[, 2], w[, 2], "/"), tolerance = 1e-14)
})

test_that("as.matrix() refuses large results with a clear error", {
  x_i <- Vi(matrix(0, 300, 2))
  y_j <- Vj(matrix(0, 400, 2))
  expect_snapshot(error = TRUE, {
    as.matrix(x_i - y_j, max_size = 1e5)
    as.matrix(x_i - y_j, max_size = -1)
    as.matrix(LazyTensor(3) * 2)
  })
})
