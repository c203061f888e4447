# LazyTensor objects: a formula (text), the declarations of its variables
# and their data. Variables are named with identifiers unique to the data
# object that created them ("A" + session token + "n" + counter + suffix
# "i", "j" or "NA"); they are renamed V0, V1, ... only when a reduction
# builds its kernel, so the compiled kernel does not depend on them. A
# LazyTensor holds its data, not a pointer: it survives saveRDS().

#' Symbolic matrices: create a LazyTensor
#'
#' A LazyTensor wraps R data into a symbolic matrix indexed by `i` and `j`.
#' Operations on LazyTensors (arithmetic, [exp()], [sqnorm2()], ...) only
#' build a formula; a reduction such as `sum(x, index = "j")` compiles and
#' runs it (see [sum.LazyTensor][LazyTensor-reductions]).
#'
#' * A matrix `x` with `index = "i"` becomes a variable indexed by `i`
#'   (`Vi`): row `i` of `x` is the vector \eqn{x_i}. With `index = "j"` it
#'   is indexed by `j` (`Vj`).
#' * A vector, or a non-integer scalar, with `index = NA` becomes a
#'   parameter (`Pm`), the same for every `i` and `j`.
#' * An integer-valued scalar (e.g. `3`) becomes the constant `IntCst(3)`,
#'   with no data.
#' * Complex data (or `is_complex = TRUE`) give a `ComplexLazyTensor`, whose
#'   data are stored with interleaved real and imaginary columns
#'   (`Re, Im, Re, Im, ...`); see [LazyTensor-complex].
#'
#' `Vi(x)`, `Vj(x)` and `Pm(x)` are shortcuts for `LazyTensor(x, "i")`,
#' `LazyTensor(x, "j")` and `LazyTensor(x)`.
#'
#' A LazyTensor is a list with elements `formula` (the formula text),
#' `args` (the declarations of its variables, e.g. `"<id>=Vi(3)"`), `data`
#' (the data of the variables, in the order of `args`) and `dimres` (the
#' inner dimension of the formula), of class `"LazyTensor"` (and
#' `"ComplexLazyTensor"` for complex data).
#'
#' @param x a numeric or complex matrix (for `Vi`/`Vj`), vector or scalar
#'   (for `Pm`).
#' @param index `"i"` or `"j"` for a matrix, `NA` for a vector or a scalar.
#' @param is_complex `TRUE` to create a ComplexLazyTensor from real data
#'   (imaginary parts 0).
#'
#' @return A LazyTensor (a list of class `"LazyTensor"`).
#'
#' @seealso [LazyTensor-arithmetic], [LazyTensor-elementwise],
#'   [LazyTensor-vector], [LazyTensor-splines], [LazyTensor-indexing], [LazyTensor-complex],
#'   [LazyTensor-reductions], [grad()], [as.matrix.LazyTensor()],
#'   [keops_kernel()]
#' @export
#' @examples
#' x <- matrix(runif(30), 10, 3)
#' y <- matrix(runif(45), 15, 3)
#' b <- matrix(runif(15), 15, 1)
#' x_i <- LazyTensor(x, index = "i")
#' y_j <- Vj(y)
#' b_j <- Vj(b)
#' K_ij <- exp(-sum((x_i - y_j)^2))   # symbolic 10 x 15 Gaussian kernel
#' K_ij
#' a_i <- sum(K_ij * b_j, index = "j") # 10 x 1 matrix
#' # dense check
#' K <- exp(-as.matrix(dist(rbind(x, y)))[1:10, 10 + (1:15)]^2)
#' all.equal(a_i, K %*% b, check.attributes = FALSE)
LazyTensor <- function(x, index = NA, is_complex = FALSE) {
  make_lazy_tensor(x, index, is_complex, sys.call())
}

#' @rdname LazyTensor
#' @export
Vi <- function(x, is_complex = FALSE) {
  if (isFALSE(is_complex)) {
    r <- .Call(rk_lt_var_r, x, "Vi")
    if (!is.null(r)) return(r)
  }
  if (!is.matrix(x)) rk_abort("`x` must be a matrix.", "arg", sys.call())
  make_lazy_tensor(x, "i", is_complex, sys.call())
}

#' @rdname LazyTensor
#' @export
Vj <- function(x, is_complex = FALSE) {
  if (isFALSE(is_complex)) {
    r <- .Call(rk_lt_var_r, x, "Vj")
    if (!is.null(r)) return(r)
  }
  if (!is.matrix(x)) rk_abort("`x` must be a matrix.", "arg", sys.call())
  make_lazy_tensor(x, "j", is_complex, sys.call())
}

#' @rdname LazyTensor
#' @export
Pm <- function(x, is_complex = FALSE) {
  call <- sys.call()
  if (inherits(x, "LazyTensor")) {
    rk_abort("`x` input is already a LazyTensor.", "arg", call)
  }
  if (is.character(x) || is.matrix(x)) {
    rk_abort("`x` input must be a vector or a single value.", "arg", call)
  }
  make_lazy_tensor(x, NA, is_complex, call)
}

#' Is an object a LazyTensor? What kind?
#'
#' * `is.LazyTensor(x)`: any LazyTensor (including ComplexLazyTensors).
#' * `is.ComplexLazyTensor(x)`: a LazyTensor of complex data.
#' * `is.LazyParameter(x)`: a real LazyTensor of dimension 1 without `Vi` or
#'   `Vj` variable (a single value, the same for every `i` and `j`: e.g.
#'   `Pm(2.5)`, `LazyTensor(3)`).
#' * `is.ComplexLazyParameter(x)`: the same for a single complex value.
#' * `is.LazyVector(x)`: a LazyTensor without `Vi` or `Vj` variable (a
#'   parameter vector, a constant, or a formula of them).
#' * `is.LazyMatrix(x)`: a LazyTensor with at least one `Vi` or `Vj`
#'   variable.
#' * `is.int(x)`: a single number with an integer value (`3` and `3L`).
#'
#' (RKeOps calls a LazyTensor a "parameter" when its formula contains an
#' integer constant anywhere, and a "vector" when it has any `Pm`
#' variable; the definitions above follow what the names say.)
#'
#' @param x any R object (a LazyTensor for `is.LazyParameter()`,
#'   `is.ComplexLazyParameter()`, `is.LazyVector()` and `is.LazyMatrix()`).
#' @return `TRUE` or `FALSE`.
#' @export
#' @examples
#' x_i <- Vi(matrix(runif(6), 3, 2))
#' is.LazyTensor(x_i)
#' is.LazyTensor(1)
#' is.ComplexLazyTensor(x_i)
#' is.LazyMatrix(x_i)
#' is.LazyVector(Pm(c(1, 2)))
#' is.LazyParameter(Pm(2.5))
#' is.ComplexLazyParameter(Pm(1 + 2i))
#' is.int(3)
is.LazyTensor <- function(x) {
  inherits(x, "LazyTensor")
}

#' @rdname is.LazyTensor
#' @export
is.ComplexLazyTensor <- function(x) {
  inherits(x, "ComplexLazyTensor")
}

#' @rdname is.LazyTensor
#' @export
is.LazyParameter <- function(x) {
  if (!inherits(x, "LazyTensor")) {
    rk_abort("`x` input must be a LazyTensor.", "arg", sys.call())
  }
  !inherits(x, "ComplexLazyTensor") && x$dimres == 1L && !has_ij(x)
}

#' @rdname is.LazyTensor
#' @export
is.ComplexLazyParameter <- function(x) {
  if (!inherits(x, "LazyTensor")) {
    rk_abort("`x` input must be a LazyTensor or a ComplexLazyTensor.",
             "arg", sys.call())
  }
  inherits(x, "ComplexLazyTensor") && x$dimres == 1L && !has_ij(x)
}

#' @rdname is.LazyTensor
#' @export
is.LazyVector <- function(x) {
  if (!inherits(x, "LazyTensor")) {
    rk_abort("`x` input must be a LazyTensor or a ComplexLazyTensor.",
             "arg", sys.call())
  }
  !has_ij(x)
}

#' @rdname is.LazyTensor
#' @export
is.LazyMatrix <- function(x) {
  if (!inherits(x, "LazyTensor")) {
    rk_abort("`x` input must be a LazyTensor or a ComplexLazyTensor.",
             "arg", sys.call())
  }
  has_ij(x)
}

#' @rdname is.LazyTensor
#' @export
is.int <- function(x) {
  is.numeric(x) && length(x) == 1L && !is.na(x) && is.finite(x) &&
    x == round(x)
}

# TRUE if a LazyTensor has a Vi or Vj variable.
has_ij <- function(x) {
  any(arg_types(x$args) != "Pm")
}

# Categories ("Vi", "Vj", "Pm") of declarations "<id>=<cat>(<dim>)".
arg_types <- function(args) {
  if (length(args) == 0L) return(character())
  substr(args, regexpr("=", args, fixed = TRUE) + 1L,
         regexpr("=", args, fixed = TRUE) + 2L)
}

# KeOps-level dimension of a LazyTensor (2 d for complex).
lt_kdim <- function(x) {
  if (inherits(x, "ComplexLazyTensor")) 2L * x$dimres else x$dimres
}

# TRUE for a single integer-valued number (3 and 3.0 alike) that fits in
# an int.
is_int <- function(x) {
  is.numeric(x) && length(x) == 1L && !is.na(x) && is.finite(x) &&
    x == round(x) && abs(x) < 2^31
}

# Formula of an integer constant.
intcst_formula <- function(n) {
  paste0("IntCst(", format(as.integer(n), scientific = FALSE), ")")
}

# Interleave real and imaginary parts column by column.
interleave_complex <- function(z) {
  if (is.matrix(z)) {
    d <- ncol(z)
    out <- matrix(0, nrow(z), 2L * d)
    out[, seq.int(1L, 2L * d, by = 2L)] <- Re(z)
    out[, seq.int(2L, 2L * d, by = 2L)] <- Im(z)
    out
  } else {
    as.double(rbind(Re(z), Im(z)))
  }
}

make_lazy_tensor <- function(x, index, is_complex, call) {
  if (inherits(x, "LazyTensor")) {
    rk_abort("Input `x` is already a LazyTensor.", "arg", call)
  }
  if (!is.numeric(x) && !is.complex(x)) {
    rk_abort(
      paste0("`x` input argument should be a matrix, a vector",
             "a scalar or a complex value."),
      "arg", call
    )
  }
  if (!is.logical(is_complex) || length(is_complex) != 1L ||
      is.na(is_complex)) {
    rk_abort(
      paste0("`is_complex` should be TRUE or FALSE; received ",
             fmt_value(is_complex), "."),
      "arg", call
    )
  }
  if (length(x) == 0L) rk_abort("`x` should not be empty.", "arg", call)
  if (is.matrix(x)) {
    if (length(index) != 1L || is.na(index)) {
      rk_abort("missing `index` argument.", "arg", call)
    }
    if (!is.character(index) || !(index %in% c("i", "j"))) {
      rk_abort(
        paste0("`index` should be \"i\" or \"j\" for a matrix; received ",
               fmt_value(index), "."),
        "arg", call
      )
    }
  } else if (!(length(index) == 1L && is.na(index))) {
    rk_abort("`index` must be NA with a vector or a single value.", "arg", call)
  }
  cplx <- is.complex(x) || is_complex
  if (!cplx && !is.matrix(x) && is_int(x)) {
    return(structure(list(formula = intcst_formula(x), dimres = 1L),
                     class = "LazyTensor"))
  }
  if (is.matrix(x)) {
    category <- if (index == "i") "Vi" else "Vj"
    d <- ncol(x)
    if (cplx) {
      data <- interleave_complex(x)
    } else {
      data <- x
      if (!is.double(data)) storage.mode(data) <- "double"
    }
  } else {
    category <- "Pm"
    d <- length(x)
    data <- if (cplx) interleave_complex(x) else as.double(x)
  }
  kdim <- if (cplx) 2L * d else d
  # a new identifier A<session token>n<count><i|j|NA> (src/r_lazy.c)
  .Call(rk_lt_leaf_r, data, category, kdim, d, cplx)
}

# Inner dimension of the symbolic result (R level: d for complex data).
get_inner_dim <- function(x) {
  if (!inherits(x, "LazyTensor")) {
    rk_abort(
      "`x` input argument should be a LazyTensor or a ComplexLazyTensor.",
      "arg", NULL
    )
  }
  x$dimres
}

# Identifiers of the variables of a LazyTensor (names in its args).
arg_ids <- function(args) {
  substr(args, 1L, regexpr("=", args, fixed = TRUE) - 1L)
}

# Formula and declarations with variables renamed V0, V1, ... in the
# order of args (positions 0, 1, ...). `f` may be several formulas using
# these variables (renamed alike).
lt_rename <- function(x, args = x$args, f = x$formula) {
  .Call(rk_lt_rename_r, f, args)
}

#' Print a LazyTensor
#'
#' Shows the formula (variables renamed `V0`, `V1`, ... in the order of
#' their data), the inner dimension, and for each variable its category
#' (`Vi`, `Vj`, `Pm`), dimension and data size.
#'
#' @param x a LazyTensor.
#' @param ... not used.
#' @return `x`, invisibly.
#' @export
#' @examples
#' x_i <- Vi(matrix(runif(6), 3, 2))
#' y_j <- Vj(matrix(runif(8), 4, 2))
#' print(sqdist(x_i, y_j))
print.LazyTensor <- function(x, ...) {
  r <- lt_rename(x)
  cplx <- inherits(x, "ComplexLazyTensor")
  cat(if (cplx) "ComplexLazyTensor" else "LazyTensor",
      "of inner dimension", x$dimres,
      if (cplx) "(data: interleaved real and imaginary parts)", "\n")
  cat("formula:", r$formula, "\n")
  n <- length(r$args)
  if (n == 0L) {
    cat("no variable (constant formula)\n")
  } else {
    cat("variables:\n")
    for (k in seq_len(n)) {
      d <- x$data[[k]]
      size <- if (is.matrix(d)) {
        sprintf("%d x %d matrix", nrow(d), ncol(d))
      } else {
        sprintf("vector of length %d", length(d))
      }
      cat(sprintf("  %s   data: %s\n", r$args[k], size))
    }
  }
  invisible(x)
}
