# Reductions of LazyTensors: build "<Red>_Reduction(<formula>,<axis>)" with
# the variables renamed V0, V1, ..., get the kernel state (cached per
# formula), and run it on the LazyTensor's data.

msg_index_na <- paste0(
  "`index` input argument should be a character, either 'i' or 'j', or NA."
)

msg_index <- "`index` input argument should be a character, either 'i' or 'j'."

#' Reductions of LazyTensors
#'
#' A reduction computes, for every `i`, a reduction over `j` of the
#' symbolic matrix `x` (`index = "j"`), or for every `j` a reduction over
#' `i` (`index = "i"`). The result is a numeric matrix with one row per `i`
#' (as many rows as the `Vi` data; a single row if `x` has no `Vi`
#' variable) or per `j`, and one column per coordinate of `x` (interleaved
#' real and imaginary parts for a ComplexLazyTensor).
#'
#' * `sum(x, index)`: the sum. `min(x, index)`, `max(x, index)`: the
#'   minimum and maximum of each coordinate (`NaN` if a `NaN` is among the
#'   values). `argmin(x, index)`, `argmax(x, index)`: the 1-based index
#'   (`i` or `j`) of the first minimum or maximum, as [which.min()].
#'   `min_argmin()` and `max_argmax()`: a list of both matrices.
#' * `Kmin(x, K, index)`: the `K` smallest values of each coordinate, in
#'   ascending order: an `nout x K` matrix if `x` has dimension 1, an
#'   `nout x K x D` array otherwise. `argKmin()`: their 1-based indices
#'   (ties: smallest index first), `Kmin_argKmin()`: a list of both. When
#'   there are fewer than `K` values, missing values are `Inf` and missing
#'   indices `NA`.
#' * `logsumexp(x, index, weight = NULL)`: \eqn{\log \sum \exp x} computed
#'   stably, for `x` of dimension 1; with a `weight` \eqn{w},
#'   \eqn{\log \sum \exp(x) w} (one column per coordinate of `w`).
#' * `sumsoftmaxweight(x, index, weight)`:
#'   \eqn{\sum \exp(x) w / \sum \exp(x)}, for `x` of dimension 1.
#' * `reduction.LazyTensor(x, opstr, index, opt_arg)`: the KeOps reduction
#'   `<opstr>_Reduction` (e.g. `"Sum"`, `"Max_SumShiftExp"`), with the
#'   integer `opt_arg` (K) or the weight LazyTensor `opt_arg`.
#'
#' The `*_reduction()` functions are the same, with a required `index`.
#' `sum(x)`, `min(x)`, `max(x)`, `argmin(x)`, `argmax(x)` without `index`
#' are not reductions: they are the symbolic sum, minimum... of the
#' coordinates of `x` (KeOps' `Sum`, `Min`, `Max`, `ArgMin`, `ArgMax`; the
#' last two give 0-based positions, as values of a formula), LazyTensors of
#' dimension 1. `argmin(v)` and `argmax(v)` of a plain number or vector `v`
#' are those of the parameter `Pm(v)` (as in RKeOps; base R has no
#' `argmin()`), while `sum(v)`, `min(v)` and `max(v)` are base R's.
#'
#' The reduction is compiled on first use with the current options (see
#' [get_rkeops_options()]) and reused afterwards. With the option
#' `formula_only = TRUE`, the reduction prints its formula and arguments and
#' stops with an error instead of computing.
#'
#' @param x a LazyTensor.
#' @param index `"i"` (reduce over `i`, one row per `j`) or `"j"` (reduce
#'   over `j`, one row per `i`); `NA` for the symbolic operation on the
#'   coordinates.
#' @param K the number of values (a whole number).
#' @param weight a LazyTensor (or a number or vector), the weight \eqn{w}.
#' @param opstr the name of a KeOps reduction.
#' @param opt_arg `NULL`, a whole number (the `K` of K-reductions) or a
#'   LazyTensor (the weight of `LogSumExpWeight`, `SumSoftMaxWeight`,
#'   `Max_SumShiftExpWeight`).
#' @param ... for `sum`, `min`, `max`: a LazyTensor, and optionally the
#'   `index` (named or as second argument).
#' @param na.rm not used.
#' @param ranges `NULL`, or block-sparse ranges from [keops_ranges()] (or
#'   [as_keops_ranges()]): only the pairs of kept clusters are reduced (for
#'   `sum`, `min`, `max`: a named argument).
#'
#' @return For a reduction, a numeric matrix, a 3-dimensional array
#'   (`Kmin`, `argKmin` of a vector) or a list of two (`min_argmin`,
#'   `max_argmax`, `Kmin_argKmin`); for `index = NA`, a LazyTensor.
#'
#' @name LazyTensor-reductions
#' @aliases sum.LazyTensor Summary.LazyTensor
#' @seealso [LazyTensor()], [grad()], [keops_kernel()]
#' @examples
#' x <- matrix(runif(12), 4, 3)
#' y <- matrix(runif(15), 5, 3)
#' b <- matrix(runif(5), 5, 1)
#' K_ij <- exp(-sqdist(Vi(x), Vj(y)))
#' sum(K_ij * Vj(b), index = "j")   # 4 x 1
#' sum(K_ij, index = "i")           # 5 x 1
#' D_ij <- sqdist(Vi(x), Vj(y))
#' argmin(D_ij, index = "j")        # nearest y_j of each x_i
#' Kmin_argKmin(D_ij, K = 2, index = "j")
#' logsumexp(-D_ij, index = "j")
#' sumsoftmaxweight(-D_ij, index = "j", weight = Vj(b))
#' sum(Vi(x))                       # symbolic, dimension 1
NULL

#' @rdname LazyTensor-reductions
#' @export
Summary.LazyTensor <- function(..., na.rm = FALSE) {
  gen <- .Generic
  # fast path: sum/min/max(x, index = "i" or "j") of a real LazyTensor
  if (...length() == 2L) {
    index <- ..2
    if (is.character(index) && length(index) == 1L &&
        (identical(index, "j") || identical(index, "i")) &&
        identical(oldClass(..1), "LazyTensor")) {
      red <- switch(gen, sum = "Sum", min = "Min", max = "Max", NULL)
      if (!is.null(red)) {
        delayedAssign("call", summary_call(gen, index))
        return(lt_reduction(..1, red, index, call))
      }
    }
  }
  index <- NA
  # The dispatched call holds evaluated arguments (the LazyTensor's data):
  # errors report a short call instead, built only when needed.
  delayedAssign("call", summary_call(gen, index))
  if (!(gen %in% c("sum", "min", "max"))) {
    rk_abort(
      paste0("`", gen, "()` is not available for LazyTensors."),
      "unsupported", call
    )
  }
  dots <- list(...)
  nm <- names(dots)
  ranges <- NULL
  if (!is.null(nm) && "ranges" %in% nm) {
    ranges <- dots[["ranges"]]
    dots <- dots[nm != "ranges"]
    nm <- names(dots)
  }
  if (!is.null(nm) && "index" %in% nm) {
    index <- dots[["index"]]
    dots <- dots[nm != "index"]
  } else if (length(dots) == 2L && !inherits(dots[[2L]], "LazyTensor") &&
             (is.character(dots[[2L]]) || identical(dots[[2L]], NA))) {
    index <- dots[[2L]]
    dots <- dots[1L]
  }
  if (length(dots) != 1L) {
    rk_abort(
      paste0("`", gen, "()` of a LazyTensor takes one LazyTensor and an ",
             "`index`."),
      "arg", call
    )
  }
  x <- dots[[1L]]
  red <- c(sum = "Sum", min = "Min", max = "Max")[[gen]]
  if (!is.null(ranges) && length(index) == 1L && is.na(index)) {
    rk_abort("`ranges` is for reductions: give `index` (\"i\" or \"j\") too.",
             "arg", call)
  }
  lt_reduce_or_op(x, red, index, call, ranges)
}

summary_call <- function(gen, index) {
  cl <- as.call(list(as.name(gen), as.name("x")))
  if (is.character(index) && length(index) == 1L && nchar(index) < 20L) {
    cl$index <- index
  }
  cl
}

# sum, min, max, argmin, argmax: the reduction over index "i" or "j", or
# for index NA the operation on the coordinates.
lt_reduce_or_op <- function(x, red, index, call, ranges = NULL) {
  # argmin(3), argmax(c(2, 5)): a number or vector is a parameter (RKeOps
  # does the same; R has no argmin() to call instead)
  if (red %in% c("ArgMin", "ArgMax") && is.numeric(x) && !is.matrix(x) &&
      length(index) == 1L && is.na(index)) {
    x <- as_operand(x, "x", call)
  }
  if (!inherits(x, "LazyTensor")) {
    rk_abort("`x` input should be a LazyTensor or a ComplexLazyTensor.",
             "arg", call)
  }
  if (length(index) == 1L && is.na(index)) {
    if (inherits(x, "ComplexLazyTensor")) {
      if (red == "Sum") return(unaryop(x, "ComplexSum", dim_res = 1L, call = call))
      rk_abort(msg_complex_unsupported(paste0("`", tolower(red), "()`")),
               "unsupported", call)
    }
    return(unaryop(x, red, dim_res = 1L, call = call))
  }
  if (!is.character(index) || length(index) != 1L ||
      !(index %in% c("i", "j"))) {
    rk_abort(msg_index_na, "arg", call)
  }
  lt_reduction_checked(x, red, index, call, ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
argmin <- function(x, index = NA, ranges = NULL) {
  lt_reduce_or_op(x, "ArgMin", index, sys.call(), ranges)
}

#' @rdname LazyTensor-reductions
#' @export
argmax <- function(x, index = NA, ranges = NULL) {
  lt_reduce_or_op(x, "ArgMax", index, sys.call(), ranges)
}

#' @rdname LazyTensor-reductions
#' @export
sum_reduction <- function(x, index, ranges = NULL) {
  lt_reduction_checked(x, "Sum", index, sys.call(), ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
min_reduction <- function(x, index, ranges = NULL) {
  lt_reduction_checked(x, "Min", index, sys.call(), ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
max_reduction <- function(x, index, ranges = NULL) {
  lt_reduction_checked(x, "Max", index, sys.call(), ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
argmin_reduction <- function(x, index, ranges = NULL) {
  lt_reduction_checked(x, "ArgMin", index, sys.call(), ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
argmax_reduction <- function(x, index, ranges = NULL) {
  lt_reduction_checked(x, "ArgMax", index, sys.call(), ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
min_argmin <- function(x, index, ranges = NULL) {
  lt_reduction_checked(x, "Min_ArgMin", index, sys.call(), ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
min_argmin_reduction <- function(x, index, ranges = NULL) {
  lt_reduction_checked(x, "Min_ArgMin", index, sys.call(), ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
max_argmax <- function(x, index, ranges = NULL) {
  lt_reduction_checked(x, "Max_ArgMax", index, sys.call(), ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
max_argmax_reduction <- function(x, index, ranges = NULL) {
  lt_reduction_checked(x, "Max_ArgMax", index, sys.call(), ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
Kmin <- function(x, K, index, ranges = NULL) {
  lt_reduction_checked(x, "KMin", index, sys.call(), K = K, ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
Kmin_reduction <- function(x, K, index, ranges = NULL) {
  lt_reduction_checked(x, "KMin", index, sys.call(), K = K, ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
argKmin <- function(x, K, index, ranges = NULL) {
  lt_reduction_checked(x, "ArgKMin", index, sys.call(), K = K, ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
argKmin_reduction <- function(x, K, index, ranges = NULL) {
  lt_reduction_checked(x, "ArgKMin", index, sys.call(), K = K, ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
Kmin_argKmin <- function(x, K, index, ranges = NULL) {
  lt_reduction_checked(x, "KMin_ArgKMin", index, sys.call(), K = K, ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
Kmin_argKmin_reduction <- function(x, K, index, ranges = NULL) {
  lt_reduction_checked(x, "KMin_ArgKMin", index, sys.call(), K = K, ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
logsumexp <- function(x, index, weight = NULL, ranges = NULL) {
  call <- sys.call()
  if (is.null(weight)) {
    return(lt_reduction_checked(x, "LogSumExp", index, call, ranges = ranges))
  }
  lt_reduction_checked(x, "LogSumExpWeight", index, call, weight = weight,
                       ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
logsumexp_reduction <- function(x, index, weight = NULL, ranges = NULL) {
  call <- sys.call()
  if (is.null(weight)) {
    return(lt_reduction_checked(x, "LogSumExp", index, call, ranges = ranges))
  }
  lt_reduction_checked(x, "LogSumExpWeight", index, call, weight = weight,
                       ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
sumsoftmaxweight <- function(x, index, weight, ranges = NULL) {
  call <- sys.call()
  if (missing(weight) || is.null(weight)) {
    rk_abort("`weight` input argument is required by `sumsoftmaxweight`.",
             "arg", call)
  }
  lt_reduction_checked(x, "SumSoftMaxWeight", index, call, weight = weight,
                       ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
sumsoftmaxweight_reduction <- function(x, index, weight, ranges = NULL) {
  call <- sys.call()
  if (missing(weight) || is.null(weight)) {
    rk_abort("`weight` input argument is required by `sumsoftmaxweight`.",
             "arg", call)
  }
  lt_reduction_checked(x, "SumSoftMaxWeight", index, call, weight = weight,
                       ranges = ranges)
}

#' @rdname LazyTensor-reductions
#' @export
reduction.LazyTensor <- function(x, opstr, index, opt_arg = NULL,
                                 ranges = NULL) {
  call <- sys.call()
  if (!is.character(opstr) || length(opstr) != 1L || is.na(opstr) ||
      !nzchar(opstr)) {
    rk_abort("`opstr` input should be a string text.", "arg", call)
  }
  if (is.null(opt_arg)) {
    return(lt_reduction_checked(x, opstr, index, call, ranges = ranges))
  }
  if (inherits(opt_arg, "LazyTensor") || (!is_int(opt_arg) &&
                                          is.numeric(opt_arg))) {
    return(lt_reduction_checked(x, opstr, index, call, weight = opt_arg,
                                ranges = ranges))
  }
  lt_reduction_checked(x, opstr, index, call, K = opt_arg, ranges = ranges)
}

# Reductions that are per coordinate of real formulas (not of complex
# numbers), and those of a scalar formula.
real_reductions <- c("Min", "Max", "ArgMin", "ArgMax", "Min_ArgMin",
                     "Max_ArgMax", "KMin", "ArgKMin", "KMin_ArgKMin",
                     "LogSumExp", "LogSumExpWeight", "SumSoftMaxWeight",
                     "Max_SumShiftExp", "Max_SumShiftExpWeight")
scalar_reductions <- c("LogSumExp", "LogSumExpWeight", "SumSoftMaxWeight",
                       "Max_SumShiftExp", "Max_SumShiftExpWeight")

# Checks of a reduction's arguments, then the reduction.
lt_reduction_checked <- function(x, red, index, call, K = NULL,
                                 weight = NULL, ranges = NULL) {
  if (!inherits(x, "LazyTensor")) {
    rk_abort("`x` input should be a LazyTensor or a ComplexLazyTensor.",
             "arg", call)
  }
  if (missing(index) || !is.character(index) || length(index) != 1L ||
      !(index %in% c("i", "j"))) {
    rk_abort(msg_index, "arg", call)
  }
  if (red %in% real_reductions && inherits(x, "ComplexLazyTensor")) {
    rk_abort(
      paste0("The `", red, "` reduction is not defined for a ",
             "ComplexLazyTensor `x`."),
      "arg", call
    )
  }
  if (red %in% scalar_reductions && x$dimres != 1L) {
    rk_abort(
      sprintf(paste0("The `%s` reduction needs `x` of inner dimension 1; ",
                     "received inner dimension %d."), red, x$dimres),
      "dim", call
    )
  }
  opt <- NULL
  if (!is.null(K)) {
    if (!is_int(K) || K < 1) {
      rk_abort("`K` input argument should be an integer.", "arg", call)
    }
    opt <- as.integer(K)
  } else if (!is.null(weight)) {
    opt <- as_operand(weight, "weight", call)
  }
  if (!is.null(ranges)) ranges <- check_ranges(ranges, call)
  lt_reduction(x, red, index, call, opt, ranges)
}

# Run the reduction `red` ("Sum", ...) of LazyTensor x over `index`, with
# an optional integer parameter or weight LazyTensor `opt`.
lt_reduction <- function(x, red, index, call = NULL, opt = NULL,
                         ranges = NULL) {
  s <- lt_state(x, red, index, call, opt)
  o <- getOption("rkeops")
  if (isTRUE(o$formula_only)) print_formula_only(s$st, call)
  run_kernel(s$st, s$data, call, o, ranges = ranges)
}

# The kernel state and the data of a LazyTensor reduction. The state is
# found from the formula with variables renamed V0, V1, ... (computed in
# src/r_lazy.c), so LazyTensors of other data, or built anew, with the same
# formula share a kernel.
lt_state <- function(x, red, index, call = NULL, opt = NULL) {
  w <- if (is.null(opt) || !inherits(opt, "LazyTensor")) NULL else opt
  v <- if (is.null(w)) x else merge_variables(x, w)
  args <- v$args
  if (!length(args)) {
    rk_abort(
      paste0("A reduction needs at least one variable (`Vi`, `Vj` or `Pm`): ",
             "this LazyTensor only contains constants."),
      "arg", call
    )
  }
  f <- if (is.null(opt)) x$formula else if (is.null(w)) {
    c(x$formula, as.character(opt))
  } else {
    c(x$formula, w$formula)
  }
  # c(key, formula, renamed declarations...)
  r <- .Call(rk_lt_reduction_r, red, index, f, args)
  st <- .rk_state$ops[[r[1L]]]
  if (is.null(st)) st <- lt_kernel_state(r[2L], r[-(1:2)], call, r[1L])
  list(st = st, data = v$data)
}

print_formula_only <- function(st, call) {
  cat("Formula:", st$formula, "\n")
  cat("Arguments:", paste(st$args, collapse = ", "), "\n")
  rk_abort(
    "Debugging LazyTensor reduction: printing formula and arguments only.",
    "debug", call
  )
}

# Kernel states of LazyTensor reductions, cached by formula and arguments,
# so that a repeated reduction reuses its compiled kernel.
lt_kernel_state <- function(formula, args, call = NULL,
                            key = paste0(formula, "|",
                                         paste(args, collapse = ";"))) {
  ops <- .rk_state$ops
  st <- ops[[key]]
  if (is.null(st)) {
    if (.rk_state$nops >= 4096L) {
      rm(list = ls(ops, all.names = TRUE), envir = ops)
      .rk_state$nops <- 0L
    }
    st <- new_kernel_state(formula, parse_args(formula, args, call = call),
                           "auto", call)
    assign(key, st, envir = ops)
    .rk_state$nops <- .rk_state$nops + 1L
  }
  st
}
