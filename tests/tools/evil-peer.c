/* SPDX-License-Identifier: MIT */
/* evil-peer: a test-only hostile swarm member. It joins like p2s-fetch
 * (HELLO as h_hello makes it, COOKIE, WELCOME, ATTACH), speaks both control modes
 * (udp: control datagrams and chunk frames on TCP; tcp: control on TCP and
 * chunks as FRAGs), and otherwise behaves like a plain member - it fetches
 * what it lacks and says COMPLETE, so the swarm can end with it in it -
 * except for the misbehaviour its flags ask for:
 *
 *   --corrupt-uploads  flips bytes of every UPLOAD
 *   --claim            HAVE for every chunk, held or not
 *   --nohave           answers every QUERY with NOHAVE (flag ACK)
 *   --req-flood        REQs every chunk again and again
 *   --bad-indexes      REQ/UPLOAD/NOHAVE for chunks past the last one and
 *                      0xffffffff, UPLOAD bodies of wrong sizes
 *   --stop-reading     never reads its TCP connection (nor its UDP socket)
 *   --silent           joins, then sends nothing at all
 *   --spoof-fd N       also sends, from the UDP socket N (another address,
 *                      given by the test: the victim), PING and REQ every
 *                      tick and a FRAG_NACK asking again for every fragment
 *                      it receives, all with its valid ids and token, so
 *                      that a server following a token would send the
 *                      victim chunk data; it prints what it sent from there
 *                      ("evil: spoofed N bytes in M datagrams") at exit
 *
 * Usage: evil-peer [FLAGS] PORT NAME (the server is 127.0.0.1). It prints
 * "evil: member ID at ADDR" (ADDR: its end of the TCP connection, as p2sd
 * names it) once attached. Exit: 0 after DONE, 3 after a fatal ERR, 4 when
 * the server closed the connection, 5 on SIGTERM with --spoof-fd (after its
 * report), 1 on a local failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"
#include "proto/wire.h"

static struct {
        bool corrupt, claim, nohave, flood, bad, stop_reading, silent;
        int spoof_fd;                   /* -1 for none */
} opt = { .spoof_fd = -1 };

static int tcp = -1, udp = -1;
static struct p2s_hdr ids;              /* swarm_id, member_id, token */
static int mode;                        /* P2S_CONTROL_UDP or _TCP */
static uint32_t dgram_size;
static struct p2s_start st;
static bool started, relay, complete_sent, complete_acked;
static uint8_t *data;                   /* the file, as far as held */
static uint8_t *have;                   /* per chunk: 1 held */
static double *req_at;                  /* per chunk: last REQ, 0 for none */
static uint8_t **fragmap;               /* per chunk: fragments received (tcp mode) */
static uint32_t held;
static struct sockaddr_in server_addr;  /* where spoofed datagrams go */
static unsigned long long spoof_bytes, spoof_dgrams;
static volatile sig_atomic_t got_term;  /* SIGTERM: exit (5) through atexit */

static void on_term(int sig)
{
        (void)sig;
        got_term = 1;
}
static uint32_t flood_next;
static double complete_at;

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
        fprintf(stderr, "evil: %s: %s\n", what, strerror(errno));
        exit(1);
}

static uint32_t chunk_len(uint32_t c)
{
        uint64_t off = (uint64_t)c * st.chunk_size;
        uint64_t left = st.file_size - off;
        return left < st.chunk_size ? (uint32_t)left : st.chunk_size;
}

/* Sends a whole frame on TCP (blocking, bounded by SO_SNDTIMEO). */
static void tcp_send(const struct p2s_hdr *h, const void *body, uint32_t len)
{
        uint8_t hdr[P2S_HDR_SIZE];
        struct p2s_hdr x = *h;
        x.body_len = len;
        wire_encode_hdr(hdr, &x);
        const uint8_t *parts[2] = { hdr, body };
        size_t lens[2] = { sizeof(hdr), len };
        for (int i = 0; i < 2; i++)
                for (size_t done = 0; done < lens[i];) {
                        ssize_t n = send(tcp, parts[i] + done, lens[i] - done, MSG_NOSIGNAL);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                fprintf(stderr, "evil: send on TCP failed: %s\n", strerror(errno));
                                exit(4);
                        }
                        done += (size_t)n;
                }
}

static void udp_send(const struct p2s_hdr *h, const void *body, uint32_t len)
{
        uint8_t pkt[P2S_MAX_DGRAM];
        size_t n = wire_encode(pkt, sizeof(pkt), h, body, len);
        if (n)
                send(udp, pkt, n, 0);
}

/* The same datagram from the victim's socket (sent only, never read). */
static void spoof_send(const struct p2s_hdr *h, const void *body, uint32_t len)
{
        uint8_t pkt[P2S_MAX_DGRAM];
        size_t n = wire_encode(pkt, sizeof(pkt), h, body, len);
        if (n && sendto(opt.spoof_fd, pkt, n, 0, (struct sockaddr *)&server_addr, sizeof(server_addr)) ==
                         (ssize_t)n) {
                spoof_bytes += n;
                spoof_dgrams++;
        }
}

static void spoof_report(void)
{
        printf("evil: spoofed %llu bytes in %llu datagrams\n", spoof_bytes, spoof_dgrams);
}

static struct p2s_hdr hdr_of(uint8_t type, uint16_t flags, uint32_t chunk)
{
        struct p2s_hdr h = ids;
        h.type = type;
        h.flags = flags;
        h.chunk = chunk;
        h.body_len = 0;
        return h;
}

/* A bodiless control message on the control channel of the mode. */
static void ctl(uint8_t type, uint16_t flags, uint32_t chunk)
{
        struct p2s_hdr h = hdr_of(type, flags, chunk);
        if (mode == P2S_CONTROL_TCP)
                tcp_send(&h, NULL, 0);
        else
                udp_send(&h, NULL, 0);
}

/* ---- uploads ------------------------------------------------------------ */

static void send_frags(uint32_t c, const uint8_t *bytes, uint32_t len, const uint8_t *missing, uint16_t base)
{
        uint16_t fs = (uint16_t)(dgram_size - P2S_HDR_SIZE - P2S_FRAG_SIZE);
        uint16_t count = (uint16_t)((len + fs - 1) / fs);
        uint8_t body[P2S_MAX_DGRAM];
        for (uint16_t i = 0; i < count; i++) {
                if (missing) {
                        if (i < base)
                                continue;
                        unsigned b = (unsigned)(i - base);
                        if (!(missing[b / 8] & (1u << (b % 8))))
                                continue;
                }
                struct p2s_frag f = { .kind = P2S_UPLOAD, .index = i, .count = count, .frag_size = fs,
                                      .chunk_len = len };
                uint32_t off = (uint32_t)i * fs, n = len - off < fs ? len - off : fs;
                wire_put_frag(body, &f);
                memcpy(body + P2S_FRAG_SIZE, bytes + off, n);
                struct p2s_hdr h = hdr_of(P2S_FRAG, 0, c);
                udp_send(&h, body, P2S_FRAG_SIZE + n);
        }
}

/* UPLOAD of len bytes for chunk c (index and length as the mode asks). */
static void upload_raw(uint32_t c, const uint8_t *bytes, uint32_t len)
{
        if (mode == P2S_CONTROL_TCP) {
                send_frags(c, bytes, len, NULL, 0);
        } else {
                struct p2s_hdr h = hdr_of(P2S_UPLOAD, 0, c);
                tcp_send(&h, bytes, len);
        }
}

static uint8_t *chunk_copy(uint32_t c)
{
        uint32_t len = chunk_len(c);
        uint8_t *b = malloc(len + 1);
        if (!b)
                die("malloc");
        memcpy(b, data + (uint64_t)c * st.chunk_size, len);
        b[len] = 0;
        return b;
}

static void upload(uint32_t c)
{
        uint32_t len = chunk_len(c);
        uint8_t *b = chunk_copy(c);
        if (opt.corrupt)
                for (uint32_t i = 0; i < len; i += 97)
                        b[i] ^= 0x5a;
        upload_raw(c, b, len);
        free(b);
}

/* Everything out of range a member could say about chunks. */
static void bad_indexes(uint32_t c)
{
        static const uint32_t wild[] = { 0, 1, P2S_NO_CHUNK, P2S_NO_CHUNK - 1 };
        uint8_t junk[64] = { 0 };
        for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
                uint32_t x = i < 2 ? st.chunk_count + wild[i] : wild[i];
                struct p2s_hdr h = hdr_of(P2S_REQ, 0, x);
                udp_send(&h, NULL, 0);
                h = hdr_of(P2S_NOHAVE, P2S_F_ACK, x);
                udp_send(&h, NULL, 0);
                if (mode == P2S_CONTROL_TCP) {
                        /* fragments of uploads nobody asked for, past the end */
                        send_frags(x, junk, sizeof(junk), NULL, 0);
                }
        }
        if (c >= st.chunk_count || !have[c])
                return;
        /* the right chunk, the wrong length: one byte short, one byte long */
        uint32_t len = chunk_len(c);
        uint8_t *b = chunk_copy(c);
        if (len > 1)
                upload_raw(c, b, len - 1);
        if (mode == P2S_CONTROL_TCP)
                upload_raw(c, b, len + 1);
        free(b);
}

/* ---- what the server sends ---------------------------------------------- */

static void query(uint32_t c)
{
        if (opt.bad)
                bad_indexes(c);
        if (opt.nohave || c >= st.chunk_count || !have[c]) {
                ctl(P2S_NOHAVE, P2S_F_ACK, c);
                return;
        }
        upload(c);
}

static void got_chunk(uint32_t c, const uint8_t *bytes, uint32_t len)
{
        if (!started || c >= st.chunk_count || len != chunk_len(c))
                return;
        if (!have[c]) {
                memcpy(data + (uint64_t)c * st.chunk_size, bytes, len);
                have[c] = 1;
                held++;
        }
        req_at[c] = 0;
}

static void send_have_all(void)
{
        uint8_t map[P2S_HAVE_MAX];
        memset(map, 0xff, sizeof(map));
        for (uint64_t first = 0; first < st.chunk_count; first += 65536) {
                uint64_t bits = st.chunk_count - first;
                if (bits > 65536)
                        bits = 65536;
                struct p2s_hdr h = hdr_of(P2S_HAVE, 0, (uint32_t)first);
                tcp_send(&h, map, (uint32_t)((bits + 7) / 8));
        }
}

static void frag_in(const struct p2s_msg *m)
{
        struct p2s_frag f;
        wire_get_frag(m->body, &f);
        uint32_t c = m->hdr.chunk;
        if (m->hdr.type == P2S_FRAG) {
                if (f.kind == P2S_UPLOAD || !started || c >= st.chunk_count || f.chunk_len != chunk_len(c))
                        return;
                if (opt.spoof_fd >= 0) {
                        /* every fragment of the chunk again, to the victim */
                        uint8_t sb[P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX];
                        struct p2s_frag_ack n = { .kind = f.kind, .base = 0 };
                        wire_put_frag_ack(sb, &n);
                        unsigned bytes = ((unsigned)f.count + 7) / 8;
                        if (bytes > P2S_NACK_MAP_MAX)
                                bytes = P2S_NACK_MAP_MAX;
                        memset(sb + P2S_FRAG_ACK_SIZE, 0xff, bytes);
                        struct p2s_hdr sh = hdr_of(P2S_FRAG_NACK, m->hdr.flags, c);
                        spoof_send(&sh, sb, P2S_FRAG_ACK_SIZE + bytes);
                }
                struct p2s_frag_ack a = { .kind = f.kind };
                uint8_t ab[P2S_FRAG_ACK_SIZE];
                wire_put_frag_ack(ab, &a);
                struct p2s_hdr h = hdr_of(P2S_FRAG_ACK, m->hdr.flags, c);
                if (have[c]) {
                        udp_send(&h, ab, sizeof(ab));
                        return;
                }
                if (!fragmap[c] && !(fragmap[c] = calloc(f.count, 1)))
                        die("calloc");
                uint32_t off = (uint32_t)f.index * f.frag_size;
                memcpy(data + (uint64_t)c * st.chunk_size + off, m->body + P2S_FRAG_SIZE,
                       m->hdr.body_len - P2S_FRAG_SIZE);
                fragmap[c][f.index] = 1;
                uint16_t missing = 0, first = 0;
                for (uint16_t i = f.count; i-- > 0;)
                        if (!fragmap[c][i])
                                missing++, first = i;
                if (!missing) {
                        free(fragmap[c]);
                        fragmap[c] = NULL;
                        have[c] = 1;
                        held++;
                        req_at[c] = 0;
                        udp_send(&h, ab, sizeof(ab));
                } else if (f.index == f.count - 1) {
                        uint8_t nb[P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX] = { 0 };
                        struct p2s_frag_ack n = { .kind = f.kind, .base = first };
                        wire_put_frag_ack(nb, &n);
                        unsigned span = (unsigned)(f.count - first);
                        if (span > P2S_NACK_MAP_MAX * 8)
                                span = P2S_NACK_MAP_MAX * 8;
                        for (unsigned i = 0; i < span; i++)
                                if (!fragmap[c][first + i])
                                        nb[P2S_FRAG_ACK_SIZE + i / 8] |= (uint8_t)(1u << (i % 8));
                        h.type = P2S_FRAG_NACK;
                        udp_send(&h, nb, P2S_FRAG_ACK_SIZE + (span + 7) / 8);
                }
        } else if (m->hdr.type == P2S_FRAG_NACK && f.kind == P2S_UPLOAD && c < st.chunk_count && have[c]) {
                struct p2s_frag_ack a;
                wire_get_frag_ack(m->body, &a);
                uint8_t *b = chunk_copy(c);
                if (opt.corrupt)
                        for (uint32_t i = 0; i < chunk_len(c); i += 97)
                                b[i] ^= 0x5a;
                send_frags(c, b, chunk_len(c), m->body + P2S_FRAG_ACK_SIZE, a.base);
                free(b);
        }
}

static void handle(const struct p2s_msg *m, bool on_tcp)
{
        const struct p2s_hdr *h = &m->hdr;
        switch (h->type) {
        case P2S_START:
                wire_get_start(m->body, &st);
                data = calloc(st.file_size ? st.file_size : 1, 1);
                have = calloc(st.chunk_count + 1, 1);
                req_at = calloc(st.chunk_count + 1, sizeof(*req_at));
                fragmap = calloc(st.chunk_count + 1, sizeof(*fragmap));
                if (!data || !have || !req_at || !fragmap)
                        die("calloc");
                started = true;
                break;
        case P2S_MANIFEST_END:
                if (opt.claim)
                        send_have_all();
                relay = true;
                break;
        case P2S_SHARE:
        case P2S_DATA:
                got_chunk(h->chunk, m->body, h->body_len);
                break;
        case P2S_QUERY:
                if (started)
                        query(h->chunk);
                break;
        case P2S_COMPLETE:
                complete_acked = true;
                break;
        case P2S_PING:
                if (!(h->flags & P2S_F_ACK))
                        ctl(P2S_PING, P2S_F_ACK, P2S_NO_CHUNK);
                break;
        case P2S_DONE:
                ctl(P2S_BYE, 0, P2S_NO_CHUNK);
                printf("evil: DONE\n");
                exit(0);
        case P2S_ERR: {
                char reason[P2S_MAX_REASON + 1];
                uint16_t code = wire_get_err(m->body, h->body_len, reason, sizeof(reason));
                printf("evil: ERR %u%s: %s\n", code, h->flags & P2S_F_FATAL ? " (fatal)" : "", reason);
                if (h->flags & P2S_F_FATAL)
                        exit(3);
                break;
        }
        case P2S_FRAG:
        case P2S_FRAG_ACK:
        case P2S_FRAG_NACK:
                if (!on_tcp)
                        frag_in(m);
                break;
        default:
                break;
        }
}

/* ---- the loop ----------------------------------------------------------- */

static uint8_t *rx;
static size_t rx_len, rx_cap;

static void tcp_read(void)
{
        if (rx_len == rx_cap)
                die("frame larger than any chunk");
        ssize_t n = recv(tcp, rx + rx_len, rx_cap - rx_len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                printf("evil: the server closed the connection\n");
                exit(4);
        }
        rx_len += (size_t)n;
        size_t off = 0;
        while (rx_len - off >= P2S_HDR_SIZE) {
                struct p2s_hdr h;
                if (wire_decode_hdr(rx + off, rx_len - off, &h) != WIRE_OK) {
                        fprintf(stderr, "evil: bad frame from the server\n");
                        exit(1);
                }
                if (rx_len - off < P2S_HDR_SIZE + (size_t)h.body_len)
                        break;
                struct p2s_msg m;
                if (wire_decode(rx + off, P2S_HDR_SIZE + h.body_len, &m) == WIRE_OK && !opt.silent)
                        handle(&m, true);
                else if (opt.silent && h.type == P2S_ERR && (h.flags & P2S_F_FATAL)) {
                        printf("evil: fatal ERR while silent\n");
                        exit(3);
                }
                off += P2S_HDR_SIZE + h.body_len;
        }
        memmove(rx, rx + off, rx_len - off);
        rx_len -= off;
}

static void udp_read(void)
{
        static uint8_t pkt[P2S_MAX_DGRAM];
        for (int i = 0; i < 64; i++) {
                ssize_t n = recv(udp, pkt, sizeof(pkt), MSG_DONTWAIT);
                if (n <= 0)
                        return;
                struct p2s_msg m;
                if (!opt.silent && wire_decode(pkt, (size_t)n, &m) == WIRE_OK)
                        handle(&m, false);
        }
}

/* The member's own work: REQs for what it lacks, COMPLETE when it holds all. */
static void tick(void)
{
        if (!relay || opt.silent || opt.stop_reading)
                return;
        double t = now();
        static double spoofed_at;
        if (opt.spoof_fd >= 0 && t - spoofed_at >= 0.02) {
                /* control datagrams that once moved a member's address */
                spoofed_at = t;
                struct p2s_hdr h = hdr_of(P2S_PING, 0, P2S_NO_CHUNK);
                spoof_send(&h, NULL, 0);
                for (uint32_t c = 0; c < st.chunk_count; c++)
                        if (!have[c]) {
                                h = hdr_of(P2S_REQ, 0, c);
                                spoof_send(&h, NULL, 0);
                                break;
                        }
        }
        if (opt.flood) {
                for (int i = 0; i < 256 && st.chunk_count; i++) {
                        ctl(P2S_REQ, 0, flood_next);
                        flood_next = (flood_next + 1) % st.chunk_count;
                }
        }
        if (held < st.chunk_count) {
                unsigned open = 0;
                for (uint32_t c = 0; c < st.chunk_count; c++)
                        if (!have[c] && req_at[c] > 0 && t - req_at[c] < 0.5)
                                open++;
                for (uint32_t c = 0; c < st.chunk_count && open < 8; c++)
                        if (!have[c] && (req_at[c] == 0 || t - req_at[c] >= 0.5)) {
                                ctl(P2S_REQ, 0, c);
                                req_at[c] = t;
                                open++;
                        }
                if (opt.bad)
                        bad_indexes(P2S_NO_CHUNK);
        } else if (!complete_acked && t - complete_at >= 0.5) {
                ctl(P2S_COMPLETE, 0, P2S_NO_CHUNK);
                complete_sent = true;
                complete_at = t;
        }
}

static int connect_to(int type, uint16_t port)
{
        int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket");
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
                die("connect");
        return fd;
}

/* h_hello's datagram; h_hello itself asserts through check, which only
 * works inside a test process. */
static size_t hello(uint8_t *out, size_t cap, const char *name, uint64_t token)
{
        uint8_t body[P2S_HELLO_FIXED + P2S_MAX_NAME];
        size_t bl = wire_put_hello(body, sizeof(body), h_test_nonce, NULL, name, strlen(name));
        if (!bl) {
                fprintf(stderr, "evil: cannot encode a HELLO for '%s'\n", name);
                exit(1);
        }
        struct p2s_hdr h = { .type = P2S_HELLO, .token = token, .chunk = P2S_NO_CHUNK, .body_len = (uint32_t)bl };
        return wire_encode(out, cap, &h, body, h.body_len);
}

static void join(uint16_t port, const char *name)
{
        udp = connect_to(SOCK_DGRAM, port);
        uint8_t pkt[512], in[512];
        uint64_t cookie = 0;
        for (int tries = 0; tries < 40; tries++) {
                size_t n = hello(pkt, sizeof(pkt), name, cookie);
                send(udp, pkt, n, 0);
                struct pollfd p = { .fd = udp, .events = POLLIN };
                if (poll(&p, 1, 250) != 1)
                        continue;
                ssize_t r = recv(udp, in, sizeof(in), 0);
                struct p2s_msg m;
                if (r <= 0 || wire_decode(in, (size_t)r, &m) != WIRE_OK)
                        continue;
                if (m.hdr.type == P2S_COOKIE) {
                        cookie = m.hdr.token;
                } else if (m.hdr.type == P2S_WELCOME) {
                        struct p2s_welcome w;
                        wire_get_welcome(m.body, &w);
                        ids = m.hdr;
                        mode = w.control_mode;
                        dgram_size = w.dgram_size;
                        tcp = connect_to(SOCK_STREAM, w.port);
                        struct p2s_hdr at = hdr_of(P2S_ATTACH, 0, P2S_NO_CHUNK);
                        tcp_send(&at, NULL, 0);
                        return;
                } else if (m.hdr.type == P2S_ERR) {
                        fprintf(stderr, "evil: join refused\n");
                        exit(1);
                }
        }
        fprintf(stderr, "evil: no WELCOME\n");
        exit(1);
}

int main(int argc, char **argv)
{
        int i = 1;
        for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
                const char *a = argv[i];
                if (!strcmp(a, "--corrupt-uploads"))
                        opt.corrupt = true;
                else if (!strcmp(a, "--claim"))
                        opt.claim = true;
                else if (!strcmp(a, "--nohave"))
                        opt.nohave = true;
                else if (!strcmp(a, "--req-flood"))
                        opt.flood = true;
                else if (!strcmp(a, "--bad-indexes"))
                        opt.bad = true;
                else if (!strcmp(a, "--stop-reading"))
                        opt.stop_reading = true;
                else if (!strcmp(a, "--silent"))
                        opt.silent = true;
                else if (!strcmp(a, "--spoof-fd") && i + 1 < argc)
                        opt.spoof_fd = atoi(argv[++i]);
                else {
                        fprintf(stderr, "evil: unknown flag %s\n", a);
                        return 2;
                }
        }
        if (argc - i != 2) {
                fprintf(stderr, "usage: evil-peer [FLAGS] PORT NAME\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        server_addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[i])) };
        server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (opt.spoof_fd >= 0) {
                atexit(spoof_report);
                struct sigaction sa = { .sa_handler = on_term };
                sigaction(SIGTERM, &sa, NULL);
        }
        join((uint16_t)atoi(argv[i]), argv[i + 1]);
        struct timeval tv = { .tv_sec = 5 };
        setsockopt(tcp, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        struct sockaddr_in self;
        socklen_t sl = sizeof(self);
        getsockname(tcp, (struct sockaddr *)&self, &sl);
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &self.sin_addr, a, sizeof(a));
        printf("evil: member %u at %s:%u\n", ids.member_id, a, ntohs(self.sin_port));

        if (opt.stop_reading) {
                int small = 4096;
                setsockopt(tcp, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
                /* until the server gives up on it and closes its end */
                for (;;) {
                        struct pollfd p = { .fd = tcp, .events = POLLRDHUP };
                        if (poll(&p, 1, -1) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
                                printf("evil: the server closed the connection\n");
                                return 4;
                        }
                }
        }
        rx_cap = P2S_HDR_SIZE + P2S_MAX_CHUNK;
        rx = malloc(rx_cap);
        if (!rx)
                die("malloc");
        for (;;) {
                struct pollfd p[2] = { { .fd = tcp, .events = POLLIN }, { .fd = udp, .events = POLLIN } };
                int r = poll(p, 2, 20);
                if (got_term)
                        exit(5);
                if (r < 0 && errno != EINTR)
                        die("poll");
                if (p[0].revents)
                        tcp_read();
                if (p[1].revents)
                        udp_read();
                tick();
        }
}
