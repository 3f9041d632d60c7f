/* SPDX-License-Identifier: MIT */
/*
 * fetch.c: the page fetcher, over one curl multi handle per thread.
 *
 * A request lives in one of four places: the handle's wait queue (submitted,
 * not started because the wiki's concurrency or rate bound says no), the
 * multi handle (in flight), the info queue (its parse answer is in, the
 * batched action=query&prop=info answer that gives language and namespace
 * is not), or the done queue (classified, waiting for fetch_next()).
 *
 * A finished request's easy handle goes back to the handle's pool (up to
 * POOL_MAX, with its body buffer unless that grew past POOL_BODY_MAX) and
 * the next request takes it: only the URL and the pointers to the request
 * are set again, unless it was set up for another wiki, then it is reset
 * (curl_easy_reset) and set up in full, so no wiki's limits carry over.
 *
 * Nearly all the CPU time of a fetch is jansson decoding the parse answer,
 * so that is not done here: a parse answer that is HTTP 200, carries no
 * MediaWiki-API-Error header and starts with '{' is handed over raw (the
 * body buffer is detached into the result, presized from Content-Length)
 * and goes to the info batch at once, which needs only its page id;
 * fetch_result_decode() decodes it later on the consumer's thread.  Every
 * other answer (an error, a body that is not a JSON object) is decoded
 * here, as is the small info answer.  When the info query fails for a
 * result whose parse answer is still raw, that answer is decoded first and
 * its own failure wins, so a result is classified as it was when the parse
 * answer was decoded before the info query was sent.
 *
 * Safety invariants:
 *  - every URL is "<configured api>?<fixed parameters with numeric ids>";
 *    an event contributes integers only;
 *  - redirects are followed by hand (FOLLOWLOCATION off), at most
 *    max_redirects, only to the API's own scheme, host and port
 *    (fetch_redirect_refusal(), which reindex-page's listings use too);
 *  - the body is counted in the write callback after curl has decoded any
 *    Content-Encoding, and the transfer is aborted the moment it would pass
 *    max_body, so neither a chunked body nor a compression bomb can grow a
 *    buffer past the cap;
 *  - a wiki's slots (concurrency) and tokens (rate) are taken before a
 *    transfer starts and the slot is given back when it ends, whichever
 *    thread runs it (struct fetch_wiki has the mutex).
 */
#include "fetch.h"
#include "buf.h"
#include "now.h"
#include "redact.h"
#include "xmalloc.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef PACKAGE_VERSION
#include "config.h"
#endif

#define INFO_BATCH 50
#define INFO_GATHER_MS 5
#define MAX_RETRY_AFTER_S 3600

/* ---------------------------------------------------------------- wikis */

struct fetch_wiki {
	struct fetch_wiki_config cfg; /* strings below are ours */
	char *name, *api, *language, *contact, *user_agent;
	uint64_t serial;              /* unique per wiki ever created: tells a
	                                 pooled easy handle set up for it */
	pthread_mutex_t mu;
	int in_flight;                /* all threads */
	double tokens;
	double last_refill;           /* monotonic seconds */
};

const char *fetch_class_str(enum fetch_class c)
{
	switch (c) {
	case FETCH_OK: return "ok";
	case FETCH_MISSING: return "missing";
	case FETCH_HIDDEN: return "hidden";
	case FETCH_LAGGING: return "lagging";
	case FETCH_TRANSIENT: return "transient";
	case FETCH_PERMANENT: return "permanent";
	}
	return "invalid";
}

void fetch_wiki_config_init(struct fetch_wiki_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->language = "en";
	cfg->concurrency = 8;
	cfg->rate = 50;
	cfg->connect_timeout_ms = 5000;
	cfg->timeout_ms = 30000;
	cfg->low_speed_bytes = 1024;
	cfg->low_speed_time_s = 10;
	cfg->max_body = 8u << 20;
	cfg->max_redirects = 3;
	cfg->lag_retry_ms = 2000;
	cfg->transient_retry_ms = 1000;
}

/* Splits url into lowercase scheme and host; returns false if it is not
 * an absolute http(s) URL with a host. */
static bool url_scheme_host(const char *url, char **scheme, char **host,
			    bool *has_query)
{
	CURLU *u = curl_url();
	if (!u)
		return false;
	bool ok = false;
	char *s = NULL, *h = NULL, *q = NULL, *fr = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || !*h)
		goto out;
	if (strcasecmp(s, "http") != 0 && strcasecmp(s, "https") != 0)
		goto out;
	if (has_query)
		*has_query = curl_url_get(u, CURLUPART_QUERY, &q, 0) == CURLUE_OK ||
			     curl_url_get(u, CURLUPART_FRAGMENT, &fr, 0) == CURLUE_OK;
	for (char *p = s; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	for (char *p = h; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	if (scheme)
		*scheme = xstrdup(s);
	if (host)
		*host = xstrdup(h);
	ok = true;
out:
	curl_free(s);
	curl_free(h);
	curl_free(q);
	curl_free(fr);
	curl_url_cleanup(u);
	return ok;
}

/* Sets the lowercase scheme and host and the port (the scheme's default
 * when absent) of an absolute http(s) URL; returns false for anything else.
 * The caller frees *scheme and *host with curl_free(). */
static bool url_origin(const char *url, char **scheme, char **host, long *port)
{
	CURLU *u = curl_url();
	if (!u)
		return false;
	char *s = NULL, *h = NULL, *p = NULL;
	bool ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		  curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK &&
		  curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK && *h &&
		  curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK &&
		  (strcasecmp(s, "http") == 0 || strcasecmp(s, "https") == 0);
	curl_url_cleanup(u);
	if (!ok) {
		curl_free(s);
		curl_free(h);
		curl_free(p);
		return false;
	}
	for (char *c = s; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	for (char *c = h; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	*scheme = s;
	*host = h;
	*port = strtol(p, NULL, 10);
	curl_free(p);
	return true;
}

const char *fetch_redirect_refusal(const char *api, const char *location)
{
	char *as = NULL, *ah = NULL, *ls = NULL, *lh = NULL;
	long ap = 0, lp = 0;
	const char *why = NULL;
	if (!url_origin(location, &ls, &lh, &lp))
		return "not http or https";
	if (!url_origin(api, &as, &ah, &ap))
		why = "another scheme";  /* api is checked when configured */
	else if (strcmp(as, ls) != 0)
		why = "another scheme";
	else if (strcmp(ah, lh) != 0)
		why = "another host";
	else if (ap != lp)
		why = "another port";
	curl_free(as);
	curl_free(ah);
	curl_free(ls);
	curl_free(lh);
	return why;
}

char *fetch_user_agent(const char *contact)
{
	if (contact && *contact)
		return xasprintf("freshet/%s (%s)", PACKAGE_VERSION, contact);
	return xasprintf("freshet/%s", PACKAGE_VERSION);
}

struct fetch_wiki *fetch_wiki_new(const struct fetch_wiki_config *cfg,
				  char **err)
{
	const char *why = NULL;
	char *host = NULL;
	bool query = false;
	if (!cfg->name || !*cfg->name)
		why = "name: empty";
	else if (!cfg->api || !*cfg->api)
		why = "api: empty";
	else if (strncasecmp(cfg->api, "http://", 7) != 0 &&
		 strncasecmp(cfg->api, "https://", 8) != 0)
		why = "api: scheme must be http or https";
	else if (cfg->api[strcspn(cfg->api, ":") + 3] == '/' ||
		 !url_scheme_host(cfg->api, NULL, &host, &query))
		why = "api: not a valid http(s) URL with a host";
	else if (query)
		why = "api: must not have a query or fragment";
	else if (cfg->concurrency < 1)
		why = "concurrency: must be at least 1";
	else if (cfg->rate < 0)
		why = "rate: must not be negative";
	else if (cfg->max_body < 1024)
		why = "max_body: must be at least 1024";
	else if (cfg->max_redirects < 0)
		why = "max_redirects: must not be negative";
	else if (cfg->timeout_ms <= 0 || cfg->connect_timeout_ms <= 0)
		why = "timeouts: must be positive";
	if (why) {
		free(host);
		if (err)
			*err = xasprintf("wiki %s: %s", cfg->name ? cfg->name : "?",
					 why);
		return NULL;
	}
	struct fetch_wiki *w = xcalloc(1, sizeof(*w));
	w->cfg = *cfg;
	w->name = xstrdup(cfg->name);
	w->api = xstrdup(cfg->api);
	w->language = xstrdup(cfg->language && *cfg->language ? cfg->language
							     : "en");
	w->contact = xstrdup(cfg->user_agent_contact ? cfg->user_agent_contact
						     : "");
	w->cfg.name = w->name;
	w->cfg.api = w->api;
	w->cfg.language = w->language;
	w->cfg.user_agent_contact = w->contact;
	w->user_agent = fetch_user_agent(w->contact);
	free(host);
	pthread_mutex_init(&w->mu, NULL);
	static uint64_t serials;
	w->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
	w->tokens = cfg->rate > 0 ? (cfg->rate < 1 ? 1 : cfg->rate) : 0;
	w->last_refill = now_s();
	return w;
}

void fetch_wiki_free(struct fetch_wiki *w)
{
	if (!w)
		return;
	pthread_mutex_destroy(&w->mu);
	free(w->name);
	free(w->api);
	free(w->language);
	free(w->contact);
	free(w->user_agent);
	free(w);
}

const char *fetch_wiki_name(const struct fetch_wiki *w)
{
	return w->name;
}

/* Takes a slot and a token of w.  Returns true if the request may start;
 * else false and, when the rate is what stops it, *wait_ms how long until
 * the next token. */
static bool wiki_acquire(struct fetch_wiki *w, long *wait_ms)
{
	bool ok = false;
	pthread_mutex_lock(&w->mu);
	if (w->in_flight >= w->cfg.concurrency)
		goto out;
	if (w->cfg.rate > 0) {
		double t = now_s();
		double burst = w->cfg.rate < 1 ? 1 : w->cfg.rate;
		w->tokens += (t - w->last_refill) * w->cfg.rate;
		if (w->tokens > burst)
			w->tokens = burst;
		w->last_refill = t;
		if (w->tokens < 1) {
			long ms = (long)((1 - w->tokens) / w->cfg.rate * 1000) + 1;
			if (ms < *wait_ms)
				*wait_ms = ms;
			goto out;
		}
		w->tokens -= 1;
	}
	w->in_flight++;
	ok = true;
out:
	pthread_mutex_unlock(&w->mu);
	return ok;
}

static void wiki_release(struct fetch_wiki *w)
{
	pthread_mutex_lock(&w->mu);
	w->in_flight--;
	pthread_mutex_unlock(&w->mu);
}

/* ---------------------------------------------------------------- results */

static void titles_free(struct fetch_title *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(t[i].title);
	free(t);
}

void fetch_result_free(struct fetch_result *r)
{
	if (!r)
		return;
	free(r->error);
	free(r->title);
	free(r->language);
	free(r->display_title_html);
	free(r->html);
	for (size_t i = 0; i < r->n_categories; i++)
		free(r->categories[i].name);
	free(r->categories);
	titles_free(r->links, r->n_links);
	titles_free(r->templates, r->n_templates);
	for (size_t i = 0; i < r->n_redirects; i++)
		free(r->redirects[i].title);
	free(r->redirects);
	free(r->raw);
	free(r);
}

bool fetch_result_undecoded(const struct fetch_result *r)
{
	return r->raw != NULL;
}

/* Sets the class and message of r (the message is formatted). */
static void classify(struct fetch_result *r, enum fetch_class c,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void classify(struct fetch_result *r, enum fetch_class c,
		     const char *fmt, ...)
{
	r->cls = c;
	free(r->error);
	r->error = NULL;
	if (fmt) {
		struct buf b = BUF_INIT;
		va_list ap;
		va_start(ap, fmt);
		buf_vaddf(&b, fmt, ap);
		va_end(ap);
		/* Redirect targets and curl's messages may hold the api's
		 * credentials: the message ends in logs and dead letters. */
		r->error = redact_userinfo(b.data);
		buf_release(&b);
	}
	if (c == FETCH_LAGGING && !r->retry_after_ms)
		r->retry_after_ms = r->wiki->cfg.lag_retry_ms;
	if (c == FETCH_TRANSIENT && !r->retry_after_ms)
		r->retry_after_ms = r->wiki->cfg.transient_retry_ms;
}

/* ---------------------------------------------------------------- requests */

/* REQ_TARGET: the target of a page the info query called a redirect. */
enum req_kind { REQ_PARSE, REQ_INFO, REQ_TARGET };

struct req {
	enum req_kind kind;
	struct fetch_wiki *w;
	struct req *next;
	struct req *anext, *aprev; /* the handle's active list */
	CURL *easy;
	uint64_t easy_serial;      /* serial of the wiki easy is set up for */
	struct buf body;
	bool over_cap;
	int redirects;
	char errbuf[CURL_ERROR_SIZE];
	struct fetch_result *res;            /* REQ_PARSE, REQ_TARGET */
	struct fetch_result **batch;         /* REQ_INFO */
	size_t n_batch;
	/* REQ_INFO continuing an earlier answer (the rdcontinue value): only
	 * the redirect lists are taken from it; REQ_TARGET: NULL. */
	char *rdcontinue;
};

struct queue {
	struct req *head, *tail;
	size_t n;
};

struct rqueue { /* results */
	struct fetch_result **v;
	size_t n, cap, head;
};

/* An idle easy handle kept for the next request, with its body buffer. */
struct pooled {
	CURL *easy;
	uint64_t serial;          /* wiki it is set up for */
	struct buf body;
};

/* Idle easy handles kept per fetch handle, and the largest body buffer
 * kept with one (a bigger one is freed rather than pinned). */
#define POOL_MAX 256
#define POOL_BODY_MAX (256u << 10)

struct fetch {
	CURLM *multi;
	struct pooled *pool;      /* POOL_MAX slots, n_pool used */
	size_t n_pool;
	struct queue wait;        /* requests not started: parses, and the
	                             follow-ups of info answers (continued
	                             info queries, redirect targets) */
	struct req *active_list;  /* requests in the multi handle (via anext) */
	struct rqueue info;       /* results waiting for the info query */
	size_t info_active;       /* info queries in flight */
	double info_since;        /* when info's oldest entry arrived */
	struct rqueue done;
	size_t pending;           /* submitted, not collected */
	size_t active;            /* transfers in the multi handle */
	uint64_t connects;        /* new connections opened (NUM_CONNECTS) */
	char errmsg[256];
};

static void q_push(struct queue *q, struct req *r)
{
	r->next = NULL;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	q->n++;
}

static void rq_push(struct rqueue *q, struct fetch_result *r)
{
	if (q->head + q->n == q->cap) {
		if (q->head) {
			memmove(q->v, q->v + q->head, q->n * sizeof(*q->v));
			q->head = 0;
		}
		if (q->n == q->cap) {
			q->cap = q->cap ? q->cap * 2 : 16;
			q->v = xrealloc(q->v, q->cap * sizeof(*q->v));
		}
	}
	q->v[q->head + q->n++] = r;
}

static struct fetch_result *rq_shift(struct rqueue *q)
{
	if (!q->n)
		return NULL;
	struct fetch_result *r = q->v[q->head++];
	if (!--q->n)
		q->head = 0;
	return r;
}

static void req_free(struct req *r)
{
	if (!r)
		return;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	buf_release(&r->body);
	free(r->batch);
	free(r->rdcontinue);
	free(r);
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct req *r = ud;
	size_t len = size * n;
	/* Counted after decoding: curl calls us with decoded bytes. */
	if (len > r->w->cfg.max_body - r->body.len) {
		r->over_cap = true;
		return 0;
	}
	if (!r->body.len) {
		/* One allocation for the whole body when its length is known
		 * (a pooled buffer is usually big enough already).  Only a
		 * hint: a compressed body's Content-Length is smaller than
		 * what we get, and the cap still holds. */
		curl_off_t cl = -1;
		if (curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
				      &cl) == CURLE_OK && cl > 0 &&
		    (size_t)cl <= r->w->cfg.max_body && (size_t)cl > r->body.cap)
			buf_grow(&r->body, (size_t)cl);
	}
	buf_add(&r->body, data, len);
	return len;
}

/* Sets up r->easy for url.  A handle already set up for r's wiki (a pooled
 * one, or r's own after a redirect) keeps the wiki's options and gets only
 * the URL and the pointers to r; any other is reset and set up in full. */
static void req_setup(struct req *r, const char *url)
{
	const struct fetch_wiki_config *c = &r->w->cfg;
	CURL *e = r->easy;
	if (!e) {
		e = r->easy = curl_easy_init();
		r->easy_serial = 0;
	}
	if (!e)
		abort();
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	r->errbuf[0] = '\0';
	buf_reset(&r->body);
	r->over_cap = false;
	if (r->easy_serial == r->w->serial)
		return;
	if (r->easy_serial) {
		curl_easy_reset(e);
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
		curl_easy_setopt(e, CURLOPT_PRIVATE, r);
		curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	}
	r->easy_serial = r->w->serial;
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	if (c->low_speed_bytes > 0 && c->low_speed_time_s > 0) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, c->low_speed_bytes);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
	}
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, r->w->user_agent);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
}

/* Gives r an idle easy handle (and its body buffer) from the pool, if
 * there is one: curl_easy_init and the option setup are not free, and a
 * buffer already grown to a page's size saves the reallocations. */
static void pool_take(struct fetch *f, struct req *r)
{
	if (r->easy || !f->n_pool)
		return;
	struct pooled *p = &f->pool[--f->n_pool];
	r->easy = p->easy;
	r->easy_serial = p->serial;
	buf_release(&r->body);
	r->body = p->body;
}

/* Takes r's easy handle and body buffer into the pool (r no longer in the
 * multi handle), or frees them when the pool is full. */
static void pool_put(struct fetch *f, struct req *r)
{
	if (!r->easy || f->n_pool == POOL_MAX)
		return; /* req_free() frees them */
	struct pooled *p = &f->pool[f->n_pool++];
	p->easy = r->easy;
	p->serial = r->easy_serial;
	if (r->body.cap <= POOL_BODY_MAX) {
		p->body = r->body;
		buf_init(&r->body);
	} else {
		buf_init(&p->body);
	}
	r->easy = NULL;
}

static char *parse_url(const struct fetch_wiki *w, uint64_t page_id)
{
	return xasprintf("%s?action=parse&pageid=%" PRIu64
			 "&prop=text%%7Cdisplaytitle%%7Ccategories"
			 "%%7Crevid%%7Clinks%%7Ctemplates&formatversion=2"
			 "&format=json&disableeditsection=1&disablelimitreport=1"
			 "&disabletoc=1",
			 w->api, page_id);
}

static char *info_url(const struct req *r)
{
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s?action=query&prop=info%%7Crevisions%%7Credirects"
		 "&rvprop=ids%%7Ctimestamp&rdlimit=max&rdprop=pageid%%7Ctitle"
		 "&formatversion=2&format=json", r->w->api);
	if (r->rdcontinue) {
		/* The API's own continuation token, sent back as it came,
		 * percent-encoded: it cannot change the host or the path. */
		buf_adds(&b, "&rdcontinue=");
		for (const unsigned char *c = (const unsigned char *)r->rdcontinue;
		     *c; c++) {
			if ((*c >= '0' && *c <= '9') || (*c >= 'A' && *c <= 'Z') ||
			    (*c >= 'a' && *c <= 'z') || *c == '-' || *c == '_')
				buf_addch(&b, (char)*c);
			else
				buf_addf(&b, "%%%02X", *c);
		}
	}
	buf_adds(&b, "&pageids=");
	for (size_t i = 0; i < r->n_batch; i++)
		buf_addf(&b, "%s%" PRIu64, i ? "%7C" : "", r->batch[i]->page_id);
	return buf_detach(&b, NULL);
}

static char *target_url(const struct req *r)
{
	return xasprintf("%s?action=query&pageids=%" PRIu64 "&redirects=1"
			 "&prop=info&formatversion=2&format=json",
			 r->w->api, r->res->page_id);
}

static void start(struct fetch *f, struct req *r, const char *url)
{
	pool_take(f, r);
	req_setup(r, url);
	CURLMcode mc = curl_multi_add_handle(f->multi, r->easy);
	if (mc != CURLM_OK)
		abort(); /* only on misuse or out of memory */
	r->aprev = NULL;
	r->anext = f->active_list;
	if (r->anext)
		r->anext->aprev = r;
	f->active_list = r;
	f->active++;
}

/* Takes r out of the multi handle (its slot stays taken). */
static void stop(struct fetch *f, struct req *r)
{
	curl_multi_remove_handle(f->multi, r->easy);
	if (r->aprev)
		r->aprev->anext = r->anext;
	else
		f->active_list = r->anext;
	if (r->anext)
		r->anext->aprev = r->aprev;
	r->anext = r->aprev = NULL;
	f->active--;
}

/* ---------------------------------------------------------------- handle */

enum status fetch_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? STATUS_OK
								  : STATUS_IO;
}

struct fetch *fetch_new(void)
{
	struct fetch *f = xcalloc(1, sizeof(*f));
	f->multi = curl_multi_init();
	if (!f->multi)
		abort();
	/* Keep enough idle connections to reuse one per transfer in flight. */
	curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, 256L);
	f->pool = xcalloc(POOL_MAX, sizeof(*f->pool));
	return f;
}

void fetch_free(struct fetch *f)
{
	if (!f)
		return;
	struct req *r;
	while ((r = f->active_list)) {
		stop(f, r);
		wiki_release(r->w);
		if (r->kind != REQ_INFO) {
			fetch_result_free(r->res);
		} else {
			for (size_t i = 0; i < r->n_batch; i++)
				fetch_result_free(r->batch[i]);
		}
		req_free(r);
	}
	while ((r = f->wait.head)) {
		f->wait.head = r->next;
		fetch_result_free(r->res);
		for (size_t i = 0; i < r->n_batch; i++)
			fetch_result_free(r->batch[i]);
		req_free(r);
	}
	struct fetch_result *res;
	while ((res = rq_shift(&f->info)))
		fetch_result_free(res);
	while ((res = rq_shift(&f->done)))
		fetch_result_free(res);
	free(f->info.v);
	free(f->done.v);
	for (size_t i = 0; i < f->n_pool; i++) {
		curl_easy_cleanup(f->pool[i].easy);
		buf_release(&f->pool[i].body);
	}
	free(f->pool);
	curl_multi_cleanup(f->multi);
	free(f);
}

const char *fetch_errmsg(const struct fetch *f)
{
	return f->errmsg;
}

size_t fetch_pending(const struct fetch *f)
{
	return f->pending;
}

size_t fetch_in_flight(const struct fetch *f)
{
	return f->active;
}

uint64_t fetch_connects(const struct fetch *f)
{
	return f->connects;
}

enum status fetch_submit(struct fetch *f, struct fetch_wiki *w,
			 uint64_t page_id, uint64_t expected_rev,
			 void *userdata)
{
	if (!page_id) {
		snprintf(f->errmsg, sizeof(f->errmsg), "page id 0 is not a page");
		return STATUS_INVALID;
	}
	struct fetch_result *res = xcalloc(1, sizeof(*res));
	res->wiki = w;
	res->page_id = page_id;
	res->expected_rev = expected_rev;
	res->userdata = userdata;
	res->ns = -1;
	struct req *r = xcalloc(1, sizeof(*r));
	r->kind = REQ_PARSE;
	r->w = w;
	r->res = res;
	buf_init(&r->body);
	q_push(&f->wait, r);
	f->pending++;
	return STATUS_OK;
}

static void done(struct fetch *f, struct fetch_result *res)
{
	rq_push(&f->done, res);
}

/* --- JSON answers ------------------------------------------------------- */

static char *dup_json_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? xstrdup(s) : NULL;
}

static char *underscores_to_spaces(char *s)
{
	for (char *p = s; p && *p; p++)
		if (*p == '_')
			*p = ' ';
	return s;
}

static void take_titles(json_t *arr, struct fetch_title **out, size_t *n)
{
	size_t cnt = json_is_array(arr) ? json_array_size(arr) : 0;
	*out = cnt ? xcalloc(cnt, sizeof(**out)) : NULL;
	*n = 0;
	for (size_t i = 0; i < cnt; i++) {
		json_t *e = json_array_get(arr, i);
		const char *t = json_string_value(json_object_get(e, "title"));
		if (!t)
			continue;
		struct fetch_title *ft = &(*out)[(*n)++];
		ft->title = xstrdup(t);
		ft->ns = (int)json_integer_value(json_object_get(e, "ns"));
		ft->exists = json_is_true(json_object_get(e, "exists"));
	}
}

/* A short, printable excerpt of a body for messages. */
static void body_excerpt(const char *data, size_t len, char *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < cap && i < 60; i++) {
		unsigned char c = (unsigned char)data[i];
		out[n++] = (char)(c >= 0x20 && c < 0x7F ? c : '.');
	}
	out[n] = '\0';
}

/* True when the body's first byte that is not white space is '{': the
 * only answers handed over raw (anything else fails to decode at once,
 * so it is classified here, where it costs nothing). */
static bool looks_like_object(const char *data, size_t len)
{
	size_t i = 0;
	while (i < len && (data[i] == ' ' || data[i] == '\t' ||
			   data[i] == '\r' || data[i] == '\n'))
		i++;
	return i < len && data[i] == '{';
}

/* Parses a 200 body as JSON; on failure classifies res permanent. */
static json_t *load_json(const char *data, size_t len,
			 struct fetch_result *res, const char *what)
{
	json_error_t je;
	json_t *j = json_loadb(data, len, 0, &je);
	if (j && json_is_object(j))
		return j;
	json_decref(j);
	char ex[64];
	body_excerpt(data, len, ex, sizeof(ex));
	size_t i = 0;
	while (i < len && strchr(" \t\r\n", data[i]))
		i++;
	if (i < len && data[i] == '<')
		classify(res, FETCH_PERMANENT,
			 "%s: response is HTML, not JSON (\"%s\")", what, ex);
	else if (!len)
		classify(res, FETCH_PERMANENT, "%s: empty response body", what);
	else
		classify(res, FETCH_PERMANENT,
			 "%s: response is not a JSON object (%s at byte %d)",
			 what, je.text, je.position);
	return NULL;
}

/* Classifies res by an API error code (NULL: "(no code)"). */
static void classify_api_error(struct fetch_result *res, const char *code,
			       const char *info)
{
	if (!code)
		code = "(no code)";
	if (!info)
		info = "";
	enum fetch_class c = FETCH_PERMANENT;
	if (!strcmp(code, "nosuchpageid") || !strcmp(code, "missingtitle"))
		c = FETCH_MISSING;
	else if (!strcmp(code, "permissiondenied") ||
		 !strcmp(code, "suppressedrevision") ||
		 !strcmp(code, "revdeleted") || !strcmp(code, "missingcontent"))
		c = FETCH_HIDDEN;
	else if (!strcmp(code, "nosuchrevid"))
		c = FETCH_LAGGING;
	else if (!strcmp(code, "maxlag") || !strcmp(code, "ratelimited") ||
		 !strcmp(code, "readonly") ||
		 !strncmp(code, "internal_api_error", 18))
		c = FETCH_TRANSIENT;
	classify(res, c, "API error %s: %s", code, info);
}

/* Classifies an API error object.  Returns true if there was one. */
static bool api_error(json_t *j, struct fetch_result *res)
{
	json_t *err = json_object_get(j, "error");
	if (!err)
		return false;
	classify_api_error(res, json_string_value(json_object_get(err, "code")),
			   json_string_value(json_object_get(err, "info")));
	return true;
}

/* Fills res from a decoded parse answer j, or classifies it. */
static void take_parse(json_t *j, struct fetch_result *res)
{
	if (api_error(j, res))
		return;
	json_t *p = json_object_get(j, "parse");
	json_t *revid = json_object_get(p, "revid");
	json_t *text = json_object_get(p, "text");
	if (!json_is_object(p)) {
		classify(res, FETCH_PERMANENT, "parse: JSON has no \"parse\" object");
		return;
	}
	if (!json_is_integer(revid) || json_integer_value(revid) < 0) {
		classify(res, FETCH_PERMANENT,
			 "parse: \"parse.revid\" missing or not an integer");
		return;
	}
	if (!json_is_string(text)) {
		classify(res, FETCH_PERMANENT,
			 "parse: \"parse.text\" missing or not a string "
			 "(formatversion=2 expected)");
		return;
	}
	res->rev_id = (uint64_t)json_integer_value(revid);
	if (res->expected_rev && res->rev_id < res->expected_rev) {
		classify(res, FETCH_LAGGING,
			 "API returned revision %" PRIu64
			 ", older than the event's %" PRIu64,
			 res->rev_id, res->expected_rev);
		return;
	}
	res->html_len = json_string_length(text);
	res->html = xmalloc(res->html_len + 1);
	memcpy(res->html, json_string_value(text), res->html_len);
	res->html[res->html_len] = '\0';
	char *title = dup_json_str(p, "title");
	if (title) { /* the info query's, if any, is only a fallback */
		free(res->title);
		res->title = title;
	}
	res->display_title_html = dup_json_str(p, "displaytitle");
	json_t *cats = json_object_get(p, "categories");
	size_t nc = json_is_array(cats) ? json_array_size(cats) : 0;
	res->categories = nc ? xcalloc(nc, sizeof(*res->categories)) : NULL;
	for (size_t i = 0; i < nc; i++) {
		json_t *e = json_array_get(cats, i);
		char *name = dup_json_str(e, "category");
		if (!name)
			continue;
		struct fetch_category *c = &res->categories[res->n_categories++];
		c->name = underscores_to_spaces(name);
		c->hidden = json_is_true(json_object_get(e, "hidden"));
	}
	take_titles(json_object_get(p, "links"), &res->links, &res->n_links);
	take_titles(json_object_get(p, "templates"), &res->templates,
		    &res->n_templates);
}

/* Decodes data as a parse answer into res (class FETCH_OK on entry). */
static void decode_parse(struct fetch_result *res, const char *data,
			 size_t len)
{
	json_t *j = load_json(data, len, res, "parse");
	if (j) {
		take_parse(j, res);
		json_decref(j);
	}
	if (res->cls != FETCH_OK) {
		res->latest_rev = 0;
		res->latest_timestamp = 0;
	}
}

void fetch_result_decode(struct fetch_result *r)
{
	if (!r->raw)
		return;
	char *raw = r->raw;
	size_t len = r->raw_len;
	r->raw = NULL;
	r->raw_len = 0;
	decode_parse(r, raw, len);
	free(raw);
}

/* A parse answer is in (HTTP 200).  An error answer or one that is not a
 * JSON object is classified now; any other goes raw to the info batch. */
static void finish_parse(struct fetch *f, struct req *r)
{
	struct fetch_result *res = r->res;
	r->res = NULL;
	res->cls = FETCH_OK;
	struct curl_header *h = NULL;
	if (curl_easy_header(r->easy, "MediaWiki-API-Error", 0, CURLH_HEADER, -1,
			     &h) == CURLHE_OK && h && h->value) {
		/* Errors are rare and small: decode the body for the
		 * message; the header alone still classifies when the body
		 * says nothing usable.  "code1, code2": the first counts. */
		json_t *j = json_loadb(r->body.data, r->body.len, 0, NULL);
		if (!j || !api_error(j, res)) {
			char code[128];
			size_t n = strcspn(h->value, ", \t");
			snprintf(code, sizeof(code), "%.*s",
				 (int)(n < 100 ? n : 100), h->value);
			classify_api_error(res, code, "(from the MediaWiki-API-Error "
					   "header)");
		}
		json_decref(j);
		done(f, res);
		return;
	}
	if (!looks_like_object(r->body.data, r->body.len)) {
		decode_parse(res, r->body.data, r->body.len);
		done(f, res);
		return;
	}
	res->raw = buf_detach(&r->body, &res->raw_len);
	/* Language and namespace come from the batched info query. */
	if (!f->info.n)
		f->info_since = now_s();
	rq_push(&f->info, res);
}

/* The info query failed for res (or for its page): returns true when res
 * is classified already because its raw parse answer, decoded now, fails
 * on its own (which is what it came to when parse answers were decoded
 * before the info query); then the info query's failure does not count. */
static bool parse_fails_first(struct fetch_result *res)
{
	if (!res->raw)
		return false;
	fetch_result_decode(res);
	return res->cls != FETCH_OK;
}

/* The timestamp of revision rev in an info answer's page object (its
 * "revisions": the latest one), as unix seconds; 0 when absent. */
static int64_t latest_time(json_t *page, uint64_t rev)
{
	json_t *rv = json_array_get(json_object_get(page, "revisions"), 0);
	const char *ts = json_string_value(json_object_get(rv, "timestamp"));
	if (!ts || !rev || (uint64_t)json_integer_value(json_object_get(rv, "revid")) != rev)
		return 0;
	struct tm tm = { 0 };
	const char *end = strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return 0;
	return (int64_t)timegm(&tm);
}

int64_t fetch_result_rev_timestamp(const struct fetch_result *r)
{
	return r->cls == FETCH_OK && r->rev_id && r->rev_id == r->latest_rev
		       ? r->latest_timestamp : 0;
}

/* Appends the redirects listed in an info answer's page object to res. */
static void take_redirects(json_t *page, struct fetch_result *res)
{
	json_t *rd = json_object_get(page, "redirects");
	size_t n = json_is_array(rd) ? json_array_size(rd) : 0;
	if (!n)
		return;
	res->redirects = xrealloc(res->redirects, (res->n_redirects + n) *
						  sizeof(*res->redirects));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(rd, i);
		const char *t = json_string_value(json_object_get(e, "title"));
		json_int_t id = json_integer_value(json_object_get(e, "pageid"));
		if (!t || id <= 0)
			continue;
		struct fetch_redirect *fr = &res->redirects[res->n_redirects++];
		fr->page_id = (uint64_t)id;
		fr->ns = (int)json_integer_value(json_object_get(e, "ns"));
		fr->title = xstrdup(t);
	}
}

/* Queues a follow-up request of r's wiki (a continued info query or a
 * redirect target): it starts like a parse, when the wiki lets it. */
static void follow_up(struct fetch *f, struct fetch_wiki *w, enum req_kind kind,
		      struct fetch_result *res, struct fetch_result **batch,
		      size_t n_batch, const char *rdcontinue)
{
	struct req *q = xcalloc(1, sizeof(*q));
	q->kind = kind;
	q->w = w;
	q->res = res;
	q->batch = batch;
	q->n_batch = n_batch;
	q->rdcontinue = rdcontinue ? xstrdup(rdcontinue) : NULL;
	buf_init(&q->body);
	q_push(&f->wait, q);
}

/* A result whose info is complete: a redirect goes on to ask for its
 * target, any other is done. */
static void info_done(struct fetch *f, struct fetch_result *res)
{
	if (res->cls == FETCH_OK && res->is_redirect)
		follow_up(f, res->wiki, REQ_TARGET, res, NULL, 0, NULL);
	else
		done(f, res);
}

static void finish_info(struct fetch *f, struct req *r)
{
	struct fetch_result probe = { .wiki = r->w };
	json_t *j = load_json(r->body.data, r->body.len, &probe, "query");
	json_t *pages = NULL;
	if (j && !api_error(j, &probe)) {
		pages = json_object_get(json_object_get(j, "query"), "pages");
		if (!json_is_array(pages))
			classify(&probe, FETCH_PERMANENT,
				 "query: JSON has no \"query.pages\" array");
		else
			probe.cls = FETCH_OK;
	}
	/* Each batch entry's page in the answer, found in one pass over the
	 * answer rather than by a search of the answer per entry. */
	json_t *found[INFO_BATCH] = { NULL };
	for (size_t k = 0; probe.cls == FETCH_OK && k < json_array_size(pages);
	     k++) {
		json_t *e = json_array_get(pages, k);
		uint64_t id = (uint64_t)json_integer_value(json_object_get(e,
								"pageid"));
		for (size_t i = 0; i < r->n_batch; i++)
			if (r->batch[i]->page_id == id && !found[i])
				found[i] = e;
	}
	/* More redirects than the API lists in one answer: the same pages are
	 * asked again with its continuation token until every list is whole. */
	const char *rdcont = json_string_value(json_object_get(
		json_object_get(j, "continue"), "rdcontinue"));
	struct fetch_result **cont = NULL;
	size_t n_cont = 0;
	if (probe.cls == FETCH_OK && rdcont && *rdcont)
		cont = xmalloc(INFO_BATCH * sizeof(*cont));
	for (size_t i = 0; i < r->n_batch; i++) {
		struct fetch_result *res = r->batch[i];
		if (probe.cls != FETCH_OK) {
			if (!parse_fails_first(res)) {
				res->retry_after_ms = probe.retry_after_ms;
				res->http_status = probe.http_status;
				classify(res, probe.cls, "%s", probe.error);
			}
			done(f, res);
			continue;
		}
		json_t *page = found[i];
		if (r->rdcontinue) {
			/* Everything but the redirects came with the first
			 * answer. */
			if (page)
				take_redirects(page, res);
		} else if (!page) {
			if (!parse_fails_first(res))
				classify(res, FETCH_PERMANENT,
					 "query: page %" PRIu64
					 " not in the info answer", res->page_id);
		} else if (json_is_true(json_object_get(page, "missing"))) {
			if (!parse_fails_first(res))
				classify(res, FETCH_MISSING, "query: page %" PRIu64
					 " is missing (deleted after it was parsed)",
					 res->page_id);
		} else {
			json_t *ns = json_object_get(page, "ns");
			const char *lang = json_string_value(
				json_object_get(page, "pagelanguage"));
			res->ns = json_is_integer(ns) ? (int)json_integer_value(ns)
						      : -1;
			res->language = xstrdup(lang && *lang ? lang
							      : r->w->language);
			res->latest_rev = (uint64_t)json_integer_value(
				json_object_get(page, "lastrevid"));
			res->latest_timestamp = latest_time(page, res->latest_rev);
			res->is_redirect = json_is_true(json_object_get(page,
									"redirect"));
			take_redirects(page, res);
			if (!res->title)
				res->title = dup_json_str(page, "title");
			if (res->ns < 0 && !parse_fails_first(res))
				classify(res, FETCH_PERMANENT,
					 "query: page %" PRIu64 " has no namespace",
					 res->page_id);
		}
		if (res->cls != FETCH_OK) {
			/* Not indexed: the raw answer is of no use. */
			free(res->raw);
			res->raw = NULL;
			res->raw_len = 0;
			res->latest_rev = 0;
			res->latest_timestamp = 0;
			done(f, res);
		} else if (cont) {
			cont[n_cont++] = res;
		} else {
			info_done(f, res);
		}
	}
	if (cont && n_cont)
		follow_up(f, r->w, REQ_INFO, NULL, cont, n_cont, rdcont);
	else
		free(cont);
	free(probe.error);
	json_decref(j);
	r->n_batch = 0;
}

/* The answer to a redirect's target query: sets res->redirect_target to
 * the page it resolves to when that is one step away, exists, is not
 * res's page and is not a redirect itself. */
static void finish_target(struct fetch *f, struct req *r)
{
	struct fetch_result *res = r->res;
	r->res = NULL;
	json_t *j = load_json(r->body.data, r->body.len, res, "query");
	if (j && !api_error(j, res)) {
		json_t *qy = json_object_get(j, "query");
		json_t *pages = json_object_get(qy, "pages");
		/* MediaWiki follows a chain of redirects to its end; a reader
		 * is taken one step only, so a chain points nowhere. */
		json_t *pg = json_array_size(pages) == 1 &&
				     json_array_size(json_object_get(qy, "redirects")) == 1
			     ? json_array_get(pages, 0) : NULL;
		json_int_t id = json_integer_value(json_object_get(pg, "pageid"));
		if (pg && id > 0 && (uint64_t)id != res->page_id &&
		    !json_is_true(json_object_get(pg, "missing")) &&
		    !json_is_true(json_object_get(pg, "redirect"))) {
			res->redirect_target = (uint64_t)id;
			res->redirect_target_ns =
				(int)json_integer_value(json_object_get(pg, "ns"));
		}
	}
	if (res->cls != FETCH_OK) {
		free(res->raw);
		res->raw = NULL;
		res->raw_len = 0;
		res->latest_rev = 0;
		res->latest_timestamp = 0;
	}
	json_decref(j);
	done(f, res);
}

/* Classifies a finished transfer at the HTTP level.  Returns true when the
 * body should be looked at (HTTP 200), false when res is classified. */
static bool classify_transfer(struct fetch *f, struct req *r, CURLcode cc,
			      struct fetch_result *res, bool *restarted)
{
	const struct fetch_wiki_config *c = &r->w->cfg;
	long code = 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	res->http_status = code;
	*restarted = false;
	const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);
	switch (cc) {
	case CURLE_OK:
		break;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (r->over_cap || cc == CURLE_FILESIZE_EXCEEDED) {
			classify(res, FETCH_PERMANENT,
				 "response body exceeds %zu bytes", c->max_body);
			return false;
		}
		classify(res, FETCH_TRANSIENT, "transfer failed: %s", detail);
		return false;
	case CURLE_OPERATION_TIMEDOUT:
		classify(res, FETCH_TRANSIENT, "timeout: %s", detail);
		return false;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_URL_MALFORMAT:
		classify(res, FETCH_PERMANENT, "refused: %s", detail);
		return false;
	case CURLE_BAD_CONTENT_ENCODING:
		classify(res, FETCH_PERMANENT, "bad content encoding: %s", detail);
		return false;
	default:
		classify(res, FETCH_TRANSIENT, "transfer failed: %s", detail);
		return false;
	}
	if (code >= 300 && code < 400) {
		char *loc = NULL;
		curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_URL, &loc);
		const char *why = NULL;
		if (!loc) {
			classify(res, FETCH_PERMANENT, "HTTP %ld without a Location",
				 code);
		} else if (r->redirects >= c->max_redirects) {
			classify(res, FETCH_PERMANENT,
				 "refused redirect: more than %d redirects",
				 c->max_redirects);
		} else if ((why = fetch_redirect_refusal(r->w->api, loc))) {
			classify(res, FETCH_PERMANENT,
				 "refused redirect to %.200s: %s", loc, why);
		} else {
			char *url = xstrdup(loc);
			r->redirects++;
			stop(f, r);
			start(f, r, url);
			free(url);
			*restarted = true;
		}
		return false;
	}
	if (code == 429 || code >= 500) {
		curl_off_t ra = -1;
		if (curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &ra) ==
			    CURLE_OK && ra > 0)
			res->retry_after_ms = (long)(ra > MAX_RETRY_AFTER_S
							     ? MAX_RETRY_AFTER_S
							     : ra) * 1000;
		classify(res, FETCH_TRANSIENT, "HTTP %ld", code);
		return false;
	}
	if (code == 408) {
		classify(res, FETCH_TRANSIENT, "HTTP 408");
		return false;
	}
	if (code != 200) {
		classify(res, FETCH_PERMANENT, "HTTP %ld", code);
		return false;
	}
	return true;
}

static void on_complete(struct fetch *f, struct req *r, CURLcode cc)
{
	bool restarted;
	long nc = 0;
	if (curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK &&
	    nc > 0)
		f->connects += (uint64_t)nc;
	if (r->kind == REQ_PARSE || r->kind == REQ_TARGET) {
		if (!classify_transfer(f, r, cc, r->res, &restarted)) {
			if (restarted)
				return;
			if (r->res->cls != FETCH_OK) {
				free(r->res->raw);
				r->res->raw = NULL;
				r->res->raw_len = 0;
				r->res->latest_rev = 0;
				r->res->latest_timestamp = 0;
			}
			done(f, r->res);
			r->res = NULL;
		} else if (r->kind == REQ_PARSE) {
			finish_parse(f, r);
		} else {
			finish_target(f, r);
		}
	} else {
		struct fetch_result probe = { .wiki = r->w };
		if (!classify_transfer(f, r, cc, &probe, &restarted)) {
			if (restarted)
				return;
			for (size_t i = 0; i < r->n_batch; i++) {
				struct fetch_result *res = r->batch[i];
				if (!parse_fails_first(res)) {
					res->http_status = probe.http_status;
					res->retry_after_ms = probe.retry_after_ms;
					classify(res, probe.cls, "info query: %s",
						 probe.error);
					res->latest_rev = 0;
			res->latest_timestamp = 0;
				}
				done(f, res);
			}
			r->n_batch = 0;
			free(probe.error);
		} else {
			finish_info(f, r);
		}
	}
	if (r->kind == REQ_INFO)
		f->info_active--;
	stop(f, r);
	wiki_release(r->w);
	pool_put(f, r);
	req_free(r);
}

/* How long results wait for company before their info query goes out:
 * INFO_GATHER_MS on an unbounded wiki; on a rate-bounded one, the time a
 * quarter batch of parses takes (capped at half a second), so that info
 * queries take a small share of the wiki's requests per second. */
static double gather_ms(const struct fetch_wiki *w)
{
	if (w->cfg.rate <= 0)
		return INFO_GATHER_MS;
	double ms = 1000.0 * INFO_BATCH / 4 / w->cfg.rate;
	return ms < INFO_GATHER_MS ? INFO_GATHER_MS : ms > 500 ? 500 : ms;
}

/* Starts an info query for up to INFO_BATCH waiting results of the oldest
 * one's wiki: at once when a batch is full or no parse is still coming;
 * otherwise when no info query is in flight and the oldest result has
 * waited gather_ms() (while one is in flight, the next batch gathers). */
static bool start_info(struct fetch *f, long *wait_ms)
{
	if (!f->info.n)
		return false;
	bool more_coming = f->wait.n || f->active > f->info_active;
	if (more_coming && f->info.n < INFO_BATCH) {
		if (f->info_active)
			return false; /* its completion calls us again */
		double age_ms = (now_s() - f->info_since) * 1000;
		double gather = gather_ms(f->info.v[f->info.head]->wiki);
		if (age_ms < gather) {
			long left = (long)(gather - age_ms) + 1;
			if (left < *wait_ms)
				*wait_ms = left;
			return false;
		}
	}
	struct fetch_wiki *w = f->info.v[f->info.head]->wiki;
	if (!wiki_acquire(w, wait_ms))
		return false;
	struct req *r = xcalloc(1, sizeof(*r));
	r->kind = REQ_INFO;
	r->w = w;
	buf_init(&r->body);
	r->batch = xmalloc(INFO_BATCH * sizeof(*r->batch));
	/* Take this wiki's entries; keep the others in order. */
	struct rqueue keep = { 0 };
	struct fetch_result *res;
	while ((res = rq_shift(&f->info))) {
		if (res->wiki == w && r->n_batch < INFO_BATCH)
			r->batch[r->n_batch++] = res;
		else
			rq_push(&keep, res);
	}
	free(f->info.v);
	f->info = keep;
	f->info_since = now_s(); /* close enough for the ones left */
	char *url = info_url(r);
	start(f, r, url);
	free(url);
	f->info_active++;
	return true;
}

/* Starts waiting parse requests that their wiki lets start. */
static void start_waiting(struct fetch *f, long *wait_ms)
{
	while (start_info(f, wait_ms))
		;
	struct req **pp = &f->wait.head, *prev = NULL;
	while (*pp) {
		struct req *r = *pp;
		if (!wiki_acquire(r->w, wait_ms)) {
			prev = r;
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		if (f->wait.tail == r)
			f->wait.tail = prev;
		f->wait.n--;
		char *url = r->kind == REQ_PARSE  ? parse_url(r->w, r->res->page_id)
			    : r->kind == REQ_INFO ? info_url(r)
						  : target_url(r);
		start(f, r, url);
		free(url);
		if (r->kind == REQ_INFO)
			f->info_active++;
	}
}

static void collect(struct fetch *f)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(f->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct req *r = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		on_complete(f, r, m->data.result);
	}
}

enum status fetch_run(struct fetch *f, int timeout_ms)
{
	long wait_ms = timeout_ms;
	start_waiting(f, &wait_ms);
	int running = 0;
	CURLMcode mc = curl_multi_perform(f->multi, &running);
	if (mc != CURLM_OK)
		goto fail;
	collect(f);
	/* What just completed may let queued work (an info batch) start. */
	wait_ms = timeout_ms;
	start_waiting(f, &wait_ms);
	if (f->done.n || timeout_ms <= 0)
		return STATUS_OK;
	if (f->active) {
		mc = curl_multi_poll(f->multi, NULL, 0, (int)wait_ms, NULL);
		if (mc != CURLM_OK)
			goto fail;
		mc = curl_multi_perform(f->multi, &running);
		if (mc != CURLM_OK)
			goto fail;
		collect(f);
	} else if ((f->wait.n || f->info.n) && wait_ms > 0) {
		/* Held back by the rate or by another thread's use of the
		 * wiki's slots: wait for the next token. */
		struct timespec ts = { wait_ms / 1000, (wait_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	wait_ms = 0;
	start_waiting(f, &wait_ms);
	return STATUS_OK;
fail:
	snprintf(f->errmsg, sizeof(f->errmsg), "curl multi: %s",
		 curl_multi_strerror(mc));
	return STATUS_IO;
}

struct fetch_result *fetch_next(struct fetch *f)
{
	struct fetch_result *r = rq_shift(&f->done);
	if (r)
		f->pending--;
	return r;
}

struct fetch_result *fetch_one(struct fetch *f, struct fetch_wiki *w,
			       uint64_t page_id, uint64_t expected_rev)
{
	static char mark;
	if (fetch_submit(f, w, page_id, expected_rev, &mark) != STATUS_OK) {
		struct fetch_result *r = xcalloc(1, sizeof(*r));
		r->wiki = w;
		r->page_id = page_id;
		classify(r, FETCH_PERMANENT, "%s", f->errmsg);
		return r;
	}
	for (;;) {
		for (size_t i = 0; i < f->done.n; i++) {
			struct fetch_result *r = f->done.v[f->done.head + i];
			if (r->userdata != &mark || r->page_id != page_id)
				continue;
			memmove(&f->done.v[f->done.head + i],
				&f->done.v[f->done.head + i + 1],
				(f->done.n - i - 1) * sizeof(*f->done.v));
			f->done.n--;
			f->pending--;
			r->userdata = NULL;
			fetch_result_decode(r);
			return r;
		}
		if (fetch_run(f, 100) != STATUS_OK) {
			struct timespec ts = { 0, 10000000L };
			nanosleep(&ts, NULL);
		}
	}
}
