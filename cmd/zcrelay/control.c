/*
 * control.c - the daemon's admin side on the main thread: binding the
 * admin addresses and starting the admin server (admin.c, serving api.c),
 * and the service steps at start-up (pid file, privileges).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/un.h>

#include "api.h"
#include "daemon.h"
#include "dlog.h"
#include "service.h"
#include "upgrade.h"

static struct zcr_admin *admin;
static int admin_fds[ZCR_MAX_ADMIN];
static int admin_own[ZCR_MAX_ADMIN]; /* bound by us, not systemd's */
static unsigned nadmin_fds;

/* A Unix admin socket: 0600, the daemon's user's (see zcr_admin_start:
 * whoever can connect may change state). */
static int admin_secure(const struct zcr_cfg *c, const struct zcr_listen *l)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&l->addr.ss;
	char err[ZCR_ERR_MAX];
	int rc;

	if (sun->sun_family != AF_UNIX || sun->sun_path[0] == '\0')
		return 0;
	if (chmod(sun->sun_path, l->mode) == -1) {
		rc = -errno;
		zcr_log(ZC_LOG_ERR, "admin %s: chmod: %s", l->str,
		        zc_strerror(rc));
		return rc;
	}
	rc = zcr_chown_for(sun->sun_path, c->user, c->group, err, sizeof(err));
	if (rc)
		zcr_log(ZC_LOG_ERR, "admin %s: %s", l->str, err);
	return rc;
}

int zcr_control_admin_listen(const struct zcr_cfg *c)
{
	const struct zcr_listen *l;
	unsigned i;
	int fd, rc;

	for (i = 0; i < c->nadmin; i++) {
		l = &c->admin[i];
		fd = zcr_sd_listen_take(&l->addr);
		/* An upgrade's new process owns what it took over. */
		admin_own[nadmin_fds] = fd < 0 || zcr_upgrade_child();
		if (fd < 0) {
			fd = zc_listen(&l->addr, 0, 0);
			if (fd >= 0 && (rc = admin_secure(c, l))) {
				close(fd);
				return rc;
			}
		}
		if (fd < 0) {
			zcr_log(ZC_LOG_ERR, "admin %s: %s", l->str,
			        zc_strerror(fd));
			return fd;
		}
		admin_fds[nadmin_fds++] = fd;
	}
	return 0;
}

int zcr_control_admin_start(const struct zcr_cfg *c, struct zcr_worker *ws,
                            unsigned nw)
{
	struct zcr_admin_opts o = {0};
	int err;

	if (nadmin_fds == 0)
		return 0;
	o.fds = admin_fds;
	o.nfds = nadmin_fds;
	o.token = c->admin_token;
	o.handle = zcr_api_handle;
	zcr_api_init(ws, nw);
	err = zcr_admin_start(&admin, &o);
	if (err)
		zcr_log(ZC_LOG_ERR, "admin: %s", zc_strerror(err));
	return err;
}

unsigned zcr_control_admin_fds(const int **fds)
{
	*fds = admin_fds;
	return nadmin_fds;
}

void zcr_control_admin_handed_over(void)
{
	memset(admin_own, 0, sizeof(admin_own));
}

void zcr_control_admin_stop(void)
{
	const struct sockaddr_un *sun;
	struct zcr_cfg *c = zcr_cfg_current();
	unsigned i;

	zcr_admin_stop(admin);
	admin = NULL;
	for (i = 0; i < nadmin_fds; i++)
		close(admin_fds[i]);
	/* Our own Unix socket files go with us (not systemd's). */
	for (i = 0; c && i < c->nadmin && i < nadmin_fds; i++) {
		sun = (const struct sockaddr_un *)&c->admin[i].addr.ss;
		if (admin_own[i] && sun->sun_family == AF_UNIX &&
		    sun->sun_path[0])
			unlink(sun->sun_path);
	}
	zcr_cfg_unref(c);
	nadmin_fds = 0;
}

int zcr_control_setup(const struct zcr_cfg *c)
{
	char err[ZCR_ERR_MAX];
	int rc = zcr_log_open(c->log_file, c->log_format);

	if (rc) {
		zcr_log(ZC_LOG_ERR, "log file %s: %s", c->log_file,
		        zc_strerror(rc));
		return rc;
	}
	/* An upgrade's new process writes it once it owns the listeners. */
	if (!c->pid_file || zcr_upgrade_child())
		return 0;
	rc = zcr_write_pid_file(c->pid_file, err, sizeof(err));
	if (rc) {
		zcr_log(ZC_LOG_ERR, "pid file %s", err);
		return rc;
	}
	/* The user's, so that an upgrade's new process (started after the
	 * drop) can rewrite it. */
	if (zcr_chown_for(c->pid_file, c->user, c->group, err, sizeof(err)))
		zcr_log(ZC_LOG_WARN,
		        "pid file %s (an upgrade cannot rewrite it)", err);
	return 0;
}

int zcr_control_drop(const struct zcr_cfg *c)
{
	char err[ZCR_ERR_MAX];
	int rc;

	if (!c->user && !c->group)
		return 0;
	rc = zcr_drop_privileges(c->user, c->group, err, sizeof(err));
	if (rc) {
		zcr_log(ZC_LOG_ERR, "cannot drop privileges: %s", err);
		return rc;
	}
	zcr_log(ZC_LOG_INFO, "running as user %s", c->user ? c->user : "-");
	return 0;
}
