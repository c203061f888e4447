/* replay.c -- runs the fuzz target over every file of the corpus (without
 * libFuzzer), for `make test`; prints "fuzz corpus: N inputs replayed". */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int main(int argc, char **argv) {
  int n = 0;
  for (int a = 1; a < argc; a++) {
    DIR *d = opendir(argv[a]);
    if (!d) { fprintf(stderr, "cannot open %s\n", argv[a]); return 1; }
    struct dirent *de;
    while ((de = readdir(d))) {
      if (de->d_name[0] == '.') continue;
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[a], de->d_name);
      FILE *f = fopen(path, "rb");
      if (!f) continue;
      static uint8_t buf[8192];
      size_t len = fread(buf, 1, sizeof buf, f);
      fclose(f);
      LLVMFuzzerTestOneInput(buf, len);
      n++;
    }
    closedir(d);
  }
  printf("fuzz corpus: %d inputs replayed\n", n);
  return n > 0 ? 0 : 1;
}
