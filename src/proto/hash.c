/* SPDX-License-Identifier: MIT */
/* SHA-256 through OpenSSL's EVP interface, the one that picks the CPU's SHA
 * extensions. */
#include <stdlib.h>

#include <openssl/evp.h>

#include "proto/hash.h"

/* The API has no error path: SHA-256 on a valid context fails only when
 * libcrypto itself is broken, and a made-up digest would later look like
 * corrupted data from a peer. Stopping loudly is the honest answer. */
static void hash_die_if(int fail)
{
        if (fail)
                abort();
}

struct hasher {
        EVP_MD_CTX *ctx;
};

void hash_sha256(const void *data, size_t len, uint8_t out[P2S_HASH_SIZE])
{
        unsigned int n = 0;

        hash_die_if(!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != P2S_HASH_SIZE);
}

struct hasher *hasher_new(void)
{
        struct hasher *h = calloc(1, sizeof(*h));

        if (!h)
                return NULL;
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
                return hasher_free(h);
        return h;
}

struct hasher *hasher_free(struct hasher *h)
{
        if (!h)
                return NULL;
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
}

void hasher_update(struct hasher *h, const void *data, size_t len)
{
        if (len == 0)
                return;
        hash_die_if(!EVP_DigestUpdate(h->ctx, data, len));
}

void hasher_final(struct hasher *h, uint8_t out[P2S_HASH_SIZE])
{
        unsigned int n = 0;

        hash_die_if(!EVP_DigestFinal_ex(h->ctx, out, &n) || n != P2S_HASH_SIZE);
}

void hasher_reset(struct hasher *h)
{
        hash_die_if(!EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL));
}

void hash_hex(const uint8_t h[P2S_HASH_SIZE], char out[2 * P2S_HASH_SIZE + 1])
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < P2S_HASH_SIZE; i++) {
                out[2 * i] = digits[h[i] >> 4];
                out[2 * i + 1] = digits[h[i] & 0x0f];
        }
        out[2 * P2S_HASH_SIZE] = '\0';
}
