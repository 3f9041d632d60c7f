/* SPDX-License-Identifier: MIT */
/*
 * bench-fetch.c: pages per second through one fetch handle (one curl multi
 * handle) from a local static server, at 1, 8 and 64 transfers in flight.
 *
 * Usage: bench-fetch [CORPUS_DIR | --size BYTES]
 *
 * The bench starts Debian's nginx on a free 127.0.0.1 port with a private
 * prefix and configuration (single process, no daemon), serving 64 stored
 * action=parse answers (the first 64 of CORPUS_DIR, as written by
 * bench/make-corpus.sh, or 64 synthetic pages of about BYTES of HTML,
 * default 12000) and one
 * action=query&prop=info answer for all of them; it stops nginx by its pid
 * at the end.
 *
 * It measures the two steps of a fetch apart, as they run on different
 * threads (fetch.h):
 *
 *  - the fetch thread: the parse GET, the batched info GET (decoded) and
 *    every classification that needs no decoding of the parse answer; only
 *    results that come out provisionally FETCH_OK count.  pages/s at 1, 8
 *    and 64 in flight, and pages per CPU second of the process;
 *  - fetch_result_decode() of the same answers, which the consumer runs on
 *    its own threads (the pipeline's analysis pool): MB/s and pages/s of
 *    one core (thread CPU time), every decoded result checked FETCH_OK
 *    with its HTML;
 *  - both together: the 64-in-flight fetch thread handing its results to
 *    BENCH_DECODERS threads (default: one per online CPU) that decode
 *    them, as the pipeline does: pages/s fetched and decoded.
 *
 * BENCH_FLIGHT=64 runs one flight setting only (and skips the combined
 * run unless it is 64); BENCH_COUNT=N fetches N pages per setting (for
 * callgrind runs); BENCH_DECODE=0 skips the decode and combined runs.
 */
#include "fetch.h"

#include <errno.h>
#include <pthread.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGES 64

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench-fetch: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		die(path);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		die("free port");
	close(fd);
	return ntohs(a.sin_port);
}

static bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Writes the 64 parse answers and the info answer under dir/www. */
static size_t make_site(const char *dir, const char *corpus, size_t size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/www", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/www/parse", dir);
	mkdir(path, 0755);
	json_t *pages = json_array();
	size_t bytes = 0;
	for (int id = 1; id <= PAGES; id++) {
		json_t *doc = NULL;
		if (corpus) {
			snprintf(path, sizeof(path), "%s/%d.json", corpus, id);
			json_error_t je;
			doc = json_load_file(path, 0, &je);
			if (!doc) {
				fprintf(stderr, "bench-fetch: %s: %s\n", path, je.text);
				exit(1);
			}
		} else {
			char *html = malloc(size + 1000);
			size_t n = 0;
			n += (size_t)sprintf(html + n, "<div class=\"mw-parser-output\">");
			while (n < size)
				n += (size_t)sprintf(html + n, "<p>Paragraph %zu of page %d, "
						     "with <a href=\"/wiki/X\">a link</a> "
						     "and some more words.</p>\n", n, id);
			sprintf(html + n, "</div>");
			doc = json_pack("{s:{s:s,s:i,s:i,s:s,s:s,s:[],s:[],s:[],s:[]}}",
					"parse", "title", "Synthetic", "pageid", id,
					"revid", id * 10, "text", html, "displaytitle",
					"Synthetic", "categories", "links", "templates",
					"sections");
			free(html);
		}
		json_t *p = json_object_get(doc, "parse");
		json_object_set_new(p, "pageid", json_integer(id));
		json_object_set_new(p, "revid", json_integer(id * 10));
		char *s = json_dumps(doc, JSON_COMPACT);
		bytes += strlen(s);
		snprintf(path, sizeof(path), "%s/www/parse/%d.json", dir, id);
		write_file(path, s, strlen(s));
		free(s);
		json_array_append_new(pages, json_pack("{s:i,s:i,s:s,s:s,s:i}",
			"pageid", id, "ns", 0, "title", "Page", "pagelanguage", "en",
			"lastrevid", id * 10));
		json_decref(doc);
	}
	json_t *info = json_pack("{s:b,s:{s:o}}", "batchcomplete", 1, "query",
				 "pages", pages);
	char *s = json_dumps(info, JSON_COMPACT);
	snprintf(path, sizeof(path), "%s/www/info.json", dir);
	write_file(path, s, strlen(s));
	free(s);
	json_decref(info);
	return bytes / PAGES;
}

static pid_t start_nginx(const char *dir, int port)
{
	char conf[8192], path[4096];
	snprintf(conf, sizeof(conf),
		 "worker_processes 1;\ndaemon off;\nmaster_process off;\n"
		 "pid %s/nginx.pid;\nerror_log %s/error.log;\n"
		 "events { worker_connections 1024; }\n"
		 "http {\n"
		 "  access_log off;\n"
		 "  client_body_temp_path %s/tmp;\n  proxy_temp_path %s/tmp;\n"
		 "  fastcgi_temp_path %s/tmp;\n  uwsgi_temp_path %s/tmp;\n"
		 "  scgi_temp_path %s/tmp;\n"
		 "  types { application/json json; }\n"
		 "  keepalive_requests 10000000;\n  keepalive_timeout 60s;\n"
		 "  server {\n"
		 "    listen 127.0.0.1:%d;\n    root %s/www;\n"
		 "    location = /w/api.php {\n"
		 "      if ($arg_action = \"query\") { rewrite ^ /info.json last; }\n"
		 "      rewrite ^ /parse/$arg_pageid.json last;\n"
		 "    }\n  }\n}\n",
		 dir, dir, dir, dir, dir, dir, dir, port, dir);
	snprintf(path, sizeof(path), "%s/nginx.conf", dir);
	write_file(path, conf, strlen(conf));
	snprintf(path, sizeof(path), "%s/tmp", dir);
	mkdir(path, 0700);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		char cpath[4096];
		snprintf(cpath, sizeof(cpath), "%s/nginx.conf", dir);
		execlp("nginx", "nginx", "-p", dir, "-c", cpath, (char *)NULL);
		execl("/usr/sbin/nginx", "nginx", "-p", dir, "-c", cpath, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && !port_open(port); i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "bench-fetch: nginx exited (see %s/error.log)\n",
				dir);
			exit(1);
		}
		usleep(50000);
	}
	if (!port_open(port)) {
		fprintf(stderr, "bench-fetch: nginx did not listen on %d\n", port);
		kill(pid, SIGKILL);
		exit(1);
	}
	return pid;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Fetches n pages with `flight` transfers in flight; returns pages/s and
 * sets *per_cpu_s to pages per CPU second of this process (the figure that
 * does not depend on how busy the machine's other processes keep it).
 * Results come out undecoded: sink (if not NULL) takes the FETCH_OK ones,
 * the others are freed. */
static double run(const char *api, int flight, int n, double *per_cpu_s,
		  void (*sink)(struct fetch_result *))
{
	struct fetch_wiki_config cfg;
	fetch_wiki_config_init(&cfg);
	cfg.name = "benchwiki";
	cfg.api = api;
	cfg.concurrency = flight;
	cfg.rate = 0;
	char *err = NULL;
	struct fetch_wiki *w = fetch_wiki_new(&cfg, &err);
	if (!w) {
		fprintf(stderr, "bench-fetch: %s\n", err);
		exit(1);
	}
	struct fetch *f = fetch_new();
	/* Warm up: open the connections. */
	for (int i = 0; i < flight; i++)
		fetch_submit(f, w, (uint64_t)(i % PAGES) + 1, 0, NULL);
	for (size_t got = 0; got < (size_t)flight;) {
		fetch_run(f, 100);
		struct fetch_result *r;
		while ((r = fetch_next(f)))
			got++, fetch_result_free(r);
	}
	double t0 = now(), c0 = cpu_s();
	uint64_t conn0 = fetch_connects(f);
	int submitted = 0, ok = 0, done = 0;
	while (done < n) {
		/* Keep about two rounds queued, as a worker would. */
		while (submitted < n && fetch_pending(f) < (size_t)flight * 2)
			fetch_submit(f, w, (uint64_t)(submitted++ % PAGES) + 1, 0,
				     NULL);
		fetch_run(f, 100);
		struct fetch_result *r;
		while ((r = fetch_next(f))) {
			if (r->cls == FETCH_OK)
				ok++;
			else if (done - ok < 3)
				fprintf(stderr, "bench-fetch: page %llu: %s: %s\n",
					(unsigned long long)r->page_id,
					fetch_class_str(r->cls), r->error);
			done++;
			if (sink && r->cls == FETCH_OK)
				sink(r);
			else
				fetch_result_free(r);
		}
	}
	double dt = now() - t0;
	*per_cpu_s = ok / (cpu_s() - c0);
	printf("bench-fetch: %d in flight: %llu new connections for %d fetches "
	       "(keep-alive reuse)\n", flight,
	       (unsigned long long)(fetch_connects(f) - conn0), n);
	fetch_free(f);
	fetch_wiki_free(w);
	if (ok != n)
		fprintf(stderr, "bench-fetch: only %d of %d fetches ok\n", ok, n);
	return ok / dt;
}

static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Results handed from the fetch thread to the decoding threads. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct fetch_result **v;
	size_t n, cap;
	bool end;
	long decoded, bad;
	double cpu;              /* decoding threads' CPU seconds */
} hand = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0,
	   false, 0, 0, 0 };

static void keep(struct fetch_result *r)
{
	pthread_mutex_lock(&hand.mu);
	if (hand.n == hand.cap) {
		hand.cap = hand.cap ? hand.cap * 2 : 1024;
		hand.v = realloc(hand.v, hand.cap * sizeof(*hand.v));
		if (!hand.v)
			die("realloc");
	}
	hand.v[hand.n++] = r;
	pthread_cond_signal(&hand.cond);
	pthread_mutex_unlock(&hand.mu);
}

/* Decodes r and checks it; returns its JSON size. */
static size_t decode_one(struct fetch_result *r, long *bad)
{
	size_t len = r->raw_len;
	fetch_result_decode(r);
	if (r->cls != FETCH_OK || !r->html || !r->rev_id) {
		if ((*bad)++ < 3)
			fprintf(stderr, "bench-fetch: decoding page %llu: %s: %s\n",
				(unsigned long long)r->page_id,
				fetch_class_str(r->cls), r->error ? r->error : "");
	}
	fetch_result_free(r);
	return len;
}

static void *decoder_main(void *arg)
{
	(void)arg;
	double c0 = thread_cpu_s();
	long decoded = 0, bad = 0;
	pthread_mutex_lock(&hand.mu);
	for (;;) {
		while (!hand.n && !hand.end)
			pthread_cond_wait(&hand.cond, &hand.mu);
		if (!hand.n)
			break;
		struct fetch_result *r = hand.v[--hand.n];
		pthread_mutex_unlock(&hand.mu);
		decode_one(r, &bad);
		decoded++;
		pthread_mutex_lock(&hand.mu);
	}
	hand.decoded += decoded;
	hand.bad += bad;
	hand.cpu += thread_cpu_s() - c0;
	pthread_mutex_unlock(&hand.mu);
	return NULL;
}

/* Fetches n pages at 64 in flight, keeps the results undecoded, then
 * decodes them all on this thread: the cost of fetch_result_decode() per
 * core, on the answers the fetch thread handed over. */
static void bench_decode(const char *api, int n)
{
	double per_cpu;
	hand.n = 0;
	run(api, 64, n, &per_cpu, keep);
	size_t got = hand.n, bytes = 0;
	long bad = 0;
	double t0 = now(), c0 = thread_cpu_s();
	for (size_t i = 0; i < got; i++)
		bytes += decode_one(hand.v[i], &bad);
	double dt = now() - t0, cpu = thread_cpu_s() - c0;
	hand.n = 0;
	printf("bench-fetch: decode (fetch_result_decode, one thread): %zu "
	       "answers, %.1f MB: %.0f pages/s, %.1f MB/s per core (CPU time; "
	       "wall %.0f pages/s)%s\n", got, bytes / 1e6, got / cpu,
	       bytes / 1e6 / cpu, got / dt, bad ? ", SOME FAILED" : "");
}

/* The fetch thread at 64 in flight handing its results to `threads`
 * decoding threads, as the pipeline does with its analysis pool. */
static void bench_both(const char *api, int n, int threads)
{
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	hand.n = 0;
	hand.end = false;
	hand.decoded = hand.bad = 0;
	hand.cpu = 0;
	double t0 = now();
	for (int i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, decoder_main, NULL) != 0)
			die("pthread_create");
	double per_cpu;
	double fetch_pps = run(api, 64, n, &per_cpu, keep);
	pthread_mutex_lock(&hand.mu);
	hand.end = true;
	pthread_cond_broadcast(&hand.cond);
	pthread_mutex_unlock(&hand.mu);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double dt = now() - t0;
	printf("bench-fetch: 64 in flight + %d decoding thread%s: %.0f pages/s "
	       "fetched and decoded (fetch thread alone meanwhile %.0f pages/s; "
	       "decoding %.0f pages per CPU second)%s\n", threads,
	       threads == 1 ? "" : "s", hand.decoded / dt, fetch_pps,
	       hand.decoded / hand.cpu, hand.bad ? ", SOME FAILED" : "");
	free(t);
}

int main(int argc, char **argv)
{
	const char *corpus = NULL;
	size_t size = 12000;
	if (argc > 2 && !strcmp(argv[1], "--size"))
		size = (size_t)atol(argv[2]);
	else if (argc > 1)
		corpus = argv[1];
	char dir[] = "/tmp/freshet-bench-fetch-XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp");
	size_t avg = make_site(dir, corpus, size);
	int port = free_port();
	pid_t pid = start_nginx(dir, port);
	fetch_global_init();
	char api[128];
	snprintf(api, sizeof(api), "http://127.0.0.1:%d/w/api.php", port);
	printf("bench-fetch: nginx pid %d on 127.0.0.1:%d, %d pages of %.1f KB "
	       "(%s)\n", (int)pid, port, PAGES, avg / 1e3,
	       corpus ? corpus : "synthetic");
	int flights[] = { 1, 8, 64 };
	int counts[] = { 2000, 8000, 20000 };
	const char *only = getenv("BENCH_FLIGHT"); /* e.g. 64: run just that */
	const char *count = getenv("BENCH_COUNT"); /* fetches per setting */
	for (int i = 0; i < 3; i++) {
		if (only && atoi(only) != flights[i])
			continue;
		double per_cpu;
		int n = count && atoi(count) > 0 ? atoi(count) : counts[i];
		double pps = run(api, flights[i], n, &per_cpu, NULL);
		printf("bench-fetch: %2d in flight: %7.0f pages/s (%.0f MB/s of "
		       "JSON) on the fetch thread, not decoded; %7.0f pages per "
		       "CPU second\n", flights[i], pps, pps * avg / 1e6, per_cpu);
	}
	const char *dec = getenv("BENCH_DECODE");
	if (!dec || atoi(dec) != 0) {
		int n = count && atoi(count) > 0 ? atoi(count) : 4000;
		bench_decode(api, n);
		const char *nd = getenv("BENCH_DECODERS");
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		int threads = nd && atoi(nd) > 0 ? atoi(nd) : cpus > 0 ? (int)cpus : 1;
		if (!only || atoi(only) == 64)
			bench_both(api, count && atoi(count) > 0 ? atoi(count) : 20000,
				   threads);
	}
	free(hand.v);
	kill(pid, SIGQUIT);
	int st;
	waitpid(pid, &st, 0);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
