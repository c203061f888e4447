# keops_value_and_grad(): value and gradient of a scalar objective built on
# a kernel reduction, for optim() and friends. The chain rule is done with
# the true gradient of keops_grad(): d loss(a) / d v = Grad(Red, v, dloss/da).

#' Value and gradient of an objective built on a kernel reduction
#'
#' For fitting parameters with [optim()] (or any gradient-based optimiser):
#' given an operator computing a reduction \eqn{a} (see [keops_kernel()]),
#' `keops_value_and_grad(operator, var, loss)` returns a function of the
#' operator's input that computes the scalar objective \eqn{L(a)} and its
#' gradient with respect to the argument `var`. The gradient is computed by
#' the chain rule with [keops_grad()]:
#' \eqn{\partial L / \partial v = \mathrm{Grad}(a, v, \partial L / \partial a)}.
#'
#' The returned function remembers its last input and result, so that
#' `optim()`'s separate calls of `fn` and `gr` at the same point cost one
#' evaluation.
#'
#' @param operator an operator returned by [keops_kernel()] whose result is
#'   a matrix (a differentiable reduction: `Sum`, `LogSumExp`,
#'   `LogSumExpWeight`, `SumSoftMaxWeight`, `Min`, `Max`).
#' @param var the argument of the operator to differentiate with respect
#'   to: its name or 0-based position.
#' @param loss `NULL` for \eqn{L(a) = \sum a} (the sum of every entry of
#'   the result), or a function of the result `a` returning
#'   `list(value = L(a), grad = dL/da)` (a number and a matrix of the shape
#'   of `a`).
#'
#' @return A function of `input` (the list of data of the operator, see
#'   [keops_kernel()]) and `inner_dim` (`"col"`, the default, or `"row"`
#'   for transposed data, as for the operator itself) returning
#'   `list(value, gradient)`: the objective and its gradient, a matrix with
#'   the shape of `var`'s data as given (transposed too with
#'   `inner_dim = "row"`; a vector for a `Pm` argument). `loss` always
#'   receives the reduction's result `a` untransposed, one row per index.
#'
#' @seealso [keops_grad()], [optim()]
#' @export
#' @examples
#' # Fit the scale s of a Gaussian kernel smoother (Nadaraya-Watson):
#' # prediction at u_i: sum_j exp(-s |u_i - x_j|^2) y_j / sum_j exp(...)
#' set.seed(1)
#' x <- matrix(runif(300), 300, 1)
#' y <- matrix(sin(6 * x) + rnorm(300, sd = 0.1), 300, 1)
#' u <- matrix(runif(100), 100, 1)
#' z <- sin(6 * u) + rnorm(100, sd = 0.1)
#' op <- keops_kernel(
#'   "SumSoftMaxWeight_Reduction(-s * SqDist(u, x), y, 0)",
#'   c("u = Vi(1)", "x = Vj(1)", "y = Vj(1)", "s = Pm(1)")
#' )
#' vg <- keops_value_and_grad(op, "s", loss = function(a) {
#'   list(value = sum((a - z)^2), grad = 2 * (a - z))
#' })
#' fit <- optim(10, fn = function(s) vg(list(u, x, y, s))$value,
#'              gr = function(s) vg(list(u, x, y, s))$gradient,
#'              method = "L-BFGS-B", lower = 0.01)
#' fit$par
keops_value_and_grad <- function(operator, var, loss = NULL) {
  call <- sys.call()
  operator_state(operator, call)
  info <- operator()$args_info
  name <- grad_var_name(var, info, call)
  is_pm <- info$var_type[info$var_name == name] == "Pm"
  if (!is.null(loss) && !is.function(loss)) {
    rk_abort(
      paste0("`loss` should be NULL or a function of the reduction's ",
             "result returning list(value, grad); received ",
             class(loss)[1L], "."),
      "arg", call
    )
  }
  gop <- keops_grad(operator, name)
  eta <- utils::tail(gop()$args_info$var_name, 1L)
  last_input <- NULL
  last_inner <- NULL
  last_result <- NULL
  rm(call)

  function(input, inner_dim = "col") {
    if (!is.null(last_result) && identical(input, last_input) &&
        identical(inner_dim, last_inner)) {
      return(last_result)
    }
    call <- sys.call()
    if (!identical(inner_dim, "col") && !identical(inner_dim, "row")) {
      rk_abort(
        paste0("`inner_dim` should be \"col\" or \"row\"; received ",
               fmt_value(inner_dim), "."),
        "arg", call
      )
    }
    row <- identical(inner_dim, "row")
    a <- operator(input, inner_dim = inner_dim)
    if (!is.matrix(a)) {
      rk_abort(
        "keops_value_and_grad() needs an operator whose result is a matrix.",
        "arg", call
      )
    }
    if (is.null(loss)) {
      value <- sum(a)
      g <- matrix(1, nrow(a), ncol(a))
    } else {
      l <- loss(a)
      value <- l$value
      g <- l$grad
      if (!is.numeric(value) || length(value) != 1L) {
        rk_abort(
          paste0("`loss(a)$value` should be a single number; received ",
                 fmt_value(value), "."),
          "arg", call
        )
      }
      if (!is.numeric(g) || length(g) != length(a) ||
          (is.matrix(g) && !identical(dim(g), dim(a)))) {
        rk_abort(
          sprintf(paste0("`loss(a)$grad` should have the shape of `a`, ",
                         "%d x %d; received %s."),
                  nrow(a), ncol(a),
                  if (is.matrix(g)) paste(dim(g), collapse = " x ")
                  else paste("length", length(g))),
          "shape", call
        )
      }
      g <- matrix(as.double(g), nrow(a), ncol(a))
    }
    # the gradient operator reads its data as the operator does: the seed
    # dL/da transposed too, and its result (one row per index) transposed
    # back to the shape of var's data
    ginput <- c(input, list(if (row) t(g) else g))
    nm <- names(input)
    if (!is.null(nm) && all(nzchar(nm))) names(ginput)[length(ginput)] <- eta
    gradient <- gop(ginput, inner_dim = inner_dim)
    if (is_pm) gradient <- as.vector(gradient)
    else if (row) gradient <- t(gradient)
    last_input <<- input
    last_inner <<- inner_dim
    last_result <<- list(value = value, gradient = gradient)
    last_result
  }
}
