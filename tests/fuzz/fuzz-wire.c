/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the wire decoder: no input may crash it or read past
 * the buffer, the whole-datagram and header+body paths must agree, and every
 * accepted input must re-encode to exactly the same bytes. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool frag_kind_ok(uint8_t kind)
{
        return kind == P2S_SHARE || kind == P2S_DATA || kind == P2S_UPLOAD;
}

/* An accepted FRAG is what a receiver copies into a chunk buffer of
 * chunk_len bytes at index * frag_size: it must land inside it, and every
 * fragment but the last must be whole. */
static void check_frag(const struct p2s_msg *m)
{
        struct p2s_frag f;
        uint8_t again[P2S_FRAG_SIZE];
        uint32_t len = m->hdr.body_len - P2S_FRAG_SIZE;
        uint64_t off;

        wire_get_frag(m->body, &f);
        if (!frag_kind_ok(f.kind) || f.frag_size == 0 || f.count == 0 || f.index >= f.count)
                abort();
        if (f.chunk_len == 0 || f.chunk_len > P2S_MAX_CHUNK)
                abort();
        if ((uint64_t)f.count * f.frag_size < f.chunk_len ||
            (uint64_t)(f.count - 1) * f.frag_size >= f.chunk_len)
                abort();
        off = (uint64_t)f.index * f.frag_size;
        if (len == 0 || off + len > f.chunk_len || len > f.frag_size)
                abort();
        if (f.index + 1 < f.count ? len != f.frag_size : off + len != f.chunk_len)
                abort();
        if (f.reserved == 0) {
                wire_put_frag(again, &f);
                if (memcmp(again, m->body, P2S_FRAG_SIZE) != 0)
                        abort();
        }
}

static void check_frag_ack(const struct p2s_msg *m)
{
        struct p2s_frag_ack a;
        uint8_t again[P2S_FRAG_ACK_SIZE];

        wire_get_frag_ack(m->body, &a);
        if (!frag_kind_ok(a.kind))
                abort();
        if (m->hdr.type == P2S_FRAG_ACK ? m->hdr.body_len != P2S_FRAG_ACK_SIZE
                                        : m->hdr.body_len <= P2S_FRAG_ACK_SIZE ||
                                          m->hdr.body_len > P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX)
                abort();
        if (a.reserved == 0) {
                wire_put_frag_ack(again, &a);
                if (memcmp(again, m->body, P2S_FRAG_ACK_SIZE) != 0)
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct p2s_msg m;
        struct p2s_hdr h;
        int whole, hdr, body = -1;

        whole = wire_decode(data, size, &m);
        hdr = wire_decode_hdr(data, size, &h);
        if (whole < WIRE_OK || whole >= WIRE_E_MAX || hdr < WIRE_OK || hdr >= WIRE_E_MAX)
                abort();
        /* The stream path (header, then the body once it has arrived) must
         * reach the same verdict as the datagram path on an exact frame. */
        if (hdr == WIRE_OK && size - P2S_HDR_SIZE >= h.body_len) {
                body = wire_check_body(&h, data + P2S_HDR_SIZE);
                if (size - P2S_HDR_SIZE == h.body_len && body != whole)
                        abort();
        }
        if (whole != WIRE_OK)
                return 0;
        if (hdr != WIRE_OK || body != WIRE_OK)
                abort();

        uint8_t *out = malloc(size);
        if (!out)
                return 0;
        if (wire_encode(out, size, &m.hdr, m.body, m.hdr.body_len) != size || memcmp(out, data, size) != 0)
                abort();
        free(out);

        /* The body helpers must stay inside what was accepted. */
        if (m.hdr.type == P2S_ERR) {
                char reason[P2S_MAX_REASON + 1];
                /* an ERR answering a HELLO starts with the HELLO's nonce */
                uint32_t skip = (m.hdr.flags & P2S_F_JOIN) ? P2S_NONCE_SIZE : 0;
                if (wire_get_err(m.body + skip, m.hdr.body_len - skip, reason, sizeof(reason)) == 0)
                        abort();
                for (size_t i = 0; reason[i]; i++)
                        if (reason[i] < 0x20 || reason[i] > 0x7e)
                                abort();
        } else if (m.hdr.type == P2S_START) {
                struct p2s_start s;
                wire_get_start(m.body, &s);
        } else if (m.hdr.type == P2S_WELCOME) {
                struct p2s_welcome w;
                wire_get_welcome(m.body, &w);
        } else if (m.hdr.type == P2S_FRAG) {
                check_frag(&m);
        } else if (m.hdr.type == P2S_FRAG_ACK || m.hdr.type == P2S_FRAG_NACK) {
                check_frag_ack(&m);
        }
        return 0;
}
