# Compatibility switches for RKeOps 2.x scripts (off by default):
# set_rkeops_options(index_base = 0) returns index results 0-based, and
# set_rkeops_options(formula_axis = "rkeops2") reads the axis integer of
# the reductions in keops_kernel() strings as RKeOps 2.x does (0 = reduce
# over i).

# Index results of a kernel's raw result made 0-based.
zero_based_indices <- function(res, k) {
  red <- attr(k, "reduction", exact = TRUE)
  if (!is.character(red) || length(red) != 1L) return(res)
  cols <- index_columns(k)
  if (length(cols) > 0L) res[, cols] <- res[, cols] - 1
  res
}

# The formula with the axis of every `<Red>_Reduction(..., axis)` swapped
# (0 <-> 1), when the option formula_axis is "rkeops2". Only the digit of
# the last top-level argument of each reduction changes, so the formula
# keeps its length and the engine's error positions stay right; anything
# that is not a reduction with an axis 0 or 1 is left for the engine to
# judge.
formula_axes <- function(formula, o = getOption("rkeops")) {
  if (!identical(o$formula_axis, "rkeops2")) return(formula)
  swap_reduction_axes(formula)
}

swap_reduction_axes <- function(formula) {
  chars <- strsplit(formula, "")[[1L]]
  starts <- gregexpr("[A-Za-z_]+_Reduction[[:space:]]*\\(", formula)[[1L]]
  if (starts[1L] == -1L) return(formula)
  lens <- attr(starts, "match.length")
  for (s in seq_along(starts)) {
    open <- starts[s] + lens[s] - 1L
    depth <- 0L
    last_comma <- NA_integer_
    close <- NA_integer_
    for (p in seq.int(open, length(chars))) {
      ch <- chars[p]
      if (ch == "(") {
        depth <- depth + 1L
      } else if (ch == ")") {
        depth <- depth - 1L
        if (depth == 0L) {
          close <- p
          break
        }
      } else if (ch == "," && depth == 1L) {
        last_comma <- p
      }
    }
    if (is.na(close) || is.na(last_comma)) next
    inner <- seq.int(last_comma + 1L, close - 1L)
    digits <- inner[chars[inner] %in% c("0", "1")]
    blank <- inner[!(inner %in% digits)]
    if (length(digits) == 1L && all(grepl("^[[:space:]]$", chars[blank]))) {
      chars[digits] <- if (chars[digits] == "0") "1" else "0"
    }
  }
  paste(chars, collapse = "")
}

# Run `expr` with the formula_axis option at its default: formulas built by
# rkeops itself use KeOps' axes.
with_keops_axes <- function(expr) {
  o <- getOption("rkeops")
  if (is.list(o) && identical(o$formula_axis, "rkeops2")) {
    on.exit(options(rkeops = o), add = TRUE)
    o$formula_axis <- "keops"
    options(rkeops = o)
  }
  expr
}
