/* SPDX-License-Identifier: MIT */
/*
 * redact.c: userinfo out of the URLs in a text (see redact.h).
 *
 * The scan needs no URL parser: after each "://" the authority runs to
 * the first '/', '?', '#', white space, quote or angle bracket, and its
 * userinfo is whatever precedes its last '@'.  A text without "://" is
 * copied unchanged.
 */
#include "redact.h"

#include <string.h>

#include "buf.h"

/* True for a byte that ends a URL's authority. */
static int ends_authority(char c)
{
	return c == '\0' || strchr("/?#\"'<> \t\r\n\f\v", c) != NULL;
}

char *redact_userinfo(const char *text)
{
	struct buf b = BUF_INIT;
	if (!text)
		return buf_detach(&b, NULL);
	const char *s = text;
	const char *sep;
	while ((sep = strstr(s, "://")) != NULL) {
		const char *auth = sep + 3;
		const char *end = auth;
		while (!ends_authority(*end))
			end++;
		const char *at = NULL;
		for (const char *c = auth; c < end; c++)
			if (*c == '@')
				at = c;
		buf_add(&b, s, (size_t)(auth - s));
		s = at ? at + 1 : auth;
	}
	buf_adds(&b, s);
	return buf_detach(&b, NULL);
}
