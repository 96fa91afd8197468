/* SPDX-License-Identifier: MIT */
/* SHA-256 (OpenSSL's libcrypto, which uses the CPU's SHA extensions). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <p2s/proto.h>

void hash_sha256(const void *data, size_t len, uint8_t out[P2S_HASH_SIZE]);

struct hasher;
struct hasher *hasher_new(void);                    /* NULL on ENOMEM */
struct hasher *hasher_free(struct hasher *h);       /* NULL-safe */
void hasher_update(struct hasher *h, const void *data, size_t len);
void hasher_final(struct hasher *h, uint8_t out[P2S_HASH_SIZE]);   /* then reusable after hasher_reset */
void hasher_reset(struct hasher *h);

/* Lower-case hex of a hash into out (65 bytes with NUL). */
void hash_hex(const uint8_t h[P2S_HASH_SIZE], char out[2 * P2S_HASH_SIZE + 1]);
