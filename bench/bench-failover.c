/* SPDX-License-Identifier: MIT */
/*
 * bench-failover.c: freshet across two hosts that replicate each other's
 * shards (doc/operations.md "Replication"): how long a partition goes
 * unindexed when the host writing it dies, how far the replicas lag behind
 * their writers under edits, and what searching through xapian-tcpsrv
 * costs against searching the same shards locally.
 *
 * Usage: bench-failover [-n PAGES] [-c CORPUS_DIR] [-w WORKER] [-d SEARCHD]
 *                       [-L LEASE_MS] [-K KILLS] [-q] [-k]
 *
 * CORPUS_DIR is bench/make-pipeline-corpus.sh's (without -c the bench
 * generates PAGES pages, default 2,000, as bench-pipeline does); WORKER and
 * SEARCHD default to ./freshet-worker and ./freshet-searchd (run from the
 * build directory).  -q is the quick mode: 500 pages, 3 kills, 10 s of
 * edits for the lag.  -k keeps the private directory and its logs.
 *
 * The stage (servers from harness.h, each stopped by its pid): one
 * redis-server, nginx serving the corpus as the wiki's API, and two
 * "hosts" A and B on loopback, each with its own data_dir, its own
 * xapian-replicate-server on a port of its own and its own freshet-worker
 * ([worker] lease_ms = LEASE_MS, default 3000, commit_ms = 200;
 * [replication] changesets = 1000, advertise = its server, wikis = the
 * wiki, interval_s = 1).  The servers and the workers run in process
 * groups of their own: Xapian's servers signal their whole group when they
 * exit.  The workers split the 4 partitions between them, index one
 * create event per page, and each keeps a replica of the other's shards.
 *
 *  1. Failover, KILLS times (default 10): once both hosts hold two
 *     partitions each, every entry is acknowledged and every replica is at
 *     its writer's revision, the host writing partition 0 loses its worker
 *     and its xapian-replicate-server to SIGKILL at once.  The worker's
 *     xapian-replicate children must die with it (PR_SET_PDEATHSIG): each
 *     is looked for 5 s later, and any left is counted as an orphan.  From
 *     the kill on, the bench edits a page of the dead host's partitions
 *     every 50 ms (in turn), and times from the kill until the first entry
 *     added after it is acknowledged in every one of those partitions (the
 *     group's last-delivered id at or past it, the entry not pending): the
 *     survivor must see the leases expire, take them, promote its replicas
 *     and replay the stream from their stored positions first.  Then the
 *     dead host starts again on its data_dir and the next kill waits for
 *     the state above.  p50 and p99 over the kills (nearest rank: below 100
 *     kills the p99 is the largest); target 2 x LEASE_MS + 5 s.
 *  2. Replica lag: edits of random pages (the overlay of harness.h, then
 *     an XADD each) at 200 per second for 20 s.  Every 100 ms the bench
 *     reads each partition's revision on its writer's shard and on the
 *     other host's replica (shard_set_stats(), read-only), and records
 *     revisions behind (writer - replica) per sample, and seconds behind:
 *     for each revision R a writer reached, the time the replica was first
 *     seen at R or later minus the time the writer was (so up to one
 *     sampling interval late).  Sampling goes on after the edits until the
 *     replicas catch up.  p50 and p99 of both; target p99 <= 5 s.
 *  3. Remote shards: host B's worker stops (SIGTERM), host A takes its
 *     partitions (promoting its replicas) and holds every shard.  Then
 *     freshet-searchd (2 threads) on A's configuration, once with
 *     search = local, once with search = remote over one xapian-tcpsrv per
 *     shard on loopback (serving A's <wiki>/current/shard-N), is asked
 *     bench-searchd's 1,000 queries (queryset.h) by 8 clients, each a
 *     thread with its own keep-alive libcurl handle, after 200 untimed
 *     ones; local, remote, local, remote, the queries/s of each setting
 *     over its two runs.  Target: remote >= 50% of local.
 *
 * Each figure is printed with its target and PASS or MISS.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "harness.h"
#include "queryset.h"
#include "shard.h"

#define XAPIAN_REPLICATE_SERVER "xapian-replicate-server"
#define XAPIAN_TCPSRV "xapian-tcpsrv"
#define EDIT_EVERY_S 0.050 /* edits during a failover */
#define LAG_EDITS_PER_S 200.0
#define SAMPLE_S 0.100
#define SETTLE_S 180.0
#define CLIENTS 8
#define WARMUP 200
#define MAXKIDS 64

struct host {
	char name; /* 'A' or 'B' */
	char data[512], conf[512], slog[512];
	int port; /* its xapian-replicate-server */
	pid_t server, worker;
	struct shard_set *set; /* its data_dir, for revisions */
};

static struct host hosts[2];
static int lease_ms = 3000;
static char searchd_bin[4096] = "./freshet-searchd";
static pid_t searchd_pid, tcpsrv_pid[MAXP];

static void stop_ours(void)
{
	harness_stop_pid(&searchd_pid, SIGTERM);
	for (int p = 0; p < MAXP; p++)
		harness_stop_pid(&tcpsrv_pid[p], SIGKILL);
	for (int i = 0; i < 2; i++) {
		harness_stop_pid(&hosts[i].worker, SIGTERM);
		harness_stop_pid(&hosts[i].server, SIGKILL);
	}
}

/* ------------------------------------------------------------ hosts */

static void host_init(struct host *h, int i)
{
	h->name = (char)('A' + i);
	snprintf(h->data, sizeof h->data, "%s/host-%c", harness_dir, h->name);
	snprintf(h->conf, sizeof h->conf, "%s/host-%c.conf", harness_dir, h->name);
	snprintf(h->slog, sizeof h->slog, "%s/server-%c.log", harness_dir, h->name);
	if (mkdir(h->data, 0750) != 0)
		harness_die("%s: %s", h->data, strerror(errno));
	h->port = harness_free_port();
	char extra[512], repl[512];
	snprintf(extra, sizeof extra,
		 "lease_ms = %d\ncommit_ms = 200\nshutdown_timeout_ms = 10000\n", lease_ms);
	snprintf(repl, sizeof repl,
		 "\n[replication]\nchangesets = 1000\nadvertise = 127.0.0.1:%d\n"
		 "wikis = " WIKI "\ninterval_s = 1\n",
		 h->port);
	harness_worker_conf(h->conf, h->data, WIKI, extra, repl);
	h->set = shard_set_new(h->data, WIKI);
}

/* Starts h's xapian-replicate-server and worker. */
static void host_start(struct host *h)
{
	char port[16];
	snprintf(port, sizeof port, "%d", h->port);
	char *argv[] = { XAPIAN_REPLICATE_SERVER, "-I", "127.0.0.1", "-p", port, h->data, NULL };
	h->server = harness_spawn_group(argv, h->slog, NULL);
	harness_wait_port(h->server, h->port, XAPIAN_REPLICATE_SERVER);
	char tag[8];
	snprintf(tag, sizeof tag, "%c", h->name);
	h->worker = harness_run_worker(h->conf, tag, true);
}

/* Dies when a worker that should run has exited. */
static void check_workers(void)
{
	for (int i = 0; i < 2; i++) {
		int st;
		if (hosts[i].worker > 0 &&
		    waitpid(hosts[i].worker, &st, WNOHANG) == hosts[i].worker) {
			hosts[i].worker = 0;
			harness_die("host %c's worker exited (logs in %s)", hosts[i].name,
				    harness_dir);
		}
	}
}

/* The host that partition p's published writer names, or -1. */
static int writer_of(int p)
{
	redisReply *r = harness_cmd("GET freshet:{%s:p%d}:writer", WIKI, p);
	int w = -1;
	for (int i = 0; i < 2 && r->type == REDIS_REPLY_STRING; i++) {
		char want[64];
		int n = snprintf(want, sizeof want, "127.0.0.1:%d ", hosts[i].port);
		if (strncmp(r->str, want, (size_t)n) == 0)
			w = i;
	}
	freeReplyObject(r);
	return w;
}

/* Revision of partition p's shard on host h's own current generation
 * (replica false) or on its replica; -1 when it has none. */
static long long revision_of(const struct host *h, int p, bool replica)
{
	struct shard_stats st = { 0 };
	enum status s = replica ? shard_set_replica_stats(h->set, (unsigned)p, &st)
				: shard_set_stats(h->set, (unsigned)p, &st);
	return s == STATUS_OK ? (long long)st.revision : -1;
}

/* Whether the hosts that run share the partitions evenly, every entry is
 * acknowledged and every replica is at its writer's revision. */
static bool settled(void)
{
	int live = 0, held[2] = { 0, 0 }, w[MAXP];
	for (int i = 0; i < 2; i++)
		live += hosts[i].worker > 0;
	for (int p = 0; p < harness_shards; p++) {
		w[p] = writer_of(p);
		if (w[p] < 0 || hosts[w[p]].worker <= 0)
			return false;
		held[w[p]]++;
	}
	for (int i = 0; i < 2; i++)
		if (hosts[i].worker > 0 && held[i] != (harness_shards + live - 1) / live &&
		    held[i] != harness_shards / live)
			return false;
	if (!harness_drained(WIKI))
		return false;
	for (int p = 0; live == 2 && p < harness_shards; p++) {
		long long wr = revision_of(&hosts[w[p]], p, false);
		if (wr < 0 || revision_of(&hosts[1 - w[p]], p, true) != wr)
			return false;
	}
	return true;
}

/* Waits until settled(); returns the seconds it took. */
static double settle(const char *what)
{
	double t0 = harness_now();
	while (!settled()) {
		check_workers();
		if (harness_now() - t0 > SETTLE_S)
			harness_die("not settled %.0f s %s (logs in %s)", SETTLE_S, what,
				    harness_dir);
		usleep(100000);
	}
	return harness_now() - t0;
}

/* Sets kids to the pids whose parent is pid (from /proc); returns how
 * many. */
static int children_of(pid_t pid, pid_t *kids, int max)
{
	DIR *d = opendir("/proc");
	int n = 0;
	struct dirent *e;
	while (d && n < max && (e = readdir(d))) {
		char path[300], buf[512];
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[len] = 0;
		/* After the name: " state ppid ...". */
		const char *p = strrchr(buf, ')');
		char state;
		int ppid;
		if (p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && ppid == (int)pid)
			kids[n++] = (pid_t)atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

/* Whether pid still runs (a zombie does not). */
static bool runs(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* ------------------------------------------------------------ 1. failover */

/* A page of partition p (pages are partitioned by id modulo the shards),
 * the next one each call. */
static int64_t page_of(int p)
{
	static int64_t next[MAXP];
	int64_t id = next[p] ? next[p] : (p ? p : harness_shards);
	int64_t after = id + harness_shards;
	next[p] = after > harness_npages ? (p ? p : harness_shards) : after;
	return id;
}

/* Whether entry id of partition p is acknowledged. */
static bool acked(int p, struct harness_sid id)
{
	long long pend;
	if (harness_sid_cmp(harness_group_state(WIKI, p, &pend), id) < 0)
		return false;
	char key[128], ids[64];
	harness_stream_key(key, sizeof key, WIKI, p);
	snprintf(ids, sizeof ids, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
	redisReply *r = harness_cmd("XPENDING %s freshet %s %s 1", key, ids, ids);
	bool done = r->type == REDIS_REPLY_ARRAY && r->elements == 0;
	freeReplyObject(r);
	return done;
}

/* One kill of the host writing partition 0; returns the failover time,
 * adds the orphaned replica clients to *orphans. */
static double failover_once(const char *corpus, int k, int *orphans)
{
	int d = writer_of(0);
	if (d < 0)
		harness_die("partition 0 has no writer");
	struct host *x = &hosts[d];
	bool dead_p[MAXP] = { false };
	int ndead = 0;
	for (int p = 0; p < harness_shards; p++)
		if (writer_of(p) == d) {
			dead_p[p] = true;
			ndead++;
		}
	pid_t kids[MAXKIDS];
	int nkids = children_of(x->worker, kids, MAXKIDS);

	double t_kill = harness_now();
	kill(x->worker, SIGKILL);
	kill(x->server, SIGKILL);
	waitpid(x->worker, NULL, 0);
	waitpid(x->server, NULL, 0);
	x->worker = x->server = 0;

	struct harness_sid first[MAXP];
	bool have[MAXP] = { false }, done[MAXP] = { false };
	int ndone = 0, turn = 0;
	double next_edit = t_kill, took = -1;
	while (took < 0) {
		double t = harness_now();
		if (t >= next_edit) {
			int p;
			do
				p = turn++ % harness_shards;
			while (!dead_p[p]);
			int64_t page = page_of(p);
			uint64_t rev = harness_edit_page(corpus, page);
			struct harness_sid id;
			harness_produce(WIKI, &page, &rev, NULL, 1, &id);
			if (!have[p]) {
				first[p] = id;
				have[p] = true;
			}
			next_edit += EDIT_EVERY_S;
		}
		for (int p = 0; p < harness_shards; p++)
			if (dead_p[p] && have[p] && !done[p] && acked(p, first[p])) {
				done[p] = true;
				ndone++;
			}
		if (ndone == ndead)
			took = harness_now() - t_kill;
		else if (t - t_kill > 120)
			harness_die("no failover 120 s after the kill (logs in %s)", harness_dir);
		check_workers();
		usleep(10000);
	}
	/* PR_SET_PDEATHSIG sent the clients SIGTERM; give them time to end. */
	for (double end = harness_now() + 5; harness_now() < end;) {
		int left = 0;
		for (int i = 0; i < nkids; i++)
			left += runs(kids[i]);
		if (!left)
			break;
		usleep(50000);
	}
	for (int i = 0; i < nkids; i++)
		if (runs(kids[i])) {
			(*orphans)++;
			fprintf(stderr,
				"bench-failover: host %c's replica client %d outlived "
				"its worker\n",
				x->name, (int)kids[i]);
		}
	printf("  kill %d: host %c (%d partitions, %d replica clients): acked again "
	       "after %.2f s\n",
	       k, x->name, ndead, nkids, took);
	fflush(stdout);
	host_start(x);
	return took;
}

/* ------------------------------------------------------------ 2. lag */

/* When each revision of one partition's writer and replica was first seen,
 * indexed by revision - base. */
struct seen {
	double *writer, *replica;
	long long base, n;
	long long last_w, last_r;
};

static void seen_note(double **v, long long *n, long long base, long long from, long long to,
		      double t)
{
	for (long long r = from + 1; r <= to; r++) {
		long long i = r - base;
		if (i < 0)
			continue;
		if (i >= *n) {
			long long nn = i + 1024;
			double *nv = realloc(*v, (size_t)nn * sizeof *nv);
			if (!nv)
				harness_die("out of memory");
			for (long long k = *n; k < nn; k++)
				nv[k] = -1;
			*v = nv;
			*n = nn;
		}
		(*v)[i] = t;
	}
}

struct lag_figures {
	double rev_p50, rev_p99, s_p50, s_p99, s_max, edit_rate;
	long long revisions; /* new writer revisions over the run */
	size_t samples, lags;
	size_t over_1s; /* revisions a replica reached over 1 s late */
};

static void add_double(double **v, size_t *n, size_t *cap, double x)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 1024;
		*v = realloc(*v, *cap * sizeof **v);
		if (!*v)
			harness_die("out of memory");
	}
	(*v)[(*n)++] = x;
}

/* The q quantile of the n sorted values v by nearest rank (the p99 of
 * fewer than 100 values is the largest). */
static double pct(const double *v, size_t n, double q)
{
	if (!n)
		return 0;
	size_t rank = (size_t)(q * (double)n);
	if ((double)rank < q * (double)n)
		rank++;
	return v[rank ? rank - 1 : 0];
}

static struct lag_figures lag_run(const char *corpus, double secs)
{
	struct seen s[MAXP];
	int w[MAXP];
	memset(s, 0, sizeof s);
	long long n_w[MAXP] = { 0 }, n_r[MAXP] = { 0 };
	for (int p = 0; p < harness_shards; p++) {
		w[p] = writer_of(p);
		s[p].base = s[p].last_w = s[p].last_r = revision_of(&hosts[w[p]], p, false);
	}
	double *revs = NULL, *lags = NULL;
	size_t nrevs = 0, caprevs = 0, nlags = 0, caplags = 0;
	double t0 = harness_now(), next_sample = t0;
	size_t edits = 0;
	bool behind = true;
	while (harness_now() - t0 < secs || behind) {
		double t = harness_now();
		while (t - t0 < secs && (double)edits < (t - t0) * LAG_EDITS_PER_S) {
			int64_t page = (int64_t)(harness_rnd() % (uint64_t)harness_npages) + 1;
			uint64_t rev = harness_edit_page(corpus, page);
			harness_produce(WIKI, &page, &rev, NULL, 1, NULL);
			edits++;
		}
		if (t >= next_sample) {
			next_sample += SAMPLE_S;
			behind = false;
			for (int p = 0; p < harness_shards; p++) {
				long long wr = revision_of(&hosts[w[p]], p, false);
				long long rr = revision_of(&hosts[1 - w[p]], p, true);
				double ts = harness_now();
				if (wr < 0 || rr < 0)
					continue;
				if (writer_of(p) != w[p])
					harness_die(
						"partition %d changed writer during the lag run",
						p);
				add_double(&revs, &nrevs, &caprevs, (double)(wr - rr));
				if (wr > s[p].last_w) {
					seen_note(&s[p].writer, &n_w[p], s[p].base, s[p].last_w, wr,
						  ts);
					s[p].last_w = wr;
				}
				if (rr > s[p].last_r) {
					seen_note(&s[p].replica, &n_r[p], s[p].base, s[p].last_r,
						  rr, ts);
					for (long long r = s[p].last_r + 1; r <= rr; r++) {
						long long i = r - s[p].base;
						if (i >= 0 && i < n_w[p] && s[p].writer[i] >= 0)
							add_double(&lags, &nlags, &caplags,
								   ts - s[p].writer[i]);
					}
					s[p].last_r = rr;
				}
				behind |= rr < wr;
			}
			behind |= !harness_drained(WIKI);
		}
		if (harness_now() - t0 > secs + 120)
			harness_die("replicas still behind 120 s after the edits (logs in %s)",
				    harness_dir);
		check_workers();
		usleep(2000);
	}
	struct lag_figures f = { .edit_rate = (double)edits / secs,
				 .samples = nrevs,
				 .lags = nlags };
	for (int p = 0; p < harness_shards; p++) {
		f.revisions += s[p].last_w - s[p].base;
		free(s[p].writer);
		free(s[p].replica);
	}
	qsort(revs, nrevs, sizeof *revs, harness_cmp_double);
	qsort(lags, nlags, sizeof *lags, harness_cmp_double);
	f.rev_p50 = pct(revs, nrevs, 0.5);
	f.rev_p99 = pct(revs, nrevs, 0.99);
	f.s_p50 = pct(lags, nlags, 0.5);
	f.s_p99 = pct(lags, nlags, 0.99);
	f.s_max = nlags ? lags[nlags - 1] : 0;
	for (size_t i = 0; i < nlags; i++)
		f.over_1s += lags[i] > 1;
	free(revs);
	free(lags);
	return f;
}

/* ------------------------------------------------------------ 3. search */

struct client {
	pthread_t t;
	int id, port;
	size_t total;
	double *lat;
	size_t n_lat;
	long errors;
	char err[256];
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	CURL *h = curl_easy_init();
	struct buf body = BUF_INIT;
	c->lat = calloc(c->total / CLIENTS + 1, sizeof *c->lat);
	for (size_t k = (size_t)c->id; k < c->total; k += CLIENTS) {
		double t0 = harness_now();
		char err[256];
		if (!queryset_search(h, c->port, WIKI, k, false, &body, err, sizeof err) &&
		    c->errors++ == 0)
			snprintf(c->err, sizeof c->err, "%s", err);
		c->lat[c->n_lat++] = harness_now() - t0;
	}
	buf_release(&body);
	curl_easy_cleanup(h);
	return NULL;
}

struct search_figures {
	double wall, p50, p99;
	size_t answers;
	long errors;
};

/* CLIENTS clients ask total queries of searchd on port. */
static struct search_figures search_run(int port, size_t total)
{
	struct client cl[CLIENTS];
	double t0 = harness_now();
	for (int i = 0; i < CLIENTS; i++) {
		cl[i] = (struct client){ .id = i, .port = port, .total = total };
		pthread_create(&cl[i].t, NULL, client_main, &cl[i]);
	}
	struct search_figures f = { 0 };
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(cl[i].t, NULL);
	f.wall = harness_now() - t0;
	double *all = malloc((total + 1) * sizeof *all);
	for (int i = 0; i < CLIENTS; i++) {
		memcpy(all + f.answers, cl[i].lat, cl[i].n_lat * sizeof *all);
		f.answers += cl[i].n_lat;
		f.errors += cl[i].errors;
		if (cl[i].errors)
			fprintf(stderr, "bench-failover: %ld errors, the first: %s\n", cl[i].errors,
				cl[i].err);
		free(cl[i].lat);
	}
	qsort(all, f.answers, sizeof *all, harness_cmp_double);
	f.p50 = pct(all, f.answers, 0.5);
	f.p99 = pct(all, f.answers, 0.99);
	free(all);
	return f;
}

/* Starts freshet-searchd on host A's shards, reading them as search says
 * (a [wiki] line); returns its port. */
static int start_searchd(const char *search, const char *tag)
{
	int port = harness_free_port();
	char conf[4200], sections[1024], log[4200];
	snprintf(conf, sizeof conf, "%s/searchd-%s.conf", harness_dir, tag);
	snprintf(sections, sizeof sections,
		 "search = %s\nremote_timeout_ms = 2000\n\n"
		 "[searchd]\nlisten = 127.0.0.1:%d\nthreads = 2\n",
		 search, port);
	harness_worker_conf(conf, hosts[0].data, WIKI, "", sections);
	snprintf(log, sizeof log, "%s/searchd-%s.log", harness_dir, tag);
	char *argv[] = { searchd_bin, "--config", conf, NULL };
	searchd_pid = harness_spawn(argv, log, NULL);
	harness_wait_port(searchd_pid, port, "freshet-searchd");
	return port;
}

/* One xapian-tcpsrv per shard of host A; returns the search = value. */
static void start_tcpsrvs(char *remote, size_t len)
{
	size_t at = 0;
	at += (size_t)snprintf(remote, len, "remote ");
	for (int p = 0; p < harness_shards; p++) {
		int port = harness_free_port();
		char ports[16], path[1024], log[4200];
		snprintf(ports, sizeof ports, "%d", port);
		snprintf(path, sizeof path, "%s/" WIKI "/current/shard-%d", hosts[0].data, p);
		snprintf(log, sizeof log, "%s/tcpsrv-%d.log", harness_dir, p);
		char *argv[] = { XAPIAN_TCPSRV, "--interface", "127.0.0.1", "--port",
				 ports,         path,          NULL };
		tcpsrv_pid[p] = harness_spawn_group(argv, log, NULL);
		harness_wait_port(tcpsrv_pid[p], port, XAPIAN_TCPSRV);
		at += (size_t)snprintf(remote + at, len - at, "%s127.0.0.1:%d", p ? "," : "", port);
		if (at >= len)
			harness_die("too many shards");
	}
}

/* ------------------------------------------------------------ main */

static void usage(int code)
{
	fputs("Usage: bench-failover [-n PAGES] [-c CORPUS_DIR] [-w WORKER] [-d SEARCHD]\n"
	      "                      [-L LEASE_MS] [-K KILLS] [-q] [-k]\n"
	      "  -n  pages of the corpus (default 2000)\n"
	      "  -c  corpus of bench/make-pipeline-corpus.sh (default: generate one)\n"
	      "  -w  freshet-worker (default ./freshet-worker)\n"
	      "  -d  freshet-searchd (default ./freshet-searchd)\n"
	      "  -L  the workers' lease_ms (default 3000)\n"
	      "  -K  kills of the writing host (default 10)\n"
	      "  -q  quick: 500 pages, 3 kills, 10 s of edits for the lag\n"
	      "  -k  keep the private directory and its logs\n",
	      code ? stderr : stdout);
	exit(code);
}

int main(int argc, char **argv)
{
	const char *corpus = NULL;
	int kills = 10, c;
	double lag_secs = 20;
	bool quick = false;
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' },
						  { NULL, 0, NULL, 0 } };
	harness_npages = 2000;
	while ((c = getopt_long(argc, argv, "n:c:w:d:L:K:qkh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			harness_npages = atoi(optarg);
			break;
		case 'c':
			corpus = optarg;
			break;
		case 'w':
			snprintf(harness_worker_bin, sizeof harness_worker_bin, "%s", optarg);
			break;
		case 'd':
			snprintf(searchd_bin, sizeof searchd_bin, "%s", optarg);
			break;
		case 'L':
			lease_ms = atoi(optarg);
			break;
		case 'K':
			kills = atoi(optarg);
			break;
		case 'q':
			quick = true;
			break;
		case 'k':
			harness_keep = true;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (quick) {
		harness_npages = 500;
		kills = kills < 3 ? kills : 3;
		lag_secs = 10;
	}
	if (harness_npages < 100 || kills < 1 || lease_ms < 300 || optind < argc)
		usage(2);
	harness_at_stop = stop_ours;
	harness_init("bench-failover");
	harness_program(searchd_bin, sizeof searchd_bin, 'd');
	corpus = harness_corpus(corpus);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	queryset_read_pages(corpus);

	harness_start_stage(corpus);
	for (int i = 0; i < 2; i++)
		host_init(&hosts[i], i);
	printf("bench-failover: %d pages from %s, %d shards, lease_ms %d; private dir "
	       "%s\n",
	       harness_npages, corpus, harness_shards, lease_ms, harness_dir);
	fflush(stdout);

	/* The index, split between the hosts and replicated. */
	for (int i = 0; i < 2; i++)
		host_start(&hosts[i]);
	int64_t *pages = malloc(sizeof(int64_t) * (size_t)harness_npages);
	uint64_t *revs = malloc(sizeof(uint64_t) * (size_t)harness_npages);
	for (int i = 0; i < harness_npages; i++) {
		pages[i] = i + 1;
		revs[i] = harness_cur_rev[i + 1];
	}
	double t0 = harness_now();
	harness_produce(WIKI, pages, revs, NULL, (size_t)harness_npages, NULL);
	free(pages);
	free(revs);
	settle("after the build");
	printf("bench-failover: built and replicated in %.1f s\n", harness_now() - t0);
	fflush(stdout);

	/* 1. Failover. */
	double *took = calloc((size_t)kills, sizeof *took);
	int orphans = 0;
	printf("1. failover: SIGKILL of the worker and xapian-replicate-server "
	       "writing partition 0, %d times\n",
	       kills);
	for (int k = 0; k < kills; k++) {
		settle("before a kill");
		took[k] = failover_once(corpus, k + 1, &orphans);
	}
	double settle_s = settle("after the last kill");
	qsort(took, (size_t)kills, sizeof *took, harness_cmp_double);
	double target = 2 * lease_ms / 1000.0 + 5;

	/* 2. Replica lag. */
	printf("2. replica lag: %.0f edits/s for %.0f s\n", LAG_EDITS_PER_S, lag_secs);
	fflush(stdout);
	struct lag_figures lag = lag_run(corpus, lag_secs);

	/* 3. Remote shards against local ones, on host A. */
	harness_stop_pid(&hosts[1].worker, SIGTERM);
	settle("after host B's worker stopped");
	queryset_make(corpus);
	char remote[2048];
	start_tcpsrvs(remote, sizeof remote);
	printf("3. search: %d clients, %d queries a run, search = local against %s\n", CLIENTS,
	       QUERYSET_N, remote);
	fflush(stdout);
	struct search_figures sf[2][2];
	const char *modes[2] = { "local", remote };
	for (int round = 0; round < 2; round++)
		for (int m = 0; m < 2; m++) {
			int port = start_searchd(modes[m], m ? "remote" : "local");
			search_run(port, WARMUP);
			sf[m][round] = search_run(port, QUERYSET_N);
			harness_stop_pid(&searchd_pid, SIGTERM);
			printf("  %-6s run %d: %7.1f queries/s  p50 %6.2f ms  p99 %6.2f ms%s\n",
			       m ? "remote" : "local", round + 1,
			       (double)sf[m][round].answers / sf[m][round].wall,
			       sf[m][round].p50 * 1e3, sf[m][round].p99 * 1e3,
			       sf[m][round].errors ? "  ERRORS" : "");
			fflush(stdout);
		}
	double qps[2];
	long errors = 0;
	for (int m = 0; m < 2; m++) {
		qps[m] = (double)(sf[m][0].answers + sf[m][1].answers) /
			 (sf[m][0].wall + sf[m][1].wall);
		errors += sf[m][0].errors + sf[m][1].errors;
	}

	printf("\nbench-failover summary (%d pages, %d shards, lease_ms %d)\n", harness_npages,
	       harness_shards, lease_ms);
	printf("  failover, %d kills: p50 %.2f s, p99 %.2f s (min %.2f, max %.2f)   "
	       "target <= %.1f s   %s\n",
	       kills, pct(took, (size_t)kills, 0.5), pct(took, (size_t)kills, 0.99), took[0],
	       took[kills - 1], target, harness_verdict(pct(took, (size_t)kills, 0.99) <= target));
	printf("  orphaned replica clients after the kills: %d   target 0   %s\n", orphans,
	       harness_verdict(orphans == 0));
	printf("  settled after the last kill (restart, share, replicas) in %.1f s\n", settle_s);
	printf("  replica lag at %.0f edits/s (%lld writer revisions, %zu samples): "
	       "revisions p50 %.0f, p99 %.0f; seconds p50 %.2f, p99 %.2f, max %.2f "
	       "(%zu of %zu revisions over 1 s)   target p99 <= 5 s   %s\n",
	       lag.edit_rate, lag.revisions, lag.samples, lag.rev_p50, lag.rev_p99, lag.s_p50,
	       lag.s_p99, lag.s_max, lag.over_1s, lag.lags,
	       harness_verdict(lag.lags > 0 && lag.s_p99 <= 5));
	printf("  search at %d clients: remote %.1f against local %.1f queries/s = "
	       "%.0f%%   target >= 50%%   %s\n",
	       CLIENTS, qps[1], qps[0], 100 * qps[1] / qps[0],
	       harness_verdict(qps[1] >= 0.5 * qps[0]));
	if (errors)
		printf("  %ld requests failed (see above)\n", errors);
	fflush(stdout);
	free(took);
	for (int i = 0; i < 2; i++)
		shard_set_free(hosts[i].set);
	redisFree(harness_rc);
	harness_stop_all();
	if (harness_keep)
		printf("bench-failover: kept %s\n", harness_dir);
	curl_global_cleanup();
	return errors ? 1 : 0;
}
