# The cache folder of compiled kernels (decision 11). The engine owns its
# content (content-addressed files written atomically); R only chooses the
# folder, reports its size and empties it.

# Total size in bytes of the files under `path` (0 if it does not exist).
dir_size <- function(path) {
  if (!dir.exists(path)) return(0)
  files <- list.files(path, recursive = TRUE, full.names = TRUE,
                      all.files = TRUE, no.. = TRUE)
  if (length(files) == 0L) return(0)
  sum(file.size(files), na.rm = TRUE)
}

# Human-readable size, as fs does: "0", "512", "12.3K", "4.56M", "1.2G".
format_bytes <- function(bytes) {
  bytes <- as.numeric(bytes)
  if (is.na(bytes) || bytes < 1024) return(format(round(bytes), scientific = FALSE))
  units <- c("K", "M", "G", "T", "P")
  k <- min(floor(log(bytes, 1024)), length(units))
  paste0(format(signif(bytes / 1024^k, 3L), scientific = FALSE), units[k])
}

#' Get the folder of compiled kernels
#'
#' rkeops keeps every compiled kernel in a cache folder so that a formula is
#' compiled once and then loaded from disk, in the same or in later R
#' sessions. The default folder is `tools::R_user_dir("rkeops", "cache")`,
#' or the value of the environment variable `RKEOPS_CACHE_DIR` when it is
#' set; under `R CMD check` it is a folder in [tempdir()].
#'
#' @return The path of the cache folder (it may not exist yet: it is created
#'   when the first kernel is compiled).
#'
#' @seealso [set_rkeops_cache_dir()], [stat_rkeops_cache_dir()],
#'   [clean_rkeops()]
#' @export
#' @examples
#' get_rkeops_cache_dir()
get_rkeops_cache_dir <- function() {
  get_rkeops_options("cache_dir")
}

#' Set the folder of compiled kernels
#'
#' @param cache_dir `NULL` for the default folder (see
#'   [get_rkeops_cache_dir()]), or the path of a folder, created if it does
#'   not exist.
#' @param verbose `TRUE` to print the previous folder, its disk usage and
#'   the new folder.
#'
#' @return The previous folder, invisibly.
#'
#' @seealso [get_rkeops_cache_dir()], [clean_rkeops()]
#' @export
#' @examples
#' old <- set_rkeops_cache_dir(file.path(tempdir(), "my_rkeops_cache"))
#' get_rkeops_cache_dir()
#' set_rkeops_cache_dir(old, verbose = FALSE)
set_rkeops_cache_dir <- function(cache_dir = NULL, verbose = TRUE) {
  call <- sys.call()
  old <- current_options()$cache_dir
  if (is.null(cache_dir)) cache_dir <- default_rkeops_cache_dir()
  new <- validate_option("cache_dir", cache_dir, call = call)
  update_options(list(cache_dir = new))
  if (isTRUE(verbose)) {
    message(sprintf(
      "rkeops cache folder: '%s' (%s) replaced by '%s'.",
      old, format_bytes(dir_size(old)), new
    ))
  }
  invisible(old)
}

#' Disk usage of the folder of compiled kernels
#'
#' @param verbose `TRUE` to print a message with the folder and its size.
#' @param startup `TRUE` to print that message as a package startup message
#'   (see [packageStartupMessage()]).
#'
#' @return The total size of the files in the cache folder, as a
#'   human-readable character string (e.g. `"0"`, `"512"`, `"12.3K"`,
#'   `"4.5M"`); invisibly when `verbose` is `TRUE`.
#'
#' @seealso [clean_rkeops()]
#' @export
#' @examples
#' stat_rkeops_cache_dir(verbose = FALSE)
stat_rkeops_cache_dir <- function(verbose = TRUE, startup = FALSE) {
  dir <- get_rkeops_cache_dir()
  size <- format_bytes(dir_size(dir))
  if (isTRUE(verbose)) {
    msg <- sprintf(
      "rkeops cache folder '%s' uses %s of disk space (clean_rkeops() empties it).",
      dir, size
    )
    if (isTRUE(startup)) packageStartupMessage(msg) else message(msg)
    return(invisible(size))
  }
  size
}

#' Empty the folder of compiled kernels
#'
#' Deletes compiled kernels from the cache folder (see
#' [get_rkeops_cache_dir()]). Kernels already loaded in the current R session
#' keep working; the others are compiled again when next needed.
#'
#' @param verbose `TRUE` to print what was removed.
#' @param all `TRUE` to delete everything in the cache folder; `FALSE` to keep
#'   the kernels compiled or loaded by the current R session.
#' @param remove_cache_dir `TRUE` to delete the cache folder itself.
#'
#' @return The number of bytes freed, invisibly.
#'
#' @seealso [stat_rkeops_cache_dir()], [set_rkeops_cache_dir()]
#' @export
#' @examples
#' old <- set_rkeops_cache_dir(file.path(tempdir(), "rkeops_demo_cache"),
#'                             verbose = FALSE)
#' clean_rkeops()
#' set_rkeops_cache_dir(old, verbose = FALSE)
clean_rkeops <- function(verbose = TRUE, all = TRUE, remove_cache_dir = FALSE) {
  call <- sys.call()
  for (a in c("verbose", "all", "remove_cache_dir")) {
    v <- get(a)
    if (!is.logical(v) || length(v) != 1L || is.na(v)) {
      rk_abort(sprintf("`%s` should be TRUE or FALSE; received %s.", a,
                       fmt_value(v)), "arg", call)
    }
  }
  dir <- get_rkeops_cache_dir()
  if (!dir.exists(dir)) {
    if (verbose) message(sprintf("rkeops cache folder '%s' does not exist.", dir))
    return(invisible(0))
  }
  before <- dir_size(dir)
  if (remove_cache_dir) {
    unlink(dir, recursive = TRUE, force = TRUE)
  } else {
    entries <- list.files(dir, all.files = TRUE, no.. = TRUE, full.names = TRUE)
    if (!all) entries <- entries[!session_cache_entry(entries)]
    unlink(entries, recursive = TRUE, force = TRUE)
  }
  freed <- before - dir_size(dir)
  if (verbose) {
    message(sprintf(
      "%s rkeops cache folder '%s' (%s freed).",
      if (remove_cache_dir) "Removed the" else "Cleaned the",
      dir, format_bytes(freed)
    ))
  }
  invisible(freed)
}

# Cache entries that belong to kernels used by this session: the paths the
# engine reported (attribute "path" of kernels, when the glue sets it) and
# files modified since the package was loaded.
session_cache_entry <- function(entries) {
  keep <- rep(FALSE, length(entries))
  if (length(entries) == 0L) return(keep)
  paths <- .rk_state$paths
  if (length(paths) > 0L) {
    np <- normalizePath(paths, mustWork = FALSE)
    ne <- normalizePath(entries, mustWork = FALSE)
    keep <- ne %in% np | ne %in% dirname(np)
  }
  if (!is.null(.rk_state$loaded_at)) {
    mt <- file.mtime(entries)
    keep <- keep | (!is.na(mt) & mt >= .rk_state$loaded_at)
  }
  keep
}
