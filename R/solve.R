# Kernel linear systems (K + lambda I) a = b by conjugate gradient on the
# compiled product v -> K v: solve() for LazyTensors, keops_kernel_solve()
# for formula strings. Both reduce to a "system": the kernel state of
# Sum_Reduction(K_ij * v_j, 0), its data, the position of v, and how to get
# the diagonal and columns of K (for the preconditioners) without forming
# K.

#' Solve a kernel linear system
#'
#' Solves \eqn{(K + \lambda I)\, a = b} for a symbolic square matrix
#' \eqn{K_{ij}} (a LazyTensor formula in `i` and `j` over the same `N`
#' points, such as `exp(-sqdist(Vi(x), Vj(x)) / s)`) by the conjugate
#' gradient method on the compiled product \eqn{v \mapsto K v}: the
#' \eqn{N \times N} matrix is never formed. All the columns of `b` are solved
#' at once (one kernel pass per iteration for all of them).
#'
#' \eqn{K + \lambda I} must be symmetric positive definite: a positive
#' definite kernel (Gaussian, Laplace, Matern...) on the same points for `i`
#' and `j`, with \eqn{\lambda > 0} in practice. The formula must be a scalar
#' (inner dimension 1).
#'
#' Preconditioners: `"nystrom"` (the default) builds a low-rank
#' approximation \eqn{K \approx L L^T} by pivoted Cholesky on columns of
#' \eqn{K} (at most `rank` of them, fewer when the trace of the remainder
#' falls below `lambda / 100`), and applies \eqn{(L L^T + \lambda I)^{-1}} by
#' the Woodbury identity: the method of Falkon and GPyTorch, which brings
#' Gaussian kernel systems down to a few iterations. `"jacobi"` divides by
#' the diagonal of \eqn{K + \lambda I}; `"none"` is the plain conjugate
#' gradient.
#'
#' @param a a LazyTensor: the symbolic matrix \eqn{K_{ij}} (with `Vi` and
#'   `Vj` variables of the same number of rows).
#' @param b the right-hand sides: a numeric vector of length `N` or an
#'   `N x P` matrix.
#' @param lambda the ridge \eqn{\lambda \ge 0} added to the diagonal.
#' @param tol the relative residual \eqn{|b - (K + \lambda I) a| / |b|} to
#'   reach, for every column.
#' @param maxit the most iterations; a warning says when they did not
#'   suffice.
#' @param precond `"nystrom"`, `"jacobi"` or `"none"` (see Details).
#' @param rank the largest rank of the Nystrom preconditioner.
#' @param ranges `NULL`, or block-sparse ranges from [keops_ranges()] on the
#'   points: the products by \eqn{K} then skip far-away blocks.
#' @param x0 a starting point of the shape of `b` (default zero).
#' @param ... not used.
#' Progress (one step per iteration, with the residual) is reported through
#' the progressr package when it is installed and a handler is set, e.g.
#' `progressr::with_progress(solve(K_ij, b, lambda = 1))`; silent otherwise.
#'
#' @return The solution, of the shape of `b`, with attributes `iterations`
#'   (conjugate gradient iterations), `residual` (the largest relative
#'   residual over the columns), `residuals` (one per column) and `rank` (of
#'   the Nystrom preconditioner, 0 otherwise).
#' @seealso [keops_kernel_solve()] for formula strings, [keops_ranges()].
#' @examples
#' set.seed(1)
#' x <- matrix(runif(600), 300, 2)
#' b <- matrix(rnorm(300), 300, 1)
#' K_ij <- exp(-sqdist(Vi(x), Vj(x)) / 0.1)
#' a <- solve(K_ij, b, lambda = 0.5)
#' attr(a, "iterations")
#' # the same as the dense solve
#' K <- exp(-as.matrix(dist(x))^2 / 0.1)
#' max(abs(a - solve(K + 0.5 * diag(300), b)))
#' @export
solve.LazyTensor <- function(a, b, lambda = 0, tol = 1e-6, maxit = 1000L,
                             precond = c("nystrom", "jacobi", "none"),
                             rank = 200L, ranges = NULL, x0 = NULL, ...) {
  call <- sys.call()
  precond <- solve_precond_arg(precond, missing(precond), call)
  sys <- lt_system(a, b, call)
  cg_system(sys, b, lambda, tol, maxit, precond, rank, ranges, x0, call)
}

#' Kernel linear systems for formula strings
#'
#' The [keops_kernel()] counterpart of [solve.LazyTensor()] (PyKeOps'
#' `KernelSolve`): `formula` is the summand \eqn{K_{ij} v_j} of the product
#' by the kernel matrix, linear in the variable `var` (a `Vj` variable of
#' dimension `P`), and the returned function solves
#' \eqn{(K + \lambda I) a = b}: the `var` element of its input holds the
#' right-hand side `b` (an `N x P` matrix), the other elements are the data
#' of the formula as for a [keops_kernel()] operator.
#'
#' @param formula the summand, e.g. `"Exp(-SqDist(x, y) * g) * b"` (not a
#'   reduction: the sum over `j` is added).
#' @param args the declarations, as in [keops_kernel()]; `x` (`Vi`) and `y`
#'   (`Vj`) must be the same points for the system to be symmetric.
#' @param var the name of the unknown, a declared `Vj` variable.
#' @param lambda the default ridge \eqn{\lambda}.
#' @return A function `function(input, lambda, tol = 1e-6, maxit = 1000,
#'   precond = "nystrom", rank = 200, ranges = NULL, x0 = NULL)` returning
#'   the solution (see [solve.LazyTensor()] for the arguments and the
#'   attributes of the result).
#' @examples
#' set.seed(2)
#' x <- matrix(runif(400), 200, 2)
#' b <- matrix(rnorm(400), 200, 2)
#' Kinv <- keops_kernel_solve("Exp(-SqDist(x, y) * g) * v",
#'                            c("x = Vi(2)", "y = Vj(2)", "v = Vj(2)", "g = Pm(1)"),
#'                            var = "v", lambda = 0.1)
#' a <- Kinv(list(x = x, y = x, v = b, g = 10))
#' K <- exp(-10 * as.matrix(dist(x))^2)
#' max(abs(a - solve(K + 0.1 * diag(200), b)))
#' @export
keops_kernel_solve <- function(formula, args, var, lambda = 0) {
  call <- sys.call()
  if (!is.character(formula) || length(formula) != 1L || is.na(formula) ||
      grepl("_Reduction", formula, fixed = TRUE)) {
    rk_abort(paste0("`formula` should be one string, the summand K_ij * v_j ",
                    "of the product (no reduction); received ",
                    fmt_value(formula), "."), "arg", call)
  }
  info <- parse_args(formula, args, call = call)
  if (!is.character(var) || length(var) != 1L || !(var %in% info$var_name)) {
    rk_abort(paste0("`var` should be the name of a declared argument; received ",
                    fmt_value(var), "."), "arg", call)
  }
  k <- match(var, info$var_name)
  if (info$var_type[k] != "Vj") {
    rk_abort(sprintf("`var` ('%s') should be a Vj variable; it is declared %s.",
                     var, info$var_type[k]), "arg", call)
  }
  check_lambda(lambda, call)
  red <- paste0("Sum_Reduction(", formula, ",0)")
  op <- with_keops_axes(keops_kernel(red, args))
  st <- operator_state(op, call)
  ord <- order(info$var_pos)
  types <- info$var_type[ord]
  vp <- info$var_pos[k] + 1L
  default_lambda <- lambda
  rm(call)
  function(input, lambda = default_lambda, tol = 1e-6, maxit = 1000L,
           precond = c("nystrom", "jacobi", "none"), rank = 200L,
           ranges = NULL, x0 = NULL) {
    call <- sys.call()
    precond <- solve_precond_arg(precond, missing(precond), call)
    if (!is.list(input) || length(input) != st$n) {
      rk_abort(sprintf("`input` should be a list of the %d arguments.", st$n),
               "arg", call)
    }
    if (!is.null(names(input))) input <- reorder_input(input, st, call)
    for (p in seq_len(st$n)) {
      input[[p]] <- if (st$is_pm[p]) {
        as_param_data(input[[p]], st$names[p], call)
      } else {
        as_variable_data(input[[p]], FALSE, st$names[p], call)
      }
    }
    b <- input[[vp]]
    sys <- new_system(st, input, types, vp, call)
    cg_system(sys, b, lambda, tol, maxit, precond, rank, ranges, x0, call)
  }
}

solve_precond_arg <- function(precond, missing, call) {
  choices <- c("nystrom", "jacobi", "none")
  if (missing) return("nystrom")
  if (!is.character(precond) || length(precond) != 1L || !(precond %in% choices)) {
    rk_abort(paste0("`precond` should be one of \"nystrom\", \"jacobi\", ",
                    "\"none\"; received ", fmt_value(precond), "."), "arg", call)
  }
  precond
}

check_lambda <- function(lambda, call) {
  if (!is.numeric(lambda) || length(lambda) != 1L || is.na(lambda) ||
      lambda < 0 || !is.finite(lambda)) {
    rk_abort(paste0("`lambda` should be a number >= 0; received ",
                    fmt_value(lambda), "."), "arg", call)
  }
}

# The system of a LazyTensor K_ij: Sum_Reduction(K_ij * v_j, 0), with v a
# new Vj variable of the shape of b.
lt_system <- function(a, b, call) {
  if (!inherits(a, "LazyTensor")) {
    rk_abort("`a` should be a LazyTensor.", "arg", call)
  }
  if (inherits(a, "ComplexLazyTensor")) {
    rk_abort("`a` should be a real LazyTensor, not a ComplexLazyTensor.", "arg", call)
  }
  types <- arg_types(a$args)
  if (!("Vi" %in% types) || !("Vj" %in% types)) {
    rk_abort(paste0("`a` should be a symbolic matrix K_ij, a formula of `Vi` and ",
                    "`Vj` variables; this LazyTensor has ",
                    if (!length(types)) "no variable" else
                      paste0("only ", paste(unique(types), collapse = " and "),
                             " variables"), "."), "arg", call)
  }
  if (a$dimres != 1L) {
    rk_abort(sprintf(paste0("`a` should be a scalar formula K_ij (inner dimension 1); ",
                            "received inner dimension %d."), a$dimres), "dim", call)
  }
  M <- NROW(a$data[[match("Vi", types)]])
  N <- NROW(a$data[[match("Vj", types)]])
  if (M != N) {
    rk_abort(sprintf(paste0("`a` should be a square symbolic matrix: its i and j ",
                            "sizes differ (%d x %d)."), M, N), "shape", call)
  }
  b <- rhs_matrix(b, N, call)
  v <- Vj(b)
  prod <- a * v
  s <- lt_state(prod, "Sum", "j", call)
  vid <- arg_ids(v$args)
  vp <- match(vid, arg_ids(prod$args))
  new_system(s$st, s$data, arg_types(prod$args), vp, call)
}

rhs_matrix <- function(b, N, call) {
  if (is.numeric(b) && is.null(dim(b))) b <- matrix(b, ncol = 1L)
  if (!is.numeric(b) || !is.matrix(b) || nrow(b) != N || ncol(b) < 1L ||
      anyNA(b) || any(!is.finite(b))) {
    rk_abort(sprintf(paste0("`b` should be a numeric vector of length %d or a ",
                            "matrix with %d rows, of finite values; received %s."),
                     N, N, fmt_value(b)), "shape", call)
  }
  storage.mode(b) <- "double"
  b
}

# A system: the product state st, its data (position order) with v at vp,
# the categories of the data, and the kernel state with every Vj variable
# declared Vi instead (its reduction over j has one term, K_ii v_i: the
# diagonal).
new_system <- function(st, data, types, vp, call) {
  dargs <- sub("=Vj(", "=Vi(", st$args, fixed = TRUE)
  key <- paste0("diag|", st$formula, "|", paste(dargs, collapse = ";"))
  dst <- lt_kernel_state(st$formula, dargs, call, key)
  list(st = st, dst = dst, data = data, types = types, vp = vp,
       N = NROW(data[[vp]]), P = NCOL(data[[vp]]))
}

# K v (an N x P matrix)
sys_product <- function(sys, v, ranges, call) {
  d <- sys$data
  d[[sys$vp]] <- v
  run_kernel(sys$st, d, call, ranges = ranges)
}

sys_diag <- function(sys, call) {
  d <- sys$data
  d[[sys$vp]] <- matrix(1, sys$N, sys$P)
  run_kernel(sys$dst, d, call)[, 1L]
}

# columns cols of K, computed one per call (K[, p] is the reduction over
# the single j = p, with v = 1): an N x length(cols) matrix
sys_columns <- function(sys, cols, call) {
  out <- matrix(0, sys$N, length(cols))
  jv <- which(sys$types == "Vj")
  for (t in seq_along(cols)) {
    d <- sys$data
    for (k in jv) d[[k]] <- d[[k]][cols[t], , drop = FALSE]
    d[[sys$vp]] <- matrix(1, 1L, sys$P)
    out[, t] <- run_kernel(sys$st, d, call)[, 1L]
  }
  out
}

# Pivoted Cholesky: K ~ L L^T, L of at most `rank` columns, stopped when
# the trace of K - L L^T is below `stop`; the pivot is the largest
# remaining diagonal entry.
pivoted_cholesky <- function(sys, rank, stop, diag_k, call) {
  N <- sys$N
  rank <- min(rank, N)
  L <- matrix(0, N, rank)
  dres <- diag_k
  piv <- integer()
  r <- 0L
  while (r < rank) {
    p <- which.max(dres)
    if (dres[p] <= 0 || sum(dres) <= stop) break
    col <- sys_columns(sys, p, call)[, 1L]
    if (r > 0L) col <- col - L[, seq_len(r), drop = FALSE] %*% L[p, seq_len(r)]
    r <- r + 1L
    L[, r] <- col / sqrt(dres[p])
    dres <- pmax(dres - L[, r]^2, 0)
    dres[p] <- 0
    piv <- c(piv, p)
  }
  L[, seq_len(r), drop = FALSE]
}

# The preconditioner: a function z = P^{-1} r
make_precond <- function(sys, precond, lambda, rank, call) {
  if (precond == "none") return(list(apply = function(r) r, rank = 0L))
  dk <- sys_diag(sys, call)
  if (precond == "jacobi") {
    dd <- dk + lambda
    if (any(!(dd > 0))) {
      rk_abort(paste0("the diagonal of K + lambda I is not positive: the ",
                      "Jacobi preconditioner needs it (is K a kernel matrix?)."),
               "arg", call)
    }
    return(list(apply = function(r) r / dd, rank = 0L))
  }
  # Nystrom: (L L^T + mu I)^{-1} = (I - L (mu I + L^T L)^{-1} L^T) / mu
  mu <- if (lambda > 0) lambda else 1e-6 * max(abs(dk), 1e-300)
  L <- pivoted_cholesky(sys, rank, 0.01 * mu, pmax(dk, 0), call)
  if (ncol(L) == 0L) return(list(apply = function(r) r / (mean(dk) + mu), rank = 0L))
  R <- chol(crossprod(L) + diag(mu, ncol(L)))
  list(apply = function(r) {
    w <- backsolve(R, forwardsolve(t(R), crossprod(L, r)))
    (r - L %*% w) / mu
  }, rank = ncol(L))
}

# Preconditioned conjugate gradient, every column at once.
cg_system <- function(sys, b, lambda, tol, maxit, precond, rank, ranges, x0,
                      call) {
  check_lambda(lambda, call)
  if (!is.numeric(tol) || length(tol) != 1L || is.na(tol) || tol <= 0) {
    rk_abort(paste0("`tol` should be a positive number; received ",
                    fmt_value(tol), "."), "arg", call)
  }
  if (!is_whole_number(maxit) || length(maxit) != 1L || maxit < 1) {
    rk_abort(paste0("`maxit` should be a positive whole number; received ",
                    fmt_value(maxit), "."), "arg", call)
  }
  if (!is_whole_number(rank) || length(rank) != 1L || rank < 1) {
    rk_abort(paste0("`rank` should be a positive whole number; received ",
                    fmt_value(rank), "."), "arg", call)
  }
  if (!is.null(ranges)) {
    ranges <- check_ranges(ranges, call)
    if (ranges$M != sys$N || ranges$N != sys$N) {
      rk_abort(sprintf(paste0("`ranges` were made for %d x %d points, the system ",
                              "has %d."), ranges$M, ranges$N, sys$N), "shape", call)
    }
  }
  vec <- is.null(dim(b))
  B <- rhs_matrix(b, sys$N, call)
  P <- ncol(B)
  A <- function(v) sys_product(sys, v, ranges, call) + lambda * v
  pc <- make_precond(sys, precond, lambda, rank, call)
  X <- if (is.null(x0)) matrix(0, sys$N, P) else rhs_matrix(x0, sys$N, call)
  R <- if (is.null(x0)) B else B - A(X)
  bn <- sqrt(colSums(B^2))
  bn[bn == 0] <- 1
  res <- sqrt(colSums(R^2)) / bn
  Z <- pc$apply(R)
  Pd <- Z
  rz <- colSums(R * Z)
  it <- 0L
  progress <- rk_progressor(maxit, "solve")
  while (any(res > tol) && it < maxit) {
    it <- it + 1L
    progress(message = sprintf("residual %.2g", max(res)))
    AP <- A(Pd)
    den <- colSums(Pd * AP)
    alpha <- ifelse(den > 0 & res > tol, rz / den, 0)
    X <- X + sweep(Pd, 2L, alpha, "*")
    R <- R - sweep(AP, 2L, alpha, "*")
    res <- sqrt(colSums(R^2)) / bn
    Z <- pc$apply(R)
    rz_new <- colSums(R * Z)
    beta <- ifelse(rz > 0, rz_new / rz, 0)
    Pd <- Z + sweep(Pd, 2L, beta, "*")
    rz <- rz_new
  }
  if (any(res > tol)) {
    warning(sprintf(paste0("solve(): the conjugate gradient stopped after `maxit` = %d ",
                           "iterations with a relative residual of %.3g (`tol` = %g)"),
                    it, max(res), tol), call. = FALSE)
  }
  out <- if (vec) X[, 1L] else X
  attr(out, "iterations") <- it
  attr(out, "residual") <- max(res)
  attr(out, "residuals") <- res
  attr(out, "rank") <- pc$rank
  out
}
