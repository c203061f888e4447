# Reductions of LazyTensors: build "<Red>_Reduction(<formula>,<axis>)" with
# the variables renamed V0, V1, ..., get the kernel state (cached per
# formula), and run it on the LazyTensor's data.

msg_index_na <- paste0(
  "`index` input argument should be a character, either 'i' or 'j', or NA."
)

#' Reductions of LazyTensors
#'
#' `sum(x, index = "j")` computes \eqn{a_i = \sum_j x_{ij}} for every `i`:
#' the result is a numeric matrix with one row per `i` (as many rows as the
#' `Vi` data) and one column per coordinate of `x`. `sum(x, index = "i")`
#' computes \eqn{\sum_i x_{ij}}, one row per `j`. If `x` has no `Vi`
#' variable there is a single `i` (and likewise for `j`).
#'
#' `sum(x)` without `index` is not a reduction: it is the symbolic sum of
#' the coordinates of `x` (KeOps' `Sum`), a LazyTensor of dimension 1.
#'
#' The reduction is compiled on first use with the current options (see
#' [get_rkeops_options()]) and reused afterwards. With the option
#' `formula_only = TRUE`, the reduction prints its formula and arguments and
#' stops with an error instead of computing.
#'
#' Other reductions (`min`, `max`, `argmin`, `logsumexp`...) are not yet
#' available in this version and raise an error.
#'
#' @param ... a LazyTensor, and optionally the `index` (named or as second
#'   argument).
#' @param na.rm not used.
#'
#' @return For `index = "i"` or `"j"`, a numeric matrix; for `index = NA`,
#'   a LazyTensor.
#'
#' @name LazyTensor-reductions
#' @aliases sum.LazyTensor
#' @seealso [LazyTensor()], [keops_kernel()]
#' @examples
#' x <- matrix(runif(12), 4, 3)
#' y <- matrix(runif(15), 5, 3)
#' b <- matrix(runif(5), 5, 1)
#' K_ij <- exp(-sum((Vi(x) - Vj(y))^2))
#' sum(K_ij * Vj(b), index = "j")   # 4 x 1
#' sum(K_ij, index = "i")           # 5 x 1
#' sum(Vi(x))                       # symbolic, dimension 1
NULL

#' @rdname LazyTensor-reductions
#' @export
Summary.LazyTensor <- function(..., na.rm = FALSE) {
  gen <- .Generic
  index <- NA
  # The dispatched call holds evaluated arguments (the LazyTensor's data):
  # errors report a short call instead, built only when needed.
  delayedAssign("call", summary_call(gen, index))
  if (gen != "sum") {
    rk_abort(
      paste0("`", gen, "()` is not yet supported for LazyTensors in this ",
             "version of rkeops."),
      "unsupported", call
    )
  }
  dots <- list(...)
  nm <- names(dots)
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
      "`sum()` of a LazyTensor takes one LazyTensor and an `index`.",
      "arg", call
    )
  }
  x <- dots[[1L]]
  if (!inherits(x, "LazyTensor")) {
    rk_abort("`x` input should be a LazyTensor or a ComplexLazyTensor.",
             "arg", call)
  }
  if (length(index) == 1L && is.na(index)) {
    if (inherits(x, "ComplexLazyTensor")) {
      rk_abort(msg_complex_unsupported("`sum()` without `index`"),
               "unsupported", call)
    }
    return(unaryop(x, "Sum", dim_res = 1L, call = call))
  }
  if (!is.character(index) || length(index) != 1L ||
      !(index %in% c("i", "j"))) {
    rk_abort(msg_index_na, "arg", call)
  }
  lt_reduction(x, "Sum", index, call)
}

summary_call <- function(gen, index) {
  cl <- as.call(list(as.name(gen), as.name("x")))
  if (is.character(index) && length(index) == 1L && nchar(index) < 20L) {
    cl$index <- index
  }
  cl
}

# Run the reduction `red` ("Sum", ...) of LazyTensor x over `index`.
# Kernel states are found from the LazyTensor's own formula and variables
# first (no renaming on a repeated reduction), then from the renamed
# formula (LazyTensors of other data with the same formula share a kernel).
lt_reduction <- function(x, red, index, call = NULL) {
  args <- x$args
  if (length(args) == 0L) {
    rk_abort(
      paste0("A reduction needs at least one variable (`Vi`, `Vj` or `Pm`): ",
             "this LazyTensor only contains constants."),
      "arg", call
    )
  }
  key <- paste(c(red, index, x$formula, args), collapse = "|")
  lt <- .rk_state$lt
  st <- lt[[key]]
  if (is.null(st)) {
    r <- lt_rename(x)
    formula <- paste0(red, "_Reduction(", r$formula, ",",
                      if (index == "j") "0" else "1", ")")
    st <- lt_kernel_state(formula, r$args, call)
    if (.rk_state$nlt >= 4096L) {
      rm(list = ls(lt, all.names = TRUE), envir = lt)
      .rk_state$nlt <- 0L
    }
    assign(key, st, envir = lt)
    .rk_state$nlt <- .rk_state$nlt + 1L
  }
  if (isTRUE(getOption("rkeops")$formula_only)) {
    cat("Formula:", st$formula, "\n")
    cat("Arguments:", paste(st$args, collapse = ", "), "\n")
    rk_abort(
      "Debugging LazyTensor reduction: printing formula and arguments only.",
      "debug", call
    )
  }
  run_kernel(st, x$data, call)
}

# Kernel states of LazyTensor reductions, cached by formula and arguments,
# so that a repeated reduction reuses its compiled kernel.
lt_kernel_state <- function(formula, args, call = NULL) {
  key <- paste0(formula, "|", paste(args, collapse = ";"))
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
