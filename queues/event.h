/* SPDX-License-Identifier: MIT */
/*
 * event.h: decoding of page change events into a small C struct.
 *
 * Accepted formats (anything else is a decode error):
 *   - Wikimedia's mediawiki/page/change 1.x ("$schema" starting with
 *     "/mediawiki/page/change/1."), every page_change_kind: create, edit,
 *     delete, undelete, move, visibility_change;
 *   - mediawiki/cirrussearch/page_rerender 1.0 ("/mediawiki/cirrussearch/
 *     page_rerender/1.").
 * Unknown keys are ignored.  A missing required key, a wrong type, an id out
 * of range (ids are 1 .. 2^53-1 so they survive any JSON parser), a title
 * that is empty or longer than 255 bytes (MediaWiki's limit), invalid UTF-8
 * or invalid JSON is a decode error whose message starts with the JSON path
 * of the offending value ("page.page_id: ...", "$: invalid JSON ...").
 *
 * The decoder only reads the event; the event is a trigger, not the truth:
 * the worker fetches the page's current state.
 *
 * Thread rules: the functions keep no state; any thread may call them.
 */
#ifndef FRESHET_EVENT_H
#define FRESHET_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* MediaWiki's limit on a title in bytes (page.page_title is a varbinary(255)). */
#define EVENT_TITLE_MAX 255
/* The largest id accepted: 2^53 - 1 (exact in a double). */
#define EVENT_ID_MAX INT64_C(9007199254740991)

enum event_kind {
	EVENT_CREATE,            /* a new page (also the redirect left by a move) */
	EVENT_EDIT,              /* a new revision of an existing page */
	EVENT_DELETE,            /* the page is gone (rev_id may be 0) */
	EVENT_UNDELETE,          /* the page is back; maybe with a new page id */
	EVENT_MOVE,              /* renamed: prior_title/prior_namespace are the old name */
	EVENT_VISIBILITY_CHANGE, /* revision visibility changed (suppression) */
	EVENT_RERENDER,          /* cirrussearch page_rerender: same revision, rerender */
	EVENT_KIND__COUNT
};

/*
 * A decoded event.  It owns every pointer in it; free it with event_free().
 * Strings are NUL-terminated, valid UTF-8.  Titles are MediaWiki db keys
 * (underscores, not spaces), as in the event.
 */
struct event {
	enum event_kind kind;
	char *wiki;               /* wiki_id, never NULL, never empty */
	int64_t page_id;          /* >= 1 */
	char *title;              /* page.page_title (page_title for rerenders) */
	int64_t namespace_id;     /* may be negative only for special namespaces: -2 .. */
	int64_t rev_id;           /* revision.rev_id; 0 when absent (delete, rerender) */
	int64_t time_ms;          /* meta.dt (else dt) as Unix milliseconds, UTC */
	int64_t prior_page_id;    /* undelete: prior_state.page.page_id, else 0 */
	char *prior_title;        /* move: prior_state.page.page_title, else NULL */
	int64_t prior_namespace_id; /* move: prior_state.page.namespace_id, else 0 */
	int64_t redirect_page_id; /* move: created_redirect_page.page_id, else 0 */
	int is_redirect;          /* page.is_redirect (or is_redirect), 0 if absent */
};

/* Where a decode error is reported: the JSON path of the offending value
 * ("page.page_id", "$" for the document itself) and a sentence naming the
 * problem.  text is "<path>: <problem>". */
struct event_error {
	char path[128];
	char text[384];
};

/*
 * Decodes len bytes of JSON (need not be NUL-terminated; embedded NULs are an
 * error).  On success sets *out to a new event (caller frees with
 * event_free()) and returns STATUS_OK.  On a malformed event returns
 * STATUS_DECODE, fills *err (if err is not NULL) and leaves *out unset.
 * Out of memory aborts (xmalloc).
 */
enum status event_decode(const char *json, size_t len, struct event **out,
                         struct event_error *err);

/* Frees ev and everything it owns.  NULL is a no-op. */
void event_free(struct event *ev);

/* Returns a deep copy of ev (caller frees with event_free()). */
struct event *event_dup(const struct event *ev);

/* Returns the page_change_kind name ("create", ..., "rerender") of k;
 * never NULL ("invalid" for an out-of-range value). */
const char *event_kind_str(enum event_kind k);

/*
 * Encodes a minimal mediawiki/page/change 1.1.0 event (or a page_rerender
 * 1.0.0 event for EVENT_RERENDER) that event_decode() reads back to the same
 * fields.  Used by `reindex-page --queue` and by tests.  Returns a new
 * NUL-terminated string (caller frees).  ev->time_ms 0 means "now".
 */
char *event_encode(const struct event *ev);

#endif
