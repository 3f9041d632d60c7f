/* SPDX-License-Identifier: MIT */
/*
 * freshet-searchd.c: freshet-searchd, the HTTP search service.
 *
 * The front end only: options, the HTTP server (libmicrohttpd), routing,
 * parameters, authentication, metrics and the drain on SIGTERM.  Searching
 * and completing are search.c's, shared with freshet-search.
 *
 * Threads: one libmicrohttpd thread polls every connection, reads the
 * requests and sends the answers, so a slow client holds one connection,
 * never a thread.  Searches, completions and health checks go to one
 * queue, in arrival order, served by a pool of `threads` search threads:
 * the connection is suspended meanwhile and resumed with its answer.  One
 * shared queue, not a share of the connections per thread, so that a
 * request waits only for those that came before it, never behind a busy
 * thread while another is idle.  Each search thread has its own struct
 * searcher (its readers on the shards and its analyzers); the
 * configuration, the plugin loader and the metrics registry are shared.
 * main blocks SIGTERM and SIGINT before any thread starts and waits for
 * them: on the first one it stops accepting (MHD_quiesce_daemon), waits up
 * to shutdown_timeout_ms for the requests in flight, answers those still
 * queued with 503, stops the server and exits 0.
 *
 * Exit status: 0 after a drain, 1 when the server cannot start, 2 on a
 * usage or configuration error.
 */
#include "config.h" /* autoconf: PACKAGE_VERSION */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "now.h"
#include "query.h"
#include "search.h"
#include "xmalloc.h"

#define PROG "freshet-searchd"
#define MAX_NAMESPACES 64
#define MAX_SEARCH_LIMIT 100
#define MAX_COMPLETE_LIMIT 50
#define MAX_OFFSET 100000
/* Per-connection memory: the request line and headers must fit in it, so
 * it bounds the URL; longer requests get libmicrohttpd's 414 or 431. */
#define CONNECTION_MEMORY (32 * 1024)
#define SNIPPET_BYTES 200

static const double latency_buckets[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};

struct request;

struct worker;

/* The queue of the search threads (under mu). */
struct queue {
	pthread_mutex_t mu;
	struct request *head, *tail;
	/* The search threads waiting for a job, the last to come first: a
	 * job wakes the thread that went idle last, whose readers are up to
	 * date and whose caches are warm, rather than the one idle longest
	 * (a shared condition variable's order).  At one client, one thread
	 * serves everything, as one thread in-process would. */
	struct worker *idle;
	bool stopping; /* answer what is left with 503, then end */
};

/* What every thread shares (read-only after start, metrics locked). */
struct server {
	const struct conf *cfg;
	const struct loader *ld;
	struct metrics *m;
	struct queue q;
	atomic_int in_flight;     /* requests between first call and completion */
};

/* One search thread's state. */
struct worker {
	struct server *sv;
	pthread_t thread;
	pthread_cond_t cv;        /* signalled when a job is there for it */
	struct worker *next_idle; /* in queue.idle (under queue.mu) */
	bool is_idle;             /* in queue.idle (under queue.mu) */
	struct searcher *s;
	uint64_t *opens;          /* per wiki, last searcher_opens() seen */
	size_t n_wikis;
};

enum job { JOB_NONE, JOB_SEARCH, JOB_COMPLETE, JOB_HEALTH };

struct ns_list {
	int v[MAX_NAMESPACES];
	size_t n;
	bool bad;
	bool too_many;
};

/* One request's state, from the handler's first call to completion.  The
 * libmicrohttpd thread owns it, except while its job is queued or running:
 * the connection is suspended then, and the search thread owns it until
 * it resumes the connection. */
struct request {
	int64_t start_ms;
	const char *endpoint;     /* metrics label */
	struct MHD_Connection *conn;
	/* The answer, once made (answered): sent by the libmicrohttpd
	 * thread. */
	bool answered, sent;
	unsigned status;
	char *body; /* owned until sent */
	const char *type;
	/* A job for the search threads, its parameters copied out of the
	 * connection. */
	enum job job;
	bool queued;
	struct request *next; /* in the queue */
	char wiki[128];
	char *q, *lang; /* owned */
	long limit, offset;
	struct ns_list ns;
};

static void usage(FILE *f)
{
	fputs("Usage: " PROG " [--config FILE] [--listen HOST:PORT]\n"
	      "\n"
	      "Serves searches of the configured wikis' shards over HTTP:\n"
	      "  GET /v1/WIKI/search?q=...&ns=0&limit=20&offset=0[&lang=CODE]\n"
	      "  GET /v1/WIKI/complete?q=...&limit=10[&ns=0]\n"
	      "  GET /healthz    200 when every shard of every wiki opens, else 503\n"
	      "  GET /metrics    Prometheus text\n"
	      "Follows new commits and rebuilt generations without a restart.  Runs\n"
	      "until SIGTERM or SIGINT, then finishes the requests in flight and\n"
	      "exits 0.\n"
	      "\n"
	      "  -c, --config FILE        configuration file (default: $FRESHET_CONFIG,\n"
	      "                           else built-in defaults; see freshet.conf(5))\n"
	      "  -l, --listen HOST:PORT   address to listen on (default: [searchd] listen,\n"
	      "                           127.0.0.1:7190)\n"
	      "  -h, --help               show this help\n"
	      "  -V, --version            show the version\n"
	      "\n"
	      "Environment: FRESHET_CONFIG, FRESHET_ANALYZER_DIR, FRESHET_LOG_LEVEL.\n",
	      f);
}

/* ------------------------------------------------------------ responses */

/* Makes body (taken) the answer of rq; any thread that owns rq. */
static void reply_text(struct request *rq, unsigned status, const char *type, char *body)
{
	free(rq->body);
	rq->body = body;
	rq->type = type;
	rq->status = status;
	rq->answered = true;
}

/* Makes j (taken) the JSON answer of rq. */
static void reply_json(struct request *rq, unsigned status, json_t *j)
{
	char *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	reply_text(rq, status, "application/json; charset=utf-8", body ? body : xstrdup("{}"));
}

static void reply_error(struct request *rq, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void reply_error(struct request *rq, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *e = json_object();
	json_object_set_new(e, "code", json_string(code));
	json_t *m = json_string(msg);
	json_object_set_new(e, "message", m ? m : json_string("(not UTF-8)"));
	json_t *o = json_object();
	json_object_set_new(o, "error", e);
	reply_json(rq, status, o);
}

/* Sends the answer of rq (libmicrohttpd's thread). */
static enum MHD_Result send_reply(struct MHD_Connection *c, struct request *rq)
{
	char *body = rq->body;
	rq->body = NULL;
	rq->sent = true;
	/* libmicrohttpd frees the body with free(). */
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body,
								 MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rq->type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (rq->status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET");
	if (rq->status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	enum MHD_Result ret = MHD_queue_response(c, rq->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The HTTP status of a searcher failure, by its code (search.h). */
static unsigned error_status(const char *code)
{
	if (strcmp(code, "unknown_wiki") == 0)
		return MHD_HTTP_NOT_FOUND;
	if (strcmp(code, "bad_parameter") == 0 || strcmp(code, "query_too_long") == 0 ||
	    strcmp(code, "too_many_terms") == 0)
		return MHD_HTTP_BAD_REQUEST;
	if (strcmp(code, "shards_unavailable") == 0 || strcmp(code, "search_failed") == 0)
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* ----------------------------------------------------------- parameters */

/* Parses a decimal integer in [min, max]; false if it is not one. */
static bool parse_long(const char *s, long min, long max, long *out)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*end || errno || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind,
			      const char *key, const char *value)
{
	struct ns_list *l = cls;
	long v;
	(void)kind;
	if (strcmp(key, "ns") != 0)
		return MHD_YES;
	if (l->n == MAX_NAMESPACES) {
		l->too_many = true;
		return MHD_YES;
	}
	if (!parse_long(value, -2, 1000000, &v))
		l->bad = true;
	else
		l->v[l->n++] = (int)v;
	return MHD_YES;
}

static const char *arg(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

/* Reads limit (default def, 1..max) and, with with_offset, offset into
 * rq; answers 400 and returns false when one is bad. */
static bool page_args(struct MHD_Connection *c, struct request *rq, long def, long max,
		      bool with_offset)
{
	const char *l = arg(c, "limit"), *o = arg(c, "offset");
	rq->limit = def;
	if (l && !parse_long(l, 1, max, &rq->limit)) {
		reply_error(rq, MHD_HTTP_BAD_REQUEST, "bad_parameter",
			    "limit must be an integer from 1 to %ld", max);
		return false;
	}
	rq->offset = 0;
	if (with_offset && o && !parse_long(o, 0, MAX_OFFSET, &rq->offset)) {
		reply_error(rq, MHD_HTTP_BAD_REQUEST, "bad_parameter",
			    "offset must be an integer from 0 to %d", MAX_OFFSET);
		return false;
	}
	return true;
}

static bool ns_args(struct MHD_Connection *c, struct request *rq)
{
	struct ns_list *ns = &rq->ns;
	memset(ns, 0, sizeof *ns);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, on_arg, ns);
	if (ns->bad || ns->too_many) {
		reply_error(rq, MHD_HTTP_BAD_REQUEST, "bad_parameter",
			    ns->bad ? "ns must be a namespace number" : "at most %d ns parameters",
			    MAX_NAMESPACES);
		return false;
	}
	return true;
}

static bool valid_lang(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 16)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

/* Copies the parameters of a search (complete false) or a completion
 * out of the connection into rq; answers 400 and returns false when one
 * is bad. */
static bool query_args(struct MHD_Connection *c, struct request *rq, bool complete)
{
	if (!page_args(c, rq, complete ? 10 : 20, complete ? MAX_COMPLETE_LIMIT : MAX_SEARCH_LIMIT,
		       !complete) ||
	    !ns_args(c, rq))
		return false;
	const char *q = arg(c, "q"), *lang = complete ? NULL : arg(c, "lang");
	if (!q) {
		reply_error(rq, MHD_HTTP_BAD_REQUEST, "bad_parameter",
			    "the q parameter is required");
		return false;
	}
	if (lang && !valid_lang(lang)) {
		reply_error(rq, MHD_HTTP_BAD_REQUEST, "bad_parameter",
			    "lang must be a language code");
		return false;
	}
	rq->q = xstrdup(q);
	rq->lang = lang ? xstrdup(lang) : NULL;
	return true;
}

/* ------------------------------------------------------------- handlers */

/* These run on a search thread, w's, which owns rq meanwhile. */

/* Brings the metrics of wiki's shards up to date after a call. */
static void shard_metrics(struct worker *w, const char *wiki, unsigned ok)
{
	struct server *sv = w->sv;
	char labels[128];
	snprintf(labels, sizeof labels, "wiki=\"%s\"", wiki);
	metrics_set(sv->m, "freshet_searchd_open_shards", labels, ok);
	for (size_t i = 0; i < w->n_wikis; i++) {
		if (strcmp(sv->cfg->wikis[i].id, wiki) != 0)
			continue;
		uint64_t now = searcher_opens(w->s, wiki);
		/* The first open of each thread's reader is not a reopen. */
		if (w->opens[i] && now > w->opens[i])
			metrics_add(sv->m, "freshet_searchd_shard_reopens_total",
				    labels, (double)(now - w->opens[i]));
		w->opens[i] = now;
	}
}

static void do_search(struct worker *w, struct request *rq)
{
	const struct conf *cfg = w->sv->cfg;
	const char *wiki = rq->wiki;
	struct search_request sq = {
		.wiki = wiki,
		.query = rq->q,
		.query_len = strlen(rq->q),
		.ns = rq->ns.v,
		.n_ns = rq->ns.n,
		.offset = (unsigned)rq->offset,
		.limit = (unsigned)rq->limit,
		.lang = rq->lang,
		.max_query_bytes = (size_t)cfg->searchd_max_query_bytes,
		.max_terms = (size_t)cfg->searchd_max_terms,
		.timeout_ms = (unsigned)cfg->searchd_timeout_ms,
		.hi_start = "<span class=\"searchmatch\">",
		.hi_end = "</span>",
		.snippet_flags = QUERY_SNIPPET_HTML,
		.snippet_bytes = SNIPPET_BYTES,
	};
	struct search_result res;
	enum status st = searcher_search(w->s, &sq, &res);
	if (st != STATUS_OK) {
		const char *code = searcher_errcode(w->s);
		unsigned hs = error_status(code);
		if (hs == MHD_HTTP_SERVICE_UNAVAILABLE)
			log_warn("wiki=%s action=search status=%s reason=%s", wiki,
				 status_str(st), log_quote(searcher_errmsg(w->s)));
		reply_error(rq, hs, code, "%s", searcher_errmsg(w->s));
		return;
	}
	shard_metrics(w, wiki, res.shards_ok);
	unsigned hs = MHD_HTTP_OK;
	if (res.shards_failed) {
		/* Never a silent partial answer: 503, with what the other
		 * shards found. */
		hs = MHD_HTTP_SERVICE_UNAVAILABLE;
		log_warn("wiki=%s action=search shards_failed=%u reason=%s", wiki,
			 res.shards_failed, log_quote(res.shard_error ? res.shard_error : ""));
	}
	json_t *j = search_result_json(&res, &sq);
	if (res.shards_failed) {
		json_t *e = json_object();
		json_object_set_new(e, "code", json_string("shards_unavailable"));
		json_t *m = json_string(res.shard_error ? res.shard_error : "");
		json_object_set_new(e, "message", m ? m : json_string(""));
		json_object_set_new(j, "error", e);
	}
	search_result_release(&res);
	reply_json(rq, hs, j);
}

static void do_complete(struct worker *w, struct request *rq)
{
	struct complete_request cq = {
		.wiki = rq->wiki,
		.query = rq->q,
		.query_len = strlen(rq->q),
		.ns = rq->ns.v,
		.n_ns = rq->ns.n,
		.limit = (unsigned)rq->limit,
		.max_query_bytes = (size_t)w->sv->cfg->searchd_max_query_bytes,
	};
	struct complete_result res;
	enum status st = searcher_complete(w->s, &cq, &res);
	if (st != STATUS_OK) {
		const char *code = searcher_errcode(w->s);
		reply_error(rq, error_status(code), code, "%s", searcher_errmsg(w->s));
		return;
	}
	shard_metrics(w, rq->wiki, res.shards_ok);
	json_t *j = complete_result_json(&res, &cq);
	unsigned hs = MHD_HTTP_OK;
	if (res.shards_failed) {
		hs = MHD_HTTP_SERVICE_UNAVAILABLE;
		json_t *shards = json_object();
		json_object_set_new(shards, "total", json_integer(res.shards_total));
		json_object_set_new(shards, "ok", json_integer(res.shards_ok));
		json_object_set_new(shards, "failed", json_integer(res.shards_failed));
		json_object_set_new(j, "shards", shards);
	}
	complete_result_release(&res);
	reply_json(rq, hs, j);
}

static void do_health(struct worker *w, struct request *rq)
{
	const struct conf *cfg = w->sv->cfg;
	json_t *wikis = json_object();
	bool healthy = true;
	for (size_t i = 0; i < cfg->n_wikis; i++) {
		const char *id = cfg->wikis[i].id;
		unsigned total = 0, failed = 0;
		searcher_check(w->s, id, &total, &failed);
		shard_metrics(w, id, total - failed);
		if (failed)
			healthy = false;
		json_t *o = json_object();
		json_object_set_new(o, "shards", json_integer(total));
		json_object_set_new(o, "failed", json_integer(failed));
		json_object_set_new(wikis, id, o);
	}
	json_t *j = json_object();
	json_object_set_new(j, "status", json_string(healthy ? "ok" : "unavailable"));
	json_object_set_new(j, "wikis", wikis);
	reply_json(rq, healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, j);
}

/* ---------------------------------------------------------------- queue */

/* Queues rq's job and suspends its connection (libmicrohttpd's thread,
 * in the handler); false when the search threads are stopping. */
static bool queue_push(struct queue *q, struct request *rq)
{
	pthread_mutex_lock(&q->mu);
	bool ok = !q->stopping;
	if (ok) {
		/* Suspended before a search thread can see it, so that its
		 * resume always comes after. */
		MHD_suspend_connection(rq->conn);
		rq->queued = true;
		rq->next = NULL;
		if (q->tail)
			q->tail->next = rq;
		else
			q->head = rq;
		q->tail = rq;
		struct worker *w = q->idle;
		if (w) {
			q->idle = w->next_idle;
			w->is_idle = false;
			pthread_cond_signal(&w->cv);
		}
	}
	pthread_mutex_unlock(&q->mu);
	return ok;
}

/* Takes the oldest job for w, waiting for one; NULL once the queue is
 * empty and stopping.  *stopping tells whether it was. */
static struct request *queue_pop(struct queue *q, struct worker *w, bool *stopping)
{
	pthread_mutex_lock(&q->mu);
	while (!q->head && !q->stopping) {
		/* Woken for a job another thread took first, or spuriously:
		 * back on top of the idle stack. */
		if (!w->is_idle) {
			w->next_idle = q->idle;
			q->idle = w;
			w->is_idle = true;
		}
		pthread_cond_wait(&w->cv, &q->mu);
	}
	struct request *rq = q->head;
	if (rq) {
		q->head = rq->next;
		if (!q->head)
			q->tail = NULL;
	}
	*stopping = q->stopping;
	pthread_mutex_unlock(&q->mu);
	return rq;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct request *rq;
	bool stopping;
	while ((rq = queue_pop(&w->sv->q, w, &stopping))) {
		if (stopping)
			reply_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
				    "the server is stopping");
		else if (rq->job == JOB_SEARCH)
			do_search(w, rq);
		else if (rq->job == JOB_COMPLETE)
			do_complete(w, rq);
		else
			do_health(w, rq);
		/* rq is libmicrohttpd's thread's again from here on. */
		MHD_resume_connection(rq->conn);
	}
	return NULL;
}

/* Starts n search threads over sv's queue.  Returns the array. */
static struct worker *workers_start(struct server *sv, size_t n)
{
	struct worker *ws = xcalloc(n, sizeof *ws);
	for (size_t i = 0; i < n; i++) {
		struct worker *w = &ws[i];
		w->sv = sv;
		pthread_cond_init(&w->cv, NULL);
		w->s = searcher_new(sv->cfg, sv->ld, SEARCHER_PARTIAL);
		w->n_wikis = sv->cfg->n_wikis;
		w->opens = xcalloc(w->n_wikis ? w->n_wikis : 1, sizeof *w->opens);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			fprintf(stderr, PROG ": cannot start a search thread\n");
			abort();
		}
	}
	return ws;
}

/* Answers what is still queued with 503, ends the n search threads of ws
 * and frees them. */
static void workers_stop(struct server *sv, struct worker *ws, size_t n)
{
	pthread_mutex_lock(&sv->q.mu);
	sv->q.stopping = true;
	for (size_t i = 0; i < n; i++)
		pthread_cond_signal(&ws[i].cv);
	pthread_mutex_unlock(&sv->q.mu);
	for (size_t i = 0; i < n; i++) {
		pthread_join(ws[i].thread, NULL);
		pthread_cond_destroy(&ws[i].cv);
		searcher_free(ws[i].s);
		free(ws[i].opens);
	}
	free(ws);
}

/* ---------------------------------------------------- libmicrohttpd side */

/* True when the request carries the configured bearer token (or none is
 * configured). */
static bool authorized(struct server *sv, struct MHD_Connection *c)
{
	const char *want = sv->cfg->searchd_token;
	if (!want)
		return true;
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	/* Compare in time independent of where the first difference is. */
	size_t a = strlen(h), b = strlen(want);
	unsigned char diff = a != b;
	for (size_t i = 0; i < a && i < b; i++)
		diff |= (unsigned char)(h[i] ^ want[i]);
	return diff == 0;
}

/* Answers rq, or gives it a job for the search threads. */
static void route(struct server *sv, struct MHD_Connection *c, struct request *rq, const char *url)
{
	if (strcmp(url, "/healthz") == 0) {
		rq->endpoint = "healthz";
		rq->job = JOB_HEALTH;
		return;
	}
	if (!authorized(sv, c)) {
		rq->endpoint = "unauthorized";
		reply_error(rq, MHD_HTTP_UNAUTHORIZED, "unauthorized",
			    "a valid bearer token is required");
		return;
	}
	if (strcmp(url, "/metrics") == 0) {
		rq->endpoint = "metrics";
		reply_text(rq, MHD_HTTP_OK, "text/plain; version=0.0.4", metrics_render(sv->m));
		return;
	}
	/* /v1/<wiki>/search and /v1/<wiki>/complete */
	if (strncmp(url, "/v1/", 4) == 0) {
		const char *wiki = url + 4, *slash = strchr(wiki, '/');
		if (slash && slash > wiki && (size_t)(slash - wiki) < sizeof rq->wiki) {
			memcpy(rq->wiki, wiki, (size_t)(slash - wiki));
			rq->wiki[slash - wiki] = '\0';
			bool search = strcmp(slash, "/search") == 0;
			if (search || strcmp(slash, "/complete") == 0) {
				rq->endpoint = search ? "search" : "complete";
				if (query_args(c, rq, !search))
					rq->job = search ? JOB_SEARCH : JOB_COMPLETE;
				return;
			}
		}
	}
	rq->endpoint = "other";
	reply_error(rq, MHD_HTTP_NOT_FOUND, "not_found", "no such path");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct server *sv = cls;
	(void)version;
	(void)upload_data;
	struct request *rq = *con_cls;
	if (!rq) {
		/* The first call: only the headers are in. */
		rq = xcalloc(1, sizeof *rq);
		rq->start_ms = now_ms();
		rq->endpoint = "other";
		rq->conn = c;
		*con_cls = rq;
		atomic_fetch_add(&sv->in_flight, 1);
		return MHD_YES;
	}
	/* A body is never wanted: discard it, and answer on the last call,
	 * once it is all in (libmicrohttpd refuses an answer queued while a
	 * body is still arriving, and drops the connection). */
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->sent)
		return MHD_YES;
	if (!rq->answered && !rq->queued) {
		if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
			reply_error(rq, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
				    "only GET is served");
		else
			route(sv, c, rq, url);
		if (!rq->answered) {
			if (queue_push(&sv->q, rq))
				return MHD_YES; /* called again once answered */
			reply_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
				    "the server is stopping");
		}
	}
	if (!rq->answered)
		return MHD_YES;
	return send_reply(c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct server *sv = cls;
	struct request *rq = *con_cls;
	(void)c;
	(void)toe;
	if (!rq)
		return;
	char labels[96];
	snprintf(labels, sizeof labels, "endpoint=\"%s\",status=\"%u\"", rq->endpoint,
		 rq->sent ? rq->status : 0);
	metrics_add(sv->m, "freshet_searchd_requests_total", labels, 1);
	snprintf(labels, sizeof labels, "endpoint=\"%s\"", rq->endpoint);
	metrics_observe(sv->m, "freshet_searchd_request_duration_seconds", labels,
			(double)(now_ms() - rq->start_ms) / 1000.0);
	free(rq->body);
	free(rq->q);
	free(rq->lang);
	free(rq);
	*con_cls = NULL;
	atomic_fetch_sub(&sv->in_flight, 1);
}

/* ----------------------------------------------------------------- main */

/* Splits "host:port" or "port" ("[::1]:80" too). */
static bool split_listen(const char *v, char **host, char **port)
{
	const char *colon = strrchr(v, ':');
	const char *p = colon ? colon + 1 : v;
	long n;
	if (!parse_long(p, 1, 65535, &n))
		return false;
	if (colon && colon > v) {
		size_t len = (size_t)(colon - v);
		if (*v == '[' && len >= 2 && v[len - 1] == ']')
			*host = xstrndup(v + 1, len - 2);
		else
			*host = xstrndup(v, len);
	} else {
		*host = xstrdup("127.0.0.1");
	}
	*port = xstrdup(p);
	return true;
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

static void declare_metrics(struct metrics *m)
{
	metrics_declare(m, "freshet_searchd_requests_total", METRICS_COUNTER,
			"HTTP requests answered, by endpoint and status", NULL, 0);
	metrics_declare(m, "freshet_searchd_request_duration_seconds",
			METRICS_HISTOGRAM, "Time from request headers to the answer sent",
			latency_buckets,
			(int)(sizeof latency_buckets / sizeof latency_buckets[0]));
	metrics_declare(m, "freshet_searchd_shard_reopens_total", METRICS_COUNTER,
			"Readers opened anew (new generation, failed shards) or reopened "
			"after a concurrent commit", NULL, 0);
	metrics_declare(m, "freshet_searchd_open_shards", METRICS_GAUGE,
			"Shards of the wiki that opened at the last request", NULL, 0);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	/* Block the stop signals before any thread starts, so that every
	 * thread inherits the mask and main alone takes them. */
	sigset_t stopset;
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stopset, NULL);
	xmalloc_keep_heap();
	const char *config_arg = NULL, *listen_arg = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_arg = optarg; break;
		case 'l': listen_arg = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(PROG " %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	struct conf *cfg = conf_new();
	if (conf_load(cfg, conf_path(config_arg)) != STATUS_OK) {
		fprintf(stderr, PROG ": %s\n", conf_errmsg(cfg));
		conf_free(cfg);
		return 2;
	}
	char *host = NULL, *port = NULL;
	const char *listen_s = listen_arg ? listen_arg : cfg->searchd_listen;
	if (!split_listen(listen_s, &host, &port)) {
		fprintf(stderr, PROG ": bad listen address '%s': expected host:port\n",
			listen_s);
		conf_free(cfg);
		return 2;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	int gai = getaddrinfo(host, port, &hints, &ai);
	if (gai != 0 || !ai) {
		fprintf(stderr, PROG ": cannot resolve '%s': %s\n", host, gai_strerror(gai));
		free(host);
		free(port);
		conf_free(cfg);
		return 2;
	}
	struct sockaddr_storage addr;
	memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (!is_loopback((struct sockaddr *)&addr) && !cfg->searchd_token &&
	    !cfg->searchd_allow_anonymous) {
		fprintf(stderr,
			PROG ": refusing to listen on %s, not a loopback address, "
			"without a token: set token_file in [searchd] (or "
			"allow_anonymous = true)\n", listen_s);
		free(host);
		free(port);
		conf_free(cfg);
		return 2;
	}

	struct loader *ld = loader_new();
	const char *adir = conf_analyzer_dir(cfg);
	if (loader_load_dir(ld, adir) != STATUS_OK || loader_count(ld) == 0) {
		fprintf(stderr, PROG ": no analyzer plugins in %s%s%s\n", adir,
			*loader_errmsg(ld) ? ": " : "", loader_errmsg(ld));
		loader_free(ld);
		free(host);
		free(port);
		conf_free(cfg);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	struct server sv = { .cfg = cfg, .ld = ld, .m = metrics_new() };
	atomic_init(&sv.in_flight, 0);
	pthread_mutex_init(&sv.q.mu, NULL);
	declare_metrics(sv.m);
	struct worker *workers = NULL;
	long threads = cfg->searchd_threads;
	if (threads <= 0) {
		threads = sysconf(_SC_NPROCESSORS_ONLN);
		if (threads < 1)
			threads = 1;
	}
	/* One polling thread: reading requests and sending answers is a
	 * small part of the work; the searches are the search threads'. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
			 MHD_ALLOW_SUSPEND_RESUME;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	workers = workers_start(&sv, (size_t)threads);
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, &sv,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->searchd_max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->searchd_connection_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, &sv,
		MHD_OPTION_END);
	int rc = 0;
	if (!d) {
		fprintf(stderr, PROG ": cannot listen on %s (address in use, or not "
			"an address of this host?)\n", listen_s);
		rc = 1;
		goto out;
	}
	log_info("action=listen address=%s threads=%ld wikis=%zu", listen_s, threads,
		 cfg->n_wikis);

	int sig;
	for (;;) {
		struct timespec ts = { 1, 0 };
		sig = sigtimedwait(&stopset, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	log_info("action=signal signal=%s", sig == SIGTERM ? "TERM" : "INT");
	/* Drain: no new connections, the requests in flight finish. */
	MHD_socket lfd = MHD_quiesce_daemon(d);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	int64_t deadline = now_ms() + cfg->searchd_shutdown_timeout_ms;
	while (atomic_load(&sv.in_flight) > 0 && now_ms() < deadline)
		sleep_ms(10);
	int left = atomic_load(&sv.in_flight);
	if (left > 0)
		log_warn("action=drain requests_cut=%d", left);
	/* Every queued connection is resumed (answered 503 if the drain ran
	 * out of time) before the server stops: libmicrohttpd refuses to stop
	 * with a connection suspended. */
	workers_stop(&sv, workers, (size_t)threads);
	workers = NULL;
	/* Let those answers go out before the connections close. */
	deadline = now_ms() + 1000;
	while (left > 0 && atomic_load(&sv.in_flight) > 0 && now_ms() < deadline)
		sleep_ms(10);
	MHD_stop_daemon(d);
out:
	if (workers)
		workers_stop(&sv, workers, (size_t)threads);
	pthread_mutex_destroy(&sv.q.mu);
	metrics_free(sv.m);
	loader_free(ld);
	free(host);
	free(port);
	conf_free(cfg);
	log_info("action=exit code=%d", rc);
	return rc;
}
