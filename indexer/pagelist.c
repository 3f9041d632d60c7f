/* SPDX-License-Identifier: MIT */
/*
 * pagelist.c: page listings from MediaWiki's Action API (allpages, info,
 * siteinfo) for reindex-page.
 *
 * Invariants: only the configured API URL is requested (query strings are
 * appended to it, never a host taken from an answer); protocols are limited
 * to http and https, redirects to 3 under the fetcher's rule (the API's own
 * scheme, host and port), bodies to 16 MiB counted in the write
 * callback (Content-Length is not trusted).  MediaWiki reports errors with
 * HTTP 200 and an "error" object: those are failures here too.  Requests use
 * formatversion=2 so booleans are booleans and pages come as an array.
 */
#include "pagelist.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "fetch.h"
#include "redact.h"
#include "xmalloc.h"

#define BODY_CAP (16u << 20)
#define IDS_PER_REQUEST 50
#define MAX_REDIRECTS 3

struct pagelist {
	char *api;
	char *user_agent;
	CURL *curl;
	struct buf body;
	char err[512];
};

struct pagelist *pagelist_new(const char *api, const char *user_agent)
{
	struct pagelist *pl = xcalloc(1, sizeof(*pl));
	pl->api = xstrdup(api);
	pl->user_agent = xstrdup(user_agent ? user_agent
				 : "freshet-reindex/0.1 (https://example.invalid/freshet)");
	buf_init(&pl->body);
	pl->curl = curl_easy_init();
	if (!pl->curl) {
		fprintf(stderr, "pagelist: curl_easy_init failed\n");
		abort();
	}
	return pl;
}

void pagelist_free(struct pagelist *pl)
{
	if (!pl)
		return;
	curl_easy_cleanup(pl->curl);
	buf_release(&pl->body);
	free(pl->api);
	free(pl->user_agent);
	free(pl);
}

const char *pagelist_errmsg(const struct pagelist *pl)
{
	return pl->err;
}

static enum status fail(struct pagelist *pl, enum status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum status fail(struct pagelist *pl, enum status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pl->err, sizeof pl->err, fmt, ap);
	va_end(ap);
	/* The messages name the URL asked: never with its credentials. */
	char *clean = redact_userinfo(pl->err);
	snprintf(pl->err, sizeof pl->err, "%s", clean);
	free(clean);
	return st;
}

/* Collects the body, refusing more than BODY_CAP bytes. */
static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;
	if (b->len + len > BODY_CAP)
		return 0;
	buf_add(b, p, len);
	return len;
}

/* GETs api?<query> (query already escaped) and parses the JSON answer into
 * *out (caller decrefs). */
static enum status get_json(struct pagelist *pl, const char *query, json_t **out)
{
	char *url = xasprintf("%s%s%s&format=json&formatversion=2", pl->api,
			      strchr(pl->api, '?') ? "&" : "?", query);
	CURL *c = pl->curl;
	CURLcode cc;
	long code = 0;
	for (int redirects = 0;; redirects++) {
		curl_easy_reset(c);
		buf_reset(&pl->body);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		/* Redirects are followed by hand, under the fetcher's rule. */
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(c, CURLOPT_USERAGENT, pl->user_agent);
		curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &pl->body);
		cc = curl_easy_perform(c);
		code = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (cc != CURLE_OK || code < 300 || code >= 400)
			break;
		char *loc = NULL;
		curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
		const char *why = NULL;
		enum status st = STATUS_OK;
		if (!loc)
			st = fail(pl, STATUS_PERMANENT, "GET %s: HTTP %ld without a Location",
				  url, code);
		else if (redirects >= MAX_REDIRECTS)
			st = fail(pl, STATUS_PERMANENT,
				  "GET %s: refused redirect: more than %d redirects", url,
				  MAX_REDIRECTS);
		else if ((why = fetch_redirect_refusal(pl->api, loc)))
			st = fail(pl, STATUS_PERMANENT, "GET %s: refused redirect to %.200s: %s",
				  url, loc, why);
		if (st != STATUS_OK) {
			free(url);
			return st;
		}
		char *next = xstrdup(loc);
		free(url);
		url = next;
	}
	if (cc != CURLE_OK) {
		enum status st = fail(pl, cc == CURLE_WRITE_ERROR ? STATUS_DECODE
				      : STATUS_TRANSIENT, "GET %s: %s", url,
				      cc == CURLE_WRITE_ERROR ? "answer too large"
				      : curl_easy_strerror(cc));
		free(url);
		return st;
	}
	if (code != 200) {
		enum status st = fail(pl, code >= 500 || code == 429 ? STATUS_TRANSIENT
				      : STATUS_PERMANENT, "GET %s: HTTP %ld", url, code);
		free(url);
		return st;
	}
	json_error_t jerr;
	json_t *root = json_loadb(pl->body.data, pl->body.len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		enum status st = fail(pl, STATUS_DECODE, "GET %s: answer is not a JSON object", url);
		free(url);
		return st;
	}
	json_t *err = json_object_get(root, "error");
	if (err) {
		enum status st = fail(pl, STATUS_DECODE, "GET %s: API error %s: %s", url,
				      json_string_value(json_object_get(err, "code")) ?: "?",
				      json_string_value(json_object_get(err, "info")) ?: "");
		json_decref(root);
		free(url);
		return st;
	}
	free(url);
	*out = root;
	return STATUS_OK;
}

static struct pagelist_entry *push(struct pagelist_entries *e)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 64;
		e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
	}
	struct pagelist_entry *x = &e->v[e->n++];
	memset(x, 0, sizeof(*x));
	return x;
}

/* Appends one page object of a query answer. */
static void add_page(struct pagelist_entries *out, json_t *pg)
{
	struct pagelist_entry *x = push(out);
	x->page_id = json_integer_value(json_object_get(pg, "pageid"));
	x->namespace_id = (int)json_integer_value(json_object_get(pg, "ns"));
	const char *t = json_string_value(json_object_get(pg, "title"));
	x->title = xstrdup(t ? t : "");
	x->rev_id = json_integer_value(json_object_get(pg, "lastrevid"));
	const char *lang = json_string_value(json_object_get(pg, "pagelanguage"));
	x->language = lang ? xstrdup(lang) : NULL;
	x->missing = json_is_true(json_object_get(pg, "missing")) ||
		     json_is_true(json_object_get(pg, "invalid")) || x->page_id == 0;
	x->redirect = json_is_true(json_object_get(pg, "redirect"));
}

/* URL-escapes s into a newly allocated string. */
static char *esc(struct pagelist *pl, const char *s)
{
	char *e = curl_easy_escape(pl->curl, s, 0);
	char *r = xstrdup(e);
	curl_free(e);
	return r;
}

/* The revision fields of a page object: revisions[0].{revid,timestamp}. */
static void add_revision(struct pagelist_entry *x, json_t *pg)
{
	json_t *rev = json_array_get(json_object_get(pg, "revisions"), 0);
	if (!rev)
		return;
	if (!x->rev_id)
		x->rev_id = json_integer_value(json_object_get(rev, "revid"));
	const char *ts = json_string_value(json_object_get(rev, "timestamp"));
	struct tm tm = { 0 };
	if (ts && strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm))
		x->rev_timestamp = (int64_t)timegm(&tm);
}

/* Runs one request of a generator query (query holds everything but the
 * continuation: "action=query&generator=...&prop=info%7Crevisions..."),
 * continued by cont ("&key=value..." as the last answer gave it, "" at the
 * start), appending each page with its revision.  next gets the
 * continuation of the answer, empty when the API is done. */
static enum status query_page(struct pagelist *pl, const char *query,
			      const char *cont, struct pagelist_entries *out,
			      struct buf *next)
{
	struct buf q = BUF_INIT;
	buf_addf(&q, "%s%s", query, cont);
	json_t *root;
	enum status st = get_json(pl, q.data, &root);
	buf_release(&q);
	buf_reset(next);
	if (st != STATUS_OK)
		return st;
	json_t *list = json_object_get(json_object_get(root, "query"), "pages");
	size_t i;
	json_t *pg;
	json_array_foreach(list, i, pg) {
		add_page(out, pg);
		add_revision(&out->v[out->n - 1], pg);
	}
	/* Continue with every key the API gave (gapcontinue, continue). */
	json_t *c = json_object_get(root, "continue");
	const char *k;
	json_t *v;
	json_object_foreach(c, k, v) {
		if (!json_is_string(v))
			continue;
		char *ek = esc(pl, k), *ev = esc(pl, json_string_value(v));
		buf_addf(next, "&%s=%s", ek, ev);
		free(ek);
		free(ev);
	}
	json_decref(root);
	return STATUS_OK;
}

/* Runs a generator query through every continuation the API gives. */
static enum status query_pages(struct pagelist *pl, const char *query,
			       struct pagelist_entries *out)
{
	struct buf cont = BUF_INIT, next = BUF_INIT;
	enum status st;
	while ((st = query_page(pl, query, cont.data, out, &next)) == STATUS_OK &&
	       next.len) {
		buf_reset(&cont);
		buf_add(&cont, next.data, next.len);
	}
	buf_release(&cont);
	buf_release(&next);
	return st;
}

enum status pagelist_allpages(struct pagelist *pl, int ns, bool redirects,
			      struct pagelist_entries *out)
{
	char *q = xasprintf("action=query&generator=allpages&gaplimit=max&gapnamespace=%d"
			    "&gapfilterredir=%s&prop=info%%7Crevisions&rvprop=ids%%7Ctimestamp",
			    ns, redirects ? "all" : "nonredirects");
	enum status st = query_pages(pl, q, out);
	free(q);
	return st;
}

enum status pagelist_allpages_page(struct pagelist *pl, int ns, int limit,
				   const char *cont, struct pagelist_entries *out,
				   char **next)
{
	char *q = xasprintf("action=query&generator=allpages&gaplimit=%d&gapnamespace=%d"
			    "&gapfilterredir=nonredirects&prop=info%%7Crevisions"
			    "&rvprop=ids%%7Ctimestamp", limit, ns);
	struct buf nb = BUF_INIT;
	enum status st = query_page(pl, q, cont ? cont : "", out, &nb);
	free(q);
	if (st == STATUS_OK)
		*next = nb.len ? buf_detach(&nb, NULL) : NULL;
	buf_release(&nb);
	return st;
}

enum status pagelist_embeddedin(struct pagelist *pl, const char *title,
				struct pagelist_entries *out)
{
	char *et = esc(pl, title);
	char *q = xasprintf("action=query&generator=embeddedin&geititle=%s&geilimit=max"
			    "&prop=info%%7Crevisions&rvprop=ids%%7Ctimestamp", et);
	free(et);
	enum status st = query_pages(pl, q, out);
	free(q);
	return st;
}

/* Runs prop=info for one batch given as "pageids=..." or "titles=...". */
static enum status info_batch(struct pagelist *pl, const char *sel,
			      struct pagelist_entries *out)
{
	char *q = xasprintf("action=query&prop=info%%7Crevisions&rvprop=ids%%7Ctimestamp&%s",
			    sel);
	json_t *root;
	enum status st = get_json(pl, q, &root);
	free(q);
	if (st != STATUS_OK)
		return st;
	json_t *pages = json_object_get(json_object_get(root, "query"), "pages");
	size_t i;
	json_t *pg;
	json_array_foreach(pages, i, pg) {
		add_page(out, pg);
		add_revision(&out->v[out->n - 1], pg);
		/* A missing id keeps its id so the caller can delete its document. */
		if (out->v[out->n - 1].missing && !out->v[out->n - 1].page_id)
			out->v[out->n - 1].page_id =
				json_integer_value(json_object_get(pg, "pageid"));
	}
	json_decref(root);
	return STATUS_OK;
}

enum status pagelist_by_ids(struct pagelist *pl, const int64_t *ids, size_t n,
			    struct pagelist_entries *out)
{
	for (size_t i = 0; i < n; i += IDS_PER_REQUEST) {
		struct buf sel = BUF_INIT;
		buf_adds(&sel, "pageids=");
		for (size_t j = i; j < n && j < i + IDS_PER_REQUEST; j++)
			buf_addf(&sel, "%s%lld", j > i ? "%7C" : "", (long long)ids[j]);
		size_t before = out->n;
		enum status st = info_batch(pl, sel.data, out);
		buf_release(&sel);
		if (st != STATUS_OK)
			return st;
		/* formatversion=2 reports a missing id as {"pageid": N, "missing": true};
		 * older answers may omit the id, so fill in ids not seen. */
		for (size_t j = i; j < n && j < i + IDS_PER_REQUEST; j++) {
			bool seen = false;
			for (size_t k = before; k < out->n && !seen; k++)
				seen = out->v[k].page_id == ids[j];
			if (!seen) {
				struct pagelist_entry *x = push(out);
				x->page_id = ids[j];
				x->title = xstrdup("");
				x->missing = true;
			}
		}
	}
	return STATUS_OK;
}

enum status pagelist_by_titles(struct pagelist *pl, const char *const *titles,
			       size_t n, struct pagelist_entries *out)
{
	for (size_t i = 0; i < n; i += IDS_PER_REQUEST) {
		struct buf sel = BUF_INIT;
		buf_adds(&sel, "titles=");
		for (size_t j = i; j < n && j < i + IDS_PER_REQUEST; j++) {
			char *e = esc(pl, titles[j]);
			buf_addf(&sel, "%s%s", j > i ? "%7C" : "", e);
			free(e);
		}
		enum status st = info_batch(pl, sel.data, out);
		buf_release(&sel);
		if (st != STATUS_OK)
			return st;
	}
	return STATUS_OK;
}

enum status pagelist_site_pages(struct pagelist *pl, int64_t *pages)
{
	json_t *root;
	enum status st = get_json(pl, "action=query&meta=siteinfo&siprop=statistics", &root);
	if (st != STATUS_OK)
		return st;
	json_t *v = json_object_get(json_object_get(json_object_get(root, "query"),
						    "statistics"), "pages");
	if (!json_is_integer(v)) {
		json_decref(root);
		return fail(pl, STATUS_DECODE, "siteinfo: no statistics.pages");
	}
	*pages = json_integer_value(v);
	json_decref(root);
	return STATUS_OK;
}

void pagelist_entries_free(struct pagelist_entries *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].title);
		free(e->v[i].language);
	}
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}
