# Operations on LazyTensors: each one only composes formula text (explicit
# calls such as Add(a,b), never infix text, so that no operator precedence
# question arises) and merges the variables of its operands.

msg_matrix_operand <- function(name) {
  paste0(
    "`", name, "` input argument should be a LazyTensor, a vector or a ",
    "scalar.\nIf you want to use a matrix, convert it to LazyTensor first."
  )
}

msg_complex_unsupported <- function(what) {
  paste0(
    what, " is not yet supported for ComplexLazyTensors in this version of ",
    "rkeops (only `+`, `-` and reductions are)."
  )
}

# Operand of an operation: a LazyTensor, or a vector/scalar converted with
# LazyTensor() (integer scalars become IntCst, others Pm).
as_operand <- function(x, name, call) {
  if (inherits(x, "LazyTensor")) return(x)
  if (is.matrix(x)) rk_abort(msg_matrix_operand(name), "arg", call)
  if (!is.numeric(x) && !is.complex(x)) {
    rk_abort(
      paste0("`", name, "` input argument should be a LazyTensor, a vector ",
             "or a scalar; received ", class(x)[1L], "."),
      "arg", call
    )
  }
  make_lazy_tensor(x, NA, FALSE, call)
}

# opstr(x) or opstr(x,opt_arg) or opstr(x,opt_arg,opt_arg2).
unaryop <- function(x, opstr, opt_arg = NA, opt_arg2 = NA, res_type = NA,
                    dim_res = NA, call = NULL) {
  x <- as_operand(x, "x", call)
  extra <- ""
  if (!(length(opt_arg) == 1L && is.na(opt_arg))) {
    extra <- paste0(",", opt_arg)
    if (!(length(opt_arg2) == 1L && is.na(opt_arg2))) {
      extra <- paste0(extra, ",", opt_arg2)
    }
  }
  if (!is.na(dim_res) && !is_int(dim_res)) {
    rk_abort(
      paste0("If not NA, `dim_res` input argument should be an integer. ",
             "Received ", dim_res, "."),
      "arg", call
    )
  }
  res <- x
  res$formula <- paste0(opstr, "(", x$formula, extra, ")")
  res$dimres <- if (is.na(dim_res)) x$dimres else as.integer(dim_res)
  if (!is.na(res_type)) class(res) <- lt_class(res_type)
  res
}

lt_class <- function(res_type) {
  if (res_type == "ComplexLazyTensor") {
    c("ComplexLazyTensor", "LazyTensor")
  } else {
    "LazyTensor"
  }
}

# Variables and data of two LazyTensors, without duplicates (the same
# variable used twice appears once).
merge_variables <- function(x, y) {
  args <- c(x$args, y$args)
  data <- c(x$data, y$data)
  if (length(args) > 0L) {
    keep <- !duplicated(args)
    if (!all(keep)) {
      args <- args[keep]
      data <- data[keep]
    }
  }
  list(args = args, data = data)
}

# opstr(x,y) with a dimension check: "sameor1" (equal, or one of them is 1),
# "same", or NA (none). Result dimension: max of both unless dim_res.
binaryop <- function(x, y, opstr, dim_check_type = "sameor1", res_type = NA,
                     dim_res = NA, call = NULL) {
  x <- as_operand(x, "x", call)
  y <- as_operand(y, "y", call)
  dx <- x$dimres
  dy <- y$dimres
  if (!is.na(dim_check_type)) {
    if (dim_check_type == "sameor1") {
      if (dx != dy && dx != 1L && dy != 1L) {
        rk_abort(
          sprintf(paste0("Operation `%s` expects inputs of the same ",
                         "dimension or dimension 1. Received %d and %d."),
                  opstr, dx, dy),
          "dim", call
        )
      }
    } else if (dx != dy) {
      rk_abort(
        sprintf(paste0("Operation `%s` expects inputs of the same ",
                       "dimension. Received %d and %d."), opstr, dx, dy),
        "dim", call
      )
    }
  }
  v <- merge_variables(x, y)
  cplx <- inherits(x, "ComplexLazyTensor") || inherits(y, "ComplexLazyTensor")
  new_lazy_tensor(
    formula = paste0(opstr, "(", x$formula, ",", y$formula, ")"),
    args = v$args,
    data = v$data,
    dimres = if (is.na(dim_res)) max(dx, dy) else as.integer(dim_res),
    complex = if (is.na(res_type)) cplx else res_type == "ComplexLazyTensor"
  )
}

#' Arithmetic and mathematical functions of LazyTensors
#'
#' Operations on LazyTensors build a symbolic formula; nothing is computed
#' until a reduction (see [LazyTensor-reductions]).
#'
#' * `x + y`, `x - y`, `x * y`, `x / y`, `-x`: element-wise, as KeOps'
#'   `Add`, `Subtract`, `Mult`, `Divide`, `Minus`. The operands must have
#'   the same inner dimension, or one of them dimension 1 (it is then
#'   broadcast). Numbers and vectors are converted with [LazyTensor()]:
#'   integers become constants (`IntCst`), other numbers parameters (`Pm`).
#' * `x^y`: `x^2` is `Square(x)`, an integer power `Pow(x, n)`, `x^0.5` is
#'   `Sqrt(x)`, `x^-0.5` is `Rsqrt(x)`, any other exponent (or a LazyTensor
#'   exponent) `Powf(x, y)`.
#' * `x | y`: scalar product of two LazyTensors of the same inner dimension
#'   (`Scalprod`), of dimension 1.
#' * `exp(x)`, `log(x)`, `sqrt(x)`, `abs(x)`: element-wise. `log(x, base)`
#'   honours `base`: it is `Log(x) / log(base)`.
#' * [sqnorm2()], [norm2()], [sqdist()]: squared norm, norm and squared
#'   distance (dimension 1).
#'
#' Comparisons and other functions of the `Ops` and `Math` groups are not
#' yet available for LazyTensors in this version and raise an error.
#'
#' @param e1,e2 LazyTensors, numbers or vectors (at least one LazyTensor).
#' @param x a LazyTensor.
#' @param ... further arguments: `base` for [log()].
#'
#' @return A LazyTensor.
#'
#' @name LazyTensor-arithmetic
#' @seealso [LazyTensor()], [LazyTensor-reductions]
#' @examples
#' x_i <- Vi(matrix(runif(12), 4, 3))
#' y_j <- Vj(matrix(runif(15), 5, 3))
#' (x_i - y_j)^2
#' exp(-sqnorm2(x_i - y_j) / 2)
#' log(x_i, base = 2)
#' x_i | y_j
NULL

#' @rdname LazyTensor-arithmetic
#' @export
Ops.LazyTensor <- function(e1, e2) {
  gen <- .Generic
  call <- generic_call(sys.call(), gen)
  unary <- nargs() == 1L
  cplx <- inherits(e1, "ComplexLazyTensor") ||
    (!unary && inherits(e2, "ComplexLazyTensor"))
  if (cplx) {
    both <- !unary && inherits(e1, "ComplexLazyTensor") &&
      inherits(e2, "ComplexLazyTensor")
    if (!(gen %in% c("+", "-")) || (!unary && !both)) {
      what <- paste0(
        "Operator `", gen, "`",
        if (!unary && !both) " between a LazyTensor and a ComplexLazyTensor"
      )
      rk_abort(msg_complex_unsupported(what), "unsupported", call)
    }
  }
  switch(gen,
    "+" = {
      if (unary) {
        rk_abort(
          "'+' operand not implemented for a single LazyTensor argument",
          "arg", call
        )
      }
      binaryop(e1, e2, "Add", call = call)
    },
    "-" = {
      if (unary) unaryop(e1, "Minus", call = call)
      else binaryop(e1, e2, "Subtract", call = call)
    },
    "*" = binaryop(e1, e2, "Mult", call = call),
    "/" = binaryop(e1, e2, "Divide", call = call),
    "^" = lt_power(e1, e2, call),
    "|" = binaryop(e1, e2, "Scalprod", dim_check_type = "same", dim_res = 1L,
                   call = call),
    rk_abort(
      paste0("Operator `", gen, "` is not yet supported for LazyTensors in ",
             "this version of rkeops."),
      "unsupported", call
    )
  )
}

# The call of a group method names the method (Ops.LazyTensor(x, y)): show
# the user's function instead (x + y).
generic_call <- function(call, gen) {
  call[[1L]] <- as.name(gen)
  call
}

# x^y (see LazyTensor-arithmetic).
lt_power <- function(x, y, call) {
  if (!inherits(x, "LazyTensor")) {
    return(binaryop(x, y, "Powf", call = call))
  }
  if (is.numeric(y) && length(y) == 1L && !is.matrix(y) && !is.na(y)) {
    if (y == 2) return(unaryop(x, "Square", call = call))
    if (is_int(y)) {
      return(unaryop(x, "Pow", opt_arg = format(as.integer(y)), call = call))
    }
    if (y == 0.5) return(unaryop(x, "Sqrt", call = call))
    if (y == -0.5) return(unaryop(x, "Rsqrt", call = call))
  }
  binaryop(x, y, "Powf", call = call)
}

# Element-wise functions of the Math group available in this version.
math_ops <- c(exp = "Exp", log = "Log", sqrt = "Sqrt", abs = "Abs")

#' @rdname LazyTensor-arithmetic
#' @export
Math.LazyTensor <- function(x, ...) {
  gen <- .Generic
  call <- generic_call(sys.call(), gen)
  op <- math_ops[gen]
  if (is.na(op)) {
    rk_abort(
      paste0("`", gen, "()` is not yet supported for LazyTensors in this ",
             "version of rkeops."),
      "unsupported", call
    )
  }
  if (inherits(x, "ComplexLazyTensor")) {
    rk_abort(msg_complex_unsupported(paste0("`", gen, "()`")),
             "unsupported", call)
  }
  if (gen == "log") {
    dots <- list(...)
    if (length(dots) > 0L) {
      base <- if ("base" %in% names(dots)) dots[["base"]] else dots[[1L]]
      if (!is.numeric(base) || length(base) != 1L || is.na(base) ||
          base <= 0 || base == 1) {
        rk_abort(
          paste0("`base` should be a positive number other than 1; received ",
                 fmt_value(base), "."),
          "arg", call
        )
      }
      if (base != exp(1)) {
        return(binaryop(unaryop(x, "Log", call = call), log(base),
                        "Divide", call = call))
      }
    }
  }
  unaryop(x, op, call = call)
}

#' @rdname LazyTensor-arithmetic
#' @export
sqnorm2 <- function(x) {
  unaryop(x, "SqNorm2", res_type = "LazyTensor", dim_res = 1L,
          call = sys.call())
}

#' @rdname LazyTensor-arithmetic
#' @export
norm2 <- function(x) {
  unaryop(x, "Norm2", res_type = "LazyTensor", dim_res = 1L,
          call = sys.call())
}

#' @rdname LazyTensor-arithmetic
#' @param y a LazyTensor, a number or a vector.
#' @export
sqdist <- function(x, y) {
  binaryop(x, y, "SqDist", res_type = "LazyTensor", dim_res = 1L,
           call = sys.call())
}

#' Matrix product of a symbolic matrix
#'
#' `K %*% v` is `sum(K * v, index = "j")`: the product of the symbolic
#' matrix `K` (indexed by `i` and `j`) by `v` (indexed by `j`), an
#' \eqn{M \times d} matrix.
#'
#' Before R 4.4.0, where `%*%` is not generic, rkeops exports a `%*%` that
#' calls base `%*%` (see [base::matmult]) for anything but LazyTensors; from R
#' 4.4.0 on, it provides a method of the `matrixOps` group generic instead.
#'
#' @param x,y a LazyTensor and a LazyTensor or a vector (for LazyTensors);
#'   any objects accepted by base `%*%` (see [base::matmult]) otherwise.
#'
#' @return For LazyTensors, a numeric matrix with one row per `i`; otherwise
#'   the result of base `%*%` (see [base::matmult]).
#'
#' @name matmult-LazyTensor
#' @aliases %*% matrixOps.LazyTensor
#' @usage x \%*\% y
#' @rawNamespace if (getRversion() >= "4.4.0") S3method(matrixOps, LazyTensor) else export("%*%")
#' @examples
#' x <- matrix(runif(12), 4, 3)
#' y <- matrix(runif(15), 5, 3)
#' b <- matrix(runif(5), 5, 1)
#' K_ij <- exp(-sqdist(Vi(x), Vj(y)))
#' K_ij %*% Vj(b)
#' matrix(1:4, 2) %*% c(1, 1)  # base behaviour for other objects
`%*%` <- function(x, y) {
  if (inherits(x, "LazyTensor") || inherits(y, "LazyTensor")) {
    return(lt_matmul(x, y, sys.call()))
  }
  base::`%*%`(x, y)
}

matrixOps.LazyTensor <- function(x, y) {
  lt_matmul(x, y, sys.call())
}

lt_matmul <- function(x, y, call) {
  lt_reduction(binaryop(x, y, "Mult", call = call), "Sum", "j", call)
}
