# Dense references for the LazyTensor and reduction tests: every (i, j)
# pair is a row k = i + M (j - 1) of "long" matrices, reference functions
# are vectorised over these rows, and reductions group the rows by i or j.

pair_index <- function(M, N) {
  list(i = rep(seq_len(M), N), j = rep(seq_len(N), each = M))
}

# Values of fun(a, b) on all pairs: a (b) holds the i-rows (j-rows) of the
# named matrices vi (vj), one row per pair. Returns an (M N) x D matrix.
dense_pairs <- function(fun, vi, vj) {
  M <- nrow(vi[[1]])
  N <- nrow(vj[[1]])
  p <- pair_index(M, N)
  a <- lapply(vi, function(v) v[p$i, , drop = FALSE])
  b <- lapply(vj, function(v) v[p$j, , drop = FALSE])
  v <- fun(a, b)
  if (!is.matrix(v)) v <- matrix(v, ncol = 1)
  v
}

# Group the pair rows of `val` by i (index = "j": reduce over j) or by j,
# and apply `fun` (a function of a vector) to each group and column.
dense_reduce <- function(val, M, N, index, fun = sum) {
  p <- pair_index(M, N)
  g <- if (index == "j") p$i else p$j
  ng <- if (index == "j") M else N
  if (identical(fun, sum)) return(unname(rowsum(val, g, reorder = TRUE)))
  out <- matrix(0, ng, ncol(val))
  for (k in seq_len(ncol(val))) {
    out[, k] <- vapply(split(val[, k], g), fun, numeric(1))
  }
  out
}

# sum over index of fun on all pairs.
dense_sum_ref <- function(fun, vi, vj, index) {
  dense_reduce(dense_pairs(fun, vi, vj), nrow(vi[[1]]), nrow(vj[[1]]), index)
}

# Concatenate a list of LazyTensors along the inner dimension, as a
# balanced tree (shallow formulas).
concat_all <- function(lts) {
  while (length(lts) > 1L) {
    n <- length(lts)
    odd <- seq.int(1L, n - 1L, by = 2L)
    merged <- lapply(odd, function(k) concat(lts[[k]], lts[[k + 1L]]))
    if (n %% 2L == 1L) merged <- c(merged, lts[n])
    lts <- merged
  }
  lts[[1L]]
}

# The same for formula strings: nested Concat(a, b) of a vector of
# formulas.
concat_formula <- function(exprs) {
  while (length(exprs) > 1L) {
    n <- length(exprs)
    odd <- seq.int(1L, n - 1L, by = 2L)
    merged <- sprintf("Concat(%s, %s)", exprs[odd], exprs[odd + 1L])
    if (n %% 2L == 1L) merged <- c(merged, exprs[n])
    exprs <- merged
  }
  exprs
}

# Compare the column blocks of res and ref (one block per named case, of
# the given widths): normwise relative error <= tol for each block.
expect_blocks_close <- function(res, ref, widths, names, tol, what = "") {
  if (!identical(dim(res), dim(ref))) {
    fail(sprintf("%s: dimension %s, expected %s", what,
                 paste(dim(res), collapse = " x "),
                 paste(dim(ref), collapse = " x ")))
    return(invisible())
  }
  end <- cumsum(widths)
  start <- end - widths + 1L
  for (k in seq_along(widths)) {
    cols <- start[k]:end[k]
    r <- res[, cols, drop = FALSE]
    e <- ref[, cols, drop = FALSE]
    scale <- max(abs(e))
    if (!is.finite(scale) || scale == 0) scale <- 1
    err <- max(abs(r - e)) / scale
    expect(
      !anyNA(r) && is.finite(err) && err <= tol,
      sprintf("%s %s: relative error %.3g > %.3g", what, names[k], err, tol)
    )
  }
  invisible()
}

# Run a batch of cases list(name = list(LazyTensor, reference function))
# as one reduction per index and compare each block with the reference.
check_lt_batch <- function(cases, vi, vj, tol = 1e-12,
                           index = c("j", "i")) {
  lts <- lapply(cases, `[[`, 1L)
  big <- concat_all(lts)
  widths <- vapply(lts, function(l) {
    if (is.ComplexLazyTensor(l)) 2L * l$dimres else l$dimres
  }, integer(1))
  M <- nrow(vi[[1]])
  N <- nrow(vj[[1]])
  for (ix in index) {
    res <- sum(big, index = ix)
    ref <- do.call(cbind, lapply(cases, function(cs) {
      dense_reduce(dense_pairs(cs[[2L]], vi, vj), M, N, ix)
    }))
    expect_blocks_close(res, ref, widths, names(cases), tol,
                        what = paste0("index = '", ix, "'"))
  }
}

# Interleave a complex matrix (Re, Im, Re, Im, ...).
cplx_cols <- function(z) {
  z <- as.matrix(z)
  out <- matrix(0, nrow(z), 2L * ncol(z))
  out[, seq.int(1L, 2L * ncol(z), by = 2L)] <- Re(z)
  out[, seq.int(2L, 2L * ncol(z), by = 2L)] <- Im(z)
  out
}

# Complex matrix from interleaved columns.
cplx_from_cols <- function(m) {
  m <- as.matrix(m)
  odd <- seq.int(1L, ncol(m), by = 2L)
  matrix(complex(real = m[, odd], imaginary = m[, odd + 1L]), nrow(m))
}
