# keops_kernel(): the one door into the engine. Definition-time checks are
# done once; the returned operator compiles lazily (memoised in a "kernel
# state" environment) and keeps its per-call path lean.

sum_schemes <- c("auto", "direct_sum", "block_sum", "kahan_scheme")

msg_inline_args <- paste0(
  "Issue with formula containing 'Vi|Vj|Pm(<dim>)' or ",
  "'Vi|Vj|Pm(<pos>,<dim>)' arguments not defined in 'args' input list. ",
  "Please use aliases listed in 'args' input list to define all arguments ",
  "in the fomula."
)

msg_input_list <- paste0(
  "The 'input' argument should be a list of data corresponding to the ",
  "formula input arguments."
)

msg_input_length <- paste0(
  "The number of elements in the 'input' argument does not correspond to ",
  "the number of input arguments in the formula."
)

#' Define a kernel operator from a formula
#'
#' `keops_kernel()` defines a reduction of a symbolic matrix from a formula
#' in the KeOps formula language and the declarations of its arguments. It
#' returns an R function (the operator) that computes the reduction on data.
#' The formula is compiled into C code the first time the operator is
#' called (or found in the cache folder, see [get_rkeops_cache_dir()]), and
#' reused afterwards.
#'
#' @section Formula:
#' The formula has the form `"<Red>_Reduction(<f>, <axis>)"`, e.g.
#' `"Sum_Reduction(Exp(-s * SqNorm2(x - y)) * b, 0)"`, where `<f>` is a
#' formula of the arguments declared in `args` (the KeOps formula language):
#' * arithmetic: `+`, `-`, `*`, `/`, unary `-`, `x**n` (integer `n`), the
#'   comparisons `<`, `>`, `<=`, `>=` (1 or 0), or the explicit calls
#'   `Add`, `Subtract`, `Minus`, `Mult`, `Divide`, `Inv`, `Square`,
#'   `Pow(a, n)`, `Powf(a, b)`, `Equal`, `NotEqual`, `LessThan`,
#'   `LessOrEqual`;
#' * element-wise functions: `Sqrt`, `Rsqrt` (0 at 0), `Exp`, `Log`, `XLogX`
#'   (0 at 0), `Sin`, `Cos`, `Asin`, `Acos`, `Atan`, `Atan2(a, b)`,
#'   `SinXDivX` (1 at 0), `Abs`, `Sign`, `Step` (1 at 0), `ReLU`, `Floor`,
#'   `Round(a, d)`, `Clamp(a, lo, hi)`, `ClampInt(a, lo, hi)`,
#'   `IfElse(t, a, b)` (`a` where `t >= 0`), `Mod(a, m, offset)`;
#' * vector operations: `Sum(a)` (sum of the coordinates), `SumT(a, d)`,
#'   `Max`, `Min`, `ArgMax`, `ArgMin` (0-based position as a value),
#'   `Elem(a, m)`, `ElemT(a, n, m)`, `Extract(a, start, d)`,
#'   `ExtractT(a, start, d)`, `Concat(a, b)`, `OneHot(a, d)`, `SqNorm2`,
#'   `Norm2`, `Normalize`, `SqDist(a, b)`, `Scalprod(a, b)` or `(a|b)`,
#'   `WeightedSqNorm(s, a)`, `WeightedSqDist(s, a, b)`;
#' * tensor products (column-major, as R stores matrices):
#'   `MatVecMult(A, b)`, `VecMatMult(b, A)`, `TensorProd(a, b)`,
#'   `TensorDot(a, b, [dims a], [dims b], [contracted a], [contracted b])`,
#'   `Kron(a, b, [dims a], [dims b])`;
#' * complex numbers stored as interleaved (real, imaginary) pairs:
#'   `ComplexReal`, `ComplexImag`, `Real2Complex`, `Imag2Complex`, `Conj`,
#'   `ComplexAbs`, `ComplexSquareAbs`, `ComplexAngle`, `ComplexSum`,
#'   `ComplexSumT`, `ComplexAdd`, `ComplexSubtract`, `ComplexMult`,
#'   `ComplexScal`, `ComplexRealScal`, `ComplexDivide`, `ComplexExp`,
#'   `ComplexExp1j`;
#' * splines and series: `BSpline(knots, x, order)` (not differentiable, as
#'   in KeOps), `SoftDTW_SqDist(x, y, gamma)` (differentiable in `x` and
#'   `y`; see [LazyTensor-splines]);
#' * constants: `IntCst(n)` (or integer literals), `RatCst(p, q)`,
#'   `Zero(d)`, `IntInv(n)`;
#' * derivatives: `Grad(f, v, e)`, `Diff(f, v, u)`, `Divergence(f, v)`,
#'   `Laplacian(f, v)`.
#'
#' Element-wise operations broadcast an operand of dimension 1 against an
#' operand of dimension `d`.
#'
#' The reduction axis follows KeOps' convention: `0` reduces over `j` (the
#' result has one row per `i`, i.e. as many rows as the `Vi` data), `1`
#' reduces over `i` (one row per `j`).
#'
#' Variables must be named through `args`: inline `Vi(3)`, `Vj(0, 3)`,
#' `Pm(1)` or `Var(0, 3, 0)` in the formula are rejected.
#'
#' @section Reductions:
#' With `F` the formula and `D` its dimension, `<Red>` is one of:
#' * `Sum`, `Min`, `Max` (per coordinate; a NaN gives NaN), `ArgMin`,
#'   `ArgMax` (1-based index of the first extremum): a matrix with `D`
#'   columns;
#' * `Min_ArgMin`, `Max_ArgMax`: a list of two such matrices, the values
#'   and the 1-based indices;
#' * `KMin_Reduction(F, K, axis)`, `ArgKMin_Reduction(F, K, axis)`: the `K`
#'   smallest values (ascending) or their 1-based indices (ties: smallest
#'   index first), an `nout x K` matrix when `D = 1`, an `nout x K x D`
#'   array otherwise; missing values (fewer than `K` candidates) are `Inf`
#'   and missing indices `NA`; `KMin_ArgKMin` returns the list of both;
#' * `LogSumExp` (scalar `F`): \eqn{\log \sum \exp F}, computed stably;
#' * `LogSumExpWeight_Reduction(F, G, axis)`: \eqn{\log \sum \exp(F) G},
#'   `dim G` columns (already finalised: PyKeOps returns the raw pair);
#' * `SumSoftMaxWeight_Reduction(F, G, axis)`:
#'   \eqn{\sum \exp(F) G / \sum \exp(F)}, `dim G` columns;
#' * `Max_SumShiftExp` (scalar `F`): the raw pair \eqn{(m, s)} with
#'   \eqn{m = \max F} and \eqn{s = \sum \exp(F - m)};
#'   `Max_SumShiftExpWeight_Reduction(F, G, axis)`: \eqn{m} and
#'   \eqn{\sum \exp(F - m) G} (`1 + dim G` columns).
#'
#' A formula may also be the gradient of a reduction,
#' `"Grad(<Red>_Reduction(F, axis), v, e)"` (or
#' `GradFromPos(<reduction>, pos, e)`), nested for second order: it is the
#' true gradient (see [keops_grad()]). `Sum`, `LogSumExp`, `LogSumExpWeight`,
#' `SumSoftMaxWeight`, `Min`, `Max`, `ArgMin`, `ArgMax` are differentiable.
#'
#' @section Arguments declarations:
#' Each element of `args` is `"<name> = <type>(<dim>)"` or
#' `"<name> = <type>(<pos>, <dim>)"` (spaces are ignored) where `<type>` is
#' `Vi` (one row per `i`), `Vj` (one row per `j`) or `Pm` (a parameter
#' vector of length `<dim>`), and `<pos>` the 0-based position of the
#' argument in the input list. Either all or none of the declarations give
#' positions; without them, positions follow the order of `args`.
#'
#' @section Operator:
#' The operator is `function(input = NULL, inner_dim = "col", ranges = NULL)`:
#' * `input`: a list with one element per declared argument, in position
#'   order, or named with the argument names (any order). `Vi`/`Vj` data
#'   are matrices with one row per index and one column per coordinate
#'   (vectors are one-column matrices); `Pm` data are numeric vectors.
#'   Called with `input = NULL`, the operator returns its definition:
#'   `list(formula, args, args_info, sum_scheme)`.
#' * `inner_dim`: `"col"` (default) when the coordinates are the columns of
#'   the data, `"row"` when they are the rows (the data are then
#'   transposed). The result is never transposed.
#' * `ranges`: `NULL`, or block-sparse ranges from [keops_ranges()] (or
#'   [as_keops_ranges()]) built on the `Vi` and `Vj` points: only the pairs
#'   of kept clusters are reduced (gradients of [keops_grad()] take them
#'   too).
#'
#' The operator returns a numeric matrix with one row per `i` (axis 0) or
#' per `j` (axis 1) and one column per coordinate of the formula (see the
#' Reductions section for K-reductions and pairs). Every
#' shape is checked before the computation: row counts of the `Vi` data
#' (resp. `Vj` data) must agree, the number of columns must match the
#' declared dimensions and parameters must have the declared length.
#'
#' Errors of the formula (syntax, unknown operation, dimensions) are
#' reported when the operator is first called, with the formula and a caret
#' under the offending position. All rkeops errors have class
#' `rkeops_error` and a class `rkeops_error_<code>` (e.g.
#' `rkeops_error_parse`, `rkeops_error_dim`, `rkeops_error_shape`).
#'
#' @param formula a single string, the formula of the reduction (see the
#'   Formula section).
#' @param args a character vector declaring the arguments of the formula,
#'   e.g. `c("x = Vi(3)", "y = Vj(3)", "s = Pm(1)")` (see the Arguments
#'   declarations section).
#' @param sum_scheme the summation scheme of `Sum` reductions: `"auto"`
#'   (block summation), `"direct_sum"`, `"block_sum"` or `"kahan_scheme"`
#'   (compensated summation).
#'
#' @return A function, the operator (see the Operator section).
#'
#' @seealso [LazyTensor()] for the high-level interface, [keops_grad()]
#'   for gradients, [get_rkeops_options()] for precision, threads and
#'   verbosity.
#' @export
#' @examples
#' # Gaussian kernel sum a_i = sum_j exp(-s |x_i - y_j|^2) b_j
#' op <- keops_kernel(
#'   formula = "Sum_Reduction(Exp(-s * SqNorm2(x - y)) * b, 0)",
#'   args = c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)")
#' )
#' x <- matrix(runif(30), 10, 3)
#' y <- matrix(runif(45), 15, 3)
#' b <- matrix(runif(30), 15, 2)
#' a <- op(list(x, y, b, 0.5))
#' dim(a)
#' # same result with named input in any order
#' a2 <- op(list(s = 0.5, b = b, x = x, y = y))
#' all.equal(a, a2)
#' # the 3 nearest y_j of each x_i: values and 1-based indices
#' knn <- keops_kernel("KMin_ArgKMin_Reduction(SqDist(x, y), 3, 0)",
#'                     c("x = Vi(3)", "y = Vj(3)"))
#' res <- knn(list(x, y))
#' res[[2]][1, ]
#' order(colSums((t(y) - x[1, ])^2))[1:3]
keops_kernel <- function(formula, args, sum_scheme = "auto") {
  call <- sys.call()
  if (!is.character(formula) || length(formula) != 1L || is.na(formula) ||
      !grepl("[^[:space:]]", formula, useBytes = TRUE)) {
    rk_abort(
      paste0("`formula` should be a single character string; received ",
             fmt_value(formula), "."),
      "arg", call
    )
  }
  if (!is.character(args) || length(args) < 1L || anyNA(args)) {
    rk_abort(
      paste0(
        "`args` should be a character vector with at least one element, ",
        "e.g. c(\"x = Vi(3)\", \"y = Vj(3)\"); received ", fmt_value(args), "."
      ),
      "arg", call
    )
  }
  if (length(args) > 256L) {
    rk_abort(
      sprintf("`args` declares %d arguments; at most 256 are supported.",
              length(args)),
      "arg", call
    )
  }
  if (!is.character(sum_scheme) || length(sum_scheme) != 1L ||
      is.na(sum_scheme) || !(sum_scheme %in% sum_schemes)) {
    rk_abort(
      paste0(
        "`sum_scheme` should be one of ",
        paste0("'", sum_schemes, "'", collapse = ", "),
        "; received ", fmt_value(sum_scheme), "."
      ),
      "arg", call
    )
  }
  if (grepl("$", formula, fixed = TRUE)) {
    rk_abort("issue with formula: invalid '$' character", "arg", call)
  }
  args_info <- parse_args(formula, args, call = call)
  st <- new_kernel_state(formula_axes(formula), args_info, sum_scheme, call)
  context <- list(
    formula = formula, args = args, args_info = args_info,
    sum_scheme = sum_scheme
  )
  rm(call)

  function(input = NULL, inner_dim = "col", ranges = NULL) {
    if (is.null(input)) return(context)
    if (!is.null(ranges)) ranges <- check_ranges(ranges, sys.call())
    if (!is.list(input)) rk_abort(msg_input_list, "arg", sys.call())
    if (length(input) != st$n) rk_abort(msg_input_length, "arg", sys.call())
    if (!is.null(names(input))) input <- reorder_input(input, st, sys.call())
    if (identical(inner_dim, "col")) {
      row <- FALSE
    } else if (identical(inner_dim, "row")) {
      row <- TRUE
    } else {
      rk_abort(
        paste0("`inner_dim` should be \"col\" or \"row\"; received ",
               fmt_value(inner_dim), "."),
        "arg", sys.call()
      )
    }
    is_pm <- st$is_pm
    for (k in seq_len(st$n)) {
      v <- input[[k]]
      if (is_pm[k]) {
        if (!is.double(v) || !is.null(attributes(v))) {
          input[[k]] <- as_param_data(v, st$names[k], sys.call())
        }
      } else if (row || !is.double(v) || !is.matrix(v)) {
        input[[k]] <- as_variable_data(v, row, st$names[k], sys.call())
      }
    }
    run_kernel(st, input, sys.call(), ranges = ranges)
  }
}

#' Parse the argument declarations of a formula
#'
#' @param formula the formula (only checked for inline variables).
#' @param args character vector of declarations, `"<name>=<type>(<dim>)"` or
#'   `"<name>=<type>(<pos>,<dim>)"`.
#' @param call the call to report in errors.
#' @return `list(args, var_name, var_type, var_pos, var_dim, decl)`: the
#'   declarations without spaces, the names, the types (`"Vi"`, `"Vj"`,
#'   `"Pm"`), the 0-based positions, the dimensions and the declaration style
#'   (`"dim"` or `"pos_dim"`); all `NULL` when `args` is empty.
#' @keywords internal
#' @noRd
parse_args <- function(formula, args, call = NULL) {
  if (length(args) == 0L) {
    return(list(args = NULL, var_name = NULL, var_type = NULL,
                var_pos = NULL, var_dim = NULL, decl = NULL))
  }
  if (has_inline_variables(formula)) rk_abort(msg_inline_args, "arg", call)
  args_ns <- gsub("[[:space:]]", "", args)
  pattern <- "^[a-zA-Z0-9_-]+=(Vi|Vj|Pm)\\([0-9]+(,[0-9]+)?\\)$"
  ok <- grepl(pattern, args_ns)
  if (!all(ok)) {
    rk_abort(
      paste0(
        "Issue with input value(s): '",
        paste(args[!ok], collapse = "', '"), "'\n",
        "All input arguments should follow the pattern ",
        "(with or without spaces): '<name> = Vi|Vj|Pm(<dim>)' ",
        "(see help page or vignette for more details)."
      ),
      "arg", call
    )
  }
  has_pos <- grepl(",", args_ns, fixed = TRUE)
  if (!all(has_pos) && any(has_pos)) {
    rk_abort(
      paste0(
        "Issue with input argument consistency, use either '(dim)' or ",
        "'(pos, dim)' with 'Vi', 'Vj' and 'Pm' for all arguments ",
        "(see help page or vignette for more details)."
      ),
      "arg", call
    )
  }
  var_name <- sub("=.*$", "", args_ns)
  var_type <- sub("^[^=]*=(Vi|Vj|Pm)\\(.*$", "\\1", args_ns)
  nums <- sub("^[^(]*\\((.*)\\)$", "\\1", args_ns)
  if (all(has_pos)) {
    decl <- "pos_dim"
    var_pos <- suppressWarnings(as.integer(sub(",.*$", "", nums)))
    var_dim <- suppressWarnings(as.integer(sub("^.*,", "", nums)))
  } else {
    decl <- "dim"
    var_pos <- seq_along(args_ns) - 1L
    var_dim <- suppressWarnings(as.integer(nums))
  }
  bad_dim <- is.na(var_dim) | var_dim < 1L
  if (any(bad_dim)) {
    rk_abort(
      paste0(
        "Issue with input value(s): '",
        paste(args[bad_dim], collapse = "', '"), "'\n",
        "Dimensions should be whole numbers of at least 1."
      ),
      "arg", call
    )
  }
  n <- length(args_ns)
  if (anyNA(var_pos) || !identical(sort(var_pos), seq_len(n) - 1L)) {
    rk_abort(
      paste0(
        "Issue with input argument positions: the positions declared with ",
        "'(pos, dim)' should be 0, 1, ..., ", n - 1L,
        ", each once; received ", paste(var_pos, collapse = ", "), "."
      ),
      "arg", call
    )
  }
  dup <- unique(var_name[duplicated(var_name)])
  if (length(dup) > 0L) {
    rk_abort(
      paste0(
        "Issue with input argument names: ",
        paste0("'", dup, "'", collapse = ", "),
        " declared more than once."
      ),
      "arg", call
    )
  }
  list(
    args = args_ns, var_name = var_name, var_type = var_type,
    var_pos = var_pos, var_dim = var_dim, decl = decl
  )
}

# TRUE if the formula declares variables inline (Vi(3), Vj(0,3), Pm(1),
# Var(0,3,1)) instead of using aliases declared in `args`.
has_inline_variables <- function(formula) {
  f <- gsub("[[:space:]]", "", formula)
  grepl("(^|[^A-Za-z0-9_])(Vi|Vj|Pm)\\([0-9]+(,[0-9]+)?\\)", f) ||
    grepl("(^|[^A-Za-z0-9_])Var\\([0-9]+,[0-9]+,[0-9]+\\)", f)
}

# A kernel state: everything a run needs, plus the memoised compiled
# kernel (an external pointer) and the options it was compiled for.
new_kernel_state <- function(formula, args_info, sum_scheme, call = NULL) {
  st <- new.env(parent = emptyenv())
  ord <- order(args_info$var_pos)
  st$formula <- formula
  st$args <- args_info$args
  st$sum_scheme <- sum_scheme
  st$n <- length(args_info$args)
  st$names <- args_info$var_name[ord]
  st$is_pm <- args_info$var_type[ord] == "Pm"
  st$ptr <- NULL
  st$prec <- NULL
  st$cdir <- NULL
  st$shape <- NULL
  st
}

# Named input: reorder to position order.
reorder_input <- function(input, st, call) {
  nm <- names(input)
  if (all(!nzchar(nm))) return(unname(input))
  idx <- match(st$names, nm)
  if (anyNA(idx) || anyDuplicated(nm)) {
    rk_abort(
      paste0(
        "The names of the 'input' list should be the names of the formula ",
        "arguments: ", paste0("'", st$names, "'", collapse = ", "),
        "; received ", paste0("'", nm, "'", collapse = ", "), "."
      ),
      "arg", call
    )
  }
  input[idx]
}

# What a non-numeric input is, for messages: "a character matrix", "a
# complex vector", "a list", "an object of class factor", "NULL".
data_kind <- function(v) {
  if (is.null(v)) return("NULL")
  if (is.matrix(v) || (is.atomic(v) && is.null(attr(v, "class")))) {
    return(paste("a", typeof(v), if (is.matrix(v)) "matrix" else "vector"))
  }
  if (identical(class(v), "list")) return("a list")
  paste("an object of class", class(v)[1L])
}

# Data of a Vi/Vj argument: a double matrix, one row per index.
as_variable_data <- function(v, row, name, call) {
  if (is.data.frame(v)) v <- as.matrix(v)
  if (!is.numeric(v) && !is.logical(v)) {
    rk_abort(
      sprintf("Input data of argument '%s' should be numeric; received %s.",
              name, data_kind(v)),
      "shape", call
    )
  }
  if (!is.matrix(v)) {
    # a vector is one coordinate per index, in both layouts
    v <- matrix(v, ncol = 1L)
  } else if (row) {
    v <- t(v)
  }
  if (!is.double(v)) storage.mode(v) <- "double"
  v
}

# Data of a Pm argument: a plain double vector.
as_param_data <- function(v, name, call) {
  if (is.data.frame(v)) v <- as.matrix(v)
  if (!is.numeric(v) && !is.logical(v)) {
    rk_abort(
      sprintf("Input data of argument '%s' should be numeric; received %s.",
              name, data_kind(v)),
      "shape", call
    )
  }
  as.double(v)
}

# Compile (or find in the engine's memo / the cache folder) the kernel of a
# state for the current options.
compile_state <- function(st, o, call = NULL) {
  check_run_options(o, call)
  k <- if (identical(o$backend, "GPU")) {
    .Call(rk_compile_gpu_r, st$formula, st$args, o$precision, st$sum_scheme,
          o$cache_dir, o$device_id[1L])
  } else {
    .Call(rk_compile_r, st$formula, st$args, o$precision, st$sum_scheme,
          o$cache_dir)
  }
  if (inherits(k, "rkeops_engine_error")) raise_engine_error(k, call)
  st$ptr <- k
  st$prec <- o$precision
  st$cdir <- o$cache_dir
  st$backend <- o$backend
  st$device <- o$device_id
  fallback <- attr(k, "cache_fallback", exact = TRUE)
  if (is.character(fallback)) {
    warning(sprintf(paste0(
      "the rkeops cache folder '%s' cannot be written: kernels are cached in a ",
      "temporary folder for now (see set_rkeops_cache_dir())"), fallback),
      call. = FALSE)
  }
  st$shape <- output_shape(k)
  path <- attr(k, "path", exact = TRUE)
  if (is.character(path) && length(path) == 1L) {
    .rk_state$paths <- union(.rk_state$paths, path)
  }
  if (isTRUE(o$verbosity >= 1) && identical(attr(k, "from"), "compiler")) {
    secs <- attr(k, "seconds", exact = TRUE)
    if (!is.numeric(secs) || length(secs) != 1L) secs <- NA_real_
    message(sprintf("compiling kernel %s ... %.2f s", kernel_label(st, k), secs))
  }
  k
}

# The options a kernel is compiled with. set_rkeops_options() checks them,
# but options(rkeops = ...) by hand may hold anything: a bad value is then
# an error naming the option (rather than an unclassed error of the C glue).
check_run_options <- function(o, call = NULL) {
  if (!is.list(o)) {
    rk_abort(
      paste0("the R option \"rkeops\" should be the list of rkeops options ",
             "(see set_rkeops_options()); received ", fmt_value(o), "."),
      "arg", call
    )
  }
  for (n in c("backend", "precision", "device_id")) {
    validate_option(n, o[[n]], call = call)
  }
  cd <- o$cache_dir
  if (!is.character(cd) || length(cd) != 1L || is.na(cd) || !nzchar(cd)) {
    validate_option("cache_dir", cd, call = call)
  }
  invisible(o)
}

# Short name of a kernel for messages: 8 hex digits of its hash when the
# engine gives it, else the formula (shortened).
kernel_label <- function(st, k) {
  h <- attr(k, "hash", exact = TRUE)
  if (is.character(h) && length(h) == 1L && nchar(h) >= 8L) {
    return(substr(h, 1L, 8L))
  }
  f <- gsub("[[:space:]]+", "", st$formula)
  if (nchar(f) > 60L) f <- paste0(substr(f, 1L, 57L), "...")
  f
}

# Run the kernel of a state on inputs already in position order and in the
# engine's layout. Compiles when needed: first call, options changed, or a
# pointer emptied by saveRDS()/readRDS() (the engine then answers "load").
# raw: the engine's plain nout x outdim matrix, not reshaped. ranges: block-
# sparse ranges (R/ranges.R), run in this process.
run_kernel <- function(st, inputs, call = NULL, o = getOption("rkeops"),
                       raw = FALSE, ranges = NULL) {
  if (is.null(o)) {
    o <- current_options()
  } else if (!is.list(o)) {
    check_run_options(o, call)
  }
  k <- st$ptr
  # st$opts is the options list the kernel was last checked against: while
  # the options are not set again, one pointer comparison suffices
  if (is.null(k) || !identical(st$opts, o)) {
    if (is.null(k) || !identical(st$prec, o$precision) ||
        !identical(st$cdir, o$cache_dir) ||
        !identical(st$backend, o$backend) ||
        !identical(st$device, o$device_id)) {
      k <- compile_state(st, o, call)
    }
    st$opts <- o
  }
  # under rkeops_use_future(), the rows go to future workers (R/future.R)
  res <- if (is.list(o$future) && is.null(ranges)) {
    future_run(st, k, inputs, o, call)
  } else {
    run_raw(st, k, inputs, o, call, ranges)
  }
  sh <- st$shape
  if (raw) return(res)
  if (identical(o$index_base, 0L)) res <- zero_based_indices(res, k)
  if (is.null(sh)) res else reshape_output(res, sh)
}

# One run in this process: the engine's plain nout x outdim matrix.
# Several GPU devices (rkeops_use_gpu(device = c(0, 1))): the rows are
# shared among them; ranged runs stay on the first.
run_raw <- function(st, k, inputs, o, call = NULL, ranges = NULL) {
  run1 <- function(k) {
    if (!is.null(ranges)) {
      run_ranged(k, inputs, ranges, o, call)
    } else if (length(o$device_id) > 1L && identical(attr(k, "backend"), "GPU")) {
      .Call(rk_run_devices_r, k, inputs, as.integer(o$device_id))
    } else {
      .Call(rk_run_r, k, inputs, o$ncore)
    }
  }
  res <- run1(k)
  if (is.list(res)) {
    if (identical(res$code, "load")) {
      k <- compile_state(st, o, call)
      res <- run1(k)
    }
    if (is.list(res)) raise_engine_error(res, call)
  }
  res
}

# How the engine's plain nout x outdim result is returned (SPEC 1.12,
# 1.14), read once from the attributes of a compiled kernel: NULL for a
# matrix returned as it is; otherwise list(type, K, D) with type "kmin"
# (KMin, ArgKMin with D > 1: nout x K x D array), "pair" (Min_ArgMin,
# Max_ArgMax: list of two nout x D matrices) or "kpair" (KMin_ArgKMin: list
# of two K-shaped results). Column k + K * d of a K-reduction holds the k-th
# value of coordinate d, so array(res, c(nout, K, D)) is the natural shape.
output_shape <- function(k) {
  red <- attr(k, "reduction", exact = TRUE)
  if (!is.character(red) || length(red) != 1L) return(NULL)
  outdim <- attr(k, "outdim", exact = TRUE)
  K <- attr(k, "redparam", exact = TRUE)
  switch(red,
    Min_ArgMin = ,
    Max_ArgMax = list(type = "pair", K = 1L, D = outdim %/% 2L),
    KMin = ,
    ArgKMin = {
      D <- outdim %/% K
      if (D > 1L) list(type = "kmin", K = K, D = D) else NULL
    },
    KMin_ArgKMin = list(type = "kpair", K = K, D = outdim %/% (2L * K)),
    NULL
  )
}

reshape_output <- function(res, sh) {
  nout <- nrow(res)
  K <- sh$K
  D <- sh$D
  kshape <- function(v) {
    if (D > 1L) array(v, c(nout, K, D)) else matrix(v, nout, K)
  }
  switch(sh$type,
    kmin = array(res, c(nout, K, D)),
    pair = list(res[, seq_len(D), drop = FALSE],
                res[, D + seq_len(D), drop = FALSE]),
    kpair = {
      n <- K * D
      list(kshape(res[, seq_len(n)]), kshape(res[, n + seq_len(n)]))
    }
  )
}
