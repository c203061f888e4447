# ComplexLazyTensors: complex data stored as interleaved (real, imaginary)
# columns, KeOps dimension 2 d for R-level dimension d. Arithmetic uses the
# Complex* operations of the formula language; real operands are converted
# with Real2Complex, real scalars multiply with ComplexRealScal and complex
# scalars with ComplexScal (decision 9: it works here).

#' Complex LazyTensors
#'
#' A ComplexLazyTensor is built from complex data (`Vi(z)` for a complex
#' matrix `z`, `Pm(1 + 2i)`), or with `is_complex = TRUE` (see
#' [LazyTensor()]). Its data are stored with interleaved real and
#' imaginary columns; reductions return them that way (a matrix with
#' columns `Re, Im, Re, Im, ...`), and `as.matrix()` returns R complex
#' values.
#'
#' * `z + w`, `z - w`, `z * w`, `z / w`, `-z`: complex arithmetic
#'   (`ComplexAdd`, `ComplexSubtract`, `ComplexMult`, `ComplexDivide`,
#'   `Minus`). A real operand is converted with `real2complex()`; a real
#'   scalar multiplies with `ComplexRealScal`, a complex scalar with
#'   `ComplexScal`; operands of dimension 1 are broadcast.
#' * `Re(z)`, `Im(z)`, `Arg(z)`, `Mod(z)` (also `abs(z)`): real
#'   LazyTensors (`ComplexReal`, `ComplexImag`, `ComplexAngle`,
#'   `ComplexAbs`) of the same dimension; `Conj(z)`: the conjugate;
#'   `exp(z)`: the complex exponential.
#' * `real2complex(x)`, `imag2complex(x)`: the complex LazyTensor `x + 0i`,
#'   `0 + x i` of a real LazyTensor; `exp1j(x)`: \eqn{e^{i x}}.
#' * `sum(z)` (no `index`): the sum of the coordinates (`ComplexSum`),
#'   of dimension 1; `sum(z, index = "j")` and `sum(z, index = "i")` are
#'   reductions.
#'
#' Other functions (`sqrt`, comparisons, `min`...) are not defined for
#' ComplexLazyTensors and raise an error; `Re`, `Im`, `Arg`, `Mod` and
#' `Conj` raise an error for real LazyTensors.
#'
#' @param z a ComplexLazyTensor.
#' @param x a real LazyTensor.
#'
#' @return A LazyTensor or a ComplexLazyTensor.
#'
#' @name LazyTensor-complex
#' @aliases Complex.LazyTensor
#' @seealso [LazyTensor()], [LazyTensor-arithmetic]
#' @examples
#' z <- matrix(complex(real = runif(6), imaginary = runif(6)), 3, 2)
#' w <- matrix(complex(real = runif(4), imaginary = runif(4)), 2, 2)
#' z_i <- Vi(z)
#' w_j <- Vj(w)
#' res <- sum(z_i * w_j, index = "j")      # interleaved columns
#' complex(real = res[, 1], imaginary = res[, 2])
#' z[, 1] * sum(w[, 1])
#' sum(Mod(z_i - w_j), index = "j")
#' sum(exp1j(Vi(matrix(c(0, pi / 2), 2, 1))), index = "j")
NULL

#' @rdname LazyTensor-complex
#' @export
Complex.LazyTensor <- function(z) {
  gen <- .Generic
  call <- generic_call(sys.call(), gen)
  if (!inherits(z, "ComplexLazyTensor")) {
    rk_abort(
      paste0("`", gen, "` cannot be applied to a LazyTensor. See `?", gen,
             "` for compatible types."),
      "arg", call
    )
  }
  switch(gen,
    Re = unaryop(z, "ComplexReal", res_type = "LazyTensor", call = call),
    Im = unaryop(z, "ComplexImag", res_type = "LazyTensor", call = call),
    Arg = unaryop(z, "ComplexAngle", res_type = "LazyTensor", call = call),
    Mod = unaryop(z, "ComplexAbs", res_type = "LazyTensor", call = call),
    Conj = unaryop(z, "Conj", call = call),
    rk_abort(msg_complex_unsupported(paste0("`", gen, "()`")),
             "unsupported", call)
  )
}

#' @rdname LazyTensor-complex
#' @export
real2complex <- function(x) {
  to_complex_op(x, "Real2Complex", "real2complex", sys.call())
}

#' @rdname LazyTensor-complex
#' @export
imag2complex <- function(x) {
  to_complex_op(x, "Imag2Complex", "imag2complex", sys.call())
}

#' @rdname LazyTensor-complex
#' @export
exp1j <- function(x) {
  to_complex_op(x, "ComplexExp1j", "exp1j", sys.call())
}

to_complex_op <- function(x, opstr, fun, call) {
  if (!inherits(x, "LazyTensor")) {
    rk_abort(
      paste0("`", fun, "` applies to a LazyTensor; received ",
             class(x)[1L], "."),
      "arg", call
    )
  }
  if (inherits(x, "ComplexLazyTensor")) {
    rk_abort(paste0("`", fun, "` cannot be applied to a ComplexLazyTensor."),
             "arg", call)
  }
  unaryop(x, opstr, res_type = "ComplexLazyTensor", call = call)
}

# A real operand as a ComplexLazyTensor.
as_complex_operand <- function(x, call) {
  if (inherits(x, "ComplexLazyTensor")) return(x)
  unaryop(x, "Real2Complex", res_type = "ComplexLazyTensor", call = call)
}

# Operators of the Ops group with a ComplexLazyTensor operand.
complex_ops <- function(gen, e1, e2, unary, call) {
  if (unary) {
    if (gen == "-") return(unaryop(e1, "Minus", call = call))
    if (gen == "+") {
      rk_abort(
        "'+' operand not implemented for a single ComplexLazyTensor argument",
        "arg", call
      )
    }
    rk_abort(msg_complex_unsupported(paste0("Operator `", gen, "`")),
             "unsupported", call)
  }
  x <- as_operand(e1, "x", call)
  y <- as_operand(e2, "y", call)
  switch(gen,
    "+" = binaryop(as_complex_operand(x, call), as_complex_operand(y, call),
                   "ComplexAdd", call = call, label = gen),
    "-" = binaryop(as_complex_operand(x, call), as_complex_operand(y, call),
                   "ComplexSubtract", call = call, label = gen),
    "*" = complex_mult(x, y, call),  # messages say `*`
    "/" = binaryop(as_complex_operand(x, call), as_complex_operand(y, call),
                   "ComplexDivide", call = call, label = gen),
    rk_abort(msg_complex_unsupported(paste0("Operator `", gen, "`")),
             "unsupported", call)
  )
}

complex_mult <- function(x, y, call) {
  xr <- !inherits(x, "ComplexLazyTensor")
  yr <- !inherits(y, "ComplexLazyTensor")
  if ((xr && x$dimres == 1L) || (yr && y$dimres == 1L)) {
    return(binaryop(x, y, "ComplexRealScal", dim_check_type = NA,
                    res_type = "ComplexLazyTensor",
                    dim_res = if (xr) y$dimres else x$dimres, call = call))
  }
  x <- as_complex_operand(x, call)
  y <- as_complex_operand(y, call)
  if (x$dimres != y$dimres && (x$dimres == 1L || y$dimres == 1L)) {
    return(binaryop(x, y, "ComplexScal", call = call, label = "*"))
  }
  binaryop(x, y, "ComplexMult", call = call, label = "*")
}

# Functions of the Math group for ComplexLazyTensors.
complex_math <- function(gen, x, call) {
  switch(gen,
    exp = unaryop(x, "ComplexExp", call = call),
    abs = unaryop(x, "ComplexAbs", res_type = "LazyTensor", call = call),
    rk_abort(msg_complex_unsupported(paste0("`", gen, "()`")),
             "unsupported", call)
  )
}
