/* SPDX-License-Identifier: MIT */
/*
 * worker.c: freshet-worker, the background indexer.
 *
 * main reads the configuration, loads the analyzer plugins and initialises
 * curl before any thread starts (their rules), starts the metrics server
 * when configured, then runs one pipeline per configured wiki, each in its
 * own thread.  SIGTERM and SIGINT are blocked in every thread and taken by
 * main with sigtimedwait(): on the first one every pipeline stops reading,
 * finishes, commits and acks what is in flight, and releases its leases;
 * main exits 0 when they all did so within shutdown_timeout_ms.  Each wiki
 * whose saneitize_days is not 0 also gets a thread for the consistency loop
 * (saneitize.h), with its own Redis connection, stopped first.
 */
#include "config.h" /* autoconf: PACKAGE_VERSION */

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "fetch.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "replica.h"
#include "redis.h"
#include "saneitize.h"
#include "shard.h"
#include "xmalloc.h"

struct run {
	struct pipeline *p;
	pthread_t thread;
	enum status st;
	atomic_bool done;
	struct redis *sr;        /* the consistency loop's connection */
	struct saneitize *sz;    /* NULL when the loop is off */
	pthread_t sane_thread;
};

/* Set once to stop every consistency loop. */
static atomic_bool sane_stop;

static void *sane_main(void *arg)
{
	struct run *r = arg;
	saneitize_run(r->sz, &sane_stop);
	return NULL;
}

/* Starts wiki w's consistency loop in run r, unless it is off. */
static void sane_start(struct run *r, const struct conf *cfg, const struct conf_wiki *w,
		       struct metrics *m)
{
	if (saneitize_period_ms(w) <= 0)
		return;
	/* Through the sentinels like the pipeline's connections: the loop is
	 * what repairs the events a Redis failover lost. */
	struct redis_opts ro = { .url = cfg->redis_url,
				 .password_file = cfg->redis_password_file,
				 .connect_timeout_ms = 2000,
				 .read_timeout_ms = 5000,
				 .sentinels = cfg->redis_sentinels,
				 .master_name = cfg->redis_master_name };
	char err[256];
	r->sr = redis_new(&ro, err, sizeof err);
	if (!r->sr) {
		log_error("wiki=%s action=saneitize reason=%s", w->id, log_quote(err));
		return;
	}
	r->sz = saneitize_new(cfg, w, r->sr, NULL);
	saneitize_set_metrics(r->sz, m);
	if (pthread_create(&r->sane_thread, NULL, sane_main, r) != 0) {
		log_error("wiki=%s action=saneitize reason=\"cannot start a thread\"", w->id);
		saneitize_free(r->sz);
		r->sz = NULL;
	}
}

/* A stop signal after the first: the worker is draining and ignores it,
 * but says who sent it (async-signal-safe: one write(2) to the log). */
static void on_late_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	char line[96] = "level=warn action=late_signal signal=";
	size_t n = strlen(line);
	const char *name = sig == SIGTERM ? "TERM" : "INT";
	for (const char *p = name; *p; p++)
		line[n++] = *p;
	const char *k = " sender_pid=";
	for (const char *p = k; *p; p++)
		line[n++] = *p;
	char digits[16];
	int d = 0;
	unsigned long v = si ? (unsigned long)si->si_pid : 0;
	do {
		digits[d++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && d < (int)sizeof digits);
	while (d)
		line[n++] = digits[--d];
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

static void *run_main(void *arg)
{
	struct run *r = arg;
	r->st = pipeline_run(r->p);
	atomic_store(&r->done, true);
	return NULL;
}

static void usage(FILE *f)
{
	fputs("Usage: freshet-worker [--config FILE]\n"
	      "\n"
	      "Keeps the Xapian shards of the configured wikis up to date: takes\n"
	      "partition leases, reads page change events from Redis, fetches each\n"
	      "changed page from the wiki's Action API, analyzes it and rewrites its\n"
	      "document.  Runs until SIGTERM or SIGINT, then finishes, commits and\n"
	      "acknowledges what is in flight and exits 0.\n"
	      "\n"
	      "  -c, --config FILE  configuration file (default: $FRESHET_CONFIG,\n"
	      "                     else built-in defaults; see freshet.conf(5))\n"
	      "  -h, --help         show this help\n"
	      "  -V, --version      show the version\n"
	      "\n"
	      "Environment: FRESHET_CONFIG, FRESHET_REDIS_PASSWORD,\n"
	      "FRESHET_ANALYZER_DIR, FRESHET_LOG_LEVEL (debug, info, warn, error).\n",
	      f);
}

int main(int argc, char **argv)
{
	/* The index is not for other users, whatever the shell's umask. */
	shard_private_umask();
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	/* Block the stop signals first of all, before any thread starts and
	 * before the slow parts of starting (configuration, plugins, Redis):
	 * a stop signal that arrives meanwhile then waits for main's
	 * sigtimedwait() and ends a clean start-and-drain, instead of killing
	 * the process with the default action. */
	sigset_t stopset;
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stopset, NULL);
	const char *config_arg = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_arg = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("freshet-worker %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "freshet-worker: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	struct conf *cfg = conf_new();
	const char *path = conf_path(config_arg);
	if (conf_load(cfg, path) != STATUS_OK) {
		fprintf(stderr, "freshet-worker: %s\n", conf_errmsg(cfg));
		conf_free(cfg);
		return 1;
	}
	/* Before any thread starts: setenv is not thread-safe. */
	replica_keep_changesets(cfg);

	if (fetch_global_init() != STATUS_OK) {
		fprintf(stderr, "freshet-worker: curl_global_init failed\n");
		conf_free(cfg);
		return 1;
	}
	struct loader *ld = loader_new();
	const char *adir = conf_analyzer_dir(cfg);
	if (loader_load_dir(ld, adir) != STATUS_OK || loader_count(ld) == 0) {
		fprintf(stderr, "freshet-worker: no analyzer plugins in %s%s%s\n", adir,
			*loader_errmsg(ld) ? ": " : "", loader_errmsg(ld));
		loader_free(ld);
		conf_free(cfg);
		return 1;
	}

	signal(SIGPIPE, SIG_IGN);

	struct metrics *m = metrics_new();
	int rc = 0;
	if (cfg->metrics_host) {
		char err[256];
		if (metrics_listen(m, cfg->metrics_host, cfg->metrics_port, err,
				   sizeof err) != STATUS_OK) {
			fprintf(stderr, "freshet-worker: %s\n", err);
			metrics_free(m);
			loader_free(ld);
			conf_free(cfg);
			return 1;
		}
		log_info("action=metrics_listen address=%s:%d", cfg->metrics_host,
			 metrics_port(m));
	}

	struct run *runs = xcalloc(cfg->n_wikis, sizeof *runs);
	size_t started = 0;
	for (size_t i = 0; i < cfg->n_wikis; i++) {
		char err[512];
		runs[i].p = pipeline_new(cfg, &cfg->wikis[i], ld, m, err, sizeof err);
		if (!runs[i].p) {
			fprintf(stderr, "freshet-worker: %s\n", err);
			rc = 1;
			break;
		}
		atomic_init(&runs[i].done, false);
		if (pthread_create(&runs[i].thread, NULL, run_main, &runs[i]) != 0) {
			fprintf(stderr, "freshet-worker: cannot start a thread\n");
			pipeline_free(runs[i].p);
			runs[i].p = NULL;
			rc = 1;
			break;
		}
		started++;
		sane_start(&runs[i], cfg, &cfg->wikis[i], m);
	}

	/* Wait for a stop signal, or for a pipeline that gave up. */
	bool stopping = rc != 0;
	while (!stopping) {
		struct timespec ts = { 0, 200 * 1000000L };
		int sig = sigtimedwait(&stopset, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("action=signal signal=%s", sig == SIGTERM ? "TERM" : "INT");
			break;
		}
		for (size_t i = 0; i < started; i++)
			if (atomic_load(&runs[i].done))
				stopping = true;
	}
	/* From here on the worker drains and exits by itself: a further stop
	 * signal must not kill it half-way, whatever thread it reaches.  A
	 * handler (rather than SIG_IGN) says who sent it. */
	struct sigaction late = { .sa_sigaction = on_late_signal, .sa_flags = SA_SIGINFO };
	sigemptyset(&late.sa_mask);
	sigaction(SIGTERM, &late, NULL);
	sigaction(SIGINT, &late, NULL);
	/* Main takes them from now on (the handler cannot stop anything). */
	pthread_sigmask(SIG_UNBLOCK, &stopset, NULL);
	atomic_store(&sane_stop, true);
	for (size_t i = 0; i < started; i++)
		pipeline_stop(runs[i].p);
	for (size_t i = 0; i < started; i++) {
		if (!runs[i].sz)
			continue;
		pthread_join(runs[i].sane_thread, NULL);
		saneitize_free(runs[i].sz);
	}
	for (size_t i = 0; i < started; i++)
		redis_free(runs[i].sr);
	for (size_t i = 0; i < started; i++) {
		pthread_join(runs[i].thread, NULL);
		if (runs[i].st != STATUS_OK) {
			log_error("wiki=%s action=exit status=%s reason=%s",
				  cfg->wikis[i].id, status_str(runs[i].st),
				  log_quote(pipeline_errmsg(runs[i].p)));
			rc = 1;
		}
		pipeline_free(runs[i].p);
	}
	free(runs);
	metrics_free(m);
	loader_free(ld);
	conf_free(cfg);
	log_info("action=exit code=%d", rc);
	return rc;
}
