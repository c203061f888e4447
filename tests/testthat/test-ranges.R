# Block-sparse reductions: keops_ranges(), as_keops_ranges() and the
# `ranges` argument, against dense R references restricted to the kept
# pairs of clusters (mask), on random data.

ranged_mask <- function(rg) {
  keep <- matrix(FALSE, rg$nclusters[1], rg$nclusters[2])
  keep[rg$pairs] <- TRUE
  keep[rg$cluster_i, rg$cluster_j, drop = FALSE]
}

sqd <- function(x, y) outer(rowSums(x^2), rowSums(y^2), "+") - 2 * x %*% t(y)

test_that("keops_ranges keeps every pair closer than the cut-off", {
  set.seed(11)
  for (D in c(1, 2, 3, 5)) {
    x <- matrix(runif(301 * D), 301, D)
    # y reaches beyond x's extent (the grid must number both alike)
    y <- matrix(runif(157 * D, -0.3, 1.6), 157, D)
    for (method in c("grid", "kmeans")) {
      if (method == "grid" && D > 3) next
      rg <- keops_ranges(x, y, cutoff = 0.25, method = method)
      mask <- ranged_mask(rg)
      close <- sqrt(pmax(sqd(x, y), 0)) <= 0.25
      expect_true(all(mask[close]), info = paste(D, method))
      expect_lt(rg$kept, 1)
      expect_equal(rg$kept, mean(mask))
      expect_equal(sort(rg$perm_i), seq_len(301))
      expect_equal(sort(rg$perm_j), seq_len(157))
    }
  }
})

test_that("ranged reductions over j and over i match the dense masked reference", {
  set.seed(12)
  M <- 263; N <- 171
  x <- matrix(runif(M * 2), M, 2)
  y <- matrix(runif(N * 2), N, 2)
  b <- matrix(rnorm(N * 3), N, 3)
  a <- matrix(rnorm(M), M, 1)
  rg <- keops_ranges(x, y, cutoff = 0.2, cell = 0.07)
  mask <- ranged_mask(rg)
  K <- exp(-sqd(x, y) / 0.02) * mask
  K_ij <- exp(-sqdist(Vi(x), Vj(y)) / 0.02)
  res <- sum(K_ij * Vj(b), index = "j", ranges = rg)
  expect_equal(res, K %*% b, tolerance = 1e-12)
  res_i <- sum(K_ij * Vi(a), index = "i", ranges = rg)
  expect_equal(res_i, t(K) %*% a, tolerance = 1e-12)
  # min / argmin over the kept pairs, indices of the original rows
  D2 <- sqd(x, y); D2[!mask] <- Inf
  mi <- min_argmin(sqdist(Vi(x), Vj(y)), index = "j", ranges = rg)
  expect_equal(mi[[1]][, 1], apply(D2, 1, min), tolerance = 1e-12)
  ref_arg <- apply(D2, 1, function(v) if (all(is.infinite(v))) NA else which.min(v))
  expect_identical(as.integer(mi[[2]][, 1]), as.integer(ref_arg))
  kk <- argKmin(sqdist(Vi(x), Vj(y)), 3, index = "i", ranges = rg)
  ref_k <- t(apply(D2, 2, function(v) {
    o <- order(v)[1:3]; o[is.infinite(v[o])] <- NA; o
  }))
  expect_identical(matrix(as.integer(kk), N), matrix(as.integer(ref_k), N))
  # logsumexp
  ls <- logsumexp(-sqdist(Vi(x), Vj(y)) * 5, index = "j", ranges = rg)
  E <- -sqd(x, y) * 5; E[!mask] <- -Inf
  expect_equal(ls[, 1], apply(E, 1, function(v) {
    m <- max(v); if (is.infinite(m)) m else m + log(sum(exp(v - m)))
  }), tolerance = 1e-12)
  # float32
  rkeops_use_float32()
  on.exit(rkeops_use_float64())
  r32 <- sum(K_ij * Vj(b), index = "j", ranges = rg)
  expect_equal(r32, K %*% b, tolerance = 1e-5)
})

test_that("full ranges give the unranged result; M = 1 and N = 1 work", {
  set.seed(13)
  x <- matrix(runif(90), 30, 3)
  y <- matrix(runif(3), 1, 3)
  rg <- keops_ranges(x, y, cutoff = 10)
  expect_equal(rg$kept, 1)
  f <- exp(-sqdist(Vi(x), Vj(y)))
  expect_equal(sum(f, index = "j", ranges = rg), sum(f, index = "j"), tolerance = 1e-15)
  rg1 <- keops_ranges(y, x, cutoff = 0.3)
  g <- exp(-sqdist(Vi(y), Vj(x)))
  mask <- ranged_mask(rg1)
  expect_equal(sum(g, index = "j", ranges = rg1),
               matrix(sum(exp(-sqd(y, x)) * mask), 1, 1), tolerance = 1e-12)
})

test_that("operators and their gradients take ranges", {
  set.seed(14)
  M <- 140; N <- 97
  x <- matrix(runif(M * 2), M, 2)
  y <- matrix(runif(N * 2), N, 2)
  b <- matrix(rnorm(N), N, 1)
  rg <- keops_ranges(x, y, cutoff = 0.3, method = "kmeans", nclusters = 9)
  mask <- ranged_mask(rg)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) * g) * b, 0)",
                     c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "g = Pm(1)"))
  g <- 4
  K <- exp(-sqd(x, y) * g) * mask
  expect_equal(op(list(x, y, b, g), ranges = rg), K %*% b, tolerance = 1e-12)
  e <- matrix(rnorm(M), M, 1)
  # d/dx_i of sum_i e_i sum_j K_ij b_j = sum_j e_i b_j K_ij (-2 g)(x_i - y_j)
  gx <- keops_grad(op, "x")
  W <- K * (e %*% t(b)) * (-2 * g)
  ref_x <- cbind(rowSums(W) * x[, 1] - W %*% y[, 1], rowSums(W) * x[, 2] - W %*% y[, 2])
  expect_equal(gx(list(x, y, b, g, e), ranges = rg), ref_x, tolerance = 1e-12)
  gy <- keops_grad(op, "y")
  ref_y <- cbind(colSums(W) * y[, 1] - t(W) %*% x[, 1], colSums(W) * y[, 2] - t(W) %*% x[, 2])
  expect_equal(gy(list(x, y, b, g, e), ranges = rg), ref_y, tolerance = 1e-12)
  gg <- keops_grad(op, "g")
  ref_g <- sum(K * (e %*% t(b)) * (-sqd(x, y)))
  expect_equal(as.numeric(gg(list(x, y, b, g, e), ranges = rg)), ref_g, tolerance = 1e-12)
})

test_that("PyKeOps-style ranges are accepted for sorted data", {
  x <- matrix(c(0, 0.1, 0.2, 5, 5.1), 5, 1)
  # two clusters {1,2,3} and {4,5}, each seeing only itself
  rg <- as_keops_ranges(rbind(c(0, 3), c(3, 5)), c(1, 2), rbind(c(0, 3), c(3, 5)),
                        rbind(c(0, 3), c(3, 5)), c(1, 2), rbind(c(0, 3), c(3, 5)),
                        M = 5, N = 5)
  D <- outer(x[, 1], x[, 1], "-")
  mask <- outer(x[, 1] > 1, x[, 1] > 1, "==")
  expect_equal(sum(Vi(x) - Vj(x), index = "j", ranges = rg),
               matrix(rowSums(D * mask), 5, 1), tolerance = 1e-14)
  expect_equal(sum(Vi(x) - Vj(x), index = "i", ranges = rg),
               matrix(colSums(D * mask), 5, 1), tolerance = 1e-14)
  expect_output(print(rg), "PyKeOps")
  # only the first triple: reductions over i are refused
  rg3 <- as_keops_ranges(rbind(c(0, 3), c(3, 5)), c(1, 2), rbind(c(0, 3), c(3, 5)),
                         M = 5, N = 5)
  expect_error(sum(Vi(x) - Vj(x), index = "i", ranges = rg3), "no ranges", class = "rkeops_error")
  # a block past the rows: the engine says which
  bad <- as_keops_ranges(rbind(c(0, 3), c(2, 5)), c(1, 2), rbind(c(0, 3), c(3, 5)),
                         M = 5, N = 5)
  expect_error(sum(Vi(x) - Vj(x), index = "j", ranges = bad), "block 2",
               class = "rkeops_error")
})

test_that("bad ranges arguments are clear errors", {
  x <- matrix(runif(20), 10, 2)
  expect_error(keops_ranges(x), "cutoff", class = "rkeops_error_arg")
  expect_error(keops_ranges(x, cutoff = -1), "cutoff", class = "rkeops_error_arg")
  expect_error(keops_ranges(x, matrix(1, 3, 3), cutoff = 1), "columns",
               class = "rkeops_error_shape")
  expect_error(keops_ranges(x, cutoff = 1, method = "tree"), "method",
               class = "rkeops_error_arg")
  expect_error(keops_ranges("a", cutoff = 1), "numeric matrix", class = "rkeops_error_arg")
  expect_error(sum(Vi(x) - Vj(x), index = "j", ranges = list()), "keops_ranges",
               class = "rkeops_error_arg")
  rg <- keops_ranges(x[1:5, ], cutoff = 1)
  expect_error(sum(sqdist(Vi(x), Vj(x)), index = "j", ranges = rg), "ranges were made",
               class = "rkeops_error_shape")
  expect_error(as_keops_ranges(1, 1, 1, M = 2, N = 2), "two columns",
               class = "rkeops_error_arg")
})
