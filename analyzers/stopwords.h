/* SPDX-License-Identifier: MIT */
/*
 * stopwords.h: the Snowball stopword lists compiled into the snowball plugin
 * (generated from analyzers/stopwords/<code>.stop by analyzers/stopwords/gen.sh).
 * Each list is sorted bytewise (strcmp order) so that it can be bsearched.
 */
#ifndef FRESHET_STOPWORDS_H
#define FRESHET_STOPWORDS_H

#include <stddef.h>

struct stopword_list {
	const char *lang;            /* language code ("de"); NULL ends the table */
	const char *const *words;    /* sorted, lowercase, NFC */
	size_t count;
};

/* The lists, ended by an entry with lang == NULL. */
extern const struct stopword_list stopword_lists[];

#endif
