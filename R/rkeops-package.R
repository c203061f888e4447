#' rkeops: kernel operations on large point clouds, compiled on the fly
#'
#' rkeops computes reductions of symbolic matrices, such as the Gaussian
#' kernel sum \eqn{a_i = \sum_j \exp(-\|x_i - y_j\|^2) b_j}, without ever
#' storing the \eqn{M \times N} matrix. A formula (written in the KeOps
#' formula language) is parsed by a small C engine, turned into C code,
#' compiled with the C compiler R was configured with (OpenMP when
#' available), cached on disk and run from R.
#'
#' Two interfaces:
#' * symbolic matrices with [LazyTensor()] (or [Vi()], [Vj()], [Pm()]) and
#'   R arithmetic and functions ([LazyTensor-arithmetic],
#'   [LazyTensor-elementwise], [LazyTensor-vector], [LazyTensor-indexing],
#'   [LazyTensor-complex]), reduced with `sum(x, index = "j")`,
#'   `min()`, `argmin()`, `argKmin()`, `logsumexp()`...
#'   (see [LazyTensor-reductions]) and differentiated with [grad()];
#' * the low-level [keops_kernel()], which takes a formula string and the
#'   declarations of its arguments, and [keops_grad()] for its gradients
#'   ([keops_value_and_grad()] prepares them for [optim()]).
#'
#' Index results (`argmin()`, `argKmin()`...) are 1-based, as
#' [which.min()]; positions given as arguments (`elem(x, 0)`,
#' `keops_grad(op, 0)`) are 0-based, as in the formula language.
#'
#' Options (precision, number of threads, cache folder, verbosity) are
#' described in [set_rkeops_options()]; [check_rkeops()] prints a report on
#' the toolchain and runs a test kernel.
#'
#' Helpers in R's idiom: [keops_knn()] (the result of `FNN::get.knnx()`),
#' [keops_kmeans()] (a `kmeans` object, as [stats::kmeans()]), [keops_krr()]
#' (kernel ridge regression with `predict()`), on top of [solve.LazyTensor()]
#' and [keops_ranges()].
#'
#' @section Masked functions:
#' LazyTensors get methods of base R's group generics (`Ops`, `Math`,
#' `Summary`, `Complex`, and `matrixOps` from R 4.3.0), which mask nothing.
#' `library(rkeops)` masks only functions that R does not make generic and
#' that the LazyTensor API (RKeOps') needs under their own names; each
#' behaves exactly as the masked function for anything but a LazyTensor:
#' * `atan2()` (base): `atan2(y_i, x_j)` is the formula op `Atan2`;
#' * `ifelse()` (base): `ifelse(test, yes, no)` of LazyTensors is `IfElse`;
#' * `step()` (stats): `step(x)` of a LazyTensor is the Heaviside step `Step`;
#'   otherwise `stats::step()` is called from the caller's frame (model
#'   selection works unchanged);
#' * `%*%` (base), before R 4.3.0 only: `K_ij %*% v` is
#'   `sum(K_ij * v, index = "j")`; from R 4.3.0 on, a `matrixOps` method.
#'
#' @keywords internal
#' @useDynLib rkeops, .registration = TRUE
#' @importFrom stats setNames
"_PACKAGE"

# Package-level mutable state (never exported).
#   ops:    cache of kernel states of LazyTensor reductions, keyed by the
#           formula with variables renamed V0, V1, ... and their declarations
#   token:  per-session token used in LazyTensor variable identifiers (the
#           counter of identifiers is in src/r_lazy.c)
.rk_state <- new.env(parent = emptyenv())
.rk_state$ops <- new.env(parent = emptyenv())
.rk_state$nops <- 0L
.rk_state$token <- NULL
.rk_state$paths <- character()
.rk_state$loaded_at <- NULL

.onLoad <- function(libname, pkgname) {
  .rk_state$token <- session_token()
  .Call(rk_lt_init_r, .rk_state$token)
  .rk_state$loaded_at <- Sys.time()
  init_rkeops_options()
  invisible(NULL)
}

.onAttach <- function(libname, pkgname) {
  packageStartupMessage(
    "You are using rkeops version ", utils::packageVersion("rkeops")
  )
  invisible(NULL)
}

.onUnload <- function(libpath) {
  # Unload every compiled kernel (dlclose) before the package's own library.
  try(.Call(rk_unload_r), silent = TRUE)
  library.dynam.unload("rkeops", libpath)
  invisible(NULL)
}

# A per-session token (16 lowercase hex digits) built from the process id
# and the clock, so that identifiers of LazyTensors created in different
# sessions never collide, without touching the user's random number stream.
session_token <- function() {
  pid <- Sys.getpid() %% 2^31
  clock <- floor((as.numeric(Sys.time()) * 1000) %% 2^31)
  sprintf("%08x%08x", as.integer(pid), as.integer(clock))
}

# Raise an rkeops error condition with class rkeops_error_<code>.
rk_abort <- function(msg, code = "arg", call = NULL) {
  stop(errorCondition(
    msg,
    class = c(paste0("rkeops_error_", code), "rkeops_error"),
    call = call
  ))
}

# Turn an "rkeops_engine_error" list returned by the C glue into a classed
# R error attributed to the user-facing call.
raise_engine_error <- function(err, call = NULL) {
  code <- err$code
  if (!is.character(code) || length(code) != 1L) code <- "internal"
  if (identical(code, "interrupt")) rk_interrupt()
  msg <- err$message
  if (!is.character(msg) || length(msg) != 1L) {
    msg <- "unknown error in the rkeops engine"
  }
  rk_abort(msg, code = code, call = call)
}

# A user interrupt that stopped a kernel between two chunks of rows (the
# engine has freed everything): raised again as the interrupt condition R
# itself signals (class c("interrupt", "condition")), so that
# tryCatch(interrupt = ) and withCallingHandlers() see it; when no handler
# takes it, back to the top level, as after any interrupt.
rk_interrupt <- function() {
  signalCondition(structure(list(), class = c("interrupt", "condition")))
  invokeRestart("abort")
}
