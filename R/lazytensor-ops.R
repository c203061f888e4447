# Operations on LazyTensors: each one only composes formula text (explicit
# calls such as Add(a,b), never infix text, so that no operator precedence
# question arises) and merges the variables of its operands.

msg_complex_unsupported <- function(what) {
  paste0(
    what, " is not defined for ComplexLazyTensors in rkeops (see ",
    "?`LazyTensor-complex` for the complex operations)."
  )
}

# Operand of an operation: a LazyTensor, or a vector/scalar converted with
# LazyTensor() (integer scalars become IntCst, others Pm; complex numbers
# a complex Pm).
as_operand <- function(x, name, call,
                       what = "a LazyTensor, a vector or a scalar") {
  if (inherits(x, "LazyTensor")) return(x)
  if (is.matrix(x)) {
    rk_abort(
      paste0("`", name, "` input argument should be ", what, ".\n",
             "If you want to use a matrix, convert it to LazyTensor first."),
      "arg", call
    )
  }
  if (!is.numeric(x) && !is.complex(x)) {
    rk_abort(
      paste0("`", name, "` input argument should be ", what,
             "; received ", class(x)[1L], "."),
      "arg", call
    )
  }
  make_lazy_tensor(x, NA, FALSE, call)
}

is_na1 <- function(x) length(x) == 1L && !is.list(x) && is.na(x)

check_dim_res <- function(dim_res, call) {
  if (!is_na1(dim_res) && !is_int(dim_res)) {
    rk_abort(
      paste0("If not NA, `dim_res` input argument should be an integer. ",
             "Received ", fmt_value(dim_res), "."),
      "arg", call
    )
  }
}

# opstr(x) or opstr(x,opt_arg) or opstr(x,opt_arg,opt_arg2).
unaryop <- function(x, opstr, opt_arg = NA, opt_arg2 = NA, res_type = NA,
                    dim_res = NA, call = NULL) {
  if (!inherits(x, "LazyTensor")) x <- as_operand(x, "x", call)
  extra <- ""
  if (!is_na1(opt_arg)) {
    extra <- paste0(",", fmt_param(opt_arg))
    if (!is_na1(opt_arg2)) extra <- paste0(extra, ",", fmt_param(opt_arg2))
  }
  if (!is_na1(dim_res)) check_dim_res(dim_res, call)
  cplx <- if (is.na(res_type)) inherits(x, "ComplexLazyTensor") else
    res_type == "ComplexLazyTensor"
  .Call(rk_lt_node_r, opstr, FALSE, list(x), extra,
        if (is.na(dim_res)) x$dimres else dim_res, cplx)
}

# Integer parameters of an operation, written without exponent.
fmt_param <- function(v) {
  if (is.numeric(v)) format(v, scientific = FALSE) else as.character(v)
}

# Variables and data of LazyTensors, without duplicates (the same
# variable used twice appears once), as an operation merges them
# (src/r_lazy.c).
merge_variables <- function(x, y, z = NULL) {
  .Call(rk_lt_merge_r, list(x, y, z))
}

# Dimension check of 2 or 3 operands: "sameor1" (equal, or 1), "same", or
# NA (none).
check_dims <- function(dims, opstr, dim_check_type, call) {
  if (is_na1(dim_check_type)) return(invisible())
  u <- unique(dims)
  if (length(u) == 1L) return(invisible())
  received <- if (length(dims) == 2L) {
    sprintf("%d and %d", dims[1L], dims[2L])
  } else {
    sprintf("%d, %d and %d", dims[1L], dims[2L], dims[3L])
  }
  if (dim_check_type == "sameor1") {
    if (length(u[u != 1L]) > 1L) {
      rk_abort(
        sprintf(paste0("Operation `%s` expects inputs of the same ",
                       "dimension or dimension 1. Received %s."),
                opstr, received),
        "dim", call
      )
    }
  } else {
    rk_abort(
      sprintf(paste0("Operation `%s` expects inputs of the same ",
                     "dimension. Received %s."), opstr, received),
      "dim", call
    )
  }
}

# opstr(x,y) (or (x<opstr>y) when is_operator, or opstr(x,opt_arg,y) with
# a LazyTensor opt_arg) with a dimension check. Result dimension: max of
# both unless dim_res; complex when an operand is, unless res_type. label:
# the operation as the user wrote it, for messages (`+` rather than Add).
binaryop <- function(x, y, opstr, is_operator = FALSE,
                     dim_check_type = "sameor1", res_type = NA,
                     dim_res = NA, opt_arg = NA, call = NULL, label = opstr) {
  if (!inherits(x, "LazyTensor")) x <- as_operand(x, "x", call)
  if (!inherits(y, "LazyTensor")) y <- as_operand(y, "y", call)
  dx <- x$dimres
  dy <- y$dimres
  if (dx != dy) check_dims(c(dx, dy), label, dim_check_type, call)
  if (!is_na1(dim_res)) check_dim_res(dim_res, call)
  cplx <- if (is.na(res_type)) {
    inherits(x, "ComplexLazyTensor") || inherits(y, "ComplexLazyTensor") ||
      inherits(opt_arg, "ComplexLazyTensor")
  } else {
    res_type == "ComplexLazyTensor"
  }
  dr <- if (is.na(dim_res)) max(dx, dy) else dim_res
  if (isTRUE(is_operator)) {
    .Call(rk_lt_node_r, opstr, TRUE, list(x, y), "", dr, cplx)
  } else if (inherits(opt_arg, "LazyTensor")) {
    .Call(rk_lt_node_r, opstr, FALSE, list(x, opt_arg, y), "", dr, cplx)
  } else {
    .Call(rk_lt_node_r, opstr, FALSE, list(x, y), "", dr, cplx)
  }
}

# opstr(x,y,z) with a dimension check; complex when x or y is.
ternaryop <- function(x, y, z, opstr, dim_check_type = "sameor1",
                      dim_res = NA, call = NULL) {
  what <- "a LazyTensor, a ComplexLazyTensor, a vector or a scalar"
  x <- as_operand(x, "x", call, what)
  y <- as_operand(y, "y", call, what)
  z <- as_operand(z, "z", call, what)
  dims <- c(x$dimres, y$dimres, z$dimres)
  check_dims(dims, opstr, dim_check_type, call)
  check_dim_res(dim_res, call)
  .Call(rk_lt_node_r, opstr, FALSE, list(x, y, z), "",
        if (is.na(dim_res)) max(dims) else dim_res,
        inherits(x, "ComplexLazyTensor") || inherits(y, "ComplexLazyTensor"))
}

#' Build LazyTensor operations from KeOps operation names
#'
#' Low-level builders used by every LazyTensor operation; they only
#' compose formula text and merge the variables (and data) of their
#' operands, removing duplicates.
#'
#' * `unaryop.LazyTensor(x, "Exp")` is `Exp(x)`; with `opt_arg` (and
#'   `opt_arg2`), integer parameters: `unaryop.LazyTensor(x, "Pow", 3)` is
#'   `Pow(x,3)`.
#' * `binaryop.LazyTensor(x, y, "Add")` is `Add(x,y)`; with
#'   `is_operator = TRUE`, the infix `(x<opstr>y)`; with a LazyTensor
#'   `opt_arg`, `opstr(x,opt_arg,y)`.
#' * `ternaryop.LazyTensor(x, y, z, "IfElse")` is `IfElse(x,y,z)`.
#'
#' Numbers and vectors are converted with [LazyTensor()] (integers become
#' `IntCst`, other values `Pm` parameters, complex values complex
#' parameters); a matrix is refused (convert it with [Vi()] or [Vj()]).
#' `dim_check_type` checks the inner dimensions: `"sameor1"` (equal, or one
#' of them 1), `"same"`, or `NA` (no check). The result has inner dimension
#' `dim_res` if given, else that of `x` (unary) or the largest one; it is a
#' ComplexLazyTensor if `res_type = "ComplexLazyTensor"`, or (when
#' `res_type` is `NA`) if an operand is.
#'
#' @param x,y,z LazyTensors, numbers or vectors.
#' @param opstr the name of a KeOps operation, e.g. `"Exp"` (or an infix
#'   operator with `is_operator = TRUE`).
#' @param opt_arg,opt_arg2 `NA` or integer parameters of the operation
#'   (`unaryop.LazyTensor`); `NA` or a LazyTensor inserted as the middle
#'   operand (`binaryop.LazyTensor`).
#' @param is_operator `TRUE` to write `(x<opstr>y)` instead of
#'   `opstr(x,y)`.
#' @param dim_check_type `"sameor1"`, `"same"` or `NA`.
#' @param res_type `NA`, `"LazyTensor"` or `"ComplexLazyTensor"`: the class
#'   of the result.
#' @param dim_res `NA` or the inner dimension of the result (an integer).
#'
#' @return A LazyTensor (or ComplexLazyTensor).
#'
#' @seealso [LazyTensor-arithmetic], [LazyTensor-elementwise]
#' @export
#' @examples
#' x_i <- Vi(matrix(runif(6), 3, 2))
#' y_j <- Vj(matrix(runif(8), 4, 2))
#' unaryop.LazyTensor(x_i, "Pow", opt_arg = 3)
#' binaryop.LazyTensor(x_i, y_j, "SqDist", dim_res = 1)
#' binaryop.LazyTensor(x_i, y_j, "-", is_operator = TRUE)
#' ternaryop.LazyTensor(x_i, y_j, 0, "IfElse")
unaryop.LazyTensor <- function(x, opstr, opt_arg = NA, opt_arg2 = NA,
                               res_type = NA, dim_res = NA) {
  call <- sys.call()
  check_opstr(opstr, call)
  unaryop(x, opstr, opt_arg, opt_arg2, res_type, dim_res, call)
}

#' @rdname unaryop.LazyTensor
#' @export
binaryop.LazyTensor <- function(x, y, opstr, is_operator = FALSE,
                                dim_check_type = "sameor1", res_type = NA,
                                dim_res = NA, opt_arg = NA) {
  call <- sys.call()
  check_opstr(opstr, call)
  binaryop(x, y, opstr, is_operator, dim_check_type, res_type, dim_res,
           opt_arg, call)
}

#' @rdname unaryop.LazyTensor
#' @export
ternaryop.LazyTensor <- function(x, y, z, opstr, dim_check_type = "sameor1",
                                 dim_res = NA) {
  call <- sys.call()
  check_opstr(opstr, call)
  ternaryop(x, y, z, opstr, dim_check_type, dim_res, call)
}

check_opstr <- function(opstr, call) {
  if (!is.character(opstr) || length(opstr) != 1L || is.na(opstr) ||
      !nzchar(opstr)) {
    rk_abort("`opstr` input should be a string text.", "arg", call)
  }
}

#' Arithmetic, comparisons and mathematical functions of LazyTensors
#'
#' Operations on LazyTensors build a symbolic formula; nothing is computed
#' until a reduction (see [LazyTensor-reductions]). They are methods of the
#' `Ops` and `Math` group generics, so base R functions are not masked.
#'
#' * `x + y`, `x - y`, `x * y`, `x / y`, `-x`: element-wise, as KeOps'
#'   `Add`, `Subtract`, `Mult`, `Divide`, `Minus`. The operands must have
#'   the same inner dimension, or one of them dimension 1 (it is then
#'   broadcast). Numbers and vectors are converted with [LazyTensor()]:
#'   integers become constants (`IntCst`), other numbers parameters (`Pm`).
#' * `x^y`: `x^2` is `Square(x)`, an integer power `Pow(x, n)`, `x^0.5` is
#'   `Sqrt(x)`, `x^-0.5` is `Rsqrt(x)`, any other exponent (or a LazyTensor
#'   exponent) `Powf(x, y)` \eqn{= \exp(y \log x)}.
#' * `x %% y` is `Mod(x, y, 0)`, \eqn{x - y \lfloor x / y \rfloor} (R's
#'   `%%`); `x %/% y` is `Floor(x / y)`.
#' * `x | y`: scalar product of two LazyTensors of the same inner dimension
#'   (`Scalprod`), of dimension 1.
#' * `x == y`, `x != y`, `x < y`, `x > y`, `x <= y`, `x >= y`: 1 where the
#'   comparison holds, 0 elsewhere (`Equal`, `NotEqual`, `LessThan`,
#'   `LessOrEqual`), element-wise with broadcasting. `&` and `!` are not
#'   available.
#' * `exp`, `log`, `sqrt`, `abs`, `sign`, `cos`, `sin`, `tan`, `acos`,
#'   `asin`, `atan`, `floor`, `ceiling`, `trunc`: element-wise.
#'   `log(x, base)` honours `base` (`Log(x) / log(base)`), as do `log2()`
#'   and `log10()`. `round(x, digits)` is `Round(x, digits)` (halves are
#'   rounded away from zero, while R rounds them to even). Other functions
#'   of the `Math` group (`cumsum`, `gamma`...) are not available.
#'
#' For ComplexLazyTensors, see [LazyTensor-complex].
#'
#' @param e1,e2 LazyTensors, numbers or vectors (at least one LazyTensor).
#' @param x a LazyTensor.
#' @param ... further arguments: `base` for [log()], `digits` for
#'   [round()].
#'
#' @return A LazyTensor.
#'
#' @name LazyTensor-arithmetic
#' @seealso [LazyTensor()], [LazyTensor-elementwise],
#'   [LazyTensor-reductions]
#' @examples
#' x_i <- Vi(matrix(runif(12), 4, 3))
#' y_j <- Vj(matrix(runif(15), 5, 3))
#' (x_i - y_j)^2
#' exp(-sqnorm2(x_i - y_j) / 2)
#' log(x_i, base = 2)
#' x_i | y_j
#' sum(x_i < y_j, index = "j")   # per i and coordinate: number of y_j above
#' round(x_i * 10, 1)
NULL

#' @rdname LazyTensor-arithmetic
#' @export
Ops.LazyTensor <- function(e1, e2) {
  gen <- .Generic
  # fast path (src/r_lazy.c): + - * / | and unary minus of real
  # LazyTensors of compatible dimensions
  r <- .Call(rk_lt_fast_r, gen, nargs(), e1, if (nargs() == 2L) e2)
  if (!is.null(r)) return(r)
  call <- generic_call(sys.call(), gen)
  unary <- nargs() == 1L
  if (inherits(e1, "ComplexLazyTensor") ||
      (!unary && (inherits(e2, "ComplexLazyTensor") || is.complex(e2) ||
                  is.complex(e1)))) {
    return(complex_ops(gen, e1, e2, unary, call))
  }
  switch(gen,
    "+" = {
      if (unary) {
        rk_abort(
          "'+' operand not implemented for a single LazyTensor argument",
          "arg", call
        )
      }
      binaryop(e1, e2, "Add", call = call, label = gen)
    },
    "-" = {
      if (unary) unaryop(e1, "Minus", call = call)
      else binaryop(e1, e2, "Subtract", call = call, label = gen)
    },
    "*" = binaryop(e1, e2, "Mult", call = call, label = gen),
    "/" = binaryop(e1, e2, "Divide", call = call, label = gen),
    "^" = lt_power(e1, e2, call),
    "%%" = ternaryop(e1, e2, 0L, "Mod", call = call),
    "%/%" = unaryop(binaryop(e1, e2, "Divide", call = call, label = gen), "Floor",
                    call = call),
    "|" = binaryop(e1, e2, "Scalprod", dim_check_type = "same", dim_res = 1L,
                   call = call, label = gen),
    "==" = binaryop(e1, e2, "Equal", call = call, label = gen),
    "!=" = binaryop(e1, e2, "NotEqual", call = call, label = gen),
    "<" = binaryop(e1, e2, "LessThan", call = call, label = gen),
    ">" = binaryop(e2, e1, "LessThan", call = call),
    "<=" = binaryop(e1, e2, "LessOrEqual", call = call, label = gen),
    ">=" = binaryop(e2, e1, "LessOrEqual", call = call),
    rk_abort(
      paste0("Operator `", gen, "` is not available for LazyTensors."),
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
      return(unaryop(x, "Pow", opt_arg = as.integer(y), call = call))
    }
    if (y == 0.5) return(unaryop(x, "Sqrt", call = call))
    if (y == -0.5) return(unaryop(x, "Rsqrt", call = call))
  }
  binaryop(x, y, "Powf", call = call)
}

# Element-wise functions of the Math group that are one KeOps operation.
math_ops <- c(
  exp = "Exp", log = "Log", sqrt = "Sqrt", abs = "Abs", sign = "Sign",
  cos = "Cos", sin = "Sin", acos = "Acos", asin = "Asin", atan = "Atan",
  floor = "Floor"
)

#' @rdname LazyTensor-arithmetic
#' @export
Math.LazyTensor <- function(x, ...) {
  gen <- .Generic
  if (...length() == 0L) {
    r <- .Call(rk_lt_fast_r, gen, 1L, x, NULL)
    if (!is.null(r)) return(r)
  }
  call <- generic_call(sys.call(), gen)
  if (inherits(x, "ComplexLazyTensor")) return(complex_math(gen, x, call))
  op <- math_ops[gen]
  if (!is.na(op)) {
    if (gen == "log") {
      dots <- list(...)
      if (length(dots) > 0L) {
        base <- if ("base" %in% names(dots)) dots[["base"]] else dots[[1L]]
        return(log_base(x, base, call))
      }
    }
    return(unaryop(x, op, call = call))
  }
  switch(gen,
    log2 = log_base(x, 2, call),
    log10 = log_base(x, 10, call),
    tan = binaryop(unaryop(x, "Sin", call = call),
                   unaryop(x, "Cos", call = call), "Divide", call = call),
    ceiling = unaryop(unaryop(unaryop(x, "Minus", call = call), "Floor",
                              call = call), "Minus", call = call),
    trunc = binaryop(unaryop(x, "Sign", call = call),
                     unaryop(unaryop(x, "Abs", call = call), "Floor",
                             call = call), "Mult", call = call),
    round = {
      dots <- list(...)
      digits <- if (length(dots) == 0L) 0 else if ("digits" %in% names(dots))
        dots[["digits"]] else dots[[1L]]
      if (!is_int(digits)) {
        rk_abort(
          paste0("`digits` input argument should be a scalar integer; ",
                 "received ", fmt_value(digits), "."),
          "arg", call
        )
      }
      unaryop(x, "Round", opt_arg = as.integer(digits), call = call)
    },
    rk_abort(
      paste0("`", gen, "()` is not available for LazyTensors."),
      "unsupported", call
    )
  )
}

log_base <- function(x, base, call) {
  if (!is.numeric(base) || length(base) != 1L || is.na(base) ||
      base <= 0 || base == 1) {
    rk_abort(
      paste0("`base` should be a positive number other than 1; received ",
             fmt_value(base), "."),
      "arg", call
    )
  }
  if (base == exp(1)) return(unaryop(x, "Log", call = call))
  binaryop(unaryop(x, "Log", call = call), log(base), "Divide", call = call)
}

#' Matrix product of a symbolic matrix
#'
#' `K %*% v` is `sum(K * v, index = "j")`: the product of the symbolic
#' matrix `K` (indexed by `i` and `j`) by `v` (indexed by `j`), an
#' \eqn{M \times d} matrix.
#'
#' Before R 4.3.0, where `%*%` is not generic, rkeops exports a `%*%` that
#' calls base `%*%` (see [base::matmult]) for anything but LazyTensors; from R
#' 4.3.0 on, where `%*%` is an S3 generic of the `matrixOps` group, it
#' registers a `matrixOps` method instead and masks nothing.
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
#' @rawNamespace if (getRversion() >= "4.3.0") S3method(matrixOps, LazyTensor) else export("%*%")
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
  cplx <- inherits(x, "ComplexLazyTensor") || inherits(y, "ComplexLazyTensor")
  xy <- if (cplx) {
    complex_mult(as_operand(x, "x", call), as_operand(y, "y", call), call)
  } else {
    binaryop(x, y, "Mult", call = call)
  }
  lt_reduction(xy, "Sum", "j", call)
}
