/* SPDX-License-Identifier: MIT */
/* io/udpdata's receive side over a real 127.0.0.1 socket pair: every
 * datagram reaches the callback intact and with its own boundaries,
 * whether it came alone or in a GRO batch (UDP_SEGMENT on the sender and
 * UDP_GRO on the receiver coalesce on loopback where the kernel can). Only
 * the public udpdata.h API is used. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "core/dgram.h"
#include "io/udpdata.h"
#include "runner.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define MAX_GOT 256

struct got {
        size_t n;
        size_t len[MAX_GOT];
        uint32_t id[MAX_GOT];
        bool intact[MAX_GOT];
        bool from_ok[MAX_GOT];
};

static int rx_fd = -1, tx_fd = -1;
static struct sockaddr_in tx_addr;
static struct udpdata u;
static struct got got;

/* Datagram id of len bytes: the id, then bytes that depend on id and offset. */
static void fill(uint8_t *p, size_t len, uint32_t id)
{
        for (size_t i = 0; i < len; i++)
                p[i] = (uint8_t)(id * 131 + i * 7 + 1);
        if (len >= 4)
                memcpy(p, &id, 4);
}

static void on_dgram(const uint8_t *pkt, size_t len, const struct sockaddr *from, socklen_t fromlen, void *ud)
{
        struct got *g = ud;
        ck_assert_uint_lt(g->n, MAX_GOT);
        size_t k = g->n++;
        g->len[k] = len;
        uint32_t id = 0;
        if (len >= 4)
                memcpy(&id, pkt, 4);
        g->id[k] = id;
        uint8_t *want = malloc(len ? len : 1);
        fill(want, len, id);
        g->intact[k] = memcmp(want, pkt, len) == 0;
        free(want);
        const struct sockaddr_in *sin = (const struct sockaddr_in *)from;
        g->from_ok[k] = fromlen == sizeof(*sin) && sin->sin_family == AF_INET && sin->sin_port == tx_addr.sin_port &&
                        sin->sin_addr.s_addr == tx_addr.sin_addr.s_addr;
}

static void pair_setup(void)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sa);
        rx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        tx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert(rx_fd >= 0 && tx_fd >= 0);
        /* room for everything a test sends before it receives */
        int big = 4 << 20;
        setsockopt(rx_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
        ck_assert_int_eq(bind(rx_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(getsockname(rx_fd, (struct sockaddr *)&sa, &sl), 0);
        ck_assert_int_eq(connect(tx_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        sl = sizeof(tx_addr);
        ck_assert_int_eq(getsockname(tx_fd, (struct sockaddr *)&tx_addr, &sl), 0);
        udpdata_init(&u, rx_fd);
        memset(&got, 0, sizeof(got));
}

static void pair_teardown(void)
{
        close(rx_fd);
        close(tx_fd);
        rx_fd = tx_fd = -1;
}

static void send_one(size_t len, uint32_t id)
{
        uint8_t *b = malloc(len ? len : 1);
        fill(b, len, id);
        ck_assert_int_eq(send(tx_fd, b, len, 0), (ssize_t)len);
        free(b);
}

/* One send with UDP_SEGMENT: n datagrams of seg bytes, the last last bytes,
 * ids first, first + 1, ... False if the kernel has no GSO. */
static bool send_gso(uint16_t seg, unsigned n, size_t last, uint32_t first)
{
        size_t total = (size_t)seg * (n - 1) + last;
        uint8_t *b = malloc(total);
        for (unsigned i = 0; i < n; i++)
                fill(b + (size_t)i * seg, i == n - 1 ? last : seg, first + i);
        union { char buf[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } ctl;
        memset(&ctl, 0, sizeof(ctl));
        struct iovec iov = { b, total };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf) };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = IPPROTO_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
        ssize_t r = sendmsg(tx_fd, &mh, 0);
        free(b);
        if (r < 0 && (errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP || errno == EIO))
                return false;
        ck_assert_int_eq(r, (ssize_t)total);
        return true;
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Receives until want datagrams came (or 5 s passed); the number of
 * udpdata_recv calls that delivered something. */
static unsigned recv_all(size_t want, uint64_t *truncated)
{
        unsigned calls = 0;
        double deadline = now_s() + 5;
        while (got.n < want) {
                struct pollfd pfd = { .fd = rx_fd, .events = POLLIN };
                int ms = (int)((deadline - now_s()) * 1000);
                ck_assert_msg(ms > 0 && poll(&pfd, 1, ms) == 1, "%zu of %zu datagrams after 5 s", got.n, want);
                if (udpdata_recv(&u, 4, on_dgram, &got, truncated))
                        calls++;
        }
        /* and nothing more than was sent */
        ck_assert_uint_eq(udpdata_recv(&u, 4, on_dgram, &got, truncated), 0);
        ck_assert_uint_eq(got.n, want);
        return calls;
}

static void assert_got(size_t k, uint32_t id, size_t len)
{
        ck_assert_msg(got.id[k] == id && got.len[k] == len, "datagram %zu: id %u, %zu bytes; want id %u, %zu bytes", k,
                      got.id[k], got.len[k], id, len);
        ck_assert_msg(got.intact[k], "datagram %zu (id %u) damaged", k, id);
        ck_assert_msg(got.from_ok[k], "datagram %zu: wrong source address", k);
}

/* Separate datagrams of different sizes keep their sizes and order. */
START_TEST(single_datagrams)
{
        /* 65507: the largest UDP payload over IPv4 */
        static const size_t sizes[] = { 4, 100, 1200, 1200, 1200, 5, 9000, 1472, 65507, 17 };
        const size_t n = sizeof(sizes) / sizeof(sizes[0]);
        for (size_t i = 0; i < n; i++)
                send_one(sizes[i], (uint32_t)i);
        uint64_t truncated = 0;
        recv_all(n, &truncated);
        ck_assert_uint_eq(truncated, 0);
        for (size_t i = 0; i < n; i++)
                assert_got(i, (uint32_t)i, sizes[i]);
}
END_TEST

/* More datagrams than one recvmmsg takes: all come, in order. */
START_TEST(many_datagrams)
{
        const size_t n = 200;
        for (size_t i = 0; i < n; i++)
                send_one(64 + i, (uint32_t)(1000 + i));
        recv_all(n, NULL);
        for (size_t i = 0; i < n; i++)
                assert_got(i, (uint32_t)(1000 + i), 64 + i);
}
END_TEST

/* A GSO send: the kernel may hand it over coalesced (one buffer, the
 * segment size in a UDP_GRO cmsg); udpdata_recv splits it again. Either
 * way each datagram comes alone, with its own size. */
START_TEST(gso_batch_split)
{
        ck_assert_msg(u.gro || !u.gso, "GSO without GRO?");
        if (!send_gso(1200, 11, 500, 1)) {
                fprintf(stderr, "gso_batch_split: no UDP_SEGMENT here; nothing to split\n");
                return;
        }
        /* a second batch whose last segment is full, between two singles */
        send_one(300, 100);
        ck_assert(send_gso(1000, 5, 1000, 200));
        send_one(40, 101);
        uint64_t truncated = 0;
        unsigned calls = recv_all(11 + 1 + 5 + 1, &truncated);
        ck_assert_uint_eq(truncated, 0);
        size_t k = 0;
        for (unsigned i = 0; i < 11; i++, k++)
                assert_got(k, 1 + i, i == 10 ? 500 : 1200);
        assert_got(k++, 100, 300);
        for (unsigned i = 0; i < 5; i++, k++)
                assert_got(k, 200 + i, 1000);
        assert_got(k++, 101, 40);
        fprintf(stderr, "gso_batch_split: GRO %s, %u receiving calls for 18 datagrams\n", u.gro ? "on" : "off",
                calls);
}
END_TEST

/* The largest GSO batch the kernel takes, in 1472-byte segments. */
START_TEST(gso_largest_batch)
{
        const unsigned n = 44;          /* 44 * 1472 = 64768 bytes, below the 64 KiB limit */
        if (!send_gso(1472, n, 1472, 5000)) {
                fprintf(stderr, "gso_largest_batch: no UDP_SEGMENT here\n");
                return;
        }
        uint64_t truncated = 0;
        recv_all(n, &truncated);
        ck_assert_uint_eq(truncated, 0);
        for (unsigned i = 0; i < n; i++)
                assert_got(i, 5000 + i, 1472);
}
END_TEST

/* Nothing waiting: nothing delivered, no error, nothing counted. */
/* A datagram's handler may send on the same udpdata (p2sd answers a
 * FRAG_ACK by sending more chunk data) while the rest of the batch is still
 * being read: the receive side must keep its own message headers. Before it
 * did, such a send rewrote the batch's lengths and p2sd dropped good
 * datagrams as "bad length". */
static struct dgram_tx *reentrant_tx;
static struct sockaddr_in sink_addr;

static void on_dgram_then_send(const uint8_t *pkt, size_t len, const struct sockaddr *from, socklen_t fromlen,
                               void *ud)
{
        on_dgram(pkt, len, from, fromlen, ud);
        struct p2s_hdr tmpl = { .swarm_id = 1, .member_id = 2, .token = 3 };
        struct buf *b = buf_new(200 * 1024);  /* several GSO messages: the whole send side is rewritten */
        ck_assert_ptr_nonnull(b);
        memset(b->data, 0x5a, b->len);
        ck_assert_int_eq(dgram_tx_push(reentrant_tx, P2S_DATA, 0, (uint32_t)got.n, b, 0), 0);
        buf_unref(b);
        ck_assert_int_ge(udpdata_flush(&u, reentrant_tx, &tmpl, (struct sockaddr *)&sink_addr, sizeof(sink_addr), 0),
                         0);
}

START_TEST(handler_sends_while_batch_is_read)
{
        int sink = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sink_addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sink_addr);
        ck_assert_int_eq(bind(sink, (struct sockaddr *)&sink_addr, sizeof(sink_addr)), 0);
        ck_assert_int_eq(getsockname(sink, (struct sockaddr *)&sink_addr, &sl), 0);
        struct dgram_config cfg;
        dgram_config_defaults(&cfg, 1452);
        reentrant_tx = dgram_tx_new(&cfg);
        ck_assert_ptr_nonnull(reentrant_tx);
        for (uint32_t i = 0; i < 24; i++)
                send_one(100 + 37 * i, 500 + i);
        /* all 24 are queued: one recvmmsg batch holds them all */
        size_t n = 0;
        while (got.n < 24 && n++ < 100) {
                struct pollfd pfd = { .fd = rx_fd, .events = POLLIN };
                ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
                udpdata_recv(&u, 4, on_dgram_then_send, &got, NULL);
        }
        ck_assert_uint_eq(got.n, 24);
        for (uint32_t i = 0; i < 24; i++)
                assert_got(i, 500 + i, 100 + 37 * i);
        dgram_tx_free(reentrant_tx);
        close(sink);
}
END_TEST

START_TEST(empty_socket)
{
        uint64_t truncated = 7;
        ck_assert_uint_eq(udpdata_recv(&u, 8, on_dgram, &got, &truncated), 0);
        ck_assert_uint_eq(truncated, 7);
        ck_assert_uint_eq(got.n, 0);
}
END_TEST

static Suite *udpdata_suite(void)
{
        Suite *s = suite_create("udpdata");
        TCase *tc = tcase_create("recv");
        tcase_add_checked_fixture(tc, pair_setup, pair_teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, single_datagrams);
        tcase_add_test(tc, many_datagrams);
        tcase_add_test(tc, gso_batch_split);
        tcase_add_test(tc, gso_largest_batch);
        tcase_add_test(tc, empty_socket);
        tcase_add_test(tc, handler_sends_while_batch_is_read);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(udpdata_suite);
