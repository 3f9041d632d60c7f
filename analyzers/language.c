/* SPDX-License-Identifier: MIT */
/*
 * language.c: the language table (see language.h) and its two lookups.
 *
 * The rows are in the order the plugins list their languages.  Each code
 * appears once; a code is served by exactly the plugin its row names, which
 * is what keeps two plugins from claiming one language (the loader refuses
 * the second).  Compiled into libfreshet and into every plugin, so it uses
 * nothing but the C library.
 */
#include "language.h"

#include <string.h>

static const char *const elisions_fr[] = {
	"c", "d", "j", "l", "m", "n", "s", "t", "qu", "jusqu", "quoiqu",
	"lorsqu", "puisqu", NULL
};
static const char *const elisions_it[] = {
	"c", "l", "all", "dall", "dell", "nell", "sull", "coll", "pell", "gl",
	"agl", "dagl", "degl", "negl", "sugl", "un", "m", "t", "s", "v", "d",
	"quest", "quell", "anch", NULL
};
static const char *const elisions_ca[] = {
	"d", "l", "m", "n", "s", "t", NULL
};

/* code, plugin, stemmer, elision, possessive, turkish, german, cjk, keep */
static const struct language languages[] = {
	{ "ar", "snowball", "arabic", NULL, false, false, false, false, NULL },
	{ "hy", "snowball", "armenian", NULL, false, false, false, false, NULL },
	{ "eu", "snowball", "basque", NULL, false, false, false, false, "ñ" },
	{ "ca", "snowball", "catalan", elisions_ca, false, false, false, false, "ç" },
	{ "da", "snowball", "danish", NULL, false, false, false, false, "åæø" },
	{ "nl", "snowball", "dutch", NULL, false, false, false, false, NULL },
	{ "en", "snowball", "english", NULL, true, false, false, false, NULL },
	{ "fi", "snowball", "finnish", NULL, false, false, false, false, "åäö" },
	{ "fr", "snowball", "french", elisions_fr, false, false, false, false, NULL },
	{ "de", "snowball", "german", NULL, false, false, true, false, NULL },
	{ "el", "snowball", "greek", NULL, false, false, false, false, NULL },
	{ "hi", "snowball", "hindi", NULL, false, false, false, false, NULL },
	{ "hu", "snowball", "hungarian", NULL, false, false, false, false, NULL },
	{ "id", "snowball", "indonesian", NULL, false, false, false, false, NULL },
	{ "ga", "snowball", "irish", NULL, false, false, false, false, NULL },
	{ "it", "snowball", "italian", elisions_it, false, false, false, false, NULL },
	{ "lt", "snowball", "lithuanian", NULL, false, false, false, false, NULL },
	{ "ne", "snowball", "nepali", NULL, false, false, false, false, NULL },
	{ "no", "snowball", "norwegian", NULL, false, false, false, false, "åæø" },
	{ "nb", "snowball", "norwegian", NULL, false, false, false, false, "åæø" },
	{ "nn", "snowball", "norwegian", NULL, false, false, false, false, "åæø" },
	{ "pt", "snowball", "portuguese", NULL, false, false, false, false, NULL },
	{ "ro", "snowball", "romanian", NULL, false, false, false, false, NULL },
	{ "ru", "snowball", "russian", NULL, false, false, false, false, NULL },
	{ "sr", "snowball", "serbian", NULL, false, false, false, false, NULL },
	{ "es", "snowball", "spanish", NULL, false, false, false, false, "ñ" },
	{ "sv", "snowball", "swedish", NULL, false, false, false, false, "åäö" },
	{ "ta", "snowball", "tamil", NULL, false, false, false, false, NULL },
	{ "tr", "snowball", "turkish", NULL, false, true, false, false, "çğöşü" },
	{ "yi", "snowball", "yiddish", NULL, false, false, false, false, NULL },
	{ "zh", "cjk", NULL, NULL, false, false, false, true, NULL },
	{ "ja", "cjk", NULL, NULL, false, false, false, true, NULL },
	{ "ko", "cjk", NULL, NULL, false, false, false, true, NULL },
	{ "th", "sea", NULL, NULL, false, false, false, false, NULL },
	{ "lo", "sea", NULL, NULL, false, false, false, false, NULL },
	{ "km", "sea", NULL, NULL, false, false, false, false, NULL },
	{ "my", "sea", NULL, NULL, false, false, false, false, NULL },
};

#define N_LANGUAGES (sizeof languages / sizeof languages[0])

/* The row whose code is exactly code[0..n), or NULL. */
static const struct language *find_n(const char *code, size_t n)
{
	for (size_t i = 0; i < N_LANGUAGES; i++)
		if (strlen(languages[i].code) == n &&
		    memcmp(languages[i].code, code, n) == 0)
			return &languages[i];
	return NULL;
}

const struct language *language_find(const char *code)
{
	if (!code || !*code)
		return NULL;
	const struct language *l = find_n(code, strlen(code));
	return l ? l : find_n(code, strcspn(code, "-_"));
}

size_t language_codes(const char *plugin, const char **out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < N_LANGUAGES; i++) {
		if (strcmp(languages[i].plugin, plugin) != 0)
			continue;
		if (n < cap)
			out[n] = languages[i].code;
		n++;
	}
	return n;
}
