/* SPDX-License-Identifier: MIT */
/*
 * redact.h: credentials out of anything shown or stored.
 *
 * A wiki's api may carry HTTP credentials in its URL
 * (http://user:password@host/w/api.php): curl needs them for the
 * requests, but nothing else may see them.  Every URL freshet stores (a
 * document's page URL, shown in every search result) or writes into a
 * message (fetch errors, which end in dead letters and logs; page-list
 * errors; configuration errors) goes through redact_userinfo() first.
 *
 * Threads: any thread; no state.
 */
#ifndef FRESHET_REDACT_H
#define FRESHET_REDACT_H

/* Returns a copy of text in which every URL ("scheme://authority...")
 * lost its userinfo (what precedes the last '@' of the authority); the
 * rest is unchanged.  text NULL gives "".  The caller frees the result.
 * Aborts on out of memory (xmalloc). */
char *redact_userinfo(const char *text);

#endif
