/* SPDX-License-Identifier: MIT */
/*
 * event.c: decoding and validation of page change events.
 *
 * The input is untrusted (anything that can XADD to the stream can write
 * it), so every value the worker relies on is checked here, once, and the
 * rest of the program sees only a struct event whose invariants hold: ids in
 * 1..2^53-1, titles of 1..255 bytes of valid UTF-8 without control or
 * MediaWiki-illegal characters, a wiki id safe inside a Redis hash tag.
 * jansson does the JSON parsing and rejects invalid UTF-8 and NUL bytes; the
 * rest is a walk over the fields this program needs, each failure reported
 * with the JSON path of the value.  Unknown keys are ignored, as the schemas
 * evolve by adding fields.
 */
#include "event.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xmalloc.h"

static const char *const kind_names[EVENT_KIND__COUNT] = {
	[EVENT_CREATE] = "create",
	[EVENT_EDIT] = "edit",
	[EVENT_DELETE] = "delete",
	[EVENT_UNDELETE] = "undelete",
	[EVENT_MOVE] = "move",
	[EVENT_VISIBILITY_CHANGE] = "visibility_change",
	[EVENT_RERENDER] = "rerender",
};

#define SCHEMA_PAGE_CHANGE "/mediawiki/page/change/1."
#define SCHEMA_RERENDER "/mediawiki/cirrussearch/page_rerender/1."
#define WIKI_ID_MAX 64

const char *event_kind_str(enum event_kind k)
{
	if ((unsigned)k >= EVENT_KIND__COUNT)
		return "invalid";
	return kind_names[k];
}

/* Records "<path>: <problem>" in err and returns STATUS_DECODE. */
static enum status fail(struct event_error *err, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum status fail(struct event_error *err, const char *path, const char *fmt, ...)
{
	if (err) {
		char problem[256];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(problem, sizeof problem, fmt, ap);
		va_end(ap);
		snprintf(err->path, sizeof err->path, "%s", path);
		snprintf(err->text, sizeof err->text, "%s: %s", path, problem);
	}
	return STATUS_DECODE;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

/* Looks up key in obj; required keys that are absent or null fail. */
static enum status get_object(struct event_error *err, const json_t *obj, const char *key,
                              const char *path, bool required, json_t **out)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		*out = NULL;
		return required ? fail(err, path, "missing required object") : STATUS_OK;
	}
	if (!json_is_object(v))
		return fail(err, path, "expected an object, got %s", type_name(v));
	*out = v;
	return STATUS_OK;
}

static enum status get_int(struct event_error *err, const json_t *obj, const char *key,
                           const char *path, bool required, int64_t min, int64_t max,
                           int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return required ? fail(err, path, "missing required integer") : STATUS_OK;
	if (!json_is_integer(v))
		return fail(err, path, "expected an integer, got %s", type_name(v));
	json_int_t i = json_integer_value(v);
	if (i < min || i > max)
		return fail(err, path, "%lld out of range %lld..%lld", (long long)i,
		            (long long)min, (long long)max);
	*out = i;
	return STATUS_OK;
}

static enum status get_bool(struct event_error *err, const json_t *obj, const char *key,
                            const char *path, int *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return STATUS_OK;
	if (!json_is_boolean(v))
		return fail(err, path, "expected a boolean, got %s", type_name(v));
	*out = json_is_true(v);
	return STATUS_OK;
}

static enum status get_string(struct event_error *err, const json_t *obj, const char *key,
                              const char *path, bool required, const char **out,
                              size_t *lenp)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		*out = NULL;
		return required ? fail(err, path, "missing required string") : STATUS_OK;
	}
	if (!json_is_string(v))
		return fail(err, path, "expected a string, got %s", type_name(v));
	*out = json_string_value(v);
	*lenp = json_string_length(v);
	return STATUS_OK;
}

/* A title: 1..255 bytes, no NUL, no control characters, none of the
 * characters MediaWiki never allows in a title (#<>[]|{}). jansson already
 * guarantees valid UTF-8. */
static enum status check_title(struct event_error *err, const char *path,
                               const char *t, size_t len)
{
	if (len == 0)
		return fail(err, path, "empty title");
	if (len > EVENT_TITLE_MAX)
		return fail(err, path, "title is %zu bytes, longer than MediaWiki's limit of %d",
		            len, EVENT_TITLE_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c < 0x20 || c == 0x7f)
			return fail(err, path, "control character 0x%02x at byte %zu", c, i);
		if (strchr("#<>[]|{}", c))
			return fail(err, path, "character '%c' is not allowed in a title", c);
	}
	return STATUS_OK;
}

static enum status check_wiki(struct event_error *err, const char *path,
                              const char *w, size_t len)
{
	if (len == 0)
		return fail(err, path, "empty wiki id");
	if (len > WIKI_ID_MAX)
		return fail(err, path, "wiki id longer than %d bytes", WIKI_ID_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)w[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return fail(err, path, "wiki id may hold only letters, digits, '_' and '-'");
	}
	return STATUS_OK;
}

static int parse_digits(const char **p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	return v;
}

/* Parses ISO 8601 / RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)"
 * into Unix milliseconds.  Returns false when malformed. */
static bool parse_time(const char *s, int64_t *ms)
{
	const char *p = s;
	int y = parse_digits(&p, 4);
	if (y < 0 || *p++ != '-')
		return false;
	int mo = parse_digits(&p, 2);
	if (mo < 1 || mo > 12 || *p++ != '-')
		return false;
	int d = parse_digits(&p, 2);
	if (d < 1 || d > 31 || (*p != 'T' && *p != 't' && *p != ' '))
		return false;
	p++;
	int h = parse_digits(&p, 2);
	if (h < 0 || h > 23 || *p++ != ':')
		return false;
	int mi = parse_digits(&p, 2);
	if (mi < 0 || mi > 59 || *p++ != ':')
		return false;
	int sec = parse_digits(&p, 2);
	if (sec < 0 || sec > 60)
		return false;
	int frac_ms = 0;
	if (*p == '.') {
		p++;
		int digits = 0, scale = 100;
		while (*p >= '0' && *p <= '9') {
			if (digits < 3)
				frac_ms += (*p - '0') * scale;
			scale /= 10;
			digits++;
			p++;
		}
		if (digits == 0)
			return false;
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		p++;
		int oh = parse_digits(&p, 2);
		if (oh < 0 || oh > 23 || *p++ != ':')
			return false;
		int om = parse_digits(&p, 2);
		if (om < 0 || om > 59)
			return false;
		off = sign * (oh * 60 + om);
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	/* Days from civil (Howard Hinnant's algorithm): no timegm, no TZ. */
	int yy = y - (mo <= 2);
	int era = (yy >= 0 ? yy : yy - 399) / 400;
	unsigned yoe = (unsigned)(yy - era * 400);
	unsigned doy = (unsigned)((153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
	int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (int64_t)off * 60;
	*ms = secs * 1000 + frac_ms;
	return true;
}

static enum status decode_time(struct event_error *err, const json_t *root, int64_t *ms)
{
	const char *dt = NULL, *path = "meta.dt";
	size_t len = 0;
	json_t *meta = NULL;
	enum status st = get_object(err, root, "meta", "meta", false, &meta);
	if (st != STATUS_OK)
		return st;
	if (meta && (st = get_string(err, meta, "dt", "meta.dt", false, &dt, &len)) != STATUS_OK)
		return st;
	if (!dt) {
		path = "dt";
		if ((st = get_string(err, root, "dt", "dt", false, &dt, &len)) != STATUS_OK)
			return st;
	}
	if (!dt)
		return fail(err, "meta.dt", "missing required string (neither meta.dt nor dt)");
	if (len > 64 || !parse_time(dt, ms))
		return fail(err, path, "not an ISO 8601 UTC time");
	return STATUS_OK;
}

static enum status decode_page_change(struct event_error *err, const json_t *root,
                                      struct event *ev)
{
	enum status st;
	const char *s;
	size_t len;
	json_t *page, *rev, *prior, *prior_page, *redir;

	if ((st = get_string(err, root, "page_change_kind", "page_change_kind", true, &s,
	                     &len)) != STATUS_OK)
		return st;
	int k;
	for (k = 0; k < EVENT_RERENDER; k++)
		if (strcmp(s, kind_names[k]) == 0)
			break;
	if (k == EVENT_RERENDER)
		return fail(err, "page_change_kind", "unknown kind (expected create, edit, "
		            "delete, undelete, move or visibility_change)");
	ev->kind = (enum event_kind)k;

	if ((st = get_object(err, root, "page", "page", true, &page)) != STATUS_OK)
		return st;
	if ((st = get_int(err, page, "page_id", "page.page_id", true, 1, EVENT_ID_MAX,
	                  &ev->page_id)) != STATUS_OK)
		return st;
	if ((st = get_string(err, page, "page_title", "page.page_title", true, &s,
	                     &len)) != STATUS_OK ||
	    (st = check_title(err, "page.page_title", s, len)) != STATUS_OK)
		return st;
	ev->title = xstrndup(s, len);
	if ((st = get_int(err, page, "namespace_id", "page.namespace_id", true, -2,
	                  INT32_MAX, &ev->namespace_id)) != STATUS_OK)
		return st;
	if ((st = get_bool(err, page, "is_redirect", "page.is_redirect",
	                   &ev->is_redirect)) != STATUS_OK)
		return st;

	/* Suppressed deletes carry no revision fields; every other kind names
	 * the revision that is current after the change. */
	bool need_rev = ev->kind != EVENT_DELETE;
	if ((st = get_object(err, root, "revision", "revision", need_rev, &rev)) != STATUS_OK)
		return st;
	if (rev && (st = get_int(err, rev, "rev_id", "revision.rev_id", need_rev, 1,
	                         EVENT_ID_MAX, &ev->rev_id)) != STATUS_OK)
		return st;

	bool need_prior = ev->kind == EVENT_MOVE;
	if ((st = get_object(err, root, "prior_state", "prior_state", need_prior,
	                     &prior)) != STATUS_OK)
		return st;
	prior_page = NULL;
	if (prior && (st = get_object(err, prior, "page", "prior_state.page", need_prior,
	                              &prior_page)) != STATUS_OK)
		return st;
	if (prior_page && ev->kind == EVENT_UNDELETE &&
	    (st = get_int(err, prior_page, "page_id", "prior_state.page.page_id", false, 1,
	                  EVENT_ID_MAX, &ev->prior_page_id)) != STATUS_OK)
		return st;
	if (ev->kind == EVENT_MOVE) {
		if ((st = get_string(err, prior_page, "page_title", "prior_state.page.page_title",
		                     true, &s, &len)) != STATUS_OK ||
		    (st = check_title(err, "prior_state.page.page_title", s, len)) != STATUS_OK)
			return st;
		ev->prior_title = xstrndup(s, len);
		if ((st = get_int(err, prior_page, "namespace_id",
		                  "prior_state.page.namespace_id", true, -2, INT32_MAX,
		                  &ev->prior_namespace_id)) != STATUS_OK)
			return st;
		if ((st = get_object(err, root, "created_redirect_page", "created_redirect_page",
		                     false, &redir)) != STATUS_OK)
			return st;
		if (redir && (st = get_int(err, redir, "page_id", "created_redirect_page.page_id",
		                           true, 1, EVENT_ID_MAX,
		                           &ev->redirect_page_id)) != STATUS_OK)
			return st;
	}
	return STATUS_OK;
}

static enum status decode_rerender(struct event_error *err, const json_t *root,
                                   struct event *ev)
{
	enum status st;
	const char *s;
	size_t len;

	ev->kind = EVENT_RERENDER;
	if ((st = get_int(err, root, "page_id", "page_id", true, 1, EVENT_ID_MAX,
	                  &ev->page_id)) != STATUS_OK)
		return st;
	if ((st = get_string(err, root, "page_title", "page_title", true, &s, &len)) !=
	            STATUS_OK ||
	    (st = check_title(err, "page_title", s, len)) != STATUS_OK)
		return st;
	ev->title = xstrndup(s, len);
	if ((st = get_int(err, root, "namespace_id", "namespace_id", true, -2, INT32_MAX,
	                  &ev->namespace_id)) != STATUS_OK)
		return st;
	return get_bool(err, root, "is_redirect", "is_redirect", &ev->is_redirect);
}

enum status event_decode(const char *json, size_t len, struct event **out,
                         struct event_error *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return fail(err, "$", "invalid JSON at byte %d: %s", jerr.position, jerr.text);

	enum status st;
	struct event *ev = xcalloc(1, sizeof *ev);
	const char *s;
	size_t slen;
	if (!json_is_object(root)) {
		st = fail(err, "$", "expected an object, got %s", type_name(root));
		goto out;
	}
	if ((st = get_string(err, root, "$schema", "$schema", true, &s, &slen)) != STATUS_OK)
		goto out;
	bool rerender;
	if (strncmp(s, SCHEMA_PAGE_CHANGE, strlen(SCHEMA_PAGE_CHANGE)) == 0) {
		rerender = false;
	} else if (strncmp(s, SCHEMA_RERENDER, strlen(SCHEMA_RERENDER)) == 0) {
		rerender = true;
	} else {
		st = fail(err, "$schema", "unsupported schema (expected %s* or %s*)",
		          SCHEMA_PAGE_CHANGE, SCHEMA_RERENDER);
		goto out;
	}
	if ((st = get_string(err, root, "wiki_id", "wiki_id", true, &s, &slen)) != STATUS_OK ||
	    (st = check_wiki(err, "wiki_id", s, slen)) != STATUS_OK)
		goto out;
	ev->wiki = xstrndup(s, slen);
	if ((st = decode_time(err, root, &ev->time_ms)) != STATUS_OK)
		goto out;
	st = rerender ? decode_rerender(err, root, ev) : decode_page_change(err, root, ev);
out:
	json_decref(root);
	if (st != STATUS_OK) {
		event_free(ev);
		return st;
	}
	*out = ev;
	return STATUS_OK;
}

void event_free(struct event *ev)
{
	if (!ev)
		return;
	free(ev->wiki);
	free(ev->title);
	free(ev->prior_title);
	free(ev);
}

struct event *event_dup(const struct event *ev)
{
	struct event *d = xmalloc(sizeof *d);
	*d = *ev;
	d->wiki = ev->wiki ? xstrdup(ev->wiki) : NULL;
	d->title = ev->title ? xstrdup(ev->title) : NULL;
	d->prior_title = ev->prior_title ? xstrdup(ev->prior_title) : NULL;
	return d;
}

static void format_time(int64_t ms, char *buf, size_t len)
{
	/* Floor division, so times before 1970 format correctly too. */
	int64_t secs = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	time_t t = (time_t)secs;
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

static json_t *page_obj(int64_t id, const char *title, int64_t ns)
{
	json_t *p = json_object();
	json_object_set_new(p, "page_id", json_integer(id));
	if (title)
		json_object_set_new(p, "page_title", json_string(title));
	json_object_set_new(p, "namespace_id", json_integer(ns));
	return p;
}

char *event_encode(const struct event *ev)
{
	char dt[64];
	int64_t ms = ev->time_ms;
	if (ms == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	format_time(ms, dt, sizeof dt);

	json_t *o = json_object();
	json_t *meta = json_object();
	json_object_set_new(meta, "dt", json_string(dt));
	json_object_set_new(meta, "stream", json_string(ev->kind == EVENT_RERENDER
	                    ? "mediawiki.cirrussearch.page_rerender" : "mediawiki.page_change"));
	json_object_set_new(o, "meta", meta);
	json_object_set_new(o, "dt", json_string(dt));
	json_object_set_new(o, "wiki_id", json_string(ev->wiki));
	if (ev->kind == EVENT_RERENDER) {
		json_object_set_new(o, "$schema",
		                    json_string("/mediawiki/cirrussearch/page_rerender/1.0.0"));
		json_object_set_new(o, "page_id", json_integer(ev->page_id));
		json_object_set_new(o, "page_title", json_string(ev->title));
		json_object_set_new(o, "namespace_id", json_integer(ev->namespace_id));
		json_object_set_new(o, "is_redirect", json_boolean(ev->is_redirect));
		json_object_set_new(o, "reason", json_string("freshet"));
	} else {
		json_object_set_new(o, "$schema", json_string("/mediawiki/page/change/1.1.0"));
		json_object_set_new(o, "page_change_kind", json_string(event_kind_str(ev->kind)));
		json_t *page = page_obj(ev->page_id, ev->title, ev->namespace_id);
		json_object_set_new(page, "is_redirect", json_boolean(ev->is_redirect));
		json_object_set_new(o, "page", page);
		if (ev->rev_id > 0) {
			json_t *rev = json_object();
			json_object_set_new(rev, "rev_id", json_integer(ev->rev_id));
			json_object_set_new(o, "revision", rev);
		}
		if (ev->kind == EVENT_MOVE || (ev->kind == EVENT_UNDELETE && ev->prior_page_id)) {
			json_t *prior = json_object();
			json_object_set_new(prior, "page",
			                    ev->kind == EVENT_MOVE
			                    ? page_obj(ev->page_id, ev->prior_title,
			                               ev->prior_namespace_id)
			                    : page_obj(ev->prior_page_id, NULL, ev->namespace_id));
			json_object_set_new(o, "prior_state", prior);
		}
		if (ev->kind == EVENT_MOVE && ev->redirect_page_id)
			json_object_set_new(o, "created_redirect_page",
			                    page_obj(ev->redirect_page_id, ev->prior_title,
			                             ev->prior_namespace_id));
	}
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!s) {
		fprintf(stderr, "freshet: out of memory encoding an event\n");
		abort();
	}
	/* json_dumps allocates with jansson's allocator (malloc by default). */
	return s;
}
