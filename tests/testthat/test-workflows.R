# keops_knn(), keops_kmeans(), keops_krr() against dense references in
# plain R and against the packages users would otherwise pick (FNN,
# stats::kmeans), on random data without ties.

# Dense kNN reference: the full M x N distance matrix, each row ordered.
dense_knn <- function(data, query, k, dfun) {
  D <- matrix(0, nrow(query), nrow(data))
  for (i in seq_len(nrow(query))) {
    for (j in seq_len(nrow(data))) D[i, j] <- dfun(query[i, ], data[j, ])
  }
  idx <- t(apply(D, 1L, function(r) order(r)[seq_len(k)]))
  if (k == 1L) idx <- matrix(idx, ncol = 1L)
  dist <- matrix(D[cbind(rep(seq_len(nrow(query)), k), as.vector(idx))],
                 nrow(query), k)
  list(nn.index = idx, nn.dist = dist)
}

metrics <- list(
  euclidean = function(a, b) sqrt(sum((a - b)^2)),
  manhattan = function(a, b) sum(abs(a - b)),
  cosine = function(a, b) 1 - sum(a * b) / sqrt(sum(a^2) * sum(b^2))
)

test_that("keops_knn() matches a dense reference for every metric, k = 1..N", {
  set.seed(181)
  for (D in c(1L, 3L, 17L)) {
    data <- matrix(rnorm(37 * D), 37, D)
    query <- matrix(rnorm(11 * D), 11, D)
    for (m in names(metrics)) {
      # in dimension 1 the cosine is +-1: nothing but ties
      if (D == 1L && m == "cosine") next
      for (k in c(1L, 5L, 37L)) {
        res <- keops_knn(data, query, k = k, metric = m)
        ref <- dense_knn(data, query, k, metrics[[m]])
        info <- sprintf("D = %d, %s, k = %d", D, m, k)
        expect_identical(res$nn.index, ref$nn.index, info = info)
        expect_equal(res$nn.dist, ref$nn.dist, tolerance = 1e-12, info = info)
        expect_true(is.integer(res$nn.index) && is.double(res$nn.dist))
      }
    }
  }
  # one query point, one data point
  res <- keops_knn(data[1, , drop = FALSE], query[1, , drop = FALSE], k = 1)
  expect_equal(res$nn.dist, matrix(sqrt(sum((data[1, ] - query[1, ])^2))),
               tolerance = 1e-12)
  expect_identical(res$nn.index, matrix(1L))
})

test_that("keops_knn() takes a function of two LazyTensors as metric", {
  set.seed(182)
  data <- matrix(runif(53 * 4), 53, 4)
  query <- matrix(runif(9 * 4), 9, 4)
  res <- keops_knn(data, query, k = 6, metric = function(x, y) sum(abs(x - y)^3))
  ref <- dense_knn(data, query, 6, function(a, b) sum(abs(a - b)^3))
  expect_identical(res$nn.index, ref$nn.index)
  expect_equal(res$nn.dist, ref$nn.dist, tolerance = 1e-12)
  expect_error(keops_knn(data, query, k = 2, metric = function(x, y) x - y),
               class = "rkeops_error_arg")
})

test_that("keops_knn() gives FNN::get.knnx's result", {
  skip_if_not_installed("FNN")
  set.seed(183)
  for (D in c(2L, 3L, 50L)) {
    data <- matrix(rnorm(1031 * D), 1031, D)
    query <- matrix(rnorm(67 * D), 67, D)
    for (k in c(1L, 10L)) {
      res <- keops_knn(data, query, k = k)
      ref <- FNN::get.knnx(data, query, k = k)
      expect_identical(res$nn.index, ref$nn.index, info = paste(D, k))
      expect_equal(res$nn.dist, ref$nn.dist, tolerance = 1e-12)
    }
  }
  # query = data: each point its own first neighbour, as FNN
  res <- keops_knn(data, k = 3)
  ref <- FNN::get.knnx(data, data, k = 3)
  expect_identical(res$nn.index, ref$nn.index)
  expect_identical(res$nn.index[, 1], seq_len(nrow(data)))
  expect_equal(res$nn.dist, ref$nn.dist, tolerance = 1e-12)
})

test_that("keops_knn() in float32 is within float32 accuracy", {
  set.seed(184)
  data <- matrix(rnorm(301 * 5), 301, 5)
  query <- matrix(rnorm(23 * 5), 23, 5)
  old <- rkeops_use_float32()
  on.exit(set_rkeops_options(old))
  res <- keops_knn(data, query, k = 4)
  ref <- dense_knn(data, query, 4, metrics$euclidean)
  expect_equal(res$nn.dist, ref$nn.dist, tolerance = 1e-5)
  # indices: the distances they point to are the k smallest
  back <- matrix(sqrt(sqdist_mat(query, data))[cbind(rep(1:23, 4),
                                                    as.vector(res$nn.index))], 23, 4)
  expect_equal(back, ref$nn.dist, tolerance = 1e-5)
})

test_that("keops_knn() checks its arguments", {
  x <- matrix(runif(20), 10, 2)
  expect_error(keops_knn(x, k = 0), "`k`", class = "rkeops_error_arg")
  expect_error(keops_knn(x, k = 11), "`k`", class = "rkeops_error_arg")
  expect_error(keops_knn(x), "`k`", class = "rkeops_error_arg")
  expect_error(keops_knn(x, matrix(1, 2, 3), k = 1), "`query`",
               class = "rkeops_error_shape")
  expect_error(keops_knn("a", k = 1), "`data`", class = "rkeops_error_arg")
  expect_error(keops_knn(x, k = 1, metric = "minkowski"), "`metric`",
               class = "rkeops_error_arg")
  expect_error(keops_knn(rbind(x, 0), k = 1, metric = "cosine"), "zero",
               class = "rkeops_error_arg")
  expect_error(keops_knn(rbind(x, NA), k = 1), "finite", class = "rkeops_error_arg")
})

# Well-separated clusters, shuffled.
blobs <- function(n, D, K, sep = 8) {
  mu <- matrix(rnorm(K * D, sd = sep), K, D)
  g <- sample(rep_len(seq_len(K), n))
  mu[g, , drop = FALSE] + matrix(rnorm(n * D), n, D)
}

test_that("keops_kmeans() is stats::kmeans(algorithm = \"Lloyd\")", {
  set.seed(185)
  for (D in c(1L, 3L, 7L)) {
    x <- blobs(433, D, 5)
    rownames(x) <- paste0("p", seq_len(nrow(x)))
    c0 <- x[sample(nrow(x), 5), , drop = FALSE]
    res <- keops_kmeans(x, c0, iter.max = 50)
    ref <- stats::kmeans(x, c0, iter.max = 50, algorithm = "Lloyd")
    expect_s3_class(res, "kmeans")
    expect_identical(names(res), names(ref))
    expect_identical(res$cluster, ref$cluster)
    expect_identical(res$size, ref$size)
    expect_identical(res$iter, ref$iter)
    expect_identical(res$ifault, ref$ifault)
    for (f in c("centers", "totss", "withinss", "tot.withinss", "betweenss")) {
      expect_equal(res[[f]], ref[[f]], tolerance = 1e-10, info = paste(D, f))
    }
    expect_equal(fitted(res), fitted(ref), tolerance = 1e-10)
    expect_identical(capture.output(print(res))[1], capture.output(print(ref))[1])
  }
})

test_that("keops_kmeans() draws its starts as stats::kmeans does", {
  set.seed(186)
  x <- blobs(250, 2, 3)
  for (ns in c(1L, 4L)) {
    set.seed(7)
    res <- keops_kmeans(x, 3, nstart = ns)
    set.seed(7)
    ref <- stats::kmeans(x, 3, nstart = ns, algorithm = "Lloyd")
    expect_identical(res$cluster, ref$cluster)
    expect_equal(res$centers, ref$centers, tolerance = 1e-10)
    expect_equal(res$tot.withinss, ref$tot.withinss, tolerance = 1e-10)
  }
})

test_that("keops_kmeans() reports non-convergence as stats::kmeans", {
  set.seed(187)
  x <- blobs(301, 3, 4, sep = 1)
  c0 <- x[1:4, ]
  expect_warning(res <- keops_kmeans(x, c0, iter.max = 1), "did not converge")
  ref <- suppressWarnings(stats::kmeans(x, c0, iter.max = 1, algorithm = "Lloyd"))
  expect_identical(res$iter, ref$iter)
  expect_identical(res$ifault, 2L)
  expect_identical(res$cluster, ref$cluster)
  expect_equal(res$centers, ref$centers, tolerance = 1e-10)
  expect_equal(res$withinss, ref$withinss, tolerance = 1e-10)
})

test_that("keops_kmeans(init = \"kmeans++\") finds well-separated clusters", {
  set.seed(188)
  x <- blobs(600, 2, 4, sep = 20)
  truth <- stats::kmeans(x, 4, nstart = 20, iter.max = 50, algorithm = "Lloyd")
  res <- keops_kmeans(x, 4, init = "kmeans++", nstart = 3, iter.max = 30)
  expect_equal(res$tot.withinss, truth$tot.withinss, tolerance = 1e-10)
  expect_identical(sort(res$size), sort(truth$size))
})

test_that("keops_kmeans() checks its arguments", {
  x <- matrix(runif(40), 20, 2)
  expect_error(keops_kmeans(x, 21), "`centers`", class = "rkeops_error_arg")
  expect_error(keops_kmeans(x, x[c(1, 1), ]), "not distinct", class = "rkeops_error_arg")
  expect_error(keops_kmeans(x, matrix(1:3, 1)), "`centers`", class = "rkeops_error_shape")
  expect_error(keops_kmeans(x, 2, iter.max = 0), "`iter.max`", class = "rkeops_error_arg")
  expect_error(keops_kmeans(x, 2, init = "pam"), "`init`", class = "rkeops_error_arg")
})

matern_dense <- function(kernel, r, h) {
  switch(kernel,
    gaussian = exp(-r^2 / (2 * h^2)),
    laplace = exp(-r / h),
    matern32 = (1 + sqrt(3) * r / h) * exp(-sqrt(3) * r / h),
    matern52 = (1 + sqrt(5) * r / h + 5 * r^2 / (3 * h^2)) * exp(-sqrt(5) * r / h)
  )
}

test_that("keops_krr() and predict() match the dense solve for every kernel", {
  set.seed(189)
  N <- 143
  x <- matrix(runif(N * 2), N, 2)
  y <- cbind(sin(5 * x[, 1]) + rnorm(N, sd = 0.1), x[, 2]^2)
  new <- matrix(runif(13 * 2), 13, 2)
  h <- 0.3
  lambda <- 0.05
  for (kern in c("gaussian", "laplace", "matern32", "matern52")) {
    fit <- keops_krr(x, y, kern, bandwidth = h, lambda = lambda, tol = 1e-13,
                     maxit = 5000)
    K <- matern_dense(kern, sqrt(sqdist_mat(x, x)), h)
    alpha <- solve(K + lambda * diag(N), y)
    expect_equal(fit$alpha, alpha, tolerance = 1e-9, info = kern)
    expect_equal(fit$fitted.values, K %*% alpha, tolerance = 1e-9, info = kern)
    pred <- matern_dense(kern, sqrt(pmax(sqdist_mat(new, x), 0)), h) %*% alpha
    expect_equal(predict(fit, new), pred, tolerance = 1e-9, info = kern)
    expect_s3_class(fit, "keops_krr")
  }
  # a vector y gives vector predictions
  fit <- keops_krr(x, y[, 1], "gaussian", bandwidth = h, lambda = lambda, tol = 1e-13)
  K <- matern_dense("gaussian", sqrt(sqdist_mat(x, x)), h)
  alpha <- solve(K + lambda * diag(N), y[, 1])
  expect_equal(fit$alpha, alpha, tolerance = 1e-9)
  expect_equal(predict(fit, new[1, , drop = FALSE]),
               as.vector(matern_dense("gaussian", sqrt(sqdist_mat(new[1, , drop = FALSE], x)), h) %*% alpha),
               tolerance = 1e-9)
  expect_output(print(fit), "Kernel ridge regression")
})

test_that("keops_krr() takes a LazyTensor formula kernel", {
  set.seed(190)
  N <- 91
  x <- matrix(rnorm(N * 3), N, 3)
  y <- rnorm(N)
  fit <- keops_krr(x, y, function(a, b) 1 / (1 + sqdist(a, b)), lambda = 0.2,
                   tol = 1e-13)
  K <- 1 / (1 + sqdist_mat(x, x))
  alpha <- solve(K + 0.2 * diag(N), y)
  expect_equal(fit$alpha, alpha, tolerance = 1e-9)
  new <- matrix(rnorm(6), 2, 3)
  expect_equal(predict(fit, new), as.vector((1 / (1 + sqdist_mat(new, x))) %*% alpha),
               tolerance = 1e-9)
  expect_error(keops_krr(x, y, function(a, b) a - b, lambda = 1), "`kernel`",
               class = "rkeops_error_arg")
  expect_error(keops_krr(x, y, "gaussian", lambda = 1), "`bandwidth`",
               class = "rkeops_error_arg")
  expect_error(keops_krr(x, y, "gaussian", bandwidth = 1, lambda = 0), "`lambda`",
               class = "rkeops_error_arg")
  expect_error(keops_krr(x, y[-1], "gaussian", bandwidth = 1, lambda = 1), "`y`",
               class = "rkeops_error_shape")
  expect_error(predict(fit, matrix(1, 2, 2)), "`newdata`", class = "rkeops_error_shape")
})

test_that("solve() and keops_kmeans() report progress through progressr only", {
  skip_if_not_installed("progressr")
  set.seed(194)
  x <- blobs(211, 2, 3)
  c0 <- x[1:3, ]
  old <- options(progressr.enable = TRUE)  # off in non-interactive sessions
  on.exit(options(old))
  n <- 0L
  count <- function(expr) {
    n <<- 0L
    withCallingHandlers(expr, progression = function(c) n <<- n + 1L)
  }
  res <- count(keops_kmeans(x, c0, iter.max = 20))
  # one step per iteration (and progressr's start and finish)
  expect_gte(n, res$iter)
  K_ij <- exp(-sqdist(Vi(x), Vj(x)) / 10)
  a <- count(solve(K_ij, x[, 1], lambda = 1, precond = "none"))
  expect_gte(n, attr(a, "iterations"))
  # silent without a handler
  expect_silent(keops_kmeans(x, c0))
  expect_silent(solve(K_ij, x[, 1], lambda = 1))
})

test_that("keops_kmeans() handles an empty cluster as stats::kmeans", {
  set.seed(195)
  x <- blobs(157, 2, 2)
  c0 <- rbind(x[1:2, ], c(1e3, 1e3))
  expect_warning(res <- keops_kmeans(x, c0), "empty cluster")
  ref <- suppressWarnings(stats::kmeans(x, c0, algorithm = "Lloyd"))
  expect_identical(res$cluster, ref$cluster)
  expect_identical(res$size, ref$size)
  expect_identical(res$iter, ref$iter)
  expect_equal(res$centers, ref$centers, tolerance = 1e-10)
  expect_true(all(is.nan(res$centers[3, ])))
  expect_equal(res$withinss, ref$withinss, tolerance = 1e-10)
})
