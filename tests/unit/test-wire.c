/* SPDX-License-Identifier: MIT */
/* Wire codec: every type round-trips, and every malformed input is refused
 * with the reason the header promises. Buffers handed to the decoder are
 * malloc'd to their exact length so valgrind or ASan flags any over-read. */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"
#include "runner.h"

/* A chunk field value that satisfies the type's chunk rule. */
static uint32_t good_chunk(uint8_t type) {
        switch (type) {
        case P2S_SHARE: case P2S_DATA: case P2S_UPLOAD: case P2S_MANIFEST:
        case P2S_REQ: case P2S_QUERY: case P2S_NOHAVE:
        case P2S_FRAG: case P2S_FRAG_ACK: case P2S_FRAG_NACK: case P2S_HAVE:
                return 7;
        default:
                return P2S_NO_CHUNK;
        }
}

static bool needs_chunk(uint8_t type) {
        return good_chunk(type) != P2S_NO_CHUNK;
}

static uint32_t min_body(uint8_t type) {
        switch (type) {
        case P2S_HELLO: return P2S_HELLO_FIXED + 1;
        case P2S_COOKIE: return P2S_COOKIE_SIZE;
        case P2S_SHARE: case P2S_DATA: case P2S_UPLOAD: return 1;
        case P2S_WELCOME: return P2S_WELCOME_SIZE;
        case P2S_START: return P2S_START_SIZE;
        case P2S_MANIFEST: case P2S_MANIFEST_END: return 32;
        case P2S_ERR: return P2S_ERR_BODY_MIN;
        case P2S_FRAG: return P2S_FRAG_SIZE + 1;
        case P2S_FRAG_ACK: return P2S_FRAG_ACK_SIZE;
        case P2S_FRAG_NACK: return P2S_FRAG_ACK_SIZE + 1;
        case P2S_HAVE: return 1;
        case P2S_LIST: return P2S_LIST_FIXED;
        case P2S_LISTING: return 2;
        default: return 0;
        }
}

static uint32_t max_body(uint8_t type) {
        switch (type) {
        case P2S_HELLO: return P2S_HELLO_FIXED + P2S_MAX_NAME;
        case P2S_COOKIE: return P2S_COOKIE_SIZE;
        case P2S_SHARE: case P2S_DATA: case P2S_UPLOAD: return P2S_MAX_CHUNK;
        case P2S_WELCOME: return P2S_WELCOME_SIZE;
        case P2S_START: return P2S_START_SIZE;
        case P2S_MANIFEST: return P2S_MANIFEST_PART * 32;
        case P2S_MANIFEST_END: return 32;
        case P2S_ERR: return P2S_ERR_BODY_MIN + P2S_MAX_REASON;
        case P2S_FRAG: return P2S_MAX_DGRAM - P2S_HDR_SIZE;
        case P2S_FRAG_ACK: return P2S_FRAG_ACK_SIZE;
        case P2S_FRAG_NACK: return P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX;
        case P2S_HAVE: return P2S_HAVE_MAX;
        case P2S_LIST: return P2S_LIST_FIXED + 2 * P2S_MAX_NAME;
        case P2S_LISTING: return 2 + 64 * (50 + P2S_MAX_NAME);
        case P2S_PING: return P2S_GATHER_SIZE;
        default: return 0;
        }
}

/* Fills body with a valid body of length len for type (len within bounds). */
static void fill_body(uint8_t type, uint8_t *body, uint32_t len) {
        for (uint32_t i = 0; i < len; i++)
                body[i] = (uint8_t)('a' + i % 26);
        if (type == P2S_WELCOME) {
                struct p2s_welcome w = { .control_mode = P2S_CONTROL_TCP, .port = 7701, .dgram_size = P2S_DEFAULT_DGRAM };
                wire_put_welcome(body, &w);
        } else if (type == P2S_START) {
                struct p2s_start s = { .file_size = 1000000, .chunk_size = 65536, .chunk_count = 16 };
                wire_put_start(body, &s);
        } else if (type == P2S_ERR) {
                body[0] = 0;
                body[1] = P2S_ERR_NOFILE;
        } else if (type == P2S_FRAG && len > P2S_FRAG_SIZE) {
                /* one fragment carrying the whole (short) chunk */
                struct p2s_frag f = { .kind = P2S_DATA, .index = 0, .count = 1,
                                      .frag_size = (uint16_t)(len - P2S_FRAG_SIZE), .chunk_len = len - P2S_FRAG_SIZE };
                wire_put_frag(body, &f);
        } else if (type == P2S_FRAG_ACK || type == P2S_FRAG_NACK) {
                body[0] = P2S_UPLOAD;
        } else if (type == P2S_LIST && len >= P2S_LIST_FIXED) {
                /* the prefix as long as it may be, after takes the rest */
                uint32_t rest = len - P2S_LIST_FIXED;
                body[P2S_LIST_FIXED - 1] = (uint8_t)(rest > P2S_MAX_NAME ? P2S_MAX_NAME : rest);
        } else if (type == P2S_LISTING && len >= 2) {
                /* entries of even length that add up to len (none for 2) */
                uint32_t n = len - 2, k = (n + 304) / 305, off = 2;
                body[0] = (uint8_t)(k >> 8);
                body[1] = (uint8_t)k;
                for (uint32_t i = 0; i < k; i++) {
                        uint32_t el = n / k + (i < n % k);
                        memset(body + off, 0, 50);
                        body[off + 16] = (uint8_t)(i & 1);
                        body[off + 17] = (uint8_t)(el - 50);
                        off += el;
                }
        }
}

/* A typical valid body length: something mid-range where there is a range. */
static uint32_t typical_len(uint8_t type) {
        switch (type) {
        case P2S_HELLO: return P2S_HELLO_FIXED + 9;
        case P2S_SHARE: case P2S_DATA: case P2S_UPLOAD: return 300;
        case P2S_MANIFEST: return 3 * 32;
        case P2S_ERR: return P2S_ERR_BODY_MIN + 12;
        default: return min_body(type);
        }
}

static struct p2s_hdr make_hdr(uint8_t type, uint32_t body_len) {
        struct p2s_hdr h = {
                .magic = P2S_MAGIC, .version = P2S_VERSION, .type = type,
                .flags = P2S_F_ACK | P2S_F_FATAL, .body_len = body_len,
                .swarm_id = 0x01020304, .member_id = 0xa0b0c0d0,
                .token = 0x1122334455667788ull, .chunk = good_chunk(type),
        };
        return h;
}

/* Encodes a message into an exactly-sized heap buffer. */
static uint8_t *build(const struct p2s_hdr *h, const uint8_t *body, uint32_t body_len, size_t *len) {
        size_t cap = P2S_HDR_SIZE + (size_t)body_len;
        uint8_t *buf = malloc(cap);
        ck_assert_ptr_nonnull(buf);
        *len = wire_encode(buf, cap, h, body, body_len);
        ck_assert_uint_eq(*len, cap);
        return buf;
}

/* Decodes a copy of exactly len bytes, so reading past len is a heap error. */
static int decode_exact(const uint8_t *src, size_t len) {
        uint8_t *copy = malloc(len ? len : 1);
        struct p2s_msg m;
        int r;

        ck_assert_ptr_nonnull(copy);
        if (len)
                memcpy(copy, src, len);
        r = wire_decode(copy, len, &m);
        free(copy);
        return r;
}

/* Builds a valid message of type with a typical body; caller frees. */
static uint8_t *build_valid(uint8_t type, size_t *len) {
        uint32_t bl = typical_len(type);
        uint8_t body[512];
        struct p2s_hdr h = make_hdr(type, bl);

        fill_body(type, body, bl);
        return build(&h, body, bl, len);
}

/* Field by field: the struct has padding that memcmp would compare. */
static void assert_hdr_eq(const struct p2s_hdr *a, const struct p2s_hdr *b) {
        ck_assert_uint_eq(a->magic, b->magic);
        ck_assert_uint_eq(a->version, b->version);
        ck_assert_uint_eq(a->type, b->type);
        ck_assert_uint_eq(a->flags, b->flags);
        ck_assert_uint_eq(a->body_len, b->body_len);
        ck_assert_uint_eq(a->swarm_id, b->swarm_id);
        ck_assert_uint_eq(a->member_id, b->member_id);
        ck_assert_uint_eq(a->token, b->token);
        ck_assert_uint_eq(a->chunk, b->chunk);
}

START_TEST(test_layout) {
        /* Pins the byte layout so another implementation can rely on it. */
        static const uint8_t want[P2S_HDR_SIZE] = {
                0x50, 0x32, 0x53, 0x31, 0x02, P2S_REQ, 0x00, 0x05,
                0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04,
                0xa0, 0xb0, 0xc0, 0xd0, 0x11, 0x22, 0x33, 0x44,
                0x55, 0x66, 0x77, 0x88, 0x00, 0x00, 0x00, 0x07,
        };
        struct p2s_hdr h = make_hdr(P2S_REQ, 0);
        uint8_t out[P2S_HDR_SIZE];

        /* magic and version come from the encoder, not the caller */
        h.magic = 0;
        h.version = 9;
        wire_encode_hdr(out, &h);
        ck_assert_mem_eq(out, want, sizeof(want));
}
END_TEST

START_TEST(test_roundtrip) {
        uint8_t type = (uint8_t)_i;
        uint32_t lens[3] = { min_body(type), typical_len(type), max_body(type) };

        for (int k = 0; k < 3; k++) {
                uint32_t bl = lens[k];
                uint8_t *body = malloc(bl ? bl : 1);
                struct p2s_hdr h = make_hdr(type, bl);
                struct p2s_hdr hh;
                struct p2s_msg m;
                size_t len;
                uint8_t *buf;

                ck_assert_ptr_nonnull(body);
                fill_body(type, body, bl);
                buf = build(&h, body, bl, &len);
                ck_assert_int_eq(wire_decode_hdr(buf, len, &hh), WIRE_OK);
                ck_assert_int_eq(wire_decode(buf, len, &m), WIRE_OK);
                ck_assert_uint_eq(m.hdr.magic, P2S_MAGIC);
                ck_assert_uint_eq(m.hdr.version, P2S_VERSION);
                ck_assert_uint_eq(m.hdr.type, type);
                ck_assert_uint_eq(m.hdr.flags, h.flags);
                ck_assert_uint_eq(m.hdr.body_len, bl);
                ck_assert_uint_eq(m.hdr.swarm_id, h.swarm_id);
                ck_assert_uint_eq(m.hdr.member_id, h.member_id);
                ck_assert_uint_eq(m.hdr.token, h.token);
                ck_assert_uint_eq(m.hdr.chunk, h.chunk);
                ck_assert_ptr_eq(m.body, buf + P2S_HDR_SIZE);
                if (bl)
                        ck_assert_mem_eq(m.body, body, bl);
                assert_hdr_eq(&hh, &m.hdr);
                free(buf);
                free(body);
        }
}
END_TEST

START_TEST(test_body_helpers) {
        struct p2s_welcome w = { .control_mode = P2S_CONTROL_UDP, .reserved = 0x5a, .port = 0xbeef, .dgram_size = 0xdeadbeef }, w2;
        struct p2s_start s = { .file_size = 0x0102030405060708ull, .chunk_size = 0x11223344, .chunk_count = 0x55667788 }, s2;
        uint8_t wb[P2S_WELCOME_SIZE], sb[P2S_START_SIZE];
        static const uint8_t wwant[] = { 1, 0x5a, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef };
        static const uint8_t swant[] = { 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 };

        wire_put_welcome(wb, &w);
        ck_assert_mem_eq(wb, wwant, sizeof(wwant));
        wire_get_welcome(wb, &w2);
        ck_assert_uint_eq(w2.control_mode, w.control_mode);
        ck_assert_uint_eq(w2.reserved, w.reserved);
        ck_assert_uint_eq(w2.port, w.port);
        ck_assert_uint_eq(w2.dgram_size, w.dgram_size);

        wire_put_start(sb, &s);
        ck_assert_mem_eq(sb, swant, sizeof(swant));
        wire_get_start(sb, &s2);
        ck_assert_uint_eq(s2.file_size, s.file_size);
        ck_assert_uint_eq(s2.chunk_size, s.chunk_size);
        ck_assert_uint_eq(s2.chunk_count, s.chunk_count);
}
END_TEST

/* Every type: body_len one below its minimum and one above its maximum is a
 * length error, both from the header alone and from a whole datagram. */
START_TEST(test_body_bounds) {
        uint8_t type = (uint8_t)_i;
        uint32_t lo = min_body(type), hi = max_body(type);

        ck_assert_uint_eq(wire_max_body(type, 0), hi);
        if (lo > 0) {
                uint8_t body[64];
                struct p2s_hdr h = make_hdr(type, lo - 1);
                size_t len;
                uint8_t *buf;

                fill_body(type, body, lo - 1);
                buf = build(&h, body, lo - 1, &len);
                ck_assert_int_eq(wire_decode_hdr(buf, len, NULL), WIRE_E_LENGTH);
                ck_assert_int_eq(decode_exact(buf, len), WIRE_E_LENGTH);
                free(buf);
        }
        {
                uint8_t *body = calloc(1, (size_t)hi + 1);
                struct p2s_hdr h = make_hdr(type, hi + 1);
                size_t len;
                uint8_t *buf;

                ck_assert_ptr_nonnull(body);
                fill_body(type, body, hi);
                buf = build(&h, body, hi + 1, &len);
                ck_assert_int_eq(wire_decode_hdr(buf, len, NULL), WIRE_E_LENGTH);
                ck_assert_int_eq(wire_decode(buf, len, NULL), WIRE_E_LENGTH);
                /* and a huge body_len claimed in a header alone */
                buf[8] = buf[9] = buf[10] = buf[11] = 0xff;
                ck_assert_int_eq(wire_decode_hdr(buf, P2S_HDR_SIZE, NULL), WIRE_E_LENGTH);
                free(buf);
                free(body);
        }
}
END_TEST

START_TEST(test_manifest_multiple) {
        uint8_t body[100] = { 0 };
        struct p2s_hdr h = make_hdr(P2S_MANIFEST, 33);
        size_t len;
        uint8_t *buf = build(&h, body, 33, &len);

        ck_assert_int_eq(wire_decode_hdr(buf, len, NULL), WIRE_E_LENGTH);
        free(buf);
        h = make_hdr(P2S_MANIFEST, 63);
        buf = build(&h, body, 63, &len);
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_LENGTH);
        free(buf);
        h = make_hdr(P2S_MANIFEST, 64);
        buf = build(&h, body, 64, &len);
        ck_assert_int_eq(decode_exact(buf, len), WIRE_OK);
        free(buf);
}
END_TEST

/* Every prefix of a valid message is refused as short; never an over-read. */
START_TEST(test_truncated) {
        uint8_t type = (uint8_t)_i;
        size_t len;
        uint8_t *buf = build_valid(type, &len);

        ck_assert_int_eq(decode_exact(buf, len), WIRE_OK);
        for (size_t l = 0; l < len; l++) {
                uint8_t *copy = malloc(l ? l : 1);
                ck_assert_ptr_nonnull(copy);
                memcpy(copy, buf, l);
                ck_assert_int_eq(wire_decode(copy, l, NULL), WIRE_E_SHORT);
                if (l < P2S_HDR_SIZE)
                        ck_assert_int_eq(wire_decode_hdr(copy, l, NULL), WIRE_E_SHORT);
                else
                        ck_assert_int_eq(wire_decode_hdr(copy, l, NULL), WIRE_OK);
                free(copy);
        }
        free(buf);
}
END_TEST

/* One byte too many on a datagram is a length error, not silently ignored. */
START_TEST(test_trailing) {
        uint8_t type = (uint8_t)_i;
        size_t len;
        uint8_t *buf = build_valid(type, &len);
        uint8_t *longer = malloc(len + 1);

        ck_assert_ptr_nonnull(longer);
        memcpy(longer, buf, len);
        longer[len] = 0;
        ck_assert_int_eq(wire_decode(longer, len + 1, NULL), WIRE_E_LENGTH);
        free(longer);
        free(buf);
}
END_TEST

START_TEST(test_bad_header) {
        size_t len;
        uint8_t *buf = build_valid(P2S_HELLO, &len);
        struct p2s_hdr h;

        ck_assert_int_eq(decode_exact(buf, len), WIRE_OK);

        buf[0] ^= 0x01;
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_MAGIC);
        buf[4] = P2S_VERSION + 1;       /* magic is checked first */
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_MAGIC);
        buf[0] ^= 0x01;
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_VERSION);
        /* the header is still reported, so the caller can answer with ERR */
        memset(&h, 0, sizeof(h));
        ck_assert_int_eq(wire_decode_hdr(buf, len, &h), WIRE_E_VERSION);
        ck_assert_uint_eq(h.version, P2S_VERSION + 1);
        ck_assert_uint_eq(h.member_id, 0xa0b0c0d0);
        buf[4] = 0;
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_VERSION);
        buf[5] = 0;     /* version before type */
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_VERSION);
        buf[4] = P2S_VERSION;
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_TYPE);
        buf[5] = P2S_TYPE_MAX + 1;
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_TYPE);
        buf[5] = 0xff;
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_TYPE);
        buf[5] = P2S_HELLO;
        ck_assert_int_eq(decode_exact(buf, len), WIRE_OK);
        free(buf);
}
END_TEST

/* Types that name a chunk refuse P2S_NO_CHUNK; the others refuse anything else. */
START_TEST(test_chunk_rule) {
        uint8_t type = (uint8_t)_i;
        size_t len;
        uint8_t *buf = build_valid(type, &len);
        uint32_t bad[3] = { P2S_NO_CHUNK, P2S_NO_CHUNK, P2S_NO_CHUNK };

        if (!needs_chunk(type)) {
                bad[0] = 0;
                bad[1] = 1;
                bad[2] = P2S_NO_CHUNK - 1;
        }
        for (int k = 0; k < 3; k++) {
                buf[28] = (uint8_t)(bad[k] >> 24);
                buf[29] = (uint8_t)(bad[k] >> 16);
                buf[30] = (uint8_t)(bad[k] >> 8);
                buf[31] = (uint8_t)bad[k];
                ck_assert_int_eq(wire_decode_hdr(buf, len, NULL), WIRE_E_CHUNK);
                ck_assert_int_eq(decode_exact(buf, len), WIRE_E_CHUNK);
        }
        if (needs_chunk(type)) {
                buf[28] = buf[29] = buf[30] = buf[31] = 0;
                ck_assert_int_eq(decode_exact(buf, len), WIRE_OK);
        }
        free(buf);
}
END_TEST

START_TEST(test_manifest_overflow) {
        uint8_t body[2 * 32] = { 0 };
        struct p2s_hdr h = make_hdr(P2S_MANIFEST, sizeof(body));
        size_t len;
        uint8_t *buf;

        /* last index UINT32_MAX - 1: the highest real index */
        h.chunk = UINT32_MAX - 2;
        buf = build(&h, body, sizeof(body), &len);
        ck_assert_int_eq(decode_exact(buf, len), WIRE_OK);
        free(buf);
        /* last index would be UINT32_MAX (P2S_NO_CHUNK), then wrap */
        h.chunk = UINT32_MAX - 1;
        buf = build(&h, body, sizeof(body), &len);
        ck_assert_int_eq(wire_decode_hdr(buf, len, NULL), WIRE_OK);
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_CHUNK);
        free(buf);
}
END_TEST

/* HAVE's bits name chunks a swarm can have: none past P2S_MAX_CHUNKS (the
 * last byte's padding aside), whatever the first index. */
START_TEST(test_have_range) {
        uint8_t body[4] = { 0x80 };
        struct p2s_hdr h = make_hdr(P2S_HAVE, sizeof(body));
        size_t len;
        uint8_t *buf;

        h.chunk = P2S_MAX_CHUNKS - 32;
        buf = build(&h, body, sizeof(body), &len);
        ck_assert_int_eq(decode_exact(buf, len), WIRE_OK);
        free(buf);
        h.chunk = P2S_MAX_CHUNKS;
        buf = build(&h, body, sizeof(body), &len);
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_CHUNK);
        free(buf);
        h.chunk = UINT32_MAX - 1;
        buf = build(&h, body, sizeof(body), &len);
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_CHUNK);
        free(buf);
        /* longer than a frame may be: refused on the header alone */
        h = make_hdr(P2S_HAVE, P2S_HAVE_MAX + 1);
        uint8_t raw[P2S_HDR_SIZE];
        wire_encode_hdr(raw, &h);
        ck_assert_int_eq(wire_decode_hdr(raw, sizeof(raw), NULL), WIRE_E_LENGTH);
}
END_TEST

static int start_result(uint64_t file_size, uint32_t chunk_size, uint32_t chunk_count) {
        struct p2s_start s = { .file_size = file_size, .chunk_size = chunk_size, .chunk_count = chunk_count };
        uint8_t body[P2S_START_SIZE];
        struct p2s_hdr h = make_hdr(P2S_START, P2S_START_SIZE);
        size_t len;
        uint8_t *buf;
        int r;

        wire_put_start(body, &s);
        buf = build(&h, body, sizeof(body), &len);
        r = decode_exact(buf, len);
        ck_assert_int_eq(wire_check_body(&h, body), r);
        free(buf);
        return r;
}

START_TEST(test_start) {
        ck_assert_int_eq(start_result(1000, 256, 4), WIRE_OK);
        ck_assert_int_eq(start_result(1024, 256, 4), WIRE_OK);
        ck_assert_int_eq(start_result(1025, 256, 5), WIRE_OK);
        ck_assert_int_eq(start_result(0, 256, 0), WIRE_OK);
        ck_assert_int_eq(start_result(1, P2S_MAX_CHUNK, 1), WIRE_OK);
        /* count off by one either way */
        ck_assert_int_eq(start_result(1000, 256, 3), WIRE_E_BODY);
        ck_assert_int_eq(start_result(1000, 256, 5), WIRE_E_BODY);
        ck_assert_int_eq(start_result(1024, 256, 5), WIRE_E_BODY);
        ck_assert_int_eq(start_result(0, 256, 1), WIRE_E_BODY);
        /* chunk size out of range */
        ck_assert_int_eq(start_result(255, 255, 1), WIRE_E_BODY);
        ck_assert_int_eq(start_result(100, 0, 1), WIRE_E_BODY);
        ck_assert_int_eq(start_result(0, 0, 0), WIRE_E_BODY);
        ck_assert_int_eq(start_result((uint64_t)P2S_MAX_CHUNK + 1, P2S_MAX_CHUNK + 1, 1), WIRE_E_BODY);
        /* overflow: a naive (size + cs - 1) / cs wraps to a small count */
        ck_assert_int_eq(start_result(UINT64_MAX, 256, 0), WIRE_E_BODY);
        ck_assert_int_eq(start_result(UINT64_MAX, 256, UINT32_MAX), WIRE_E_BODY);
        ck_assert_int_eq(start_result(UINT64_MAX, P2S_MAX_CHUNK, (uint32_t)(UINT64_MAX / P2S_MAX_CHUNK + 1)), WIRE_E_BODY);
        ck_assert_int_eq(start_result(UINT64_MAX - 254, 256, 0), WIRE_E_BODY);
        /* exactly at and one past the chunk-count limit */
        ck_assert_int_eq(start_result((uint64_t)P2S_MAX_CHUNKS * 256, 256, P2S_MAX_CHUNKS), WIRE_OK);
        ck_assert_int_eq(start_result((uint64_t)P2S_MAX_CHUNKS * 256 + 1, 256, P2S_MAX_CHUNKS + 1), WIRE_E_BODY);
}
END_TEST

START_TEST(test_welcome) {
        struct p2s_welcome w = { .control_mode = P2S_CONTROL_UDP, .port = 1 };
        struct p2s_hdr h = make_hdr(P2S_WELCOME, P2S_WELCOME_SIZE);
        uint8_t body[P2S_WELCOME_SIZE];

        wire_put_welcome(body, &w);
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_OK);
        /* tcp control means UDP data: the datagram size must leave room */
        w.control_mode = P2S_CONTROL_TCP;
        wire_put_welcome(body, &w);
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_E_BODY);
        w.dgram_size = P2S_MIN_DGRAM - 1;
        wire_put_welcome(body, &w);
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_E_BODY);
        w.dgram_size = P2S_MAX_DGRAM + 1;
        wire_put_welcome(body, &w);
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_E_BODY);
        w.dgram_size = P2S_DEFAULT_DGRAM;
        wire_put_welcome(body, &w);
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_OK);
        w.control_mode = 0;
        wire_put_welcome(body, &w);
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_E_BODY);
        w.control_mode = 3;
        wire_put_welcome(body, &w);
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_E_BODY);
        w.control_mode = P2S_CONTROL_TCP;
        w.port = 0;
        wire_put_welcome(body, &w);
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_E_BODY);
}
END_TEST

/* A fragment's header must agree with its payload and with itself. */
static int frag_result(struct p2s_frag f, uint32_t payload)
{
        uint8_t body[P2S_FRAG_SIZE + 2048] = { 0 };
        struct p2s_hdr h = make_hdr(P2S_FRAG, P2S_FRAG_SIZE + payload);
        wire_put_frag(body, &f);
        return wire_check_body(&h, body);
}

START_TEST(test_frag) {
        struct p2s_frag f = { .kind = P2S_DATA, .index = 0, .count = 3, .frag_size = 1000, .chunk_len = 2500 };
        ck_assert_int_eq(frag_result(f, 1000), WIRE_OK);
        f.index = 2;
        ck_assert_int_eq(frag_result(f, 500), WIRE_OK);       /* the short last one */
        ck_assert_int_eq(frag_result(f, 1000), WIRE_E_LENGTH);
        ck_assert_int_eq(frag_result(f, 499), WIRE_E_LENGTH);
        f.index = 3;
        ck_assert_int_eq(frag_result(f, 500), WIRE_E_BODY);   /* index past count */
        f.index = 0;
        f.count = 2;
        ck_assert_int_eq(frag_result(f, 1000), WIRE_E_BODY);  /* count disagrees with sizes */
        f.count = 3;
        f.kind = P2S_REQ;
        ck_assert_int_eq(frag_result(f, 1000), WIRE_E_BODY);  /* not a data kind */
        f.kind = P2S_UPLOAD;
        f.frag_size = 0;
        ck_assert_int_eq(frag_result(f, 1000), WIRE_E_BODY);
        f.frag_size = 1000;
        f.chunk_len = P2S_MAX_CHUNK + 1;
        f.count = (uint16_t)((P2S_MAX_CHUNK + 1 + 999) / 1000);
        ck_assert_int_eq(frag_result(f, 1000), WIRE_E_BODY);

        struct p2s_frag g;
        uint8_t raw[P2S_FRAG_SIZE];
        f = (struct p2s_frag){ .kind = P2S_SHARE, .index = 0x1234, .count = 0x2345, .frag_size = 0x3456, .chunk_len = 0x456789 };
        wire_put_frag(raw, &f);
        wire_get_frag(raw, &g);
        ck_assert(g.kind == f.kind && g.index == f.index && g.count == f.count &&
                  g.frag_size == f.frag_size && g.chunk_len == f.chunk_len);

        struct p2s_frag_ack a = { .kind = P2S_DATA, .base = 0xabcd }, b;
        uint8_t ab[P2S_FRAG_ACK_SIZE + 1] = { 0 };
        wire_put_frag_ack(ab, &a);
        wire_get_frag_ack(ab, &b);
        ck_assert(b.kind == a.kind && b.base == a.base);
        struct p2s_hdr h = make_hdr(P2S_FRAG_NACK, sizeof(ab));
        ck_assert_int_eq(wire_check_body(&h, ab), WIRE_OK);
        ab[0] = P2S_HELLO;
        ck_assert_int_eq(wire_check_body(&h, ab), WIRE_E_BODY);
}
END_TEST

START_TEST(test_hello) {
        uint8_t name[P2S_MAX_NAME], body[P2S_HELLO_FIXED + P2S_MAX_NAME], nonce[P2S_NONCE_SIZE];
        struct p2s_hdr h;
        struct p2s_msg m;
        struct wire_hello wh;
        size_t len, bl;
        uint8_t *buf;

        memset(name, 'x', sizeof(name));
        for (int i = 0; i < P2S_NONCE_SIZE; i++)
                nonce[i] = (uint8_t)i;      /* a NUL in the nonce is fine: it is no name */
        bl = wire_put_hello(body, sizeof(body), nonce, NULL, (const char *)name, P2S_MAX_NAME);
        ck_assert_uint_eq(bl, P2S_HELLO_FIXED + P2S_MAX_NAME);
        h = make_hdr(P2S_HELLO, (uint32_t)bl);
        buf = build(&h, body, (uint32_t)bl, &len);
        ck_assert_int_eq(wire_decode(buf, len, &m), WIRE_OK);
        wire_get_hello(&m, &wh);
        ck_assert_mem_eq(wh.nonce, nonce, P2S_NONCE_SIZE);
        for (int i = 0; i < P2S_PROOF_SIZE; i++)
                ck_assert_uint_eq(wh.proof[i], 0);
        ck_assert_uint_eq(wh.name_len, P2S_MAX_NAME);
        ck_assert_mem_eq(wh.name, name, P2S_MAX_NAME);
        free(buf);
        /* a NUL anywhere in the name, including first and last byte, is refused */
        size_t at[3] = { 0, 4, P2S_MAX_NAME - 1 };
        for (int k = 0; k < 3; k++) {
                body[P2S_HELLO_FIXED + at[k]] = 0;
                buf = build(&h, body, (uint32_t)bl, &len);
                ck_assert_int_eq(decode_exact(buf, len), WIRE_E_BODY);
                free(buf);
                body[P2S_HELLO_FIXED + at[k]] = 'x';
        }
        /* no name at all, or a name too long to encode */
        h = make_hdr(P2S_HELLO, P2S_HELLO_FIXED);
        buf = build(&h, body, P2S_HELLO_FIXED, &len);
        ck_assert_int_eq(decode_exact(buf, len), WIRE_E_LENGTH);
        free(buf);
        ck_assert_uint_eq(wire_put_hello(body, sizeof(body), nonce, NULL, "", 0), 0);
        ck_assert_uint_eq(wire_put_hello(body, P2S_HELLO_FIXED + 3, nonce, NULL, "abcd", 4), 0);
}
END_TEST

/* COOKIE, WELCOME and a join ERR carry the HELLO's nonce back; nothing else does. */
START_TEST(test_join_replies) {
        uint8_t nonce[P2S_NONCE_SIZE], body[P2S_ERR_BODY_MIN + P2S_MAX_REASON], *buf;
        char reason[P2S_MAX_REASON + 1], longr[P2S_MAX_REASON + 50];
        struct p2s_msg m;
        struct p2s_hdr h;
        size_t len, bl;

        memset(nonce, 0xa5, sizeof(nonce));
        h = make_hdr(P2S_COOKIE, P2S_COOKIE_SIZE);
        buf = build(&h, nonce, P2S_COOKIE_SIZE, &len);
        ck_assert_int_eq(wire_decode(buf, len, &m), WIRE_OK);
        ck_assert_ptr_nonnull(wire_reply_nonce(&m));
        ck_assert_mem_eq(wire_reply_nonce(&m), nonce, P2S_NONCE_SIZE);
        free(buf);

        struct p2s_welcome w = { .control_mode = P2S_CONTROL_UDP, .port = 7700 }, w2;
        memcpy(w.nonce, nonce, sizeof(nonce));
        wire_put_welcome(body, &w);
        wire_get_welcome(body, &w2);
        ck_assert_mem_eq(w2.nonce, nonce, P2S_NONCE_SIZE);
        h = make_hdr(P2S_WELCOME, P2S_WELCOME_SIZE);
        buf = build(&h, body, P2S_WELCOME_SIZE, &len);
        ck_assert_int_eq(wire_decode(buf, len, &m), WIRE_OK);
        ck_assert_mem_eq(wire_reply_nonce(&m), nonce, P2S_NONCE_SIZE);
        free(buf);

        /* join ERR: nonce, code, reason; the whole body stays within the ERR bound */
        memset(longr, 'r', sizeof(longr) - 1);
        longr[sizeof(longr) - 1] = 0;
        bl = wire_put_join_err(body, sizeof(body), nonce, P2S_ERR_SECRET, longr);
        ck_assert_uint_eq(bl, P2S_ERR_BODY_MIN + P2S_MAX_REASON);
        h = make_hdr(P2S_ERR, (uint32_t)bl);
        h.flags = P2S_F_FATAL | P2S_F_JOIN;
        buf = build(&h, body, (uint32_t)bl, &len);
        ck_assert_int_eq(wire_decode(buf, len, &m), WIRE_OK);
        ck_assert_mem_eq(wire_reply_nonce(&m), nonce, P2S_NONCE_SIZE);
        ck_assert_uint_eq(wire_get_err(m.body + P2S_NONCE_SIZE, m.hdr.body_len - P2S_NONCE_SIZE, reason,
                                       sizeof(reason)), P2S_ERR_SECRET);
        ck_assert_uint_eq(strlen(reason), P2S_MAX_REASON - P2S_NONCE_SIZE);
        free(buf);
        /* the flag without room for nonce and code, or with code 0 */
        h = make_hdr(P2S_ERR, P2S_NONCE_SIZE + 1);
        h.flags = P2S_F_JOIN;
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_E_LENGTH);
        body[P2S_NONCE_SIZE] = body[P2S_NONCE_SIZE + 1] = 0;
        h.body_len = P2S_NONCE_SIZE + 2;
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_E_BODY);
        ck_assert_uint_eq(wire_put_join_err(body, P2S_NONCE_SIZE + 1, nonce, 1, "x"), 0);
        /* a plain ERR carries no nonce */
        bl = wire_put_err(body, sizeof(body), P2S_ERR_NOFILE, "x");
        h = make_hdr(P2S_ERR, (uint32_t)bl);
        h.flags = P2S_F_FATAL;
        buf = build(&h, body, (uint32_t)bl, &len);
        ck_assert_int_eq(wire_decode(buf, len, &m), WIRE_OK);
        ck_assert_ptr_null(wire_reply_nonce(&m));
        free(buf);
}
END_TEST

START_TEST(test_err) {
        uint8_t body[P2S_ERR_BODY_MIN + P2S_MAX_REASON + 50];
        char reason[P2S_MAX_REASON + 100];
        char longr[P2S_MAX_REASON + 50];
        struct p2s_hdr h;
        size_t bl;

        /* normal */
        bl = wire_put_err(body, sizeof(body), P2S_ERR_NOFILE, "no such file");
        ck_assert_uint_eq(bl, 2 + 12);
        ck_assert_uint_eq(body[0], 0);
        ck_assert_uint_eq(body[1], P2S_ERR_NOFILE);
        h = make_hdr(P2S_ERR, (uint32_t)bl);
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_OK);
        ck_assert_uint_eq(wire_get_err(body, (uint32_t)bl, reason, sizeof(reason)), P2S_ERR_NOFILE);
        ck_assert_str_eq(reason, "no such file");

        /* code 0 is not an error */
        bl = wire_put_err(body, sizeof(body), 0, "x");
        h = make_hdr(P2S_ERR, (uint32_t)bl);
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_E_BODY);

        /* an over-long reason is cut to P2S_MAX_REASON, which still decodes */
        memset(longr, 'r', sizeof(longr) - 1);
        longr[sizeof(longr) - 1] = 0;
        bl = wire_put_err(body, sizeof(body), P2S_ERR_PROTO, longr);
        ck_assert_uint_eq(bl, P2S_ERR_BODY_MIN + P2S_MAX_REASON);
        h = make_hdr(P2S_ERR, (uint32_t)bl);
        ck_assert_int_eq(wire_check_body(&h, body), WIRE_OK);
        ck_assert_uint_eq(wire_get_err(body, (uint32_t)bl, reason, sizeof(reason)), P2S_ERR_PROTO);
        ck_assert_uint_eq(strlen(reason), P2S_MAX_REASON);

        /* and cut to the caller's buffer */
        bl = wire_put_err(body, 7, P2S_ERR_PROTO, "abcdefgh");
        ck_assert_uint_eq(bl, 7);
        ck_assert_mem_eq(body + 2, "abcde", 5);
        ck_assert_uint_eq(wire_put_err(body, 1, P2S_ERR_PROTO, "a"), 0);
        ck_assert_uint_eq(wire_put_err(body, sizeof(body), P2S_ERR_BUSY, NULL), 2);

        /* reader side: truncation to cap - 1 */
        bl = wire_put_err(body, sizeof(body), P2S_ERR_AUTH, "abcdefgh");
        ck_assert_uint_eq(wire_get_err(body, (uint32_t)bl, reason, 4), P2S_ERR_AUTH);
        ck_assert_str_eq(reason, "abc");
        reason[0] = 'z';
        ck_assert_uint_eq(wire_get_err(body, (uint32_t)bl, reason, 1), P2S_ERR_AUTH);
        ck_assert_str_eq(reason, "");
        ck_assert_uint_eq(wire_get_err(body, 1, reason, sizeof(reason)), 0);
        ck_assert_str_eq(reason, "");

        /* non-printables, including NUL, never reach a log line */
        static const uint8_t raw[] = { 0x00, 0x05, 'a', '\n', 0x00, 0x7f, 0xff, 0x1b, 'b', ' ', '~' };
        ck_assert_uint_eq(wire_get_err(raw, sizeof(raw), reason, sizeof(reason)), 5);
        ck_assert_str_eq(reason, "a?????b ~");
}
END_TEST

START_TEST(test_encode_limits) {
        uint8_t out[P2S_HDR_SIZE + 4];
        uint8_t body[5] = { 1, 2, 3, 4, 5 };
        struct p2s_hdr h = make_hdr(P2S_DATA, 999);   /* stale body_len */
        struct p2s_msg m;

        ck_assert_uint_eq(wire_encode(out, sizeof(out), &h, body, 5), 0);
        ck_assert_uint_eq(wire_encode(out, P2S_HDR_SIZE - 1, &h, NULL, 0), 0);
        ck_assert_uint_eq(wire_encode(out, sizeof(out), &h, body, 4), sizeof(out));
        ck_assert_int_eq(wire_decode(out, sizeof(out), &m), WIRE_OK);
        ck_assert_uint_eq(m.hdr.body_len, 4);
}
END_TEST

START_TEST(test_names) {
        const char *seen[WIRE_E_MAX];

        for (int e = 0; e < WIRE_E_MAX; e++) {
                seen[e] = wire_strerror(e);
                ck_assert_ptr_nonnull(seen[e]);
                ck_assert_str_ne(seen[e], "?");
                for (int k = 0; k < e; k++)
                        ck_assert_str_ne(seen[e], seen[k]);
        }
        ck_assert_str_eq(wire_strerror(WIRE_E_MAX), "?");
        ck_assert_str_eq(wire_strerror(-12), "?");
        ck_assert_str_eq(wire_type_name(P2S_HELLO), "HELLO");
        ck_assert_str_eq(wire_type_name(P2S_MANIFEST_END), "MANIFEST_END");
        ck_assert_str_eq(wire_type_name(P2S_BYE), "BYE");
        ck_assert_str_eq(wire_type_name(0), "?");
        ck_assert_str_eq(wire_type_name(P2S_TYPE_MAX + 1), "?");
        ck_assert_uint_eq(wire_max_body(0, 0), 0);
        ck_assert_uint_eq(wire_max_body(P2S_TYPE_MAX + 1, 0), 0);
        ck_assert_uint_eq(wire_max_body(P2S_DATA, 0), P2S_MAX_CHUNK);
}
END_TEST

/* man/p2s.7, "Control modes", written out independently of wire.c's
 * table: may type travel dir over ch in mode? */
static bool route_expected(uint8_t type, enum wire_dir dir, enum wire_channel ch, int mode)
{
        bool c2s = dir == WIRE_DIR_C2S, udp = ch == WIRE_CH_UDP;
        if (mode == 0)  /* before WELCOME: what both modes allow */
                return route_expected(type, dir, ch, P2S_CONTROL_UDP) &&
                       route_expected(type, dir, ch, P2S_CONTROL_TCP);
        if (mode != P2S_CONTROL_UDP && mode != P2S_CONTROL_TCP)
                return false;
        bool tcp_mode = mode == P2S_CONTROL_TCP;
        switch (type) {
        case P2S_HELLO:
                return c2s && udp;
        case P2S_WELCOME:
                return !c2s && udp;
        case P2S_COOKIE:
                return !c2s;            /* a HELLO's over UDP, a LIST's on its connection */
        case P2S_ATTACH: case P2S_HAVE: case P2S_LIST:
                return c2s && !udp;
        case P2S_START: case P2S_MANIFEST: case P2S_MANIFEST_END: case P2S_LISTING:
                return !c2s && !udp;
        case P2S_SHARE: case P2S_DATA:
                return !c2s && !udp && !tcp_mode;
        case P2S_UPLOAD:
                return c2s && !udp && !tcp_mode;
        case P2S_REQ: case P2S_NOHAVE: case P2S_BYE:
                return c2s;             /* control: either transport, retries escalate */
        case P2S_QUERY: case P2S_DONE:
                return !c2s;
        case P2S_COMPLETE: case P2S_PING:
                return true;            /* the member's, and the server's echo with ACK */
        case P2S_ERR:
                return !c2s;            /* FATAL over TCP, answers to datagrams over UDP */
        case P2S_FRAG: case P2S_FRAG_ACK: case P2S_FRAG_NACK:
                return udp && tcp_mode;
        default:
                return false;
        }
}

/* Every type x direction x channel x mode, and the modes that do not exist. */
START_TEST(test_route_table) {
        static const enum wire_dir dirs[] = { WIRE_DIR_C2S, WIRE_DIR_S2C };
        static const enum wire_channel chs[] = { WIRE_CH_UDP, WIRE_CH_TCP };
        static const int modes[] = { 0, P2S_CONTROL_UDP, P2S_CONTROL_TCP, 3, -1 };
        unsigned allowed = 0;

        for (unsigned t = 1; t <= P2S_TYPE_MAX; t++)
                for (unsigned d = 0; d < 2; d++)
                        for (unsigned c = 0; c < 2; c++)
                                for (unsigned m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
                                        bool want = route_expected((uint8_t)t, dirs[d], chs[c], modes[m]);
                                        int r = wire_check_route((uint8_t)t, dirs[d], chs[c], modes[m]);
                                        ck_assert_msg(r == (want ? WIRE_OK : WIRE_E_ROUTE),
                                                      "%s dir %d ch %d mode %d: got %s",
                                                      wire_type_name((uint8_t)t), dirs[d], chs[c], modes[m],
                                                      wire_strerror(r));
                                        allowed += want;
                                }
        /* the expectation itself is not vacuous */
        ck_assert_uint_gt(allowed, 40);
        /* unknown types, and direction or channel values that are not exactly one */
        ck_assert_int_eq(wire_check_route(0, WIRE_DIR_C2S, WIRE_CH_UDP, P2S_CONTROL_UDP), WIRE_E_TYPE);
        ck_assert_int_eq(wire_check_route(P2S_TYPE_MAX + 1, WIRE_DIR_C2S, WIRE_CH_UDP, P2S_CONTROL_UDP), WIRE_E_TYPE);
        ck_assert_int_eq(wire_check_route(P2S_REQ, WIRE_DIR_C2S | WIRE_DIR_S2C, WIRE_CH_UDP, P2S_CONTROL_UDP),
                         WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_route(P2S_REQ, WIRE_DIR_C2S, WIRE_CH_UDP | WIRE_CH_TCP, P2S_CONTROL_UDP),
                         WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_route(P2S_REQ, 0, WIRE_CH_UDP, P2S_CONTROL_UDP), WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_route(P2S_REQ, WIRE_DIR_C2S, 0, P2S_CONTROL_UDP), WIRE_E_ROUTE);
}
END_TEST

/* The cases the route rules exist for, spelled out. */
START_TEST(test_route_examples) {
        /* udp mode: REQ by datagram, and its escalated retry by TCP */
        ck_assert_int_eq(wire_check_route(P2S_REQ, WIRE_DIR_C2S, WIRE_CH_UDP, P2S_CONTROL_UDP), WIRE_OK);
        ck_assert_int_eq(wire_check_route(P2S_REQ, WIRE_DIR_C2S, WIRE_CH_TCP, P2S_CONTROL_UDP), WIRE_OK);
        ck_assert_int_eq(wire_check_route(P2S_REQ, WIRE_DIR_S2C, WIRE_CH_UDP, P2S_CONTROL_UDP), WIRE_E_ROUTE);
        /* a member never sends SHARE or DATA, in any mode, on any channel */
        for (int mode = P2S_CONTROL_UDP; mode <= P2S_CONTROL_TCP; mode++)
                for (int ch = WIRE_CH_UDP; ch <= WIRE_CH_TCP; ch <<= 1) {
                        ck_assert_int_eq(wire_check_route(P2S_SHARE, WIRE_DIR_C2S, ch, mode), WIRE_E_ROUTE);
                        ck_assert_int_eq(wire_check_route(P2S_DATA, WIRE_DIR_C2S, ch, mode), WIRE_E_ROUTE);
                        ck_assert_int_eq(wire_check_route(P2S_ERR, WIRE_DIR_C2S, ch, mode), WIRE_E_ROUTE);
                }
        /* chunk bytes: frames in udp mode, FRAG datagrams in tcp mode */
        ck_assert_int_eq(wire_check_route(P2S_UPLOAD, WIRE_DIR_C2S, WIRE_CH_TCP, P2S_CONTROL_UDP), WIRE_OK);
        ck_assert_int_eq(wire_check_route(P2S_UPLOAD, WIRE_DIR_C2S, WIRE_CH_TCP, P2S_CONTROL_TCP), WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_route(P2S_UPLOAD, WIRE_DIR_C2S, WIRE_CH_UDP, P2S_CONTROL_UDP), WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_route(P2S_FRAG, WIRE_DIR_C2S, WIRE_CH_UDP, P2S_CONTROL_TCP), WIRE_OK);
        ck_assert_int_eq(wire_check_route(P2S_FRAG, WIRE_DIR_C2S, WIRE_CH_UDP, P2S_CONTROL_UDP), WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_route(P2S_FRAG, WIRE_DIR_S2C, WIRE_CH_TCP, P2S_CONTROL_TCP), WIRE_E_ROUTE);
        /* the join is UDP even in tcp mode, ATTACH is TCP even in udp mode */
        ck_assert_int_eq(wire_check_route(P2S_HELLO, WIRE_DIR_C2S, WIRE_CH_TCP, P2S_CONTROL_TCP), WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_route(P2S_ATTACH, WIRE_DIR_C2S, WIRE_CH_UDP, P2S_CONTROL_UDP), WIRE_E_ROUTE);
        /* before WELCOME nothing chunk-sized is accepted */
        ck_assert_int_eq(wire_check_route(P2S_COOKIE, WIRE_DIR_S2C, WIRE_CH_UDP, 0), WIRE_OK);
        ck_assert_int_eq(wire_check_route(P2S_FRAG, WIRE_DIR_S2C, WIRE_CH_UDP, 0), WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_route(P2S_DATA, WIRE_DIR_S2C, WIRE_CH_TCP, 0), WIRE_E_ROUTE);
}
END_TEST

/* LIST and LISTING, byte by byte as p2s.7 writes them, and what is refused. */
START_TEST(test_list_codec) {
        uint8_t nonce[P2S_NONCE_SIZE], proof[P2S_PROOF_SIZE], body[P2S_LIST_MAX + 8], *buf;
        struct p2s_hdr h;
        struct p2s_msg m;
        struct wire_list l;
        size_t len, bl;

        memset(nonce, 0x11, sizeof(nonce));
        memset(proof, 0x22, sizeof(proof));
        bl = wire_put_list(body, sizeof(body), nonce, proof, "img/", 4, "img/a", 5);
        ck_assert_uint_eq(bl, P2S_LIST_FIXED + 9);
        ck_assert_uint_eq(body[48], 4);
        ck_assert_mem_eq(body + 49, "img/img/a", 9);
        h = make_hdr(P2S_LIST, (uint32_t)bl);
        buf = build(&h, body, (uint32_t)bl, &len);
        ck_assert_int_eq(wire_decode(buf, len, &m), WIRE_OK);
        wire_get_list(&m, &l);
        ck_assert_mem_eq(l.nonce, nonce, P2S_NONCE_SIZE);
        ck_assert_mem_eq(l.proof, proof, P2S_PROOF_SIZE);
        ck_assert_uint_eq(l.prefix_len, 4);
        ck_assert_mem_eq(l.prefix, "img/", 4);
        ck_assert_uint_eq(l.after_len, 5);
        ck_assert_mem_eq(l.after, "img/a", 5);
        /* a prefix longer than the body, and a NUL in either name */
        buf[P2S_HDR_SIZE + 48] = 10;
        ck_assert_int_eq(wire_decode(buf, len, NULL), WIRE_E_BODY);
        buf[P2S_HDR_SIZE + 48] = 4;
        buf[P2S_HDR_SIZE + 50] = 0;
        ck_assert_int_eq(wire_decode(buf, len, NULL), WIRE_E_BODY);
        free(buf);
        /* the empty prefix from the start: the fixed part alone; no proof: zeros */
        bl = wire_put_list(body, sizeof(body), nonce, NULL, "", 0, "", 0);
        ck_assert_uint_eq(bl, P2S_LIST_FIXED);
        for (int i = 0; i < P2S_PROOF_SIZE; i++)
                ck_assert_uint_eq(body[P2S_NONCE_SIZE + i], 0);
        /* after longer than a name (prefix empty) cannot be sent nor decoded */
        char longname[P2S_MAX_NAME + 2];
        memset(longname, 'n', sizeof(longname));
        ck_assert_uint_eq(wire_put_list(body, sizeof(body), nonce, NULL, "", 0, longname, P2S_MAX_NAME + 1), 0);
        ck_assert_uint_eq(wire_put_list(body, P2S_LIST_FIXED + 2, nonce, NULL, "abc", 3, "", 0), 0);
        memset(body, 'a', sizeof(body));
        body[48] = 0;
        h = make_hdr(P2S_LIST, P2S_LIST_FIXED + P2S_MAX_NAME + 1);
        buf = build(&h, body, P2S_LIST_FIXED + P2S_MAX_NAME + 1, &len);
        ck_assert_int_eq(wire_decode(buf, len, NULL), WIRE_E_BODY);
        free(buf);

        /* LISTING: two entries, one with a hash */
        uint8_t lb[2 + 2 * (P2S_LISTING_ENTRY_FIXED + 16)];
        struct wire_entry e1 = { .size = 0x0102030405060708ull, .mtime_sec = -2, .has_hash = true,
                                 .name = "dir/one", .name_len = 7 };
        struct wire_entry e2 = { .size = 5, .mtime_sec = 1700000000, .name = "two", .name_len = 3 }, got;
        memset(e1.sha256, 0xab, sizeof(e1.sha256));
        memset(e2.sha256, 0xcd, sizeof(e2.sha256));   /* not sent: no hash flag */
        size_t off = 2, n;
        n = wire_put_entry(lb + off, sizeof(lb) - off, &e1);
        ck_assert_uint_eq(n, P2S_LISTING_ENTRY_FIXED + 7);
        static const uint8_t want1[] = { 1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
                                         1, 7, 0xab };
        ck_assert_mem_eq(lb + off, want1, sizeof(want1));
        ck_assert_mem_eq(lb + off + 50, "dir/one", 7);
        off += n;
        n = wire_put_entry(lb + off, sizeof(lb) - off, &e2);
        ck_assert_uint_eq(n, P2S_LISTING_ENTRY_FIXED + 3);
        ck_assert_uint_eq(lb[off + 16], 0);
        ck_assert_uint_eq(lb[off + 18], 0);
        off += n;
        wire_put_listing_count(lb, 2);
        ck_assert_uint_eq(lb[0], 0);
        ck_assert_uint_eq(lb[1], 2);
        ck_assert_uint_eq(wire_put_entry(lb, P2S_LISTING_ENTRY_FIXED + 6, &e1), 0);   /* no room */
        h = make_hdr(P2S_LISTING, (uint32_t)off);
        h.flags = P2S_F_LAST;
        buf = build(&h, lb, (uint32_t)off, &len);
        ck_assert_int_eq(wire_decode(buf, len, &m), WIRE_OK);
        size_t pos = 0;
        ck_assert_int_eq(wire_listing_next(m.body, m.hdr.body_len, &pos, &got), 1);
        ck_assert_uint_eq(got.size, e1.size);
        ck_assert_int_eq(got.mtime_sec, -2);
        ck_assert(got.has_hash);
        ck_assert_mem_eq(got.sha256, e1.sha256, P2S_HASH_SIZE);
        ck_assert_uint_eq(got.name_len, 7);
        ck_assert_mem_eq(got.name, "dir/one", 7);
        ck_assert_int_eq(wire_listing_next(m.body, m.hdr.body_len, &pos, &got), 1);
        ck_assert(!got.has_hash);
        ck_assert_mem_eq(got.name, "two", 3);
        ck_assert_int_eq(wire_listing_next(m.body, m.hdr.body_len, &pos, &got), 0);
        /* a count that lies, an unknown entry flag, an empty name, a NUL, a name past the body */
        buf[P2S_HDR_SIZE + 1] = 3;
        ck_assert_int_eq(wire_decode(buf, len, NULL), WIRE_E_BODY);
        buf[P2S_HDR_SIZE + 1] = 2;
        buf[P2S_HDR_SIZE + 2 + 16] = 3;
        ck_assert_int_eq(wire_decode(buf, len, NULL), WIRE_E_BODY);
        buf[P2S_HDR_SIZE + 2 + 16] = 1;
        buf[P2S_HDR_SIZE + 2 + 17] = 0;
        ck_assert_int_eq(wire_decode(buf, len, NULL), WIRE_E_BODY);
        buf[P2S_HDR_SIZE + 2 + 17] = 7;
        buf[P2S_HDR_SIZE + 2 + 50 + 3] = 0;
        ck_assert_int_eq(wire_decode(buf, len, NULL), WIRE_E_BODY);
        buf[P2S_HDR_SIZE + 2 + 50 + 3] = '/';
        buf[P2S_HDR_SIZE + 2 + 17] = 200;
        ck_assert_int_eq(wire_decode(buf, len, NULL), WIRE_E_BODY);
        buf[P2S_HDR_SIZE + 2 + 17] = 7;
        ck_assert_int_eq(wire_decode(buf, len, NULL), WIRE_OK);
        free(buf);
        /* more than P2S_LISTING_MAX entries in one frame */
        static uint8_t big[2 + 65 * 51];
        size_t boff = 2;
        for (int i = 0; i < 65; i++) {
                struct wire_entry e = { .size = (uint64_t)i, .name = "x", .name_len = 1 };
                boff += wire_put_entry(big + boff, sizeof(big) - boff, &e);
        }
        wire_put_listing_count(big, 65);
        h = make_hdr(P2S_LISTING, (uint32_t)boff);
        buf = build(&h, big, (uint32_t)boff, &len);
        ck_assert_int_eq(wire_decode(buf, len, NULL), WIRE_E_BODY);
        free(buf);
        /* the listing is TCP only: a datagram would go to a claimed address */
        ck_assert_int_eq(wire_check_route(P2S_LIST, WIRE_DIR_C2S, WIRE_CH_UDP, P2S_CONTROL_UDP), WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_route(P2S_LISTING, WIRE_DIR_S2C, WIRE_CH_UDP, 0), WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_route(P2S_LIST, WIRE_DIR_C2S, WIRE_CH_TCP, 0), WIRE_OK);
        ck_assert_int_eq(wire_check_route(P2S_COOKIE, WIRE_DIR_S2C, WIRE_CH_TCP, 0), WIRE_OK);
        ck_assert_str_eq(wire_type_name(P2S_LIST), "LIST");
        ck_assert_str_eq(wire_type_name(P2S_LISTING), "LISTING");
}
END_TEST

START_TEST(test_frag_route) {
        /* FRAG follows its chunk, FRAG_ACK and FRAG_NACK go back */
        ck_assert_int_eq(wire_check_frag_route(P2S_FRAG, P2S_SHARE, WIRE_DIR_S2C), WIRE_OK);
        ck_assert_int_eq(wire_check_frag_route(P2S_FRAG, P2S_DATA, WIRE_DIR_S2C), WIRE_OK);
        ck_assert_int_eq(wire_check_frag_route(P2S_FRAG, P2S_UPLOAD, WIRE_DIR_C2S), WIRE_OK);
        ck_assert_int_eq(wire_check_frag_route(P2S_FRAG, P2S_SHARE, WIRE_DIR_C2S), WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_frag_route(P2S_FRAG, P2S_DATA, WIRE_DIR_C2S), WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_frag_route(P2S_FRAG, P2S_UPLOAD, WIRE_DIR_S2C), WIRE_E_ROUTE);
        for (uint8_t t = P2S_FRAG_ACK; t <= P2S_FRAG_NACK; t++) {
                ck_assert_int_eq(wire_check_frag_route(t, P2S_SHARE, WIRE_DIR_C2S), WIRE_OK);
                ck_assert_int_eq(wire_check_frag_route(t, P2S_DATA, WIRE_DIR_C2S), WIRE_OK);
                ck_assert_int_eq(wire_check_frag_route(t, P2S_UPLOAD, WIRE_DIR_S2C), WIRE_OK);
                ck_assert_int_eq(wire_check_frag_route(t, P2S_SHARE, WIRE_DIR_S2C), WIRE_E_ROUTE);
                ck_assert_int_eq(wire_check_frag_route(t, P2S_UPLOAD, WIRE_DIR_C2S), WIRE_E_ROUTE);
        }
        ck_assert_int_eq(wire_check_frag_route(P2S_FRAG, P2S_REQ, WIRE_DIR_S2C), WIRE_E_BODY);
        ck_assert_int_eq(wire_check_frag_route(P2S_REQ, 0, WIRE_DIR_S2C), WIRE_OK);
}
END_TEST

/* Bounds by chunk size: only chunk-carrying types shrink to it. */
START_TEST(test_max_body_chunk) {
        for (uint8_t t = 1; t <= P2S_TYPE_MAX; t++) {
                bool chunky = t == P2S_SHARE || t == P2S_DATA || t == P2S_UPLOAD;
                ck_assert_uint_eq(wire_max_body(t, 0), max_body(t));
                ck_assert_uint_eq(wire_max_body(t, 4096), chunky ? 4096 : max_body(t));
                /* a chunk size past the protocol's limit does not lift the limit */
                ck_assert_uint_eq(wire_max_body(t, P2S_MAX_CHUNK * 2), max_body(t));
        }
        ck_assert_uint_eq(wire_max_body(0, 4096), 0);
}
END_TEST

/* The stream reader's check, before the body is allocated. */
START_TEST(test_frame_hdr) {
        struct p2s_hdr h = make_hdr(P2S_SHARE, P2S_MAX_CHUNK);

        /* a member's 16 MiB SHARE: refused for the route, not its length */
        ck_assert_int_eq(wire_check_frame_hdr(&h, WIRE_DIR_C2S, P2S_CONTROL_UDP, 65536), WIRE_E_ROUTE);
        ck_assert_int_eq(wire_check_frame_hdr(&h, WIRE_DIR_S2C, P2S_CONTROL_UDP, 0), WIRE_OK);
        ck_assert_int_eq(wire_check_frame_hdr(&h, WIRE_DIR_S2C, P2S_CONTROL_UDP, 65536), WIRE_E_LENGTH);
        ck_assert_int_eq(wire_check_frame_hdr(&h, WIRE_DIR_S2C, P2S_CONTROL_TCP, 0), WIRE_E_ROUTE);
        h = make_hdr(P2S_UPLOAD, 65536);
        ck_assert_int_eq(wire_check_frame_hdr(&h, WIRE_DIR_C2S, P2S_CONTROL_UDP, 65536), WIRE_OK);
        h.body_len = 65537;
        ck_assert_int_eq(wire_check_frame_hdr(&h, WIRE_DIR_C2S, P2S_CONTROL_UDP, 65536), WIRE_E_LENGTH);
        ck_assert_int_eq(wire_check_frame_hdr(&h, WIRE_DIR_C2S, P2S_CONTROL_TCP, 65536), WIRE_E_ROUTE);
        h = make_hdr(P2S_REQ, 0);
        ck_assert_int_eq(wire_check_frame_hdr(&h, WIRE_DIR_C2S, P2S_CONTROL_UDP, 65536), WIRE_OK);
        h.body_len = 1;
        ck_assert_int_eq(wire_check_frame_hdr(&h, WIRE_DIR_C2S, P2S_CONTROL_UDP, 65536), WIRE_E_LENGTH);
        h = make_hdr(P2S_HELLO, 5);
        ck_assert_int_eq(wire_check_frame_hdr(&h, WIRE_DIR_C2S, P2S_CONTROL_UDP, 65536), WIRE_E_ROUTE);
}
END_TEST

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1dull;
}

/* Whatever is accepted must re-encode to the very same bytes: the decoder
 * may not accept anything the encoder would not produce. */
static void check_accepted(const uint8_t *buf, size_t len, const struct p2s_msg *m) {
        uint8_t *out = malloc(len);

        ck_assert_ptr_nonnull(out);
        ck_assert_uint_eq(wire_encode(out, len, &m->hdr, m->body, m->hdr.body_len), len);
        ck_assert_mem_eq(out, buf, len);
        ck_assert_int_eq(wire_check_body(&m->hdr, m->body), WIRE_OK);
        free(out);
}

START_TEST(test_random) {
        unsigned accepted = 0;

        for (int i = 0; i < 100000; i++) {
                size_t len = rng() % 320;
                uint8_t *buf = malloc(len ? len : 1);
                struct p2s_msg m;
                int r;

                ck_assert_ptr_nonnull(buf);
                for (size_t k = 0; k < len; k++)
                        buf[k] = (uint8_t)rng();
                /* Half the buffers get a real magic and version (and a
                 * plausible type and body_len) so the deeper checks run. */
                if (i % 2 && len >= P2S_HDR_SIZE) {
                        buf[0] = 0x50; buf[1] = 0x32; buf[2] = 0x53; buf[3] = 0x31;
                        buf[4] = P2S_VERSION;
                        buf[5] = (uint8_t)(rng() % (P2S_TYPE_MAX + 2));
                        buf[8] = buf[9] = buf[10] = 0;
                        buf[11] = (uint8_t)(rng() % 4 ? len - P2S_HDR_SIZE : buf[11]);
                        if (rng() % 2)
                                buf[28] = buf[29] = buf[30] = buf[31] = 0xff;
                }
                r = wire_decode(buf, len, &m);
                ck_assert_int_ge(r, WIRE_OK);
                ck_assert_int_lt(r, WIRE_E_MAX);
                if (r == WIRE_OK) {
                        accepted++;
                        check_accepted(buf, len, &m);
                }
                free(buf);
        }
        /* the guided half must reach acceptance, or this test proves little */
        ck_assert_uint_gt(accepted, 100);
}
END_TEST

/* Single-byte mutations of valid messages: accepted only if still valid. */
START_TEST(test_mutations) {
        for (uint8_t type = 1; type <= P2S_TYPE_MAX; type++) {
                size_t len;
                uint8_t *buf = build_valid(type, &len);

                for (int i = 0; i < 2000; i++) {
                        size_t at = rng() % len;
                        uint8_t old = buf[at];
                        struct p2s_msg m;

                        buf[at] = (uint8_t)rng();
                        if (wire_decode(buf, len, &m) == WIRE_OK)
                                check_accepted(buf, len, &m);
                        buf[at] = old;
                }
                free(buf);
        }
}
END_TEST

static Suite *wire_suite(void) {
        Suite *s = suite_create("wire");
        TCase *tc;

        tc = tcase_create("encode");
        tcase_add_test(tc, test_layout);
        tcase_add_test(tc, test_body_helpers);
        tcase_add_test(tc, test_encode_limits);
        tcase_add_test(tc, test_names);
        suite_add_tcase(s, tc);

        tc = tcase_create("roundtrip");
        tcase_add_loop_test(tc, test_roundtrip, 1, P2S_TYPE_MAX + 1);
        suite_add_tcase(s, tc);

        tc = tcase_create("length");
        tcase_add_loop_test(tc, test_body_bounds, 1, P2S_TYPE_MAX + 1);
        tcase_add_loop_test(tc, test_truncated, 1, P2S_TYPE_MAX + 1);
        tcase_add_loop_test(tc, test_trailing, 1, P2S_TYPE_MAX + 1);
        tcase_add_test(tc, test_manifest_multiple);
        suite_add_tcase(s, tc);

        tc = tcase_create("header");
        tcase_add_test(tc, test_bad_header);
        tcase_add_loop_test(tc, test_chunk_rule, 1, P2S_TYPE_MAX + 1);
        tcase_add_test(tc, test_manifest_overflow);
        tcase_add_test(tc, test_have_range);
        suite_add_tcase(s, tc);

        tc = tcase_create("body");
        tcase_add_test(tc, test_start);
        tcase_add_test(tc, test_welcome);
        tcase_add_test(tc, test_frag);
        tcase_add_test(tc, test_hello);
        tcase_add_test(tc, test_join_replies);
        tcase_add_test(tc, test_err);
        suite_add_tcase(s, tc);

        tc = tcase_create("garbage");
        tcase_set_timeout(tc, 300);   /* valgrind makes 100k buffers slow */
        tcase_add_test(tc, test_route_table);
        tcase_add_test(tc, test_route_examples);
        tcase_add_test(tc, test_frag_route);
        tcase_add_test(tc, test_list_codec);
        tcase_add_test(tc, test_max_body_chunk);
        tcase_add_test(tc, test_frame_hdr);
        tcase_add_test(tc, test_random);
        tcase_add_test(tc, test_mutations);
        suite_add_tcase(s, tc);

        return s;
}

RUNNER_SUITES(wire_suite);
