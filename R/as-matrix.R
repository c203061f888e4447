# as.matrix() of a LazyTensor: the dense M x N (x D) array of a symbolic
# matrix, for small sizes (inspection, tests). Computed with the kernel of
# sum(x, index = "j") (or "i") run once per j (or i) on that single row of
# the Vj (or Vi) data: a sum of one term is the term itself, so every entry
# is the formula's own value (NaN and Inf included). No kernel depends on
# the sizes, and the loop runs over the smaller of M and N.

#' Dense matrix of a LazyTensor
#'
#' `as.matrix(x)` computes every entry \eqn{x_{ij}} of a symbolic matrix:
#' an \eqn{M \times N} matrix for a LazyTensor of dimension 1, an
#' \eqn{M \times N \times D} array for a LazyTensor of dimension `D` (R
#' complex values for a ComplexLazyTensor). `M` is the number of rows of
#' its `Vi` data (1 without `Vi` variable), `N` that of its `Vj` data. This
#' is meant for small sizes (inspecting or testing a formula): the result
#' is refused when it has more than `max_size` entries.
#'
#' The entries are computed with the kernel of `sum(x, index = "j")` run
#' for one `j` at a time (or of `sum(x, index = "i")` for one `i` at a
#' time when `M < N`), so they are exactly the values of the formula.
#' With the option `formula_only = TRUE` (see [set_rkeops_options()]), the
#' formula of that kernel is printed and nothing is computed, as for
#' reductions.
#'
#' @param x a LazyTensor.
#' @param max_size the largest number of entries `M * N * D` accepted
#'   (default `1e7`).
#' @param ... not used.
#'
#' @return A numeric (or complex) matrix or 3-dimensional array.
#'
#' @seealso [LazyTensor()], [LazyTensor-reductions]
#' @export
#' @examples
#' x <- matrix(runif(6), 3, 2)
#' y <- matrix(runif(8), 4, 2)
#' D <- as.matrix(sqdist(Vi(x), Vj(y)))   # 3 x 4
#' all.equal(D, as.matrix(dist(rbind(x, y)))[1:3, 4:7]^2,
#'           check.attributes = FALSE)
#' dim(as.matrix(Vi(x) - Vj(y)))            # 3 x 4 x 2
as.matrix.LazyTensor <- function(x, max_size = 1e7, ...) {
  call <- sys.call()
  if (!is.numeric(max_size) || length(max_size) != 1L || is.na(max_size) ||
      max_size < 1) {
    rk_abort(
      paste0("`max_size` should be a positive number; received ",
             fmt_value(max_size), "."),
      "arg", call
    )
  }
  types <- arg_types(x$args)
  nrows <- function(type) {
    k <- match(type, types)
    if (is.na(k)) 1L else NROW(x$data[[k]])
  }
  M <- nrows("Vi")
  N <- nrows("Vj")
  kd <- lt_kdim(x)
  size <- as.numeric(M) * N * kd
  if (size > max_size) {
    rk_abort(
      sprintf(paste0("as.matrix() of this LazyTensor would have M x N x D ",
                     "= %d x %d x %d = %.4g entries, more than `max_size` ",
                     "= %.4g. Use a reduction (see ?LazyTensor-reductions) ",
                     "or a larger `max_size`."),
              M, N, kd, size, max_size),
      "shape", call
    )
  }
  by_j <- N <= M
  index <- if (by_j) "j" else "i"
  loop_type <- if (by_j) "Vj" else "Vi"
  s <- lt_state(x, "Sum", index, call)
  if (isTRUE(getOption("rkeops")$formula_only)) print_formula_only(s$st, call)
  data <- s$data
  loop_args <- which(types == loop_type)
  out <- array(0, c(M, N, kd))
  for (t in seq_len(if (by_j) N else M)) {
    d <- data
    for (k in loop_args) d[[k]] <- data[[k]][t, , drop = FALSE]
    res <- run_kernel(s$st, d, call)
    if (by_j) out[, t, ] <- res else out[t, , ] <- res
  }
  if (inherits(x, "ComplexLazyTensor")) {
    odd <- seq.int(1L, kd, by = 2L)
    out <- array(complex(real = out[, , odd], imaginary = out[, , odd + 1L]),
                 c(M, N, kd %/% 2L))
  }
  if (dim(out)[3L] == 1L) out <- matrix(out, M, N)
  out
}
