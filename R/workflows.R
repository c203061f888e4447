# Workflows in R's own idiom: keops_knn() (FNN::get.knnx's result),
# keops_kmeans() (a stats::kmeans object) and keops_krr() (kernel ridge
# regression with predict()). Each is a few LazyTensor reductions on the
# engine; the O(N) bookkeeping around them stays in plain R.

# A numeric matrix with one row per point (a vector is one point per
# element), checked: finite, at least one row.
as_point_matrix <- function(x, name, call) {
  if (is.data.frame(x)) x <- as.matrix(x)
  if (!is.numeric(x) || length(x) == 0L) {
    rk_abort(sprintf("`%s` should be a non-empty numeric matrix (one row per point); received %s.",
                     name, data_kind(x)), "arg", call)
  }
  if (!is.matrix(x)) x <- matrix(x, ncol = 1L)
  if (!all(is.finite(x))) {
    rk_abort(sprintf("`%s` should hold only finite numbers.", name), "arg", call)
  }
  storage.mode(x) <- "double"
  x
}

# Run `expr` with 1-based index results whatever set_rkeops_options(
# index_base =) says: the helpers return R indices.
with_one_based <- function(expr) {
  o <- getOption("rkeops")
  if (is.list(o) && identical(o$index_base, 0L)) {
    on.exit(options(rkeops = o), add = TRUE)
    o$index_base <- 1L
    options(rkeops = o)
  }
  expr
}

# The dissimilarity LazyTensor of a metric between x_i and y_j, and the
# function that turns its values into the distances returned.
knn_metric <- function(metric, x, y, call) {
  if (is.function(metric)) {
    d <- metric(Vi(x), Vj(y))
    if (!inherits(d, "LazyTensor") || inherits(d, "ComplexLazyTensor") ||
        d$dimres != 1L) {
      rk_abort(paste0("`metric` should return a real LazyTensor of inner ",
                      "dimension 1 (the dissimilarity of x_i and y_j)."),
               "arg", call)
    }
    return(list(d = d, finish = identity))
  }
  if (!is.character(metric) || length(metric) != 1L || is.na(metric) ||
      !(metric %in% c("euclidean", "manhattan", "cosine"))) {
    rk_abort(paste0("`metric` should be \"euclidean\", \"manhattan\", ",
                    "\"cosine\" or a function of two LazyTensors; received ",
                    fmt_value(metric), "."), "arg", call)
  }
  switch(metric,
    euclidean = list(d = sqdist(Vi(x), Vj(y)),
                     finish = function(v) sqrt(pmax(v, 0))),
    manhattan = list(d = sum(abs(Vi(x) - Vj(y))), finish = identity),
    cosine = {
      unit <- function(m, nm) {
        r <- sqrt(rowSums(m^2))
        if (any(r == 0)) {
          rk_abort(sprintf("the cosine metric needs non-zero points; `%s` has a zero row.", nm),
                   "arg", call)
        }
        m / r
      }
      list(d = 1 - (Vi(unit(x, "query")) | Vj(unit(y, "data"))),
           finish = identity)
    }
  )
}

#' k nearest neighbours
#'
#' The `k` nearest points of `data` to each point of `query`, by brute force
#' on the engine (a `KMin_ArgKMin` reduction over the data points): the
#' result of [FNN::get.knnx()], for any dimension, in the precision and on the
#' backend of the current options ([rkeops_use_float32()],
#' [rkeops_use_gpu()]).
#'
#' Brute force does `M * N` distance evaluations, spread over every core or
#' the GPU; kd-trees (FNN, RANN) do far fewer in low dimension (say `D <= 5`)
#' and win there, while in higher dimension (`D = 50`) they degenerate to
#' brute force with more overhead. `bench/workflows.R` measures both.
#'
#' Ties between equal distances go to the smallest index first. With
#' `metric = "euclidean"` the distances are the square roots of the squared
#' distances computed by the engine (in float32, expect about 7 significant
#' digits, and less for the smallest distances).
#'
#' @param data the points searched: an `N x D` numeric matrix (a vector is
#'   `N` points of dimension 1).
#' @param query the points whose neighbours are wanted, an `M x D` matrix;
#'   by default `data` itself (each point is then its own first neighbour,
#'   as with `FNN::get.knnx(data, data, k)`).
#' @param k the number of neighbours, `1 <= k <= N`.
#' @param metric `"euclidean"` (default), `"manhattan"`, `"cosine"`
#'   (`1 - cos` of the angle between the points) or a function of two
#'   LazyTensors `x_i` (a query point) and `y_j` (a data point) returning
#'   their dissimilarity, a LazyTensor of inner dimension 1, such as
#'   `function(x, y) sum(abs(x - y)^3)`.
#' @return A list, as [FNN::get.knnx()] returns: `nn.index`, the integer
#'   matrix (`M x k`) of 1-based row numbers of `data`, nearest first, and
#'   `nn.dist`, the matrix (`M x k`) of their distances (not squared).
#' @seealso [argKmin()], [Kmin_argKmin()] for the reductions themselves.
#' @examples
#' set.seed(1)
#' data <- matrix(rnorm(2000), 1000, 2)
#' query <- matrix(rnorm(20), 10, 2)
#' nn <- keops_knn(data, query, k = 5)
#' nn$nn.index[1, ]
#' # the same as FNN's kd-tree
#' if (requireNamespace("FNN", quietly = TRUE)) {
#'   identical(nn$nn.index, FNN::get.knnx(data, query, k = 5)$nn.index)
#' }
#' @export
keops_knn <- function(data, query = data, k, metric = "euclidean") {
  call <- sys.call()
  data <- as_point_matrix(data, "data", call)
  query <- as_point_matrix(query, "query", call)
  if (ncol(query) != ncol(data)) {
    rk_abort(sprintf("`query` should have the %d columns of `data`; received %d.",
                     ncol(data), ncol(query)), "shape", call)
  }
  if (missing(k) || !is_whole_number(k) || k < 1 || k > nrow(data)) {
    rk_abort(sprintf("`k` should be a whole number between 1 and nrow(data) = %d; received %s.",
                     nrow(data), if (missing(k)) "nothing" else fmt_value(k)),
             "arg", call)
  }
  k <- as.integer(k)
  m <- knn_metric(metric, query, data, call)
  res <- with_one_based(Kmin_argKmin(m$d, K = k, index = "j"))
  dist <- matrix(m$finish(res[[1L]]), nrow(query), k)
  idx <- matrix(as.integer(res[[2L]]), nrow(query), k)
  list(nn.index = idx, nn.dist = dist)
}

#' k-means clustering on the engine
#'
#' Lloyd's algorithm, as `stats::kmeans(algorithm = "Lloyd")`, with the
#' assignment step (each point to its nearest centre, an `ArgMin` reduction
#' over the centres) on the engine, so that it runs on every core or the
#' GPU; the centre update (the mean of each cluster) is a single pass over
#' the points in R ([rowsum()]). The result is a `kmeans` object with every
#' field [stats::kmeans()] fills, so `print()`, `fitted()` and code written
#' for `stats::kmeans` work unchanged.
#'
#' From the same initial centres and in float64 the clusters, centres and
#' sums of squares are those of `stats::kmeans(x, centers, algorithm =
#' "Lloyd")` (up to rounding, on data without near-ties of distances).
#' With `centers` a number and `init = "random"`, the initial centres are
#' drawn as `stats::kmeans` draws them, so the same seed gives the same
#' result. Ties between equally near centres go to the first, as in
#' `stats::kmeans`.
#'
#' @param x the points: an `N x D` numeric matrix (or a vector, `D = 1`).
#' @param centers the number of clusters `k`, or a `k x D` matrix of
#'   distinct initial centres.
#' @param iter.max the most Lloyd iterations.
#' @param nstart with `centers` a number, how many random starts (from
#'   distinct points) to run; the one of least total within sum of squares
#'   is returned.
#' @param init with `centers` a number, how the initial centres are chosen:
#'   `"random"` (distinct points of `x`, as `stats::kmeans`) or
#'   `"kmeans++"` (each next centre drawn with a probability proportional
#'   to the squared distance to the nearest centre chosen, Arthur and
#'   Vassilvitskii 2007).
#' Progress (one step per iteration) is reported through the progressr
#' package when it is installed and a handler is set
#' (`progressr::with_progress(keops_kmeans(x, 100))`); silent otherwise.
#'
#' @return An object of class `kmeans` (see [stats::kmeans()]): `cluster`,
#'   `centers`, `totss`, `withinss`, `tot.withinss`, `betweenss`, `size`,
#'   `iter` and `ifault` (`NULL`, or `2` when `iter.max` did not suffice,
#'   with a warning).
#' @seealso [stats::kmeans()]
#' @examples
#' set.seed(2)
#' x <- rbind(matrix(rnorm(200, 0), 100), matrix(rnorm(200, 5), 100))
#' cl <- keops_kmeans(x, x[c(1, 150), ])
#' cl$size
#' all.equal(cl$centers, stats::kmeans(x, x[c(1, 150), ],
#'                                     algorithm = "Lloyd")$centers)
#' @export
keops_kmeans <- function(x, centers, iter.max = 10L, nstart = 1L,
                         init = c("random", "kmeans++")) {
  call <- sys.call()
  x <- as_point_matrix(x, "x", call)
  m <- nrow(x)
  if (!is_whole_number(iter.max) || iter.max < 1) {
    rk_abort(sprintf("`iter.max` should be a positive whole number; received %s.",
                     fmt_value(iter.max)), "arg", call)
  }
  if (!is_whole_number(nstart) || nstart < 1) {
    rk_abort(sprintf("`nstart` should be a positive whole number; received %s.",
                     fmt_value(nstart)), "arg", call)
  }
  if (!is.character(init) || anyNA(init) ||
      !all(init %in% c("random", "kmeans++"))) {
    rk_abort(sprintf("`init` should be \"random\" or \"kmeans++\"; received %s.",
                     fmt_value(init)), "arg", call)
  }
  init <- init[1L]
  iter.max <- as.integer(iter.max)
  if (missing(centers)) {
    rk_abort("`centers` should be a number of clusters or a matrix of centres.",
             "arg", call)
  }
  draw <- NULL
  if (length(centers) == 1L) {
    k <- centers
    if (!is_whole_number(k) || k < 1 || k > m) {
      rk_abort(sprintf("`centers` should be a whole number between 1 and nrow(x) = %d, or a matrix; received %s.",
                       m, fmt_value(centers)), "arg", call)
    }
    k <- as.integer(k)
    cn <- x
    if (nstart >= 2L || init == "kmeans++") cn <- unique(x)
    if (nrow(cn) < k) {
      rk_abort("`centers`: more cluster centers than distinct data points.", "arg", call)
    }
    draw <- function() {
      if (init == "kmeans++") return(kmeanspp(cn, k))
      cn[sample.int(nrow(cn), k), , drop = FALSE]
    }
    # stats::kmeans draws again from the distinct points on duplicates
    centers <- draw()
    if (init == "random" && nstart == 1L && anyDuplicated(centers)) {
      cn <- unique(x)
      if (nrow(cn) < k) {
        rk_abort("`centers`: more cluster centers than distinct data points.", "arg", call)
      }
      centers <- draw()
    }
  } else {
    centers <- as_point_matrix(centers, "centers", call)
    if (ncol(centers) != ncol(x)) {
      rk_abort(sprintf("`centers` should have the %d columns of `x`; received %d.",
                       ncol(x), ncol(centers)), "shape", call)
    }
    if (anyDuplicated(centers)) {
      rk_abort("`centers`: initial centers are not distinct.", "arg", call)
    }
    if (nrow(centers) > m) {
      rk_abort("`centers`: more cluster centers than data points.", "arg", call)
    }
    nstart <- 1L
  }
  progress <- rk_progressor(iter.max * nstart, "keops_kmeans")
  z <- with_one_based(lloyd(x, centers, iter.max, progress))
  if (nstart >= 2L) {
    for (s in 2:nstart) {
      zz <- with_one_based(lloyd(x, draw(), iter.max, progress))
      if (sum(zz$wss) < sum(z$wss)) z <- zz
    }
  }
  kmeans_object(x, z, iter.max)
}

# k-means++ seeding among the rows of x.
kmeanspp <- function(x, k) {
  m <- nrow(x)
  idx <- integer(k)
  idx[1L] <- sample.int(m, 1L)
  d2 <- rowSums(sweep(x, 2L, x[idx[1L], ])^2)
  if (k >= 2L) {
    for (l in 2:k) {
      # the chosen points have d2 = 0 and are never drawn again
      idx[l] <- sample.int(m, 1L, prob = d2)
      d2 <- pmin(d2, rowSums(sweep(x, 2L, x[idx[l], ])^2))
    }
  }
  x[idx, , drop = FALSE]
}

# Lloyd's iterations from `centers`, as C_kmeans_Lloyd of stats does them:
# assign, stop if no point moved, else move the centres to the means.
lloyd <- function(x, centers, iter.max, progress = function(...) NULL) {
  k <- nrow(centers)
  cl <- rep(NA_integer_, nrow(x))
  x_i <- Vi(x)
  iter <- 0L
  repeat {
    iter <- iter + 1L
    if (iter <= iter.max) progress()
    # an empty cluster's centre is NaN (as in stats::kmeans), and no point
    # goes to it: Inf keeps it out of the ArgMin (a NaN would win it)
    cen <- centers
    cen[is.nan(cen)] <- Inf
    new <- as.integer(argmin(sqdist(x_i, Vj(cen)), index = "j"))
    if (identical(new, cl)) break
    cl <- new
    centers <- cluster_means(x, cl, k)
    # not converged: stats::kmeans reports iter.max + 1
    if (iter == iter.max) {
      iter <- iter + 1L
      break
    }
  }
  nc <- tabulate(cl, k)
  diff <- x - centers[cl, , drop = FALSE]
  wss <- as.vector(cluster_sums(matrix(rowSums(diff^2)), cl, k))
  list(centers = centers, cluster = cl, iter = iter, nc = nc, wss = wss)
}

# Sums of the rows of x by cluster, k rows (0 for an empty cluster; rowsum()
# has rows only for the clusters present), summed in the order of the
# points as stats::kmeans does.
cluster_sums <- function(x, cl, k) {
  s <- matrix(0, k, ncol(x))
  r <- rowsum(x, cl, reorder = TRUE)
  s[as.integer(rownames(r)), ] <- r
  s
}

# Means of the clusters (NaN for an empty one, as stats::kmeans).
cluster_means <- function(x, cl, k) {
  cluster_sums(x, cl, k) / tabulate(cl, k)
}

kmeans_object <- function(x, z, iter.max) {
  k <- nrow(z$centers)
  if (any(z$nc == 0L)) {
    warning("empty cluster: try a better set of initial centers", call. = FALSE)
  }
  ifault <- NULL
  if (z$iter > iter.max) {
    warning(sprintf(ngettext(iter.max, "did not converge in %d iteration",
                             "did not converge in %d iterations"), iter.max),
            call. = FALSE, domain = NA)
    ifault <- 2L
  }
  centers <- matrix(z$centers, k)
  dimnames(centers) <- list(1L:k, dimnames(x)[[2L]])
  cluster <- z$cluster
  if (!is.null(rn <- rownames(x))) names(cluster) <- rn
  totss <- sum(scale(x, scale = FALSE)^2)
  best <- sum(z$wss)
  structure(list(cluster = cluster, centers = centers, totss = totss,
                 withinss = z$wss, tot.withinss = best,
                 betweenss = totss - best, size = z$nc, iter = z$iter,
                 ifault = ifault),
            class = "kmeans")
}

# The kernel of keops_krr() as a function of two LazyTensors.
krr_kernel <- function(kernel, bandwidth, call) {
  if (is.function(kernel)) return(kernel)
  if (!is.character(kernel) || anyNA(kernel) ||
      !all(kernel %in% krr_kernels)) {
    rk_abort(sprintf(paste0("`kernel` should be one of %s or a function of ",
                            "two LazyTensors; received %s."),
                     paste0("\"", krr_kernels, "\"", collapse = ", "),
                     fmt_value(kernel)), "arg", call)
  }
  if (missing(bandwidth) || !is.numeric(bandwidth) || length(bandwidth) != 1L ||
      !is.finite(bandwidth) || bandwidth <= 0) {
    rk_abort(sprintf("`bandwidth` should be a positive number; received %s.",
                     if (missing(bandwidth)) "nothing" else fmt_value(bandwidth)),
             "arg", call)
  }
  h <- bandwidth
  switch(kernel[1L],
    gaussian = function(x, y) exp(-sqdist(x, y) / (2 * h^2)),
    laplace = function(x, y) exp(-sqrt(sqdist(x, y)) / h),
    matern32 = function(x, y) {
      r <- sqrt(sqdist(x, y)) * (sqrt(3) / h)
      (1 + r) * exp(-r)
    },
    matern52 = function(x, y) {
      r <- sqrt(sqdist(x, y)) * (sqrt(5) / h)
      (1 + r + r^2 / 3) * exp(-r)
    }
  )
}
krr_kernels <- c("gaussian", "laplace", "matern32", "matern52")

# The kernel LazyTensor of points x_i, y_j, checked.
krr_lazy <- function(kfun, x, y, call) {
  K <- kfun(Vi(x), Vj(y))
  if (!inherits(K, "LazyTensor") || inherits(K, "ComplexLazyTensor") ||
      K$dimres != 1L) {
    rk_abort(paste0("`kernel` should return a real LazyTensor of inner ",
                    "dimension 1 (the kernel of x_i and y_j)."), "arg", call)
  }
  K
}

#' Kernel ridge regression
#'
#' Fits \eqn{f(x) = \sum_j k(x, x_j)\, \alpha_j} with
#' \eqn{(K + \lambda I)\,\alpha = y}, \eqn{K_{ij} = k(x_i, x_j)}: kernel
#' ridge regression, which is also the posterior mean of a Gaussian process
#' of covariance \eqn{k} with noise variance \eqn{\lambda}. The system is
#' solved by [solve.LazyTensor()] (preconditioned conjugate gradient), and
#' predictions are one kernel reduction: neither the `N x N` nor the
#' `M x N` kernel matrix is ever formed.
#'
#' With \eqn{r = |x - y|} and \eqn{h} the bandwidth, the kernels are
#' `"gaussian"` \eqn{\exp(-r^2 / (2 h^2))}, `"laplace"` \eqn{\exp(-r/h)},
#' `"matern32"` \eqn{(1 + \sqrt{3} r/h) \exp(-\sqrt{3} r/h)} and
#' `"matern52"` \eqn{(1 + \sqrt{5} r/h + 5 r^2 / (3 h^2))
#' \exp(-\sqrt{5} r/h)}. Any other kernel is a function of two LazyTensors
#' `x_i`, `y_j` returning a LazyTensor of inner dimension 1 (it must be
#' positive definite), e.g. `function(x, y) 1 / (1 + sqdist(x, y))`.
#'
#' @param x the training points, an `N x D` numeric matrix (or a vector).
#' @param y the responses: a vector of length `N` or an `N x P` matrix.
#' @param kernel one of `"gaussian"`, `"laplace"`, `"matern32"`,
#'   `"matern52"`, or a function of two LazyTensors (see Details).
#' @param bandwidth the bandwidth \eqn{h > 0} of the named kernels (unused
#'   for a function).
#' @param lambda the ridge \eqn{\lambda > 0}.
#' @param ... passed to [solve.LazyTensor()]: `tol`, `maxit`, `precond`,
#'   `rank`, `ranges`.
#' @return An object of class `keops_krr`: a list with `x`, `alpha` (the
#'   coefficients, of the shape of `y`), `fitted.values`, `residuals`,
#'   `kernel`, `bandwidth`, `lambda`, `iterations` (of the conjugate
#'   gradient) and `call`. [predict.keops_krr()] predicts at new points.
#' @seealso [solve.LazyTensor()], [predict.keops_krr()]
#' @examples
#' set.seed(3)
#' x <- matrix(runif(400), 200, 2)
#' y <- sin(6 * x[, 1]) + cos(4 * x[, 2]) + rnorm(200, sd = 0.1)
#' fit <- keops_krr(x, y, "matern52", bandwidth = 0.3, lambda = 0.01)
#' fit
#' new <- matrix(runif(10), 5, 2)
#' predict(fit, new)
#' @export
keops_krr <- function(x, y, kernel = c("gaussian", "laplace", "matern32", "matern52"),
                      bandwidth, lambda, ...) {
  call <- sys.call()
  x <- as_point_matrix(x, "x", call)
  if (is.data.frame(y)) y <- as.matrix(y)
  if (!is.numeric(y) || !all(is.finite(y)) ||
      NROW(y) != nrow(x) || (!is.null(dim(y)) && length(dim(y)) != 2L)) {
    rk_abort(sprintf("`y` should be a finite numeric vector of length nrow(x) = %d or a matrix of %d rows.",
                     nrow(x), nrow(x)), "shape", call)
  }
  if (missing(lambda) || !is.numeric(lambda) || length(lambda) != 1L ||
      !is.finite(lambda) || lambda <= 0) {
    rk_abort(sprintf("`lambda` should be a positive number; received %s.",
                     if (missing(lambda)) "nothing" else fmt_value(lambda)),
             "arg", call)
  }
  kname <- if (is.function(kernel)) "user" else kernel[1L]
  kfun <- krr_kernel(kernel, bandwidth, call)
  K <- krr_lazy(kfun, x, x, call)
  alpha <- solve(K, y, lambda = lambda, ...)
  iters <- attr(alpha, "iterations")
  alpha <- as.vector(alpha)
  if (is.matrix(y)) {
    alpha <- matrix(alpha, nrow(y), ncol(y))
    colnames(alpha) <- colnames(y)
  }
  # K alpha = y - lambda alpha
  fitted <- y - lambda * alpha
  structure(list(x = x, alpha = alpha, fitted.values = fitted,
                 residuals = y - fitted, kernel = kname,
                 kernel_fun = kfun, bandwidth = if (is.function(kernel)) NULL else bandwidth,
                 lambda = lambda, iterations = iters, call = match.call()),
            class = "keops_krr")
}

#' Predictions of a kernel ridge regression
#'
#' @param object a `keops_krr` fit from [keops_krr()].
#' @param newdata the points where to predict, an `M x D` matrix with the
#'   columns of the training points; if missing, the fitted values.
#' @param ... not used.
#' @return A vector of length `M` (a matrix with one column per response
#'   when `y` was a matrix): \eqn{\sum_j k(x_{new}, x_j) \alpha_j}.
#' @seealso [keops_krr()]
#' @importFrom stats predict
#' @export
predict.keops_krr <- function(object, newdata, ...) {
  call <- sys.call()
  if (missing(newdata) || is.null(newdata)) return(object$fitted.values)
  newdata <- as_point_matrix(newdata, "newdata", call)
  if (ncol(newdata) != ncol(object$x)) {
    rk_abort(sprintf("`newdata` should have the %d columns of the training points; received %d.",
                     ncol(object$x), ncol(newdata)), "shape", call)
  }
  K <- krr_lazy(object$kernel_fun, newdata, object$x, call)
  a <- as.matrix(object$alpha)
  out <- sum(K * Vj(a), index = "j")
  if (is.matrix(object$alpha)) {
    rownames(out) <- rownames(newdata)
    colnames(out) <- colnames(object$alpha)
    out
  } else {
    as.vector(out)
  }
}

#' @rdname predict.keops_krr
#' @param x a `keops_krr` fit.
#' @export
print.keops_krr <- function(x, ...) {
  cat("Kernel ridge regression (rkeops)\n")
  cat(sprintf("  %d points of dimension %d, %d response(s)\n", nrow(x$x),
              ncol(x$x), NCOL(x$alpha)))
  kern <- if (is.null(x$bandwidth)) x$kernel else
    sprintf("%s, bandwidth %s", x$kernel, format(x$bandwidth))
  cat(sprintf("  kernel: %s; lambda %s\n", kern, format(x$lambda)))
  cat(sprintf("  conjugate gradient iterations: %s\n", format(x$iterations)))
  cat(sprintf("  residual sum of squares: %s\n", format(sum(x$residuals^2))))
  invisible(x)
}
