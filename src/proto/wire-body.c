/* SPDX-License-Identifier: MIT */
/* The bodies of the wire messages: each type's fixed fields put and got
 * byte by byte (WELCOME, HELLO, the join's ERR, START, ERR, FRAG, FRAG_ACK,
 * LIST, LISTING, a gathering PING). wire.c has checked the lengths before
 * any getter here runs. */
#include <string.h>
#include "proto/wire.h"
#include "proto/wire-bytes.h"

void wire_put_welcome(uint8_t out[P2S_WELCOME_SIZE], const struct p2s_welcome *w)
{
        out[0] = w->control_mode;
        out[1] = w->reserved;
        put_u16(out + 2, w->port);
        put_u32(out + 4, w->dgram_size);
        memcpy(out + 8, w->nonce, P2S_NONCE_SIZE);
}

void wire_get_welcome(const uint8_t in[P2S_WELCOME_SIZE], struct p2s_welcome *w)
{
        w->control_mode = in[0];
        w->reserved = in[1];
        w->port = get_u16(in + 2);
        w->dgram_size = get_u32(in + 4);
        memcpy(w->nonce, in + 8, P2S_NONCE_SIZE);
}

void wire_get_hello(const struct p2s_msg *msg, struct wire_hello *out)
{
        const uint8_t *b = msg->body;
        memcpy(out->nonce, b, P2S_NONCE_SIZE);
        memcpy(out->proof, b + P2S_NONCE_SIZE, P2S_PROOF_SIZE);
        out->name = (const char *)b + P2S_HELLO_FIXED;
        out->name_len = msg->hdr.body_len - P2S_HELLO_FIXED;
}

size_t wire_put_hello(uint8_t *out, size_t cap, const uint8_t nonce[P2S_NONCE_SIZE],
                      const uint8_t proof[P2S_PROOF_SIZE], const char *name, size_t name_len)
{
        if (!out || name_len == 0 || name_len > P2S_MAX_NAME || cap < P2S_HELLO_FIXED + name_len)
                return 0;
        memcpy(out, nonce, P2S_NONCE_SIZE);
        if (proof)
                memcpy(out + P2S_NONCE_SIZE, proof, P2S_PROOF_SIZE);
        else
                memset(out + P2S_NONCE_SIZE, 0, P2S_PROOF_SIZE);
        memcpy(out + P2S_HELLO_FIXED, name, name_len);
        return P2S_HELLO_FIXED + name_len;
}

size_t wire_put_join_err(uint8_t *out, size_t cap, const uint8_t nonce[P2S_NONCE_SIZE], uint16_t code,
                         const char *reason)
{
        if (!out || cap < P2S_NONCE_SIZE + P2S_ERR_BODY_MIN)
                return 0;
        if (cap > P2S_ERR_BODY_MIN + P2S_MAX_REASON)
                cap = P2S_ERR_BODY_MIN + P2S_MAX_REASON;
        memcpy(out, nonce, P2S_NONCE_SIZE);
        return P2S_NONCE_SIZE + wire_put_err(out + P2S_NONCE_SIZE, cap - P2S_NONCE_SIZE, code, reason);
}

const uint8_t *wire_reply_nonce(const struct p2s_msg *msg)
{
        switch (msg->hdr.type) {
        case P2S_COOKIE:
                return msg->body;
        case P2S_WELCOME:
                return msg->body + 8;
        case P2S_ERR:
                return (msg->hdr.flags & P2S_F_JOIN) ? msg->body : NULL;
        default:
                return NULL;
        }
}

void wire_put_start(uint8_t out[P2S_START_SIZE], const struct p2s_start *s)
{
        put_u64(out + 0, s->file_size);
        put_u32(out + 8, s->chunk_size);
        put_u32(out + 12, s->chunk_count);
        put_u64(out + 16, (uint64_t)s->mtime_sec);
        put_u32(out + 24, s->mtime_nsec);
        put_u32(out + 28, s->mode);
}

void wire_get_start(const uint8_t in[P2S_START_SIZE], struct p2s_start *s)
{
        s->file_size = get_u64(in + 0);
        s->chunk_size = get_u32(in + 8);
        s->chunk_count = get_u32(in + 12);
        s->mtime_sec = (int64_t)get_u64(in + 16);
        s->mtime_nsec = get_u32(in + 24);
        s->mode = get_u32(in + 28);
}

size_t wire_put_err(uint8_t *out, size_t cap, uint16_t code, const char *reason)
{
        size_t n;

        if (!out || cap < P2S_ERR_BODY_MIN)
                return 0;
        put_u16(out, code);
        n = reason ? strnlen(reason, P2S_MAX_REASON) : 0;
        if (n > cap - P2S_ERR_BODY_MIN)
                n = cap - P2S_ERR_BODY_MIN;
        if (n > 0)
                memcpy(out + P2S_ERR_BODY_MIN, reason, n);
        return P2S_ERR_BODY_MIN + n;
}

struct buf *wire_err_buf(uint16_t code, const char *reason)
{
        uint8_t tmp[P2S_ERR_BODY_MIN + P2S_MAX_REASON];
        size_t n = wire_put_err(tmp, sizeof(tmp), code, reason);
        struct buf *b = buf_new(n);
        if (b)
                memcpy(b->data, tmp, n);
        return b;
}

uint16_t wire_get_err(const uint8_t *body, uint32_t body_len, char *reason, size_t cap)
{
        size_t n = 0;
        uint16_t code = 0;

        if (body && body_len >= P2S_ERR_BODY_MIN) {
                code = get_u16(body);
                n = body_len - P2S_ERR_BODY_MIN;
        }
        if (!reason || cap == 0)
                return code;
        if (n > cap - 1)
                n = cap - 1;
        /* The reason ends up in log lines and terminals: no control bytes. */
        for (size_t i = 0; i < n; i++) {
                uint8_t c = body[P2S_ERR_BODY_MIN + i];
                reason[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        reason[n] = '\0';
        return code;
}

void wire_put_frag(uint8_t out[P2S_FRAG_SIZE], const struct p2s_frag *f)
{
        out[0] = f->kind;
        out[1] = 0;
        put_u16(out + 2, f->index);
        put_u16(out + 4, f->count);
        put_u16(out + 6, f->frag_size);
        put_u32(out + 8, f->chunk_len);
}

void wire_get_frag(const uint8_t in[P2S_FRAG_SIZE], struct p2s_frag *f)
{
        f->kind = in[0];
        f->reserved = in[1];
        f->index = get_u16(in + 2);
        f->count = get_u16(in + 4);
        f->frag_size = get_u16(in + 6);
        f->chunk_len = get_u32(in + 8);
}

void wire_put_frag_ack(uint8_t out[P2S_FRAG_ACK_SIZE], const struct p2s_frag_ack *a)
{
        out[0] = a->kind;
        out[1] = 0;
        put_u16(out + 2, a->base);
}

void wire_get_frag_ack(const uint8_t in[P2S_FRAG_ACK_SIZE], struct p2s_frag_ack *a)
{
        a->kind = in[0];
        a->reserved = in[1];
        a->base = get_u16(in + 2);
}

/* ---- the listing --------------------------------------------------------- */

void wire_get_list(const struct p2s_msg *msg, struct wire_list *out)
{
        const uint8_t *b = msg->body;
        memcpy(out->nonce, b, P2S_NONCE_SIZE);
        memcpy(out->proof, b + P2S_NONCE_SIZE, P2S_PROOF_SIZE);
        out->prefix_len = b[P2S_LIST_FIXED - 1];
        out->prefix = (const char *)b + P2S_LIST_FIXED;
        out->after = out->prefix + out->prefix_len;
        out->after_len = msg->hdr.body_len - P2S_LIST_FIXED - out->prefix_len;
}

size_t wire_put_list(uint8_t *out, size_t cap, const uint8_t nonce[P2S_NONCE_SIZE],
                     const uint8_t proof[P2S_PROOF_SIZE], const char *prefix, size_t prefix_len,
                     const char *after, size_t after_len)
{
        if (!out || prefix_len > P2S_MAX_NAME || after_len > P2S_MAX_NAME ||
            cap < P2S_LIST_FIXED + prefix_len + after_len)
                return 0;
        if ((prefix_len && memchr(prefix, 0, prefix_len)) || (after_len && memchr(after, 0, after_len)))
                return 0;
        memcpy(out, nonce, P2S_NONCE_SIZE);
        if (proof)
                memcpy(out + P2S_NONCE_SIZE, proof, P2S_PROOF_SIZE);
        else
                memset(out + P2S_NONCE_SIZE, 0, P2S_PROOF_SIZE);
        out[P2S_LIST_FIXED - 1] = (uint8_t)prefix_len;
        if (prefix_len)
                memcpy(out + P2S_LIST_FIXED, prefix, prefix_len);
        if (after_len)
                memcpy(out + P2S_LIST_FIXED + prefix_len, after, after_len);
        return P2S_LIST_FIXED + prefix_len + after_len;
}

void wire_put_listing_count(uint8_t *body, uint16_t count)
{
        put_u16(body, count);
}

size_t wire_put_entry(uint8_t *out, size_t cap, const struct wire_entry *e)
{
        if (!out || e->name_len == 0 || e->name_len > P2S_MAX_NAME || memchr(e->name, 0, e->name_len) ||
            cap < P2S_LISTING_ENTRY_FIXED + e->name_len)
                return 0;
        put_u64(out, e->size);
        put_u64(out + 8, (uint64_t)e->mtime_sec);
        out[16] = e->has_hash ? P2S_LISTING_HASH : 0;
        out[17] = (uint8_t)e->name_len;
        if (e->has_hash)
                memcpy(out + 18, e->sha256, P2S_HASH_SIZE);
        else
                memset(out + 18, 0, P2S_HASH_SIZE);
        memcpy(out + P2S_LISTING_ENTRY_FIXED, e->name, e->name_len);
        return P2S_LISTING_ENTRY_FIXED + e->name_len;
}

int wire_listing_next(const uint8_t *body, uint32_t body_len, size_t *off, struct wire_entry *e)
{
        if (!body || body_len < 2)
                return -1;
        if (*off == 0)
                *off = 2;
        if (*off == body_len)
                return 0;
        if (*off > body_len || body_len - *off < P2S_LISTING_ENTRY_FIXED)
                return -1;
        const uint8_t *p = body + *off;
        size_t nl = p[17];
        if (nl == 0 || body_len - *off - P2S_LISTING_ENTRY_FIXED < nl)
                return -1;
        /* a flag we do not know is a peer we do not understand */
        if (p[16] & ~P2S_LISTING_HASH)
                return -1;
        if (memchr(p + P2S_LISTING_ENTRY_FIXED, 0, nl))
                return -1;
        e->size = get_u64(p);
        e->mtime_sec = (int64_t)get_u64(p + 8);
        e->has_hash = p[16] & P2S_LISTING_HASH;
        e->name_len = nl;
        memcpy(e->sha256, p + 18, P2S_HASH_SIZE);
        e->name = (const char *)p + P2S_LISTING_ENTRY_FIXED;
        *off += P2S_LISTING_ENTRY_FIXED + nl;
        return 1;
}

void wire_put_gather(uint8_t out[P2S_GATHER_SIZE], uint32_t members, uint32_t min_clients)
{
        put_u32(out, members);
        put_u32(out + 4, min_clients);
}

void wire_get_gather(const uint8_t in[P2S_GATHER_SIZE], uint32_t *members, uint32_t *min_clients)
{
        *members = get_u32(in);
        *min_clients = get_u32(in + 4);
}
