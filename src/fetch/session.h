/* SPDX-License-Identifier: MIT */
/* p2s-fetch's internals shared by its I/O files, one concern each:
 *   client.c   the session: member actions, server messages, the TCP
 *              connection, the member's timer, the whole-file check
 *   resuming.c an earlier run resumed: OUTPUT.part.p2s loaded, checked
 *              and saved, its chunks re-verified, HAVE; the --sha256 pin
 *   link.c     the TCP connection and the UDP socket to the server
 *   join.c     HELLO -> COOKIE -> HELLO(cookie) -> WELCOME, connect, ATTACH
 * Chunk data over UDP is io/datachan's. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include "fetch/client.h"
#include "fetch/progress.h"
#include "fetch/resume.h"
#include "fetch/store.h"
#include "io/datachan.h"
#include "proto/wire.h"
#include "util/net.h"
#include "util/outq.h"
#include "util/stream.h"

#define VERIFY_SLICE     (8u << 20)     /* bytes hashed per loop turn */

enum join_state { JOIN_HELLO, JOIN_CONNECTING, JOIN_ATTACHED, JOIN_DONE };

struct client {
        const struct fetch_options *opt;
        struct loop *loop;
        struct sockaddr_storage srv;
        socklen_t srvlen;
        char srv_desc[NET_ADDRSTRLEN];
        int udp_fd, tcp_fd;
        enum join_state join;
        uint64_t cookie, token;
        uint8_t nonce[P2S_NONCE_SIZE];  /* of our HELLOs: an answer without it is not the server's */
        uint64_t foreign_replies;       /* join answers dropped for a wrong nonce */
        char busy[P2S_MAX_REASON + 1];  /* the server's last BUSY while joining */
        uint32_t swarm_id, member_id;
        uint64_t join_started, hello_rto;
        struct loop_timer join_timer;   /* HELLO retries and the join's deadline */
        struct stream_rx rx;
        struct outq q;
        bool want_out;
        int tcp_err;                    /* a write failed: reported by settle */
        struct loop_defer settle;
        int control;                    /* what the server said in WELCOME */
        struct p2s_start start;         /* the source's size, mtime and mode */
        struct dgram_config dgram;
        struct datachan data;           /* --control=tcp: chunk data over UDP */
        struct datachan_peer *peer;
        struct member *mb;
        struct loop_timer member_timer; /* at member_next_deadline */
        struct store store;
        struct store_verify *verify;    /* the whole-file hash, a slice per turn */
        struct loop_defer verify_step;
        /* Resuming (resume.h): the state file, what an earlier run left,
         * and what this run wrote. */
        char *state_path;
        struct resume_state prior;      /* loaded at PREPARE, when size and chunk size match */
        bool resuming;                  /* prior matches START: checked against MANIFEST_END */
        bool checking;                  /* prior's chunks are being read back */
        uint32_t check_pos, check_bad;
        uint8_t *check_buf;
        uint8_t end_hash[P2S_HASH_SIZE];        /* MANIFEST_END, held back while checking */
        struct loop_defer check_step;
        struct bitmap written;          /* chunks in OUTPUT.part this run wrote or verified */
        bool state_ok;                  /* the manifest is known: the state may be saved */
        bool dirty;                     /* written since the last save */
        bool synced;                    /* the last save was durable (flushed) */
        size_t saved;                   /* chunks listed by the last save */
        struct loop_timer save_timer;
        FILE *rtt;
        uint64_t t0;
        struct progress progress;
        struct loop_timer progress_timer;
        int exit_code;                  /* enum fetch_exit, once JOIN_DONE */
        int fail_code;                  /* the exit status of a failure reported to the member */
        client_done_fn done;
        void *done_ud;
        char reason[P2S_MAX_REASON + 128];
};

/* client.c */
/* Ends the session with an exit status (enum fetch_exit); calls done. */
void client_finish(struct client *c, int code, const char *reason);
/* A local failure with its exit status: ends the member, which says BYE. */
void client_fail(struct client *c, int code, const char *reason);
/* Carries out the member's actions and re-arms its timer. */
void client_drain(struct client *c);
/* A message from the server, decoded and checked as ours. */
void client_on_server_msg(struct client *c, const struct p2s_msg *msg, struct buf *body, bool over_tcp);

/* resuming.c */
/* PREPARE: OUTPUT.part opened, kept when an earlier run's state fits START. */
int client_prepare(struct client *c, uint64_t size, char *why, size_t whylen);
/* A chunk about to be written over one the earlier run listed. */
void client_guard_prior(struct client *c, uint32_t chunk, const struct buf *data);
void client_forget_prior(struct client *c, bool say);
void client_on_manifest_end(struct client *c, const uint8_t *hash, uint64_t now);
void client_send_have(struct client *c, uint32_t first, uint32_t count);
void client_state_arm(struct client *c);
void client_state_save(struct client *c, bool durable);
void client_save_timer(struct loop *l, struct loop_timer *t, void *ud);
void client_check_step(struct loop *l, void *ud);

/* link.c */
void client_fill_hdr(struct client *c, struct p2s_hdr *h, uint8_t type, uint32_t chunk, uint32_t body_len);
/* 0, or -errno of send(2): -ECONNREFUSED is an ICMP port unreachable
 * heard for an earlier datagram. */
int client_udp_send(struct client *c, const struct p2s_hdr *h, const void *body);
void client_tcp_send(struct client *c, const struct p2s_hdr *h);
void client_tcp_flush(struct client *c);
void client_tcp_event(struct loop *l, int fd, uint32_t events, void *ud);
void link_udp_event(struct loop *l, int fd, uint32_t events, void *ud);
long link_tcp_hdr(const uint8_t *raw, void *ud);
int link_tcp_frame(const uint8_t *raw, struct buf *body, void *ud);
/* Deferred after a failed write. */
void link_settle(struct loop *l, void *ud);
extern const struct datachan_ops client_data_ops;

/* join.c */
void join_start(struct client *c);
/* The kernel heard ICMP port unreachable for a HELLO: ends the join. */
void join_refused(struct client *c);
/* A datagram while joining (c->join == JOIN_HELLO). */
void join_on_datagram(struct client *c, const struct p2s_msg *msg);
/* The TCP connection became writable or failed while connecting. */
void join_on_connect(struct client *c, uint32_t events);
