# tools/site.R -- `make site`: the pkgdown site in ./docs from the roxygen docs
# and the vignettes (reference grouped by topic in _pkgdown.yml), then a
# check that every local link of the generated pages leads to a file, and,
# when a headless Chromium is found, screenshots of the home page and of one
# reference page in docs/screenshots/.
# offline: no look-up of the package on CRAN / Bioconductor
options(pkgdown.internet = FALSE)
pkgdown::build_site(install = FALSE, new_process = FALSE, preview = FALSE)

pages <- list.files("docs", pattern = "\\.html$", recursive = TRUE, full.names = TRUE)
broken <- character()
for (p in pages) {
  html <- paste(readLines(p, warn = FALSE), collapse = "\n")
  links <- regmatches(html, gregexpr("(href|src)=\"[^\"#?]+", html))[[1L]]
  links <- sub("^(href|src)=\"", "", links)
  links <- links[!grepl("^([a-z]+:|//)", links)]
  for (l in unique(links)) {
    target <- file.path(dirname(p), l)
    if (!file.exists(target)) broken <- c(broken, sprintf("%s -> %s", p, l))
  }
}
cat(sprintf("site: %d pages, %d broken local links\n", length(pages), length(broken)))
if (length(broken)) {
  writeLines(head(broken, 50))
  quit(status = 1)
}

chrome <- Sys.which(c("chromium", "chromium-browser", "google-chrome"))
chrome <- chrome[nzchar(chrome)]
if (length(chrome)) {
  dir.create("docs/screenshots", showWarnings = FALSE)
  shot <- function(page, png) {
    system2(chrome[1L], c("--headless", "--no-sandbox", "--disable-gpu",
                          "--window-size=1280,1600",
                          paste0("--screenshot=", normalizePath("docs/screenshots"), "/", png),
                          paste0("file://", normalizePath(page))),
            stdout = FALSE, stderr = FALSE)
  }
  shot("docs/index.html", "home.png")
  shot("docs/reference/keops_knn.html", "reference-keops_knn.png")
  cat("site: screenshots in docs/screenshots/\n")
} else {
  cat("site: no headless Chromium found (apt-get install chromium): no screenshots\n")
}
