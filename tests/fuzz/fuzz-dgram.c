/* SPDX-License-Identifier: MIT */
/* libFuzzer target for UDP chunk reassembly (core/dgram's receiver) fed
 * what p2s-fetch and p2sd feed it: FRAG messages that wire_decode accepted.
 *
 * Input: one byte choosing max_partial (1..4), then records of a 2-byte
 * big-endian length and that many bytes, each decoded as one datagram.
 * Payload bytes are replaced by a pattern that depends only on the chunk and
 * the byte's offset in it, so a completed chunk can be checked byte by byte
 * (a hole reported as received shows up as a wrong byte). A shadow set of
 * the fragment indexes fed since a chunk last completed must cover every
 * index when it completes: the receiver may forget fragments (eviction)
 * but never invent them. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/dgram.h"
#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SHADOW_MAX 64

struct shadow {
        uint8_t kind;
        uint32_t chunk, chunk_len;
        uint16_t frag_size, count;
        uint8_t seen[65536 / 8];
};

/* Never ASan's malloc fill byte (0xbe) nor 0: uninitialised bytes differ. */
static uint8_t pattern(uint8_t kind, uint32_t chunk, size_t off)
{
        return (uint8_t)(1 + (off * 31 + chunk * 7 + kind) % 97);
}

static struct shadow *shadow_find(struct shadow **v, size_t *n, uint8_t kind, uint32_t chunk)
{
        for (size_t i = 0; i < *n; i++)
                if (v[i]->kind == kind && v[i]->chunk == chunk)
                        return v[i];
        if (*n == SHADOW_MAX)
                return NULL;
        struct shadow *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->kind = kind;
        s->chunk = chunk;
        v[(*n)++] = s;
        return s;
}

static void check_nack(const struct dgram_rx_result *res, const struct p2s_frag *f)
{
        if (!res->nack)
                return;
        if (res->nack_len == 0 || res->nack_len > P2S_NACK_MAP_MAX || res->nack_base >= f->count)
                abort();
        /* the base is the first missing fragment, so its bit is set */
        if (!(res->nack_map[0] & 1))
                abort();
        /* the fragment just stored is not reported missing */
        if (f->index >= res->nack_base && (size_t)(f->index - res->nack_base) < res->nack_len * 8) {
                size_t bit = f->index - res->nack_base;
                if (res->nack_map[bit / 8] & (1u << (bit % 8)))
                        abort();
        }
        /* no bit beyond the chunk's last fragment */
        for (size_t bit = (size_t)(f->count - res->nack_base); bit < res->nack_len * 8; bit++)
                if (res->nack_map[bit / 8] & (1u << (bit % 8)))
                        abort();
}

static void check_complete(const struct dgram_rx_result *res, const struct shadow *s, uint8_t kind,
                           uint32_t chunk, const struct p2s_frag *f)
{
        if (!res->chunk || res->nack || res->chunk->len != f->chunk_len)
                abort();
        for (size_t off = 0; off < res->chunk->len; off++)
                if (res->chunk->data[off] != pattern(kind, chunk, off))
                        abort();
        if (s)
                for (unsigned i = 0; i < f->count; i++)
                        if (!(s->seen[i / 8] & (1u << (i % 8))))
                                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint8_t pkt[P2S_MAX_DGRAM];
        struct shadow *shadow[SHADOW_MAX];
        size_t nshadow = 0;
        struct dgram_rx *rx;
        uint64_t now = 1000000;

        if (size < 1)
                return 0;
        rx = dgram_rx_new(1 + data[0] % 4);
        if (!rx)
                return 0;
        data++;
        size--;
        while (size >= 2) {
                size_t len = (size_t)data[0] << 8 | data[1];
                struct p2s_msg m;
                struct p2s_frag f;
                struct dgram_rx_result res;

                data += 2;
                size -= 2;
                if (len > size)
                        len = size;
                if (len > sizeof(pkt))
                        len = sizeof(pkt);
                memcpy(pkt, data, len);
                data += len;
                size -= len;
                now += 1000;
                if (wire_decode(pkt, len, &m) != WIRE_OK || m.hdr.type != P2S_FRAG)
                        continue;
                wire_get_frag(m.body, &f);
                uint16_t plen = (uint16_t)(m.hdr.body_len - P2S_FRAG_SIZE);
                size_t off = (size_t)f.index * f.frag_size;
                /* what wire_check_body promises the receiver */
                if (plen == 0 || off + plen > f.chunk_len || f.index >= f.count)
                        abort();
                uint8_t *payload = pkt + P2S_HDR_SIZE + P2S_FRAG_SIZE;
                for (size_t i = 0; i < plen; i++)
                        payload[i] = pattern(f.kind, m.hdr.chunk, off + i);

                struct shadow *s = shadow_find(shadow, &nshadow, f.kind, m.hdr.chunk);
                int r = dgram_rx_on_frag(rx, f.kind, m.hdr.chunk, &f, payload, plen, now, &res);
                if (r == DGRAM_RX_DROP) {
                        if (res.chunk)
                                abort();
                        continue;
                }
                if (r != DGRAM_RX_PARTIAL && r != DGRAM_RX_COMPLETE)
                        abort();
                if (s && (s->chunk_len != f.chunk_len || s->frag_size != f.frag_size)) {
                        /* accepted with other geometry: the receiver started afresh */
                        memset(s->seen, 0, sizeof(s->seen));
                        s->chunk_len = f.chunk_len;
                        s->frag_size = f.frag_size;
                        s->count = f.count;
                }
                if (s)
                        s->seen[f.index / 8] |= (uint8_t)(1u << (f.index % 8));
                if (r == DGRAM_RX_COMPLETE) {
                        check_complete(&res, s, f.kind, m.hdr.chunk, &f);
                        buf_unref(res.chunk);
                        if (s)
                                memset(s->seen, 0, sizeof(s->seen));
                } else {
                        if (res.chunk)
                                abort();
                        check_nack(&res, &f);
                }
        }
        dgram_rx_free(rx);
        for (size_t i = 0; i < nshadow; i++)
                free(shadow[i]);
        return 0;
}
