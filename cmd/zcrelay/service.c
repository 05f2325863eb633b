/*
 * service.c - systemd's notify and socket activation protocols (see
 * sd_notify(3) and sd_listen_fds(3); both are small and stable, so we
 * speak them directly instead of linking libsystemd), dropping root,
 * the pid file.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "daemon.h"
#include "service.h"

#define SD_LISTEN_FDS_START 3
#define PW_BUF_SIZE         16384 /* getpwnam_r/getgrnam_r scratch */

static int *sd_fds; /* passed sockets; -1 once taken */
static int sd_nfds;
static int sd_adopted; /* the pool holds an upgrade's sockets */

__attribute__((format(printf, 3, 4))) static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* sd_notify                                                            */

/* $NOTIFY_SOCKET as an address. Returns 1, 0 when unset, or -errno. */
static int notify_addr(struct sockaddr_un *sun, socklen_t *len)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t n;

	if (!e || !*e)
		return 0;
	if (e[0] != '/' && e[0] != '@')
		return -EAFNOSUPPORT;
	n = strlen(e);
	if (n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, e, n);
	/* "@name": the abstract name is exactly the bytes after the '@',
	 * which becomes the leading NUL; a path carries its NUL. */
	if (e[0] == '@')
		sun->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	                   (e[0] == '/'));
	return 1;
}

int zcr_sd_notify(const char *state)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd, rc;

	if (!state)
		return -EINVAL;
	rc = notify_addr(&sun, &len);
	if (rc <= 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	rc = 0;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	           (const struct sockaddr *)&sun, len) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

int zcr_sd_notify_reloading(void)
{
	struct timespec now;
	char msg[64];

	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)now.tv_sec * 1000000ULL +
	                 (unsigned long long)now.tv_nsec / 1000);
	return zcr_sd_notify(msg);
}

/* ------------------------------------------------------------------ */
/* Socket activation                                                    */

/* A plain decimal (no sign, no blanks) up to max. 0 or -EINVAL. */
static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* How many fds systemd passed to this process: >= 0 or -EINVAL. */
static int listen_env_count(void)
{
	const char *spid = getenv("LISTEN_PID");
	const char *sfds = getenv("LISTEN_FDS");
	unsigned long pid, n;

	if (!spid || !sfds)
		return 0;
	if (parse_ulong(spid, INT_MAX, &pid) ||
	    parse_ulong(sfds, INT_MAX - SD_LISTEN_FDS_START, &n))
		return -EINVAL;
	if (pid != (unsigned long)getpid())
		return 0; /* meant for another process: not ours */
	return (int)n;
}

/* Marks fds 3..3+n-1 close-on-exec and pools them. n or -errno. */
static int listen_pool_fill(int n)
{
	int i, fd, flags, err;
	int *fds;

	fds = calloc((size_t)n, sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		flags = fcntl(fd, F_GETFD);
		if (flags == -1 ||
		    fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == -1) {
			err = -errno;
			free(fds);
			return err;
		}
		fds[i] = fd;
	}
	free(sd_fds);
	sd_fds = fds;
	sd_nfds = n;
	return n;
}

int zcr_sd_listen_init(void)
{
	int n = listen_env_count();

	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n <= 0)
		return n;
	return listen_pool_fill(n);
}

static int unix_name_equal(const struct sockaddr_un *x, socklen_t xlen,
                           const struct sockaddr_un *y, socklen_t ylen)
{
	size_t off = offsetof(struct sockaddr_un, sun_path);
	size_t xn = xlen > off ? xlen - off : 0;
	size_t yn = ylen > off ? ylen - off : 0;

	if (!xn || !yn)
		return 0; /* unnamed */
	if (x->sun_path[0] == '\0' || y->sun_path[0] == '\0')
		return xn == yn && !memcmp(x->sun_path, y->sun_path, xn);
	/* Paths: the length may or may not count the NUL. */
	xn = strnlen(x->sun_path, xn);
	yn = strnlen(y->sun_path, yn);
	return xn == yn && !memcmp(x->sun_path, y->sun_path, xn);
}

/* Is the bound address x (getsockname) the address a? */
static int addr_equal(const struct sockaddr_storage *x, socklen_t xlen,
                      const struct zc_addr *a)
{
	const struct sockaddr_in *x4 = (const void *)x,
	                         *a4 = (const void *)&a->ss;
	const struct sockaddr_in6 *x6 = (const void *)x,
	                          *a6 = (const void *)&a->ss;

	if (x->ss_family != a->ss.ss_family)
		return 0;
	switch (x->ss_family) {
	case AF_INET:
		return x4->sin_port == a4->sin_port &&
		       x4->sin_addr.s_addr == a4->sin_addr.s_addr;
	case AF_INET6:
		return x6->sin6_port == a6->sin6_port &&
		       !memcmp(&x6->sin6_addr, &a6->sin6_addr, 16) &&
		       x6->sin6_scope_id == a6->sin6_scope_id;
	case AF_UNIX:
		return unix_name_equal((const void *)x, xlen,
		                       (const void *)&a->ss, a->len);
	}
	return 0;
}

/* Is fd, bound to x, a dual-stack [::]:PORT that serves a, 0.0.0.0:PORT? */
static int dual_stack_serves(int fd, const struct sockaddr_storage *x,
                             const struct zc_addr *a)
{
	const struct sockaddr_in6 *x6 = (const void *)x;
	const struct sockaddr_in *a4 = (const void *)&a->ss;
	socklen_t len = sizeof(int);
	int v6only = 1;

	if (x->ss_family != AF_INET6 || a->ss.ss_family != AF_INET ||
	    a4->sin_addr.s_addr != htonl(INADDR_ANY) ||
	    x6->sin6_port != a4->sin_port ||
	    !IN6_IS_ADDR_UNSPECIFIED(&x6->sin6_addr))
		return 0;
	if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) == -1)
		return 0;
	return !v6only;
}

/* Does the pooled fd listen on a? loose: the dual-stack rule instead of
 * the exact one. Anything but a listening stream socket never does. */
static int listen_matches(int fd, const struct zc_addr *a, int loose)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(int);
	int type = 0, acc = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM)
		return 0;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == -1 || !acc)
		return 0;
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	return loose ? dual_stack_serves(fd, &ss, a) : addr_equal(&ss, len, a);
}

/* Takes pool slot i out, non-blocking. Returns the fd or -errno. */
static int listen_pool_remove(int i)
{
	int fd = sd_fds[i], flags, err;

	sd_fds[i] = -1;
	flags = fcntl(fd, F_GETFL);
	if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int zcr_sd_listen_take(const struct zc_addr *a)
{
	int i, loose;

	if (!a)
		return -EINVAL;
	for (loose = 0; loose < 2; loose++)
		for (i = 0; i < sd_nfds; i++)
			if (sd_fds[i] >= 0 &&
			    listen_matches(sd_fds[i], a, loose))
				return listen_pool_remove(i);
	return -ENOENT;
}

int zcr_sd_listen_adopt(const int *fds, unsigned n)
{
	int *grown;

	if (n == 0)
		return 0;
	grown = realloc(sd_fds, ((size_t)sd_nfds + n) * sizeof(*sd_fds));
	if (!grown)
		return -ENOMEM;
	memcpy(grown + sd_nfds, fds, n * sizeof(*fds));
	sd_fds = grown;
	sd_adopted = 1;
	sd_nfds += (int)n;
	return 0;
}

unsigned zcr_sd_listen_count(void)
{
	unsigned n = 0;
	int i;

	for (i = 0; i < sd_nfds; i++)
		n += sd_fds[i] >= 0;
	return n;
}

void zcr_sd_listen_close_unused(void)
{
	struct sockaddr_storage ss;
	char name[ZCR_ADDR_STR];
	socklen_t len;
	int i;

	for (i = 0; i < sd_nfds; i++) {
		if (sd_fds[i] < 0)
			continue;
		len = sizeof(ss);
		if (getsockname(sd_fds[i], (struct sockaddr *)&ss, &len) ==
		            -1 ||
		    zc_addr_format((struct sockaddr *)&ss, len, name,
		                   sizeof(name)) < 0)
			snprintf(name, sizeof(name), "?");
		zcr_log(ZC_LOG_WARN,
		        "%s: inherited fd %d (%s) matches no listener; "
		        "closing it",
		        sd_adopted ? "upgrade" : "socket activation", sd_fds[i],
		        name);
		close(sd_fds[i]);
	}
	free(sd_fds);
	sd_fds = NULL;
	sd_nfds = 0;
}

/* ------------------------------------------------------------------ */
/* Privileges                                                           */

/* A lookup that found nothing (rc 0) or failed (rc an errno). */
static int lookup_fail(const char *what, const char *name, int rc, char *err,
                       size_t errlen)
{
	if (rc == 0) {
		set_err(err, errlen, "unknown %s '%s'", what, name);
		return -ENOENT;
	}
	set_err(err, errlen, "cannot look up %s '%s': %s", what, name,
	        strerror(rc));
	return -rc;
}

static int lookup_user(const char *user, uid_t *uid, gid_t *gid, char *err,
                       size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[PW_BUF_SIZE];
	int rc;

	rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (!res)
		return lookup_fail("user", user, rc, err, errlen);
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

static int lookup_group(const char *group, gid_t *gid, char *err, size_t errlen)
{
	struct group gr, *res = NULL;
	char buf[PW_BUF_SIZE];
	int rc;

	rc = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
	if (!res)
		return lookup_fail("group", group, rc, err, errlen);
	*gid = gr.gr_gid;
	return 0;
}

/* The ids of user (and its primary group) and group, each if not NULL;
 * the others stay as they are. 0 or -errno with a message in err. */
static int lookup_ids(const char *user, const char *group, uid_t *uid,
                      gid_t *gid, char *err, size_t errlen)
{
	int rc;

	if (user && (rc = lookup_user(user, uid, gid, err, errlen)))
		return rc;
	if (group && (rc = lookup_group(group, gid, err, errlen)))
		return rc;
	return 0;
}

/* A failed set*id call: -errno with "what(id): reason" in err. */
static int id_fail(char *err, size_t errlen, const char *what, unsigned id)
{
	int e = errno;

	set_err(err, errlen, "%s(%u): %s", what, id, strerror(e));
	return -e;
}

/* Root only: the group alone as supplementary group, then gid, uid. */
static int set_ids(uid_t uid, gid_t gid, int with_uid, char *err, size_t errlen)
{
	if (setgroups(1, &gid) == -1)
		return id_fail(err, errlen, "setgroups", gid);
	if (setresgid(gid, gid, gid) == -1)
		return id_fail(err, errlen, "setgid", gid);
	if (with_uid && setresuid(uid, uid, uid) == -1)
		return id_fail(err, errlen, "setuid", uid);
	return 0;
}

/* Are real, effective and saved ids all uid and gid? */
static int ids_are(uid_t uid, gid_t gid)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) == -1 || getresgid(&rg, &eg, &sg) == -1)
		return 0;
	return r == uid && e == uid && s == uid && rg == gid && eg == gid &&
	       sg == gid;
}

/* After the switch: the ids are the target's and root is out of reach
 * (a kernel or a capability setup that let setuid(0) work would undo
 * the whole point). */
static int verify_dropped(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if (!ids_are(uid, gid)) {
		set_err(err, errlen, "ids are not %u:%u after the switch",
		        (unsigned)uid, (unsigned)gid);
		return -EPERM;
	}
	if (uid != 0 && setuid(0) != -1) {
		set_err(err, errlen,
		        "setuid(0) still works after switching "
		        "to uid %u",
		        (unsigned)uid);
		return -EPERM;
	}
	return 0;
}

int zcr_check_ids(const char *user, const char *group, char *err, size_t errlen)
{
	uid_t uid;
	gid_t gid;

	return lookup_ids(user, group, &uid, &gid, err, errlen);
}

int zcr_drop_privileges(const char *user, const char *group, char *err,
                        size_t errlen)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	int rc;

	if (!user && !group)
		return 0;
	if ((rc = lookup_ids(user, group, &uid, &gid, err, errlen)))
		return rc;
	if (geteuid() != 0) {
		if (ids_are(uid, gid))
			return 0; /* started as that user already */
		set_err(err, errlen, "must run as root to switch to %s%s%s",
		        user ? user : "", group ? ":" : "", group ? group : "");
		return -EPERM;
	}
	rc = set_ids(uid, gid, user != NULL, err, errlen);
	return rc ? rc : verify_dropped(uid, gid, err, errlen);
}

/* Opens the pid file path for writing; -errno, or -EINVAL (message in
 * err) for a file that is not a regular one. O_NONBLOCK: a FIFO there
 * must not hang the start in open() (-ENXIO without a reader). */
static int pid_file_open(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path,
	              O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY |
	                      O_NONBLOCK,
	              0644);

	if (fd == -1 && errno != ENXIO)
		return -errno;
	if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		set_err(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	return fd;
}

int zcr_chown_for(const char *path, const char *user, const char *group,
                  char *err, size_t errlen)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int rc;

	if (!user && !group)
		return 0;
	if ((rc = lookup_ids(user, group, &uid, &gid, err, errlen)))
		return rc;
	if (chown(path, uid, gid) == -1) {
		rc = -errno;
		set_err(err, errlen, "chown %s: %s", path, strerror(-rc));
		return rc;
	}
	return 0;
}

int zcr_write_pid_file(const char *path, char *err, size_t errlen)
{
	char buf[32];
	int fd, n, rc = 0;
	ssize_t w;

	fd = pid_file_open(path, err, errlen);
	if (fd == -EINVAL)
		return fd;
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	w = write(fd, buf, (size_t)n);
	if (w == -1)
		rc = -errno;
	else if (w != n)
		rc = -EIO; /* a full disk */
	if (close(fd) == -1 && !rc)
		rc = -errno;
out:
	if (rc)
		set_err(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

/* The pid in the file at path, or -1 (unreadable, not a number). */
static long pid_file_read(const char *path)
{
	char buf[32];
	ssize_t n;
	char *end;
	long pid;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);

	if (fd == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	return end != buf && (*end == '\n' || *end == '\0') ? pid : -1;
}

int zcr_remove_pid_file(const char *path)
{
	if (pid_file_read(path) != (long)getpid())
		return -ESRCH;
	return unlink(path) == -1 ? -errno : 0;
}
