/* SPDX-License-Identifier: MIT */
/*
 * loader.c: loads analyzer plugins and picks one per language.
 *
 * A struct loader is filled in main before threads start and is read-only
 * afterwards, which is what makes loader_pick() and analyzer_open() safe
 * from any thread without a lock.  Each loaded plugin keeps its dlopen
 * handle and the table its entry returned; the table is copied into a
 * zero-filled struct of this host's size, so members a plugin built against
 * an older (smaller) table lacks read as NULL.  A plugin is refused with a
 * "<path>: <reason>" message (kept and logged) and the loading goes on.
 *
 * struct analyzer wraps one plugin instance for one thread: the table, the
 * instance and the last error message.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "log.h"
#include "xmalloc.h"

struct plugin {
	char *path;
	void *dl;
	struct freshet_analyzer_api api;   /* copy, zero-filled past struct_size */
};

struct loader {
	struct plugin *plugins;
	size_t count;
	char **refused;
	size_t nrefused;
	char err[512];
};

struct analyzer {
	const struct freshet_analyzer_api *api;
	struct freshet_analyzer *inst;
	char lang[64];
	char err[512];
};

const char *loader_default_dir(const char *configured)
{
	const char *env = getenv("FRESHET_ANALYZER_DIR");
	if (env && *env)
		return env;
	if (configured && *configured)
		return configured;
	return PKGLIBDIR;
}

struct loader *loader_new(void)
{
	return xcalloc(1, sizeof(struct loader));
}

void loader_free(struct loader *ld)
{
	if (!ld)
		return;
	for (size_t i = 0; i < ld->count; i++) {
		dlclose(ld->plugins[i].dl);
		free(ld->plugins[i].path);
	}
	for (size_t i = 0; i < ld->nrefused; i++)
		free(ld->refused[i]);
	free(ld->plugins);
	free(ld->refused);
	free(ld);
}

/* Records and logs a refusal; returns st. */
static enum status refuse(struct loader *ld, void *dl, const char *path,
                          enum status st, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static enum status refuse(struct loader *ld, void *dl, const char *path,
                          enum status st, const char *fmt, ...)
{
	char reason[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	snprintf(ld->err, sizeof ld->err, "%s: %s", path, reason);
	ld->refused = xrealloc(ld->refused, (ld->nrefused + 1) * sizeof *ld->refused);
	ld->refused[ld->nrefused++] = xstrdup(ld->err);
	log_warn("msg=\"analyzer plugin refused\" file=%s reason=%s",
	         log_quote(path), log_quote(reason));
	if (dl)
		dlclose(dl);
	return st;
}

/* Which loaded plugin serves code exactly (NULL if none)? */
static const struct plugin *serving(const struct loader *ld, const char *code)
{
	for (size_t i = 0; i < ld->count; i++)
		for (const char *const *l = ld->plugins[i].api.languages; *l; l++)
			if (strcmp(*l, code) == 0)
				return &ld->plugins[i];
	return NULL;
}

enum status loader_load_file(struct loader *ld, const char *path)
{
	ld->err[0] = 0;
	dlerror();
	/* RTLD_NODELETE: ICU and libstemmer keep process-wide caches; unloading
	 * them at exit would turn those into leaks (and unsymbolised traces). */
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!dl) {
		const char *m = dlerror();
		return refuse(ld, NULL, path, STATUS_INVALID, "dlopen failed: %s",
		              m ? m : "unknown error");
	}
	freshet_analyzer_entry_fn entry;
	void *sym = dlsym(dl, FRESHET_ANALYZER_ENTRY);
	if (!sym)
		return refuse(ld, dl, path, STATUS_INVALID,
		              "no entry symbol %s (not a freshet analyzer plugin?)",
		              FRESHET_ANALYZER_ENTRY);
	memcpy(&entry, &sym, sizeof entry);
	const struct freshet_analyzer_api *t = entry();
	if (!t)
		return refuse(ld, dl, path, STATUS_INVALID, "entry returned NULL");
	if (t->abi_version != FRESHET_ANALYZER_ABI_VERSION)
		return refuse(ld, dl, path, STATUS_VERSION,
		              "ABI version %u, this program needs %u",
		              (unsigned)t->abi_version, (unsigned)FRESHET_ANALYZER_ABI_VERSION);
	if (t->struct_size < FRESHET_ANALYZER_API_MIN_SIZE)
		return refuse(ld, dl, path, STATUS_VERSION,
		              "function table too small (%u bytes, at least %zu needed)",
		              (unsigned)t->struct_size, (size_t)FRESHET_ANALYZER_API_MIN_SIZE);
	struct plugin p = { 0 };
	size_t n = t->struct_size < sizeof p.api ? t->struct_size : sizeof p.api;
	memcpy(&p.api, t, n);
	if (!p.api.name || !*p.api.name || !p.api.version || !p.api.languages ||
	    !p.api.languages[0] || !p.api.create || !p.api.destroy ||
	    !p.api.analyze || !p.api.errmsg)
		return refuse(ld, dl, path, STATUS_INVALID,
		              "incomplete table (name, version, languages or a function missing)");
	for (size_t i = 0; i < ld->count; i++)
		if (strcmp(ld->plugins[i].api.name, p.api.name) == 0)
			return refuse(ld, dl, path, STATUS_INVALID,
			              "duplicate plugin name %s (already loaded from %s)",
			              p.api.name, ld->plugins[i].path);
	for (const char *const *l = p.api.languages; *l; l++) {
		const struct plugin *o = serving(ld, *l);
		if (o)
			return refuse(ld, dl, path, STATUS_INVALID,
			              "language %s already served by plugin %s (%s)",
			              *l, o->api.name, o->path);
	}
	p.path = xstrdup(path);
	p.dl = dl;
	ld->plugins = xrealloc(ld->plugins, (ld->count + 1) * sizeof *ld->plugins);
	ld->plugins[ld->count++] = p;
	log_debug("msg=\"analyzer plugin loaded\" file=%s name=%s version=%s",
	          log_quote(path), p.api.name, p.api.version);
	return STATUS_OK;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum status loader_load_dir(struct loader *ld, const char *dir)
{
	ld->err[0] = 0;
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(ld->err, sizeof ld->err, "%s: cannot open plugin directory: %s",
		         dir, strerror(errno));
		return STATUS_IO;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 3 && strcmp(de->d_name + l - 3, ".so") == 0) {
			names = xrealloc(names, (n + 1) * sizeof *names);
			names[n++] = xasprintf("%s/%s", dir, de->d_name);
		}
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, name_cmp);
	for (size_t i = 0; i < n; i++) {
		loader_load_file(ld, names[i]);
		free(names[i]);
	}
	free(names);
	ld->err[0] = 0;
	return STATUS_OK;
}

size_t loader_count(const struct loader *ld)
{
	return ld->count;
}

const struct freshet_analyzer_api *loader_plugin(const struct loader *ld, size_t i)
{
	return i < ld->count ? &ld->plugins[i].api : NULL;
}

size_t loader_refused_count(const struct loader *ld)
{
	return ld->nrefused;
}

const char *loader_refused(const struct loader *ld, size_t i)
{
	return i < ld->nrefused ? ld->refused[i] : NULL;
}

const char *loader_errmsg(const struct loader *ld)
{
	return ld->err;
}

enum status loader_pick(const struct loader *ld, const char *lang,
                        const struct freshet_analyzer_api **api,
                        char *lang_out, size_t cap)
{
	char code[64];
	size_t n = lang ? strlen(lang) : 0;
	if (n == 0 || n >= sizeof code || n >= cap)
		return STATUS_INVALID;
	for (size_t i = 0; i <= n; i++) {
		char c = lang[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		code[i] = c == '_' ? '-' : c;
	}
	/* de-ch -> de -> ... : try the code, then shorter prefixes at '-'. */
	char try[64];
	memcpy(try, code, n + 1);
	for (;;) {
		const struct plugin *p = serving(ld, try);
		if (p) {
			*api = &p->api;
			memcpy(lang_out, try, strlen(try) + 1);
			return STATUS_OK;
		}
		char *dash = strrchr(try, '-');
		if (!dash)
			break;
		*dash = 0;
	}
	const struct plugin *g = serving(ld, "*");
	if (!g)
		return STATUS_NOT_FOUND;
	*api = &g->api;
	memcpy(lang_out, code, n + 1);
	return STATUS_OK;
}

static enum status from_plugin(int st)
{
	switch (st) {
	case FRESHET_ANALYZER_OK: return STATUS_OK;
	case FRESHET_ANALYZER_NOMEM: return STATUS_NOMEM;
	case FRESHET_ANALYZER_INVALID: return STATUS_INVALID;
	case FRESHET_ANALYZER_UNSUPPORTED: return STATUS_NOT_FOUND;
	case FRESHET_ANALYZER_STOPPED: return STATUS_SKIPPED;
	default: return STATUS_UNKNOWN;
	}
}

enum status analyzer_open(const struct loader *ld, const char *lang,
                          const char *options, struct analyzer **out,
                          char **errmsg)
{
	struct analyzer *an = xcalloc(1, sizeof *an);
	enum status st = loader_pick(ld, lang, &an->api, an->lang, sizeof an->lang);
	if (st != STATUS_OK) {
		if (errmsg)
			*errmsg = xasprintf("no analyzer for language %s%s",
			                    lang ? lang : "(null)",
			                    st == STATUS_INVALID ? " (bad code)" : "");
		free(an);
		return st;
	}
	char buf[400] = "";
	int pst = an->api->create(an->lang, options, &an->inst, buf, sizeof buf);
	if (pst != FRESHET_ANALYZER_OK) {
		if (errmsg)
			*errmsg = xasprintf("analyzer %s for %s: %s", an->api->name, an->lang,
			                    buf[0] ? buf : "create failed");
		free(an);
		return from_plugin(pst);
	}
	*out = an;
	return STATUS_OK;
}

void analyzer_close(struct analyzer *an)
{
	if (!an)
		return;
	an->api->destroy(an->inst);
	free(an);
}

const char *analyzer_name(const struct analyzer *an)
{
	return an->api->name;
}

const char *analyzer_version(const struct analyzer *an)
{
	return an->api->version;
}

const char *analyzer_language(const struct analyzer *an)
{
	return an->lang;
}

const char *analyzer_errmsg(const struct analyzer *an)
{
	return an->err;
}

enum status analyzer_run(struct analyzer *an, enum freshet_view view,
                         unsigned flags, const char *text, size_t len,
                         freshet_token_fn cb, void *ctx)
{
	an->err[0] = 0;
	int st = an->api->analyze(an->inst, view, flags, text, len, cb, ctx);
	if (st != FRESHET_ANALYZER_OK && st != FRESHET_ANALYZER_STOPPED) {
		const char *m = an->api->errmsg(an->inst);
		snprintf(an->err, sizeof an->err, "analyzer %s (%s): %s", an->api->name,
		         an->lang, m && *m ? m : "analysis failed");
	}
	return from_plugin(st);
}

enum status analyzer_run_both(struct analyzer *an, unsigned flags,
                              const char *text, size_t len,
                              freshet_token_fn text_cb, void *text_ctx,
                              freshet_token_fn plain_cb, void *plain_ctx)
{
	if (!an->api->analyze_both) {
		enum status st = STATUS_OK;
		if (plain_cb)
			st = analyzer_run(an, FRESHET_VIEW_PLAIN, flags, text, len,
			                  plain_cb, plain_ctx);
		if (st == STATUS_OK && text_cb)
			st = analyzer_run(an, FRESHET_VIEW_TEXT, flags, text, len,
			                  text_cb, text_ctx);
		return st;
	}
	an->err[0] = 0;
	int st = an->api->analyze_both(an->inst, flags, text, len, text_cb,
	                               text_ctx, plain_cb, plain_ctx);
	if (st != FRESHET_ANALYZER_OK && st != FRESHET_ANALYZER_STOPPED) {
		const char *m = an->api->errmsg(an->inst);
		snprintf(an->err, sizeof an->err, "analyzer %s (%s): %s", an->api->name,
		         an->lang, m && *m ? m : "analysis failed");
	}
	return from_plugin(st);
}

struct collect {
	struct analyzer_terms *out;
	size_t cap;
};

static int collect_term(void *ctx, const char *term, size_t len, size_t start,
                        size_t end, uint32_t pos)
{
	struct collect *c = ctx;
	(void)start;
	(void)end;
	if (c->out->count == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 8;
		c->out->v = xrealloc(c->out->v, c->cap * sizeof *c->out->v);
	}
	struct analyzer_term *t = &c->out->v[c->out->count++];
	t->term = xstrndup(term, len);
	t->len = len;
	t->pos = pos;
	return 0;
}

enum status analyzer_query_terms(struct analyzer *an, const char *query,
                                 size_t len, struct analyzer_terms *text,
                                 struct analyzer_terms *plain)
{
	struct analyzer_terms t = { 0 }, p = { 0 };
	struct collect ct = { &t, 0 }, cp = { &p, 0 };
	enum status st = analyzer_run(an, FRESHET_VIEW_TEXT, FRESHET_ANALYZE_QUERY,
	                              query, len, collect_term, &ct);
	if (st == STATUS_OK)
		st = analyzer_run(an, FRESHET_VIEW_PLAIN, FRESHET_ANALYZE_QUERY,
		                  query, len, collect_term, &cp);
	if (st != STATUS_OK) {
		analyzer_terms_release(&t);
		analyzer_terms_release(&p);
		return st;
	}
	*text = t;
	*plain = p;
	return STATUS_OK;
}

void analyzer_terms_release(struct analyzer_terms *terms)
{
	if (!terms)
		return;
	for (size_t i = 0; i < terms->count; i++)
		free(terms->v[i].term);
	free(terms->v);
	terms->v = NULL;
	terms->count = 0;
}
