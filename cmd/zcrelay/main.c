/*
 * main.c - zcrelay, the daemon: configuration, listening sockets, worker
 * threads, signals (drain, reload).
 *
 * The main thread never touches a session. It blocks the signals it
 * handles before starting workers (so they are delivered to it alone),
 * then waits for them with sigtimedwait().
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "daemon.h"
#include "dlog.h"
#include "service.h"
#include "upgrade.h"
#include "upgrade_sessions.h"

static struct zcr_opts opts;
static int draining; /* SIGTERM seen: no more reloads */
static int upgraded; /* a new process took the listeners (SIGUSR2) */
static struct zcr_worker *workers;
static unsigned nworkers;
static struct zcr_lset lset; /* listeners of the running generation */
static struct zcr_cfg *cur;  /* the running generation (main thread) */

/* Installs c (takes its reference) as the running generation. */
static void set_current(struct zcr_cfg *c)
{
	cur = c;
	zcr_cfg_set_current(c);
}

/* Creates c's workers and starts their threads: 0 or -errno. */
static int start_workers(struct zcr_cfg *c)
{
	unsigned i;
	int err;

	nworkers = c->workers;
	workers = calloc(nworkers, sizeof(*workers));
	if (!workers)
		return -ENOMEM;
	for (i = 0; i < nworkers; i++) {
		workers[i].id = (int)i;
		err = zcr_worker_init(&workers[i], c);
		if (err) {
			zcr_log(ZC_LOG_ERR, "worker %u: %s", i,
			        zc_strerror(err));
			return err;
		}
	}
	for (i = 0; i < nworkers; i++) {
		err = pthread_create(&workers[i].th, NULL, zcr_worker_main,
		                     &workers[i]);
		if (err) {
			zcr_log(ZC_LOG_ERR, "thread: %s", strerror(err));
			exit(1);
		}
	}
	zcr_upgrade_set_workers(workers, nworkers);
	return 0;
}

/* Hands c and set to every worker; returns the first error. */
static int apply_all(struct zcr_cfg *c, const struct zcr_lset *set)
{
	unsigned i;
	int err, first = 0;

	for (i = 0; i < nworkers; i++) {
		err = zcr_worker_apply(&workers[i], c, set);
		if (err && !first)
			first = err;
	}
	return first;
}

static void post_all(void (*fn)(struct zcr_worker *w))
{
	unsigned i;

	for (i = 0; i < nworkers; i++)
		fn(&workers[i]);
}

/* Settings a running daemon cannot change: keep the old ones, say so. */
static int str_differ(const char *a, const char *b)
{
	return !a != !b || (a && strcmp(a, b));
}

static int admin_differ(const struct zcr_cfg *n, const struct zcr_cfg *o)
{
	unsigned i;

	if (n->nadmin != o->nadmin ||
	    str_differ(n->admin_token, o->admin_token))
		return 1;
	for (i = 0; i < n->nadmin; i++)
		if (strcmp(n->admin[i].str, o->admin[i].str) ||
		    n->admin[i].mode != o->admin[i].mode)
			return 1;
	return 0;
}

/* n's copy of o's string setting *p (user, group, pid-file). */
static void keep_str(char **p, const char *o)
{
	free(*p);
	*p = o ? strdup(o) : NULL;
}

/* Appends ", name" (the first without the comma) to list if differs. */
static void list_if(char *list, size_t size, int differs, const char *name)
{
	size_t len = strlen(list);

	if (differs)
		snprintf(list + len, size - len, "%s%s", len ? ", " : "", name);
}

/* Warns, naming them, about the restart-only settings n changes. */
static void warn_fixed(const struct zcr_cfg *n, const struct zcr_cfg *o)
{
	char l[160] = "";

	list_if(l, sizeof(l), n->workers != o->workers, "workers");
	list_if(l, sizeof(l), n->engine != o->engine, "engine");
	list_if(l, sizeof(l), n->busy_poll_us != o->busy_poll_us, "busy-poll");
	list_if(l, sizeof(l), n->busy_poll_cap != o->busy_poll_cap,
	        "busy-poll-cap");
	list_if(l, sizeof(l), n->pipe_size != o->pipe_size, "pipe-size");
	list_if(l, sizeof(l), n->max_pipes != o->max_pipes, "max-pipes");
	list_if(l, sizeof(l), admin_differ(n, o), "admin/admin-token");
	list_if(l, sizeof(l), str_differ(n->user, o->user), "user");
	list_if(l, sizeof(l), str_differ(n->group, o->group), "group");
	list_if(l, sizeof(l), str_differ(n->pid_file, o->pid_file), "pid-file");
	if (l[0])
		zcr_log(ZC_LOG_WARN,
		        "reload: %s: change only on restart, the running "
		        "values are kept",
		        l);
}

static void reload_keep_fixed(struct zcr_cfg *n, const struct zcr_cfg *o)
{
	warn_fixed(n, o);
	keep_str(&n->user, o->user);
	keep_str(&n->group, o->group);
	keep_str(&n->pid_file, o->pid_file);
	keep_str(&n->admin_token, o->admin_token);
	memcpy(n->admin, o->admin, sizeof(n->admin));
	n->nadmin = o->nadmin;
	n->workers = o->workers;
	n->engine = o->engine;
	n->busy_poll_us = o->busy_poll_us;
	n->busy_poll_cap = o->busy_poll_cap;
	n->pipe_size = o->pipe_size;
	n->max_pipes = o->max_pipes;
	n->log_level = opts.verbose ? ZC_LOG_DEBUG : n->log_level;
	n->log_sessions = opts.quiet ? 0 : n->log_sessions;
}

static void reopen_log(void)
{
	int err = zcr_log_reopen();

	if (err)
		zcr_log(ZC_LOG_ERR, "SIGUSR1: reopening the log: %s",
		        zc_strerror(err));
}

static int reload_again; /* a SIGHUP came while the file was loading */

/* A signal while a reload loads the file (not a stop signal). */
static void during_load(int sig)
{
	if (sig == SIGHUP)
		reload_again = 1;
	else if (sig == SIGUSR1)
		reopen_log();
}

/* SIGHUP: a new generation for new sessions; nothing else changes. The
 * file loads on its own thread (host names may take long), the signals
 * of sigs are answered meanwhile: returns a stop signal that came (the
 * reload is abandoned), else 0. *msgs gets the reasons of a failure
 * (malloc'd lines); a success leaves it NULL. */
static int reload_file(const sigset_t *sigs, char **msgs)
{
	struct zcr_cfg *n;
	struct zcr_lset set;
	int err;

	if (!opts.cfg_path) {
		zcr_log(ZC_LOG_INFO, "SIGHUP: no -c file to reload");
		*msgs = strdup("no -c file to reload");
		return 0;
	}
	zcr_sd_notify_reloading();
	err = zcr_cfg_load_answering(opts.cfg_path, &n, msgs, sigs,
	                             during_load);
	if (err > 0) {
		zcr_log(ZC_LOG_INFO,
		        "signal %d during the reload of %s: "
		        "reload abandoned",
		        err, opts.cfg_path);
		*msgs = strdup("a stop signal came: reload abandoned");
		return err;
	}
	if (err) {
		zcr_log(ZC_LOG_ERR,
		        "reload of %s failed: keeping the running "
		        "configuration",
		        opts.cfg_path);
		if (!*msgs)
			*msgs = strdup("the configuration has errors");
		return 0;
	}
	reload_keep_fixed(n, cur);
	if (zcr_lset_open(&set, n, &lset, nworkers)) {
		zcr_log(ZC_LOG_ERR,
		        "reload: keeping the running configuration");
		zcr_cfg_unref(n);
		*msgs = strdup("the new listeners could not be opened (the "
		               "log says why): keeping the running "
		               "configuration");
		return 0;
	}
	if (zcr_health_apply(n))
		zcr_log(ZC_LOG_ERR, "reload: health checks not updated");
	if (apply_all(n, &set))
		zcr_log(ZC_LOG_ERR, "reload: some listeners failed (above)");
	zcr_lset_release(&lset, &set);
	lset = set;
	zcr_log_set_level(n->log_level);
	/* Before set_current(n): cur is still the old generation here. */
	if ((n->log_format != zcr_log_format() ||
	     str_differ(n->log_file, cur->log_file)) &&
	    (err = zcr_log_open(n->log_file, n->log_format)) != 0)
		zcr_log(ZC_LOG_ERR,
		        "reload: log file %s: %s: logging as before",
		        n->log_file ? n->log_file : "stderr", zc_strerror(err));
	set_current(n);
	zcr_log(ZC_LOG_INFO, "reloaded %s: %u route(s)", opts.cfg_path,
	        n->nroutes);
	return 0;
}

/* Reloads (again while SIGHUPs came during the load); returns a stop
 * signal that came meanwhile, or 0. */
static int reload(const sigset_t *sigs)
{
	char *msgs = NULL;
	int sig = 0;

	reload_again = 1;
	while (!sig && reload_again) {
		reload_again = 0;
		zcr_api_reload_start();
		sig = reload_file(sigs, &msgs);
		zcr_api_reloaded(msgs == NULL, msgs);
		free(msgs);
		msgs = NULL;
	}
	zcr_sd_notify("READY=1");
	return sig;
}

/*
 * SIGUSR2: hand the listening sockets (and the admin ones) to a new
 * process of the binary at our start-up path. Returns its pid once it
 * accepts on them (this process must then stop accepting and drain), 0
 * after a rollback (logged, reason in why; everything runs on here).
 */
static int upgrade(char *why, size_t size)
{
	unsigned n = zcr_lset_nfds(&lset), na;
	const int *afds;
	int *fds, pid;

	na = zcr_control_admin_fds(&afds);
	fds = malloc((n + na + 1) * sizeof(*fds));
	if (!fds) {
		snprintf(why, size, "out of memory");
		return 0;
	}
	n = zcr_lset_fds(&lset, fds, n);
	memcpy(fds + n, afds, na * sizeof(*fds));
	zcr_log(ZC_LOG_INFO,
	        "SIGUSR2: upgrade: handing %u listening socket(s) to a new "
	        "process",
	        n + na);
	pid = zcr_upgrade_run(fds, n + na, why, size);
	free(fds);
	if (pid < 0) {
		zcr_log(ZC_LOG_ERR,
		        "upgrade failed: %s: this process (pid %d) keeps "
		        "running",
		        why, (int)getpid());
		return 0;
	}
	zcr_log(ZC_LOG_INFO,
	        "upgrade: pid %d accepts now; pid %d stops accepting, its "
	        "sessions stay here until they end",
	        pid, (int)getpid());
	return pid;
}

/* SIGUSR2 (or POST /upgrade): SIGUSR2 if a new process took over. */
static int on_sigusr2(void)
{
	char why[256] = "draining: no upgrade";
	int pid = 0;

	zcr_api_upgrade_start();
	if (draining)
		zcr_log(ZC_LOG_INFO, "SIGUSR2 while draining: ignored");
	else
		pid = upgrade(why, sizeof(why));
	zcr_api_upgraded(pid, why); /* answered before the admin stops */
	return pid > 0 ? SIGUSR2 : 0;
}

static int wait_signal(const sigset_t *set, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	int sig;

	do {
		sig = sigtimedwait(set, NULL, ms < 0 ? NULL : &ts);
	} while (sig == -1 && errno == EINTR);
	if (sig == SIGHUP) {
		if (!draining)
			return reload(set);
		zcr_log(ZC_LOG_INFO, "SIGHUP while draining: ignored");
		zcr_api_reload_start(); /* answers a POST /reload, if any */
		zcr_api_reloaded(0, "draining: no more reloads");
		return 0;
	}
	if (sig == SIGUSR1) {
		reopen_log();
		return 0;
	}
	if (sig == SIGUSR2)
		return on_sigusr2();
	return sig == -1 ? 0 : sig;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Joins the workers that have ended; returns how many are left. */
static unsigned join_done(void)
{
	unsigned i, left = 0;

	for (i = 0; i < nworkers; i++) {
		if (workers[i].joined)
			continue;
		if (pthread_tryjoin_np(workers[i].th, NULL) == 0)
			workers[i].joined = 1;
		else
			left++;
	}
	return left;
}

/* Phase 2: the sessions that can move go to the new process. */
static void hand_sessions(void)
{
	long n = zcr_upgrade_hand_sessions(zcr_upgrade_sock(),
	                                   zcr_upgrade_peer());

	if (n >= 0)
		zcr_log(ZC_LOG_INFO,
		        "upgrade: handed %ld session(s) to pid %d; the others "
		        "end here",
		        n, zcr_upgrade_peer());
}

/* A new process accepts on our listeners (SIGUSR2): stop accepting on
 * our copies (the sockets stay open in it: no client is refused), leave
 * the socket files and the admin API to it. */
static void stop_accepting_upgraded(void)
{
	upgraded = 1;
	zcr_lset_forget(&lset);
	post_all(zcr_worker_drain);
	if (cur->upgrade_sessions)
		hand_sessions();
	zcr_upgrade_commit();
	zcr_control_admin_handed_over();
	zcr_control_admin_stop();
	zcr_log(ZC_LOG_INFO, "upgrade: draining (up to %u ms)", cur->drain_ms);
}

/*
 * Waits for SIGTERM/SIGINT (or a successful upgrade), then drains:
 * workers stop accepting and end when their sessions have. At the
 * deadline, or on a (second) signal, the remaining sessions are aborted.
 */
static void run_until_stopped(const sigset_t *set)
{
	unsigned drain_ms;
	long deadline;
	int sig, aborted = 0;

	while ((sig = wait_signal(set, -1)) == 0)
		;
	draining = 1; /* a SIGHUP now would bind listeners nobody serves */
	zcr_api_set_draining();
	drain_ms = cur->drain_ms;
	if (sig == SIGUSR2) {
		stop_accepting_upgraded();
	} else {
		zcr_sd_notify("STOPPING=1");
		zcr_log(ZC_LOG_INFO, "signal %d: draining (up to %u ms)", sig,
		        drain_ms);
		/* New Unix clients: ECONNREFUSED/ENOENT at once. */
		zcr_lset_release(&lset, NULL);
		post_all(zcr_worker_drain);
	}
	deadline = now_ms() + (long)drain_ms;
	while (join_done()) {
		sig = wait_signal(set, 50);
		if (!aborted && (sig || now_ms() >= deadline)) {
			zcr_log(ZC_LOG_INFO, "%s: aborting open sessions",
			        sig ? "second signal" : "drain deadline");
			post_all(zcr_worker_abort);
			aborted = 1;
		}
	}
}

/* The configuration: the -c file, or the command line's one route. */
static int load_config(struct zcr_cfg **c, int argc, char **argv)
{
	struct zcr_cfg *cli;
	int rc = zcr_conf_parse(&opts, &cli, argc, argv);

	if (rc)
		return rc > 0 ? 0 : 2;
	opts.quiet = !cli->log_sessions;
	opts.verbose = cli->log_level == ZC_LOG_DEBUG;
	if (!opts.cfg_path) {
		*c = cli;
		return -1;
	}
	zcr_cfg_unref(cli);
	if (zcr_cfg_load(opts.cfg_path, c))
		return 1;
	if (opts.check_only) {
		char err[ZCR_ERR_MAX];
		int bad = zcr_check_ids((*c)->user, (*c)->group, err,
		                        sizeof(err));

		if (bad)
			fprintf(stderr, "%s: %s\n", opts.cfg_path, err);
		zcr_cfg_unref(*c);
		return bad ? 1 : 0;
	}
	(*c)->log_level = opts.verbose ? ZC_LOG_DEBUG : (*c)->log_level;
	(*c)->log_sessions = opts.quiet ? 0 : (*c)->log_sessions;
	return -1;
}

int main(int argc, char **argv)
{
	struct zcr_cfg *c;
	sigset_t set;
	int rc;

	if (argc > 1 && strcmp(argv[1], "ctl") == 0)
		return zcr_ctl_main(argc - 1, argv + 1);
	rc = zcr_sd_listen_init();

	if (rc < 0)
		zcr_log(ZC_LOG_WARN, "LISTEN_FDS: %s: ignored",
		        zc_strerror(rc));
	if (zcr_upgrade_init(argc, argv))
		return 1; /* started as a new process, unable to reach the old */
	rc = load_config(&c, argc, argv);

	if (rc >= 0) {
		zcr_upgrade_refuse("the new process's configuration check "
		                   "failed (its log says why)");
		return rc;
	}
	zcr_log_set_level(c->log_level);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (zcr_upgrade_child() && zcr_upgrade_take())
		return 1;
	set_current(c);
	if (zcr_control_setup(c) || zcr_lset_open(&lset, c, NULL, c->workers) ||
	    zcr_control_admin_listen(c))
		return 1;
	zcr_sd_listen_close_unused();
	if (zcr_control_drop(c) || start_workers(c))
		return 1;
	if (apply_all(c, &lset) ||
	    zcr_control_admin_start(c, workers, nworkers) ||
	    zcr_health_start(c)) {
		zcr_log(ZC_LOG_ERR, "cannot start the listeners: exiting");
		return 1;
	}
	zcr_log(ZC_LOG_INFO, "listening on %s%s, %u route(s), %u worker(s)",
	        lset.ls[0]->str, lset.n > 1 ? " and more" : "", c->nroutes,
	        nworkers);
	if (zcr_upgrade_child() && zcr_upgrade_ready(c->pid_file) == 0) {
		zcr_upgrade_take_sessions(zcr_upgrade_sock());
		zcr_upgrade_close();
	} else if (!zcr_upgrade_child())
		zcr_sd_notify("READY=1");
	run_until_stopped(&set);
	zcr_health_stop();
	zcr_control_admin_stop();
	/* The one written at start (not reloaded), unless an upgrade handed
	 * it over: from the new process's READY on, the file is its, even
	 * before it has written its pid there (this process, with no
	 * session to drain, can be gone sooner). zcr_remove_pid_file also
	 * leaves a file that holds another pid. */
	if (cur->pid_file && !upgraded)
		zcr_remove_pid_file(cur->pid_file);
	set_current(NULL);
	if (__atomic_load_n(&zcr_worker_failed, __ATOMIC_RELAXED)) {
		zcr_log(ZC_LOG_ERR, "stopped after a worker failed");
		return 1;
	}
	zcr_log(ZC_LOG_INFO, "stopped");
	return 0;
}
