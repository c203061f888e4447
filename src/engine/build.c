/*
 * build.c -- generated source to a loaded kernel, through a
 * content-addressed disk cache (guideline 8, after CuPy).
 *
 * High level description
 * ----------------------
 *   key  = SHA-256(engine version, compiler, flags, OpenMP flags, CPU
 *          identity, generated source)
 *   file = <cache_dir>/rk<version>-<key>.so
 *
 * 1. In-process memo: a kernel already loaded in this session (same key and
 *    same argument names) is returned at once.
 * 2. Disk: the file is a regular file (opened without following links or
 *    blocking, at most 256 MiB) whose trailer checks out: the SHA-256 of
 *    the file's own name, then the SHA-256 of the payload and that name.
 *    A torn or corrupted file, a FIFO, a link, or another kernel's file
 *    copied under this name fails the check and is rebuilt.
 * 3. Compiler: the source is written to a private folder outside the cache
 *    ($TMPDIR/rkeops-build-XXXXXX, also the compiler's TMPDIR), compiled
 *    there (posix_spawn, no shell: paths are never parsed; the compiler in
 *    a process group of its own, waited for in 10 ms slices with the
 *    caller's interrupt check: an interrupt kills the group, and the
 *    private folder goes with everything in it, the cache untouched), the
 *    kernel loaded from there, and published signed: written beside its
 *    name in the cache folder and renamed into place.  rename() is atomic,
 *    so concurrent sessions never load half a file; the loser of a race
 *    simply replaces the file with an identical one.  A cache folder
 *    removed meanwhile (clean_rkeops() in another session) is created
 *    again, once.
 *
 * The compiler's output goes to a log file; on failure it becomes err->log.
 *
 * The folder is bounded (decision 11): after each new kernel, when the
 * kernels in it weigh more than RKEOPS_CACHE_MAX_MB (default 1024) the
 * least recently used ones are removed (a load from disk refreshes the
 * file's time), and temporary files older than an hour (left by a killed
 * session) go too.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <utime.h>
#include <unistd.h>
#include "internal.h"
#include "rk_config.h"

extern char **environ;

#ifndef RK_CONFIG_CC
#define RK_CONFIG_CC "cc"
#endif
#ifndef RK_CONFIG_CFLAGS
#define RK_CONFIG_CFLAGS "-O3 -fPIC"
#endif
#ifndef RK_CONFIG_OPENMP
#define RK_CONFIG_OPENMP ""
#endif
#ifndef RK_CONFIG_HAVE_OPENMP
#define RK_CONFIG_HAVE_OPENMP 0
#endif
#ifndef RK_CONFIG_PREFIX_MAP
#define RK_CONFIG_PREFIX_MAP 0
#endif

/* trailer = tag, SHA-256 of the file's own name (rk<version>-<hash><ext>),
 * SHA-256 of (payload, name): a valid kernel of another formula copied
 * under this name fails the check like a torn file */
#define TRAILER_TAG "\nRKEOPS-SHA256:"
#define TAG_LEN (sizeof(TRAILER_TAG) - 1)
#define TRAILER_LEN (TAG_LEN + 128)
/* no kernel comes near this: a larger file is not ours */
#define CACHE_FILE_MAX ((size_t)256 << 20)

/* ------------------------------------------------------------ toolchain */

static char *tc_cc, *tc_cflags, *tc_openmp;
static rk_toolchain toolchain = {RK_CONFIG_CC, RK_CONFIG_CFLAGS, RK_CONFIG_OPENMP,
                                 RK_CONFIG_HAVE_OPENMP};

const rk_toolchain *rk_toolchain_get(void) { return &toolchain; }

static void set_str(char **slot, const char **field, const char *v) {
  if (!v) return;
  char *d = strdup(v);
  if (!d) return;
  free(*slot);
  *slot = d;
  *field = d;
}

void rk_toolchain_set(const char *cc, const char *cflags, const char *openmp, int have_openmp) {
  set_str(&tc_cc, &toolchain.cc, cc);
  set_str(&tc_cflags, &toolchain.cflags, cflags);
  set_str(&tc_openmp, &toolchain.openmp, openmp);
  if (have_openmp >= 0) toolchain.have_openmp = have_openmp;
}

/* CPU identity for the cache key: -march=native code is only valid on the
 * CPU it was built for.  Model name and feature flags from /proc/cpuinfo. */
static const char *cpu_identity(void) {
  static char id[65] = "";
  if (id[0]) return id;
  sha256_ctx h;
  sha256_init(&h);
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[4096];
    int got_model = 0, got_flags = 0;
    while (fgets(line, sizeof line, f) && !(got_model && got_flags)) {
      if (!got_model && strncmp(line, "model name", 10) == 0) {
        sha256_update(&h, line, strlen(line));
        got_model = 1;
      } else if (!got_flags && (strncmp(line, "flags", 5) == 0 || strncmp(line, "Features", 8) == 0)) {
        sha256_update(&h, line, strlen(line));
        got_flags = 1;
      }
    }
    fclose(f);
  } else {
    sha256_update(&h, "unknown-cpu", 11);
  }
  unsigned char d[32];
  sha256_final(&h, d);
  for (int i = 0; i < 32; i++) snprintf(id + 2 * i, 3, "%02x", d[i]);
  return id;
}

/* ------------------------------------------------------------ helpers */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int mkdir_p(const char *path) {
  char tmp[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (tmp[i] == '/' || tmp[i] == '\0') {
      char ch = tmp[i];
      tmp[i] = '\0';
      if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
      tmp[i] = ch;
    }
  }
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* The whole content of a regular file of at most `max` bytes (malloc'd,
 * NUL-terminated, *len bytes), or NULL.  Nothing in the cache folder is
 * trusted: no symbolic link is followed (O_NOFOLLOW), a FIFO or device is
 * refused without blocking (O_NONBLOCK, then fstat), and so is a file
 * larger than max or one that grows while read. */
static char *read_file_max(const char *path, size_t max, size_t *len) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
      (unsigned long long)st.st_size > (unsigned long long)max) {
    close(fd);
    return NULL;
  }
  size_t n = (size_t)st.st_size, got = 0;
  char *s = malloc(n + 1);
  while (s && got < n) {
    ssize_t r = read(fd, s + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { free(s); s = NULL; break; }
    got += (size_t)r;
  }
  char extra;
  if (s && read(fd, &extra, 1) != 0) { free(s); s = NULL; } /* it grew */
  close(fd);
  if (!s) return NULL;
  s[n] = '\0';
  if (len) *len = n;
  return s;
}

static char *read_file(const char *path, size_t *len) {
  return read_file_max(path, CACHE_FILE_MAX, len);
}

static const char *base_name(const char *path) {
  const char *b = strrchr(path, '/');
  return b ? b + 1 : path;
}

/* the trailer of payload s[0..n) stored under the name `name` */
static void trailer_make(const char *s, size_t n, const char *name, char out[TRAILER_LEN + 1]) {
  sha256_ctx h;
  unsigned char d[32];
  memcpy(out, TRAILER_TAG, TAG_LEN);
  sha256_hex(name, strlen(name), out + TAG_LEN);
  sha256_init(&h);
  sha256_update(&h, s, n);
  sha256_update(&h, name, strlen(name));
  sha256_final(&h, d);
  for (int i = 0; i < 32; i++) snprintf(out + TAG_LEN + 64 + 2 * i, 3, "%02x", d[i]);
}

/* The payload of the file at path (malloc'd, NUL-terminated, *len bytes)
 * when it is a regular file ending with the trailer for its own name and
 * content; NULL when missing, unreadable, torn, or another kernel's file. */
static char *read_signed(const char *path, size_t *len) {
  size_t n;
  char *s = read_file(path, &n);
  if (!s) return NULL;
  char t[TRAILER_LEN + 1];
  if (n <= TRAILER_LEN) { free(s); return NULL; }
  trailer_make(s, n - TRAILER_LEN, base_name(path), t);
  if (memcmp(t, s + n - TRAILER_LEN, TRAILER_LEN) != 0) { free(s); return NULL; }
  n -= TRAILER_LEN;
  s[n] = '\0';
  *len = n;
  return s;
}

/* 1 when the file is a kernel signed for its own name */
static int trailer_ok(const char *path) {
  size_t n;
  char *s = read_signed(path, &n);
  free(s);
  return s != NULL;
}

/* Splits the words of a flag string into argv (no quoting: our flags and
 * the compiler command come from configure, never from a formula). */
static int add_words(char **argv, int argc, int max, char *s) {
  for (char *tok = strtok(s, " \t"); tok && argc < max - 1; tok = strtok(NULL, " \t"))
    argv[argc++] = tok;
  return argc;
}

/* The compiler's environment: ours, with TMPDIR set to the private build
 * folder, so that whatever it writes goes where build_kernel removes it
 * (malloc'd array of borrowed strings, except the TMPDIR entry: *own). */
static char **compiler_env(const char *tmpdir, char **own) {
  size_t n = 0;
  while (environ[n]) n++;
  char **env = malloc((n + 2) * sizeof *env);
  *own = malloc(strlen(tmpdir) + 8);
  if (!env || !*own) {
    free(env);
    free(*own);
    *own = NULL;
    return NULL;
  }
  sprintf(*own, "TMPDIR=%s", tmpdir);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "TMPDIR=", 7) != 0) env[k++] = environ[i];
  env[k++] = *own;
  env[k] = NULL;
  return env;
}

/* Waits for the compiler (pid, leader of its own process group) in slices
 * of 10 ms, asking o->intr every 50 ms.  0: it exited (*status); 1: the
 * caller interrupted, the whole group was killed and the compiler reaped;
 * -1: waitpid failed (err set, the group killed and reaped). */
static int wait_compiler(pid_t pid, const rk_options *o, int *status, rk_error *err) {
  const struct timespec slice = {0, 10 * 1000 * 1000};
  for (unsigned tick = 1;; tick++) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return 0;
    int stop = 0;
    if (r < 0 && errno != EINTR) {
      rk_seterr(err, RK_EBUILD, -1, "waiting for the C compiler failed: %s", strerror(errno));
      stop = -1;
    } else if (o->intr && tick % 5 == 0 && o->intr(o->intr_data)) {
      stop = 1;
    }
    if (stop) {
      /* the leader is not reaped yet, so its group id cannot be reused */
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      while (waitpid(pid, status, 0) < 0 && errno == EINTR) {}
      return stop;
    }
    nanosleep(&slice, NULL);
  }
}

/* name: what the object records as its source file (src is a temporary
 * name), so that rebuilding a kernel gives the same bytes, when the
 * configured compiler accepts -ffile-prefix-map (configure's probe).
 * tmpdir: the private build folder (the compiler's TMPDIR). */
static int run_compiler(const char *src, const char *so, const char *logp, const char *name,
                        const char *tmpdir, const rk_options *o, rk_error *err) {
  const rk_toolchain *tc = rk_toolchain_get();
  char prefix_map[4200];
  prefix_map[0] = '\0';
  if (RK_CONFIG_PREFIX_MAP && strcmp(tc->cc, RK_CONFIG_CC) == 0)
    snprintf(prefix_map, sizeof prefix_map, "-ffile-prefix-map=%s=%s", src, name);
  size_t need = strlen(tc->cc) + strlen(tc->cflags) + strlen(tc->openmp) + 3;
  char *words = malloc(need), *own_env = NULL;
  char **env = compiler_env(tmpdir, &own_env);
  if (!words || !env) {
    free(words);
    free(env);
    free(own_env);
    rk_seterr(err, RK_ENOMEM, -1, "out of memory");
    return -1;
  }
  snprintf(words, need, "%s %s %s", tc->cc, tc->cflags, tc->openmp);
  char *argv[128];
  int argc = add_words(argv, 0, 120, words);
  int ret = -1;
  if (argc == 0) {
    rk_seterr(err, RK_EBUILD, -1, "no C compiler is configured");
    goto done;
  }
  if (prefix_map[0] && strlen(prefix_map) < sizeof prefix_map - 1) argv[argc++] = prefix_map;
  argv[argc++] = "-shared";
  argv[argc++] = "-o";
  argv[argc++] = (char *)so;
  argv[argc++] = (char *)src;
  argv[argc++] = "-lm";
  argv[argc] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  /* a process group of its own: an interrupt kills the driver and the
   * compiler passes it started, and a terminal's Ctrl-C reaches R only */
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (rc != 0) {
    rk_seterr(err, RK_EBUILD, -1, "could not run the C compiler '%s': %s", argv[0], strerror(rc));
    goto done;
  }
  int status = 0;
  int w = wait_compiler(pid, o, &status, err);
  if (w == 1) {
    rk_seterr(err, RK_EINTERRUPT, -1, "interrupted while the C compiler built the kernel");
    goto done;
  }
  if (w < 0) goto done;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    rk_seterr(err, RK_EBUILD, -1, "the C compiler '%s' failed to build the kernel (exit status %d)",
              argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    free(err->log);
    err->log = read_file(logp, NULL);
    goto done;
  }
  ret = 0;
done:
  free(words);
  free(env);
  free(own_env);
  return ret;
}

/* A private build folder, $TMPDIR/rkeops-build-XXXXXX (malloc'd), outside
 * the cache folder: clean_rkeops() in another session cannot remove the
 * files of a compilation in progress. */
static char *private_dir(void) {
  const char *t = getenv("TMPDIR");
  if (!t || !*t) t = "/tmp";
  size_t n = strlen(t) + 32;
  char *d = malloc(n);
  if (!d) return NULL;
  snprintf(d, n, "%s/rkeops-build-XXXXXX", t);
  if (!mkdtemp(d)) {
    free(d);
    return NULL;
  }
  return d;
}

/* removes the private folder and every file in it (no allocation: it runs
 * on the paths where one failed) */
static void remove_private(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *de;
    char full[8192];
    while ((de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      if (snprintf(full, sizeof full, "%s/%s", dir, de->d_name) < (int)sizeof full) unlink(full);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* ------------------------------------------------------------ eviction */

typedef struct { char *name; time_t t; off_t size; } cache_entry;

static int by_time(const void *a, const void *b) {
  const cache_entry *x = a, *y = b;
  return x->t < y->t ? -1 : x->t > y->t;
}

static int ends_with(const char *n, const char *ext) {
  size_t a = strlen(n), b = strlen(ext);
  return a >= b && strcmp(n + a - b, ext) == 0;
}

/* our files: rk<version>-<hash>.{so,c,cubin,ptx} */
static int is_kernel_file(const char *n) {
  return strncmp(n, "rk", 2) == 0 && (ends_with(n, ".so") || ends_with(n, ".c") ||
                                      ends_with(n, ".cubin") || ends_with(n, ".ptx"));
}

static void cache_evict(const char *dir, const char *keep) {
  const char *env = getenv("RKEOPS_CACHE_MAX_MB");
  double max_mb = env && *env ? atof(env) : 1024.0;
  if (max_mb <= 0) max_mb = 1024.0;
  DIR *d = opendir(dir);
  if (!d) return;
  size_t n = 0, cap = 64;
  cache_entry *v = malloc(cap * sizeof *v);
  double total = 0;
  time_t t_now = time(NULL);
  size_t dlen = strlen(dir);
  struct dirent *de;
  while (v && (de = readdir(d)) != NULL) {
    const char *nm = de->d_name;
    int tmp = strncmp(nm, "tmp-", 4) == 0;
    if (!tmp && !is_kernel_file(nm)) continue;
    char *full = malloc(dlen + strlen(nm) + 2);
    if (!full) break;
    sprintf(full, "%s/%s", dir, nm);
    struct stat st;
    if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) { free(full); continue; }
    if (tmp) {
      if (t_now - st.st_mtime > 3600) remove(full);
      free(full);
      continue;
    }
    if (n == cap) {
      cache_entry *w = realloc(v, 2 * cap * sizeof *v);
      if (!w) { free(full); break; }
      v = w;
      cap *= 2;
    }
    v[n].name = full;
    v[n].t = st.st_mtime;
    v[n].size = st.st_size;
    total += (double)st.st_size;
    n++;
  }
  closedir(d);
  if (!v) return;
  qsort(v, n, sizeof *v, by_time);
  for (size_t i = 0; i < n; i++) {
    if (total > max_mb * 1048576.0 && strcmp(v[i].name, keep) != 0) {
      if (remove(v[i].name) == 0) total -= (double)v[i].size;
    }
    free(v[i].name);
  }
  free(v);
}

/* ------------------------------------------------------------ memo */

static rk_kernel *memo;

static rk_kernel *memo_find(const char *key) {
  for (rk_kernel *k = memo; k; k = k->next)
    if (strcmp(k->key, key) == 0) return k;
  return NULL;
}

void rk_unload_all(void) {
  rk_kernel *k = memo;
  while (k) {
    rk_kernel *nx = k->next;
    if (k->dl) dlclose(k->dl);
    free(k->path);
    free(k);
    k = nx;
  }
  memo = NULL;
}

static const char *default_cache_dir(char *buf, size_t n) {
  const char *t = getenv("TMPDIR");
  if (!t || !*t) t = "/tmp";
  snprintf(buf, n, "%s/rkeops-cache-%ld", t, (long)getuid());
  return buf;
}

/* The cache folder: the caller's, created when missing; when it cannot be
 * created or written, a folder under $TMPDIR instead, and
 * rk_cache_fallback() tells which folder was refused (decision 11: an
 * unwritable cache falls back to a temporary one with a warning). */
static char fallback_from[4096];

const char *rk_cache_fallback(void) { return fallback_from[0] ? fallback_from : NULL; }

static const char *build_cache_dir(const rk_options *o, char *buf, size_t n, rk_error *err) {
  const char *dir = o->cache_dir && *o->cache_dir ? o->cache_dir : NULL;
  if (dir && mkdir_p(dir) == 0 && access(dir, W_OK | X_OK) == 0) {
    fallback_from[0] = '\0';
    return dir;
  }
  if (dir) snprintf(fallback_from, sizeof fallback_from, "%s", dir);
  const char *tmp = default_cache_dir(buf, n);
  if (mkdir_p(tmp) != 0) {
    rk_seterr(err, RK_EBUILD, -1, "cannot create the cache folder '%s': %s", dir ? dir : tmp,
              strerror(errno));
    return NULL;
  }
  return tmp;
}

/* Compiles src in a private folder (*pdir, malloc'd; the caller removes it
 * with remove_private once the kernel is loaded from *so, malloc'd), then
 * publishes the signed kernel as `path` in the cache folder `dir`
 * (build_blob_store: written beside, renamed into place).  On failure
 * nothing is left behind and the cache folder is as it was. */
static int compile_private(const char *src, const rk_options *o, const char *dir,
                           const char *path, const char *hash, char **pdir, char **so,
                           rk_error *err) {
  *pdir = private_dir();
  if (!*pdir) {
    rk_seterr(err, RK_EBUILD, -1, "cannot create a temporary build folder: %s", strerror(errno));
    return -1;
  }
  size_t plen = strlen(*pdir) + 16;
  char *tmp_c = malloc(plen), *tmp_log = malloc(plen);
  *so = malloc(plen);
  int rc = -1;
  if (!tmp_c || !tmp_log || !*so) {
    rk_seterr(err, RK_ENOMEM, -1, "out of memory");
    goto done;
  }
  snprintf(tmp_c, plen, "%s/k.c", *pdir);
  snprintf(*so, plen, "%s/k.so", *pdir);
  snprintf(tmp_log, plen, "%s/k.log", *pdir);
  char name[160];
  snprintf(name, sizeof name, "rk%s-%s.c", RK_ENGINE_VERSION, hash);
  FILE *f = fopen(tmp_c, "wb");
  int ok = f && fputs(src, f) >= 0;
  if (f && fclose(f) != 0) ok = 0;
  if (!ok) {
    rk_seterr(err, RK_EBUILD, -1, "cannot write to the build folder '%s': %s", *pdir,
              strerror(errno));
    goto done;
  }
  if (run_compiler(tmp_c, *so, tmp_log, name, *pdir, o, err) != 0) goto done;
  size_t n;
  char *bytes = read_file(*so, &n);
  if (!bytes) {
    rk_seterr(err, RK_EBUILD, -1, "cannot read the compiled kernel in '%s'", *pdir);
    goto done;
  }
  int st = build_blob_store(path, bytes, n, 1, err);
  free(bytes);
  if (st != RK_OK) goto done;
  if (o->keep_source) {
    char *srcpath = malloc(strlen(dir) + 128);
    if (srcpath) {
      rk_error e2;
      rk_error_init(&e2);
      sprintf(srcpath, "%s/%s", dir, name);
      build_blob_store(srcpath, src, strlen(src), 0, &e2);
      rk_error_clear(&e2);
      free(srcpath);
    }
  }
  rc = 0;
done:
  free(tmp_c);
  free(tmp_log);
  if (rc != 0) {
    remove_private(*pdir);
    free(*pdir);
    *pdir = NULL;
    free(*so);
    *so = NULL;
  }
  return rc;
}

/* Builds (or finds) the kernel for `src`.  `proto` carries the kernel's
 * description (args, dims, reduction); on success *out is the memoised
 * kernel, a copy of proto with the loaded code. */
int build_kernel(const char *src, const rk_options *o, rk_kernel *proto, rk_error *err) {
  const rk_toolchain *tc = rk_toolchain_get();
  sha256_ctx h;
  unsigned char d[32];
  sha256_init(&h);
  const char *parts[] = {"rkeops-engine-" RK_ENGINE_VERSION, tc->cc, tc->cflags, tc->openmp,
                         cpu_identity(), src};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    sha256_update(&h, parts[i], strlen(parts[i]) + 1);
  }
  sha256_final(&h, d);
  for (int i = 0; i < 32; i++) snprintf(proto->hash + 2 * i, 3, "%02x", d[i]);
  sha256_init(&h);
  sha256_update(&h, proto->hash, 64);
  /* what the source does not say: every declaration (an unused argument
   * is still checked against its own), row sums, the forward kernel */
  for (int p = 0; p < proto->nargs; p++) {
    char d[96];
    snprintf(d, sizeof d, "|%d,%d,%d|", proto->args[p].pos, proto->args[p].cat, proto->args[p].dim);
    sha256_update(&h, proto->args[p].name, strlen(proto->args[p].name) + 1);
    sha256_update(&h, d, strlen(d));
  }
  char extra[96];
  snprintf(extra, sizeof extra, "postsum=%d nuser=%d pre=", proto->postsum, proto->nuser);
  sha256_update(&h, extra, strlen(extra));
  if (proto->pre) sha256_update(&h, proto->pre->key, 64);
  sha256_final(&h, d);
  for (int i = 0; i < 32; i++) snprintf(proto->key + 2 * i, 3, "%02x", d[i]);
  rk_kernel *hit = memo_find(proto->key);
  if (hit) {
    hit->from = RK_FROM_MEMO;
    hit->seconds = 0;
    proto->next = hit; /* tell the caller */
    return RK_OK;
  }

  double t0 = now();
  char dirbuf[4096];
  const char *dir = build_cache_dir(o, dirbuf, sizeof dirbuf, err);
  if (!dir) return err->code;
  size_t plen = strlen(dir) + 128;
  char *path = malloc(plen);
  if (!path) {
    rk_seterr(err, RK_ENOMEM, -1, "out of memory");
    return err->code;
  }
  snprintf(path, plen, "%s/rk%s-%s.so", dir, RK_ENGINE_VERSION, proto->hash);

  int from = RK_FROM_DISK;
  char *pdir = NULL, *tmp_so = NULL;
  if (access(path, R_OK) != 0 || !trailer_ok(path)) {
    from = RK_FROM_COMPILER;
    if (compile_private(src, o, dir, path, proto->hash, &pdir, &tmp_so, err) != 0) {
      free(path);
      return err->code;
    }
  } else {
    utime(path, NULL); /* least recently used goes first */
  }

  /* RTLD_NODELETE: the kernels bring the OpenMP runtime, whose idle
   * threads must not see it unloaded when the last kernel is closed.  A
   * new kernel is loaded from the private folder: another session may
   * clean the cache folder at any moment. */
  const char *load = tmp_so ? tmp_so : path;
  void *dl = dlopen(load, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (pdir) remove_private(pdir);
  free(pdir);
  if (!dl) {
    const char *m = dlerror();
    rk_seterr(err, RK_ELOAD, -1, "cannot load the compiled kernel '%s': %s", path, m ? m : "?");
    free(tmp_so);
    free(path);
    return err->code;
  }
  free(tmp_so);
  void *sym = dlsym(dl, "rk_entry"), *sym_ranges = dlsym(dl, "rk_entry_ranges");
  if (!sym || !sym_ranges) {
    rk_seterr(err, RK_ELOAD, -1, "the compiled kernel '%s' has no entry point", path);
    dlclose(dl);
    free(path);
    return err->code;
  }
  rk_kernel *k = malloc(sizeof *k);
  if (!k) {
    dlclose(dl);
    free(path);
    rk_seterr(err, RK_ENOMEM, -1, "out of memory");
    return err->code;
  }
  *k = *proto;
  k->path = path;
  k->dl = dl;
  memcpy(&k->entry, &sym, sizeof sym);  /* object to function pointer, POSIX-style */
  memcpy(&k->entry_ranges, &sym_ranges, sizeof sym_ranges);
  k->from = from;
  k->seconds = now() - t0;
  k->next = memo;
  memo = k;
  proto->next = k;
  return RK_OK;
}

/* ------------------------------------------------------------ GPU blobs and memo
 * For the GPU backend (cuda.c): NVRTC's output (CUBIN or PTX) goes to the
 * same cache folder under the same naming, "rk<version>-<key><ext>", with
 * the same trailer (SHA-256 of the payload) so that a torn file is detected
 * and rebuilt, written to a temporary name and renamed into place; the
 * kernels join the same in-process memo. */

/* "<cache folder>/rk<version>-<hash><ext>" (malloc'd); creates the folder */
char *build_cache_path(const rk_options *o, const char *hash, const char *ext, rk_error *err) {
  char dirbuf[4096];
  const char *dir = build_cache_dir(o, dirbuf, sizeof dirbuf, err);
  if (!dir) return NULL;
  size_t plen = strlen(dir) + strlen(hash) + strlen(ext) + 32;
  char *path = malloc(plen);
  if (!path) {
    rk_seterr(err, RK_ENOMEM, -1, "out of memory");
    return NULL;
  }
  snprintf(path, plen, "%s/rk%s-%s%s", dir, RK_ENGINE_VERSION, hash, ext);
  return path;
}

/* The payload of a file that build_blob_store wrote with its trailer
 * (malloc'd, a NUL appended but not counted in *len), or NULL when the file
 * is missing, unreadable or torn.  Refreshes the file's time (eviction
 * removes the least recently used kernels first). */
char *build_blob_load(const char *path, size_t *len) {
  char *s = read_signed(path, len);
  if (s) utime(path, NULL);
  return s;
}

/* data, then the trailer for the name of path when asked, to file tmp;
 * 1 on success (errno set on failure) */
static int write_blob(const char *tmp, const char *path, const void *data, size_t len,
                      int trailer) {
  FILE *f = fopen(tmp, "wb");
  if (!f) return 0;
  int ok = len == 0 || fwrite(data, 1, len, f) == len;
  if (ok && trailer) {
    char t[TRAILER_LEN + 1];
    trailer_make(data, len, base_name(path), t);
    ok = fwrite(t, 1, TRAILER_LEN, f) == TRAILER_LEN;
  }
  int e = errno;
  if (fclose(f) != 0) ok = 0;
  else if (!ok) errno = e;
  return ok;
}

/* Writes data (then the trailer when asked) to a temporary file beside
 * path and renames it into place; after a kernel (trailer), applies the
 * folder's size bound as build_kernel does.  When the folder vanished
 * (clean_rkeops(remove_cache_dir = TRUE) in another session), it is
 * created again and the write tried once more. */
int build_blob_store(const char *path, const void *data, size_t len, int trailer, rk_error *err) {
  const char *slash = strrchr(path, '/');
  size_t dlen = slash ? (size_t)(slash - path) : 1;
  size_t plen = dlen + 64;
  char *dir = malloc(dlen + 1), *tmp = malloc(plen);
  if (!dir || !tmp) {
    free(dir); free(tmp);
    rk_seterr(err, RK_ENOMEM, -1, "out of memory");
    return err->code;
  }
  memcpy(dir, slash ? path : ".", dlen);
  dir[dlen] = '\0';
  static unsigned counter;
  unsigned stamp = (unsigned)getpid() * 2654435761u ^ (unsigned)(now() * 1e6) ^ ++counter;
  snprintf(tmp, plen, "%s/tmp-%ld-%08x.blob", dir, (long)getpid(), stamp);
  int ok = 0, e = 0;
  for (int attempt = 0; attempt < 2 && !ok; attempt++) {
    if (attempt > 0 && !(e == ENOENT && mkdir_p(dir) == 0)) break;
    ok = write_blob(tmp, path, data, len, trailer) && rename(tmp, path) == 0;
    e = ok ? 0 : errno;
  }
  if (!ok) {
    if (e == ENOENT)
      rk_seterr(err, RK_EBUILD, -1, "the cache folder '%s' disappeared twice while the kernel "
                "was being stored (clean_rkeops() in another session?): compile again", dir);
    else
      rk_seterr(err, RK_EBUILD, -1, "cannot store the kernel in the cache folder '%s': %s", dir,
                strerror(e));
    remove(tmp);
    free(dir);
    free(tmp);
    return err->code;
  }
  if (trailer) cache_evict(dir, path);
  free(dir);
  free(tmp);
  return RK_OK;
}

rk_kernel *build_memo_find(const char *key) { return memo_find(key); }

void build_memo_add(rk_kernel *k) {
  k->next = memo;
  memo = k;
}

/* Frees the memo's kernels of one backend (rk_gpu_unload). */
void build_memo_drop_backend(int backend) {
  rk_kernel **pp = &memo;
  while (*pp) {
    rk_kernel *k = *pp;
    if (k->backend != backend) {
      pp = &k->next;
      continue;
    }
    *pp = k->next;
    if (k->dl) dlclose(k->dl);
    free(k->path);
    free(k);
  }
}
