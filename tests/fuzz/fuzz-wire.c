/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the wire decoder: no input may crash it or read past
 * the buffer, the whole-datagram and header+body paths must agree, and every
 * accepted input must re-encode to exactly the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
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
                if (wire_get_err(m.body, m.hdr.body_len, reason, sizeof(reason)) == 0)
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
        }
        return 0;
}
