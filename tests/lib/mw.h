/* SPDX-License-Identifier: MIT */
/*
 * mw.h: a private, real MediaWiki 1.39 for the tests, driven through its API.
 *
 * mw_start() runs tests/integration/mediawiki.sh, which installs a wiki from
 * Debian's `mediawiki` package (code in /usr/share/mediawiki, untouched) into
 * a private directory: SQLite in WAL mode, jobs never run on requests
 * ($wgJobRunRate = 0, see mw_run_jobs), page languages stored in the database
 * ($wgPageLanguageUseDB), a prebuilt localisation cache for en, de, fr, ru,
 * ja and zh.  It serves the wiki with `php -S 127.0.0.1:<port>` (4 workers)
 * under its own process group, and logs in as the administrator `Admin`.
 * The first start on a machine builds a template (about 2 s) under
 * $FRESHET_MW_CACHE or /tmp/freshet-mw-template-<version>-<format>-<uid>;
 * every later start copies it: a start takes about 1.5 s, a stop 0.2 s.
 *
 * Failures: every function here fails the running Criterion test
 * (cr_assert_fail) with MediaWiki's error code and info when the server or
 * the API refuses; nothing returns an error code.  So these functions are
 * for Criterion tests (and their .init/.fini fixtures) only.
 *
 * Threads: a struct mw holds one curl handle with the login cookies; use it
 * from one thread at a time.  Several struct mw (several wikis) may run in
 * one process or in parallel test binaries: each has its own directory and
 * port.
 *
 * Titles are passed as MediaWiki accepts them ("Talk:Foo bar" or
 * "Talk:Foo_bar"); titles returned are as MediaWiki shows them (spaces).
 */
#ifndef FRESHET_MW_H
#define FRESHET_MW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct mw;

/* Options of mw_start(); every field may be zero/NULL for its default. */
struct mw_opts {
	const char *wiki_id;   /* $wgDBname and so the event's wiki_id ["testwiki"] */
	const char *lang;      /* content language, one of en de fr ru ja zh ["en"] */
	const char *dir;       /* directory for the wiki; must exist and be empty
				  [a new test_mkdtemp("mw"), removed by mw_stop] */
	/* The Freshet extension (contrib/mediawiki/Freshet) is loaded when
	 * freshet is true; it then publishes to the Redis server named here. */
	bool freshet;
	const char *redis_socket;   /* unix socket path; wins over host/port */
	const char *redis_host;     /* ["127.0.0.1"] */
	int redis_port;             /* [6379] */
	const char *redis_password; /* [none] */
	int partitions;             /* $wgFreshetPartitions [extension default 4] */
	const char *spool;          /* spool file when Redis is down
				       [<dir>/freshet-spool.jsonl] */
	const char *spool_dir;      /* $wgFreshetSpoolDir instead of a spool
				       file: the spool is then
				       <spool_dir>/freshet-spool-<wiki>.jsonl */
	int redis_retry_after;      /* $wgFreshetRedisRetryAfter, seconds;
				       0: the extension's default, -1: 0 */
	long spool_max_bytes;       /* $wgFreshetSpoolMaxBytes [extension's] */
	/* PHP lines appended last to LocalSettings.php (e.g. the search
	 * settings "$wgSearchType = 'freshet';"), or NULL.  They stay for
	 * mw_resume().  With freshet false they may load the extension
	 * themselves. */
	const char *settings;
	/* Where the wiki serves, for tests across network namespaces
	 * (netns.h): the server runs inside the named namespace (NULL: the
	 * caller's) and listens on host [127.0.0.1], an address of that
	 * namespace.  The URLs name host; the caller must be able to reach
	 * it. */
	const char *netns;
	const char *host;
};

/* Starts a wiki and logs in as Admin.  opts may be NULL (all defaults).
 * Returns the handle (owned by the caller, freed by mw_stop); fails the test
 * if the wiki does not start within 60 s.  The server is tied to the calling
 * process: if that process ends without mw_stop() (a crash, a Criterion
 * timeout), a watchdog stops the server within a few seconds. */
struct mw *mw_start(const struct mw_opts *opts);

/* Stops the server (its whole process group, by pid), removes the directory
 * unless it was given in opts->dir, and frees mw.  NULL is a no-op. */
void mw_stop(struct mw *mw);

/* Stops the server but keeps the wiki's directory and data, as a MediaWiki
 * outage would.  Calls other than mw_resume() and mw_stop() fail the test
 * while the wiki is paused. */
void mw_pause(struct mw *mw);

/* Serves the paused wiki again, with its data, on the same port (so the
 * same URLs), and logs in again. */
void mw_resume(struct mw *mw);

/* Accessors; the strings are owned by mw and valid until mw_stop(). */
const char *mw_api_url(const struct mw *mw);   /* http://<host>:<port>/api.php */
const char *mw_rest_url(const struct mw *mw);  /* http://<host>:<port>/rest.php */
const char *mw_dir(const struct mw *mw);       /* the wiki's private directory */
const char *mw_wiki_id(const struct mw *mw);
const char *mw_spool_path(const struct mw *mw); /* extension's spool file */
const char *mw_password(const struct mw *mw);   /* Admin's password */
int mw_port(const struct mw *mw);

/* Saves text as the new content of title (creating the page if needed).
 * Sets *page_id and *rev_id (each may be NULL) to the page and its latest
 * revision after the save.  Returns true if a new revision was made, false
 * for a null edit (text identical to the current one; *rev_id is then the
 * unchanged latest revision). */
bool mw_edit(struct mw *mw, const char *title, const char *text,
	     long *page_id, long *rev_id);

/* Deletes the page title (all its revisions go to the archive). */
void mw_delete(struct mw *mw, const char *title);

/* Restores every deleted revision of title.  Sets *page_id (may be NULL)
 * to the page id after the restore (MediaWiki 1.39 usually restores the old
 * page id, but callers must not rely on it). */
void mw_undelete(struct mw *mw, const char *title, long *page_id);

/* Moves from to to (talk page too, if any).  leave_redirect keeps a redirect
 * page at from (a new page id).  The moved page keeps its page id. */
void mw_move(struct mw *mw, const char *from, const char *to,
	     bool leave_redirect);

/* Sets the page language of an existing page (action=setpagelanguage);
 * lang NULL or "" resets it to the wiki's default. */
void mw_set_language(struct mw *mw, const char *title, const char *lang);

/* What action=query&prop=info says about one page. */
struct mw_page_info {
	bool exists;
	bool is_redirect;
	long page_id;          /* 0 when !exists */
	long rev_id;           /* latest revision; 0 when !exists */
	int ns;                /* namespace id */
	char title[512];       /* as MediaWiki shows it (spaces, ns prefix) */
	char lang[32];         /* pagelanguage */
};

/* Fills *info for the page named title or with id page_id.  Returns
 * info->exists.  For a missing page id, ns is 0 and title is "". */
bool mw_page_info(struct mw *mw, const char *title, struct mw_page_info *info);
bool mw_page_info_id(struct mw *mw, long page_id, struct mw_page_info *info);

/* Every existing page of every non-negative namespace (list=allpages,
 * continued).  Owned by the caller: free with mw_page_list_free(). */
struct mw_page {
	long page_id;
	int ns;
	char *title;           /* with namespace prefix and spaces */
};
struct mw_page_list {
	size_t n;
	struct mw_page *pages; /* in no particular order */
};
struct mw_page_list *mw_all_pages(struct mw *mw);
void mw_page_list_free(struct mw_page_list *list);

/* Creates or replaces n pages at once: titles[i] gets texts[i].  Faster than
 * n calls of mw_edit (requests overlap).  page_ids and rev_ids (each may be
 * NULL) receive n values in the order of titles. */
void mw_seed(struct mw *mw, size_t n, const char *const *titles,
	     const char *const *texts, long *page_ids, long *rev_ids);

/* Runs the job queue to empty (maintenance/runJobs.php): links updates,
 * rerenders of pages that transclude an edited template.  MediaWiki's
 * timestamps have one-second resolution: a page rendered in the same second
 * as a later template edit keeps its cached rendering, so a test that checks
 * a rerender waits a second between the two edits. */
void mw_run_jobs(struct mw *mw);

/* Gives mw a connection of its own, still logged in: for a child process
 * after fork(), which must not talk on the connection it shares with its
 * parent. */
void mw_own_connection(struct mw *mw);

/* Calls the API as the logged-in Admin.  params is a URL-encoded query
 * string without format ("action=parse&pageid=3&prop=text"); format=json
 * and formatversion=2 are added.  post chooses POST (then a CSRF token is
 * added as `token`).  Returns the parsed answer (a new reference owned by
 * the caller), also when it holds {"error":...}; fails the test only when
 * the HTTP request or the JSON decoding fails. */
json_t *mw_api(struct mw *mw, bool post, const char *params);

#endif
