# Block-sparse reductions: clusters of i and j points, the pairs of
# clusters that can hold a pair closer than a cut-off, and the engine's
# ranges (rk_run_ranges, src/engine/run.c) built from them. The points are
# sorted by cluster internally; reductions take the sorted data and give
# back the results in the user's row order.

#' Block-sparse ranges: skip the pairs of far-away points
#'
#' Clusters the `x` (index `i`) and `y` (index `j`) points, sorts them by
#' cluster, and keeps the pairs of clusters \eqn{(I, J)} whose centroids are
#' closer than `cutoff` plus their radii (the largest distance from a
#' centroid to a point of its cluster). By the triangle inequality **every
#' pair of points closer than `cutoff` is in a kept pair of clusters**: a
#' reduction run with these ranges (the `ranges` argument of the reductions,
#' of [keops_kernel()] operators and of [solve.LazyTensor()]) is exact for
#' formulas that vanish beyond the cut-off, and leaves out only terms of
#' pairs farther apart than `cutoff` otherwise: with a Gaussian kernel
#' \eqn{\exp(-|x - y|^2 / (2\sigma^2))} and `cutoff = 10 * sigma`, each
#' dropped term is below \eqn{e^{-50} \approx 2\times 10^{-22}}.
#'
#' The engine then runs, for each block of `i` rows (a cluster), only the
#' ranges of `j` indices of its kept clusters, and likewise for reductions
#' over `i`. The permutation is internal: results come back in the original
#' row order, and indices (`argmin()`, `argKmin()`...) refer to the original
#' rows. Under [rkeops_use_future()], reductions with ranges run in the
#' calling process.
#'
#' Clustering: `"grid"` (the default in dimension 3 or less) cuts space into
#' cubic cells of side `cell` (default `cutoff / 2`); `"kmeans"` (the default
#' above dimension 3) runs a few Lloyd iterations of k-means with
#' `nclusters` centers (default about \eqn{\sqrt{n}}), assignments computed
#' by rkeops itself. Ranges pay off when the cut-off is small against the
#' extent of the data: `print()` gives the fraction of pairs kept, and
#' `plot()` shows the kept pairs of clusters.
#'
#' Users who already hold PyKeOps-style ranges for sorted data may pass them
#' instead, as a list of six integer matrices `list(ranges_i, slices_i,
#' redranges_j, ranges_j, slices_j, redranges_i)` (0-based, half-open, as in
#' PyKeOps; the last three are needed only by reductions over `i`); see
#' [as_keops_ranges()].
#'
#' @param x the `i` points: a numeric matrix with one row per point (or a
#'   vector: points in dimension 1).
#' @param y the `j` points, with as many columns as `x`; by default `x`.
#' @param cutoff the distance below which every pair is kept: a positive
#'   number.
#' @param method `"grid"` or `"kmeans"` (see Details).
#' @param cell side of the grid cells (method `"grid"`); default `cutoff / 2`.
#' @param nclusters number of k-means clusters of each point set (method
#'   `"kmeans"`); default `ceiling(sqrt(n))`, at most 2000.
#' @return An object of class `keops_ranges`: a list with the permutations
#'   `perm_i` and `perm_j` (row `s` of the sorted data is row `perm_i[s]` of
#'   `x`), the cluster of every point (`cluster_i`, `cluster_j`), the sizes
#'   `M` and `N`, the ranges for reductions over `j` (`i`) and over `i`
#'   (`j`) in the engine's format, the kept pairs of clusters (`pairs`, a
#'   two-column matrix) and the fraction of point pairs kept (`kept`).
#' @seealso [solve.LazyTensor()], [as_keops_ranges()]
#' @examples
#' set.seed(1)
#' x <- matrix(runif(3000), 1000, 3)
#' b <- matrix(rnorm(1000), 1000, 1)
#' sigma <- 0.05
#' rg <- keops_ranges(x, cutoff = 6 * sigma)
#' rg
#' K_ij <- exp(-sqdist(Vi(x), Vj(x)) / (2 * sigma^2))
#' a1 <- sum(K_ij * Vj(b), index = "j", ranges = rg)
#' a2 <- sum(K_ij * Vj(b), index = "j")
#' max(abs(a1 - a2)) / max(abs(a2))
#' @export
keops_ranges <- function(x, y = x, cutoff, method = NULL, cell = NULL,
                         nclusters = NULL) {
  call <- sys.call()
  x <- as_points(x, "x", call)
  y <- as_points(y, "y", call)
  if (ncol(x) != ncol(y)) {
    rk_abort(sprintf(paste0("`x` and `y` should have the same number of ",
                            "columns; received %d and %d."), ncol(x), ncol(y)),
             "shape", call)
  }
  if (missing(cutoff) || !is.numeric(cutoff) || length(cutoff) != 1L ||
      is.na(cutoff) || cutoff <= 0 || !is.finite(cutoff)) {
    rk_abort(paste0("`cutoff` should be a positive number; received ",
                    if (missing(cutoff)) "nothing" else fmt_value(cutoff), "."),
             "arg", call)
  }
  D <- ncol(x)
  if (is.null(method)) method <- if (D <= 3L) "grid" else "kmeans"
  if (!is.character(method) || length(method) != 1L ||
      !(method %in% c("grid", "kmeans"))) {
    rk_abort(paste0("`method` should be \"grid\" or \"kmeans\"; received ",
                    fmt_value(method), "."), "arg", call)
  }
  same <- identical(x, y)
  if (method == "grid") {
    if (is.null(cell)) cell <- cutoff / 2
    if (!is.numeric(cell) || length(cell) != 1L || is.na(cell) || cell <= 0 ||
        !is.finite(cell)) {
      rk_abort(paste0("`cell` should be a positive number; received ",
                      fmt_value(cell), "."), "arg", call)
    }
    # one grid for both sets: the same origin and the same cell numbering
    origin <- pmin(apply(x, 2L, min), apply(y, 2L, min))
    top <- pmax(apply(x, 2L, max), apply(y, 2L, max))
    span <- floor((top - origin) / cell) + 1
    cx <- grid_clusters(x, origin, cell, span)
    cy <- if (same) cx else grid_clusters(y, origin, cell, span)
  } else {
    nc <- function(n) {
      if (is.null(nclusters)) min(2000L, as.integer(ceiling(sqrt(n))))
      else min(as.integer(nclusters), n)
    }
    if (!is.null(nclusters) && (!is_whole_number(nclusters) ||
                                length(nclusters) != 1L || nclusters < 1)) {
      rk_abort(paste0("`nclusters` should be a positive whole number; ",
                      "received ", fmt_value(nclusters), "."), "arg", call)
    }
    cx <- kmeans_clusters(x, nc(nrow(x)))
    cy <- if (same) cx else kmeans_clusters(y, nc(nrow(y)))
  }
  pairs <- if (method == "grid" && !is.null(cx$cell)) {
    grid_pairs(cx, cy, cutoff, cell)
  } else {
    all_pairs(cx, cy, cutoff)
  }
  new_keops_ranges(cx, cy, pairs, cutoff, method)
}

as_points <- function(x, name, call) {
  if (is.numeric(x) && is.null(dim(x))) x <- matrix(x, ncol = 1L)
  if (!is.numeric(x) || !is.matrix(x) || nrow(x) < 1L || ncol(x) < 1L ||
      anyNA(x) || any(!is.finite(x))) {
    rk_abort(paste0("`", name, "` should be a numeric matrix of finite ",
                    "values with one row per point; received ",
                    fmt_value(x), "."), "arg", call)
  }
  storage.mode(x) <- "double"
  x
}

# Clusters as the sorting needs them: the cluster of each point (1..nc, in
# sorted order), centroids (nc x D), radii, sizes.
cluster_summary <- function(x, label, key = NULL) {
  ord <- order(label)
  sizes <- tabulate(label, max(label))
  D <- ncol(x)
  cent <- matrix(0, length(sizes), D)
  for (d in seq_len(D)) cent[, d] <- rowsum(x[, d], label, reorder = TRUE)[, 1L] / sizes
  dev <- rowSums((x - cent[label, , drop = FALSE])^2)
  rad <- sqrt(vapply(split(dev, label), max, 0))
  list(label = label, perm = ord, sizes = sizes, centers = cent,
       radii = unname(rad), key = key)
}

# Grid cells of side `cell`: the cell of each point as integer coordinates,
# clusters numbered in lexicographic order of the cells (the last
# coordinate varies fastest, so that cells next to each other along it are
# next to each other in the sorted order).
grid_clusters <- function(x, origin, cell, span) {
  g <- floor(sweep(x, 2L, origin) / cell)
  g[g < 0] <- 0
  g <- pmin(g, matrix(span - 1, nrow(g), ncol(g), byrow = TRUE))
  D <- ncol(x)
  if (prod(span) > 2^52) {
    # too many cells for one number: order by the coordinates themselves
    key <- NULL
    o <- do.call(order, lapply(seq_len(D), function(d) g[, d]))
    gs <- g[o, , drop = FALSE]
    new <- c(TRUE, rowSums(gs[-1L, , drop = FALSE] != gs[-nrow(gs), , drop = FALSE]) > 0)
    lab <- integer(nrow(x))
    lab[o] <- cumsum(new)
    s <- cluster_summary(x, lab)
    s$cell <- NULL
    return(s)
  }
  mult <- rev(cumprod(rev(c(span[-1L], 1))))
  code <- as.vector(g %*% mult)
  ucode <- sort(unique(code))
  lab <- match(code, ucode)
  s <- cluster_summary(x, lab)
  # integer coordinates of each cluster's cell
  cc <- matrix(0, length(ucode), D)
  rem <- ucode
  for (d in seq_len(D)) {
    cc[, d] <- rem %/% mult[d]
    rem <- rem %% mult[d]
  }
  s$cell <- cc
  s$mult <- mult
  s$span <- span
  s
}

# A few Lloyd iterations, assignments by rkeops' ArgMin; centers start at
# evenly spaced points of the data (no random numbers drawn).
kmeans_clusters <- function(x, k, iter = 10L) {
  n <- nrow(x)
  cent <- x[unique(round(seq(1, n, length.out = k))), , drop = FALSE]
  lab <- rep(1L, n)
  for (it in seq_len(iter)) {
    a <- as.integer(with_one_based(argmin(sqdist(Vi(x), Vj(cent)), index = "j")))
    if (it > 1L && identical(a, lab)) break
    lab <- a
    sizes <- tabulate(lab, nrow(cent))
    keep <- sizes > 0
    s <- rowsum(x, lab, reorder = TRUE)
    cent <- s / sizes[keep]
  }
  # clusters numbered 1..nc without empty ones
  lab <- match(lab, sort(unique(lab)))
  cluster_summary(x, lab)
}

# Kept pairs of clusters among all pairs: |c_I - c_J| - r_I - r_J <= cutoff.
all_pairs <- function(cx, cy, cutoff) {
  ni <- length(cx$sizes)
  nj <- length(cy$sizes)
  # by blocks of i clusters, so that no ni x nj matrix is formed at once
  step <- max(1L, floor(4e6 / nj))
  res <- list()
  for (a in seq(1L, ni, by = step)) {
    idx <- a:min(ni, a + step - 1L)
    d2 <- outer(rowSums(cx$centers[idx, , drop = FALSE]^2), rowSums(cy$centers^2), "+") -
      2 * cx$centers[idx, , drop = FALSE] %*% t(cy$centers)
    d <- sqrt(pmax(d2, 0))
    keep <- which(d - outer(cx$radii[idx], cy$radii, "+") <= cutoff * (1 + 1e-12),
                  arr.ind = TRUE)
    res[[length(res) + 1L]] <- cbind(idx[keep[, 1L]], keep[, 2L])
  }
  p <- do.call(rbind, res)
  p[order(p[, 1L], p[, 2L]), , drop = FALSE]
}

# Kept pairs of grid cells: candidates at cell offsets that can be within
# reach, then the same test as all_pairs().
grid_pairs <- function(cx, cy, cutoff, cell) {
  D <- ncol(cx$cell)
  reach <- ceiling(cutoff / cell) + 1L
  off <- as.matrix(expand.grid(rep(list(-reach:reach), D)))
  if (nrow(off) * length(cx$sizes) > 5e7) return(all_pairs(cx, cy, cutoff))
  ycode <- as.vector(cy$cell %*% cx$mult)
  res <- list()
  for (o in seq_len(nrow(off))) {
    nb <- sweep(cx$cell, 2L, off[o, ], "+")
    ok <- rowSums(nb < 0) == 0 & rowSums(sweep(nb, 2L, cx$span) >= 0) == 0
    if (!any(ok)) next
    I <- which(ok)
    J <- match(as.vector(nb[ok, , drop = FALSE] %*% cx$mult), ycode)
    hit <- !is.na(J)
    if (any(hit)) res[[length(res) + 1L]] <- cbind(I[hit], J[hit])
  }
  p <- do.call(rbind, res)
  if (is.null(p)) p <- matrix(0L, 0L, 2L)
  d <- sqrt(rowSums((cx$centers[p[, 1L], , drop = FALSE] -
                       cy$centers[p[, 2L], , drop = FALSE])^2))
  p <- p[d - cx$radii[p[, 1L]] - cy$radii[p[, 2L]] <= cutoff * (1 + 1e-12), ,
         drop = FALSE]
  p[order(p[, 1L], p[, 2L]), , drop = FALSE]
}

# The engine's ranges for output clusters `out` (rows of pairs[, 1]) and
# reduced clusters `red` (pairs[, 2], sorted within each output cluster):
# adjacent reduced clusters merge into one range.
engine_ranges <- function(pairs, out_sizes, red_sizes) {
  ostart <- c(0L, cumsum(out_sizes))
  rstart <- c(0L, cumsum(red_sizes))
  nb <- length(out_sizes)
  I <- pairs[, 1L]
  J <- pairs[, 2L]
  n <- length(I)
  new <- if (n) c(TRUE, I[-1L] != I[-n] | J[-1L] != J[-n] + 1L) else logical()
  run <- cumsum(new)
  first <- J[new]
  last <- J[c(which(new)[-1L] - 1L, n)[seq_len(sum(new))]]
  red <- cbind(as.integer(rstart[first]), as.integer(rstart[last + 1L]))
  blk_of_range <- I[new]
  slices <- as.integer(cumsum(tabulate(blk_of_range, nb)))
  blocks <- cbind(as.integer(ostart[-(nb + 1L)]), as.integer(ostart[-1L]))
  if (!length(red)) red <- matrix(0L, 0L, 2L)
  list(blocks = blocks, slices = slices, red = red)
}

new_keops_ranges <- function(cx, cy, pairs, cutoff, method) {
  storage.mode(pairs) <- "integer"
  tp <- pairs[order(pairs[, 2L], pairs[, 1L]), 2:1, drop = FALSE]
  M <- length(cx$label)
  N <- length(cy$label)
  kept <- sum(as.numeric(cx$sizes[pairs[, 1L]]) * cy$sizes[pairs[, 2L]]) /
    (as.numeric(M) * N)
  structure(list(
    perm_i = cx$perm, perm_j = cy$perm, M = M, N = N,
    cluster_i = cx$label, cluster_j = cy$label,
    i = engine_ranges(pairs, cx$sizes, cy$sizes),
    j = engine_ranges(tp, cy$sizes, cx$sizes),
    pairs = pairs, nclusters = c(length(cx$sizes), length(cy$sizes)),
    kept = kept, cutoff = cutoff, method = method
  ), class = "keops_ranges")
}

#' PyKeOps-style ranges for data already sorted
#'
#' Wraps ranges in the format of PyKeOps (KeOps' `ranges` argument) into a
#' `keops_ranges` object, for data already sorted by cluster: no
#' permutation is applied. All indices are 0-based and ranges half-open:
#' row `b` of `ranges_i` is the block of rows `[start, end)`, `slices_i[b]`
#' is the end (exclusive, cumulative) of its ranges in `redranges_j`, whose
#' rows are ranges `[start, end)` of the reduced index `j`. The `_j` triple
#' is the same for reductions over `i`; without it such reductions refuse
#' these ranges.
#'
#' @param ranges_i,slices_i,redranges_j blocks of `i`, their slices, and the
#'   ranges of `j` (reductions over `j`): integer matrices with two columns
#'   (`slices_i` a vector).
#' @param ranges_j,slices_j,redranges_i the same for reductions over `i`, or
#'   `NULL`.
#' @param M,N the numbers of `i` and `j` rows of the data.
#' @return A `keops_ranges` object (see [keops_ranges()]).
#' @examples
#' # 4 points in two clusters of 2; each cluster sees only itself
#' rg <- as_keops_ranges(rbind(c(0, 2), c(2, 4)), c(1, 2),
#'                       rbind(c(0, 2), c(2, 4)), M = 4, N = 4)
#' x <- matrix(c(0, 0.1, 5, 5.1), 4, 1)
#' sum(Vi(x) - Vj(x), index = "j", ranges = rg)
#' @export
as_keops_ranges <- function(ranges_i, slices_i, redranges_j, ranges_j = NULL,
                            slices_j = NULL, redranges_i = NULL, M, N) {
  call <- sys.call()
  if (missing(M) || missing(N) || !is_whole_number(M) || !is_whole_number(N) ||
      length(M) != 1L || length(N) != 1L || M < 1 || N < 1) {
    rk_abort("`M` and `N` should be the numbers of i and j rows (positive whole numbers).",
             "arg", call)
  }
  one <- function(r, s, red, nout, nred, names) {
    r <- as_range_matrix(r, names[1L], call)
    red <- as_range_matrix(red, names[3L], call)
    if (!is.numeric(s) || anyNA(s) || !all(s == round(s)) ||
        length(s) != nrow(r)) {
      rk_abort(sprintf(paste0("`%s` should be a vector of whole numbers, one per ",
                              "row of `%s`."), names[2L], names[1L]), "arg", call)
    }
    if (any(r < 0) || any(r > nout) || any(red < 0) || any(red > nred) ||
        any(r[, 2L] < r[, 1L]) || any(red[, 2L] < red[, 1L])) {
      rk_abort(sprintf(paste0("`%s` and `%s` should hold 0-based half-open ",
                              "ranges [start, end) within the data."),
                       names[1L], names[3L]), "arg", call)
    }
    list(blocks = r, slices = as.integer(s), red = red)
  }
  ri <- one(ranges_i, slices_i, redranges_j, M, N,
            c("ranges_i", "slices_i", "redranges_j"))
  rj <- if (!is.null(ranges_j)) {
    one(ranges_j, slices_j, redranges_i, N, M,
        c("ranges_j", "slices_j", "redranges_i"))
  }
  structure(list(perm_i = NULL, perm_j = NULL, M = as.integer(M),
                 N = as.integer(N), i = ri, j = rj, pairs = NULL,
                 nclusters = c(nrow(ri$blocks), if (is.null(rj)) NA else nrow(rj$blocks)),
                 kept = NA_real_, cutoff = NA_real_, method = "user"),
            class = "keops_ranges")
}

as_range_matrix <- function(r, name, call) {
  if (is.numeric(r) && is.null(dim(r)) && length(r) == 2L) r <- matrix(r, 1L)
  if (!is.numeric(r) || !is.matrix(r) || ncol(r) != 2L || anyNA(r) ||
      !all(r == round(r))) {
    rk_abort(sprintf("`%s` should be an integer matrix with two columns (start, end).",
                     name), "arg", call)
  }
  storage.mode(r) <- "integer"
  r
}

#' @export
print.keops_ranges <- function(x, ...) {
  cat(sprintf("keops_ranges: %d i points, %d j points", x$M, x$N))
  if (identical(x$method, "user")) {
    cat(sprintf(", %d i blocks (given in PyKeOps' format)\n", x$nclusters[1L]))
  } else {
    cat(sprintf(", %s clusters: %d (i) and %d (j)\n", x$method,
                x$nclusters[1L], x$nclusters[2L]))
    cat(sprintf("  cut-off %g: %d pairs of clusters kept, %.3g%% of the point pairs\n",
                x$cutoff, nrow(x$pairs), 100 * x$kept))
  }
  cat(sprintf("  ranges of j per i block: %d; of i per j block: %s\n",
              nrow(x$i$red), if (is.null(x$j)) "none" else nrow(x$j$red)))
  invisible(x)
}

#' @export
plot.keops_ranges <- function(x, ...) {
  if (is.null(x$pairs)) {
    rk_abort("these ranges were given in PyKeOps' format: no clusters to plot.",
             "arg", sys.call())
  }
  ni <- x$nclusters[1L]
  nj <- x$nclusters[2L]
  graphics::plot(x$pairs[, 2L], x$pairs[, 1L], pch = 15, cex = 0.3,
                 xlim = c(0.5, nj + 0.5), ylim = c(ni + 0.5, 0.5),
                 xlab = "j cluster", ylab = "i cluster",
                 main = sprintf("kept pairs of clusters: %.3g%% of the point pairs",
                                100 * x$kept), ...)
  invisible(x)
}

# Checks of a `ranges` argument against a kernel's inputs (position order)
# and their categories; returns the ranges.
check_ranges <- function(ranges, call) {
  if (!inherits(ranges, "keops_ranges")) {
    rk_abort(paste0("`ranges` should be a keops_ranges object (see ",
                    "keops_ranges() and as_keops_ranges()); received ",
                    fmt_value(ranges), "."), "arg", call)
  }
  ranges
}

# A run with ranges: permutes the Vi / Vj inputs, runs, puts the output rows
# back in order and maps indices to the original rows.
run_ranged <- function(k, inputs, ranges, o, call) {
  cats <- attr(k, "arg_cat", exact = TRUE)
  pos <- attr(k, "arg_pos", exact = TRUE)
  cat_of <- integer(length(inputs))
  cat_of[pos + 1L] <- cats
  want <- c(ranges$M, ranges$N)
  perms <- list(ranges$perm_i, ranges$perm_j)
  for (p in seq_along(inputs)) {
    cp <- cat_of[p]
    if (cp > 1L) next
    v <- inputs[[p]]
    n <- NROW(v)
    if (n != want[cp + 1L]) {
      rk_abort(sprintf(paste0("input %d (%s) has %d rows but the ranges were made ",
                              "for %d %s points."), p, c("Vi", "Vj")[cp + 1L], n,
                       want[cp + 1L], c("i", "j")[cp + 1L]), "shape", call)
    }
    pm <- perms[[cp + 1L]]
    if (!is.null(pm)) inputs[[p]] <- v[pm, , drop = FALSE]
  }
  res <- .Call(rk_run_ranges_r, k, inputs, o$ncore, ranges$i, ranges$j)
  if (is.list(res)) return(res)
  outcat <- attr(k, "outcat", exact = TRUE) + 1L
  pout <- perms[[outcat]]
  if (!is.null(pout) && nrow(res) == length(pout) && nrow(res) > 1L) {
    back <- res
    back[pout, ] <- res
    res <- back
  }
  pred <- perms[[3L - outcat]]
  ic <- index_columns(k)
  if (!is.null(pred) && length(ic)) {
    v <- res[, ic]
    ok <- !is.na(v)
    v[ok] <- pred[v[ok]]
    res[, ic] <- v
  }
  res
}

# Columns of a kernel's raw result that hold indices.
index_columns <- function(k) {
  red <- attr(k, "reduction", exact = TRUE)
  od <- attr(k, "outdim", exact = TRUE)
  switch(red,
    ArgMin = , ArgMax = , ArgKMin = seq_len(od),
    Min_ArgMin = , Max_ArgMax = , KMin_ArgKMin = seq.int(od %/% 2L + 1L, od),
    integer()
  )
}
