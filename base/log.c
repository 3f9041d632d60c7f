/* SPDX-License-Identifier: MIT */
/*
 * log.c: logfmt lines on stderr.  Each line is formatted into a local buffer
 * and written with one write(2) so that concurrent threads never interleave
 * inside a line.
 */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
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

/* True for a byte written as \xNN: C0 controls and DEL. */
static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Copies len bytes of in to out (at most cap bytes, never cutting an
 * escape), each control byte as \xNN; returns the bytes written.  C1
 * controls (U+0080-U+009F) are escaped too, byte by byte. */
static size_t escape_ctl(char *out, size_t cap, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		bool c1 = (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 &&
			   s[i + 1] <= 0x9f) ||
			  (i > 0 && s[i - 1] == 0xc2 && s[i] >= 0x80 && s[i] <= 0x9f);
		if (!is_ctl(s[i]) && !c1) {
			if (o + 1 > cap)
				break;
			out[o++] = (char)s[i];
			continue;
		}
		if (o + 4 > cap)
			break;
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[s[i] >> 4];
		out[o++] = hex[s[i] & 15];
	}
	return o;
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
	/* A value that skipped log_quote() still cannot put a control
	 * character on the operator's terminal or split the line. */
	char safe[sizeof line];
	size_t o = escape_ctl(safe, sizeof safe - 1, line, len);
	safe[o++] = '\n';
	ssize_t w = write(STDERR_FILENO, safe, o);
	(void)w;
}

const char *log_quote(const char *s)
{
	static _Thread_local char ring[4][512];
	static _Thread_local int next;
	if (!s)
		return "\"\"";
	bool plain = *s != '\0';
	for (const unsigned char *c = (const unsigned char *)s; *c && plain; c++)
		plain = !is_ctl(*c) && *c != 0xc2 && !strchr(" \"=\\", *c);
	if (plain)
		return s;
	char *out = ring[next++ & 3];
	size_t o = 0;
	out[o++] = '"';
	for (; *s && o < 507; s++) {
		if (*s == '"' || *s == '\\') {
			out[o++] = '\\';
			out[o++] = *s;
		} else {
			/* Control characters as \xNN, whole escapes only. */
			size_t k = 1;
			if ((unsigned char)*s == 0xc2 && s[1])
				k = 2;
			size_t w = escape_ctl(out + o, 507 - o, s, k);
			if (w == 0)
				break;
			o += w;
			s += k - 1;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
