/* SPDX-License-Identifier: MIT */
/* libFuzzer target for TCP frame reassembly (util/stream) with the header
 * check p2sd and p2s-fetch use (wire_decode_hdr). The same bytes are fed
 * split at arbitrary points, and what comes out is compared with a plain
 * parse of the whole input: the same frames, byte for byte, in order; the
 * stream rejected exactly where the first bad header is; nothing leaked.
 *
 * Input: byte 0 picks the read buffer size, byte 1 after how many frames
 * the frame callback stops the stream (0: never), bytes 2..5 seed the
 * split lengths; the rest is the stream. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"
#include "util/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STOP_VALUE 77

struct expect {
        const uint8_t *stream;
        size_t len;
        size_t pos;             /* where the next expected frame starts */
        unsigned frames;        /* frames delivered so far */
        unsigned stop_after;
};

static long hdr_cb(const uint8_t *raw, void *ud)
{
        struct p2s_hdr h;

        (void)ud;
        if (wire_decode_hdr(raw, P2S_HDR_SIZE, &h) != WIRE_OK)
                return -EBADMSG;
        return (long)h.body_len;
}

static int frame_cb(const uint8_t *hdr, struct buf *body, void *ud)
{
        struct expect *e = ud;
        struct p2s_hdr h;
        size_t blen;

        /* the frame must be the next one of the plain parse, complete */
        if (e->len - e->pos < P2S_HDR_SIZE || wire_decode_hdr(e->stream + e->pos, P2S_HDR_SIZE, &h) != WIRE_OK)
                abort();
        blen = h.body_len;
        if (e->len - e->pos - P2S_HDR_SIZE < blen)
                abort();
        if (memcmp(hdr, e->stream + e->pos, P2S_HDR_SIZE) != 0)
                abort();
        if (blen == 0 ? body != NULL : !body || body->len != blen)
                abort();
        if (body && memcmp(body->data, e->stream + e->pos + P2S_HDR_SIZE, blen) != 0)
                abort();
        e->pos += P2S_HDR_SIZE + blen;
        e->frames++;
        return e->stop_after && e->frames == e->stop_after ? STOP_VALUE : 0;
}

/* xorshift32: split lengths, reproducible from the input */
static uint32_t next_rand(uint32_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 17;
        *s ^= *s << 5;
        return *s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const size_t rcaps[] = { P2S_HDR_SIZE, P2S_HDR_SIZE + 1, 64, 100, 4096, 65536 };
        struct stream_rx rx;
        struct expect e = { 0 };
        uint32_t seed;
        int r = 0;

        if (size < 6)
                return 0;
        size_t rcap = rcaps[data[0] % (sizeof(rcaps) / sizeof(rcaps[0]))];
        e.stop_after = data[1] % 8;
        seed = (uint32_t)data[2] << 24 | (uint32_t)data[3] << 16 | (uint32_t)data[4] << 8 | data[5];
        seed |= 1;      /* xorshift's one fixed point */
        e.stream = data + 6;
        e.len = size - 6;

        /* the plain parse: frames up to the first bad header or the end */
        unsigned want_frames = 0;
        bool want_reject = false;
        for (size_t pos = 0; e.len - pos >= P2S_HDR_SIZE;) {
                struct p2s_hdr h;
                if (wire_decode_hdr(e.stream + pos, P2S_HDR_SIZE, &h) != WIRE_OK) {
                        want_reject = true;
                        break;
                }
                if (e.len - pos - P2S_HDR_SIZE < h.body_len)
                        break;
                pos += P2S_HDR_SIZE + h.body_len;
                want_frames++;
        }
        if (e.stop_after && want_frames >= e.stop_after) {
                want_frames = e.stop_after;
                want_reject = false;
        }

        if (stream_rx_init(&rx, P2S_HDR_SIZE, rcap, hdr_cb, frame_cb, &e) < 0)
                return 0;
        for (size_t off = 0; off < e.len && r == 0;) {
                uint32_t x = next_rand(&seed);
                /* mostly short reads, sometimes long ones */
                size_t n = x & 0x100 ? (x >> 9) % 70000 + 1 : (x >> 9) % 40 + 1;
                if (n > e.len - off)
                        n = e.len - off;
                r = stream_rx_feed(&rx, e.stream + off, n);
                off += n;
        }
        stream_rx_fini(&rx);

        if (e.frames != want_frames)
                abort();
        if (want_reject ? r != -EBADMSG : r != (e.stop_after && want_frames == e.stop_after ? STOP_VALUE : 0))
                abort();
        return 0;
}
