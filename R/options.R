# Options of rkeops, stored in getOption("rkeops") as a list of class
# "rkeops_options". Per-call code only reads them (getOption is cheap);
# every check happens when they are set.

rkeops_option_names <- c(
  "backend", "device_id", "precision", "verbosity", "debug",
  "cache_dir", "formula_only", "ncore", "future", "index_base",
  "formula_axis"
)

# TRUE when running under R CMD check (decisions 10 and 11).
under_r_cmd_check <- function() {
  nzchar(Sys.getenv("_R_CHECK_PACKAGE_NAME_")) ||
    nzchar(Sys.getenv("_R_CHECK_LIMIT_CORES_"))
}

# Number of cores the engine sees.
rk_ncores <- function() {
  n <- tryCatch(.Call(rk_ncores_r), error = function(e) 1L)
  n <- suppressWarnings(as.integer(n))
  if (length(n) != 1L || is.na(n) || n < 1L) 1L else n
}

# Default number of threads: 0 (= all cores) or, under R CMD check, at most 2.
default_ncore <- function() {
  if (under_r_cmd_check()) min(2L, rk_ncores()) else 0L
}

# Default cache folder (decision 11): RKEOPS_CACHE_DIR when set, a folder in
# tempdir() under R CMD check, else tools::R_user_dir("rkeops", "cache").
# Nothing is created here: the engine creates the folder when it first
# writes a kernel.
default_rkeops_cache_dir <- function() {
  env <- Sys.getenv("RKEOPS_CACHE_DIR")
  if (nzchar(env)) return(normalizePath(env, mustWork = FALSE))
  if (under_r_cmd_check()) return(file.path(tempdir(), "rkeops-cache"))
  tools::R_user_dir("rkeops", which = "cache")
}

def_rkeops_options <- function() {
  structure(
    list(
      backend = "CPU",
      device_id = -1L,
      precision = "float64",
      verbosity = 1L,
      debug = 0L,
      cache_dir = default_rkeops_cache_dir(),
      formula_only = FALSE,
      ncore = default_ncore(),
      future = FALSE,
      index_base = 1L,
      formula_axis = "keops"
    ),
    class = "rkeops_options"
  )
}

# Short printable form of a user value for error messages.
fmt_value <- function(x) {
  if (is.null(x)) return("NULL")
  out <- paste(deparse(x, width.cutoff = 60L, nlines = 1L), collapse = "")
  if (nchar(out) > 60L) out <- paste0(substr(out, 1L, 57L), "...")
  out
}

is_whole_number <- function(x) {
  is.numeric(x) && length(x) == 1L && !is.na(x) && is.finite(x) &&
    x == round(x)
}

# The GPU situation from the engine's loader: list(report, available, status).
gpu_status <- function() {
  st <- tryCatch(.Call(rk_gpu_status_r), error = function(e) NULL)
  if (!is.list(st)) {
    st <- list(report = "the GPU loader could not be queried", available = FALSE,
               status = "unknown")
  }
  st
}

# Devices the driver does not report: an error naming them.
check_gpu_devices <- function(device, st = gpu_status(), call = NULL) {
  n <- st$devices
  if (!is.numeric(n) || length(n) != 1L || is.na(n)) return(invisible(device))
  missing <- device[device >= n]
  if (length(missing) > 0L) {
    rk_abort(sprintf(paste0(
      "`device` names GPU device%s %s, but the CUDA driver reports %d device%s%s; ",
      "received %s."), if (length(missing) > 1L) "s" else "",
      paste(missing, collapse = ", "), as.integer(n), if (n == 1L) "" else "s",
      if (n > 0L) sprintf(" (0 to %d)", as.integer(n) - 1L) else "", fmt_value(device)),
      code = "arg", call = call)
  }
  invisible(device)
}

msg_gpu_unavailable <- function(report = gpu_status()$report) {
  paste0(
    "No usable GPU: the rkeops options were not changed (kernels keep ",
    "running on the CPU, see rkeops_use_cpu()).\n", report
  )
}

# Validates one option and returns its normalised value; errors name the
# option. `create_dir`: create a missing cache folder.
validate_option <- function(name, value, call = NULL, create_dir = TRUE) {
  bad <- function(what) {
    rk_abort(
      sprintf("`%s` %s; received %s.", name, what, fmt_value(value)),
      code = "arg", call = call
    )
  }
  switch(name,
    backend = {
      if (!is.character(value) || length(value) != 1L || is.na(value) ||
          !(value %in% c("CPU", "GPU"))) {
        bad("should be \"CPU\" or \"GPU\"")
      }
      if (value == "GPU") {
        st <- gpu_status()
        if (!isTRUE(st$available)) rk_abort(msg_gpu_unavailable(st$report), "gpu", call)
      }
      value
    },
    device_id = {
      # one device (-1: the default one), or several distinct ones (GPU
      # runs share their output rows over them)
      ok <- is.numeric(value) && length(value) >= 1L && length(value) <= 64L &&
        !anyNA(value) && all(is.finite(value)) && all(value == round(value))
      if (ok && length(value) == 1L) ok <- value >= -1
      if (ok && length(value) > 1L) ok <- all(value >= 0) && !anyDuplicated(value)
      if (!ok) {
        bad(paste0("should be a whole number >= -1 (-1: the default device) or a ",
                   "vector of distinct device numbers >= 0"))
      }
      as.integer(value)
    },
    precision = {
      if (!is.character(value) || length(value) != 1L || is.na(value) ||
          !(value %in% c("float32", "float64"))) {
        bad("should be \"float32\" or \"float64\"")
      }
      value
    },
    verbosity = ,
    debug = {
      ok <- (is.logical(value) || is.numeric(value)) &&
        length(value) == 1L && !is.na(value) && value %in% c(0, 1)
      if (!ok) bad("should be TRUE/FALSE or 1/0")
      as.integer(value)
    },
    formula_only = {
      if (!is.logical(value) || length(value) != 1L || is.na(value)) {
        bad("should be TRUE or FALSE")
      }
      value
    },
    cache_dir = {
      if (!is.character(value) || length(value) != 1L || is.na(value) ||
          !nzchar(value)) {
        bad("should be a single path to a folder")
      }
      path <- path.expand(value)
      if (file.exists(path) && !dir.exists(path)) {
        bad("should be a folder, not a file")
      }
      if (!dir.exists(path)) {
        if (!create_dir) bad("should be an existing folder")
        ok <- dir.create(path, recursive = TRUE, showWarnings = FALSE)
        if (!ok || !dir.exists(path)) bad("should be a folder that can be created")
      }
      if (file.access(path, 2L) != 0L) bad("should be a writable folder")
      normalizePath(path, mustWork = FALSE)
    },
    ncore = {
      if (is.null(value)) value <- 0L
      if (!is_whole_number(value) || value < 0) {
        bad("should be NULL or a single non-negative whole number (0 = all cores)")
      }
      value <- as.integer(value)
      if (value == 0L && under_r_cmd_check()) value <- min(2L, rk_ncores())
      min(value, rk_ncores())
    },
    future = validate_future_option(value, call),
    index_base = {
      if (!is_whole_number(value) || !(value %in% c(0, 1))) bad("should be 1 (default) or 0")
      as.integer(value)
    },
    formula_axis = {
      if (!is.character(value) || length(value) != 1L || is.na(value) ||
          !(value %in% c("keops", "rkeops2"))) {
        bad("should be \"keops\" (default) or \"rkeops2\"")
      }
      value
    },
    rk_abort(sprintf("unknown rkeops option `%s`.", name), "arg", call)
  )
}

# Current options, or the defaults if unset.
current_options <- function() {
  opts <- getOption("rkeops")
  if (is.null(opts)) def_rkeops_options() else opts
}

# Sets some fields (already validated) of the current options.
update_options <- function(fields) {
  old <- current_options()
  new <- old
  for (n in names(fields)) new[[n]] <- fields[[n]]
  class(new) <- "rkeops_options"
  options(rkeops = new)
  invisible(old)
}

# Called by .onLoad: defaults, keeping any valid value the user set before.
init_rkeops_options <- function() {
  def <- def_rkeops_options()
  user <- getOption("rkeops")
  if (is.list(user) && !is.null(names(user))) {
    for (n in intersect(names(user), rkeops_option_names)) {
      v <- tryCatch(
        validate_option(n, user[[n]], create_dir = FALSE),
        error = function(e) NULL
      )
      if (!is.null(v)) def[[n]] <- v
    }
  }
  options(rkeops = def)
  invisible(def)
}

#' Get the rkeops options
#'
#' rkeops options are stored in the R option `"rkeops"` (see [options()]).
#'
#' The options are:
#' * `backend`: `"CPU"` (the only backend of this version).
#' * `device_id`: GPU device, `-1` for the default device (unused on CPU),
#'   or a vector of devices that GPU runs share (see [rkeops_use_gpu()]).
#' * `precision`: `"float64"` (default) or `"float32"`, the floating-point
#'   type of the computations. R data are always doubles; with `"float32"`
#'   they are converted for the computation and the results converted back.
#' * `verbosity`: `1` (default) to print a message each time a kernel is
#'   compiled, `0` to stay silent.
#' * `debug`: unused, kept for compatibility.
#' * `cache_dir`: folder where compiled kernels are kept (see
#'   [get_rkeops_cache_dir()]).
#' * `formula_only`: if `TRUE`, LazyTensor reductions print their formula
#'   and arguments and stop instead of computing (for debugging).
#' * `ncore`: number of threads used by the kernels, `0` for all cores
#'   (see [rkeops_use_cpu()]).
#' * `future`: `FALSE` (default), or the settings of [rkeops_use_future()]
#'   under which reductions run on future workers.
#' * `index_base`: `1` (default) for 1-based index results (`argmin()`,
#'   `argKmin()`, the indices of `Min_ArgMin`...), as `which.min()`; `0`
#'   for 0-based ones, as RKeOps 2.x returns them (a compatibility switch
#'   for old scripts). The helpers [keops_knn()] and [keops_kmeans()]
#'   return R's 1-based indices whatever this says.
#' * `formula_axis`: `"keops"` (default): in [keops_kernel()] formula
#'   strings, the axis `0` of `<Red>_Reduction(F, axis)` reduces over `j`
#'   and `1` over `i`, as KeOps' documentation says; `"rkeops2"`: the other
#'   way round, as RKeOps 2.x reads them (a compatibility switch; it is
#'   read when the operator is made, and LazyTensors are unaffected).
#'
#' @param option `NULL` (all options), or a character vector of option names.
#'
#' @return The full list of options (class `rkeops_options`) when `option`
#'   is `NULL`, the value of the option when `option` is a single name, or a
#'   named list of values for several names.
#'
#' @seealso [set_rkeops_options()]
#' @export
#' @examples
#' get_rkeops_options()
#' get_rkeops_options("precision")
#' get_rkeops_options(c("precision", "ncore"))
get_rkeops_options <- function(option = NULL) {
  opts <- getOption("rkeops")
  if (is.null(opts)) {
    rk_abort("rkeops global options are not defined.", "arg", sys.call())
  }
  if (is.null(option)) return(opts)
  if (!is.character(option) || length(option) < 1L || anyNA(option) ||
      !all(option %in% rkeops_option_names)) {
    rk_abort(
      paste0(
        "`option` should be NULL or a vector of option names among: ",
        paste0("'", rkeops_option_names, "'", collapse = ", "),
        "; received ", fmt_value(option), "."
      ),
      "arg", sys.call()
    )
  }
  if (length(option) == 1L) return(opts[[option]])
  setNames(lapply(option, function(n) opts[[n]]), option)
}

#' Set the rkeops options
#'
#' Sets one or several rkeops options (see [get_rkeops_options()] for their
#' meaning). Each value is checked and an invalid value is an error that
#' names the option; no option is changed in that case.
#'
#' @param input `NULL` to reset every option to its default value, or a
#'   named list of option values, e.g. `list(precision = "float32")`. A
#'   `cache_dir` that does not exist is created.
#'
#' @return The previous options (class `rkeops_options`), invisibly, so that
#'   they can be restored with `set_rkeops_options(old)`.
#'
#' @seealso [get_rkeops_options()], [rkeops_use_cpu()],
#'   [rkeops_use_float64()], [rkeops_enable_verbosity()]
#' @export
#' @examples
#' old <- set_rkeops_options(list(precision = "float32", verbosity = FALSE))
#' get_rkeops_options("precision")
#' set_rkeops_options(old)
set_rkeops_options <- function(input = NULL) {
  call <- sys.call()
  old <- current_options()
  if (is.null(input)) {
    options(rkeops = def_rkeops_options())
    return(invisible(old))
  }
  if (!is.list(input)) {
    rk_abort(
      paste0(
        "`input` should be NULL or a named list of rkeops options; received ",
        fmt_value(input), "."
      ),
      "arg", call
    )
  }
  nm <- names(input)
  if (length(input) > 0L && (is.null(nm) || any(is.na(nm) | !nzchar(nm)))) {
    rk_abort("`input` should be a named list of rkeops options.", "arg", call)
  }
  unknown <- setdiff(nm, rkeops_option_names)
  if (length(unknown) > 0L) {
    rk_abort(
      paste0(
        "Unknown rkeops option(s): ", paste0("'", unknown, "'", collapse = ", "),
        ". Available options: ",
        paste0("'", rkeops_option_names, "'", collapse = ", "), "."
      ),
      "arg", call
    )
  }
  if (anyDuplicated(nm)) {
    rk_abort("`input` contains duplicated option names.", "arg", call)
  }
  fields <- list()
  for (n in nm) fields[n] <- list(validate_option(n, input[[n]], call = call))
  update_options(fields)
}

#' Print rkeops options
#'
#' @param x an object of class `rkeops_options`.
#' @param ... not used.
#' @return `x`, invisibly.
#' @export
#' @keywords internal
print.rkeops_options <- function(x, ...) {
  cat("rkeops options:\n")
  for (n in names(x)) {
    v <- x[[n]]
    if (n == "ncore" && identical(v, 0L)) v <- "0 (all cores)"
    if (n == "future" && is.list(v)) {
      v <- paste0(names(v), " = ", vapply(v, function(x) {
        if (is.null(x)) "NULL" else format(x)
      }, ""), collapse = ", ")
    }
    cat(sprintf("  %-13s %s\n", paste0(n, ":"), format(v)))
  }
  invisible(x)
}

#' Choose the CPU backend and its number of threads
#'
#' Kernels run on the CPU with OpenMP threads (when the C compiler supports
#' OpenMP). The thread count also honours the environment variables
#' `OMP_THREAD_LIMIT` and `OMP_NUM_THREADS`, and very small inputs use fewer
#' threads.
#'
#' @param ncore `NULL` or `0` for all available cores (at most 2 under
#'   `R CMD check`), or a positive whole number of threads, capped at the
#'   number of available cores.
#'
#' @return The number of threads now requested (`0` meaning all cores),
#'   invisibly.
#'
#' @seealso [get_rkeops_options()], [check_rkeops()]
#' @export
#' @examples
#' rkeops_use_cpu(1)
#' get_rkeops_options("ncore")
#' rkeops_use_cpu()
rkeops_use_cpu <- function(ncore = NULL) {
  n <- validate_option("ncore", ncore, call = sys.call())
  update_options(list(backend = "CPU", ncore = n, future = FALSE))
  invisible(n)
}

#' Choose the GPU backend
#'
#' Switches the kernels to the GPU backend: CUDA through the NVIDIA driver
#' (`libcuda`) and the run-time compiler NVRTC (`libnvrtc`), both found at
#' run time (no CUDA is needed to install rkeops). The first use loads them;
#' when no usable GPU is found, the error prints the loader's diagnosis (each
#' library tried and why it failed, the devices found) and the options are
#' not changed. Set the environment variables `RKEOPS_LIBCUDA` and
#' `RKEOPS_LIBNVRTC` to explicit library paths when they are not found.
#' Data go to the device at each call and results come back; index results
#' and shapes are the same as on the CPU.
#'
#' Several devices: with `device = c(0, 1)`, each reduction shares its
#' output rows among the devices (in proportion to their multiprocessors),
#' each device with its own copy of the data, all computing at once; the
#' kernel is compiled for the first device and loaded on the others, so the
#' devices should be of one architecture. Results are identical, bit for
#' bit, to those of the first device alone. Block-sparse reductions
#' (`ranges`) run on the first device only.
#'
#' @param device GPU device id, a whole number `>= -1` (`-1` = the default
#'   device, 0), or a vector of distinct device ids (`>= 0`) to use them all.
#'   Every device must be one that the CUDA driver reports (see
#'   [check_rkeops()]).
#'
#' @return The previous options, invisibly.
#'
#' @seealso [rkeops_use_cpu()], [check_rkeops()]
#' @export
#' @examples
#' try(rkeops_use_gpu())
#' rkeops_use_cpu()
rkeops_use_gpu <- function(device = -1) {
  call <- sys.call()
  device <- validate_option("device_id", device, call = call)
  st <- gpu_status()
  if (!isTRUE(st$available)) rk_abort(msg_gpu_unavailable(st$report), "gpu", call)
  check_gpu_devices(device, st, call)
  update_options(list(backend = "GPU", device_id = device, future = FALSE))
}

#' Choose the floating-point precision of the computations
#'
#' `rkeops_use_float64()` (the default) computes in double precision, as R
#' does. `rkeops_use_float32()` computes in single precision: faster, with
#' about 7 significant digits; sums use block summation so that long sums
#' keep a relative accuracy of about `1e-6`. Input data are converted
#' and results are returned as R doubles in both cases.
#'
#' @return The previous options, invisibly.
#'
#' @seealso [get_rkeops_options()]
#' @export
#' @examples
#' rkeops_use_float32()
#' get_rkeops_options("precision")
#' rkeops_use_float64()
rkeops_use_float32 <- function() {
  update_options(list(precision = "float32"))
}

#' @rdname rkeops_use_float32
#' @export
rkeops_use_float64 <- function() {
  update_options(list(precision = "float64"))
}

#' Turn the compilation messages on or off
#'
#' With verbosity on (the default), rkeops prints one message each time a
#' kernel is compiled (not when it is found in the cache), such as
#' `compiling kernel Sum_Reduction(SqNorm2(x-y),0) ... 0.21 s`.
#'
#' @return The previous options, invisibly.
#'
#' @seealso [get_rkeops_options()]
#' @export
#' @examples
#' rkeops_disable_verbosity()
#' get_rkeops_options("verbosity")
#' rkeops_enable_verbosity()
rkeops_enable_verbosity <- function() {
  update_options(list(verbosity = 1L))
}

#' @rdname rkeops_enable_verbosity
#' @export
rkeops_disable_verbosity <- function() {
  update_options(list(verbosity = 0L))
}
