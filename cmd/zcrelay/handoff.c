/*
 * handoff.c - framing of the hand-over protocol (handoff.h): one message
 * per sendmsg on a SOCK_SEQPACKET socketpair, so a message is never
 * split or merged and its descriptors arrive with it.
 *
 * The kernel's SCM_MAX_FD is 253 descriptors a message: callers batch.
 * Descriptors are received with MSG_CMSG_CLOEXEC so that a later
 * upgrade (B starting C) never leaks them into C. A message that fails
 * a check has its descriptors closed here: whatever recv returns, no fd
 * is left open that the caller does not know of.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "handoff.h"

static_assert(sizeof(struct zcr_ho_hdr) == 24, "the wire head is 24 bytes");

static uint16_t ho_version = ZCR_HO_VERSION;

void zcr_ho_set_version(unsigned version)
{
	ho_version = (uint16_t)version;
}

int zcr_ho_send(int sock, unsigned type, uint32_t arg, const void *data,
                size_t len, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * ZCR_HO_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct zcr_ho_hdr h = {
	        ZCR_HO_MAGIC, ho_version, (uint16_t)type, nfds, (uint32_t)len,
	        arg,          0};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)(uintptr_t)data, len}};
	struct msghdr mh = {0};
	struct cmsghdr *cm;
	ssize_t n;

	if (len > ZCR_HO_MAX_LEN || nfds > ZCR_HO_MAX_FDS || (len && !data))
		return -EINVAL;
	mh.msg_iov = iov;
	mh.msg_iovlen = len ? 2 : 1;
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	return 0;
}

void zcr_ho_close_session(const struct zcr_ho_batch *b, unsigned i)
{
	int fds[ZC_RELAY_STATE_FDS], n, k;

	n = zc_relay_state_fds(b->e[i].relay, sizeof(b->e[i].relay), b->fds,
	                       b->nfds, fds);
	for (k = 0; k < n; k++)
		close(fds[k]);
}

void zcr_ho_msg_close(struct zcr_ho_msg *m)
{
	unsigned i;

	for (i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

/* Waits until sock is readable. 0, -ETIMEDOUT or -errno. */
static int ho_wait(int sock, int timeout_ms)
{
	struct pollfd p = {sock, POLLIN, 0};
	int n;

	do {
		n = poll(&p, 1, timeout_ms);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

/* Moves the SCM_RIGHTS descriptors of mh into m. */
static void ho_take_fds(struct msghdr *mh, struct zcr_ho_msg *m)
{
	struct cmsghdr *cm;
	size_t n;

	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (n > ZCR_HO_MAX_FDS - m->nfds)
			n = ZCR_HO_MAX_FDS - m->nfds; /* cannot happen */
		memcpy(m->fds + m->nfds, CMSG_DATA(cm), n * sizeof(int));
		m->nfds += (unsigned)n;
	}
}

/* The checks of a received message of n bytes (fds taken already). */
static int ho_check(const struct msghdr *mh, const struct zcr_ho_msg *m,
                    ssize_t n)
{
	if ((size_t)n < sizeof(m->h) || m->h.magic != ZCR_HO_MAGIC)
		return -EPROTO;
	if (m->h.version != ZCR_HO_VERSION)
		return -EPROTONOSUPPORT;
	if ((mh->msg_flags & (MSG_CTRUNC | MSG_TRUNC)) ||
	    (size_t)n != sizeof(m->h) + m->h.len || m->h.nfds != m->nfds)
		return -EPROTO;
	return 0;
}

int zcr_ho_recv(int sock, struct zcr_ho_msg *m, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * ZCR_HO_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {{&m->h, sizeof(m->h)},
	                       {m->data, ZCR_HO_MAX_LEN}};
	struct msghdr mh = {0};
	ssize_t n;
	int err;

	m->nfds = 0;
	memset(&m->h, 0, sizeof(m->h));
	err = ho_wait(sock, timeout_ms);
	if (err)
		return err;
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	if (n == 0)
		return -EPIPE;
	ho_take_fds(&mh, m);
	err = ho_check(&mh, m, n);
	if (err) {
		zcr_ho_msg_close(m);
		return err;
	}
	m->data[m->h.len] = '\0';
	return 0;
}
