# Progress reporting through progressr, when it is installed: a progressor
# of `steps` steps for the calling function (finished when that function
# exits), else a no-op. progressr only signals conditions: nothing is shown
# unless the user chose a handler (progressr::handlers(global = TRUE),
# progressr::with_progress()), and it works inside futures.
rk_progressor <- function(steps, label, envir = parent.frame()) {
  if (!requireNamespace("progressr", quietly = TRUE)) {
    return(function(...) invisible(NULL))
  }
  progressr::progressor(steps = steps, label = label, envir = envir)
}
