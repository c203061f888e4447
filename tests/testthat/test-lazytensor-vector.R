# Norms, distances, products of small matrices (column-major), indexing
# (0-based positions) and concatenation of LazyTensors against dense R.

test_that("vector operations and products match R", {
  set.seed(301)
  m <- 6
  n <- 7
  S <- matrix(rnorm(9), 3, 3)
  vi <- list(x = matrix(rnorm(m * 3), m, 3),
             v = matrix(rnorm(m * 2), m, 2),
             t = matrix(runif(m, 0.5, 2), m, 1))
  vj <- list(y = matrix(rnorm(n * 3), n, 3),
             w = matrix(runif(n * 3, 0.5, 2), n, 3),
             A = matrix(rnorm(n * 6), n, 6),
             B = matrix(rnorm(n * 3), n, 3))
  x_i <- Vi(vi$x)
  v_i <- Vi(vi$v)
  t_i <- Vi(vi$t)
  y_j <- Vj(vj$y)
  w_j <- Vj(vj$w)
  A_j <- Vj(vj$A)
  B_j <- Vj(vj$B)
  d <- function(a, b) a$x - b$y
  cases <- list(
    sqnorm2 = list(sqnorm2(x_i - y_j), function(a, b) rowSums(d(a, b)^2)),
    norm2 = list(norm2(x_i - y_j), function(a, b) sqrt(rowSums(d(a, b)^2))),
    normalize = list(normalize(x_i - y_j),
                     function(a, b) d(a, b) / sqrt(rowSums(d(a, b)^2))),
    sqdist = list(sqdist(x_i, y_j), function(a, b) rowSums(d(a, b)^2)),
    "sqdist broadcast" = list(sqdist(t_i, y_j),
                              function(a, b) rowSums((c(a$t) - b$y)^2)),
    "weightedsqnorm 1" = list(weightedsqnorm(x_i - y_j, 0.7),
                              function(a, b) 0.7 * rowSums(d(a, b)^2)),
    "weightedsqnorm D" = list(weightedsqnorm(x_i - y_j, w_j),
                              function(a, b) rowSums(b$w * d(a, b)^2)),
    "weightedsqnorm D^2" = list(weightedsqnorm(x_i - y_j, as.vector(S)),
                                function(a, b) rowSums((d(a, b) %*% S) * d(a, b))),
    "weightedsqdist" = list(weightedsqdist(x_i, y_j, w_j),
                            function(a, b) rowSums(b$w * d(a, b)^2)),
    "weightedsqdist scalar" = list(weightedsqdist(x_i, y_j, t_i),
                                   function(a, b) c(a$t) * rowSums(d(a, b)^2)),
    matvecmult = list(matvecmult(A_j, x_i), function(a, b) {
      sapply(1:2, function(r) rowSums(b$A[, r + 2 * (0:2)] * a$x))
    }),
    "matvecmult scalar" = list(matvecmult(B_j, t_i), function(a, b) b$B * c(a$t)),
    "matvecmult same dim" = list(matvecmult(w_j, x_i),
                                 function(a, b) rowSums(b$w * a$x)),
    vecmatmult = list(vecmatmult(v_i, A_j), function(a, b) {
      sapply(1:3, function(k) rowSums(a$v * b$A[, (1:2) + 2 * (k - 1)]))
    }),
    tensorprod = list(tensorprod(x_i, v_i), function(a, b) {
      out <- matrix(0, nrow(a$x), 6)
      for (k in 1:3) for (l in 1:2) out[, k + 3 * (l - 1)] <- a$x[, k] * a$v[, l]
      out
    }),
    "tensorprod ij" = list(tensorprod(v_i, y_j), function(a, b) {
      out <- matrix(0, nrow(a$v), 6)
      for (k in 1:2) for (l in 1:3) out[, k + 2 * (l - 1)] <- a$v[, k] * b$y[, l]
      out
    })
  )
  check_lt_batch(cases, vi, vj, 1e-12)
  expect_identical(matvecmult(A_j, x_i)$dimres, 2L)
  expect_identical(vecmatmult(v_i, A_j)$dimres, 3L)
  expect_identical(tensorprod(x_i, v_i)$dimres, 6L)
  expect_identical(weightedsqnorm(x_i, w_j)$formula,
                   sprintf("WeightedSqNorm(%s,%s)", w_j$formula, x_i$formula))
})

test_that("indexing, concatenation and one-hot encoding match R (0-based)", {
  set.seed(302)
  m <- 5
  n <- 4
  vi <- list(x = matrix(rnorm(m * 3), m, 3),
             k = matrix(c(0, 1.3, 2.7, 3, 0.2), m, 1))
  vj <- list(y = matrix(rnorm(n * 3), n, 3),
             s = matrix(rnorm(n), n, 1))
  x_i <- Vi(vi$x)
  k_i <- Vi(vi$k)
  y_j <- Vj(vj$y)
  s_j <- Vj(vj$s)
  d <- function(a, b) a$x - b$y
  cases <- list(
    elem = list(elem(x_i - y_j, 1), function(a, b) d(a, b)[, 2]),
    "elem 0" = list(elem(x_i, 0) * s_j, function(a, b) a$x[, 1] * b$s),
    elemT = list(elemT(s_j, 1, 4), function(a, b) cbind(0, b$s, 0, 0)),
    extract = list(extract(x_i - y_j, 1, 2), function(a, b) d(a, b)[, 2:3]),
    "extract all" = list(extract(y_j, 0, 3), function(a, b) b$y),
    extractT = list(extractT(x_i, 1, 5), function(a, b) cbind(0, a$x, 0)),
    "extractT end" = list(extractT(s_j, 2, 3), function(a, b) cbind(0, 0, b$s)),
    concat = list(concat(x_i, s_j), function(a, b) cbind(a$x, b$s)),
    "concat numbers" = list(concat(2, y_j), function(a, b) cbind(2, b$y)),
    one_hot = list(one_hot(k_i, 4) * s_j, function(a, b) {
      out <- matrix(0, nrow(a$k), 4)
      out[cbind(seq_len(nrow(a$k)), floor(a$k[, 1] + 0.5) + 1)] <- 1
      out * c(b$s)
    })
  )
  check_lt_batch(cases, vi, vj, 1e-12)
  expect_identical(elemT(s_j, 1, 4)$dimres, 4L)
  expect_identical(extractT(x_i, 1, 5)$dimres, 5L)
  expect_identical(concat(x_i, s_j)$dimres, 4L)
  expect_identical(one_hot(k_i, 4)$dimres, 4L)
  expect_identical(elem(x_i, 2)$formula, sprintf("Elem(%s,2)", x_i$formula))
  expect_identical(elemT(s_j, 1, 4)$formula, sprintf("ElemT(%s,4,1)", s_j$formula))
})

test_that("vector operation errors name the arguments and dimensions", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  y_j <- Vj(matrix(runif(12), 4, 3))
  z_i <- Vi(matrix(1i, 3, 2))
  expect_snapshot(error = TRUE, {
    elem(x_i, 2)
    elem(x_i, 0.5)
    elemT(x_i, 0, 3)
    elemT(elem(x_i, 0), 3, 3)
    extract(x_i, 1, 2)
    extract(x_i, 2, 1)
    extractT(y_j, 0, 2)
    extractT(x_i, 2, 3)
    one_hot(x_i, 3)
    one_hot(elem(z_i, 0), 3)
    one_hot(elem(x_i, 0), 0)
    matvecmult(y_j, x_i)
    vecmatmult(x_i, y_j)
    weightedsqnorm(y_j, x_i)
    sqdist(x_i, y_j)
    concat(x_i, z_i)
    normalize(z_i)
  })
})
