# Base R functions re-exported (SPEC decision 7): scripts written for
# RKeOps 2.x call them with the prefix (`rkeops::sum(x_i, "j")`,
# `rkeops::exp(x_i)`), where RKeOps exported functions of its own. Ours are
# base R's own functions, so attaching rkeops masks nothing; on LazyTensors
# they dispatch to the methods of the Ops, Math, Summary and Complex group
# generics.

#' @export
base::`+`

#' @export
base::`-`

#' @export
base::`*`

#' @export
base::`/`

#' @export
base::`^`

#' @export
base::`|`

#' @export
base::sqrt

#' @export
base::exp

#' @export
base::log

#' @export
base::cos

#' @export
base::sin

#' @export
base::acos

#' @export
base::asin

#' @export
base::atan

#' @export
base::abs

#' @export
base::sign

#' @export
base::round

#' @export
base::Re

#' @export
base::Im

#' @export
base::Arg

#' @export
base::Conj

#' @export
base::Mod

#' @export
base::sum

#' @export
base::min

#' @export
base::max
