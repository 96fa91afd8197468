/* SPDX-License-Identifier: MIT */
/* Writes the seed corpora of the fuzz targets: valid encoded messages of
 * every type (wire), FRAG sequences that complete, interleave and evict
 * chunks (dgram), and TCP streams of several frames (stream). Run from the
 * top of the tree after a change to the wire format:
 *
 *     build/tests/fuzz/fuzz-gen-corpus tests/fuzz/corpus
 *
 * It only (re)writes files named seed-*; inputs the fuzzer found stay. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto/wire.h"

static const char *root;

struct out {
        uint8_t *data;
        size_t len, cap;
};

static void out_add(struct out *o, const void *p, size_t n)
{
        if (o->len + n > o->cap) {
                size_t cap = o->cap ? o->cap : 4096;
                while (cap < o->len + n)
                        cap *= 2;
                o->data = realloc(o->data, cap);
                if (!o->data) {
                        fprintf(stderr, "gen-corpus: out of memory\n");
                        exit(1);
                }
                o->cap = cap;
        }
        memcpy(o->data + o->len, p, n);
        o->len += n;
}

static void out_byte(struct out *o, uint8_t b)
{
        out_add(o, &b, 1);
}

static void save(const char *target, const char *name, const struct out *o)
{
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", root, target);
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                perror(path);
                exit(1);
        }
        snprintf(path, sizeof(path), "%s/%s/seed-%s", root, target, name);
        f = fopen(path, "wb");
        if (!f || fwrite(o->data, 1, o->len, f) != o->len || fclose(f) != 0) {
                perror(path);
                exit(1);
        }
}

/* One encoded message into o; aborts if the codec would not accept it. */
static void msg(struct out *o, uint8_t type, uint16_t flags, uint32_t chunk, const void *body, uint32_t blen)
{
        struct p2s_hdr h = { .type = type, .flags = flags, .swarm_id = 3, .member_id = 7,
                             .token = 0x1122334455667788ull, .chunk = chunk };
        size_t cap = P2S_HDR_SIZE + blen;
        uint8_t *buf = malloc(cap);

        if (!buf || wire_encode(buf, cap, &h, body, blen) != cap || wire_decode(buf, cap, NULL) != WIRE_OK) {
                fprintf(stderr, "gen-corpus: %s does not encode to a valid message\n", wire_type_name(type));
                exit(1);
        }
        out_add(o, buf, cap);
        free(buf);
}

static void frag(struct out *o, uint8_t kind, uint32_t chunk, uint32_t chunk_len, uint16_t frag_size, uint16_t index)
{
        uint8_t body[P2S_FRAG_SIZE + 65536];
        uint32_t off = (uint32_t)index * frag_size;
        uint32_t len = chunk_len - off < frag_size ? chunk_len - off : frag_size;
        struct p2s_frag f = { .kind = kind, .index = index, .frag_size = frag_size, .chunk_len = chunk_len,
                              .count = (uint16_t)((chunk_len + frag_size - 1) / frag_size) };

        wire_put_frag(body, &f);
        for (uint32_t i = 0; i < len; i++)
                body[P2S_FRAG_SIZE + i] = (uint8_t)(off + i);
        msg(o, P2S_FRAG, 0, chunk, body, P2S_FRAG_SIZE + len);
}

static void frag_ack(struct out *o, uint8_t type, uint8_t kind, uint32_t chunk, uint16_t base, size_t map_len)
{
        uint8_t body[P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX];
        struct p2s_frag_ack a = { .kind = kind, .base = base };

        wire_put_frag_ack(body, &a);
        for (size_t i = 0; i < map_len; i++)
                body[P2S_FRAG_ACK_SIZE + i] = (uint8_t)(0x55 << (i % 2));
        msg(o, type, 0, chunk, body, (uint32_t)(P2S_FRAG_ACK_SIZE + map_len));
}

/* ---- wire: one message per file ------------------------------------------ */

static void wire_one(const char *name, void (*fill)(struct out *))
{
        struct out o = { 0 };
        fill(&o);
        save("wire", name, &o);
        free(o.data);
}

static const uint8_t seed_nonce[P2S_NONCE_SIZE] = "gen-corpus-nonce";
static void w_hello(struct out *o)
{
        uint8_t b[P2S_HELLO_FIXED + 7];
        size_t n = wire_put_hello(b, sizeof(b), seed_nonce, NULL, "big.iso", 7);
        msg(o, P2S_HELLO, 0, P2S_NO_CHUNK, b, (uint32_t)n);
}
static void w_cookie(struct out *o) { msg(o, P2S_COOKIE, 0, P2S_NO_CHUNK, seed_nonce, P2S_NONCE_SIZE); }
static void w_welcome_udp(struct out *o)
{
        uint8_t b[P2S_WELCOME_SIZE];
        wire_put_welcome(b, &(struct p2s_welcome){ .control_mode = P2S_CONTROL_UDP, .port = 7700 });
        msg(o, P2S_WELCOME, 0, P2S_NO_CHUNK, b, sizeof(b));
}
static void w_welcome_tcp(struct out *o)
{
        uint8_t b[P2S_WELCOME_SIZE];
        wire_put_welcome(b, &(struct p2s_welcome){ .control_mode = P2S_CONTROL_TCP, .port = 7700,
                                                   .dgram_size = P2S_DEFAULT_DGRAM });
        msg(o, P2S_WELCOME, 0, P2S_NO_CHUNK, b, sizeof(b));
}
static void w_attach(struct out *o) { msg(o, P2S_ATTACH, 0, P2S_NO_CHUNK, NULL, 0); }
static void w_start(struct out *o)
{
        uint8_t b[P2S_START_SIZE];
        wire_put_start(b, &(struct p2s_start){ .file_size = 1000000, .chunk_size = 65536, .chunk_count = 16 });
        msg(o, P2S_START, 0, P2S_NO_CHUNK, b, sizeof(b));
}
static void w_start_empty(struct out *o)
{
        uint8_t b[P2S_START_SIZE];
        wire_put_start(b, &(struct p2s_start){ .file_size = 0, .chunk_size = P2S_MIN_CHUNK, .chunk_count = 0 });
        msg(o, P2S_START, 0, P2S_NO_CHUNK, b, sizeof(b));
}
static void w_share(struct out *o) { msg(o, P2S_SHARE, 0, 2, "0123456789abcdef", 16); }
static void w_manifest(struct out *o)
{
        uint8_t b[3 * P2S_HASH_SIZE];
        memset(b, 0xa5, sizeof(b));
        msg(o, P2S_MANIFEST, 0, 0, b, sizeof(b));
}
static void w_manifest_end(struct out *o)
{
        uint8_t b[P2S_HASH_SIZE];
        memset(b, 0x5a, sizeof(b));
        msg(o, P2S_MANIFEST_END, 0, P2S_NO_CHUNK, b, sizeof(b));
}
static void w_req(struct out *o) { msg(o, P2S_REQ, 0, 5, NULL, 0); }
static void w_data(struct out *o) { msg(o, P2S_DATA, P2S_F_FROM_CACHE, 5, "chunk bytes", 11); }
static void w_query(struct out *o) { msg(o, P2S_QUERY, 0, 9, NULL, 0); }
static void w_upload(struct out *o) { msg(o, P2S_UPLOAD, 0, 9, "uploaded", 8); }
static void w_nohave(struct out *o) { msg(o, P2S_NOHAVE, 0, 9, NULL, 0); }
static void w_complete(struct out *o) { msg(o, P2S_COMPLETE, 0, P2S_NO_CHUNK, NULL, 0); }
static void w_complete_ack(struct out *o) { msg(o, P2S_COMPLETE, P2S_F_ACK, P2S_NO_CHUNK, NULL, 0); }
static void w_done(struct out *o) { msg(o, P2S_DONE, 0, P2S_NO_CHUNK, NULL, 0); }
static void w_err(struct out *o)
{
        uint8_t b[P2S_ERR_BODY_MIN + P2S_MAX_REASON];
        size_t n = wire_put_err(b, sizeof(b), P2S_ERR_NOFILE, "no such file is served");
        msg(o, P2S_ERR, P2S_F_FATAL, P2S_NO_CHUNK, b, (uint32_t)n);
}
static void w_bye(struct out *o) { msg(o, P2S_BYE, 0, P2S_NO_CHUNK, NULL, 0); }
static void w_frag_first(struct out *o) { frag(o, P2S_DATA, 4, 3000, 1408, 0); }
static void w_frag_last(struct out *o) { frag(o, P2S_SHARE, 4, 3000, 1408, 2); }
static void w_frag_upload(struct out *o) { frag(o, P2S_UPLOAD, 1, 256, 256, 0); }
static void w_frag_ack(struct out *o) { frag_ack(o, P2S_FRAG_ACK, P2S_DATA, 4, 0, 0); }
static void w_frag_nack(struct out *o) { frag_ack(o, P2S_FRAG_NACK, P2S_UPLOAD, 4, 1, 3); }

/* ---- dgram: max_partial byte, then length-prefixed datagrams -------------- */

static void rec_frag(struct out *o, uint8_t kind, uint32_t chunk, uint32_t chunk_len, uint16_t frag_size,
                     uint16_t index)
{
        struct out m = { 0 };
        frag(&m, kind, chunk, chunk_len, frag_size, index);
        out_byte(o, (uint8_t)(m.len >> 8));
        out_byte(o, (uint8_t)m.len);
        out_add(o, m.data, m.len);
        free(m.data);
}

static void gen_dgram(void)
{
        struct out o = { 0 };

        /* in order, one chunk */
        out_byte(&o, 0);
        for (uint16_t i = 0; i < 3; i++)
                rec_frag(&o, P2S_DATA, 4, 3000, 1408, i);
        save("dgram", "in-order", &o);

        /* reversed with a duplicate and a lost fragment re-sent (NACK path) */
        o.len = 0;
        out_byte(&o, 1);
        rec_frag(&o, P2S_SHARE, 0, 4000, 512, 7);
        rec_frag(&o, P2S_SHARE, 0, 4000, 512, 5);
        rec_frag(&o, P2S_SHARE, 0, 4000, 512, 7);
        for (int i = 6; i >= 0; i--)
                if (i != 5)
                        rec_frag(&o, P2S_SHARE, 0, 4000, 512, (uint16_t)i);
        save("dgram", "reversed", &o);

        /* two chunks and two kinds interleaved */
        o.len = 0;
        out_byte(&o, 3);
        for (uint16_t i = 0; i < 4; i++) {
                rec_frag(&o, P2S_DATA, 1, 1000, 256, i);
                rec_frag(&o, P2S_UPLOAD, 1, 1000, 256, (uint16_t)(3 - i));
                rec_frag(&o, P2S_DATA, 2, 700, 256, (uint16_t)(i % 3));
        }
        save("dgram", "interleaved", &o);

        /* more chunks than max_partial: the stalest is evicted */
        o.len = 0;
        out_byte(&o, 0);
        for (uint32_t c = 0; c < 4; c++)
                rec_frag(&o, P2S_DATA, c, 600, 256, 0);
        for (uint32_t c = 0; c < 4; c++) {
                rec_frag(&o, P2S_DATA, c, 600, 256, 1);
                rec_frag(&o, P2S_DATA, c, 600, 256, 2);
        }
        save("dgram", "evict", &o);

        /* the same chunk with another geometry mid-way (dropped) */
        o.len = 0;
        out_byte(&o, 1);
        rec_frag(&o, P2S_DATA, 8, 1000, 400, 0);
        rec_frag(&o, P2S_DATA, 8, 1000, 500, 1);
        rec_frag(&o, P2S_DATA, 8, 1001, 400, 1);
        rec_frag(&o, P2S_DATA, 8, 1000, 400, 1);
        rec_frag(&o, P2S_DATA, 8, 1000, 400, 2);
        save("dgram", "geometry", &o);

        /* a long chunk: status reports every few fragments */
        o.len = 0;
        out_byte(&o, 0);
        for (uint16_t i = 0; i < 80; i += 1 + (i % 3 == 0))
                rec_frag(&o, P2S_DATA, 3, 80 * 64 - 10, 64, i);
        save("dgram", "long", &o);

        /* one big fragment, a whole chunk */
        o.len = 0;
        out_byte(&o, 0);
        rec_frag(&o, P2S_UPLOAD, 6, 60000, 60000, 0);
        save("dgram", "big", &o);
        free(o.data);
}

/* ---- stream: rcap byte, stop byte, 4 seed bytes, then frames -------------- */

static void stream_prefix(struct out *o, uint8_t rcap, uint8_t stop, uint32_t seed)
{
        out_byte(o, rcap);
        out_byte(o, stop);
        for (int i = 3; i >= 0; i--)
                out_byte(o, (uint8_t)(seed >> (8 * i)));
}

static void gen_stream(void)
{
        struct out o = { 0 };
        uint8_t big[20000];

        memset(big, 0x42, sizeof(big));
        for (uint8_t rcap = 0; rcap < 6; rcap++) {
                char name[32];
                o.len = 0;
                stream_prefix(&o, rcap, 0, 0x9e3779b9u * (rcap + 1));
                w_attach(&o);
                w_start(&o);
                w_manifest(&o);
                w_manifest_end(&o);
                msg(&o, P2S_SHARE, 0, 0, big, rcap < 3 ? 300 : sizeof(big));
                w_data(&o);
                w_query(&o);
                w_upload(&o);
                w_done(&o);
                snprintf(name, sizeof(name), "session-rcap%u", rcap);
                save("stream", name, &o);
        }

        /* a bad header after two frames: the stream is rejected there */
        o.len = 0;
        stream_prefix(&o, 2, 0, 12345);
        w_req(&o);
        w_nohave(&o);
        size_t bad = o.len;
        w_bye(&o);
        o.data[bad + 4] = 9;    /* version */
        w_bye(&o);
        save("stream", "bad-version", &o);

        /* the callback stops the stream after the second frame */
        o.len = 0;
        stream_prefix(&o, 4, 2, 777);
        w_complete(&o);
        w_complete_ack(&o);
        w_err(&o);
        save("stream", "stop", &o);

        /* a truncated body at the end */
        o.len = 0;
        stream_prefix(&o, 5, 0, 1);
        msg(&o, P2S_UPLOAD, 0, 1, big, sizeof(big));
        o.len -= 100;
        save("stream", "truncated", &o);
        free(o.data);
}

int main(int argc, char **argv)
{
        static const struct {
                const char *name;
                void (*fill)(struct out *);
        } wire[] = {
                { "hello", w_hello }, { "cookie", w_cookie }, { "welcome-udp", w_welcome_udp },
                { "welcome-tcp", w_welcome_tcp }, { "attach", w_attach }, { "start", w_start },
                { "start-empty", w_start_empty }, { "share", w_share }, { "manifest", w_manifest },
                { "manifest-end", w_manifest_end }, { "req", w_req }, { "data", w_data },
                { "query", w_query }, { "upload", w_upload }, { "nohave", w_nohave },
                { "complete", w_complete }, { "complete-ack", w_complete_ack }, { "done", w_done },
                { "err", w_err }, { "bye", w_bye }, { "frag-first", w_frag_first },
                { "frag-last", w_frag_last }, { "frag-upload", w_frag_upload }, { "frag-ack", w_frag_ack },
                { "frag-nack", w_frag_nack },
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s CORPUS-DIR (tests/fuzz/corpus)\n", argv[0]);
                return 2;
        }
        root = argv[1];
        for (size_t i = 0; i < sizeof(wire) / sizeof(wire[0]); i++)
                wire_one(wire[i].name, wire[i].fill);
        gen_dgram();
        gen_stream();
        return 0;
}
