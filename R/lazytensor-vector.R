# Operations on the inner dimension of LazyTensors: norms and distances,
# indexing (0-based positions, as in the formula language: decision 3),
# concatenation, one-hot encoding and products of small matrices stored
# column-major in vectors (decision 13).

#' Norms, distances and products of LazyTensor vectors
#'
#' Operations on the vectors \eqn{x_i}, \eqn{y_j}... of LazyTensors (the
#' inner dimension):
#'
#' * `sqnorm2(x)`: \eqn{\sum_k x_k^2}; `norm2(x)`: its square root;
#'   `normalize(x)`: \eqn{x / |x|} (0 for the zero vector); `sqdist(x, y)`:
#'   \eqn{|x - y|^2}.
#' * `weightedsqnorm(x, s)`: \eqn{s \sum_k x_k^2} if `s` has dimension 1,
#'   \eqn{\sum_k s_k x_k^2} if `s` has the dimension `D` of `x`, and
#'   \eqn{x^T S x} if `s` has dimension \eqn{D^2} (`S = matrix(s, D, D)`,
#'   symmetric). `weightedsqdist(x, y, s)` is `weightedsqnorm(x - y, s)`.
#' * `matvecmult(m, v)`: the product \eqn{A v} where `m` stores the
#'   \eqn{n \times p} matrix `A = matrix(m, n, p)` (column-major, as R) and
#'   `v` has dimension `p`: dimension `n`. `vecmatmult(v, m)`: \eqn{v^T A}
#'   with `v` of dimension `n`: dimension `p`. Any LazyTensors (`Vi`, `Vj`,
#'   `Pm` or formulas) may be used, provided the dimension of `m` is a
#'   multiple of that of `v`.
#' * `tensorprod(x, y)`: the outer product `as.vector(outer(x, y))`, of
#'   dimension `D(x) * D(y)`.
#'
#' The results of `sqnorm2`, `norm2`, `sqdist`, `weightedsqnorm` and
#' `weightedsqdist` have dimension 1 (also for ComplexLazyTensors, whose
#' interleaved real and imaginary parts are then the coordinates).
#'
#' @param x,y,v,m LazyTensors.
#' @param s a LazyTensor, a number or a vector: the weights.
#'
#' @return A LazyTensor.
#'
#' @name LazyTensor-vector
#' @seealso [LazyTensor-indexing], [LazyTensor-arithmetic]
#' @examples
#' x <- matrix(runif(12), 4, 3)
#' y <- matrix(runif(15), 5, 3)
#' x_i <- Vi(x)
#' y_j <- Vj(y)
#' sum(sqdist(x_i, y_j), index = "j")
#' sum(weightedsqdist(x_i, y_j, c(1, 2, 3)), index = "j")
#' A <- matrix(runif(6), 2, 3)           # a 2 x 3 matrix per j
#' a_j <- Vj(matrix(as.vector(A), 5, 6, byrow = TRUE))
#' sum(matvecmult(a_j, x_i), index = "j")[1, ]
#' 5 * A %*% x[1, ]
NULL

#' @rdname LazyTensor-vector
#' @export
sqnorm2 <- function(x) {
  unaryop(x, "SqNorm2", res_type = "LazyTensor", dim_res = 1L,
          call = sys.call())
}

#' @rdname LazyTensor-vector
#' @export
norm2 <- function(x) {
  unaryop(x, "Norm2", res_type = "LazyTensor", dim_res = 1L,
          call = sys.call())
}

#' @rdname LazyTensor-vector
#' @export
normalize <- function(x) {
  call <- sys.call()
  no_complex(list(x = x), "normalize", call)
  unaryop(x, "Normalize", call = call)
}

#' @rdname LazyTensor-vector
#' @export
sqdist <- function(x, y) {
  r <- .Call(rk_lt_fast_r, "sqdist", 2L, x, y)
  if (!is.null(r)) return(r)
  binaryop(x, y, "SqDist", res_type = "LazyTensor", dim_res = 1L,
           call = sys.call())
}

#' @rdname LazyTensor-vector
#' @export
weightedsqnorm <- function(x, s) {
  call <- sys.call()
  x <- as_operand(x, "x", call)
  s <- as_operand(s, "s", call)
  check_weights(x, s, call)
  binaryop(s, x, "WeightedSqNorm", dim_check_type = NA,
           res_type = "LazyTensor", dim_res = 1L, call = call)
}

#' @rdname LazyTensor-vector
#' @export
weightedsqdist <- function(x, y, s) {
  call <- sys.call()
  d <- binaryop(x, y, "Subtract", call = call)
  s <- as_operand(s, "s", call)
  check_weights(d, s, call)
  binaryop(s, d, "WeightedSqNorm", dim_check_type = NA,
           res_type = "LazyTensor", dim_res = 1L, call = call)
}

check_weights <- function(x, s, call) {
  D <- lt_kdim(x)
  ds <- lt_kdim(s)
  if (!(ds %in% c(1L, D, D * D))) {
    rk_abort(
      sprintf(paste0("The weights `s` should have dimension 1, %d or %d ",
                     "(the dimension of `x`, or its square); received %d."),
              D, D * D, ds),
      "dim", call
    )
  }
}

#' @rdname LazyTensor-vector
#' @export
matvecmult <- function(m, v) {
  call <- sys.call()
  m <- as_operand(m, "m", call)
  v <- as_operand(v, "v", call)
  no_complex(list(m = m, v = v), "matvecmult", call)
  n <- check_matrix_dims(m, v, "matvecmult", call)
  binaryop(m, v, "MatVecMult", dim_check_type = NA, dim_res = n, call = call)
}

#' @rdname LazyTensor-vector
#' @export
vecmatmult <- function(v, m) {
  call <- sys.call()
  v <- as_operand(v, "v", call)
  m <- as_operand(m, "m", call)
  no_complex(list(v = v, m = m), "vecmatmult", call)
  p <- check_matrix_dims(m, v, "vecmatmult", call)
  binaryop(v, m, "VecMatMult", dim_check_type = NA, dim_res = p, call = call)
}

# The dimension of m must be a multiple of that of v; returns the quotient.
check_matrix_dims <- function(m, v, fun, call) {
  dm <- m$dimres
  dv <- v$dimres
  if (dm %% dv != 0L) {
    rk_abort(
      sprintf(paste0("`%s(%s)`: the dimension of `m` (%d) should be a ",
                     "multiple of the dimension of `v` (%d)."),
              fun, if (fun == "matvecmult") "m, v" else "v, m", dm, dv),
      "dim", call
    )
  }
  as.integer(dm %/% dv)
}

#' @rdname LazyTensor-vector
#' @export
tensorprod <- function(x, y) {
  call <- sys.call()
  x <- as_operand(x, "x", call)
  y <- as_operand(y, "y", call)
  no_complex(list(x = x, y = y), "tensorprod", call)
  binaryop(x, y, "TensorProd", dim_check_type = NA,
           dim_res = x$dimres * y$dimres, call = call)
}

#' B-splines and soft dynamic time warping of LazyTensors
#'
#' * `bspline(knots, x, order = 0)`: the \eqn{D - order - 1} B-splines of
#'   order `order` (0: indicators of the intervals, 1: hat functions, 3:
#'   cubic splines) on the `D` non-decreasing `knots`, at the scalar `x`
#'   (KeOps' `BSpline(knots, x, order)`, by de Boor's recursion). The
#'   B-spline of order `k` number `j` (0-based) is supported on
#'   \eqn{[t_j, t_{j+k+1})}. Not differentiable (as in KeOps).
#' * `softdtw_sqdist(x, y, gamma)`: the soft dynamic time warping
#'   discrepancy of the series `x` (dimension `n`) and `y` (dimension `m`)
#'   for the cost \eqn{(x_k - y_l)^2}: \eqn{R_{n-1, m-1}} with
#'   \eqn{R_{k,l} = (x_k - y_l)^2 + \mathrm{softmin}_\gamma(R_{k-1,l-1},
#'   R_{k-1,l}, R_{k,l-1})}, \eqn{\mathrm{softmin}_\gamma(a, b, c) =
#'   -\gamma \log(e^{-a/\gamma} + e^{-b/\gamma} + e^{-c/\gamma})}, and
#'   plain sums along the first row and column (KeOps'
#'   `SoftDTW_SqDist(x, y, gamma)`). Differentiable in `x` and `y` (its
#'   gradient needs \eqn{n m \le 4096}), not in `gamma`.
#'
#' @param knots a LazyTensor (or a vector) of non-decreasing knots, of
#'   dimension at least `order + 2`.
#' @param x a LazyTensor of dimension 1 for `bspline()`; a series (a
#'   LazyTensor of any dimension) for `softdtw_sqdist()`.
#' @param order the order, a whole number >= 0.
#' @param y a series (a LazyTensor).
#' @param gamma the smoothing, a LazyTensor of dimension 1 or a number > 0.
#'
#' @return A LazyTensor: of dimension `D - order - 1` (`bspline()`) or 1
#'   (`softdtw_sqdist()`).
#'
#' @name LazyTensor-splines
#' @seealso [LazyTensor-vector]
#' @examples
#' t_knots <- c(0, 0.25, 0.5, 0.75, 1)
#' u <- matrix(runif(6), 6, 1)
#' # the 3 B-splines of order 1 (hat functions) at each u_i
#' sum(bspline(t_knots, Vi(u), 1), index = "j")
#' # soft-DTW between series of length 4 (rows of x) and 5 (rows of y)
#' x <- matrix(rnorm(12), 3, 4)
#' y <- matrix(rnorm(10), 2, 5)
#' sum(softdtw_sqdist(Vi(x), Vj(y), 0.1), index = "j")
NULL

#' @rdname LazyTensor-splines
#' @export
bspline <- function(knots, x, order = 0) {
  call <- sys.call()
  knots <- as_operand(knots, "knots", call)
  x <- as_operand(x, "x", call)
  no_complex(list(knots = knots, x = x), "bspline", call)
  if (!is_int(order) || order < 0) {
    rk_abort(paste0("`order` should be a whole number >= 0; received ",
                    fmt_value(order), "."), "arg", call)
  }
  if (x$dimres != 1L) {
    rk_abort(sprintf("`x` should have inner dimension 1; received %d.",
                     x$dimres), "dim", call)
  }
  if (knots$dimres < order + 2) {
    rk_abort(sprintf(paste0("B-splines of order %d need at least %d knots; ",
                            "`knots` has dimension %d."),
                     as.integer(order), as.integer(order) + 2L, knots$dimres),
             "dim", call)
  }
  .Call(rk_lt_node_r, "BSpline", FALSE, list(knots, x),
        paste0(",", fmt_param(as.integer(order))),
        as.integer(knots$dimres - order - 1), FALSE)
}

#' @rdname LazyTensor-splines
#' @export
softdtw_sqdist <- function(x, y, gamma) {
  call <- sys.call()
  x <- as_operand(x, "x", call)
  y <- as_operand(y, "y", call)
  gamma <- as_operand(gamma, "gamma", call)
  no_complex(list(x = x, y = y, gamma = gamma), "softdtw_sqdist", call)
  if (gamma$dimres != 1L) {
    rk_abort(sprintf("`gamma` should have inner dimension 1; received %d.",
                     gamma$dimres), "dim", call)
  }
  .Call(rk_lt_node_r, "SoftDTW_SqDist", FALSE, list(x, y, gamma), "", 1L,
        FALSE)
}

#' Indexing, concatenation and one-hot encoding of LazyTensors
#'
#' Positions are 0-based, as in the KeOps formula language (`Elem(x, 0)` is
#' the first coordinate); only index *results* of reductions are 1-based.
#'
#' * `elem(x, m)`: coordinate `m` of `x` (dimension 1), \eqn{0 \le m < D}
#'   (for a ComplexLazyTensor, the complex coordinate `m`).
#' * `elemT(x, m, n)`: the vector of dimension `n` with `x` (dimension 1)
#'   at position `m` and zeros elsewhere (KeOps' `ElemT(x, n, m)`).
#' * `extract(x, m, d)`: coordinates `m` to `m + d - 1` (dimension `d`).
#' * `extractT(x, m, d)`: the vector of dimension `d` with `x` at positions
#'   `m` to `m + D - 1` and zeros elsewhere.
#' * `concat(x, y)`: the coordinates of `x` then those of `y`.
#' * `one_hot(x, D)`: the vector of dimension `D` with 1 at position
#'   `round(x)` (halves rounded up) and 0 elsewhere (all 0 when out of
#'   range); `x` has dimension 1.
#'
#' @param x,y LazyTensors.
#' @param m,n,d,D whole numbers (positions are 0-based).
#'
#' @return A LazyTensor.
#'
#' @name LazyTensor-indexing
#' @seealso [LazyTensor-vector]
#' @examples
#' x <- matrix(1:12, 4, 3)
#' x_i <- Vi(x)
#' sum(elem(x_i, 1), index = "j")       # x[, 2]
#' sum(extract(x_i, 1, 2), index = "j") # x[, 2:3]
#' sum(concat(x_i, elem(x_i, 0)), index = "j")
#' sum(one_hot(elem(x_i, 0) - 1, 5), index = "i")
NULL

#' @rdname LazyTensor-indexing
#' @export
elem <- function(x, m) {
  call <- sys.call()
  x <- as_operand(x, "x", call)
  if (!is_int(m)) {
    rk_abort("`m` input argument should be an integer.", "arg", call)
  }
  D <- x$dimres
  if (m < 0 || m >= D) {
    rk_abort(sprintf("Index `m` is out of bounds. Should be in [0, %d).", D),
             "arg", call)
  }
  if (inherits(x, "ComplexLazyTensor")) {
    # the complex coordinate m: real and imaginary parts 2m and 2m + 1
    return(unaryop(x, "Extract", opt_arg = 2L * as.integer(m), opt_arg2 = 2L,
                   dim_res = 1L, call = call))
  }
  unaryop(x, "Elem", opt_arg = as.integer(m), dim_res = 1L, call = call)
}

#' @rdname LazyTensor-indexing
#' @export
elemT <- function(x, m, n) {
  call <- sys.call()
  x <- as_operand(x, "x", call)
  no_complex(list(x = x), "elemT", call)
  if (x$dimres != 1L) {
    rk_abort(
      "`x` input argument should be a `LazyTensor` encoding a single value.",
      "arg", call
    )
  }
  if (!is_int(m)) {
    rk_abort("`m` input argument should be an integer.", "arg", call)
  }
  if (!is_int(n)) {
    rk_abort("`n` input argument should be an integer.", "arg", call)
  }
  if (m < 0 || m >= n) {
    rk_abort("Index `m` is out of bounds. Should be in [0, `n`).", "arg", call)
  }
  unaryop(x, "ElemT", opt_arg = as.integer(n), opt_arg2 = as.integer(m),
          dim_res = as.integer(n), call = call)
}

#' @rdname LazyTensor-indexing
#' @export
extract <- function(x, m, d) {
  call <- sys.call()
  x <- as_operand(x, "x", call)
  no_complex(list(x = x), "extract", call)
  if (!is_int(m)) {
    rk_abort("`m` input argument should be an integer.", "arg", call)
  }
  if (!is_int(d)) {
    rk_abort("`d` input argument should be an integer.", "arg", call)
  }
  D <- x$dimres
  if (m < 0 || m >= D) {
    rk_abort(sprintf("Index `m` is out of bounds. Should be in [0, %d).", D),
             "arg", call)
  }
  if (d < 1 || m + d > D) {
    rk_abort(
      sprintf(paste0("Slice dimension is out of bounds. Input `d` should be ",
                     "in [1, %d-m] where `m` is the starting index."), D),
      "arg", call
    )
  }
  unaryop(x, "Extract", opt_arg = as.integer(m), opt_arg2 = as.integer(d),
          dim_res = as.integer(d), call = call)
}

#' @rdname LazyTensor-indexing
#' @export
extractT <- function(x, m, d) {
  call <- sys.call()
  x <- as_operand(x, "x", call)
  no_complex(list(x = x), "extractT", call)
  if (!is_int(m)) {
    rk_abort("`m` input argument should be an integer.", "arg", call)
  }
  if (!is_int(d)) {
    rk_abort("`d` input argument should be an integer.", "arg", call)
  }
  D <- x$dimres
  if (d < D) {
    rk_abort(
      sprintf(paste0("Input `d` is out of bounds. Should be at least equal ",
                     "to `x` inner dimension, which is %d."), D),
      "arg", call
    )
  }
  if (m < 0 || m >= d) {
    rk_abort("Index `m` is out of bounds. Should be in [0, `d`).", "arg", call)
  }
  if (m + D > d) {
    rk_abort(
      sprintf(paste0("Slice dimension is out of bounds: `d` - `m` should be ",
                     "at least `x` inner dimension, which is %d."), D),
      "arg", call
    )
  }
  unaryop(x, "ExtractT", opt_arg = as.integer(m), opt_arg2 = as.integer(d),
          dim_res = as.integer(d), call = call)
}

#' @rdname LazyTensor-indexing
#' @export
concat <- function(x, y) {
  call <- sys.call()
  x <- as_operand(x, "x", call)
  y <- as_operand(y, "y", call)
  if (inherits(x, "ComplexLazyTensor") != inherits(y, "ComplexLazyTensor")) {
    rk_abort(
      paste0("`x` and `y` should be both LazyTensors or both ",
             "ComplexLazyTensors (see real2complex())."),
      "arg", call
    )
  }
  binaryop(x, y, "Concat", dim_check_type = NA,
           dim_res = x$dimres + y$dimres, call = call)
}

#' @rdname LazyTensor-indexing
#' @export
one_hot <- function(x, D) {
  call <- sys.call()
  x <- as_operand(x, "x", call)
  if (inherits(x, "ComplexLazyTensor")) {
    rk_abort(
      paste0("`one_hot` operation can only be applied to `LazyTensor`, ",
             "not `ComplexLazyTensor`."),
      "arg", call
    )
  }
  if (x$dimres != 1L) {
    rk_abort("One-hot encoding is only supported for scalar formulas.",
             "arg", call)
  }
  if (!is_int(D) || D < 1) {
    rk_abort("`D` input argument should be a positive integer.", "arg", call)
  }
  unaryop(x, "OneHot", opt_arg = as.integer(D), dim_res = as.integer(D),
          call = call)
}
