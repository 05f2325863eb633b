/*
 * handoff.h - the hand-over protocol between a running zcrelay (A) and
 * the new binary it starts on SIGUSR2 (B): messages on a SOCK_SEQPACKET
 * socketpair, descriptors as SCM_RIGHTS. docs/internals/handoff.md
 * describes the layout, the sequence and who closes which fd when.
 *
 * Both ends run on the same machine: fields are in host byte order.
 */
#ifndef ZCRELAY_HANDOFF_H
#define ZCRELAY_HANDOFF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cfg.h"
#include "zcrelay.h"

/* The environment variable that gives B its end of the socketpair. */
#define ZCR_HO_ENV "ZCRELAY_HANDOFF_FD"

#define ZCR_HO_MAGIC   0x4f48435au /* "ZCHO" in memory on little endian */
#define ZCR_HO_VERSION 1
/* SCM_RIGHTS carries at most SCM_MAX_FD (253) descriptors a message. */
#define ZCR_HO_MAX_FDS 253
#define ZCR_HO_MAX_LEN 32768 /* payload bytes (a SESSIONS batch) */

/* Message types. Phase 2 (sessions) adds handlers, not a protocol. */
enum zcr_ho_type {
	ZCR_HO_HELLO = 1,         /* A->B: A's pid; B->A: B's pid, config ok */
	ZCR_HO_LISTENERS = 2,     /* A->B: up to 253 listening sockets */
	ZCR_HO_LISTENERS_END = 3, /* A->B: arg = how many were sent */
	ZCR_HO_READY = 4,         /* B->A: B accepts on all of them */
	ZCR_HO_DONE = 5,          /* A->B: A stopped accepting */
	ZCR_HO_ERROR = 6,         /* either way: payload = reason; gives up */
	ZCR_HO_SESSIONS = 7,      /* A->B: arg = batch number; sessions */
	ZCR_HO_SESSIONS_ACK = 8,  /* B->A: arg = batch; a byte per session */
};

struct zcr_session;

/*
 * One established session in a SESSIONS message: its relay's record
 * (zc_relay_detach, whose fd indexes count in the message's fds) and
 * what the daemon keeps of it. Sessions per message: at most
 * ZCR_HO_BATCH, so that their fds fit one SCM_RIGHTS message.
 */
struct zcr_ho_sess {
	uint8_t relay[ZC_RELAY_STATE_LEN];
	char route[ZCR_NAME_MAX];         /* the route's name */
	char upstream[ZCR_ADDR_STR];      /* the upstream, as configured */
	struct sockaddr_storage peer;     /* the client (PROXY source) */
	struct sockaddr_storage tcp_peer; /* who connected to us */
	uint32_t peer_len, tcp_peer_len;
	uint64_t age_ms; /* since the client was accepted */
};

#define ZCR_HO_BATCH (ZCR_HO_MAX_FDS / ZC_RELAY_STATE_FDS) /* 42 */

/* A batch on its way: what A's worker detached, what B answered. */
struct zcr_ho_batch {
	unsigned n; /* sessions in e[] */
	struct zcr_ho_sess e[ZCR_HO_BATCH];
	int fds[ZCR_HO_BATCH * ZC_RELAY_STATE_FDS];
	unsigned nfds;
	struct zcr_session *s[ZCR_HO_BATCH]; /* A: the sessions handed */
	uint8_t ok[ZCR_HO_BATCH];            /* 1: B adopted e[i] */
	unsigned waiting; /* A: sessions seen not relaying yet */
};

/* The fixed head of every message; payload and fds follow. */
struct zcr_ho_hdr {
	uint32_t magic;    /* ZCR_HO_MAGIC */
	uint16_t version;  /* ZCR_HO_VERSION of the sender */
	uint16_t type;     /* enum zcr_ho_type */
	uint32_t nfds;     /* descriptors attached (SCM_RIGHTS) */
	uint32_t len;      /* payload bytes after the header */
	uint32_t arg;      /* per type: a pid, a count, a batch number */
	uint32_t reserved; /* 0 */
};

/* A received message: its head, payload (NUL-terminated) and fds. */
struct zcr_ho_msg {
	struct zcr_ho_hdr h;
	char data[ZCR_HO_MAX_LEN + 1];
	int fds[ZCR_HO_MAX_FDS];
	unsigned nfds;
};

/*
 * zcr_ho_send - send one message of type with arg, len payload bytes at
 * data (len <= ZCR_HO_MAX_LEN) and nfds descriptors (<= ZCR_HO_MAX_FDS;
 * the sender keeps its copies). The version is ZCR_HO_VERSION unless
 * zcr_ho_set_version() changed it. Blocks as the socket does (callers
 * set SO_SNDTIMEO). Returns 0, -EINVAL, or -errno of sendmsg (-EPIPE:
 * the peer is gone).
 */
int zcr_ho_send(int sock, unsigned type, uint32_t arg, const void *data,
                size_t len, const int *fds, unsigned nfds);

/*
 * zcr_ho_recv - receive one message into m, waiting at most timeout_ms
 * (-1: forever). The fds in m (close-on-exec) belong to the caller after
 * a return of 0; on any error none is left open. Returns 0, -ETIMEDOUT,
 * -EPIPE (the peer closed its end), -EPROTO (not a hand-over message:
 * bad magic, short, truncated fds), -EPROTONOSUPPORT (a version this
 * binary does not know: m->h tells which), or -errno.
 */
int zcr_ho_recv(int sock, struct zcr_ho_msg *m, int timeout_ms);

/* Closes this process's copies of the fds the relay record of b->e[i]
 * names (a session taken over elsewhere, or one that cannot resume). */
void zcr_ho_close_session(const struct zcr_ho_batch *b, unsigned i);

/* Closes the fds of m. */
void zcr_ho_msg_close(struct zcr_ho_msg *m);

/* Test seam: the version zcr_ho_send() writes from now on. */
void zcr_ho_set_version(unsigned version);

#endif
