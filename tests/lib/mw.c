/* SPDX-License-Identifier: MIT */
/*
 * mw.c: a private MediaWiki for the tests (see mw.h).
 *
 * The wiki itself is installed, started and stopped by
 * tests/integration/mediawiki.sh (one code path for the tests and the demo);
 * this file runs that script and then talks to the wiki's Action API with one
 * libcurl easy handle that keeps Admin's session cookies in memory.  Every
 * failure fails the running Criterion test with what MediaWiki said, so the
 * callers stay free of error handling.  mw_seed() overlaps its edits on a
 * few extra easy handles that share the session through a curl share handle.
 *
 * Invariants: a struct mw that mw_start() returned is logged in and holds a
 * CSRF token valid for the session; mw->dir exists until mw_stop().
 */
#include "mw.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testsupport.h"

#define MW_SEED_PARALLEL 3      /* edits in flight in mw_seed() */
#define MW_SEED_RETRIES 5       /* tries of one edit when SQLite is busy */

struct mw {
	char *dir;
	bool own_dir;
	char *script;
	char *api;
	char *rest;
	char *wiki_id;
	char *spool;
	char *password;
	char *netns;            /* namespace the server runs in, or NULL */
	char *host;             /* address it serves on */
	int port;
	CURL *curl;
	CURLSH *share;          /* session cookies, shared with mw_seed's handles */
	char *csrf;
};

/* A growable response body; open_memstream would do, but curl wants a
 * callback anyway. */
struct body {
	char *data;
	size_t len, cap;
};

static size_t body_write(char *ptr, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t add = size * n;
	if (b->len + add + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + add + 1)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p)
			return 0;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	cr_assert_not_null(d, "out of memory");
	return d;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s;
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	cr_assert(r >= 0, "out of memory");
	return s;
}

/* Returns the first line of a file in mw->dir, newly allocated. */
static char *read_line(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *s = test_read_file(path, NULL);
	cr_assert_not_null(s, "mediawiki.sh left no %s", path);
	free(path);
	s[strcspn(s, "\r\n")] = '\0';
	return s;
}

/* URL-encodes s; the result is newly allocated with malloc. */
static char *esc(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	cr_assert_not_null(e, "out of memory");
	char *r = xstrdup(e);
	curl_free(e);
	return r;
}

static CURL *new_handle(struct mw *mw)
{
	CURL *c = curl_easy_init();
	cr_assert_not_null(c, "curl_easy_init failed");
	curl_easy_setopt(c, CURLOPT_SHARE, mw->share);
	curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "freshet-tests/1.0 (mw.c)");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	return c;
}

/* Prepares handle c for one API call: GET api?params or POST params.  The
 * returned string is the URL or the POST body, owned by the caller and
 * needed until the transfer completes. */
static char *prepare(struct mw *mw, CURL *c, bool post, const char *params,
		     bool token, struct body *b)
{
	char *tok = token ? esc(mw->csrf) : NULL;
	char *q = xasprintf("%s%sformat=json&formatversion=2%s%s", params,
			    *params ? "&" : "", tok ? "&token=" : "",
			    tok ? tok : "");
	free(tok);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	if (post) {
		curl_easy_setopt(c, CURLOPT_URL, mw->api);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q);
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		return q;
	}
	char *url = xasprintf("%s?%s", mw->api, q);
	free(q);
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_URL, url);
	return url;
}

/* Decodes a finished transfer's body; fails the test if it is not JSON. */
static json_t *decode(CURLcode rc, CURL *c, struct body *b, const char *params)
{
	cr_assert_eq(rc, CURLE_OK, "MediaWiki API (%s): %s", params,
		     curl_easy_strerror(rc));
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	json_error_t err;
	json_t *j = b->data ? json_loads(b->data, 0, &err) : NULL;
	if (!j)
		cr_assert_fail("MediaWiki API (%s): HTTP %ld, not JSON: %.500s",
			       params, code, b->data ? b->data : "(empty)");
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	return j;
}

static json_t *call(struct mw *mw, bool post, const char *params, bool token)
{
	struct body b = { 0 };
	char *s = prepare(mw, mw->curl, post, params, token, &b);
	CURLcode rc = curl_easy_perform(mw->curl);
	json_t *j = decode(rc, mw->curl, &b, params);
	free(s);
	return j;
}

void mw_own_connection(struct mw *mw)
{
	/* Not curl_easy_cleanup(): it could close the connection on the
	 * parent's behalf (TLS alerts, HTTP/2 frames).  The child exits. */
	mw->curl = new_handle(mw);
}

json_t *mw_api(struct mw *mw, bool post, const char *params)
{
	return call(mw, post, params, post);
}

/* Fails the test if j holds an API error; what names the operation. */
static void check(json_t *j, const char *what)
{
	json_t *e = json_object_get(j, "error");
	if (e)
		cr_assert_fail("MediaWiki %s: %s: %s", what,
			       json_string_value(json_object_get(e, "code")),
			       json_string_value(json_object_get(e, "info")));
}

static json_t *call_ok(struct mw *mw, bool post, const char *params,
		       const char *what)
{
	json_t *j = call(mw, post, params, post);
	check(j, what);
	return j;
}

static const char *jstr(json_t *j, const char *path)
{
	char *p = xstrdup(path);
	json_t *cur = j;
	for (char *save, *k = strtok_r(p, ".", &save); k && cur;
	     k = strtok_r(NULL, ".", &save))
		cur = json_object_get(cur, k);
	free(p);
	return json_string_value(cur);
}

static void login(struct mw *mw)
{
	json_t *t = call_ok(mw, false, "action=query&meta=tokens&type=login",
			    "login token");
	char *ltok = esc(jstr(t, "query.tokens.logintoken"));
	char *pw = esc(mw->password);
	char *p = xasprintf("action=clientlogin&username=Admin&password=%s"
			    "&logintoken=%s&loginreturnurl=http%%3A%%2F%%2F127.0.0.1%%2F",
			    pw, ltok);
	json_t *r = call(mw, true, p, false);
	check(r, "clientlogin");
	const char *st = jstr(r, "clientlogin.status");
	cr_assert(st && strcmp(st, "PASS") == 0, "clientlogin as Admin: %s (%s)",
		  st ? st : "?", jstr(r, "clientlogin.message"));
	json_decref(r);
	json_decref(t);
	free(p);
	free(pw);
	free(ltok);

	json_t *c = call_ok(mw, false, "action=query&meta=tokens&type=csrf",
			    "csrf token");
	const char *csrf = jstr(c, "query.tokens.csrftoken");
	cr_assert(csrf && strcmp(csrf, "+\\") != 0, "no CSRF token after login");
	mw->csrf = xstrdup(csrf);
	json_decref(c);
}

/* Runs the harness script with argv; opts set the extension's environment.
 * Returns its exit status. */
static int run_script(const struct mw *mw, const char *cmd,
		      const struct mw_opts *o)
{
	char owner[32];
	snprintf(owner, sizeof owner, "%ld", (long)getpid());
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* The server goes when this process goes, even if the test
		 * crashes or times out before mw_stop(). */
		setenv("FRESHET_MW_OWNER_PID", owner, 1);
		setenv("FRESHET_MW_HOST", mw->host, 1);
		if (mw->netns && test_netns_join(mw->netns) != 0)
			_exit(126);
		if (o && o->freshet) {
			char num[32];
			setenv("FRESHET_MW_EXTENSION", "1", 1);
			if (o->redis_socket)
				setenv("FRESHET_MW_REDIS_SOCKET", o->redis_socket, 1);
			if (o->redis_host)
				setenv("FRESHET_MW_REDIS_HOST", o->redis_host, 1);
			if (o->redis_port > 0) {
				snprintf(num, sizeof num, "%d", o->redis_port);
				setenv("FRESHET_MW_REDIS_PORT", num, 1);
			}
			if (o->redis_password)
				setenv("FRESHET_MW_REDIS_PASSWORD", o->redis_password, 1);
			if (o->partitions > 0) {
				snprintf(num, sizeof num, "%d", o->partitions);
				setenv("FRESHET_MW_PARTITIONS", num, 1);
			}
			if (o->spool_dir)
				setenv("FRESHET_MW_SPOOL_DIR", o->spool_dir, 1);
			else
				setenv("FRESHET_MW_SPOOL", mw->spool, 1);
			if (o->redis_retry_after) {
				snprintf(num, sizeof num, "%d",
					 o->redis_retry_after < 0 ? 0 : o->redis_retry_after);
				setenv("FRESHET_MW_RETRY_AFTER", num, 1);
			}
			if (o->spool_max_bytes > 0) {
				snprintf(num, sizeof num, "%ld", o->spool_max_bytes);
				setenv("FRESHET_MW_SPOOL_MAX", num, 1);
			}
		} else {
			unsetenv("FRESHET_MW_EXTENSION");
			unsetenv("FRESHET_MW_REDIS_HOST");
			unsetenv("FRESHET_MW_REDIS_SOCKET");
		}
		if (o && o->settings)
			setenv("FRESHET_MW_SETTINGS", o->settings, 1);
		else
			unsetenv("FRESHET_MW_SETTINGS");
		const char *wiki = o && o->wiki_id ? o->wiki_id : "testwiki";
		const char *lang = o && o->lang ? o->lang : "en";
		/* The script's output goes to the test's log, unbuffered. */
		if (strcmp(cmd, "start") == 0)
			execlp("sh", "sh", mw->script, cmd, mw->dir, wiki, lang,
			       (char *)NULL);
		else
			execlp("sh", "sh", mw->script, cmd, mw->dir, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

struct mw *mw_start(const struct mw_opts *opts)
{
	struct mw *mw = calloc(1, sizeof *mw);
	cr_assert_not_null(mw, "out of memory");
	static bool curl_ready;
	if (!curl_ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		curl_ready = true;
	}
	if (opts && opts->dir) {
		mw->dir = xstrdup(opts->dir);
	} else {
		mw->dir = test_mkdtemp("mw");
		mw->own_dir = true;
	}
	mw->script = test_srcpath("tests/integration/mediawiki.sh");
	mw->netns = opts && opts->netns ? xstrdup(opts->netns) : NULL;
	mw->host = xstrdup(opts && opts->host ? opts->host : "127.0.0.1");
	if (opts && opts->spool_dir)
		mw->spool = xasprintf("%s/freshet-spool-%s.jsonl", opts->spool_dir,
				      opts->wiki_id ? opts->wiki_id : "testwiki");
	else
		mw->spool = opts && opts->spool ? xstrdup(opts->spool)
					       : xasprintf("%s/freshet-spool.jsonl", mw->dir);
	int rc = run_script(mw, "start", opts);
	cr_assert_eq(rc, 0, "mediawiki.sh start %s failed (exit %d); see %s/server.log",
		     mw->dir, rc, mw->dir);
	mw->api = read_line(mw->dir, "api");
	mw->wiki_id = read_line(mw->dir, "wiki_id");
	mw->password = read_line(mw->dir, "password");
	char *port = read_line(mw->dir, "port");
	mw->port = atoi(port);
	free(port);
	mw->rest = xasprintf("http://%s:%d/rest.php", mw->host, mw->port);

	mw->share = curl_share_init();
	cr_assert_not_null(mw->share);
	curl_share_setopt(mw->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
	mw->curl = new_handle(mw);
	login(mw);
	return mw;
}

void mw_pause(struct mw *mw)
{
	int rc = run_script(mw, "stop", NULL);
	cr_assert_eq(rc, 0, "mediawiki.sh stop %s failed (exit %d)", mw->dir, rc);
}

void mw_resume(struct mw *mw)
{
	int rc = run_script(mw, "resume", NULL);
	cr_assert_eq(rc, 0, "mediawiki.sh resume %s failed (exit %d); see %s/server.log",
		     mw->dir, rc, mw->dir);
	/* A fresh session: the old one may have expired meanwhile. */
	curl_easy_setopt(mw->curl, CURLOPT_COOKIELIST, "ALL");
	free(mw->csrf);
	mw->csrf = NULL;
	login(mw);
}

void mw_stop(struct mw *mw)
{
	if (!mw)
		return;
	if (mw->dir) {
		int rc = run_script(mw, "stop", NULL);
		if (rc != 0)
			cr_log_error("mediawiki.sh stop %s: exit %d", mw->dir, rc);
		if (mw->own_dir)
			test_rmtree(mw->dir);
	}
	if (mw->curl)
		curl_easy_cleanup(mw->curl);
	if (mw->share)
		curl_share_cleanup(mw->share);
	free(mw->csrf);
	free(mw->dir);
	free(mw->script);
	free(mw->api);
	free(mw->rest);
	free(mw->wiki_id);
	free(mw->spool);
	free(mw->password);
	free(mw->netns);
	free(mw->host);
	free(mw);
}

const char *mw_api_url(const struct mw *mw) { return mw->api; }
const char *mw_rest_url(const struct mw *mw) { return mw->rest; }
const char *mw_dir(const struct mw *mw) { return mw->dir; }
const char *mw_wiki_id(const struct mw *mw) { return mw->wiki_id; }
const char *mw_spool_path(const struct mw *mw) { return mw->spool; }
const char *mw_password(const struct mw *mw) { return mw->password; }
int mw_port(const struct mw *mw) { return mw->port; }

static char *edit_params(const char *title, const char *text)
{
	char *t = esc(title), *x = esc(text);
	char *p = xasprintf("action=edit&title=%s&text=%s&summary=test", t, x);
	free(t);
	free(x);
	return p;
}

/* Reads an action=edit answer: returns true for a new revision. */
static bool edit_result(struct mw *mw, json_t *j, const char *title,
			long *page_id, long *rev_id)
{
	json_t *e = json_object_get(j, "edit");
	const char *res = json_string_value(json_object_get(e, "result"));
	cr_assert(res && strcmp(res, "Success") == 0, "edit of %s: result %s",
		  title, res ? res : "(none)");
	bool nochange = json_is_true(json_object_get(e, "nochange"));
	long pid = (long)json_integer_value(json_object_get(e, "pageid"));
	long rid = (long)json_integer_value(json_object_get(e, "newrevid"));
	if (nochange) {
		struct mw_page_info info;
		cr_assert(mw_page_info_id(mw, pid, &info), "page %ld vanished", pid);
		rid = info.rev_id;
	}
	cr_assert(pid > 0 && rid > 0, "edit of %s: no page or revision id", title);
	if (page_id)
		*page_id = pid;
	if (rev_id)
		*rev_id = rid;
	return !nochange;
}

bool mw_edit(struct mw *mw, const char *title, const char *text,
	     long *page_id, long *rev_id)
{
	char *p = edit_params(title, text);
	json_t *j = call_ok(mw, true, p, "edit");
	bool made = edit_result(mw, j, title, page_id, rev_id);
	json_decref(j);
	free(p);
	return made;
}

void mw_delete(struct mw *mw, const char *title)
{
	char *t = esc(title);
	char *p = xasprintf("action=delete&title=%s&reason=test", t);
	json_t *j = call_ok(mw, true, p, "delete");
	cr_assert_not_null(json_object_get(j, "delete"), "delete of %s", title);
	json_decref(j);
	free(p);
	free(t);
}

void mw_undelete(struct mw *mw, const char *title, long *page_id)
{
	char *t = esc(title);
	char *p = xasprintf("action=undelete&title=%s&reason=test", t);
	json_t *j = call_ok(mw, true, p, "undelete");
	json_int_t revs = json_integer_value(json_object_get(
		json_object_get(j, "undelete"), "revisions"));
	cr_assert(revs > 0, "undelete of %s restored no revision", title);
	json_decref(j);
	free(p);
	free(t);
	struct mw_page_info info;
	cr_assert(mw_page_info(mw, title, &info), "%s missing after undelete", title);
	if (page_id)
		*page_id = info.page_id;
}

void mw_move(struct mw *mw, const char *from, const char *to,
	     bool leave_redirect)
{
	char *f = esc(from), *t = esc(to);
	char *p = xasprintf("action=move&from=%s&to=%s&reason=test&movetalk=1%s",
			    f, t, leave_redirect ? "" : "&noredirect=1");
	json_t *j = call_ok(mw, true, p, "move");
	cr_assert_not_null(json_object_get(j, "move"), "move of %s", from);
	json_decref(j);
	free(p);
	free(f);
	free(t);
}

void mw_set_language(struct mw *mw, const char *title, const char *lang)
{
	char *t = esc(title);
	char *l = esc(lang && *lang ? lang : "default");
	char *p = xasprintf("action=setpagelanguage&title=%s&lang=%s&reason=test",
			    t, l);
	json_t *j = call_ok(mw, true, p, "setpagelanguage");
	json_decref(j);
	free(p);
	free(l);
	free(t);
}

static bool page_info(struct mw *mw, const char *sel, struct mw_page_info *info)
{
	char *p = xasprintf("action=query&prop=info&%s", sel);
	json_t *j = call_ok(mw, false, p, "query prop=info");
	json_t *pg = json_array_get(json_object_get(json_object_get(j, "query"),
						    "pages"), 0);
	cr_assert_not_null(pg, "query prop=info (%s): no page in the answer", sel);
	cr_assert_not(json_is_true(json_object_get(pg, "invalid")),
		      "query prop=info (%s): invalid title: %s", sel,
		      json_string_value(json_object_get(pg, "invalidreason")));
	memset(info, 0, sizeof *info);
	info->exists = !json_is_true(json_object_get(pg, "missing"));
	info->ns = (int)json_integer_value(json_object_get(pg, "ns"));
	const char *t = json_string_value(json_object_get(pg, "title"));
	snprintf(info->title, sizeof info->title, "%s", t ? t : "");
	const char *l = json_string_value(json_object_get(pg, "pagelanguage"));
	snprintf(info->lang, sizeof info->lang, "%s", l ? l : "");
	if (info->exists) {
		info->page_id = (long)json_integer_value(json_object_get(pg, "pageid"));
		info->rev_id = (long)json_integer_value(json_object_get(pg, "lastrevid"));
		info->is_redirect = json_is_true(json_object_get(pg, "redirect"));
	}
	json_decref(j);
	free(p);
	return info->exists;
}

bool mw_page_info(struct mw *mw, const char *title, struct mw_page_info *info)
{
	char *t = esc(title);
	char *sel = xasprintf("titles=%s", t);
	bool r = page_info(mw, sel, info);
	free(sel);
	free(t);
	return r;
}

bool mw_page_info_id(struct mw *mw, long page_id, struct mw_page_info *info)
{
	char *sel = xasprintf("pageids=%ld", page_id);
	bool r = page_info(mw, sel, info);
	free(sel);
	return r;
}

/* Appends every key=value of a "continue" object to a query string. */
static char *with_continue(const char *base, json_t *cont)
{
	char *q = xstrdup(base);
	const char *k;
	json_t *v;
	json_object_foreach(cont, k, v) {
		const char *s = json_string_value(v);
		char *e = esc(s ? s : "");
		char *n = xasprintf("%s&%s=%s", q, k, e);
		free(e);
		free(q);
		q = n;
	}
	return q;
}

struct mw_page_list *mw_all_pages(struct mw *mw)
{
	struct mw_page_list *list = calloc(1, sizeof *list);
	cr_assert_not_null(list);
	size_t cap = 0;
	json_t *si = call_ok(mw, false, "action=query&meta=siteinfo&siprop=namespaces",
			     "siteinfo");
	json_t *nss = json_object_get(json_object_get(si, "query"), "namespaces");
	const char *key;
	json_t *ns;
	json_object_foreach(nss, key, ns) {
		json_int_t id = json_integer_value(json_object_get(ns, "id"));
		if (id < 0)
			continue;
		char *base = xasprintf("action=query&list=allpages&aplimit=max"
				       "&apnamespace=%lld", (long long)id);
		json_t *cont = NULL;
		for (;;) {
			char *q = with_continue(base, cont);
			json_t *j = call_ok(mw, false, q, "list=allpages");
			free(q);
			json_t *pages = json_object_get(json_object_get(j, "query"),
							"allpages");
			size_t i;
			json_t *pg;
			json_array_foreach(pages, i, pg) {
				if (list->n == cap) {
					cap = cap ? cap * 2 : 64;
					list->pages = realloc(list->pages,
							      cap * sizeof *list->pages);
					cr_assert_not_null(list->pages);
				}
				struct mw_page *p = &list->pages[list->n++];
				p->page_id = (long)json_integer_value(
					json_object_get(pg, "pageid"));
				p->ns = (int)json_integer_value(json_object_get(pg, "ns"));
				p->title = xstrdup(json_string_value(
					json_object_get(pg, "title")));
			}
			json_decref(cont);
			cont = json_incref(json_object_get(j, "continue"));
			json_decref(j);
			if (!cont)
				break;
		}
		free(base);
	}
	json_decref(si);
	return list;
}

void mw_page_list_free(struct mw_page_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->n; i++)
		free(list->pages[i].title);
	free(list->pages);
	free(list);
}

/* One edit in flight in mw_seed(). */
struct seed_slot {
	CURL *c;
	struct body b;
	char *req;        /* POST body, alive during the transfer */
	char *params;
	size_t idx;
	int tries;
	bool busy;
};

/* True if j is an error that a retry may cure (SQLite lock contention). */
static bool seed_retryable(json_t *j)
{
	const char *code = jstr(j, "error.code");
	if (!code)
		return false;
	return strstr(code, "DBQueryError") || strstr(code, "internal_api_error") ||
	       strcmp(code, "editconflict") == 0;
}

static void seed_submit(struct mw *mw, CURLM *m, struct seed_slot *s)
{
	s->req = prepare(mw, s->c, true, s->params, true, &s->b);
	s->busy = true;
	curl_multi_add_handle(m, s->c);
}

void mw_seed(struct mw *mw, size_t n, const char *const *titles,
	     const char *const *texts, long *page_ids, long *rev_ids)
{
	CURLM *m = curl_multi_init();
	cr_assert_not_null(m);
	struct seed_slot slots[MW_SEED_PARALLEL] = { 0 };
	size_t next = 0, done = 0;
	for (int i = 0; i < MW_SEED_PARALLEL; i++)
		slots[i].c = new_handle(mw);
	while (done < n) {
		for (int i = 0; i < MW_SEED_PARALLEL && next < n; i++) {
			struct seed_slot *s = &slots[i];
			if (s->busy)
				continue;
			s->idx = next++;
			s->tries = 1;
			s->params = edit_params(titles[s->idx], texts[s->idx]);
			seed_submit(mw, m, s);
		}
		int running;
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct seed_slot *s = NULL;
			for (int i = 0; i < MW_SEED_PARALLEL; i++)
				if (slots[i].c == msg->easy_handle)
					s = &slots[i];
			cr_assert_not_null(s);
			CURLcode rc = msg->data.result;
			curl_multi_remove_handle(m, s->c);
			json_t *j = decode(rc, s->c, &s->b, "seed edit");
			free(s->req);
			s->req = NULL;
			if (seed_retryable(j) && s->tries < MW_SEED_RETRIES) {
				json_decref(j);
				s->tries++;
				usleep(50000 * s->tries);
				seed_submit(mw, m, s);
				continue;
			}
			check(j, titles[s->idx]);
			long pid, rid;
			edit_result(mw, j, titles[s->idx], &pid, &rid);
			if (page_ids)
				page_ids[s->idx] = pid;
			if (rev_ids)
				rev_ids[s->idx] = rid;
			json_decref(j);
			free(s->params);
			s->params = NULL;
			s->busy = false;
			done++;
		}
		if (done < n)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	for (int i = 0; i < MW_SEED_PARALLEL; i++)
		curl_easy_cleanup(slots[i].c);
	curl_multi_cleanup(m);
}

void mw_run_jobs(struct mw *mw)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		char *conf = xasprintf("%s/LocalSettings.php", mw->dir);
		setenv("MW_CONFIG_FILE", conf, 1);
		if (chdir("/usr/share/mediawiki") != 0)
			_exit(126);
		/* Its chatter ("job ... good") would drown the test's log. */
		FILE *f = freopen("/dev/null", "w", stdout);
		(void)f;
		execlp("php", "php", "maintenance/runJobs.php",
		       (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "runJobs.php for %s failed", mw->dir);
}
