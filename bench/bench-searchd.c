/* SPDX-License-Identifier: MIT */
/*
 * bench-searchd.c: freshet-searchd under load while the worker applies
 * edits, the same queries through the query module in-process, title
 * completion, and PostgreSQL's full-text search on the same pages.
 *
 * Usage: bench-searchd [-n PAGES] [-c CORPUS_DIR] [-w WORKER] [-d SEARCHD]
 *                      [-r ROUNDS] [-q] [-k]
 *
 * CORPUS_DIR is bench/make-pipeline-corpus.sh's (without -c the bench
 * generates one, as bench-pipeline does); -q is the quick mode, 2,000
 * pages; WORKER and SEARCHD default to ./freshet-worker and
 * ./freshet-searchd (run from the build directory).
 *
 * What it does, in one run (servers from harness.h, each stopped by pid):
 *  1. The shards: redis-server, nginx serving the corpus, the real
 *     freshet-worker (4 shards) builds the index from one create event per
 *     page and keeps running.
 *  2. The queries: 1,000 drawn deterministically (a fixed xorshift seed)
 *     from the extracted text (extract.h, the text the shards hold) of
 *     random pages, in each page's language: 1 to 3 words of the page,
 *     every tenth a quoted phrase of 2 or 3 adjacent words.  Completion
 *     prefixes: "Man:" (which every title of the corpus starts with)
 *     followed by 1 to 6 characters of a page's name.
 *  3. freshet-searchd (2 threads, the worker's configuration plus
 *     [searchd]) is asked GET /v1/benchwiki/search?q=...&lang=<page
 *     language>&limit=20 by 1, 8 and 32 clients, each a thread with its own
 *     keep-alive libcurl handle; the queries are split between the clients
 *     and repeated ROUNDS times (default 1), after the whole set once
 *     untimed (each run below is warmed up so), so that no timed run pays
 *     the first reads of the blocks the set touches for the others.
 *     Queries/s = answers / wall time; p50 and p99 of each request's time.
 *     Every answer must be a 200.
 *  4. The same queries in-process, with a struct searcher (search.h), the
 *     daemon's request and its JSON answer serialised, at 1 client, paired
 *     with HTTP: one client asks each query of the set both ways, back to
 *     back, HTTP first for even queries and in-process first for odd ones
 *     (the second finds the first's blocks in memory).  The daemon's HTTP
 *     overhead is its mean time per query over the in-process one's: both
 *     sides see the same moments of the machine, whose speed moves by
 *     20-30% within a minute on a shared VM.
 *  5. Completion: GET /v1/benchwiki/complete?q=<prefix> at 8 clients.
 *  6. (run before 3 to 5, as its load takes longest)
 *     PostgreSQL 15 (/usr/lib/postgresql/15/bin, a private cluster made by
 *     initdb, a unix socket in the private directory, no TCP; run as the
 *     postgres user when the bench runs as root): one table with the same
 *     pages' title and extracted text (text, headings, auxiliary text),
 *     each page's text search configuration (english, german, french,
 *     russian; simple for the rest, Japanese and Chinese included), a
 *     tsvector column (title weighted A) with a GIN index; the same queries
 *     as websearch_to_tsquery (phrases) or plainto_tsquery in the query's
 *     language, ranked by ts_rank_cd, top 20 with a ts_headline snippet,
 *     each client its own connection, at 1, 8 and 32 clients.  A text
 *     longer than 256 KiB is cut there (a tsvector holds at most 1 MB).
 *
 * During every timed run, PostgreSQL's included so that all of them share
 * the machine alike, the bench edits random pages at 50 per second (the
 * overlay of harness.h, then an XADD per edit) and the worker applies
 * them.  Each figure is printed with its target and PASS or MISS.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "extract.h"
#include "harness.h"
#include "loader.h"
#include "query.h"
#include "queryset.h"
#include "search.h"
#include "xmalloc.h"

#define NQ QUERYSET_N
#define EDITS_PER_S 50.0
#define PG_BIN "/usr/lib/postgresql/15/bin"
#define PG_MAX_TEXT (256 * 1024)

static char searchd_bin[4096] = "./freshet-searchd";
static pid_t searchd_pid, pg_pid;
static int searchd_port;
static char searchd_conf[4200], pg_sock[4200];
static int rounds = 1;
/* Queries of the next run: NQ * rounds, or fewer for a warm-up. */
static size_t run_total;

static void stop_ours(void)
{
	harness_stop_pid(&searchd_pid, SIGTERM);
	harness_stop_pid(&pg_pid, SIGINT);
}

/* ------------------------------------------------------------ runs */

/* PAIRED: one client asks each query both over HTTP and in-process, back
 * to back, the order alternating from query to query. */
enum mode { HTTP_SEARCH, INPROC_SEARCH, HTTP_COMPLETE, PG_SEARCH, PAIRED };

static const struct conf *cfg;
static const struct loader *ld;

struct client {
	pthread_t t;
	enum mode mode;
	int id, n;
	double *lat;
	size_t n_lat;
	double *lat2; /* PAIRED: the in-process times (lat: HTTP) */
	long errors;
	char err[256];
	double cpu; /* the thread's CPU seconds in the in-process searches */
};

static atomic_int clients_done;

static void note_error(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note_error(struct client *c, const char *fmt, ...)
{
	if (c->errors++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err, sizeof c->err, fmt, ap);
		va_end(ap);
	}
}

static const char pg_web[] =
	"SELECT p.id, p.title, ts_headline($1::regconfig, p.body, "
	"websearch_to_tsquery($1::regconfig, $2), 'MaxFragments=1, MaxWords=35, "
	"MinWords=15') FROM (SELECT id, title, body, ts_rank_cd(tsv, q) AS r FROM "
	"pages, websearch_to_tsquery($1::regconfig, $2) q WHERE tsv @@ q ORDER BY "
	"r DESC LIMIT 20) p ORDER BY p.r DESC";
static const char pg_plain[] =
	"SELECT p.id, p.title, ts_headline($1::regconfig, p.body, "
	"plainto_tsquery($1::regconfig, $2), 'MaxFragments=1, MaxWords=35, "
	"MinWords=15') FROM (SELECT id, title, body, ts_rank_cd(tsv, q) AS r FROM "
	"pages, plainto_tsquery($1::regconfig, $2) q WHERE tsv @@ q ORDER BY "
	"r DESC LIMIT 20) p ORDER BY p.r DESC";

/* PostgreSQL's notices (words too long to index, queries of stop words
 * only) are expected here; keep them out of the figures. */
static void pg_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static PGconn *pg_connect(void)
{
	char ci[4400];
	snprintf(ci, sizeof ci, "host=%s dbname=postgres user=postgres", pg_sock);
	PGconn *pc = PQconnectdb(ci);
	if (PQstatus(pc) != CONNECTION_OK)
		harness_die("PostgreSQL: %s", PQerrorMessage(pc));
	PQsetNoticeProcessor(pc, pg_quiet, NULL);
	return pc;
}

static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Asks query k in mode m (not PAIRED) through the client's handles.
 * Returns the seconds it took. */
static double ask(struct client *c, enum mode m, size_t k, CURL *h, struct searcher *s, PGconn *pc,
		  struct buf *body)
{
	const struct query *q = &queryset_queries[k % NQ];
	double t0 = harness_now();
	if (m == HTTP_SEARCH || m == HTTP_COMPLETE) {
		char err[256];
		if (!queryset_search(h, searchd_port, WIKI, k, m == HTTP_COMPLETE, body, err,
				     sizeof err))
			note_error(c, "%s", err);
	} else if (m == INPROC_SEARCH) {
		double cpu0 = thread_cpu();
		struct search_request rq = {
			.wiki = WIKI,
			.query = q->q,
			.query_len = strlen(q->q),
			.limit = 20,
			.lang = q->lang,
			.max_query_bytes = 1024,
			.max_terms = 32,
			.timeout_ms = 2000,
			.hi_start = "<span class=\"searchmatch\">",
			.hi_end = "</span>",
			.snippet_flags = QUERY_SNIPPET_HTML,
			.snippet_bytes = 200,
		};
		struct search_result res;
		if (searcher_search(s, &rq, &res) != STATUS_OK) {
			note_error(c, "%s: %s", q->q, searcher_errmsg(s));
		} else {
			json_t *j = search_result_json(&res, &rq);
			free(json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER));
			json_decref(j);
			search_result_release(&res);
		}
		c->cpu += thread_cpu() - cpu0;
	} else {
		const char *params[2] = { q->pgcfg, q->q };
		PGresult *r = PQexecPrepared(pc, q->phrase ? "web" : "plain", 2, params, NULL, NULL,
					     0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			note_error(c, "%s: %s", q->q, PQerrorMessage(pc));
		PQclear(r);
	}
	return harness_now() - t0;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	CURL *h = NULL;
	struct searcher *s = NULL;
	PGconn *pc = NULL;
	if (c->mode == INPROC_SEARCH || c->mode == PAIRED)
		s = searcher_new(cfg, ld, SEARCHER_PARTIAL);
	if (c->mode == PG_SEARCH) {
		pc = pg_connect();
		PGresult *r = PQprepare(pc, "web", pg_web, 2, NULL);
		PQclear(r);
		r = PQprepare(pc, "plain", pg_plain, 2, NULL);
		PQclear(r);
	} else if (c->mode != INPROC_SEARCH) {
		h = curl_easy_init();
	}
	size_t total = run_total;
	c->lat = calloc(total / (size_t)c->n + 1, sizeof *c->lat);
	if (c->mode == PAIRED)
		c->lat2 = calloc(total / (size_t)c->n + 1, sizeof *c->lat2);
	struct buf body = BUF_INIT;
	for (size_t k = (size_t)c->id; k < total; k += (size_t)c->n) {
		if (c->mode != PAIRED) {
			c->lat[c->n_lat++] = ask(c, c->mode, k, h, s, pc, &body);
			continue;
		}
		/* Whichever goes second finds the blocks the first read in
		 * memory: alternate. */
		if (k % 2 == 0) {
			c->lat[c->n_lat] = ask(c, HTTP_SEARCH, k, h, s, pc, &body);
			c->lat2[c->n_lat] = ask(c, INPROC_SEARCH, k, h, s, pc, &body);
		} else {
			c->lat2[c->n_lat] = ask(c, INPROC_SEARCH, k, h, s, pc, &body);
			c->lat[c->n_lat] = ask(c, HTTP_SEARCH, k, h, s, pc, &body);
		}
		c->n_lat++;
	}
	buf_release(&body);
	if (h)
		curl_easy_cleanup(h);
	searcher_free(s);
	if (pc)
		PQfinish(pc);
	atomic_fetch_add(&clients_done, 1);
	return NULL;
}

struct figures {
	double qps, p50, p99, per_query;
	long errors;
	double edit_rate;        /* edits made per second */
	/* CPU seconds per query of what answered: freshet-searchd's (its
	 * utime + stime over the run), the in-process client threads'; -1
	 * when not measured (PostgreSQL's backends). */
	double cpu_per_query;
};

/* Sets the latency figures of f from lat[0..n) (sorted here), a run of
 * wall seconds; per query, the mean latency when mean is true (one side
 * of a PAIRED run), else the wall time over the queries. */
static void latency_figures(struct figures *f, double *lat, size_t n, double wall, bool mean)
{
	qsort(lat, n, sizeof *lat, harness_cmp_double);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += lat[i];
	f->per_query = n ? (mean ? sum : wall) / (double)n : 0;
	f->qps = f->per_query > 0 ? 1 / f->per_query : 0;
	f->p50 = n ? lat[n / 2] : 0;
	f->p99 = n ? lat[(size_t)((double)(n - 1) * 0.99)] : 0;
}

/* Runs mode at n clients while editing pages at EDITS_PER_S: the first
 * total queries of the set (repeated past NQ).  PAIRED (n = 1): the
 * figures are the HTTP side's, and *inproc gets the in-process side's. */
static struct figures run_n(const char *corpus, enum mode mode, int n, size_t total,
			    struct figures *inproc)
{
	run_total = total;
	struct client *cl = calloc((size_t)n, sizeof *cl);
	atomic_store(&clients_done, 0);
	bool http = mode == HTTP_SEARCH || mode == HTTP_COMPLETE || mode == PAIRED;
	double cpu0 = http ? harness_cpu_of(searchd_pid) : 0;
	double t0 = harness_now();
	for (int i = 0; i < n; i++) {
		cl[i] = (struct client){ .mode = mode, .id = i, .n = n };
		pthread_create(&cl[i].t, NULL, client_main, &cl[i]);
	}
	size_t edits = 0;
	while (atomic_load(&clients_done) < n) {
		/* Edits that fall behind are not made up for once the clients
		 * are done: the rate achieved is printed. */
		while ((double)edits < (harness_now() - t0) * EDITS_PER_S &&
		       atomic_load(&clients_done) < n) {
			int64_t page = (int64_t)(harness_rnd() % (uint64_t)harness_npages) + 1;
			uint64_t rev = harness_edit_page(corpus, page);
			harness_produce(WIKI, &page, &rev, NULL, 1, NULL);
			edits++;
		}
		usleep(5000);
	}
	double wall = harness_now() - t0;
	double cpu = http ? harness_cpu_of(searchd_pid) - cpu0 : 0, cpu_inproc = 0;
	struct figures f = { .edit_rate = (double)edits / wall };
	total = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(cl[i].t, NULL);
		cpu_inproc += cl[i].cpu;
		total += cl[i].n_lat;
		f.errors += cl[i].errors;
		if (cl[i].errors)
			fprintf(stderr, "bench-searchd: %ld errors, the first: %s\n",
				cl[i].errors, cl[i].err);
	}
	double *all = malloc((total ? total : 1) * sizeof *all);
	double *all2 = malloc((total ? total : 1) * sizeof *all2);
	size_t k = 0;
	for (int i = 0; i < n; i++) {
		memcpy(all + k, cl[i].lat, cl[i].n_lat * sizeof *all);
		if (cl[i].lat2)
			memcpy(all2 + k, cl[i].lat2, cl[i].n_lat * sizeof *all2);
		k += cl[i].n_lat;
		free(cl[i].lat);
		free(cl[i].lat2);
	}
	latency_figures(&f, all, total, wall, mode == PAIRED);
	if (mode == PAIRED) {
		*inproc = f;
		latency_figures(inproc, all2, total, wall, true);
		inproc->cpu_per_query = total ? cpu_inproc / (double)total : -1;
		inproc->errors = 0;
	} else {
		cpu += cpu_inproc;
	}
	f.cpu_per_query = mode == PG_SEARCH || !total ? -1 : cpu / (double)total;
	free(all);
	free(all2);
	free(cl);
	return f;
}

/* A timed run.  It starts once the worker has applied every edit made so
 * far: a backlog left by the run before (PostgreSQL's at 32 clients
 * starves the worker) would otherwise be worked off during this one. */
static struct figures run(const char *corpus, enum mode mode, int n, struct figures *inproc)
{
	harness_wait_drained(WIKI, 120);
	return run_n(corpus, mode, n, (size_t)NQ * (size_t)rounds, inproc);
}

static void print_run(const char *what, int n, const struct figures *f)
{
	char cpu[48] = "";
	if (f->cpu_per_query >= 0)
		snprintf(cpu, sizeof cpu, "  CPU %6.2f ms/query", f->cpu_per_query * 1e3);
	printf("  %-26s %2d clients: %8.1f queries/s  p50 %7.2f ms  p99 %7.2f ms"
	       "%s%s (%.1f edits/s)\n",
	       what, n, f->qps, f->p50 * 1e3, f->p99 * 1e3, cpu, f->errors ? "  ERRORS" : "",
	       f->edit_rate);
	fflush(stdout);
}

/* ------------------------------------------------------------ servers */

static void start_searchd(void)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/freshet-" WIKI ".conf", harness_dir);
	FILE *in = fopen(path, "r");
	if (!in)
		harness_die("%s: %s", path, strerror(errno));
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, in)) > 0)
		buf_add(&b, chunk, n);
	fclose(in);
	searchd_port = harness_free_port();
	buf_addf(&b, "\n[searchd]\nlisten = 127.0.0.1:%d\nthreads = 2\n",
		 searchd_port);
	snprintf(searchd_conf, sizeof searchd_conf, "%s/searchd.conf", harness_dir);
	harness_write_file(searchd_conf, b.data, b.len);
	buf_release(&b);
	char log[4200];
	snprintf(log, sizeof log, "%s/searchd.log", harness_dir);
	char *argv[] = { searchd_bin, "--config", searchd_conf, NULL };
	searchd_pid = harness_spawn(argv, log, NULL);
	harness_wait_port(searchd_pid, searchd_port, "freshet-searchd");
}

static void start_pg(void)
{
	char data[4200], log[4200], sockfile[4300];
	snprintf(data, sizeof data, "%s/pg", harness_dir);
	snprintf(pg_sock, sizeof pg_sock, "%s/pgsock", harness_dir);
	snprintf(log, sizeof log, "%s/postgres.log", harness_dir);
	mkdir(data, 0700);
	mkdir(pg_sock, 0700);
	struct passwd *pw = getuid() == 0 ? getpwnam("postgres") : NULL;
	if (pw && (chown(data, pw->pw_uid, pw->pw_gid) != 0 ||
		   chown(pg_sock, pw->pw_uid, pw->pw_gid) != 0))
		harness_die("chown: %s", strerror(errno));
	char *initdb[] = { PG_BIN "/initdb", "-D", data, "-U", "postgres",
			   "--auth=trust", "-E", "UTF8", "--locale=C", NULL };
	pid_t p = harness_spawn_user(initdb, log, "postgres");
	int st;
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
		harness_die("initdb failed (see %s)", log);
	char *pg[] = { PG_BIN "/postgres", "-D", data, "-k", pg_sock, "-c",
		       "listen_addresses=", "-c", "fsync=off", "-c",
		       "shared_buffers=256MB", "-c", "max_connections=64", "-c",
		       "max_parallel_workers_per_gather=0", NULL };
	pg_pid = harness_spawn_user(pg, log, "postgres");
	snprintf(sockfile, sizeof sockfile, "%s/.s.PGSQL.5432", pg_sock);
	for (int i = 0; i < 600 && access(sockfile, F_OK) != 0; i++) {
		if (waitpid(pg_pid, &st, WNOHANG) == pg_pid) {
			pg_pid = 0;
			harness_die("postgres exited at start (see %s)", log);
		}
		usleep(50000);
	}
	/* The socket appears a moment before connections are accepted. */
	for (int i = 0; i < 200; i++) {
		char ci[4400];
		snprintf(ci, sizeof ci, "host=%s dbname=postgres user=postgres", pg_sock);
		if (PQping(ci) == PQPING_OK)
			return;
		usleep(50000);
	}
	harness_die("postgres did not accept connections (see %s)", log);
}

static void pg_exec(PGconn *pc, const char *sql)
{
	PGresult *r = PQexec(pc, sql);
	ExecStatusType s = PQresultStatus(r);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		harness_die("PostgreSQL: %s: %s", sql, PQerrorMessage(pc));
	PQclear(r);
}

/* COPY's text format: backslash, tab, newline and carriage return escaped. */
static void copy_field(struct buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\\')
			buf_adds(b, "\\\\");
		else if (c == '\t')
			buf_adds(b, "\\t");
		else if (c == '\n')
			buf_adds(b, "\\n");
		else if (c == '\r')
			buf_adds(b, "\\r");
		else
			buf_addch(b, c);
	}
}

/* Loads every page into PostgreSQL; returns the seconds it took, sets *cut
 * to the texts cut at PG_MAX_TEXT. */
static double load_pg(const char *corpus, int *cut)
{
	double t0 = harness_now();
	PGconn *pc = pg_connect();
	pg_exec(pc, "CREATE TABLE pages (id integer PRIMARY KEY, lang regconfig, "
		    "title text, body text, tsv tsvector)");
	PGresult *r = PQexec(pc, "COPY pages (id, lang, title, body) FROM STDIN");
	if (PQresultStatus(r) != PGRES_COPY_IN)
		harness_die("COPY: %s", PQerrorMessage(pc));
	PQclear(r);
	struct extract *x = extract_new(NULL);
	struct buf row = BUF_INIT;
	*cut = 0;
	for (long id = 1; id <= harness_npages; id++) {
		char *t = queryset_page_text(x, corpus, id);
		size_t len = strlen(t);
		if (len > PG_MAX_TEXT) {
			len = PG_MAX_TEXT;
			/* Cut at a character boundary. */
			while (len && ((unsigned char)t[len] & 0xc0) == 0x80)
				len--;
			(*cut)++;
		}
		buf_reset(&row);
		buf_addf(&row, "%ld\t%s\t", id, queryset_pg_config(queryset_page_lang[id]));
		const char *title = queryset_page_title[id] ? queryset_page_title[id] : "";
		copy_field(&row, title, strlen(title));
		buf_addch(&row, '\t');
		copy_field(&row, t, len);
		buf_addch(&row, '\n');
		free(t);
		if (PQputCopyData(pc, row.data, (int)row.len) != 1)
			harness_die("COPY: %s", PQerrorMessage(pc));
	}
	buf_release(&row);
	extract_free(x);
	if (PQputCopyEnd(pc, NULL) != 1)
		harness_die("COPY: %s", PQerrorMessage(pc));
	while ((r = PQgetResult(pc))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			harness_die("COPY: %s", PQerrorMessage(pc));
		PQclear(r);
	}
	pg_exec(pc, "UPDATE pages SET tsv = setweight(to_tsvector(lang, title), 'A') "
		    "|| to_tsvector(lang, body)");
	pg_exec(pc, "CREATE INDEX pages_tsv ON pages USING gin (tsv)");
	pg_exec(pc, "VACUUM ANALYZE pages");
	PQfinish(pc);
	return harness_now() - t0;
}

/* ------------------------------------------------------------ main */

static void usage(void)
{
	fputs("Usage: bench-searchd [-n PAGES] [-c CORPUS_DIR] [-w WORKER] "
	      "[-d SEARCHD] [-r ROUNDS] [-q] [-k] [-P]\n"
	      "  -q  quick: 2,000 pages\n"
	      "  -P  leave PostgreSQL out (its comparison is not made)\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *corpus = NULL;
	int c;
	/* The in-process run keeps its memory as freshet-searchd does, so
	 * that the overhead compared is HTTP's alone. */
	xmalloc_keep_heap();
	bool with_pg = true;
	while ((c = getopt(argc, argv, "n:c:w:d:r:qkP")) != -1) {
		switch (c) {
		case 'n': harness_npages = atoi(optarg); break;
		case 'c': corpus = optarg; break;
		case 'w':
			snprintf(harness_worker_bin, sizeof harness_worker_bin, "%s", optarg);
			break;
		case 'd': snprintf(searchd_bin, sizeof searchd_bin, "%s", optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'q': harness_npages = 2000; break;
		case 'k': harness_keep = true; break;
		case 'P': with_pg = false; break;
		default: usage();
		}
	}
	if (harness_npages < 100 || rounds < 1 || optind < argc)
		usage();
	harness_at_stop = stop_ours;
	harness_init("bench-searchd");
	harness_program(searchd_bin, sizeof searchd_bin, 'd');
	corpus = harness_corpus(corpus);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	queryset_read_pages(corpus);

	/* 1. The shards, built by the worker, which keeps running. */
	harness_start_stage(corpus);
	printf("bench-searchd: %d pages from %s; private dir %s\n", harness_npages,
	       corpus, harness_dir);
	fflush(stdout);
	int64_t *pages = malloc(sizeof(int64_t) * (size_t)harness_npages);
	uint64_t *revs = malloc(sizeof(uint64_t) * (size_t)harness_npages);
	for (int i = 0; i < harness_npages; i++) {
		pages[i] = i + 1;
		revs[i] = harness_cur_rev[i + 1];
	}
	harness_start_worker(WIKI, "a");
	harness_wait_ready(WIKI);
	double t0 = harness_now();
	harness_produce(WIKI, pages, revs, NULL, (size_t)harness_npages, NULL);
	double build_s = harness_wait_drained(WIKI, 7200) - t0;
	free(pages);
	free(revs);
	printf("bench-searchd: the worker indexed %d pages in %.1f s\n",
	       harness_npages, build_s);

	/* 2. The queries. */
	queryset_make(corpus);
	int phrases = 0;
	for (int i = 0; i < NQ; i++)
		phrases += queryset_queries[i].phrase;
	printf("bench-searchd: %d queries (%d phrases), e.g. [%s] [%s] [%s]; "
	       "completion prefixes e.g. [%s] [%s]\n",
	       NQ, phrases, queryset_queries[1].q, queryset_queries[2].q, queryset_queries[10].q,
	       queryset_prefixes[0], queryset_prefixes[1]);
	fflush(stdout);

	int levels[] = { 1, 8, 32 };
	struct figures http[3], paired, inproc, comp, pg[3] = { { 0 } };

	/* 6. PostgreSQL first: its load takes longest. */
	if (with_pg) {
		start_pg();
		int cut;
		double load_s = load_pg(corpus, &cut);
		printf("bench-searchd: PostgreSQL loaded and indexed %d pages in "
		       "%.1f s (%d texts cut at %d KiB)\n", harness_npages, load_s,
		       cut, PG_MAX_TEXT / 1024);
		fflush(stdout);
		run_n(corpus, PG_SEARCH, 8, NQ, NULL);
		for (int i = 0; i < 3; i++) {
			pg[i] = run(corpus, PG_SEARCH, levels[i], NULL);
			print_run("PostgreSQL FTS", levels[i], &pg[i]);
		}
	}

	/* 3-5. freshet-searchd, in-process, completion. */
	start_searchd();
	struct conf *conf = conf_new();
	if (conf_load(conf, searchd_conf) != STATUS_OK)
		harness_die("%s", conf_errmsg(conf));
	struct loader *lo = loader_new();
	if (loader_load_dir(lo, getenv("FRESHET_ANALYZER_DIR")) != STATUS_OK)
		harness_die("analyzers: %s", loader_errmsg(lo));
	cfg = conf;
	ld = lo;
	printf("bench-searchd: warming up (the %d queries and %d completions "
	       "once, 8 clients)\n", NQ, NQ);
	fflush(stdout);
	run_n(corpus, HTTP_SEARCH, 8, NQ, NULL);
	run_n(corpus, HTTP_COMPLETE, 8, NQ, NULL);
	printf("bench-searchd: %d queries per run (%d rounds), %.0f edits/s "
	       "applied by the worker throughout\n", NQ * rounds, rounds, EDITS_PER_S);
	for (int i = 0; i < 3; i++) {
		http[i] = run(corpus, HTTP_SEARCH, levels[i], NULL);
		print_run("freshet-searchd search", levels[i], &http[i]);
	}
	/* The overhead: one client asks each query over HTTP and in-process
	 * back to back, so that the machine's speed, which moves by 20-30%
	 * within a minute on a shared VM, is the same for both sides. */
	paired = run(corpus, PAIRED, 1, &inproc);
	print_run("paired: freshet-searchd", 1, &paired);
	print_run("paired: in-process", 1, &inproc);
	comp = run(corpus, HTTP_COMPLETE, 8, NULL);
	print_run("freshet-searchd complete", 8, &comp);
	long pending = 0;
	for (int p = 0; p < harness_shards; p++) {
		long long pend;
		harness_group_state(WIKI, p, &pend);
		pending += pend > 0 ? pend : 0;
	}
	printf("bench-searchd: the worker's backlog after these runs: %ld events "
	       "pending\n", pending);

	double overhead = 100 * (paired.per_query / inproc.per_query - 1);
	long errors = paired.errors + comp.errors;
	for (int i = 0; i < 3; i++)
		errors += http[i].errors + pg[i].errors;
	printf("\nbench-searchd summary (%d pages, %d shards, %d queries x %d "
	       "rounds, %.0f edits/s)\n", harness_npages, harness_shards, NQ, rounds,
	       EDITS_PER_S);
	for (int i = 0; i < 3; i++) {
		printf("  %2d clients  searchd %8.1f q/s (p50 %.2f ms, p99 %.2f ms, "
		       "CPU %.2f ms/query)", levels[i], http[i].qps, http[i].p50 * 1e3,
		       http[i].p99 * 1e3, http[i].cpu_per_query * 1e3);
		if (with_pg)
			printf("   PostgreSQL %8.1f q/s (p50 %.2f ms, p99 %.2f ms)",
			       pg[i].qps, pg[i].p50 * 1e3, pg[i].p99 * 1e3);
		printf("\n");
	}
	if (with_pg)
		printf("  searchd / PostgreSQL at 8 clients   %6.2f x   target >= 2 x"
		       "      %s\n", http[1].qps / pg[1].qps,
		       harness_verdict(http[1].qps >= 2 * pg[1].qps));
	printf("  searchd p99 at 8 clients, editing   %6.2f ms  target <= 50 ms    %s\n",
	       http[1].p99 * 1e3, harness_verdict(http[1].p99 <= 0.050));
	printf("  HTTP overhead at 1 client           %6.1f %%   target <= 15 %%     %s "
	       "(%.3f against %.3f ms per query; CPU %.3f against %.3f ms)\n",
	       overhead, harness_verdict(overhead <= 15), paired.per_query * 1e3,
	       inproc.per_query * 1e3, paired.cpu_per_query * 1e3, inproc.cpu_per_query * 1e3);
	printf("  completion p99 at 8 clients         %6.2f ms  target <= 10 ms    %s "
	       "(p50 %.2f ms, %.0f q/s, CPU %.3f ms/query)\n",
	       comp.p99 * 1e3, harness_verdict(comp.p99 <= 0.010), comp.p50 * 1e3, comp.qps,
	       comp.cpu_per_query * 1e3);
	if (errors)
		printf("  %ld requests failed (see above)\n", errors);
	fflush(stdout);
	loader_free(lo);
	conf_free(conf);
	redisFree(harness_rc);
	harness_stop_all();
	if (harness_keep)
		printf("bench-searchd: kept %s\n", harness_dir);
	curl_global_cleanup();
	return errors ? 1 : 0;
}
