/* SPDX-License-Identifier: MIT */
/* The one table from the end of a session to p2s-fetch's exit status. */
#include <stddef.h>
#include <p2s/proto.h>
#include "core/member.h"
#include "fetch/exitcode.h"

/* A fatal ERR from the server, by its code: what the user can do about
 * it decides the number (a name typo is not a dead swarm). */
/* A fatal ERR from the server, by its code and by when it came (answering
 * our HELLO, or in the swarm): what the user can do about it decides the
 * number (a name typo is not a dead swarm; an unreadable source at HELLO
 * is a refusal, gone mid-swarm a failed swarm). */
static const struct {
        uint16_t err;
        int at_join, in_swarm;
} err_table[] = {
        { P2S_ERR_NOFILE, FETCH_EXIT_REFUSED, FETCH_EXIT_SWARM },
        { P2S_ERR_SECRET, FETCH_EXIT_REFUSED, FETCH_EXIT_REFUSED },
        { P2S_ERR_AUTH, FETCH_EXIT_REFUSED, FETCH_EXIT_SWARM },
        { P2S_ERR_VERSION, FETCH_EXIT_REFUSED, FETCH_EXIT_REFUSED },
        { P2S_ERR_SOURCE, FETCH_EXIT_REFUSED, FETCH_EXIT_SWARM },
        { P2S_ERR_BUSY, FETCH_EXIT_UNREACHABLE, FETCH_EXIT_SWARM },
        { P2S_ERR_SHUTDOWN, FETCH_EXIT_GONE, FETCH_EXIT_GONE },
        { P2S_ERR_LOST, FETCH_EXIT_SWARM, FETCH_EXIT_SWARM },
        { P2S_ERR_SWARM, FETCH_EXIT_SWARM, FETCH_EXIT_SWARM },
        { P2S_ERR_PROTO, FETCH_EXIT_SWARM, FETCH_EXIT_SWARM },
};

static const struct {
        int member_exit;
        int code;
} member_table[] = {
        { MEMBER_EXIT_OK, FETCH_EXIT_OK },        { MEMBER_EXIT_FAIL, FETCH_EXIT_FAIL },
        { MEMBER_EXIT_GONE, FETCH_EXIT_GONE },    { MEMBER_EXIT_VERIFY, FETCH_EXIT_VERIFY },
        { MEMBER_EXIT_SWARM, FETCH_EXIT_SWARM },
};

static const char *const names[] = {
        [FETCH_EXIT_OK] = "done",
        [FETCH_EXIT_FAIL] = "failed",
        [FETCH_EXIT_USAGE] = "usage error",
        [FETCH_EXIT_UNREACHABLE] = "cannot reach the server",
        [FETCH_EXIT_REFUSED] = "not served or refused",
        [FETCH_EXIT_SWARM] = "swarm failed",
        [FETCH_EXIT_GONE] = "server went away",
        [FETCH_EXIT_LOCAL] = "local I/O error",
        [FETCH_EXIT_VERIFY] = "verification failed",
};

int fetch_exit_for_join_err(uint16_t err)
{
        for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
                if (err_table[i].err == err)
                        return err_table[i].at_join;
        return FETCH_EXIT_REFUSED;
}

int fetch_exit_for(int member_exit, uint16_t err)
{
        if (member_exit == MEMBER_EXIT_SERVER) {
                for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
                        if (err_table[i].err == err)
                                return err_table[i].in_swarm;
                return FETCH_EXIT_SWARM;
        }
        for (size_t i = 0; i < sizeof(member_table) / sizeof(member_table[0]); i++)
                if (member_table[i].member_exit == member_exit)
                        return member_table[i].code;
        return FETCH_EXIT_FAIL;
}

const char *fetch_exit_name(int code)
{
        if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]) || !names[code])
                return "failed";
        return names[code];
}
