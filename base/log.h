/* SPDX-License-Identifier: MIT */
/*
 * log.h: one logfmt line per event of note, on stderr.
 *
 * Every line starts with time= and level=; the caller adds key=value pairs
 * (wiki=, page=, rev=, action=, duration_ms=, reason=).  Values that may hold
 * spaces or quotes go through log_quote().  Lines are written with a single
 * write(2), so threads do not interleave within a line.
 */
#ifndef FRESHET_LOG_H
#define FRESHET_LOG_H

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Sets the lowest level written (default info; FRESHET_LOG_LEVEL overrides
 * at the first call). Call before threads start. */
void log_set_level(enum log_level lvl);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *s);

void log_write(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Returns s as a logfmt value: unchanged if it needs no quoting, else
 * double-quoted with escapes.  The result lives in a per-thread ring of 4
 * buffers, so up to 4 may appear in one log_write() call. */
const char *log_quote(const char *s);

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
