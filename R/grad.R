# grad(): the gradient of a LazyTensor reduction with respect to one of its
# variables, "Grad(<Red>_Reduction(f, axis), v, gradin)" (decision 2: the
# true gradient, KeOps' convention).

#' Gradient of a LazyTensor reduction
#'
#' `grad(f, gradin, opstr, var, index)` computes the gradient of the
#' reduction `<opstr>_Reduction` of `f` over `index` with respect to the
#' variable `var`, applied to `gradin`: with \eqn{a} the result of the
#' reduction (e.g. `sum(f, index)`), it is
#' \eqn{\partial \langle a, g \rangle / \partial v} where \eqn{g} is
#' `gradin`. For `opstr = "Sum"`, `index = "j"` and a variable \eqn{v_j}
#' indexed by `j`, row `j` of the result is
#' \eqn{\sum_i (\partial f_{ij} / \partial v_j)^T g_i}; for a variable
#' \eqn{x_i}, row `i` is \eqn{\sum_j (\partial f_{ij} / \partial x_i)^T g_i}.
#'
#' This is KeOps' own gradient (the one of `Grad` in [keops_kernel()]
#' formulas and of [keops_grad()]): the result has one row per index of
#' `var` (per `i` for a `Vi` variable, per `j` for a `Vj` variable, a single
#' row for a `Pm` parameter, summed over `i` and `j`) and the dimension of
#' `var`. The differentiable reductions are `"Sum"`, `"LogSumExp"`,
#' `"Min"`, `"Max"` (through the extremum), `"ArgMin"` and `"ArgMax"` (zero
#' gradient).
#'
#' @param f a LazyTensor.
#' @param gradin a LazyTensor indexed like the result of the reduction
#'   (`Vi()` for `index = "j"`, `Vj()` for `index = "i"`), of the
#'   dimension of the result (the dimension of `f`, or 1 for
#'   `"LogSumExp"`).
#' @param opstr the reduction: `"Sum"`, `"LogSumExp"`, `"Min"`...
#' @param var the variable: a LazyTensor created by [Vi()], [Vj()] or
#'   [Pm()] and used in `f`, or its name `"V<k>"` or 0-based position `k`
#'   among the variables of `f` (in the order printed by
#'   [print.LazyTensor()]).
#' @param index `"i"` or `"j"`: the index of the reduction (see
#'   [LazyTensor-reductions]).
#'
#' @return A numeric matrix: one row per index of `var` (or one row for a
#'   parameter) and one column per coordinate of `var`.
#'
#' @seealso [keops_grad()], [LazyTensor-reductions]
#' @export
#' @examples
#' x <- matrix(runif(12), 4, 3)
#' y <- matrix(runif(15), 5, 3)
#' x_i <- Vi(x)
#' y_j <- Vj(y)
#' eta_i <- Vi(matrix(1, 4, 1))
#' # gradient of a_i = sum_j |x_i - y_j|^2 with respect to x_i
#' g <- grad(sqnorm2(x_i - y_j), eta_i, "Sum", var = x_i, index = "j")
#' all.equal(g, 2 * (5 * x - matrix(colSums(y), 4, 3, byrow = TRUE)))
#' # with respect to y_j: sum_i -2 (x_i - y_j)
#' grad(sqnorm2(x_i - y_j), eta_i, "Sum", var = y_j, index = "j")
grad <- function(f, gradin, opstr, var, index) {
  call <- sys.call()
  if (!inherits(f, "LazyTensor") || !inherits(gradin, "LazyTensor")) {
    rk_abort("`f` and `gradin` input arguments should be LazyTensor.",
             "arg", call)
  }
  if (!is.character(opstr) || length(opstr) != 1L || is.na(opstr) ||
      !nzchar(opstr)) {
    rk_abort(
      paste0("`opstr` input should be a string text corresponding to a ",
             "reduction formula."),
      "arg", call
    )
  }
  if (missing(index) || !is.character(index) || length(index) != 1L ||
      !(index %in% c("i", "j"))) {
    rk_abort(msg_index, "arg", call)
  }
  if (length(f$args) == 0L) {
    rk_abort(
      "`f` has no variable (`Vi`, `Vj` or `Pm`) to differentiate with respect to.",
      "arg", call
    )
  }
  k <- grad_var_position(var, f, call)
  out_type <- if (index == "j") "Vi" else "Vj"
  out_letter <- if (index == "j") "i" else "j"
  gtypes <- arg_types(gradin$args)
  if (!(out_type %in% gtypes) || !all(gtypes %in% c(out_type, "Pm"))) {
    rk_abort(
      paste0("`gradin` input argument should be indexed by '", out_letter,
             "'."),
      "arg", call
    )
  }
  outdim <- if (opstr == "LogSumExp") 1L else lt_kdim(f)
  ftypes <- arg_types(f$args)
  nrow_out <- if (out_type %in% ftypes) {
    NROW(f$data[[match(out_type, ftypes)]])
  } else {
    NA_integer_
  }
  nrow_g <- NROW(gradin$data[[match(out_type, gtypes)]])
  if (lt_kdim(gradin) != outdim ||
      (!is.na(nrow_out) && nrow_g != nrow_out)) {
    rk_abort(
      sprintf(paste0("`gradin` input argument should be a LazyTensor ",
                     "encoding a matrix of shape (%s,%d); received (%d,%d)."),
              if (is.na(nrow_out)) "n" else nrow_out, outdim, nrow_g,
              lt_kdim(gradin)),
      "shape", call
    )
  }
  v <- merge_variables(f, gradin)
  r <- lt_rename(f, v$args, c(f$formula, gradin$formula))
  formula <- sprintf("Grad(%s_Reduction(%s,%s),V%d,%s)", opstr,
                     r$formula[1L], if (index == "j") "0" else "1", k,
                     r$formula[2L])
  st <- lt_kernel_state(formula, r$args, call)
  if (isTRUE(getOption("rkeops")$formula_only)) print_formula_only(st, call)
  run_kernel(st, v$data, call)
}

# 0-based position of the variable `var` among the variables of f.
grad_var_position <- function(var, f, call) {
  n <- length(f$args)
  bad <- function() {
    rk_abort(
      paste0(
        "`var` should be a variable of `f`: a LazyTensor created by Vi(), ",
        "Vj() or Pm() and used in `f`, its name \"V<k>\" or its 0-based ",
        "position k, with k in 0..", n - 1L, " (see print(f))."
      ),
      "arg", call
    )
  }
  if (inherits(var, "LazyTensor")) {
    if (length(var$args) != 1L || !identical(var$formula, arg_ids(var$args))) {
      bad()
    }
    k <- match(var$args, f$args)
    if (is.na(k)) bad()
    return(k - 1L)
  }
  if (is.character(var) && length(var) == 1L && !is.na(var) &&
      grepl("^V[0-9]+$", var)) {
    var <- as.numeric(substring(var, 2L))
  }
  if (is_whole_number(var) && var >= 0 && var < n) return(as.integer(var))
  bad()
}
