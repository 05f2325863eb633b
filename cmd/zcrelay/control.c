/*
 * control.c - the daemon's admin side on
 * the main thread: the metrics endpoint (served by admin.c's thread from
 * snapshots the workers keep) and the service steps at start-up (pid
 * file, privileges).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "dlog.h"
#include "metrics.h"
#include "service.h"

static struct zcr_admin *admin;
static int admin_fd = -1;
static struct zcr_worker *mworkers;
static unsigned mnworkers;

/* Admin thread: the running configuration and the workers' snapshots. */
static char *admin_render(void *arg, size_t *len)
{
	struct zcr_cfg *c = zcr_cfg_current();
	struct zcr_wstats *ws = calloc(mnworkers ? mnworkers : 1, sizeof(*ws));
	char *text = NULL;
	unsigned i;

	if (c && ws) {
		for (i = 0; i < mnworkers; i++) {
			pthread_mutex_lock(&mworkers[i].mu);
			ws[i].id = mworkers[i].id;
			ws[i].loop = mworkers[i].snap;
			ws[i].sessions = mworkers[i].snap_sessions;
			pthread_mutex_unlock(&mworkers[i].mu);
		}
		text = zcr_metrics_render(c, ws, mnworkers, zcr_now_ms(), len);
	}
	free(ws);
	zcr_cfg_unref(c);
	return text;
}

int zcr_control_admin_listen(const struct zcr_cfg *c)
{
	if (!c->admin_str[0])
		return 0;
	admin_fd = zcr_sd_listen_take(&c->admin);
	if (admin_fd < 0)
		admin_fd = zc_listen(&c->admin, 0, 0);
	if (admin_fd < 0) {
		zcr_log(ZC_LOG_ERR, "admin %s: %s", c->admin_str,
		        zc_strerror(admin_fd));
		return -1;
	}
	return 0;
}

int zcr_control_admin_start(struct zcr_worker *ws, unsigned nw)
{
	int err;

	if (admin_fd < 0)
		return 0;
	mworkers = ws;
	mnworkers = nw;
	err = zcr_admin_start(&admin, admin_fd, admin_render, NULL);
	if (err) {
		zcr_log(ZC_LOG_ERR, "admin: %s", zc_strerror(err));
		return -1;
	}
	return 0;
}

void zcr_control_admin_stop(void)
{
	zcr_admin_stop(admin);
	admin = NULL;
	if (admin_fd >= 0)
		close(admin_fd);
	admin_fd = -1;
}

int zcr_control_setup(const struct zcr_cfg *c)
{
	char err[ZCR_ERR_MAX];
	int rc = zcr_log_open(c->log_file, c->log_format);

	if (rc) {
		zcr_log(ZC_LOG_ERR, "log file %s: %s", c->log_file,
		        zc_strerror(rc));
		return -1;
	}
	if (c->pid_file && zcr_write_pid_file(c->pid_file, err, sizeof(err))) {
		zcr_log(ZC_LOG_ERR, "pid file %s", err);
		return -1;
	}
	return 0;
}

int zcr_control_drop(const struct zcr_cfg *c)
{
	char err[ZCR_ERR_MAX];

	if (!c->user && !c->group)
		return 0;
	if (zcr_drop_privileges(c->user, c->group, err, sizeof(err))) {
		zcr_log(ZC_LOG_ERR, "cannot drop privileges: %s", err);
		return -1;
	}
	zcr_log(ZC_LOG_INFO, "running as user %s", c->user ? c->user : "-");
	return 0;
}
