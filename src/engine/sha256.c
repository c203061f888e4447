/*
 * sha256.c -- SHA-256 (FIPS 180-4), for the content-addressed cache keys
 * and the payload hashes of cached files.
 */
#include <stdio.h>
#include <string.h>
#include "internal.h"

static const unsigned int K256[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void block(sha256_ctx *h, const unsigned char *p) {
  unsigned int w[64], a, b, c, d, e, f, g, k, t1, t2;
  for (int i = 0; i < 16; i++)
    w[i] = (unsigned)p[4 * i] << 24 | (unsigned)p[4 * i + 1] << 16 | (unsigned)p[4 * i + 2] << 8 |
           (unsigned)p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    unsigned s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    unsigned s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = h->s[0]; b = h->s[1]; c = h->s[2]; d = h->s[3];
  e = h->s[4]; f = h->s[5]; g = h->s[6]; k = h->s[7];
  for (int i = 0; i < 64; i++) {
    t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
    t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  h->s[0] += a; h->s[1] += b; h->s[2] += c; h->s[3] += d;
  h->s[4] += e; h->s[5] += f; h->s[6] += g; h->s[7] += k;
}

void sha256_init(sha256_ctx *h) {
  static const unsigned int iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(h->s, iv, sizeof iv);
  h->n = 0;
  h->blen = 0;
}

void sha256_update(sha256_ctx *h, const void *data, size_t len) {
  const unsigned char *p = data;
  h->n += len;
  while (len > 0) {
    size_t take = 64 - h->blen < len ? 64 - h->blen : len;
    memcpy(h->buf + h->blen, p, take);
    h->blen += take;
    p += take;
    len -= take;
    if (h->blen == 64) {
      block(h, h->buf);
      h->blen = 0;
    }
  }
}

void sha256_final(sha256_ctx *h, unsigned char out[32]) {
  unsigned long long bits = h->n * 8;
  unsigned char pad = 0x80, zero = 0;
  sha256_update(h, &pad, 1);
  while (h->blen != 56) sha256_update(h, &zero, 1);
  unsigned char lenb[8];
  for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(h, lenb, 8);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (unsigned char)(h->s[i] >> 24);
    out[4 * i + 1] = (unsigned char)(h->s[i] >> 16);
    out[4 * i + 2] = (unsigned char)(h->s[i] >> 8);
    out[4 * i + 3] = (unsigned char)h->s[i];
  }
}

void sha256_hex(const void *data, size_t len, char out[65]) {
  sha256_ctx h;
  unsigned char d[32];
  sha256_init(&h);
  sha256_update(&h, data, len);
  sha256_final(&h, d);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}
