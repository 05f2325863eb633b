/*
 * net_faults.c - the daemon on a network that misbehaves: a rate limit
 * (tc tbf), random packet loss, a peer that vanishes without a FIN or a
 * reset, a peer that never reads, and a flood of connects beyond the
 * route's max-conns.
 *
 * Each test builds three network namespaces of its own, joined by two
 * veth pairs, and deletes them when it ends:
 *
 *   client ns             relay ns                      upstream ns
 *   c0 10.200.1.1 <-----> r0 10.200.1.2
 *                         r1 10.200.2.1 <-------------> u0 10.200.2.2
 *                         zcrelay on :7000  ---------->  listener :8000
 *                         admin on 127.0.0.1:9100
 *
 * The test's main thread starts the daemon while it is in the relay
 * namespace (a child inherits the namespace of the thread that forked
 * it, and /proc/net, which t_daemon_up reads, is the main thread's);
 * it makes the upstream listener in the upstream namespace and its
 * clients in the client namespace. setns(2) moves only the calling
 * thread, and a socket stays in the namespace it was made in, so the
 * transfer threads need no namespace of their own. No packet leaves
 * these namespaces; the root namespace gets no device and no address.
 *
 * Namespaces are named after the test's pid ("zcnf-<pid>-r"); those of a
 * test that was killed are deleted by the next one. The tests skip where
 * `ip netns add` fails (not root, no CAP_NET_ADMIN).
 *
 * This kernel has no netem and no act_gact, but it has cls_bpf: packet
 * loss is a classic BPF program in direct-action mode on the clsact
 * hook, "A = random; return A < p * 2^32 ? TC_ACT_SHOT : TC_ACT_OK",
 * given to tc as bytecode, so nothing is compiled at build time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"
#include "tproc.h"

#define NO_DAEMON "ZC_DAEMON not set"
/* The bound on the daemon's memory growth: 8 MiB, plus, for the ring
 * mover and auto on io_uring, the buffer ring (256 x 64 KiB), which a
 * long transfer touches whole: a fixed pool, not growth with the
 * bytes. */
#define MEM_BOUND_KB(T) (8 * 1024 + ((T)->ring_pool ? 256 * 64 : 0))
#define countof(a)      (sizeof(a) / sizeof((a)[0]))

enum { NF_C, NF_R, NF_U, NF_NS };

static const char nf_tag[NF_NS] = {'c', 'r', 'u'};

#define LISTEN_ADDR   "10.200.1.2:7000"
#define UPSTREAM_ADDR "10.200.2.2:8000"
#define ADMIN_ADDR    "127.0.0.1:9100"

/* ------------------------------------------------------------------ */
/* Namespaces                                                           */

struct nf {
	char name[NF_NS][40];
	int fd[NF_NS]; /* /run/netns/<name>, or -1 */
	int self;      /* the namespace the test started in, or -1 */
	int made;      /* namespaces created so far */
	char ip[64], tc[64];
};

/* The path of tool name (in $PATH or an sbin directory) into out;
 * 0 or -ENOENT. */
static int nf_tool(char *out, size_t size, const char *name)
{
	static const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin",
	                                   "/bin"};
	size_t i;

	if (t_in_path(name)) {
		snprintf(out, size, "%s", name);
		return 0;
	}
	for (i = 0; i < countof(dirs); i++) {
		snprintf(out, size, "%s/%s", dirs[i], name);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

/* Runs a shell command (printf format) through t_run; its result. */
static int nf_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int nf_sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return t_run(cmd);
}

/* Deletes the namespaces left by tests that died without cleaning up:
 * "zcnf-<pid>-*" whose pid no longer runs. */
static void nf_clean_stale(const struct nf *N)
{
	struct dirent *de;
	DIR *dp = opendir("/run/netns");
	char tag;
	int pid;

	if (!dp)
		return;
	while ((de = readdir(dp))) {
		if (sscanf(de->d_name, "zcnf-%d-%c", &pid, &tag) != 2 ||
		    pid == (int)getpid())
			continue;
		if (kill(pid, 0) == -1 && errno == ESRCH)
			nf_sh("%s netns del %s", N->ip, de->d_name);
	}
	closedir(dp);
}

/* Moves the calling thread into namespace which (NF_NS: the test's own). */
static int nf_enter(const struct nf *N, int which)
{
	int fd = which == NF_NS ? N->self : N->fd[which];

	ASSERT_EQ(setns(fd, CLONE_NEWNET), 0);
	return T_PASS;
}

/* Deletes what nf_setup made and returns the test to its own namespace.
 * Harmless on a partly set up or already torn down N. */
static void nf_teardown(struct nf *N)
{
	int i;

	if (N->self >= 0) {
		setns(N->self, CLONE_NEWNET);
		close(N->self);
		N->self = -1;
	}
	for (i = 0; i < NF_NS; i++) {
		if (N->fd[i] >= 0)
			close(N->fd[i]);
		N->fd[i] = -1;
	}
	/* Deleting a namespace destroys its veth ends, and with them
	 * their peers in the other namespaces. */
	for (i = 0; i < N->made; i++)
		nf_sh("%s netns del %s", N->ip, N->name[i]);
	N->made = 0;
}

/*
 * Runs "<tool> -n <namespace which> args", args in printf format, for
 * tool ip or tc (nf_ip, nf_tc); the result of t_run.
 */
static int nf_in(const struct nf *N, const char *tool, int which,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int nf_in(const struct nf *N, const char *tool, int which,
                 const char *fmt, ...)
{
	char args[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return nf_sh("%s -n %s %s", tool, N->name[which], args);
}

#define nf_ip(N, which, ...) nf_in((N), (N)->ip, (which), __VA_ARGS__)
#define nf_tc(N, which, ...) nf_in((N), (N)->tc, (which), __VA_ARGS__)

/* Addresses and links up, once the veth pairs exist. */
static const struct {
	int ns;
	const char *args;
} nf_wiring[] = {
        {NF_C, "addr add 10.200.1.1/24 dev c0"},
        {NF_R, "addr add 10.200.1.2/24 dev r0"},
        {NF_R, "addr add 10.200.2.1/24 dev r1"},
        {NF_U, "addr add 10.200.2.2/24 dev u0"},
        {NF_C, "link set c0 up"},
        {NF_R, "link set r0 up"},
        {NF_R, "link set r1 up"},
        {NF_R, "link set lo up"},
        {NF_U, "link set u0 up"},
};

/*
 * Adds namespace i, trying three times: iproute2 sets up /run/netns
 * (a shared mount) on its first use, which another process adding a
 * namespace at the same moment can make fail once. 0 or ip's status.
 */
static int nf_add(struct nf *N, int i)
{
	int k, rc = 0;

	for (k = 0; k < 3; k++) {
		rc = nf_sh("%s netns add %s", N->ip, N->name[i]);
		if (rc == 0)
			return 0;
		t_sleep_ms(100);
	}
	return rc;
}

/*
 * Builds the three namespaces and their links. T_PASS, T_SKIP (no ip or
 * tc, or `ip netns add` refused), or T_FAIL; the caller runs
 * nf_teardown in every case.
 */
static int nf_setup(struct nf *N)
{
	char path[80];
	size_t k;
	int i;

	memset(N, 0, sizeof(*N));
	N->self = -1;
	for (i = 0; i < NF_NS; i++)
		N->fd[i] = -1;
	T_SKIP_IF(nf_tool(N->ip, sizeof(N->ip), "ip"), "ip(8) not found");
	T_SKIP_IF(nf_tool(N->tc, sizeof(N->tc), "tc"), "tc(8) not found");
	nf_clean_stale(N);
	for (i = 0; i < NF_NS; i++)
		snprintf(N->name[i], sizeof(N->name[i]), "zcnf-%d-%c",
		         (int)getpid(), nf_tag[i]);
	if (nf_add(N, 0))
		T_SKIP("ip netns add failed (needs root or CAP_NET_ADMIN)");
	N->made = 1;
	for (i = 1; i < NF_NS; i++) {
		ASSERT_EQ(nf_add(N, i), 0);
		N->made++;
	}
	ASSERT_EQ(nf_ip(N, NF_R, "link add r0 type veth peer name c0 netns %s",
	                N->name[NF_C]),
	          0);
	ASSERT_EQ(nf_ip(N, NF_R, "link add r1 type veth peer name u0 netns %s",
	                N->name[NF_U]),
	          0);
	for (k = 0; k < countof(nf_wiring); k++)
		ASSERT_EQ(nf_ip(N, nf_wiring[k].ns, "%s", nf_wiring[k].args),
		          0);
	N->self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_OK(N->self);
	for (i = 0; i < NF_NS; i++) {
		snprintf(path, sizeof(path), "/run/netns/%s", N->name[i]);
		N->fd[i] = open(path, O_RDONLY | O_CLOEXEC);
		ASSERT_OK(N->fd[i]);
	}
	return T_PASS;
}

/*
 * Drops permille / 1000 of the packets that pass dev's hook ("ingress"
 * or "egress") at random; 1000 drops all of them. dev must have a
 * clsact qdisc. The filter has preference 1 (nf_pass removes it).
 */
static int nf_drop(const struct nf *N, int which, const char *dev,
                   const char *hook, unsigned permille)
{
	/* SKF_AD_OFF + SKF_AD_RANDOM: a classic BPF load of a random u32 */
	const unsigned long ld_rand = 0x100000000UL - 0x1000 + 56;
	unsigned long k = (0x100000000UL / 1000) * permille;

	if (permille >= 1000)
		return nf_tc(N, which,
		             "filter add dev %s %s pref 1 bpf da bytecode "
		             "'1,6 0 0 2'",
		             dev, hook);
	/* A = rand; if (A >= k) return TC_ACT_OK; return TC_ACT_SHOT; */
	return nf_tc(N, which,
	             "filter add dev %s %s pref 1 bpf da bytecode "
	             "'4,32 0 0 %lu,53 0 1 %lu,6 0 0 0,6 0 0 2'",
	             dev, hook, ld_rand, k);
}

/* Removes nf_drop's filter. */
static int nf_pass(const struct nf *N, int which, const char *dev,
                   const char *hook)
{
	return nf_tc(N, which, "filter del dev %s %s pref 1", dev, hook);
}

/* The packets dropped at dev's qdiscs so far (tc -s), or -errno. */
static long long nf_drops(const struct nf *N, int which, const char *dev)
{
	char cmd[256], line[512], *p;
	long long sum = 0, n;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s -n %s -s qdisc show dev %s", N->tc,
	         N->name[which], dev);
	f = popen(cmd, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if ((p = strstr(line, "(dropped ")) &&
		    sscanf(p, "(dropped %lld", &n) == 1)
			sum += n;
	if (pclose(f) != 0)
		return -EIO;
	return sum;
}

/* ------------------------------------------------------------------ */
/* The daemon's memory and fds                                          */

/* Keeps the largest of each field of m in peak. */
static void nf_mem_max(struct t_proc_mem *peak, const struct t_proc_mem *m)
{
	if (m->rss_kb > peak->rss_kb)
		peak->rss_kb = m->rss_kb;
	if (m->fds > peak->fds)
		peak->fds = m->fds;
	if (m->pipes > peak->pipes)
		peak->pipes = m->pipes;
}

/* A thread sampling the daemon every 100 ms into peak until stopped. */
struct nf_sampler {
	pthread_t th;
	pid_t pid;
	int stop; /* atomic */
	int n;    /* samples taken */
	struct t_proc_mem peak;
};

static void *nf_sampler_main(void *arg)
{
	struct nf_sampler *s = arg;
	struct t_proc_mem m;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		if (t_proc_mem(s->pid, &m) == 0) {
			nf_mem_max(&s->peak, &m);
			s->n++;
		}
		t_sleep_ms(100);
	}
	return NULL;
}

static int nf_sampler_start(struct nf_sampler *s, pid_t pid)
{
	memset(s, 0, sizeof(*s));
	s->pid = pid;
	return -pthread_create(&s->th, NULL, nf_sampler_main, s);
}

static void nf_sampler_stop(struct nf_sampler *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	pthread_join(s->th, NULL);
}

/* ------------------------------------------------------------------ */
/* The daemon in the relay namespace                                    */

struct nft {
	struct nf N;
	struct t_daemon d;
	struct zc_addr la, ua, aa; /* listen, upstream, admin */
	int ulfd;                  /* the upstream's listener */
	int mover;                 /* the data path's, enum zc_mover */
	int ring_pool;             /* it uses the buffer ring */
};

/*
 * Builds the namespaces, the upstream listener and the daemon (one
 * worker, ctx's data path, one route "r" with the settings extra), and
 * leaves the main thread in the client namespace. T_PASS, T_SKIP or
 * T_FAIL; nft_down follows in every case.
 */
static int nft_up(struct nft *T, const struct t_ctx *ctx, const char *extra)
{
	memset(&T->d, 0, sizeof(T->d));
	T->ulfd = -1;
	T->mover = ctx->mover;
	T->ring_pool =
	        ctx->mover == ZC_MOVER_RING ||
	        (ctx->mover == ZC_MOVER_AUTO && ctx->engine == ZC_ENGINE_URING);
	T_TRY(nf_setup(&T->N));
	if (!t_daemon_path())
		T_SKIP(NO_DAEMON);
	ASSERT_OK(zc_addr_parse(&T->la, LISTEN_ADDR, ZC_ADDR_NUMERIC));
	ASSERT_OK(zc_addr_parse(&T->ua, UPSTREAM_ADDR, ZC_ADDR_NUMERIC));
	ASSERT_OK(zc_addr_parse(&T->aa, ADMIN_ADDR, ZC_ADDR_NUMERIC));
	T_TRY(nf_enter(&T->N, NF_U));
	T->ulfd = t_listen_at(&T->ua);
	ASSERT_OK(T->ulfd);
	T_TRY(nf_enter(&T->N, NF_R));
	T_TRY(t_daemon_conf(&T->d, &T->la,
	                    "workers = 1;\n%s\nadmin = \"" ADMIN_ADDR "\";\n"
	                    "routes = ( { name = \"r\";\n"
	                    "  listen = \"" LISTEN_ADDR "\";\n"
	                    "  upstreams = \"" UPSTREAM_ADDR "\";\n"
	                    "  mover = \"%s\";\n  %s\n} );\n",
	                    t_cfg_engine(ctx), t_cfg_mover(ctx), extra));
	return nf_enter(&T->N, NF_C);
}

/* Stops the daemon (checking its clean exit if rc is T_PASS), closes
 * the listener, deletes the namespaces. Returns rc or the stop's
 * failure. */
static int nft_down(struct nft *T, int rc)
{
	if (T->ulfd >= 0)
		close(T->ulfd);
	T->ulfd = -1;
	if (T->d.pid && rc == T_PASS)
		rc = t_daemon_down(&T->d);
	else if (T->d.pid)
		t_daemon_stop(&T->d, SIGKILL);
	nf_teardown(&T->N);
	return rc;
}

/* nft_up with ctx and extra, then body if that passed, then nft_down. */
static int nft_run(const struct t_ctx *ctx, const char *extra,
                   int (*body)(struct nft *T))
{
	struct nft T;
	int rc = nft_up(&T, ctx, extra);

	if (rc == T_PASS)
		rc = body(&T);
	return nft_down(&T, rc);
}

/* The daemon's route metric sample (see t_metric), read on the admin
 * endpoint in the relay namespace; -1 if missing. */
static long long nft_metric(struct nft *T, const char *sample)
{
	char *body = NULL;
	long long v = -1;

	if (nf_enter(&T->N, NF_R))
		return -1;
	if (t_http_get(&T->aa, "/metrics", &body) == 200)
		v = t_metric(body, sample);
	free(body);
	if (nf_enter(&T->N, NF_C))
		return -1;
	return v;
}

/* A session client <-> upstream through the daemon, checked with a ping. */
static int nft_session(struct nft *T, int *c, int *u)
{
	return t_session(&T->la, NULL, &T->ulfd, 1, c, u, NULL);
}

/* ------------------------------------------------------------------ */
/* (1) A rate limit                                                     */

#define RATE_MBIT  40
#define RATE_BYTES (20u << 20)
#define TBF        "qdisc add dev %s root tbf rate %umbit burst 64kb latency 100ms"

/*
 * tbf at 40 mbit/s on both ends of the relay-upstream link: 20 MiB each
 * way at once arrive intact (SHA-256), in about the time the rate allows
 * (the payload alone needs 4.2 s, Ethernet, IP and TCP headers add 5 %;
 * the bound above leaves room for a busy machine), while the daemon, which reads the client's side much faster than it
 * can write the upstream's, holds no more than a few MiB: it must stop
 * reading instead of buffering.
 */
static int rate_limit(struct nft *T)
{
	uint64_t ideal_ms = (uint64_t)RATE_BYTES * 8 / (RATE_MBIT * 1000);
	struct nf_sampler s;
	struct t_proc_mem m0;
	uint64_t t0, ms;
	int c, u, rc;

	ASSERT_EQ(nf_tc(&T->N, NF_R, TBF, "r1", RATE_MBIT), 0);
	ASSERT_EQ(nf_tc(&T->N, NF_U, TBF, "u0", RATE_MBIT), 0);
	T_TRY(nft_session(T, &c, &u));
	ASSERT_OK(t_proc_mem(T->d.pid, &m0));
	ASSERT_OK(nf_sampler_start(&s, T->d.pid));
	t0 = t_now_ms();
	rc = t_xfer_both(c, u, RATE_BYTES, 100);
	ms = t_now_ms() - t0;
	nf_sampler_stop(&s);
	close(c);
	close(u);
	if (rc)
		return rc;
	t_log("20 MiB each way at %u mbit/s: %llu ms (payload alone %llu "
	      "ms); daemon RSS %ld -> peak %ld KiB, fds %d -> %d, pipe ends "
	      "%d -> %d (%d samples)",
	      RATE_MBIT, (unsigned long long)ms, (unsigned long long)ideal_ms,
	      m0.rss_kb, s.peak.rss_kb, m0.fds, s.peak.fds, m0.pipes,
	      s.peak.pipes, s.n);
	ASSERT_GE(ms, ideal_ms * 95 / 100);
	ASSERT_LE(ms, ideal_ms * 2 + 1000);
	ASSERT_GE(s.n, 10);
	ASSERT_LE(s.peak.rss_kb, m0.rss_kb + MEM_BOUND_KB(T));
	ASSERT_LE(s.peak.pipes, m0.pipes + 4);
	return T_PASS;
}

TEST_MATRIX_TIMEOUT(test_net_rate_limit, 180)
{
	return nft_run(ctx, "", rate_limit);
}

/* ------------------------------------------------------------------ */
/* (2) Packet loss                                                      */

#define LOSS_PERMILLE 30
#define LOSS_BYTES    (8u << 20)

static const struct {
	int ns;
	const char *dev;
} loss_devs[] = {{NF_C, "c0"}, {NF_R, "r0"}, {NF_R, "r1"}, {NF_U, "u0"}};

/*
 * 3 % of the packets leaving each of the four veth ends dropped at
 * random (so both links lose in both directions): 8 MiB each way still
 * arrive intact, TCP retransmitting underneath the relay. The devices
 * take no GSO packets (gso_max_segs 1): a drop costs one segment, not
 * 64 KiB of them, so thousands of segments are lost along the way.
 */
static int packet_loss(struct nft *T)
{
	long long drops = 0, n;
	uint64_t t0, ms;
	size_t i;
	int c, u, rc;

	/* No GSO before the session: a socket takes its route's GSO limits
	 * when it connects, so one made earlier would still send 64 KiB
	 * packets (a drop then costs 45 segments, and a run saw 66 drops in
	 * all instead of thousands). */
	for (i = 0; i < countof(loss_devs); i++)
		ASSERT_EQ(nf_ip(&T->N, loss_devs[i].ns,
		                "link set dev %s gso_max_segs 1",
		                loss_devs[i].dev),
		          0);
	/* The session before the loss: a lost SYN costs a 1 s retransmit
	 * per hop, longer than the session set-up may take; the bytes then
	 * cross the lossy links. */
	T_TRY(nft_session(T, &c, &u));
	for (i = 0; i < countof(loss_devs); i++) {
		ASSERT_EQ(nf_tc(&T->N, loss_devs[i].ns,
		                "qdisc add dev %s "
		                "clsact",
		                loss_devs[i].dev),
		          0);
		ASSERT_EQ(nf_drop(&T->N, loss_devs[i].ns, loss_devs[i].dev,
		                  "egress", LOSS_PERMILLE),
		          0);
	}
	t0 = t_now_ms();
	rc = t_xfer_both(c, u, LOSS_BYTES, 200);
	ms = t_now_ms() - t0;
	close(c);
	close(u);
	if (rc)
		return rc;
	for (i = 0; i < countof(loss_devs); i++) {
		n = nf_drops(&T->N, loss_devs[i].ns, loss_devs[i].dev);
		ASSERT_OK(n);
		drops += n;
	}
	t_log("8 MiB each way with %u permille loss per veth end: %llu ms, "
	      "%lld packets dropped",
	      LOSS_PERMILLE, (unsigned long long)ms, drops);
	ASSERT_GT(drops, 100);
	return T_PASS;
}

TEST_MATRIX_TIMEOUT(test_net_packet_loss, 180)
{
	return nft_run(ctx, "", packet_loss);
}

/* ------------------------------------------------------------------ */
/* (3) A peer that vanishes                                             */

#define IDLE_MS 1000

/*
 * The n-th session (n from 1): once it relays, every packet to and from
 * the relay's device toward the peer gone (NF_U or NF_C) is dropped, so
 * that peer neither closes nor resets: it is just no longer there. The
 * other peer sends 1 KiB, which the daemon moves into its socket toward
 * the vanished one (so its idle clock starts again), then both stay
 * quiet. The daemon must end the session by its idle timeout, about
 * IDLE_MS later, with end=timeout, and the vanished peer must have seen
 * nothing.
 */
static int vanish(struct nft *T, int gone, int n)
{
	const char *dev = gone == NF_U ? "r1" : "r0";
	char kib[1024];
	int c, u, keep, lost, r;
	uint64_t t0, ms;

	T_TRY(nft_session(T, &c, &u));
	keep = gone == NF_U ? c : u;
	lost = gone == NF_U ? u : c;
	ASSERT_EQ(nf_drop(&T->N, NF_R, dev, "ingress", 1000), 0);
	ASSERT_EQ(nf_drop(&T->N, NF_R, dev, "egress", 1000), 0);
	memset(kib, 'v', sizeof(kib));
	ASSERT_OK(t_write_all(keep, kib, sizeof(kib)));
	t0 = t_now_ms();
	r = t_wait_eof(keep, IDLE_MS + 4000);
	ms = t_now_ms() - t0;
	t_log("%s vanished: the other side closed after %llu ms (r = %d)",
	      gone == NF_U ? "upstream" : "client", (unsigned long long)ms, r);
	if (!t_is_closed(r))
		return t_fail(__FILE__, __LINE__,
		              "session not closed: t_wait_eof = %d", r);
	ASSERT_GE(ms, IDLE_MS - 100);
	ASSERT_LE(ms, IDLE_MS + 1500);
	ASSERT_EQ(t_wait_log_count(&T->d, "session ", " end=timeout", n, 2000),
	          n);
	ASSERT_ERR(t_wait_eof(lost, 200), -ETIMEDOUT);
	close(c);
	close(u);
	ASSERT_EQ(nf_pass(&T->N, NF_R, dev, "ingress"), 0);
	ASSERT_EQ(nf_pass(&T->N, NF_R, dev, "egress"), 0);
	return T_PASS;
}

/* The upstream vanishes, then (on a new session) the client. */
static int vanishing_peers(struct nft *T)
{
	ASSERT_EQ(nf_tc(&T->N, NF_R, "qdisc add dev r0 clsact"), 0);
	ASSERT_EQ(nf_tc(&T->N, NF_R, "qdisc add dev r1 clsact"), 0);
	T_TRY(vanish(T, NF_U, 1));
	T_TRY(vanish(T, NF_C, 2));
	ASSERT_EQ(nft_metric(T, "zcrelay_route_timeouts_total{route=\"r\","
	                        "kind=\"idle\"}"),
	          2);
	return T_PASS;
}

TEST_MATRIX(test_net_vanished_peer)
{
	return nft_run(ctx, "idle-timeout = 1000;", vanishing_peers);
}

/* ------------------------------------------------------------------ */
/* (4) A peer that never reads                                          */

#define STALL_MS    10000
#define STALL_CHUNK 65536

/*
 * The upstream accepts and never reads while the client writes as fast
 * as it can for 10 s: the daemon's RSS and pipes stay put (at most one
 * pipe for the stalled direction), and the client gets stuck once the
 * socket buffers and the one pipe are full: a few MiB, not what 10 s of
 * writing could push. Then the upstream reads it all: byte-exact.
 */
static int never_reads(struct nft *T)
{
	static unsigned char buf[STALL_CHUNK];
	unsigned char want[T_SHA256_LEN];
	uint64_t gen = 0, at5 = 0, end, next;
	struct t_proc_mem m0, m, peak;
	struct t_rng rng;
	struct t_xfer rx;
	size_t pos = 0, len = 0;
	struct pollfd p;
	ssize_t w;
	int c, u;

	T_TRY(nft_session(T, &c, &u));
	ASSERT_OK(t_proc_mem(T->d.pid, &m0));
	peak = m0;
	ASSERT_EQ(fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK), 0);
	t_rng_init(&rng, 300);
	end = t_now_ms() + STALL_MS;
	next = t_now_ms() + 250;
	while (t_now_ms() < end) {
		if (pos == len) {
			t_rng_fill(&rng, buf, sizeof(buf));
			gen += sizeof(buf);
			pos = 0;
			len = sizeof(buf);
		}
		p.fd = c;
		p.events = POLLOUT;
		if (poll(&p, 1, 50) == 1) {
			w = write(c, buf + pos, len - pos);
			if (w == -1 && errno != EAGAIN)
				return t_fail(__FILE__, __LINE__, "write: %s",
				              strerror(errno));
			if (w > 0)
				pos += (size_t)w;
		}
		if (t_now_ms() >= next) {
			ASSERT_OK(t_proc_mem(T->d.pid, &m));
			nf_mem_max(&peak, &m);
			if (!at5 && t_now_ms() + STALL_MS / 2 >= end)
				at5 = gen - (len - pos);
			next += 250;
		}
	}
	t_log("stalled upstream: the client got %llu bytes in (%llu at 5 s); "
	      "daemon RSS %ld -> peak %ld KiB, fds %d -> %d, pipe ends %d "
	      "-> %d",
	      (unsigned long long)(gen - (len - pos)), (unsigned long long)at5,
	      m0.rss_kb, peak.rss_kb, m0.fds, peak.fds, m0.pipes, peak.pipes);
	ASSERT_LE(peak.rss_kb, m0.rss_kb + MEM_BOUND_KB(T));
	ASSERT_LE(peak.pipes, m0.pipes + 2);
	ASSERT_LE(peak.fds, m0.fds + 2);
	ASSERT_LE(gen, 64u << 20);
	ASSERT_LE(gen - (len - pos) - at5, 1u << 20);

	/* Now the upstream reads: everything arrives, in order. */
	ASSERT_OK(t_receiver_start(&rx, u, 0));
	ASSERT_EQ(fcntl(c, F_SETFL, fcntl(c, F_GETFL) & ~O_NONBLOCK), 0);
	ASSERT_OK(t_write_all(c, buf + pos, len - pos));
	ASSERT_EQ(shutdown(c, SHUT_WR), 0);
	ASSERT_OK(t_xfer_join_ms(&rx, 30000));
	t_expect_digest(300, gen, want);
	ASSERT_EQ(rx.bytes, gen);
	ASSERT_TRUE(rx.eof);
	ASSERT_MEMEQ(rx.digest, want, T_SHA256_LEN);
	close(c);
	close(u);
	return T_PASS;
}

TEST_MATRIX(test_net_never_reads)
{
	return nft_run(ctx, "", never_reads);
}

/* ------------------------------------------------------------------ */
/* (6) A flood of connects beyond max-conns                             */

#define FLOOD_MAX    50
#define FLOOD_N      2000
#define FLOOD_BURST  100
#define FLOOD_LAT_MS 100

/* Echoes everything it reads on fd until EOF or an error. */
static void *echo_main(void *arg)
{
	int fd = *(int *)arg;
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (t_write_all(fd, buf, (size_t)n))
			break;
	return NULL;
}

/* FLOOD_N clients at most FLOOD_BURST at a time, each waiting for the
 * daemon to close it. */
struct flood {
	pthread_t th;
	const struct zc_addr *la;
	int closed;  /* by the daemon (EOF or reset) */
	int other;   /* data, a failed connect, a time-out */
	int running; /* atomic: 0 once done */
};

static int flood_connect(const struct zc_addr *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -errno;
	}
	return fd;
}

static void *flood_main(void *arg)
{
	struct flood *f = arg;
	struct pollfd p[FLOOD_BURST];
	int started = 0, live = 0, i, fd;
	uint64_t deadline = t_now_ms() + 60000;
	char ch;
	ssize_t n;

	while ((started < FLOOD_N || live) && t_now_ms() < deadline) {
		while (started < FLOOD_N && live < FLOOD_BURST) {
			fd = flood_connect(f->la);
			started++;
			if (fd < 0) {
				f->other++;
				continue;
			}
			p[live].fd = fd;
			p[live].events = POLLIN;
			live++;
		}
		if (poll(p, (nfds_t)live, 100) <= 0)
			continue;
		for (i = 0; i < live; i++) {
			if (!p[i].revents)
				continue;
			n = read(p[i].fd, &ch, 1);
			if (n == 0 || (n == -1 && errno == ECONNRESET))
				f->closed++;
			else if (n == -1 && errno == EAGAIN)
				continue;
			else
				f->other++;
			close(p[i].fd);
			p[i--] = p[--live];
		}
	}
	for (i = 0; i < live; i++) {
		close(p[i].fd);
		f->other++;
	}
	__atomic_store_n(&f->running, 0, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * max-conns 50: 50 sessions held (one of them echoed by the upstream),
 * then 2000 more clients, 100 at a time: each is turned away at once
 * while the echoed session keeps answering within 100 ms; the log and
 * the metrics count the 2000 rejections, and the upstream never sees
 * one of them.
 */
static int flood(struct nft *T)
{
	int c[FLOOD_MAX], u[FLOOD_MAX], i;
	uint64_t t0, lat, max_lat = 0, sum_lat = 0, pings = 0;
	struct flood f = {.la = &T->la, .running = 1};
	pthread_t echo;
	char ch;

	for (i = 0; i < FLOOD_MAX; i++)
		T_TRY(nft_session(T, &c[i], &u[i]));
	ASSERT_EQ(pthread_create(&echo, NULL, echo_main, &u[0]), 0);
	ASSERT_EQ(pthread_create(&f.th, NULL, flood_main, &f), 0);
	while (__atomic_load_n(&f.running, __ATOMIC_ACQUIRE)) {
		t0 = t_now_ns();
		ASSERT_OK(t_write_all(c[0], "p", 1));
		ASSERT_EQ(t_read_full(c[0], &ch, 1, 2000), 1);
		lat = t_now_ns() - t0;
		if (lat > max_lat)
			max_lat = lat;
		sum_lat += lat;
		pings++;
		t_sleep_ms(2);
	}
	pthread_join(f.th, NULL);
	t_log("flood of %d clients beyond max-conns %d: %d closed at once, "
	      "%d otherwise; %llu echoes meanwhile, max %llu us, mean %llu "
	      "us",
	      FLOOD_N, FLOOD_MAX, f.closed, f.other, (unsigned long long)pings,
	      (unsigned long long)max_lat / 1000,
	      (unsigned long long)(pings ? sum_lat / pings / 1000 : 0));
	ASSERT_EQ(f.closed, FLOOD_N);
	ASSERT_GE(pings, 10);
	ASSERT_LT(max_lat, (uint64_t)FLOOD_LAT_MS * 1000000);
	ASSERT_EQ(t_wait_log_count(&T->d, "rejected: route at max-conns",
	                           " route=r ", FLOOD_N, 5000),
	          FLOOD_N);
	ASSERT_EQ(nft_metric(T, "zcrelay_route_rejected_total{route=\"r\","
	                        "reason=\"maxconn\"}"),
	          FLOOD_N);
	ASSERT_ERR(t_accept_ms(T->ulfd, 0), -ETIMEDOUT);
	/* The held sessions still relay; the echo thread ends at EOF. */
	for (i = 1; i < FLOOD_MAX; i++)
		T_TRY(t_ping(c[i], u[i]));
	ASSERT_EQ(shutdown(c[0], SHUT_WR), 0);
	pthread_join(echo, NULL);
	for (i = 0; i < FLOOD_MAX; i++) {
		close(c[i]);
		close(u[i]);
	}
	return T_PASS;
}

TEST_TIMEOUT(test_net_connect_flood, 180)
{
	return nft_run(ctx, "max-conns = 50;", flood);
}
