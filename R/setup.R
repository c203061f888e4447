#' Install rkeops' dependencies (nothing to do)
#'
#' RKeOps 2.x needed Python and PyKeOps, installed by `install_rkeops()`.
#' This rkeops has no Python dependency: kernels are compiled with the C
#' compiler that R uses. The function is kept so that existing scripts keep
#' working; it only says that nothing needs installing.
#'
#' @param ... ignored (the arguments of RKeOps' `install_rkeops()`).
#'
#' @return `TRUE`, invisibly.
#'
#' @seealso [check_rkeops()]
#' @export
#' @examples
#' install_rkeops()
install_rkeops <- function(...) {
  message(
    "rkeops needs no installation step: it does not use Python, and ",
    "compiles its kernels with the C compiler R was configured with. ",
    "Run check_rkeops() to test the setup."
  )
  invisible(TRUE)
}

#' Check that rkeops works
#'
#' Prints a situation report (C compiler and flags used for the kernels,
#' OpenMP, number of cores and threads, precision, backend, cache folder),
#' then compiles (or loads from the cache) and runs a small test kernel and
#' compares its result with plain R.
#'
#' @param verbose `TRUE` to print the report.
#'
#' @return `TRUE` if the test kernel compiles, runs and gives the right
#'   result, `FALSE` otherwise.
#'
#' @seealso [get_rkeops_options()], [clean_rkeops()]
#' @export
#' @examples
#' check_rkeops()
check_rkeops <- function(verbose = TRUE) {
  say <- function(...) if (isTRUE(verbose)) message(...)
  o <- current_options()
  tc <- tryCatch(.Call(rk_toolchain_r), error = function(e) NULL)
  field <- function(name) {
    v <- if (is.list(tc)) tc[[name]] else NULL
    if (is.null(v) || length(v) == 0L) "unknown" else paste(v, collapse = " ")
  }
  have_omp <- is.list(tc) && isTRUE(as.logical(tc$have_openmp))
  cores <- rk_ncores()
  say("rkeops ", utils::packageVersion("rkeops"), " situation report")
  say("  C compiler:    ", field("cc"))
  say("  kernel flags:  ", field("cflags"))
  say("  OpenMP:        ",
      if (have_omp) paste0("yes (", field("openmp"), ")")
      else "no (kernels run on one thread)")
  say("  CPU cores:     ", cores, "; threads requested: ",
      if (identical(o$ncore, 0L)) "all" else o$ncore,
      " (see rkeops_use_cpu())")
  say("  precision:     ", o$precision)
  say("  backend:       ", o$backend,
      if (identical(o$backend, "GPU")) {
        paste0(" (device", if (length(o$device_id) > 1L) "s", " ",
               paste(o$device_id, collapse = ", "), ")")
      } else "")
  gs <- gpu_status()
  say("  GPU:           ", if (isTRUE(gs$available)) "available" else "not available",
      " (", gs$status, ")")
  say(paste0("    ", strsplit(gs$report, "\n", fixed = TRUE)[[1]], collapse = "\n"))
  say("  cache folder:  ", o$cache_dir, " (",
      format_bytes(dir_size(o$cache_dir)), ")")
  ok <- tryCatch(
    {
      x <- matrix(c(0.1, 0.5, 0.9, 0.2, 0.4, 0.8), 3, 2)
      y <- matrix(c(0.3, 0.7, 0.6, 0.1), 2, 2)
      b <- c(1.5, -0.5)
      op <- keops_kernel(
        "Sum_Reduction(Exp(-SqNorm2(x - y)) * b, 0)",
        c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)")
      )
      res <- op(list(x, y, b))
      d2 <- outer(x[, 1], y[, 1], "-")^2 + outer(x[, 2], y[, 2], "-")^2
      ref <- exp(-d2) %*% b
      tol <- if (o$precision == "float32") 1e-5 else 1e-12
      is.matrix(res) && identical(dim(res), c(3L, 1L)) &&
        max(abs(res - ref)) <= tol * max(abs(ref))
    },
    error = function(e) {
      say("  test kernel:   failed\n", conditionMessage(e))
      NA
    }
  )
  if (isTRUE(ok)) {
    say("'rkeops' is ready and working.")
    return(TRUE)
  }
  if (identical(ok, FALSE)) say("  test kernel:   wrong result")
  say("ATTENTION: 'rkeops' is not ready: the test kernel failed (see above).")
  FALSE
}

#' Hello world
#'
#' Prints a greeting, to check that the package is attached.
#'
#' @return `NULL`, invisibly.
#' @export
#' @examples
#' helloWorld()
helloWorld <- function() {
  cat("Hello user of KeOps\n")
  invisible(NULL)
}
