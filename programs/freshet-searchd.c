/* SPDX-License-Identifier: MIT */
/*
 * freshet-searchd.c: freshet-searchd, the HTTP search service.
 *
 * The front end only: options, the HTTP server (libmicrohttpd), routing,
 * parameters, authentication, metrics and the drain on SIGTERM.  Searching
 * and completing are search.c's, shared with freshet-search.
 *
 * Threads: libmicrohttpd runs a pool of `threads` threads, each polling
 * its share of the connections, so a slow client holds one connection,
 * never a thread.  Each pool thread makes its own struct searcher (its
 * readers on the shards and its analyzers) on its first request and frees
 * it when the thread ends (a pthread key's destructor); the configuration,
 * the plugin loader and the metrics registry are shared.  main blocks
 * SIGTERM and SIGINT before any thread starts and waits for them: on the
 * first one it stops accepting (MHD_quiesce_daemon), waits up to
 * shutdown_timeout_ms for the requests in flight, stops the server and
 * exits 0.
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

/* What every thread shares (read-only after start, metrics locked). */
struct server {
	const struct conf *cfg;
	const struct loader *ld;
	struct metrics *m;
	pthread_key_t key;        /* a thread's struct worker */
	atomic_int in_flight;     /* requests between first call and completion */
};

/* One pool thread's state. */
struct worker {
	struct searcher *s;
	uint64_t *opens;          /* per wiki, last searcher_opens() seen */
	size_t n_wikis;
};

/* One request's state, from the handler's first call to completion. */
struct request {
	int64_t start_ms;
	const char *endpoint;     /* metrics label */
	unsigned status;
	bool answered;
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

static enum MHD_Result send_text(struct MHD_Connection *c, struct request *rq,
				 unsigned status, const char *type, char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(body), body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	rq->status = status;
	rq->answered = true;
	return ret;
}

/* Sends j (taken) as the JSON body. */
static enum MHD_Result send_json(struct MHD_Connection *c, struct request *rq,
				 unsigned status, json_t *j)
{
	char *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!body)
		body = xstrdup("{}");
	/* libmicrohttpd frees the body with free(). */
	return send_text(c, rq, status, "application/json; charset=utf-8", body);
}

static enum MHD_Result send_error(struct MHD_Connection *c, struct request *rq,
				  unsigned status, const char *code,
				  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static enum MHD_Result send_error(struct MHD_Connection *c, struct request *rq,
				  unsigned status, const char *code,
				  const char *fmt, ...)
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
	return send_json(c, rq, status, o);
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

struct ns_list {
	int v[MAX_NAMESPACES];
	size_t n;
	bool bad;
	bool too_many;
};

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

/* Reads limit (default def, 1..max) and, with offset not NULL, offset;
 * answers 400 and returns false when one is bad. */
static bool page_args(struct MHD_Connection *c, struct request *rq, long def,
		      long max, long *limit, long *offset, enum MHD_Result *ret)
{
	const char *l = arg(c, "limit"), *o = arg(c, "offset");
	*limit = def;
	if (l && !parse_long(l, 1, max, limit)) {
		*ret = send_error(c, rq, MHD_HTTP_BAD_REQUEST, "bad_parameter",
				  "limit must be an integer from 1 to %ld", max);
		return false;
	}
	if (offset) {
		*offset = 0;
		if (o && !parse_long(o, 0, MAX_OFFSET, offset)) {
			*ret = send_error(c, rq, MHD_HTTP_BAD_REQUEST, "bad_parameter",
					  "offset must be an integer from 0 to %d",
					  MAX_OFFSET);
			return false;
		}
	}
	return true;
}

static bool ns_args(struct MHD_Connection *c, struct request *rq,
		    struct ns_list *ns, enum MHD_Result *ret)
{
	memset(ns, 0, sizeof *ns);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, on_arg, ns);
	if (ns->bad || ns->too_many) {
		*ret = send_error(c, rq, MHD_HTTP_BAD_REQUEST, "bad_parameter",
				  ns->bad ? "ns must be a namespace number"
					  : "at most %d ns parameters", MAX_NAMESPACES);
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

/* ------------------------------------------------------------- handlers */

static void worker_free(void *p)
{
	struct worker *w = p;
	if (!w)
		return;
	searcher_free(w->s);
	free(w->opens);
	free(w);
}

static struct worker *thread_worker(struct server *sv)
{
	struct worker *w = pthread_getspecific(sv->key);
	if (w)
		return w;
	w = xcalloc(1, sizeof *w);
	w->s = searcher_new(sv->cfg, sv->ld, SEARCHER_PARTIAL);
	w->n_wikis = sv->cfg->n_wikis;
	w->opens = xcalloc(w->n_wikis, sizeof *w->opens);
	pthread_setspecific(sv->key, w);
	return w;
}

/* Brings the metrics of wiki's shards up to date after a call. */
static void shard_metrics(struct server *sv, struct worker *w, const char *wiki,
			  unsigned ok)
{
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

static enum MHD_Result do_search(struct server *sv, struct MHD_Connection *c,
				 struct request *rq, const char *wiki)
{
	enum MHD_Result ret;
	struct worker *w = thread_worker(sv);
	const char *q = arg(c, "q"), *lang = arg(c, "lang");
	long limit, offset;
	struct ns_list ns;
	if (!page_args(c, rq, 20, MAX_SEARCH_LIMIT, &limit, &offset, &ret) ||
	    !ns_args(c, rq, &ns, &ret))
		return ret;
	if (!q)
		return send_error(c, rq, MHD_HTTP_BAD_REQUEST, "bad_parameter",
				  "the q parameter is required");
	if (lang && !valid_lang(lang))
		return send_error(c, rq, MHD_HTTP_BAD_REQUEST, "bad_parameter",
				  "lang must be a language code");
	struct search_request sq = {
		.wiki = wiki,
		.query = q,
		.query_len = strlen(q),
		.ns = ns.v,
		.n_ns = ns.n,
		.offset = (unsigned)offset,
		.limit = (unsigned)limit,
		.lang = lang,
		.max_query_bytes = (size_t)sv->cfg->searchd_max_query_bytes,
		.max_terms = (size_t)sv->cfg->searchd_max_terms,
		.timeout_ms = (unsigned)sv->cfg->searchd_timeout_ms,
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
		return send_error(c, rq, hs, code, "%s", searcher_errmsg(w->s));
	}
	shard_metrics(sv, w, wiki, res.shards_ok);
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
	return send_json(c, rq, hs, j);
}

static enum MHD_Result do_complete(struct server *sv, struct MHD_Connection *c,
				   struct request *rq, const char *wiki)
{
	enum MHD_Result ret;
	struct worker *w = thread_worker(sv);
	const char *q = arg(c, "q");
	long limit;
	struct ns_list ns;
	if (!page_args(c, rq, 10, MAX_COMPLETE_LIMIT, &limit, NULL, &ret) ||
	    !ns_args(c, rq, &ns, &ret))
		return ret;
	if (!q)
		return send_error(c, rq, MHD_HTTP_BAD_REQUEST, "bad_parameter",
				  "the q parameter is required");
	struct complete_request cq = {
		.wiki = wiki,
		.query = q,
		.query_len = strlen(q),
		.ns = ns.v,
		.n_ns = ns.n,
		.limit = (unsigned)limit,
		.max_query_bytes = (size_t)sv->cfg->searchd_max_query_bytes,
	};
	struct complete_result res;
	enum status st = searcher_complete(w->s, &cq, &res);
	if (st != STATUS_OK) {
		const char *code = searcher_errcode(w->s);
		return send_error(c, rq, error_status(code), code, "%s",
				  searcher_errmsg(w->s));
	}
	shard_metrics(sv, w, wiki, res.shards_ok);
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
	return send_json(c, rq, hs, j);
}

static enum MHD_Result do_health(struct server *sv, struct MHD_Connection *c,
				 struct request *rq)
{
	struct worker *w = thread_worker(sv);
	json_t *wikis = json_object();
	bool healthy = true;
	for (size_t i = 0; i < sv->cfg->n_wikis; i++) {
		const char *id = sv->cfg->wikis[i].id;
		unsigned total = 0, failed = 0;
		searcher_check(w->s, id, &total, &failed);
		shard_metrics(sv, w, id, total - failed);
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
	return send_json(c, rq, healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, j);
}

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

static enum MHD_Result route(struct server *sv, struct MHD_Connection *c,
			     struct request *rq, const char *url)
{
	if (strcmp(url, "/healthz") == 0) {
		rq->endpoint = "healthz";
		return do_health(sv, c, rq);
	}
	if (!authorized(sv, c)) {
		rq->endpoint = "unauthorized";
		return send_error(c, rq, MHD_HTTP_UNAUTHORIZED, "unauthorized",
				  "a valid bearer token is required");
	}
	if (strcmp(url, "/metrics") == 0) {
		rq->endpoint = "metrics";
		return send_text(c, rq, MHD_HTTP_OK, "text/plain; version=0.0.4",
				 metrics_render(sv->m));
	}
	/* /v1/<wiki>/search and /v1/<wiki>/complete */
	if (strncmp(url, "/v1/", 4) == 0) {
		const char *wiki = url + 4, *slash = strchr(wiki, '/');
		if (slash && slash > wiki && (size_t)(slash - wiki) < 128) {
			char id[128];
			memcpy(id, wiki, (size_t)(slash - wiki));
			id[slash - wiki] = '\0';
			if (strcmp(slash, "/search") == 0) {
				rq->endpoint = "search";
				return do_search(sv, c, rq, id);
			}
			if (strcmp(slash, "/complete") == 0) {
				rq->endpoint = "complete";
				return do_complete(sv, c, rq, id);
			}
		}
	}
	rq->endpoint = "other";
	return send_error(c, rq, MHD_HTTP_NOT_FOUND, "not_found", "no such path");
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
	if (rq->answered)
		return MHD_YES;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return send_error(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "method_not_allowed", "only GET is served");
	return route(sv, c, rq, url);
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
		 rq->answered ? rq->status : 0);
	metrics_add(sv->m, "freshet_searchd_requests_total", labels, 1);
	snprintf(labels, sizeof labels, "endpoint=\"%s\"", rq->endpoint);
	metrics_observe(sv->m, "freshet_searchd_request_duration_seconds", labels,
			(double)(now_ms() - rq->start_ms) / 1000.0);
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
	declare_metrics(sv.m);
	pthread_key_create(&sv.key, worker_free);
	long threads = cfg->searchd_threads;
	if (threads <= 0) {
		threads = sysconf(_SC_NPROCESSORS_ONLN);
		if (threads < 1)
			threads = 1;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, &sv,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
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
	MHD_stop_daemon(d);
out:
	pthread_key_delete(sv.key);
	metrics_free(sv.m);
	loader_free(ld);
	free(host);
	free(port);
	conf_free(cfg);
	log_info("action=exit code=%d", rc);
	return rc;
}
