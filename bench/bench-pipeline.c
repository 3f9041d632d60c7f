/* SPDX-License-Identifier: MIT */
/*
 * bench-pipeline.c: freshet end to end, the real freshet-worker binary
 * against a real redis-server and a static copy of a wiki's Action API.
 *
 * Usage: bench-pipeline [-n PAGES] [-c CORPUS_DIR] [-w WORKER] [-s SHARDS]
 *                       [-b BACKLOG] [-l LATENCY_SECONDS] [-k] [-q]
 *                       [-W 'key = value']...
 *
 * -W adds a line to the worker's [worker] section (e.g. -W 'batch = 400'),
 * -q runs phases (a) to (c) only.
 *
 * CORPUS_DIR is what bench/make-pipeline-corpus.sh writes (parse/<id>.json,
 * info/<id>.json, html/<id>.html for ids 1..PAGES); without -c the bench
 * runs that script into its private directory first (PAGES pages, default
 * 20000).  WORKER defaults to ./freshet-worker (run from the build
 * directory); the analyzers come from $FRESHET_ANALYZER_DIR, else
 * ./analyzers/.libs.
 *
 * What it starts, each stopped by its pid at the end: redis-server on a free
 * loopback port (no persistence), Debian's nginx (single process, private
 * prefix and configuration, echo module) on a free loopback port serving
 *   /w/api.php?action=parse&pageid=N...      -> over/parse/N.json, else
 *                                               corpus/parse/N.json
 *   /w/api.php?action=query&prop=info&pageids=A%7CB...
 *                                            -> the entries over/info/X.json
 *                                               else corpus/info/X.json of
 *                                               each id, concatenated by the
 *                                               echo module into one answer
 * ("over" is the bench's overlay: pages it edits or deletes), and
 * freshet-worker (fork/exec, generated freshet.conf: wiki "benchwiki",
 * SHARDS shards, concurrency 16, no rate bound, defaults otherwise).
 *
 * Phases, in one run:
 *  (a) build: worker started on an empty data dir; PAGES create events
 *      (one per page) are XADDed; time from the first XADD until every
 *      entry is delivered and acknowledged (acks follow the commit that
 *      holds them).  Events/s = PAGES / that time.  Worker peak RSS =
 *      VmHWM of /proc/<pid>/status.  This is also the "rebuild from
 *      scratch" time of (c).
 *  (b) latency: the same worker; edits of random pages (new revid, a new
 *      paragraph) are XADDed at half the rate of (a) for LATENCY_SECONDS;
 *      each page's answer is rewritten before its event is added.  An
 *      event is searchable when it is acknowledged, because the worker acks
 *      only after the commit holding it (a reader reopening the shard sees
 *      it from then on).  The bench polls every 5 ms: per partition
 *      XINFO GROUPS (last-delivered-id) and XPENDING (the unacked ids); an
 *      entry is done when it is at or before last-delivered-id and not
 *      pending.  Latency = poll time - time just before its XADD, so it
 *      includes up to one poll interval.
 *  (c) update: 1% of the pages edited (new revid and text) and 1% deleted
 *      (the parse answer becomes {"error":{"code":"nosuchpageid"}}, the
 *      info entry "missing"), one event each, all XADDed at once; time
 *      until all acked, against the build time of (a).  The deletes
 *      only mark documents dead (shard.h); the bench then waits for the
 *      worker log to show them purged (action=purge, once the partitions
 *      idle for a second) and prints when and at what writer time.
 *  (d) omindex: Xapian's omindex over the same pages' HTML (html/<id>.html
 *      of ids 1..PAGES, through a directory of symbolic links), timed; its
 *      CPU time and peak RSS from wait4().
 *  (e) backlog: a second wiki id ("benchwiki_b", empty data dir): BACKLOG
 *      events (default 100000, cycling through the pages) are XADDed before
 *      the worker starts; peak RSS (VmHWM) once it has drained them.
 *
 * Figures are printed with their targets and PASS/MISS.  -k keeps the
 * private directory (/tmp/freshet-bench-pipeline-XXXXXX) for inspection.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define WIKI_B "benchwiki_b"

static bool quick;                /* -q: phases (a) to (c) only */

struct outstanding {
	int64_t page;
	int partition;
	struct harness_sid id;
	double t;
};

/* Phase (b): events at `rate` per second for `secs`; latency XADD -> acked. */
static void latency(const char *corpus, double rate, double secs, double *p50,
		    double *p99, double *maxl, size_t *count)
{
	size_t cap = (size_t)(rate * secs) + 16;
	struct outstanding *out = calloc(cap, sizeof *out);
	double *lat = calloc(cap, sizeof *lat);
	bool *busy = calloc((size_t)harness_npages + 1, sizeof *busy);
	size_t n_out = 0, n_lat = 0, produced = 0;
	double t0 = harness_now(), last_poll = 0;
	while (true) {
		double t = harness_now();
		bool producing = t - t0 < secs;
		while (producing && produced < (size_t)((t - t0) * rate) + 1 &&
		       produced < cap) {
			int64_t page;
			do
				page = (int64_t)(harness_rnd() % (uint64_t)harness_npages) + 1;
			while (busy[page]);
			uint64_t rev = harness_edit_page(corpus, page);
			double ts = harness_now();
			struct harness_sid id;
			harness_produce(WIKI, &page, &rev, NULL, 1, &id);
			busy[page] = true;
			out[n_out++] = (struct outstanding){ page, (int)(page % harness_shards),
							    id, ts };
			produced++;
		}
		if (!producing && n_out == 0)
			break;
		if (t - t0 > secs + 60)
			harness_die("latency: %zu events not acked 60 s after the last", n_out);
		if (t - last_poll >= 0.005 && n_out) {
			last_poll = t;
			struct harness_sid lastd[MAXP];
			char key[128];
			for (int p = 0; p < harness_shards; p++) {
				long long pend;
				lastd[p] = harness_group_state(WIKI, p, &pend);
			}
			/* Pending ids of each partition. */
			redisReply *pr[MAXP];
			for (int p = 0; p < harness_shards; p++) {
				harness_stream_key(key, sizeof key, WIKI, p);
				pr[p] = harness_cmd("XPENDING %s freshet - + 10000", key);
			}
			double tp = harness_now();
			size_t keepn = 0;
			for (size_t i = 0; i < n_out; i++) {
				struct outstanding *o = &out[i];
				bool done = harness_sid_cmp(o->id, lastd[o->partition]) <= 0;
				for (size_t k = 0; done && k < pr[o->partition]->elements; k++) {
					redisReply *e = pr[o->partition]->element[k];
					if (e->elements && e->element[0]->str &&
					    harness_sid_cmp(harness_sid_parse(e->element[0]->str), o->id) == 0)
						done = false;
				}
				if (done) {
					lat[n_lat++] = tp - o->t;
					busy[o->page] = false;
				} else {
					out[keepn++] = *o;
				}
			}
			n_out = keepn;
			for (int p = 0; p < harness_shards; p++)
				freeReplyObject(pr[p]);
			if (!harness_worker_alive()) {
				harness_worker_pid = 0;
				harness_die("freshet-worker exited during the latency phase");
			}
		}
		usleep(1000);
	}
	qsort(lat, n_lat, sizeof *lat, harness_cmp_double);
	*count = n_lat;
	*p50 = n_lat ? lat[n_lat / 2] : 0;
	*p99 = n_lat ? lat[(size_t)((double)(n_lat - 1) * 0.99)] : 0;
	*maxl = n_lat ? lat[n_lat - 1] : 0;
	free(out);
	free(lat);
	free(busy);
}

/* Phase (d): omindex over html/; returns seconds, sets *rss_kib and *cpu
 * (its user + system seconds). */
static double run_omindex(const char *corpus, long *rss_kib, double *cpu)
{
	char db[4200], html[4200], log[4200], src[8400], dst[8400];
	snprintf(db, sizeof db, "%s/omega", harness_dir);
	snprintf(log, sizeof log, "%s/omindex.log", harness_dir);
	/* The corpus may hold more pages than this run uses: omindex reads a
	 * directory of symbolic links to pages 1..npages (--follow). */
	snprintf(html, sizeof html, "%s/omindex-html", harness_dir);
	mkdir(html, 0755);
	for (int i = 1; i <= harness_npages; i++) {
		snprintf(src, sizeof src, "%s/html/%d.html", corpus, i);
		snprintf(dst, sizeof dst, "%s/%d.html", html, i);
		if (symlink(src, dst) != 0)
			harness_die("%s: %s", dst, strerror(errno));
	}
	char *argv[] = { "omindex", "--follow", "--db", db, "--url", "/", html,
			 NULL };
	double t0 = harness_now();
	pid_t pid = harness_spawn(argv, log, NULL);
	int st;
	struct rusage ru;
	if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		harness_die("omindex failed (see %s)", log);
	*rss_kib = ru.ru_maxrss;
	*cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	return harness_now() - t0;
}

/* Sums the duration_ms= of the worker log's lines with action=<action>
 * (commit, purge): returns seconds of writer time, sets *lines to how many
 * lines and *docs (if not NULL) to the sum of their docs=. */
static double log_seconds(const char *tag, const char *action, int *lines,
			  long *docs)
{
	char path[4200], line[1024], key[64];
	snprintf(path, sizeof path, "%s/worker-%s.log", harness_dir, tag);
	snprintf(key, sizeof key, "action=%s ", action);
	FILE *f = fopen(path, "r");
	double ms = 0;
	*lines = 0;
	if (docs)
		*docs = 0;
	while (f && fgets(line, sizeof line, f)) {
		if (!strstr(line, key))
			continue;
		char *d = strstr(line, " docs="), *t = strstr(line, "duration_ms=");
		if (t) {
			ms += atof(t + 12);
			(*lines)++;
			if (docs && d)
				*docs += atol(d + 6);
		}
	}
	if (f)
		fclose(f);
	return ms / 1000;
}

static void usage(void)
{
	fputs("Usage: bench-pipeline [-n PAGES] [-c CORPUS_DIR] [-w WORKER] "
	      "[-s SHARDS]\n                      [-b BACKLOG] [-l LATENCY_SECONDS] [-k] "
	      "[-q] [-W 'key = value']...\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *corpus = NULL;
	long backlog = 100000;
	double lat_secs = 20;
	int c;
	while ((c = getopt(argc, argv, "n:c:w:s:b:l:kW:q")) != -1) {
		switch (c) {
		case 'n': harness_npages = atoi(optarg); break;
		case 'c': corpus = optarg; break;
		case 'w': snprintf(harness_worker_bin, sizeof harness_worker_bin, "%s", optarg); break;
		case 's': harness_shards = atoi(optarg); break;
		case 'b': backlog = atol(optarg); break;
		case 'l': lat_secs = atof(optarg); break;
		case 'k': harness_keep = true; break;
		case 'q': quick = true; break;
		case 'W':
			if (strlen(harness_worker_extra) + strlen(optarg) + 2 > sizeof harness_worker_extra)
				usage();
			strcat(harness_worker_extra, optarg);
			strcat(harness_worker_extra, "\n");
			break;
		default: usage();
		}
	}
	if (harness_npages < 100 || harness_shards < 1 || harness_shards > MAXP || backlog < 0)
		usage();
	harness_init("bench-pipeline");
	corpus = harness_corpus(corpus);

	harness_start_stage(corpus);
	printf("bench-pipeline: %d pages from %s, %d shards; redis-server pid %d "
	       "port %d, nginx pid %d port %d; private dir %s\n", harness_npages, corpus,
	       harness_shards, (int)harness_redis_pid, harness_redis_port, (int)harness_nginx_pid, harness_api_port, harness_dir);
	fflush(stdout);

	/* ---- (a) build from scratch, events/s end to end */
	int64_t *pages = malloc(sizeof(int64_t) * (size_t)(backlog > harness_npages ? backlog : harness_npages));
	uint64_t *revs = malloc(sizeof(uint64_t) * (size_t)(backlog > harness_npages ? backlog : harness_npages));
	bool *dels = calloc((size_t)(backlog > harness_npages ? backlog : harness_npages), sizeof *dels);
	for (int i = 0; i < harness_npages; i++) {
		pages[i] = i + 1;
		revs[i] = harness_cur_rev[i + 1];
	}
	harness_start_worker(WIKI, "a");
	harness_wait_ready(WIKI);
	double cpu0 = harness_cpu_of(harness_worker_pid), rcpu0 = harness_cpu_of(harness_redis_pid),
	       ncpu0 = harness_cpu_of(harness_nginx_pid);
	double t0 = harness_now();
	harness_produce(WIKI, pages, revs, NULL, (size_t)harness_npages, NULL);
	double t_enq = harness_now() - t0;
	double t1 = harness_wait_drained(WIKI, 3600);
	double build_s = t1 - t0;
	double eps = harness_npages / build_s;
	double wcpu = harness_cpu_of(harness_worker_pid) - cpu0;
	double rcpu = harness_cpu_of(harness_redis_pid) - rcpu0, ncpu = harness_cpu_of(harness_nginx_pid) - ncpu0;
	long hwm_a = harness_vm_kib(harness_worker_pid, "VmHWM");
	printf("(a) build: %d events enqueued in %.2f s, all committed and acked "
	       "%.1f s after the first XADD: %.0f events/s; worker CPU %.1f s "
	       "(%.0f pages per worker CPU second), nginx CPU %.1f s, redis CPU "
	       "%.1f s; worker peak RSS %.1f MiB\n",
	       harness_npages, t_enq, build_s, eps, wcpu, harness_npages / wcpu, ncpu, rcpu,
	       hwm_a / 1024.0);
	fflush(stdout);

	/* ---- (b) latency at half the rate */
	double p50, p99, maxl;
	size_t nlat;
	latency(corpus, eps / 2, lat_secs, &p50, &p99, &maxl, &nlat);
	printf("(b) latency XADD -> acked (= committed, searchable) at %.0f "
	       "events/s for %.0f s: %zu events, p50 %.3f s, p99 %.3f s, max "
	       "%.3f s\n", eps / 2, lat_secs, nlat, p50, p99, maxl);
	fflush(stdout);

	/* ---- (c) 1% changed + 1% deleted */
	size_t nch = (size_t)harness_npages / 100, n = 0;
	bool *picked = calloc((size_t)harness_npages + 1, sizeof *picked);
	while (n < 2 * nch) {
		int64_t page = (int64_t)(harness_rnd() % (uint64_t)harness_npages) + 1;
		if (picked[page])
			continue;
		picked[page] = true;
		pages[n] = page;
		dels[n] = n >= nch;
		revs[n] = dels[n] ? 0 : harness_edit_page(corpus, page);
		if (dels[n])
			harness_delete_page(page);
		n++;
	}
	double t2 = harness_now();
	harness_produce(WIKI, pages, revs, dels, n, NULL);
	double t3 = harness_wait_drained(WIKI, 3600);
	double upd_s = t3 - t2;
	printf("(c) update: %zu pages edited + %zu deleted applied in %.2f s, "
	       "against %.1f s for the build from scratch (1/%.0f)\n",
	       nch, nch, upd_s, build_s, build_s / upd_s);
	fflush(stdout);
	/* The deletes only marked the documents dead; the writers purge them
	 * once their partitions idle.  Report that deferred cost too. */
	long purged = 0;
	int npurge;
	double purge_s;
	for (;;) {
		purge_s = log_seconds("a", "purge", &npurge, &purged);
		if (purged >= (long)nch || harness_now() - t3 >= 60)
			break;
		usleep(50 * 1000);
	}
	double t_purged = harness_now();
	printf("(c) purge: the idle writers deleted %ld of the %zu dead documents "
	       "for real by %.2f s after the update was acked, in %.2f s of "
	       "writer time (in parallel over %d shards)\n", purged, nch,
	       t_purged - t3, purge_s, harness_shards);
	fflush(stdout);
	long hwm_ac = harness_vm_kib(harness_worker_pid, "VmHWM");
	harness_stop_pid(&harness_worker_pid, SIGTERM);
	int ncommit;
	double commit_s = log_seconds("a", "commit", &ncommit, NULL);

	if (quick) {
		printf("bench-pipeline: -q: (a) %.0f events/s, (b) p99 %.3f s, (c) "
		       "%.1f%% of the rebuild\n", eps, p99, 100 * upd_s / build_s);
		redisFree(harness_rc);
		harness_stop_all();
		return 0;
	}

	/* ---- (d) omindex on the same HTML */
	long om_rss;
	double om_cpu;
	double om_s = run_omindex(corpus, &om_rss, &om_cpu);
	double om_pps = harness_npages / om_s;
	printf("(d) omindex: %d pages of HTML in %.1f s: %.0f pages/s; CPU %.1f s "
	       "(%.0f pages per CPU second); peak RSS %.1f MiB\n", harness_npages, om_s,
	       om_pps, om_cpu, harness_npages / om_cpu, om_rss / 1024.0);
	fflush(stdout);

	/* ---- (e) backlog */
	for (long i = 0; i < backlog; i++) {
		int64_t page = (i % harness_npages) + 1;
		pages[i] = page;
		/* The page's current revision (the deleted ones are deletes). */
		dels[i] = harness_deleted[page];
		revs[i] = harness_cur_rev[page];
	}
	redisReply *r = harness_cmd("SET freshet:{%s}:partitions %d", WIKI_B, harness_shards);
	freeReplyObject(r);
	memset(harness_last_added, 0, sizeof harness_last_added);
	double t4 = harness_now();
	harness_produce(WIKI_B, pages, revs, dels, (size_t)backlog, NULL);
	double t_enq_b = harness_now() - t4;
	double t5 = harness_now();
	harness_start_worker(WIKI_B, "e");
	double t6 = harness_wait_drained(WIKI_B, 3600);
	long hwm_e = harness_vm_kib(harness_worker_pid, "VmHWM");
	double wcpu_e = harness_cpu_of(harness_worker_pid);
	printf("(e) backlog: %ld events for %d pages enqueued in %.1f s before "
	       "the worker started; drained %.1f s after its start (%.0f events/s, "
	       "worker CPU %.1f s); worker peak RSS %.1f MiB\n", backlog, harness_npages,
	       t_enq_b, t6 - t5, backlog / (t6 - t5), wcpu_e, hwm_e / 1024.0);
	harness_stop_pid(&harness_worker_pid, SIGTERM);

	printf("\nbench-pipeline: where the build's time went: %d commits took "
	       "%.1f s of writer time in all (the writers of %d shards run in "
	       "parallel) of %.1f s\n", ncommit, commit_s, harness_shards, build_s);
	printf("\nbench-pipeline summary (%d pages, %d shards)\n", harness_npages, harness_shards);
	printf("  end to end           %7.0f events/s   target >= 2 x omindex "
	       "(%.0f pages/s) = %.0f   %s\n", eps, om_pps, 2 * om_pps,
	       harness_verdict(eps >= 2 * om_pps));
	printf("  worker peak RSS (a-c) %6.1f MiB       (no target; build %.1f MiB)\n",
	       hwm_ac / 1024.0, hwm_a / 1024.0);
	printf("  latency p50          %7.3f s          (no target)\n", p50);
	printf("  latency p99          %7.3f s          target < 1.5 s   %s\n", p99,
	       harness_verdict(p99 < 1.5));
	printf("  1%% update            %7.2f s          target <= 2%% of rebuild "
	       "(%.1f s) = %.2f s   %s (%.1f%%)\n", upd_s, build_s, build_s * 0.02,
	       harness_verdict(upd_s <= build_s * 0.02), 100 * upd_s / build_s);
	printf("  omindex              %7.0f pages/s    peak RSS %.1f MiB\n", om_pps,
	       om_rss / 1024.0);
	printf("  per CPU second       worker %.0f pages, omindex %.0f pages "
	       "(the figure the machine's load does not move)\n", harness_npages / wcpu,
	       harness_npages / om_cpu);
	printf("  peak RSS, %ld backlog %6.1f MiB       target < 200 MiB   %s\n",
	       backlog, hwm_e / 1024.0, harness_verdict(hwm_e < 200 * 1024));
	fflush(stdout);
	redisFree(harness_rc);
	harness_stop_all();
	if (harness_keep)
		printf("bench-pipeline: kept %s\n", harness_dir);
	free(pages);
	free(revs);
	free(dels);
	free(picked);
	free(harness_cur_rev);
	free(harness_deleted);
	return 0;
}
