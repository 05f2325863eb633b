/*
 * lib_transfer.c - zc_transfer(): file, pipe and socket sources into a
 * socket, ranges and limits, validation.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "runner.h"
#include "tnet.h"

#define MIB       (1024ULL * 1024ULL)
#define FILE_SIZE (16 * MIB + 333)

static void sha256(const void *p, size_t n, unsigned char out[T_SHA256_LEN])
{
	unsigned int len = T_SHA256_LEN;

	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

/* A file of FILE_SIZE stream bytes; its content stays in *data. */
static int make_file(char **data, char *path, size_t size)
{
	struct t_rng r;
	int fd;

	*data = malloc(FILE_SIZE);
	if (!*data)
		return -ENOMEM;
	t_rng_init(&r, 77);
	t_rng_fill(&r, *data, FILE_SIZE);
	snprintf(path, size, "%s/file.bin", t_tmpdir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (t_write_all(fd, *data, FILE_SIZE) < 0) {
		close(fd);
		return -EIO;
	}
	return fd;
}

static int mover_check(const struct t_ctx *ctx,
                       const struct zc_transfer_stats *st)
{
	ASSERT_EQ(st->spliced + st->copied, st->bytes);
	if (t_never_splices(ctx)) { /* zc_transfer runs ring as copy */
		ASSERT_EQ(st->spliced, 0);
		ASSERT_EQ(st->handled, 0);
	} else if (st->bytes && t_splices(ctx)) {
		ASSERT_EQ(st->copied, 0);
		ASSERT_EQ(st->handled, 1);
	}
	return T_PASS;
}

/* Sends [off, off + len) of the file; checks what the peer got. */
static int file_range(const struct t_ctx *ctx, int64_t off, int64_t len)
{
	unsigned char want[T_SHA256_LEN];
	struct zc_transfer_opts o;
	struct zc_transfer_stats st;
	struct t_xfer r;
	char path[512], *data;
	int fd, s[2];
	size_t start = off < 0 ? 4096 : (size_t)off;
	size_t n = len < 0 ? FILE_SIZE - start : (size_t)len;

	fd = make_file(&data, path, sizeof(path));
	ASSERT_OK(fd);
	ASSERT_OK(t_pair(AF_INET, s));
	ASSERT_EQ(lseek(fd, 4096, SEEK_SET), 4096);
	ASSERT_OK(t_receiver_start(&r, s[1], 0));
	zc_transfer_opts_init(&o);
	o.offset = off;
	o.length = len;
	o.mover = ctx->mover;
	ASSERT_EQ(zc_transfer(s[0], fd, &o, &st), 0);
	shutdown(s[0], SHUT_WR);
	ASSERT_EQ(t_xfer_join(&r), 0);
	ASSERT_EQ(st.bytes, n);
	ASSERT_EQ(r.bytes, n);
	sha256(data + start, n, want);
	ASSERT_MEMEQ(r.digest, want, T_SHA256_LEN);
	/* With an offset the position is untouched; without, it moved. */
	ASSERT_EQ(lseek(fd, 0, SEEK_CUR), off < 0 ? (off_t)(start + n) : 4096);
	if (mover_check(ctx, &st))
		return T_FAIL;
	free(data);
	close(fd);
	close(s[0]);
	close(s[1]);
	return T_PASS;
}

TEST_MATRIX(test_transfer_file_whole_from_position)
{
	return file_range(ctx, -1, -1);
}

TEST_MATRIX(test_transfer_file_offset_length)
{
	return file_range(ctx, 1000, 5 * MIB + 17);
}

TEST_MATRIX(test_transfer_file_offset_to_eof)
{
	return file_range(ctx, 123457, -1);
}

TEST_MATRIX(test_transfer_file_empty_range_at_end)
{
	return file_range(ctx, FILE_SIZE, 0);
}

TEST(test_transfer_file_range_past_end)
{
	struct zc_transfer_opts o;
	struct zc_transfer_stats st;
	char path[512], *data;
	int fd, s[2];

	fd = make_file(&data, path, sizeof(path));
	ASSERT_OK(fd);
	ASSERT_OK(t_pair(AF_INET, s));
	zc_transfer_opts_init(&o);
	o.offset = FILE_SIZE + 1;
	ASSERT_EQ(zc_transfer(s[0], fd, &o, &st), -EINVAL);
	o.offset = FILE_SIZE - 10;
	o.length = 11;
	ASSERT_EQ(zc_transfer(s[0], fd, &o, &st), -EINVAL);
	ASSERT_EQ(st.bytes, 0);
	o.offset = 0;
	o.length = -2;
	ASSERT_EQ(zc_transfer(s[0], fd, &o, &st), -EINVAL);
	o.length = -1;
	o.offset = -5;
	ASSERT_EQ(zc_transfer(s[0], fd, &o, &st), -EINVAL);
	o.offset = 0;
	o.mover = 9;
	ASSERT_EQ(zc_transfer(s[0], fd, &o, &st), -EINVAL);
	free(data);
	close(fd);
	close(s[0]);
	close(s[1]);
	return T_PASS;
}

TEST(test_transfer_validation)
{
	struct zc_transfer_opts o;
	int p[2], s[2], fresh, dir;

	ASSERT_OK(pipe2(p, O_CLOEXEC));
	ASSERT_OK(t_pair(AF_INET, s));
	fresh = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(fresh);
	dir = open(t_tmpdir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(dir);
	ASSERT_EQ(zc_transfer(p[1], s[0], NULL, NULL), -ENOTSOCK);
	ASSERT_EQ(zc_transfer(fresh, p[0], NULL, NULL), -ENOTCONN);
	ASSERT_EQ(zc_transfer(-1, p[0], NULL, NULL), -EBADF);
	ASSERT_EQ(zc_transfer(s[0], -1, NULL, NULL), -EBADF);
	ASSERT_EQ(zc_transfer(s[0], dir, NULL, NULL), -EINVAL);
	zc_transfer_opts_init(&o);
	o.offset = 0;
	ASSERT_EQ(zc_transfer(s[0], p[0], &o, NULL), -ESPIPE);
	ASSERT_EQ(zc_transfer(s[0], s[1], &o, NULL), -ESPIPE);
	close(dir);
	close(fresh);
	close(p[0]);
	close(p[1]);
	close(s[0]);
	close(s[1]);
	return T_PASS;
}

TEST_MATRIX(test_transfer_pipe_to_socket)
{
	unsigned char want[T_SHA256_LEN];
	struct zc_transfer_opts o;
	struct zc_transfer_stats st;
	struct t_xfer w, r;
	int p[2], s[2];

	ASSERT_OK(pipe2(p, O_CLOEXEC));
	ASSERT_OK(t_pair(AF_UNIX, s));
	ASSERT_OK(t_sender_start(&w, p[1], 3 * MIB + 5, 31, T_XFER_CLOSE));
	ASSERT_OK(t_receiver_start(&r, s[1], 0));
	zc_transfer_opts_init(&o);
	o.mover = ctx->mover;
	ASSERT_EQ(zc_transfer(s[0], p[0], &o, &st), 0);
	ASSERT_EQ(st.eof, 1);
	shutdown(s[0], SHUT_WR);
	ASSERT_EQ(t_xfer_join(&w), 0);
	ASSERT_EQ(t_xfer_join(&r), 0);
	t_expect_digest(31, 3 * MIB + 5, want);
	ASSERT_EQ(r.bytes, 3 * MIB + 5);
	ASSERT_MEMEQ(r.digest, want, T_SHA256_LEN);
	if (mover_check(ctx, &st))
		return T_FAIL;
	close(p[0]);
	close(s[0]);
	close(s[1]);
	return T_PASS;
}

/* A length limit stops exactly there; the rest stays in the source. */
TEST_MATRIX(test_transfer_socket_limit_exact)
{
	unsigned char want[T_SHA256_LEN];
	struct zc_transfer_opts o;
	struct zc_transfer_stats st;
	struct t_xfer w, r, rest;
	int src[2], dst[2];

	ASSERT_OK(t_pair(AF_INET, src));
	ASSERT_OK(t_pair(AF_INET, dst));
	ASSERT_OK(t_sender_start(&w, src[0], 8 * MIB, 41, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start(&r, dst[1], 0));
	zc_transfer_opts_init(&o);
	o.mover = ctx->mover;
	o.length = 5 * MIB + 3;
	ASSERT_EQ(zc_transfer(dst[0], src[1], &o, &st), 0);
	ASSERT_EQ(st.bytes, 5 * MIB + 3);
	ASSERT_EQ(st.eof, 0);
	shutdown(dst[0], SHUT_WR);
	ASSERT_EQ(t_xfer_join(&r), 0);
	ASSERT_EQ(r.bytes, 5 * MIB + 3);
	t_expect_digest(41, 5 * MIB + 3, want);
	ASSERT_MEMEQ(r.digest, want, T_SHA256_LEN);
	/* The rest is still in the source socket, unread. */
	ASSERT_OK(t_receiver_start(&rest, src[1], 0));
	ASSERT_EQ(t_xfer_join(&rest), 0);
	ASSERT_EQ(rest.bytes, 3 * MIB - 3);
	ASSERT_EQ(t_xfer_join(&w), 0);
	if (mover_check(ctx, &st))
		return T_FAIL;
	close(src[0]);
	close(src[1]);
	close(dst[0]);
	close(dst[1]);
	return T_PASS;
}

TEST_MATRIX(test_transfer_socket_short_and_timeout)
{
	struct zc_transfer_opts o;
	struct zc_transfer_stats st;
	int src[2], dst[2];
	char junk[4096];

	ASSERT_OK(t_pair(AF_INET, src));
	ASSERT_OK(t_pair(AF_INET, dst));
	ASSERT_OK(t_write_all(src[0], "0123456789", 10));
	zc_transfer_opts_init(&o);
	o.mover = ctx->mover;
	o.length = 100;
	o.idle_timeout_ms = 100;
	/* Ten bytes, then silence: the idle timeout ends it. */
	ASSERT_EQ(zc_transfer(dst[0], src[1], &o, &st), -ETIMEDOUT);
	ASSERT_EQ(st.bytes, 10);
	/* Ten more, then EOF before the length: -ENODATA. */
	ASSERT_OK(t_write_all(src[0], "abcdefghij", 10));
	shutdown(src[0], SHUT_WR);
	o.idle_timeout_ms = 0;
	ASSERT_EQ(zc_transfer(dst[0], src[1], &o, &st), -ENODATA);
	ASSERT_EQ(st.bytes, 10);
	ASSERT_EQ(st.eof, 1);
	ASSERT_EQ(t_read_full(dst[1], junk, 20, 2000), 20);
	ASSERT_MEMEQ(junk, "0123456789abcdefghij", 20);
	close(src[0]);
	close(src[1]);
	close(dst[0]);
	close(dst[1]);
	return T_PASS;
}
