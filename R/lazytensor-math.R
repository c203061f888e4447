# Element-wise functions of LazyTensors that base R does not make generic:
# new S3 generics with a default method (square, rsqrt, inv, xlogx,
# sinxdivx, relu), plain functions that call base R or stats for anything
# but LazyTensors (step, atan2, ifelse), and functions computing the same
# thing in R (mod, clamp, clampint). Decision 7: nothing that base R makes
# generic is masked.

#' Element-wise functions of LazyTensors
#'
#' Element-wise functions that base R does not provide as generics. For a
#' LazyTensor they build a formula (nothing is computed until a reduction);
#' for other input they compute the same function in R.
#'
#' | function | KeOps | value |
#' | --- | --- | --- |
#' | `square(x)` | `Square` | \eqn{x^2} |
#' | `rsqrt(x)` | `Rsqrt` | \eqn{1/\sqrt{x}}, **0 at 0** for LazyTensors |
#' | `inv(x)` | `Inv` | \eqn{1/x} |
#' | `xlogx(x)` | `XLogX` | \eqn{x \log x}, 0 at 0 |
#' | `sinxdivx(x)` | `SinXDivX` | \eqn{\sin x / x}, 1 at 0 |
#' | `relu(x)` | `ReLU` | \eqn{\max(x, 0)} |
#' | `step(x)` | `Step` | 0 if \eqn{x < 0}, 1 if \eqn{x \ge 0} |
#' | `atan2(y, x)` | `Atan2(y, x)` | the angle of the point \eqn{(x, y)} |
#' | `ifelse(test, yes, no)` | `IfElse` | `yes` where `test >= 0`, `no` where `test < 0` |
#' | `mod(x, a, b = 0)` | `Mod(x, a, b)` | \eqn{x - a \lfloor (x - b)/a \rfloor} |
#' | `clamp(x, a, b)` | `Clamp` or `ClampInt` | `a` if \eqn{x < a}, `b` if \eqn{x > b}, else `x` |
#' | `clampint(x, y, z)` | `ClampInt` | `clamp()` with integer bounds |
#'
#' `step()`, `atan2()` and `ifelse()` mask [stats::step()] (model
#' selection), [base::atan2()] and [base::ifelse()], which they call
#' unchanged unless an argument (`object` for `step()`, `test` for
#' `ifelse()`) is a LazyTensor. Note that, for a LazyTensor, `ifelse()`
#' takes `yes` where `test >= 0` (KeOps' `IfElse`), not where `test` is
#' `TRUE`: use e.g. `ifelse(x - y, a, b)` to take `a` where `x >= y`.
#' Binary and ternary functions broadcast operands of dimension 1 against
#' operands of dimension `d`; `clamp()` with integer `a` and `b` uses
#' `ClampInt`.
#'
#' @param x,y,z,a,b,test,yes,no LazyTensors, numbers or vectors (see
#'   Details).
#' @param object a LazyTensor (or any argument of [stats::step()]).
#' @param ... the other arguments of [stats::step()].
#'
#' @return A LazyTensor when an argument is a LazyTensor, else the value of
#'   the function in R.
#'
#' @name LazyTensor-elementwise
#' @seealso [LazyTensor-arithmetic] for the operators and the `Math` group
#'   (`exp`, `log`, `cos`...).
#' @examples
#' x_i <- Vi(matrix(c(-1, 0, 0.5, 2), 4, 1))
#' y_j <- Vj(matrix(c(-0.5, 1), 2, 1))
#' sum(relu(x_i - y_j), index = "j")
#' sum(ifelse(x_i - y_j, 1, -1), index = "j")
#' sum(clamp(x_i * y_j, -0.5, 0.5), index = "i")
#' sum(mod(x_i + y_j, 0.75), index = "j")
#' square(3)
#' atan2(1, 1)
NULL

#' @rdname LazyTensor-elementwise
#' @export
square <- function(x) UseMethod("square")

#' @rdname LazyTensor-elementwise
#' @export
square.default <- function(x) x^2

#' @rdname LazyTensor-elementwise
#' @export
square.LazyTensor <- function(x) lt_unary_real(x, "Square", sys.call())

#' @rdname LazyTensor-elementwise
#' @export
rsqrt <- function(x) UseMethod("rsqrt")

#' @rdname LazyTensor-elementwise
#' @export
rsqrt.default <- function(x) 1 / sqrt(x)

#' @rdname LazyTensor-elementwise
#' @export
rsqrt.LazyTensor <- function(x) lt_unary_real(x, "Rsqrt", sys.call())

#' @rdname LazyTensor-elementwise
#' @export
inv <- function(x) UseMethod("inv")

#' @rdname LazyTensor-elementwise
#' @export
inv.default <- function(x) 1 / x

#' @rdname LazyTensor-elementwise
#' @export
inv.LazyTensor <- function(x) lt_unary_real(x, "Inv", sys.call())

#' @rdname LazyTensor-elementwise
#' @export
xlogx <- function(x) UseMethod("xlogx")

#' @rdname LazyTensor-elementwise
#' @export
xlogx.default <- function(x) {
  r <- x * log(x)
  r[!is.na(x) & x == 0] <- 0
  r
}

#' @rdname LazyTensor-elementwise
#' @export
xlogx.LazyTensor <- function(x) lt_unary_real(x, "XLogX", sys.call())

#' @rdname LazyTensor-elementwise
#' @export
sinxdivx <- function(x) UseMethod("sinxdivx")

#' @rdname LazyTensor-elementwise
#' @export
sinxdivx.default <- function(x) {
  r <- sin(x) / x
  r[!is.na(x) & x == 0] <- 1
  r
}

#' @rdname LazyTensor-elementwise
#' @export
sinxdivx.LazyTensor <- function(x) lt_unary_real(x, "SinXDivX", sys.call())

#' @rdname LazyTensor-elementwise
#' @export
relu <- function(x) UseMethod("relu")

#' @rdname LazyTensor-elementwise
#' @export
relu.default <- function(x) {
  r <- x
  r[!is.na(x) & x < 0] <- 0
  r
}

#' @rdname LazyTensor-elementwise
#' @export
relu.LazyTensor <- function(x) lt_unary_real(x, "ReLU", sys.call())

#' @rdname LazyTensor-elementwise
#' @export
step <- function(object, ...) {
  if (inherits(object, "LazyTensor")) {
    return(lt_unary_real(object, "Step", sys.call()))
  }
  # stats::step() refits models in its caller's frame: call it from there,
  # with `object` already evaluated and the other arguments untouched.
  cl <- match.call(expand.dots = TRUE)
  cl[[1L]] <- quote(stats::step)
  cl$object <- object
  eval(cl, parent.frame())
}

#' @rdname LazyTensor-elementwise
#' @export
atan2 <- function(y, x) {
  if (inherits(y, "LazyTensor") || inherits(x, "LazyTensor")) {
    call <- sys.call()
    no_complex(list(y = y, x = x), "atan2", call)
    return(binaryop(y, x, "Atan2", call = call, label = "atan2"))
  }
  base::atan2(y, x)
}

#' @rdname LazyTensor-elementwise
#' @export
ifelse <- function(test, yes, no) {
  if (inherits(test, "LazyTensor")) {
    call <- sys.call()
    if (inherits(test, "ComplexLazyTensor") ||
        inherits(yes, "ComplexLazyTensor") ||
        inherits(no, "ComplexLazyTensor")) {
      rk_abort(
        paste0("`test`, `yes` and `no` input arguments cannot be ",
               "ComplexLazyTensors."),
        "arg", call
      )
    }
    return(ternaryop(test, yes, no, "IfElse", call = call))
  }
  base::ifelse(test, yes, no)
}

#' @rdname LazyTensor-elementwise
#' @export
mod <- function(x, a, b = 0) {
  if (inherits(x, "LazyTensor") || inherits(a, "LazyTensor") ||
      inherits(b, "LazyTensor")) {
    call <- sys.call()
    no_complex(list(x = x, a = a, b = b), "mod", call)
    return(ternaryop(x, a, b, "Mod", call = call))
  }
  x - a * floor((x - b) / a)
}

#' @rdname LazyTensor-elementwise
#' @export
clamp <- function(x, a, b) {
  if (inherits(x, "LazyTensor") || inherits(a, "LazyTensor") ||
      inherits(b, "LazyTensor")) {
    call <- sys.call()
    if (inherits(x, "ComplexLazyTensor") || inherits(a, "ComplexLazyTensor") ||
        inherits(b, "ComplexLazyTensor")) {
      rk_abort(
        "`x`, `a` and `b` input arguments cannot be ComplexLazyTensors.",
        "arg", call
      )
    }
    if (is_int(a) && is_int(b)) {
      return(unaryop(x, "ClampInt", opt_arg = as.integer(a),
                     opt_arg2 = as.integer(b), call = call))
    }
    return(ternaryop(x, a, b, "Clamp", call = call))
  }
  pmin(pmax(x, a), b)
}

#' @rdname LazyTensor-elementwise
#' @export
clampint <- function(x, y, z) {
  call <- sys.call()
  if (!is_int(y) || !is_int(z)) {
    rk_abort(
      paste0("`clampint(x, y, z)` expects integer arguments for `y` and `z`. ",
             "Use clamp(x, y, z) for different `y` and `z` types."),
      "arg", call
    )
  }
  if (!inherits(x, "LazyTensor")) return(pmin(pmax(x, y), z))
  if (inherits(x, "ComplexLazyTensor")) {
    rk_abort("`x` cannot be a ComplexLazyTensor.", "arg", call)
  }
  unaryop(x, "ClampInt", opt_arg = as.integer(y), opt_arg2 = as.integer(z),
          call = call)
}

# A unary function of real LazyTensors.
lt_unary_real <- function(x, opstr, call) {
  fun <- tolower(opstr)
  if (is.name(call[[1L]])) call[[1L]] <- as.name(fun)
  if (inherits(x, "ComplexLazyTensor")) {
    rk_abort(msg_complex_unsupported(paste0("`", fun, "()`")),
             "unsupported", call)
  }
  unaryop(x, opstr, call = call)
}

# Refuse ComplexLazyTensor arguments of a real function.
no_complex <- function(args, fun, call) {
  for (n in names(args)) {
    if (inherits(args[[n]], "ComplexLazyTensor") || is.complex(args[[n]])) {
      rk_abort(
        paste0("`", n, "` input argument of `", fun, "()` cannot be ",
               "complex."),
        "arg", call
      )
    }
  }
}
