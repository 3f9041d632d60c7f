/* SPDX-License-Identifier: MIT */
/*
 * log.c: logfmt lines on stderr.  Each line is formatted into a local buffer
 * and written with one write(2) so that concurrent threads never interleave
 * inside a line.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int min_level = -1;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

void log_set_level(enum log_level lvl)
{
	min_level = (int)lvl;
}

void log_write(enum log_level lvl, const char *fmt, ...)
{
	if (min_level < 0) {
		const char *env = getenv("FRESHET_LOG_LEVEL");
		int l = env ? log_level_parse(env) : -1;
		min_level = l >= 0 ? l : LOG_LEVEL_INFO;
	}
	if ((int)lvl < min_level)
		return;

	char line[4096];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line,
			 "time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			 level_names[lvl]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

const char *log_quote(const char *s)
{
	static _Thread_local char ring[4][512];
	static _Thread_local int next;
	if (!s)
		return "\"\"";
	if (*s && !strpbrk(s, " \"=\\\t\n\r"))
		return s;
	char *out = ring[next++ & 3];
	size_t o = 0;
	out[o++] = '"';
	for (; *s && o < 507; s++) {
		if (*s == '"' || *s == '\\') {
			out[o++] = '\\';
			out[o++] = *s;
		} else if (*s == '\n' || *s == '\t' || *s == '\r') {
			out[o++] = ' ';
		} else {
			out[o++] = *s;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
