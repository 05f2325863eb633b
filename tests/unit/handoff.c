/*
 * unit/handoff.c - the upgrade's hand-over framing (cmd/zcrelay/handoff.c):
 * what passes, every way a message can be wrong (each prefix of a good
 * one, bad magic, another version, lengths and fd counts that disagree),
 * and that a refused message never leaves a descriptor open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "runner.h"
#include "tnet.h"
#include "handoff.h"

static int pair(int sv[2])
{
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	return T_PASS;
}

/* Sends len raw bytes (a head and what follows) with nfds copies of fd. */
static int send_raw(int sock, const void *buf, size_t len, int fd,
                    unsigned nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)(uintptr_t)buf, len};
	struct msghdr mh = {0};
	struct cmsghdr *cm;
	int fds[4] = {fd, fd, fd, fd};

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	ASSERT_EQ(sendmsg(sock, &mh, 0), (ssize_t)len);
	return T_PASS;
}

static struct zcr_ho_msg *msg_new(void)
{
	return calloc(1, sizeof(struct zcr_ho_msg));
}

/* A message with a payload and descriptors arrives whole, and its fds
 * are new descriptors of the same files, close-on-exec. */
TEST(test_handoff_roundtrip)
{
	struct zcr_ho_msg *m = msg_new();
	int sv[2], p[2], fds[3];
	char c = 0;

	ASSERT_TRUE(m);
	ASSERT_EQ(pair(sv), T_PASS);
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	fds[0] = fds[1] = fds[2] = p[1];
	ASSERT_OK(zcr_ho_send(sv[0], ZCR_HO_ERROR, 42, "why", 3, fds, 3));
	ASSERT_OK(zcr_ho_recv(sv[1], m, 1000));
	ASSERT_EQ(m->h.magic, ZCR_HO_MAGIC);
	ASSERT_EQ(m->h.version, ZCR_HO_VERSION);
	ASSERT_EQ(m->h.type, ZCR_HO_ERROR);
	ASSERT_EQ(m->h.arg, 42);
	ASSERT_STREQ(m->data, "why");
	ASSERT_EQ(m->nfds, 3);
	ASSERT_EQ(fcntl(m->fds[2], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ASSERT_EQ(write(m->fds[2], "x", 1), 1);
	ASSERT_EQ(read(p[0], &c, 1), 1);
	ASSERT_EQ(c, 'x');
	zcr_ho_msg_close(m);
	ASSERT_EQ(m->nfds, 0);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	free(m);
	return T_PASS;
}

/* 253 descriptors fit in one message (SCM_MAX_FD); 254 do not, and a
 * payload beyond ZCR_HO_MAX_LEN neither. */
TEST(test_handoff_batch_limits)
{
	struct zcr_ho_msg *m = msg_new();
	int fds[ZCR_HO_MAX_FDS + 1], sv[2], i, before = t_fd_count();
	static char big[ZCR_HO_MAX_LEN + 1];

	ASSERT_TRUE(m);
	ASSERT_EQ(pair(sv), T_PASS);
	for (i = 0; i <= ZCR_HO_MAX_FDS; i++)
		fds[i] = sv[0];
	ASSERT_ERR(zcr_ho_send(sv[0], ZCR_HO_LISTENERS, 0, NULL, 0, fds,
	                       ZCR_HO_MAX_FDS + 1),
	           -EINVAL);
	ASSERT_ERR(
	        zcr_ho_send(sv[0], ZCR_HO_ERROR, 0, big, sizeof(big), NULL, 0),
	        -EINVAL);
	ASSERT_OK(zcr_ho_send(sv[0], ZCR_HO_LISTENERS, 0, NULL, 0, fds,
	                      ZCR_HO_MAX_FDS));
	ASSERT_OK(zcr_ho_recv(sv[1], m, 1000));
	ASSERT_EQ(m->nfds, ZCR_HO_MAX_FDS);
	zcr_ho_msg_close(m);
	close(sv[0]);
	close(sv[1]);
	ASSERT_EQ(t_fd_count(), before);
	free(m);
	return T_PASS;
}

/* Every proper prefix of a good message is refused (-EPROTO), its fds
 * closed. */
TEST(test_handoff_every_prefix)
{
	struct zcr_ho_msg *m = msg_new();
	struct zcr_ho_hdr h = {
	        ZCR_HO_MAGIC, ZCR_HO_VERSION, ZCR_HO_ERROR, 1, 4, 0, 0};
	unsigned char buf[sizeof(h) + 4];
	int sv[2], before;
	size_t n;

	ASSERT_TRUE(m);
	ASSERT_EQ(pair(sv), T_PASS);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), "abcd", 4);
	before = t_fd_count();
	for (n = 1; n < sizeof(buf); n++) {
		if (send_raw(sv[0], buf, n, sv[0], 1))
			return T_FAIL;
		ASSERT_ERR(zcr_ho_recv(sv[1], m, 1000), -EPROTO);
		ASSERT_EQ(t_fd_count(), before);
	}
	if (send_raw(sv[0], buf, sizeof(buf), sv[0], 1))
		return T_FAIL;
	ASSERT_OK(zcr_ho_recv(sv[1], m, 1000));
	ASSERT_STREQ(m->data, "abcd");
	zcr_ho_msg_close(m);
	close(sv[0]);
	close(sv[1]);
	free(m);
	return T_PASS;
}

/* Heads that lie: bad magic, another version (reported, so that B can
 * say which), fds or length that disagree with what came. */
TEST(test_handoff_bad_heads)
{
	static const struct {
		struct zcr_ho_hdr h;
		unsigned nfds; /* actually attached */
		int want;
	} cases[] = {
	        {{0x12345678, ZCR_HO_VERSION, 1, 0, 0, 0, 0}, 0, -EPROTO},
	        {{ZCR_HO_MAGIC, 99, 1, 0, 0, 0, 0}, 0, -EPROTONOSUPPORT},
	        {{ZCR_HO_MAGIC, 99, 2, 2, 0, 0, 0}, 2, -EPROTONOSUPPORT},
	        {{ZCR_HO_MAGIC, ZCR_HO_VERSION, 2, 1, 0, 0, 0}, 2, -EPROTO},
	        {{ZCR_HO_MAGIC, ZCR_HO_VERSION, 2, 2, 0, 0, 0}, 1, -EPROTO},
	        {{ZCR_HO_MAGIC, ZCR_HO_VERSION, 6, 0, 9, 0, 0}, 0, -EPROTO},
	};
	struct zcr_ho_msg *m = msg_new();
	int sv[2], before;
	size_t i;

	ASSERT_TRUE(m);
	ASSERT_EQ(pair(sv), T_PASS);
	before = t_fd_count();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (send_raw(sv[0], &cases[i].h, sizeof(cases[i].h), sv[0],
		             cases[i].nfds))
			return T_FAIL;
		ASSERT_ERR(zcr_ho_recv(sv[1], m, 1000), cases[i].want);
		if (cases[i].want == -EPROTONOSUPPORT)
			ASSERT_EQ(m->h.version, 99);
		ASSERT_EQ(m->nfds, 0);
		ASSERT_EQ(t_fd_count(), before);
	}
	close(sv[0]);
	close(sv[1]);
	free(m);
	return T_PASS;
}

/* Nothing within the time: -ETIMEDOUT; the peer gone: -EPIPE. The
 * version seam changes what is sent, and is put back. */
TEST(test_handoff_timeout_eof_version)
{
	struct zcr_ho_msg *m = msg_new();
	int sv[2];

	ASSERT_TRUE(m);
	ASSERT_EQ(pair(sv), T_PASS);
	ASSERT_ERR(zcr_ho_recv(sv[1], m, 10), -ETIMEDOUT);
	zcr_ho_set_version(7);
	ASSERT_OK(zcr_ho_send(sv[0], ZCR_HO_HELLO, 1, NULL, 0, NULL, 0));
	zcr_ho_set_version(ZCR_HO_VERSION);
	ASSERT_ERR(zcr_ho_recv(sv[1], m, 1000), -EPROTONOSUPPORT);
	ASSERT_EQ(m->h.version, 7);
	close(sv[0]);
	ASSERT_ERR(zcr_ho_recv(sv[1], m, 1000), -EPIPE);
	ASSERT_ERR(zcr_ho_send(sv[1], ZCR_HO_HELLO, 1, NULL, 0, NULL, 0),
	           -EPIPE);
	close(sv[1]);
	free(m);
	return T_PASS;
}
