# Every reduction, through the LazyTensor functions and keops_kernel()
# formula strings, against dense R references: sizes that are no multiple
# of any tile, both indices, result shapes (matrices, K-arrays, pairs),
# 1-based indices with ties, NaN and Inf, and the seed slides' k-means step
# and k-nearest-neighbour search.

# fun(v) -> vector of `width` values, for each group of rows (i or j) and
# each column of val: an ng x width x ncol(val) array.
group_apply <- function(val, M, N, index, fun, width) {
  p <- pair_index(M, N)
  g <- if (index == "j") p$i else p$j
  ng <- if (index == "j") M else N
  out <- array(0, c(ng, width, ncol(val)))
  for (k in seq_len(ncol(val))) {
    groups <- split(val[, k], g)
    out[, , k] <- matrix(unlist(lapply(groups, fun), use.names = FALSE),
                         ng, width, byrow = TRUE)
  }
  out
}

kmin_fun <- function(K) function(v) c(sort(v), rep(Inf, K))[seq_len(K)]
argkmin_fun <- function(K) function(v) c(order(v), rep(NA, K))[seq_len(K)]
mat1 <- function(a) matrix(a, dim(a)[1L], dim(a)[2L] * dim(a)[3L])
kshape <- function(a) if (dim(a)[3L] == 1L) matrix(a, dim(a)[1L]) else a

expect_same_values <- function(res, ref, tol, what) {
  ok <- identical(dim(res), dim(ref)) &&
    identical(is.na(res), is.na(ref)) &&
    all(res[!is.na(ref) & is.infinite(ref)] == ref[!is.na(ref) & is.infinite(ref)])
  fin <- !is.na(ref) & is.finite(ref)
  scale <- if (any(fin)) max(1, max(abs(ref[fin]))) else 1
  err <- if (ok && any(fin)) max(abs(res[fin] - ref[fin])) / scale else 0
  expect(ok && err <= tol,
         sprintf("%s: %s", what, if (!ok) "shape, NA or Inf mismatch"
                 else sprintf("relative error %.3g > %.3g", err, tol)))
}

test_that("every reduction matches R for sizes 1, 7, 255, 1031 and both indices", {
  set.seed(501)
  K <- 3L
  sizes <- list(c(1, 1), c(1, 7), c(7, 1), c(255, 1031), c(1031, 255))
  for (mn in sizes) {
    M <- mn[1]
    N <- mn[2]
    x <- matrix(rnorm(M * 2), M, 2)
    y <- matrix(rnorm(N * 2), N, 2)
    wj <- matrix(runif(N * 3, 0.5, 1.5), N, 3)
    wi <- matrix(runif(M * 3, 0.5, 1.5), M, 3)
    x_i <- Vi(x)
    y_j <- Vj(y)
    F2 <- x_i - y_j
    F1 <- -sqdist(x_i, y_j)
    v2 <- dense_pairs(function(a, b) a$x - b$y, list(x = x), list(y = y))
    v1 <- dense_pairs(function(a, b) -rowSums((a$x - b$y)^2),
                      list(x = x), list(y = y))
    for (ix in c("j", "i")) {
      what <- sprintf("M = %d, N = %d, index = '%s'", M, N, ix)
      ng <- if (ix == "j") M else N
      w <- if (ix == "j") wj else wi
      w_lt <- if (ix == "j") Vj(wj) else Vi(wi)
      ga <- function(v, fun, width = 1L) group_apply(v, M, N, ix, fun, width)
      expect_same_values(sum(F2, index = ix), mat1(ga(v2, sum)), 1e-12,
                         paste("Sum", what))
      mn_ref <- mat1(ga(v2, min))
      am_ref <- mat1(ga(v2, which.min))
      mx_ref <- mat1(ga(v2, max))
      ax_ref <- mat1(ga(v2, which.max))
      expect_same_values(min(F2, index = ix), mn_ref, 0, paste("Min", what))
      expect_same_values(max(F2, ix), mx_ref, 0, paste("Max", what))
      expect_same_values(argmin(F2, ix), am_ref, 0, paste("ArgMin", what))
      expect_same_values(argmax(F2, ix), ax_ref, 0, paste("ArgMax", what))
      ma <- min_argmin(F2, ix)
      expect_true(is.list(ma) && length(ma) == 2L && is.null(names(ma)))
      expect_same_values(ma[[1]], mn_ref, 0, paste("Min_ArgMin values", what))
      expect_same_values(ma[[2]], am_ref, 0, paste("Min_ArgMin indices", what))
      xa <- max_argmax(F2, ix)
      expect_same_values(xa[[1]], mx_ref, 0, paste("Max_ArgMax values", what))
      expect_same_values(xa[[2]], ax_ref, 0, paste("Max_ArgMax indices", what))
      # K-reductions: nout x K x D array for D = 2, nout x K matrix for D = 1
      km_ref <- ga(v2, kmin_fun(K), K)
      ak_ref <- ga(v2, argkmin_fun(K), K)
      expect_same_values(Kmin(F2, K, ix), km_ref, 0, paste("KMin", what))
      expect_same_values(argKmin(F2, K, ix), ak_ref, 0, paste("ArgKMin", what))
      kk <- Kmin_argKmin(F2, K, ix)
      expect_same_values(kk[[1]], km_ref, 0, paste("KMin_ArgKMin values", what))
      expect_same_values(kk[[2]], ak_ref, 0, paste("KMin_ArgKMin indices", what))
      expect_same_values(argKmin(F1, K, ix), kshape(ga(v1, argkmin_fun(K), K)),
                         0, paste("ArgKMin D = 1", what))
      # LogSumExp family (scalar F)
      m <- mat1(ga(v1, max))
      s <- mat1(ga(v1, function(v) sum(exp(v - max(v)))))
      expect_same_values(logsumexp(F1, ix), m + log(s), 1e-12,
                         paste("LogSumExp", what))
      p <- pair_index(M, N)
      g <- if (ix == "j") p$i else p$j
      W <- w[if (ix == "j") p$j else p$i, , drop = FALSE]
      sw <- unname(rowsum(exp(v1[, 1] - m[g]) * W, g))
      expect_same_values(logsumexp(F1, ix, weight = w_lt),
                         c(m) + log(sw), 1e-12, paste("LogSumExpWeight", what))
      expect_same_values(sumsoftmaxweight(F1, ix, weight = w_lt),
                         sw / c(s), 1e-12, paste("SumSoftMaxWeight", what))
      expect_same_values(reduction.LazyTensor(F1, "Max_SumShiftExp", ix),
                         cbind(m, s), 1e-12, paste("Max_SumShiftExp", what))
      expect_same_values(
        reduction.LazyTensor(F1, "Max_SumShiftExpWeight", ix, opt_arg = w_lt),
        cbind(m, sw), 1e-12, paste("Max_SumShiftExpWeight", what)
      )
    }
  }
})

test_that("the *_reduction aliases and reduction.LazyTensor() agree", {
  set.seed(502)
  x_i <- Vi(matrix(rnorm(14), 7, 2))
  y_j <- Vj(matrix(rnorm(10), 5, 2))
  b_j <- Vj(matrix(runif(5), 5, 1))
  F2 <- x_i - y_j
  F1 <- -sqdist(x_i, y_j)
  expect_identical(sum_reduction(F2, "j"), sum(F2, index = "j"))
  expect_identical(min_reduction(F2, "i"), min(F2, index = "i"))
  expect_identical(max_reduction(F2, "j"), max(F2, index = "j"))
  expect_identical(argmin_reduction(F2, "j"), argmin(F2, "j"))
  expect_identical(argmax_reduction(F2, "i"), argmax(F2, "i"))
  expect_identical(min_argmin_reduction(F2, "j"), min_argmin(F2, "j"))
  expect_identical(max_argmax_reduction(F2, "j"), max_argmax(F2, "j"))
  expect_identical(Kmin_reduction(F2, 2, "j"), Kmin(F2, 2, "j"))
  expect_identical(argKmin_reduction(F2, 2, "j"), argKmin(F2, 2, "j"))
  expect_identical(Kmin_argKmin_reduction(F2, 2, "j"), Kmin_argKmin(F2, 2, "j"))
  expect_identical(logsumexp_reduction(F1, "j"), logsumexp(F1, "j"))
  expect_identical(logsumexp_reduction(F1, "j", b_j),
                   logsumexp(F1, "j", weight = b_j))
  expect_identical(sumsoftmaxweight_reduction(F1, "j", b_j),
                   sumsoftmaxweight(F1, "j", b_j))
  expect_identical(reduction.LazyTensor(F2, "Min", "j"), min(F2, index = "j"))
  expect_identical(reduction.LazyTensor(F2, "KMin", "j", opt_arg = 2),
                   Kmin(F2, 2, "j"))
  expect_identical(reduction.LazyTensor(F1, "SumSoftMaxWeight", "j", b_j),
                   sumsoftmaxweight(F1, "j", b_j))
  # index NA: symbolic operations on the coordinates (dimension 1)
  for (f in list(min(F2), max(F2), argmin(F2), argmax(F2), sum(F2))) {
    expect_identical(f$dimres, 1L)
  }
  res <- sum(concat(concat(min(F2), max(F2)), concat(argmin(F2), argmax(F2))),
             index = "j")
  v <- dense_pairs(function(a, b) a$x - b$y, list(x = x_i$data[[1]]),
                   list(y = y_j$data[[1]]))
  ref <- cbind(pmin(v[, 1], v[, 2]), pmax(v[, 1], v[, 2]),
               (v[, 2] < v[, 1]) + 0, (v[, 2] > v[, 1]) + 0)
  expect_close(res, dense_reduce(ref, 7, 5, "j"), 1e-12)
})

test_that("keops_kernel() returns arrays and lists for K-reductions and pairs", {
  set.seed(503)
  x <- matrix(rnorm(14), 7, 2)
  y <- matrix(rnorm(10), 5, 2)
  args <- c("x = Vi(2)", "y = Vj(2)")
  v2 <- dense_pairs(function(a, b) a$x - b$y, list(x = x), list(y = y))
  op <- keops_kernel("KMin_ArgKMin_Reduction(x - y, 6, 0)", args)
  res <- op(list(x, y))
  expect_true(is.list(res) && length(res) == 2L)
  expect_identical(dim(res[[1]]), c(7L, 6L, 2L))
  expect_same_values(res[[1]], group_apply(v2, 7, 5, "j", kmin_fun(6), 6), 0,
                     "KMin_ArgKMin values")
  expect_same_values(res[[2]], group_apply(v2, 7, 5, "j", argkmin_fun(6), 6), 0,
                     "KMin_ArgKMin indices")
  expect_true(all(is.na(res[[2]][, 6, ])) && all(res[[1]][, 6, ] == Inf))
  op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 2, 1)", args)
  res <- op(list(x, y))
  v1 <- dense_pairs(function(a, b) rowSums((a$x - b$y)^2), list(x = x),
                    list(y = y))
  expect_same_values(res, matrix(group_apply(v1, 7, 5, "i", argkmin_fun(2), 2), 5),
                     0, "ArgKMin D = 1")
  op <- keops_kernel("Max_ArgMax_Reduction(x - y, 1)", args)
  res <- op(list(x, y))
  expect_same_values(res[[1]], mat1(group_apply(v2, 7, 5, "i", max, 1)), 0,
                     "Max_ArgMax values")
  expect_same_values(res[[2]], mat1(group_apply(v2, 7, 5, "i", which.max, 1)),
                     0, "Max_ArgMax indices")
  # the shape does not cost a reshape for plain matrices
  op <- keops_kernel("Max_Reduction(x - y, 0)", args)
  expect_same_values(op(list(x, y)), mat1(group_apply(v2, 7, 5, "j", max, 1)),
                     0, "Max")
})

test_that("ties give the smallest index, as which.min() and order()", {
  x <- matrix(c(0, 1, 2, 1, 0), 5, 1)
  y <- matrix(c(1, 0, 1, 0, 2, 0), 6, 1)
  D <- sqdist(Vi(x), Vj(y))
  d <- outer(x[, 1], y[, 1], "-")^2
  # index results are doubles (exact, and NA for missing slots)
  dbl <- function(v) {
    storage.mode(v) <- "double"
    v
  }
  expect_identical(argmin(D, "j"), dbl(matrix(apply(d, 1, which.min), 5)))
  expect_identical(argmin(D, "i"), dbl(matrix(apply(d, 2, which.min), 6)))
  expect_identical(argmax(D, "j"), dbl(matrix(apply(d, 1, which.max), 5)))
  expect_identical(min_argmin(D, "j")[[2]],
                   dbl(matrix(apply(d, 1, which.min), 5)))
  expect_identical(argKmin(D, 4, "j"),
                   dbl(t(apply(d, 1, function(v) order(v)[1:4]))))
  expect_identical(argKmin(D, 4, "i"),
                   dbl(t(apply(d, 2, function(v) order(v)[1:4]))))
  expect_identical(Kmin_argKmin(D, 3, "j")[[1]],
                   t(apply(d, 1, function(v) sort(v)[1:3])))
})

test_that("NaN and Inf follow R: a NaN gives NaN (decision 9)", {
  x <- matrix(c(1, NaN, 3, NaN, -Inf, 2, Inf, 0), 4, 2)
  x_i <- Vi(x)
  expect_identical(sum(x_i, index = "i"), matrix(c(NaN, NaN), 1))
  expect_identical(min(x_i, index = "i"), matrix(c(NaN, -Inf), 1))
  expect_identical(max(x_i, index = "i"), matrix(c(NaN, Inf), 1))
  # the index of a NaN minimum is the first NaN
  expect_identical(argmin(x_i, "i"), matrix(c(2, 1), 1))
  expect_identical(argmax(x_i, "i"), matrix(c(2, 3), 1))
  kk <- Kmin_argKmin(x_i, 3, "i")
  expect_identical(kk[[1]][1, , 1], c(NaN, NaN, 1))
  expect_identical(kk[[2]][1, , 1], c(2, 4, 1))
  expect_identical(kk[[1]][1, , 2], c(-Inf, 0, 2))
  expect_identical(kk[[2]][1, , 2], c(1, 4, 2))
  # Inf in sums, -Inf in LogSumExp
  expect_identical(sum(Vi(matrix(c(1, Inf, 2), 3, 1)), index = "i"),
                   matrix(Inf, 1, 1))
  expect_identical(sum(Vi(matrix(c(-Inf, Inf), 2, 1)), index = "i"),
                   matrix(NaN, 1, 1))
  expect_identical(logsumexp(Vi(matrix(-Inf, 3, 1)), "i"), matrix(-Inf, 1, 1))
  expect_identical(logsumexp(Vi(matrix(c(-Inf, 0, -Inf), 3, 1)), "i"),
                   matrix(0, 1, 1))
  expect_identical(logsumexp(Vi(matrix(c(1, Inf), 2, 1)), "i"), matrix(Inf, 1, 1))
})

test_that("reductions in float32 are within 1e-5", {
  set.seed(504)
  rkeops_use_float32()
  on.exit(rkeops_use_float64())
  M <- 255
  N <- 1031
  x <- matrix(rnorm(M * 2), M, 2)
  y <- matrix(rnorm(N * 2), N, 2)
  w <- matrix(runif(N * 3, 0.5, 1.5), N, 3)
  F1 <- -sqdist(Vi(x), Vj(y))
  v1 <- dense_pairs(function(a, b) -rowSums((a$x - b$y)^2), list(x = x),
                    list(y = y))
  m <- mat1(group_apply(v1, M, N, "j", max, 1))
  s <- mat1(group_apply(v1, M, N, "j", function(v) sum(exp(v - max(v))), 1))
  p <- pair_index(M, N)
  sw <- unname(rowsum(exp(v1[, 1] - m[p$i]) * w[p$j, ], p$i))
  expect_same_values(max(F1, index = "j"), m, 1e-5, "Max float32")
  expect_same_values(logsumexp(F1, "j"), m + log(s), 1e-5, "LogSumExp float32")
  expect_same_values(sumsoftmaxweight(F1, "j", Vj(w)), sw / c(s), 1e-5,
                     "SumSoftMaxWeight float32")
  expect_same_values(Kmin(F1, 2, "j"), kshape(group_apply(v1, M, N, "j",
                                                          kmin_fun(2), 2)),
                     1e-5, "KMin float32")
})

test_that("the seed slides' k-means step matches the dense argmin exactly", {
  set.seed(505)
  N <- 1e5
  x <- matrix(rnorm(N * 2), N, 2)
  cl <- x[sample(N, 50), ]
  lab <- argmin(sqdist(Vi(x), Vj(cl)), index = "j")
  d2 <- sqdist_mat(x, cl)
  ref <- max.col(-d2, ties.method = "first")
  expect_identical(dim(lab), c(as.integer(N), 1L))
  expect_identical(as.vector(lab), as.numeric(ref))
  expect_identical(as.vector(lab[1:1000]),
                   as.numeric(apply(d2[1:1000, ], 1, which.min)))
  # one k-means update with the labels
  cnt <- tabulate(lab, 50)
  expect_identical(sum(cnt), as.integer(N))
})

test_that("the seed slides' 10-NN search matches order() exactly", {
  set.seed(506)
  Nq <- 1e5
  Np <- 1e4
  q <- matrix(runif(Nq * 3), Nq, 3)
  p <- matrix(runif(Np * 3), Np, 3)
  nn <- argKmin(sqdist(Vi(q), Vj(p)), 10, index = "j")
  expect_identical(dim(nn), c(as.integer(Nq), 10L))
  # dense reference on 1000 queries (first, last and random), in chunks
  rows <- c(1, Nq, sample(2:(Nq - 1), 998))
  ref <- matrix(0, length(rows), 10)
  for (ch in split(seq_along(rows), ceiling(seq_along(rows) / 250))) {
    d2 <- sqdist_mat(q[rows[ch], , drop = FALSE], p)
    ref[ch, ] <- t(apply(d2, 1, function(v) order(v)[1:10]))
  }
  storage.mode(ref) <- "double"
  expect_identical(nn[rows, ], ref)
})

test_that("reduction errors name the problem", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  y_j <- Vj(matrix(runif(8), 4, 2))
  expect_snapshot(error = TRUE, {
    Kmin(x_i - y_j, 1.5, "j")
    argKmin(x_i - y_j, 0, "j")
    Kmin(x_i - y_j, 2, index = "k")
    min_argmin(x_i - y_j)
    logsumexp(x_i - y_j, "j")
    sumsoftmaxweight(-sqdist(x_i, y_j), "j")
    reduction.LazyTensor(x_i, 3, "j")
    argmin(3, "j")
    min(x_i, y_j, index = "j")
    max(x_i, index = 2)
    sum(x_i, index = NULL)
    range(x_i)
  })
  # shape errors come from the engine, naming the variables as print() does
  expect_error(sum(x_i + Vi(matrix(1, 5, 2)), index = "j"), "V1.*5.*V0.*3",
               class = "rkeops_error_shape")
})

test_that("formula_only prints a K-reduction's formula", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  old <- set_rkeops_options(list(formula_only = TRUE))
  on.exit(set_rkeops_options(list(formula_only = old$formula_only)))
  expect_output(
    expect_error(argKmin(x_i, 2, "i"), class = "rkeops_error_debug"),
    "Formula: ArgKMin_Reduction\\(V0,2,1\\)"
  )
})
