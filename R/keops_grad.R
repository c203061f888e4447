# keops_grad(): the operator of the gradient of an operator's reduction,
# "Grad(<formula>, <var>, eta)" with a new last argument eta (decision 2:
# the true gradient, KeOps' own convention).

msg_grad_var <- paste0(
  "'var' input argument should be the name (string) or position (integer) ",
  "of an argument in the formula"
)

#' Gradient of a kernel operator
#'
#' `keops_grad(operator, var)` returns the operator that computes the
#' gradient of the reduction of `operator` with respect to one of its
#' arguments, as KeOps defines it: for a reduction
#' \eqn{a = \mathrm{Red}(F)} and a new input \eqn{e} of the shape of
#' \eqn{a}, the new operator computes
#' \eqn{\partial \langle a, e \rangle / \partial v}, which has the shape of
#' `var`'s data. For `Sum_Reduction(F, 0)` (one row per `i`) and a variable
#' `v` indexed by `j`, row `j` of the result is
#' \eqn{\sum_i (\partial F_{ij} / \partial v_j)^T e_i}.
#'
#' The new formula is `"Grad(<formula>, <var>, eta)"`: the new argument
#' `eta` (`eta_1`, ... if that name is taken) is declared last, with the
#' category of the output (`Vi` for axis 0, `Vj` for axis 1) and the
#' dimension of the output, in the declaration style of `args` (`(dim)` or
#' `(pos, dim)`). The operator's formula is compiled (or found in the cache)
#' to know the output dimension, so formula errors are reported here.
#'
#' The result has one row per `i` when `var` is a `Vi` argument, one row per
#' `j` for a `Vj` argument, and a single row (the gradient summed over `i`
#' and `j`) for a `Pm` argument. `keops_grad()` may be applied to its own
#' result (second order), except with respect to a `Pm` argument twice.
#' Reductions that are not differentiable (`KMin`, `Min_ArgMin`...) give an
#' error when the new operator is called.
#'
#' @param operator an operator returned by [keops_kernel()] (or by
#'   `keops_grad()`).
#' @param var the argument to differentiate with respect to: its name, or
#'   its 0-based position in the input list.
#'
#' @return An operator (see [keops_kernel()]) taking one more input than
#'   `operator`: the gradient weight `eta`.
#'
#' @seealso [keops_kernel()], [grad()] for LazyTensors,
#'   [keops_value_and_grad()] for optimisation.
#' @export
#' @examples
#' op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
#'                    c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)"))
#' gy <- keops_grad(op, "y")
#' gy()$formula
#' x <- matrix(runif(10), 5, 2)
#' y <- matrix(runif(8), 4, 2)
#' b <- matrix(runif(4), 4, 1)
#' e <- matrix(1, 5, 1)
#' g <- gy(list(x, y, b, e))    # 4 x 2: one row per y_j
#' # dense check: d/dy_j sum_i exp(-|x_i - y_j|^2) b_j
#' K <- exp(-outer(x[, 1], y[, 1], "-")^2 - outer(x[, 2], y[, 2], "-")^2)
#' all.equal(g[, 1], 2 * colSums(K * outer(x[, 1], y[, 1], "-")) * b[, 1])
keops_grad <- function(operator, var) {
  call <- sys.call()
  st <- operator_state(operator, call)
  ctx <- operator()
  info <- ctx$args_info
  name <- grad_var_name(var, info, call)
  o <- current_options()
  k <- st$ptr
  if (is.null(k) || !identical(st$prec, o$precision) ||
      !identical(st$cdir, o$cache_dir)) {
    k <- compile_state(st, o, call)
  }
  outcat <- attr(k, "outcat", exact = TRUE)
  outdim <- attr(k, "outdim", exact = TRUE)
  eta <- "eta"
  n <- 0L
  while (eta %in% info$var_name) {
    n <- n + 1L
    eta <- paste0("eta_", n)
  }
  type <- if (identical(outcat, 1L)) "Vj" else "Vi"
  decl <- if (identical(info$decl, "pos_dim")) {
    sprintf("%s=%s(%d,%d)", eta, type, max(info$var_pos) + 1L, outdim)
  } else {
    sprintf("%s=%s(%d)", eta, type, outdim)
  }
  keops_kernel(
    paste0("Grad(", ctx$formula, ",", name, ",", eta, ")"),
    c(ctx$args, decl),
    sum_scheme = ctx$sum_scheme
  )
}

# The kernel state of an operator returned by keops_kernel().
operator_state <- function(operator, call) {
  st <- if (is.function(operator)) {
    tryCatch(get0("st", envir = environment(operator), inherits = FALSE),
             error = function(e) NULL)
  }
  if (!is.environment(st) || is.null(st$formula)) {
    rk_abort(
      paste0("`operator` should be an operator returned by keops_kernel() ",
             "or keops_grad(); received ", class(operator)[1L], "."),
      "arg", call
    )
  }
  st
}

# Name of the argument `var` (a name or a 0-based position) of a formula.
grad_var_name <- function(var, info, call) {
  if (is.character(var) && length(var) == 1L && !is.na(var)) {
    if (!(var %in% info$var_name)) {
      rk_abort(
        paste0(
          msg_grad_var, ": '", var, "' is not one of ",
          paste0("'", info$var_name, "'", collapse = ", "), "."
        ),
        "arg", call
      )
    }
    return(var)
  }
  if (is_whole_number(var) && var >= 0) {
    if (!(var %in% info$var_pos)) {
      rk_abort(
        paste0(msg_grad_var, ": position ", var, " is not in 0..",
               max(info$var_pos), "."),
        "arg", call
      )
    }
    return(info$var_name[info$var_pos == var])
  }
  rk_abort(paste0(msg_grad_var, "; received ", fmt_value(var), "."),
           "arg", call)
}
