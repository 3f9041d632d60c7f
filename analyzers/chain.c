/* SPDX-License-Identifier: MIT */
/*
 * chain.c: the analysis chain shared by every freshet analyzer plugin.
 *
 * This one file is compiled into each plugin with one of
 * FRESHET_PLUGIN_GENERIC, _SNOWBALL, _CJK or _SEA defined; the define picks
 * the plugin's name (see the bottom of the file).  The languages a plugin
 * serves, their Snowball stemmers and their quirks come from the language
 * table (language.h, compiled into every plugin and into the host), so the
 * query side stems as the plugins do.  The chain itself is the same
 * everywhere and driven by the language's row (struct language; the
 * generic plugin uses an empty row):
 *
 *   1. ICU word segmentation (ubrk UBRK_WORD over the text converted once
 *      to UTF-16, with a map back to byte offsets in the input; invalid
 *      UTF-8 becomes U+FFFD; dictionaries for Thai, Lao, Khmer, Burmese,
 *      Chinese and Japanese).  A segment is a word when
 *      ubrk_getRuleStatus() >= UBRK_WORD_NONE_LIMIT; every word takes one
 *      position, whether or not it is emitted.
 *   2. Case folding: Turkish/Azeri lowercasing first (İ -> i, I -> ı), then
 *      NFKC_Casefold (full-width -> ASCII, ligatures, final sigma), with
 *      per-language exceptions (German keeps ß in the plain view); the
 *      apostrophe U+2019 becomes '.  ASCII words take a byte-wise fast path
 *      that gives the same result.
 *   3. Elision (fr, it, ca: l'église -> église), English possessives
 *      (john's -> john) and Turkish suffixes after an apostrophe
 *      (istanbul'da -> istanbul), in both views.
 *   4. Plain view: emit.  Accents kept.
 *   5. Text view: drop stopwords (position kept), German ae/oe/ue -> ä/ö/ü,
 *      Snowball stem, then accent folding: a letter of the Latin, Greek or
 *      Cyrillic script loses its combining marks (é -> e, ё -> е, ά -> α)
 *      unless the language treats it as a letter of its own (ñ in Spanish,
 *      å ä ö in Swedish/Finnish/Norwegian/Danish, ç ğ ö ş ü in Turkish, й ї ў
 *      everywhere); ø -> o, æ -> ae, œ -> oe, ł -> l, đ -> d, ß -> ss.  Other
 *      scripts (Devanagari, Thai, Arabic, kana...) are never folded: their
 *      marks are letters.  The result of steps 5 is cached per instance
 *      (term -> text term), since a few hundred words make most of a text.
 *   CJK: Hangul words and Han runs the dictionary left longer than four
 *   characters are emitted as overlapping bigrams, one position each.  For
 *   ja and zh a run cache replays ICU's segmentation of the runs of Han
 *   and kana the instance has seen before (see to_utf16_runs: up to 32,768
 *   runs in at most 2.25 MiB per instance, emptied when full), ICU reads a
 *   run of spaces as one space, and words of Han and kana only or ASCII
 *   only skip the folding steps, which would leave them as they are.  The
 *   output is the same as without (tests/test-analyzers-cjk.c).
 *
 * Invariants: an instance owns its ICU break iterator, UText, stemmer,
 * buffers and run cache and is used by one thread at a time; no function
 * here aborts, exits or prints: every failure becomes a status and a
 * message in an->err.  Every emitted term is NUL-terminated, valid UTF-8,
 * non-empty and at most FRESHET_ANALYZER_MAX_TERM bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ubrk.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uscript.h>
#include <unicode/ustring.h>
#include <unicode/utext.h>
#include <unicode/utf8.h>
#include <unicode/uset.h>

#include <libstemmer.h>

#include "analyzer.h"
#include "language.h"
#ifdef FRESHET_PLUGIN_SNOWBALL
#include "stopwords.h"
#endif

#define EXPORT __attribute__((visibility("default")))
/* The per-word steps, inlined into the segment loop whatever GCC guesses:
 * they run once per word, so a call each would show. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Segments longer than this many bytes are skipped without analysis (they
 * cannot give a term of at most FRESHET_ANALYZER_MAX_TERM bytes). */
#define MAX_SEGMENT (4 * FRESHET_ANALYZER_MAX_TERM)

#define CACHE_SLOTS 4096
#define CACHE_KEY 40

/* The run cache (ja, zh; see to_utf16_runs below): index slots (a power of
 * two), most runs kept (half the slots), the arena's largest size (with
 * the index 2.25 MiB an instance at most), longest run kept (UTF-8 bytes)
 * and most segments per run. */
#define RUN_IDX (1u << 16)
#define RUN_MAX (RUN_IDX / 2)
#define RUN_ARENA (2u << 20)
#define RUN_KEY 120
#define RUN_SEGS 48
/* What ICU reads in place of a run whose segmentation the cache has:
 * U+FFFC OBJECT REPLACEMENT CHARACTER (Word_Break Other). */
#define RUN_PLACEHOLDER 0xFFFC

/* Letters no language folds: they are letters, not accented ones. */
static const char keep_always[] = "йїў";

struct cache_slot {
	uint8_t klen, vlen;
	char key[CACHE_KEY];
	char val[CACHE_KEY];
};

/* One run of dictionary characters and its segmentation, in the arena:
 * this header, the run's klen bytes of UTF-8, then for each of its nseg
 * segments one byte: the end of the segment (bytes from the start of the
 * run, < 128) | RUN_WORD when it is a word (rule status >=
 * UBRK_WORD_NONE_LIMIT). */
struct run_entry {
	uint32_t hash;
	uint8_t klen, nseg;
};
#define RUN_WORD 0x80

/* A run found while converting the text: at ICU index u16 (a placeholder
 * when hit, else the run itself up to u16_end) from byte bs to be; entry is
 * the arena offset of its entry when hit. */
struct run_ref {
	int32_t u16, u16_end;
	int32_t bs, be;
	uint32_t hash;
	bool hit;
	uint32_t entry;
};

struct ubuf { UChar *p; int32_t cap; };
struct cbuf { char *p; size_t cap; };

struct freshet_analyzer {
	struct language prof;          /* the row (code "" for generic) */
	char lang[32];
	bool stopwords_on;
	const char *const *stop;
	size_t nstop;
	UBreakIterator *bi;
	struct ubuf doc;               /* the text in UTF-16 */
	int32_t *map;                  /* UTF-16 index -> byte offset */
	size_t map_cap;
	const UNormalizer2 *norm;      /* NFKC_Casefold, maybe filtered */
	UNormalizer2 *filtered;        /* owned when norm is filtered */
	USet *filter_set;
	const UNormalizer2 *nfd;
	struct sb_stemmer *stemmer;
	struct ubuf u1, u2;
	struct cbuf fold, tmp, out;
	struct cache_slot *cache;
	bool runcache_on;              /* ja, zh unless runcache=0 */
	uint32_t *run_idx;             /* RUN_IDX: arena offset + 1, or 0 */
	unsigned char *arena;          /* the entries, append-only */
	size_t arena_len, arena_cap, nentries;
	struct run_ref *refs;          /* the runs of the current text */
	size_t nrefs, refs_cap;
	char err[256];
};

static void set_err(struct freshet_analyzer *an, const char *fmt, const char *arg)
{
	snprintf(an->err, sizeof an->err, fmt, arg);
}

static bool ubuf_need(struct ubuf *b, int32_t n)
{
	if (n <= b->cap)
		return true;
	int32_t cap = n < 64 ? 64 : n;
	UChar *p = realloc(b->p, (size_t)cap * sizeof *p);
	if (!p)
		return false;
	b->p = p;
	b->cap = cap;
	return true;
}

static bool cbuf_need(struct cbuf *b, size_t n)
{
	if (n <= b->cap)
		return true;
	size_t cap = n < 256 ? 256 : n;
	char *p = realloc(b->p, cap);
	if (!p)
		return false;
	b->p = p;
	b->cap = cap;
	return true;
}

static bool map_need(struct freshet_analyzer *an, size_t n)
{
	if (n <= an->map_cap)
		return true;
	int32_t *p = realloc(an->map, n * sizeof *p);
	if (!p)
		return false;
	an->map = p;
	an->map_cap = n;
	return true;
}

/* Is c listed in the UTF-8 string set? */
static bool in_set(const char *set, UChar32 c)
{
	if (!set)
		return false;
	int32_t i = 0, n = (int32_t)strlen(set);
	while (i < n) {
		UChar32 d;
		U8_NEXT(set, i, n, d);
		if (d == c)
			return true;
	}
	return false;
}

static bool foldable_script(UChar32 c)
{
	UErrorCode e = U_ZERO_ERROR;
	UScriptCode s = uscript_getScript(c, &e);
	return U_SUCCESS(e) && (s == USCRIPT_LATIN || s == USCRIPT_GREEK ||
	                        s == USCRIPT_CYRILLIC);
}

/* Appends c as UTF-8 to out at *n (out has room: at most 4 bytes per call
 * for each input byte plus slack, see callers). */
static void put8(char *out, size_t *n, UChar32 c)
{
	int32_t i = 0;
	uint8_t tmp[4];
	UBool err = false;
	U8_APPEND((uint8_t *)tmp, i, 4, c, err);
	if (err)
		return;
	memcpy(out + *n, tmp, (size_t)i);
	*n += (size_t)i;
}

/* Accent folding of the text view (see the top of the file): in -> an->out.
 * Returns false on OOM. */
static bool accent_fold(struct freshet_analyzer *an, const char *in, size_t len,
                        size_t *outlen)
{
	if (!cbuf_need(&an->out, 2 * len + 8))
		return false;
	char *out = an->out.p;
	size_t n = 0;
	bool prev_foldable = false;
	int32_t i = 0, ilen = (int32_t)len;
	while (i < ilen) {
		UChar32 c;
		if ((uint8_t)in[i] < 0x80) {
			out[n++] = in[i++];
			prev_foldable = true;
			continue;
		}
		int32_t at = i;
		U8_NEXT(in, i, ilen, c);
		if (c < 0)
			continue;
		if (!(c < 0x530 || (c >= 0x1E00 && c < 0x2000))) {
			/* Outside Latin, Greek, Cyrillic and their marks: kept as is. */
			memcpy(out + n, in + at, (size_t)(i - at));
			n += (size_t)(i - at);
			prev_foldable = false;
			continue;
		}
		if (in_set(keep_always, c) || in_set(an->prof.keep, c)) {
			put8(out, &n, c);
			prev_foldable = false;
			continue;
		}
		switch (c) {
		case 0xF8: out[n++] = 'o'; prev_foldable = true; continue;
		case 0xE6: out[n++] = 'a'; out[n++] = 'e'; prev_foldable = true; continue;
		case 0x153: out[n++] = 'o'; out[n++] = 'e'; prev_foldable = true; continue;
		case 0x142: out[n++] = 'l'; prev_foldable = true; continue;
		case 0x111: out[n++] = 'd'; prev_foldable = true; continue;
		case 0xDF: out[n++] = 's'; out[n++] = 's'; prev_foldable = true; continue;
		default: break;
		}
		if (u_charType(c) == U_NON_SPACING_MARK) {
			/* A mark NFKC could not compose: drop it after a foldable letter. */
			if (!prev_foldable)
				put8(out, &n, c);
			continue;
		}
		prev_foldable = foldable_script(c);
		if (prev_foldable) {
			UChar d[8];
			UErrorCode e = U_ZERO_ERROR;
			int32_t dl = unorm2_getDecomposition(an->nfd, c, d, 8, &e);
			if (U_SUCCESS(e) && dl > 0) {
				UChar32 base;
				int32_t j = 0;
				U16_NEXT(d, j, dl, base);
				bool marks_only = true;
				for (int32_t k = j; k < dl;) {
					UChar32 m;
					U16_NEXT(d, k, dl, m);
					if (u_charType(m) != U_NON_SPACING_MARK)
						marks_only = false;
				}
				if (marks_only && !in_set(keep_always, base)) {
					put8(out, &n, base);
					continue;
				}
			}
		}
		put8(out, &n, c);
	}
	out[n] = 0;
	*outlen = n;
	return true;
}

/* Is c a code point that NFKC_Casefold leaves as it is, whatever its
 * neighbours (no decomposition, no case, never composes with a following
 * mark in a way that matters here)?  CJK ideographs, kana and Hangul
 * syllables: lets CJK text skip the UTF-16 round trip. */
/* U8_NEXT with the three-byte sequences of the BMP outside the surrogates
 * (E1-EC, EE-EF lead bytes: CJK, kana, Hangul) decoded inline; anything
 * else goes to U8_NEXT. */
#define U8_NEXT_FAST(s, i, n, c) do { \
	uint8_t b0_ = (uint8_t)(s)[i]; \
	if (b0_ >= 0xE1 && b0_ <= 0xEF && b0_ != 0xED && (i) + 2 < (n) && \
	    ((uint8_t)(s)[(i) + 1] & 0xC0) == 0x80 && \
	    ((uint8_t)(s)[(i) + 2] & 0xC0) == 0x80) { \
		(c) = (UChar32)(((b0_ & 0x0F) << 12) | \
		                (((uint8_t)(s)[(i) + 1] & 0x3F) << 6) | \
		                ((uint8_t)(s)[(i) + 2] & 0x3F)); \
		(i) += 3; \
	} else { \
		U8_NEXT(s, i, n, c); \
	} \
} while (0)

ALWAYS_INLINE bool fold_identity(UChar32 c)
{
	return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
	       (c >= 0x3041 && c <= 0x3096) || (c >= 0x30A1 && c <= 0x30FA) ||
	       c == 0x30FC || (c >= 0xAC00 && c <= 0xD7A3);
}

/* Case folds in[0..len) into an->fold.  Returns 0 or a status. */
static int casefold(struct freshet_analyzer *an, const char *in, size_t len,
                    size_t *outlen)
{
	/* Fast path: ASCII, Latin-1 letters, basic Cyrillic (lowercased with a
	 * table that agrees with NFKC_Casefold for them) and code points
	 * NFKC_Casefold keeps (CJK, kana, Hangul) are folded here.  Anything
	 * else (a combining mark, ß, Greek, Turkish I...) takes the ICU path. */
	if (!cbuf_need(&an->fold, len + 1))
		return FRESHET_ANALYZER_NOMEM;
	bool fast = true;
	size_t w = 0;
	for (int32_t i = 0, n = (int32_t)len; i < n;) {
		uint8_t b = (uint8_t)in[i];
		if (b < 0x80) {
			if (an->prof.turkish && b == 'I') {
				fast = false;
				break;
			}
			an->fold.p[w++] = (b >= 'A' && b <= 'Z') ? (char)(b + 32) : (char)b;
			i++;
			continue;
		}
		UChar32 c;
		U8_NEXT(in, i, n, c);
		if (c < 0) {
			fast = false;
			break;
		}
		if (fold_identity(c)) {
			put8(an->fold.p, &w, c);
			continue;
		}
		if (an->prof.turkish) {
			fast = false;
			break;
		}
		if ((c >= 0xE0 && c <= 0xFF && c != 0xF7) || (c >= 0x430 && c <= 0x44F) ||
		    c == 0x451) {
			put8(an->fold.p, &w, c);
		} else if ((c >= 0xC0 && c <= 0xDE && c != 0xD7) || (c >= 0x410 && c <= 0x42F)) {
			put8(an->fold.p, &w, c + 0x20);
		} else if (c == 0x401) {
			put8(an->fold.p, &w, 0x451);
		} else {
			fast = false;
			break;
		}
	}
	if (fast) {
		an->fold.p[w] = 0;
		*outlen = w;
		return 0;
	}
	UErrorCode e = U_ZERO_ERROR;
	int32_t n16 = 0;
	if (!ubuf_need(&an->u1, (int32_t)len + 1))
		return FRESHET_ANALYZER_NOMEM;
	u_strFromUTF8WithSub(an->u1.p, an->u1.cap, &n16, in, (int32_t)len,
	                     0xFFFD, NULL, &e);
	if (U_FAILURE(e)) {
		set_err(an, "u_strFromUTF8: %s", u_errorName(e));
		return FRESHET_ANALYZER_INTERNAL;
	}
	if (an->prof.turkish) {
		e = U_ZERO_ERROR;
		if (!ubuf_need(&an->u2, n16 * 2 + 8))
			return FRESHET_ANALYZER_NOMEM;
		int32_t l = u_strToLower(an->u2.p, an->u2.cap, an->u1.p, n16, "tr", &e);
		if (U_FAILURE(e)) {
			set_err(an, "u_strToLower: %s", u_errorName(e));
			return FRESHET_ANALYZER_INTERNAL;
		}
		struct ubuf t = an->u1;
		an->u1 = an->u2;
		an->u2 = t;
		n16 = l;
	}
	/* NFKC_Casefold expands at most ~18x per code unit; grow and retry. */
	int32_t cap = n16 * 3 + 16, l;
	for (;;) {
		if (!ubuf_need(&an->u2, cap))
			return FRESHET_ANALYZER_NOMEM;
		e = U_ZERO_ERROR;
		l = unorm2_normalize(an->norm, an->u1.p, n16, an->u2.p, an->u2.cap, &e);
		if (e == U_BUFFER_OVERFLOW_ERROR) {
			cap = l + 1;
			continue;
		}
		if (U_FAILURE(e)) {
			set_err(an, "unorm2_normalize: %s", u_errorName(e));
			return FRESHET_ANALYZER_INTERNAL;
		}
		break;
	}
	if (!cbuf_need(&an->fold, (size_t)l * 3 + 1))
		return FRESHET_ANALYZER_NOMEM;
	int32_t n8 = 0;
	e = U_ZERO_ERROR;
	u_strToUTF8WithSub(an->fold.p, (int32_t)an->fold.cap, &n8, an->u2.p, l,
	                   0xFFFD, NULL, &e);
	if (U_FAILURE(e)) {
		set_err(an, "u_strToUTF8: %s", u_errorName(e));
		return FRESHET_ANALYZER_INTERNAL;
	}
	/* U+2019 RIGHT SINGLE QUOTATION MARK -> ' (don’t = don't). */
	char *p = an->fold.p;
	w = 0;
	for (int32_t r = 0; r < n8;) {
		if (r + 2 < n8 && (uint8_t)p[r] == 0xE2 && (uint8_t)p[r + 1] == 0x80 &&
		    (uint8_t)p[r + 2] == 0x99) {
			p[w++] = '\'';
			r += 3;
		} else {
			p[w++] = p[r++];
		}
	}
	p[w] = 0;
	*outlen = w;
	return 0;
}

/* Is w[0..n) an elided word of the list? */
static bool elided(const char *const *list, const char *w, size_t n)
{
	for (; *list; list++)
		if (strlen(*list) == n && memcmp(*list, w, n) == 0)
			return true;
	return false;
}

/* Elision and possessive: adjusts [*b, *e) inside an->fold and the source
 * offsets [*s, *se). */
ALWAYS_INLINE void strip_clitics(struct freshet_analyzer *an, const char *src,
                          size_t *b, size_t *e, size_t *s, size_t *se)
{
	const char *f = an->fold.p;
	if (an->prof.elision) {
		/* An apostrophe after one of the language's elided articles and
		 * prepositions (Lucene's lists) ends it: l'église, dell'amico;
		 * aujourd'hui stays whole. */
		for (size_t i = *b + 1; i < *e && i <= *b + 7; i++) {
			if (f[i] != '\'')
				continue;
			if (i + 1 >= *e || !elided(an->prof.elision, f + *b, i - *b))
				break;
			*b = i + 1;
			for (size_t k = *s; k < *se; k++) {
				if (src[k] == '\'') {
					*s = k + 1;
					break;
				}
				if (k + 2 < *se && (uint8_t)src[k] == 0xE2 &&
				    (uint8_t)src[k + 1] == 0x80 && (uint8_t)src[k + 2] == 0x99) {
					*s = k + 3;
					break;
				}
			}
			break;
		}
	}
	if (an->prof.turkish) {
		/* Turkish writes suffixes of proper names after an apostrophe
		 * (İstanbul'da): the name is the word. */
		for (size_t i = *b + 1; i < *e; i++) {
			if (f[i] != '\'')
				continue;
			*e = i;
			for (size_t k = *s + 1; k < *se; k++)
				if (src[k] == '\'' || (uint8_t)src[k] == 0xE2) {
					*se = k;
					break;
				}
			break;
		}
	}
	if (an->prof.possessive && *e - *b > 2 && f[*e - 1] == 's' && f[*e - 2] == '\'') {
		*e -= 2;
		if (*se - *s > 2 && src[*se - 1] == 's' && src[*se - 2] == '\'')
			*se -= 2;
		else if (*se - *s > 4 && (src[*se - 1] == 's' || src[*se - 1] == 'S'))
			*se -= 4;
		else if (*se - *s > 2)
			*se -= 2;
	}
}

static int stop_cmp(const void *k, const void *m)
{
	return strcmp(k, *(const char *const *)m);
}

ALWAYS_INLINE bool is_stopword(const struct freshet_analyzer *an, const char *w)
{
	return an->stop && bsearch(w, an->stop, an->nstop, sizeof *an->stop, stop_cmp);
}

static uint32_t hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

/* German: ae oe ue -> ä ö ü (not the u of qu), so that Mueller meets Müller;
 * writes into an->tmp.  Returns false on OOM. */
static bool german_umlauts(struct freshet_analyzer *an, const char *w, size_t n,
                           size_t *outlen)
{
	if (!cbuf_need(&an->tmp, n + 1))
		return false;
	char *o = an->tmp.p;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n && w[i + 1] == 'e' &&
		    (w[i] == 'a' || w[i] == 'o' || (w[i] == 'u' && !(i > 0 && w[i - 1] == 'q')))) {
			o[k++] = (char)0xC3;
			o[k++] = w[i] == 'a' ? (char)0xA4 : w[i] == 'o' ? (char)0xB6 : (char)0xBC;
			i++;
			continue;
		}
		o[k++] = w[i];
	}
	o[k] = 0;
	*outlen = k;
	return true;
}

/* Computes the text-view term of the folded word w[0..n) into *res and *rlen
 * (pointing into an instance buffer or the cache).  Returns 0 or a status. */
ALWAYS_INLINE int text_term(struct freshet_analyzer *an, const char *w, size_t n,
                     const char **res, size_t *rlen)
{
	struct cache_slot *slot = NULL;
	if (n < CACHE_KEY) {
		slot = &an->cache[hash(w, n) % CACHE_SLOTS];
		if (slot->klen == n && memcmp(slot->key, w, n) == 0) {
			*res = slot->val;
			*rlen = slot->vlen;
			return 0;
		}
	}
	const char *x = w;
	size_t xl = n;
	if (an->prof.german) {
		if (!german_umlauts(an, w, n, &xl))
			return FRESHET_ANALYZER_NOMEM;
		x = an->tmp.p;
	}
	if (an->stemmer) {
		const sb_symbol *st = sb_stemmer_stem(an->stemmer, (const sb_symbol *)x, (int)xl);
		if (!st)
			return FRESHET_ANALYZER_NOMEM;
		/* Some stemmers reduce a word to nothing (Greek έως, Turkish
		 * ları): keep the word itself rather than lose it. */
		if (sb_stemmer_length(an->stemmer) > 0) {
			xl = (size_t)sb_stemmer_length(an->stemmer);
			x = (const char *)st;
		}
	}
	size_t ol;
	if (!accent_fold(an, x, xl, &ol))
		return FRESHET_ANALYZER_NOMEM;
	*res = an->out.p;
	*rlen = ol;
	if (slot && ol < CACHE_KEY) {
		slot->klen = (uint8_t)n;
		memcpy(slot->key, w, n);
		slot->vlen = (uint8_t)ol;
		memcpy(slot->val, an->out.p, ol);
		slot->val[ol] = 0;
	}
	return 0;
}

static bool is_hangul(UChar32 c)
{
	return (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0x1100 && c <= 0x11FF) ||
	       (c >= 0x3130 && c <= 0x318F);
}

static bool is_han(UChar32 c)
{
	return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
	       (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x3134F);
}

/* Where a word's terms go: the text-view and the plain-view callbacks, either
 * of which may be NULL (a single-view analyze() leaves the other NULL). */
struct sinks {
	freshet_token_fn text_cb;
	void *text_ctx;
	freshet_token_fn plain_cb;
	void *plain_ctx;
};

/* Emits a term if it fits; returns 0, STOPPED or a status. */
static int emit(freshet_token_fn cb, void *ctx, const char *t, size_t n,
                size_t s, size_t e, uint32_t pos)
{
	if (n == 0 || n > FRESHET_ANALYZER_MAX_TERM)
		return 0;
	return cb(ctx, t, n, s, e, pos) ? FRESHET_ANALYZER_STOPPED : 0;
}

/* Emits a term that is the same in both views to each sink present. */
static int emit_both(const struct sinks *k, const char *t, size_t n, size_t s,
                     size_t e, uint32_t pos)
{
	int st = 0;
	if (k->plain_cb)
		st = emit(k->plain_cb, k->plain_ctx, t, n, s, e, pos);
	if (!st && k->text_cb)
		st = emit(k->text_cb, k->text_ctx, t, n, s, e, pos);
	return st;
}

/* CJK: overlapping bigrams over the code points of src[s..e). */
static int bigrams(struct freshet_analyzer *an, const char *src, size_t s,
                   size_t e, uint32_t *pos, const struct sinks *k)
{
	int32_t i = (int32_t)s, end = (int32_t)e;
	int32_t a = i;
	UChar32 c;
	U8_NEXT(src, i, end, c);
	int32_t b = i;
	if (b >= end) {
		/* One character: a unigram. */
		size_t fl;
		int st = casefold(an, src + a, (size_t)(end - a), &fl);
		if (st)
			return st;
		st = emit_both(k, an->fold.p, fl, (size_t)a, (size_t)end, *pos);
		(*pos)++;
		return st;
	}
	while (b < end) {
		int32_t c2 = b;
		U8_NEXT(src, c2, end, c);
		size_t fl;
		int st = casefold(an, src + a, (size_t)(c2 - a), &fl);
		if (st)
			return st;
		st = emit_both(k, an->fold.p, fl, (size_t)a, (size_t)c2, *pos);
		(*pos)++;
		if (st)
			return st;
		a = b;
		b = c2;
	}
	return 0;
}

/* word() for the CJK languages: bigrams for Hangul and long Han runs, and
 * words of Han and kana only or of ASCII only, whose terms are the word
 * itself (lowercased).  Returns WORD_GENERAL for anything else, for the
 * general path.  Kept out of line so that word() stays small for the other
 * languages. */
#define WORD_GENERAL (-1)
static __attribute__((noinline)) int word_cjk(struct freshet_analyzer *an,
                                              const char *src, size_t s, size_t e,
                                              uint32_t *pos, const struct sinks *k)
{
	int32_t i = (int32_t)s, n = 0;
	UChar32 c;
	bool hangul = false, han = true, ident = true, ascii = true;
	while (i < (int32_t)e) {
		if ((uint8_t)src[i] < 0x80) {
			i++;
			n++;
			han = ident = false;
			continue;
		}
		ascii = false;
		U8_NEXT_FAST(src, i, (int32_t)e, c);
		n++;
		if (is_hangul(c))
			hangul = true;
		if (!is_han(c))
			han = false;
		if (!fold_identity(c))
			ident = false;
	}
	if (hangul || (han && n > 4))
		return bigrams(an, src, s, e, pos, k);
	if ((ident || ascii) && !an->prof.elision && !an->prof.possessive &&
	    !an->prof.turkish && !an->stemmer && !an->stop) {
		/* Han and kana only, or ASCII only: case folding is
		 * identity or A-Z -> a-z, and clitics and the text
		 * view's steps leave the word as it is. */
		if (!cbuf_need(&an->fold, e - s + 1))
			return FRESHET_ANALYZER_NOMEM;
		char *f = an->fold.p;
		if (ident) {
			memcpy(f, src + s, e - s);
		} else {
			for (size_t j = s; j < e; j++) {
				uint8_t b = (uint8_t)src[j];
				f[j - s] = (char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
			}
		}
		f[e - s] = 0;
		return emit_both(k, f, e - s, s, e, (*pos)++);
	}
	return WORD_GENERAL;
}

/* Analyzes one word src[s..e) (already a word by ICU's rule status).
 * Inlined in its two callers: the per-word calls cost otherwise. */
ALWAYS_INLINE int word(struct freshet_analyzer *an, const char *src, size_t s,
                size_t e, uint32_t *pos, const struct sinks *k)
{
	if (e - s > MAX_SEGMENT) {
		(*pos)++;
		return 0;
	}
	if (an->prof.cjk) {
		int st = word_cjk(an, src, s, e, pos, k);
		if (st != WORD_GENERAL)
			return st;
	}
	size_t fl;
	int st = casefold(an, src + s, e - s, &fl);
	if (st)
		return st;
	size_t b = 0, fe = fl, ss = s, se = e;
	strip_clitics(an, src, &b, &fe, &ss, &se);
	uint32_t p = (*pos)++;
	if (fe <= b)
		return 0;
	an->fold.p[fe] = 0;
	const char *w = an->fold.p + b;
	size_t wl = fe - b;
	if (k->plain_cb && (st = emit(k->plain_cb, k->plain_ctx, w, wl, ss, se, p)))
		return st;
	if (!k->text_cb)
		return 0;
	if (an->stopwords_on && is_stopword(an, w))
		return 0;
	const char *t;
	size_t tl;
	st = text_term(an, w, wl, &t, &tl);
	if (st)
		return st;
	return emit(k->text_cb, k->text_ctx, t, tl, ss, se, p);
}

static int run(struct freshet_analyzer *an, unsigned flags, const char *text,
               size_t len, const struct sinks *k);

static int do_analyze(struct freshet_analyzer *an, enum freshet_view view,
                      unsigned flags, const char *text, size_t len,
                      freshet_token_fn cb, void *ctx)
{
	an->err[0] = 0;
	if (!cb || (!text && len) || (view != FRESHET_VIEW_TEXT && view != FRESHET_VIEW_PLAIN) ||
	    len > INT32_MAX) {
		set_err(an, "%s", "analyze: bad argument");
		return FRESHET_ANALYZER_INVALID;
	}
	if (len == 0)
		return 0;
	if (flags & FRESHET_ANALYZE_STEM_ONLY) {
		if (len > FRESHET_ANALYZER_MAX_TERM)
			return 0;
		const char *x = text;
		size_t xl = len;
		if (an->stemmer && view == FRESHET_VIEW_TEXT) {
			const sb_symbol *st = sb_stemmer_stem(an->stemmer, (const sb_symbol *)text, (int)len);
			if (!st) {
				set_err(an, "%s", "out of memory");
				return FRESHET_ANALYZER_NOMEM;
			}
			xl = (size_t)sb_stemmer_length(an->stemmer);
			x = (const char *)st;
		}
		if (!cbuf_need(&an->tmp, xl + 1)) {
			set_err(an, "%s", "out of memory");
			return FRESHET_ANALYZER_NOMEM;
		}
		memcpy(an->tmp.p, x, xl);
		an->tmp.p[xl] = 0;
		return emit(cb, ctx, an->tmp.p, xl, 0, len, 0);
	}
	struct sinks k = { NULL, NULL, NULL, NULL };
	if (view == FRESHET_VIEW_TEXT) {
		k.text_cb = cb;
		k.text_ctx = ctx;
	} else {
		k.plain_cb = cb;
		k.plain_ctx = ctx;
	}
	return run(an, flags, text, len, &k);
}

static int do_analyze_both(struct freshet_analyzer *an, unsigned flags,
                           const char *text, size_t len,
                           freshet_token_fn text_cb, void *text_ctx,
                           freshet_token_fn plain_cb, void *plain_ctx)
{
	an->err[0] = 0;
	if ((!text && len) || len > INT32_MAX ||
	    (flags & (FRESHET_ANALYZE_STEM_ONLY | FRESHET_ANALYZE_SEGMENTS))) {
		set_err(an, "%s", "analyze_both: bad argument");
		return FRESHET_ANALYZER_INVALID;
	}
	if (len == 0 || (!text_cb && !plain_cb))
		return 0;
	struct sinks k = { text_cb, text_ctx, plain_cb, plain_ctx };
	return run(an, flags, text, len, &k);
}

/*
 * The run cache (ja, zh).  ICU's dictionary segmentation is most of the cost
 * of Chinese and Japanese text, and it is a function of the run alone: the
 * rules make a maximal run of the CJK engine's characters ([:Han:],
 * [:Hiragana:], [:Katakana:], U+30FC, U+FF70, U+FF9E, U+FF9F) one rule
 * segment when nothing can join or attach to it from either side, and the
 * engine divides exactly that range, looking at nothing else.  So the
 * boundaries ICU gave a run once (captured in context, with their word
 * status) are the boundaries it gives the same run again; runs repeat a lot
 * (the same terms, the same phrases).  A run is cached only when it is
 * "clean":
 *   - its first character is of script Han, Hiragana or Katakana and not
 *     Extend/Format/ZWJ, so that ICU picks the CJK engine for it whatever
 *     engines the iterator loaded before (a run starting with U+30FC is
 *     left to ICU);
 *   - the characters on either side (or the text's ends) cannot join it or
 *     attach to it: not Extend, Format, ZWJ, ExtendNumLet, Katakana (word
 *     break), Han, Hiragana, Ideographic, Hangul syllables or
 *     Complex_Context (RUN_BAD below);
 *   - it is at most RUN_KEY bytes and gives at most RUN_SEGS segments.
 * A clean run found in the cache is handed to ICU as one U+FFFC (Word_Break
 * Other: a segment of its own that neither neighbour joins, so ICU segments
 * the rest of the text as before) and its cached segments are analysed in
 * its place.  A clean run not found is left in the text and its segments
 * are recorded as ICU reports them.  tests/test-analyzers.c compares the
 * output with and without the cache ("runcache=0") on real text.
 */
enum { RUN_IN = 1, RUN_START = 2, RUN_BAD = 4 };

static uint8_t run_class_bmp[0x10000];
static USet *run_set_in, *run_set_start, *run_set_bad;
static bool run_classes_ok;
static pthread_once_t run_classes_once = PTHREAD_ONCE_INIT;

static void run_classes_init(void)
{
	static const char *const pats[3] = {
		"[[:Han:][:Hiragana:][:Katakana:]\\u30fc\\uff70\\uff9e\\uff9f]",
		"[[[:Han:][:Hiragana:][:Katakana:]]-[\\p{Word_Break=Extend}"
		"\\p{Word_Break=Format}\\p{Word_Break=ZWJ}]]",
		"[\\p{Word_Break=Extend}\\p{Word_Break=Format}\\p{Word_Break=ZWJ}"
		"\\p{Word_Break=ExtendNumLet}\\p{Word_Break=Katakana}[:Han:]"
		"[:Hiragana:][:Ideographic:]\\p{Line_Break=Complex_Context}"
		"[\\uac00-\\ud7a3]]",
	};
	USet *sets[3];
	for (int i = 0; i < 3; i++) {
		UChar pat[256];
		UErrorCode e = U_ZERO_ERROR;
		u_uastrcpy(pat, pats[i]);
		sets[i] = uset_openPattern(pat, -1, &e);
		if (U_FAILURE(e)) {
			for (int j = 0; j < i; j++)
				uset_close(sets[j]);
			if (U_SUCCESS(e))
				uset_close(sets[i]);
			return;
		}
		uset_freeze(sets[i]);
	}
	for (UChar32 c = 0; c < 0x10000; c++)
		run_class_bmp[c] = (uint8_t)((uset_contains(sets[0], c) ? RUN_IN : 0) |
		                             (uset_contains(sets[1], c) ? RUN_START : 0) |
		                             (uset_contains(sets[2], c) ? RUN_BAD : 0));
	run_set_in = sets[0];
	run_set_start = sets[1];
	run_set_bad = sets[2];
	run_classes_ok = true;
}

static unsigned run_class(UChar32 c)
{
	if (c < 0x10000)
		return run_class_bmp[c];
	return (uset_contains(run_set_in, c) ? RUN_IN : 0) |
	       (uset_contains(run_set_start, c) ? RUN_START : 0) |
	       (uset_contains(run_set_bad, c) ? RUN_BAD : 0);
}

static struct run_ref *run_ref_add(struct freshet_analyzer *an)
{
	if (an->nrefs == an->refs_cap) {
		size_t cap = an->refs_cap ? 2 * an->refs_cap : 256;
		struct run_ref *p = realloc(an->refs, cap * sizeof *p);
		if (!p)
			return NULL;
		an->refs = p;
		an->refs_cap = cap;
	}
	return &an->refs[an->nrefs++];
}

/* Looks the run key[0..klen) up; sets *off to its entry's arena offset. */
static bool run_find(const struct freshet_analyzer *an, const char *key,
                     size_t klen, uint32_t h, uint32_t *off)
{
	for (uint32_t i = h & (RUN_IDX - 1);; i = (i + 1) & (RUN_IDX - 1)) {
		uint32_t o = an->run_idx[i];
		if (!o)
			return false;
		const struct run_entry *en = (const struct run_entry *)(an->arena + o - 1);
		if (en->hash == h && en->klen == klen &&
		    memcmp(en + 1, key, klen) == 0) {
			*off = o - 1;
			return true;
		}
	}
}

/* Adds run r of text with its nseg segment ends (| RUN_WORD), unless it is
 * there already or the cache is full (it is emptied between texts, see
 * run()). */
static void run_add(struct freshet_analyzer *an, const char *text,
                    const struct run_ref *r, const uint8_t *ends, int nseg)
{
	size_t klen = (size_t)(r->be - r->bs);
	uint32_t off;
	if (an->nentries >= RUN_MAX || run_find(an, text + r->bs, klen, r->hash, &off))
		return;
	size_t need = (sizeof(struct run_entry) + klen + (size_t)nseg + 3) & ~(size_t)3;
	if (an->arena_len + need > an->arena_cap) {
		size_t cap = an->arena_cap ? 2 * an->arena_cap : 64 * 1024;
		if (cap > RUN_ARENA)
			cap = RUN_ARENA;
		if (an->arena_len + need > cap)
			return;
		unsigned char *p = realloc(an->arena, cap);
		if (!p)
			return;         /* not cached: no harm */
		an->arena = p;
		an->arena_cap = cap;
	}
	struct run_entry *en = (struct run_entry *)(an->arena + an->arena_len);
	en->hash = r->hash;
	en->klen = (uint8_t)klen;
	en->nseg = (uint8_t)nseg;
	memcpy(en + 1, text + r->bs, klen);
	memcpy((unsigned char *)(en + 1) + klen, ends, (size_t)nseg);
	uint32_t i = r->hash & (RUN_IDX - 1);
	while (an->run_idx[i])
		i = (i + 1) & (RUN_IDX - 1);
	an->run_idx[i] = (uint32_t)an->arena_len + 1;
	an->arena_len += need;
	an->nentries++;
}


/* Appends code point c, read at byte offset at, to the UTF-16 text and its
 * offset map; returns the new length.  The caller sized both for it. */
static inline int32_t put16(struct freshet_analyzer *an, int32_t n16, UChar32 c, int32_t at)
{
	if (c <= 0xFFFF) {
		an->map[n16] = at;
		an->doc.p[n16++] = (UChar)c;
	} else {
		an->map[n16] = at;
		an->doc.p[n16++] = U16_LEAD(c);
		an->map[n16] = at;
		an->doc.p[n16++] = U16_TRAIL(c);
	}
	return n16;
}
/* Converts text to UTF-16 in an->doc with an->map (see run()), replacing
 * each clean run the cache has by RUN_PLACEHOLDER and listing the clean
 * runs in an->refs.  Returns the UTF-16 length, or -1 on OOM. */
static int32_t to_utf16_runs(struct freshet_analyzer *an, const char *text,
                             size_t len)
{
	int32_t n16 = 0;
	an->nrefs = 0;
	bool prev_bad = false;       /* the character before the open run */
	bool open = false, clean = false;
	int32_t rs = 0, rs16 = 0;
	uint32_t h = 0;
	for (int32_t i = 0, n = (int32_t)len;; ) {
		if (!open && i < n && (uint8_t)text[i] < 0x80) {
			/* ASCII outside a run.  A space after a space is left out:
			 * spaces are one segment whatever their number (WB3d) and
			 * nothing else looks at them, so ICU reads one and map[]
			 * still gives the segment's byte offsets. */
			do {
				uint8_t b = (uint8_t)text[i];
				if (b != ' ' || i == 0 || text[i - 1] != ' ') {
					an->map[n16] = i;
					an->doc.p[n16++] = (UChar)b;
				}
				prev_bad = b == '_';
				i++;
			} while (i < n && (uint8_t)text[i] < 0x80);
			continue;
		}
		int32_t at = i;
		UChar32 c = -1;
		unsigned cls = 0;
		if (i < n) {
			uint8_t b = (uint8_t)text[i];
			if (b < 0x80) {
				i++;
				c = b;
				cls = b == '_' ? RUN_BAD : 0;
			} else {
				U8_NEXT_FAST(text, i, n, c);
				if (c < 0)
					c = 0xFFFD;
				cls = run_class(c);
			}
		}
		if (open && !(cls & RUN_IN)) {
			/* The run ends here: at, with c after it (-1: the end). */
			open = false;
			if (clean && !(cls & RUN_BAD) && at - rs <= RUN_KEY) {
				struct run_ref *r = run_ref_add(an);
				if (!r)
					return -1;
				*r = (struct run_ref){ rs16, n16, rs, at, h, false, 0 };
				if (run_find(an, text + rs, (size_t)(at - rs), h, &r->entry)) {
					r->hit = true;
					n16 = rs16;
					an->map[n16] = rs;
					an->doc.p[n16++] = RUN_PLACEHOLDER;
					r->u16_end = n16;
				}
			}
		}
		if (c < 0)
			break;
		if (cls & RUN_IN) {
			if (!open) {
				open = true;
				clean = !prev_bad && (cls & RUN_START);
				rs = at;
				rs16 = n16;
				h = 2166136261u;
			}
			h = (h ^ (uint32_t)c) * 16777619u;
		}
		prev_bad = cls & RUN_BAD;
		if (c == ' ' && at > 0 && text[at - 1] == ' ')
			continue;       /* as above */
		n16 = put16(an, n16, c, at);
	}
	an->map[n16] = (int32_t)len;
	return n16;
}

/* Analyses the cached segments of run r (a hit). */
static int run_replay(struct freshet_analyzer *an, const char *text,
                      const struct run_ref *r, uint32_t *pos, const struct sinks *k)
{
	const struct run_entry *en = (const struct run_entry *)(an->arena + r->entry);
	const uint8_t *ends = (const uint8_t *)(en + 1) + en->klen;
	size_t s = (size_t)r->bs;
	for (unsigned i = 0; i < en->nseg; i++) {
		size_t e = (size_t)r->bs + (ends[i] & ~RUN_WORD);
		if (ends[i] & RUN_WORD) {
			int st = word(an, text, s, e, pos, k);
			if (st)
				return st;
		}
		s = e;
	}
	return 0;
}

/* Segments text and hands every word to word() (or, for SEGMENTS, every
 * segment raw to the one sink present). */
static int run(struct freshet_analyzer *an, unsigned flags, const char *text,
               size_t len, const struct sinks *k)
{
	/* The break iterator runs on UTF-16 (ICU's dictionary engines copy a
	 * UTF-8 UText range by range, which costs more than converting once);
	 * map[i] is the byte offset in text of UTF-16 unit i. */
	if (len > (size_t)INT32_MAX / 2 || !ubuf_need(&an->doc, (int32_t)len + 1) ||
	    !map_need(an, len + 1)) {
		set_err(an, "%s", "out of memory");
		return FRESHET_ANALYZER_NOMEM;
	}
	bool cached = an->runcache_on && !(flags & FRESHET_ANALYZE_SEGMENTS);
	if (cached && !an->run_idx) {
		an->run_idx = calloc(RUN_IDX, sizeof *an->run_idx);
		if (!an->run_idx) {
			set_err(an, "%s", "out of memory");
			return FRESHET_ANALYZER_NOMEM;
		}
	}
	if (cached && (an->nentries >= RUN_MAX ||
	               an->arena_len + RUN_ARENA / 16 > RUN_ARENA)) {
		/* Full: start again (between texts, while no run refers to an
		 * entry).  Simpler than evicting, and the runs that matter come
		 * back within a few pages. */
		memset(an->run_idx, 0, RUN_IDX * sizeof *an->run_idx);
		an->arena_len = 0;
		an->nentries = 0;
	}
	int32_t n16 = 0;
	an->nrefs = 0;
	if (cached) {
		n16 = to_utf16_runs(an, text, len);
		if (n16 < 0) {
			set_err(an, "%s", "out of memory");
			return FRESHET_ANALYZER_NOMEM;
		}
	} else {
		for (int32_t i = 0, n = (int32_t)len; i < n;) {
			int32_t at = i;
			UChar32 c;
			U8_NEXT(text, i, n, c);
			if (c < 0)
				c = 0xFFFD;
			n16 = put16(an, n16, c, at);
		}
		an->map[n16] = (int32_t)len;
	}
	UErrorCode e = U_ZERO_ERROR;
	ubrk_setText(an->bi, an->doc.p, n16, &e);
	if (U_FAILURE(e)) {
		set_err(an, "ubrk_setText: %s", u_errorName(e));
		return FRESHET_ANALYZER_INTERNAL;
	}
	uint32_t pos = 0;
	int32_t prev = ubrk_first(an->bi), cur;
	int st = 0;
	/* The next run of an->refs, and the segments recorded so far of a run
	 * being captured (nseg < 0: not capturing). */
	size_t ri = 0;
	int nseg = -1;
	uint8_t ends[RUN_SEGS];
	while ((cur = ubrk_next(an->bi)) != UBRK_DONE) {
		size_t bs = (size_t)an->map[prev], be = (size_t)an->map[cur];
		if (flags & FRESHET_ANALYZE_SEGMENTS) {
			/* Every segment, raw (conformance tests). */
			st = emit_both(k, text + bs, be - bs, bs, be, pos++);
			if (st)
				break;
			prev = cur;
			continue;
		}
		while (ri < an->nrefs && an->refs[ri].u16 < prev) {
			ri++;           /* a run ICU did not start a segment at */
			nseg = -1;
		}
		bool word_seg = ubrk_getRuleStatus(an->bi) >= UBRK_WORD_NONE_LIMIT;
		if (ri < an->nrefs && an->refs[ri].u16 == prev) {
			struct run_ref *r = &an->refs[ri];
			if (r->hit) {
				/* The placeholder: its own segment (see above). */
				st = run_replay(an, text, r, &pos, k);
				ri++;
				if (st)
					break;
				prev = cur;
				continue;
			}
			if (nseg < 0)
				nseg = 0;
			if (cur <= r->u16_end && nseg < RUN_SEGS) {
				ends[nseg++] = (uint8_t)((be - (size_t)r->bs) |
				                         (word_seg ? RUN_WORD : 0));
				if (cur == r->u16_end) {
					run_add(an, text, r, ends, nseg);
					ri++;
					nseg = -1;
				} else {
					/* Still inside the run: the next segment
					 * starts where this one ends. */
					r->u16 = cur;
				}
			} else {
				ri++;   /* too many segments, or past the run */
				nseg = -1;
			}
		}
		if (word_seg)
			st = word(an, text, bs, be, &pos, k);
		if (st)
			break;
		prev = cur;
	}
	if (st == FRESHET_ANALYZER_NOMEM)
		set_err(an, "%s", "out of memory");
	return st;
}

static void do_destroy(struct freshet_analyzer *an)
{
	if (!an)
		return;
	if (an->bi)
		ubrk_close(an->bi);
	free(an->doc.p);
	free(an->map);
	if (an->filtered)
		unorm2_close(an->filtered);
	if (an->filter_set)
		uset_close(an->filter_set);
	if (an->stemmer)
		sb_stemmer_delete(an->stemmer);
	free(an->u1.p);
	free(an->u2.p);
	free(an->fold.p);
	free(an->tmp.p);
	free(an->out.p);
	free(an->cache);
	free(an->run_idx);
	free(an->arena);
	free(an->refs);
	free(an);
}

static int fail(char *errbuf, size_t errlen, int st, const char *fmt, const char *arg)
{
	if (errlen)
		snprintf(errbuf, errlen, fmt, arg);
	return st;
}

#if defined(FRESHET_PLUGIN_GENERIC)
#define PLUGIN_NAME "generic"
#elif defined(FRESHET_PLUGIN_SNOWBALL)
#define PLUGIN_NAME "snowball"
#elif defined(FRESHET_PLUGIN_CJK)
#define PLUGIN_NAME "cjk"
#elif defined(FRESHET_PLUGIN_SEA)
#define PLUGIN_NAME "sea"
#else
#error "define one of FRESHET_PLUGIN_GENERIC, _SNOWBALL, _CJK, _SEA"
#endif

#ifdef FRESHET_PLUGIN_GENERIC
static const bool serves_all = true;
static const char *const served[] = { "*", NULL };
#else
/* The codes whose row in the language table (language.c) names this
 * plugin, filled once by the entry; NULL-terminated.  Room for every row. */
#define MAX_SERVED 64
static const bool serves_all = false;
static const char *served[MAX_SERVED + 1];
static bool served_ok;
static pthread_once_t served_once = PTHREAD_ONCE_INIT;

static void served_init(void)
{
	size_t n = language_codes(PLUGIN_NAME, served, MAX_SERVED);
	served_ok = n > 0 && n <= MAX_SERVED;
	served[served_ok ? n : 0] = NULL;
}
#endif

static int do_create(const char *lang, const char *options,
                     struct freshet_analyzer **out, char *errbuf, size_t errlen)
{
	if (!lang || !out || !*lang || strlen(lang) >= 32)
		return fail(errbuf, errlen, FRESHET_ANALYZER_INVALID, "%s", "bad language code");
	/* Options: comma-separated stopwords=0|1, runcache=0|1. */
	bool stop_on = true, runcache = true;
	for (const char *o = options; o && *o;) {
		size_t ol = strcspn(o, ",");
		if (ol == 11 && strncmp(o, "stopwords=0", ol) == 0)
			stop_on = false;
		else if (ol == 11 && strncmp(o, "stopwords=1", ol) == 0)
			stop_on = true;
		else if (ol == 10 && strncmp(o, "runcache=0", ol) == 0)
			runcache = false;
		else if (ol == 10 && strncmp(o, "runcache=1", ol) == 0)
			runcache = true;
		else
			return fail(errbuf, errlen, FRESHET_ANALYZER_INVALID,
			            "unknown option: %s", options);
		o += ol;
		if (*o == ',')
			o++;
	}
	const struct language *prof = NULL;
	if (!serves_all) {
		for (size_t i = 0; served[i]; i++)
			if (strcmp(served[i], lang) == 0)
				prof = language_find(lang);
		if (!prof)
			return fail(errbuf, errlen, FRESHET_ANALYZER_UNSUPPORTED,
			            "language not served: %s", lang);
	}
	struct freshet_analyzer *an = calloc(1, sizeof *an);
	if (!an)
		return fail(errbuf, errlen, FRESHET_ANALYZER_NOMEM, "%s", "out of memory");
	if (prof) {
		an->prof = *prof;
	} else {
		/* Generic: no stemmer, no stopwords; Turkic casing where needed. */
		an->prof.code = "";
		an->prof.turkish = strcmp(lang, "tr") == 0 || strcmp(lang, "az") == 0 ||
		                   strncmp(lang, "tr-", 3) == 0 || strncmp(lang, "az-", 3) == 0;
	}
	snprintf(an->lang, sizeof an->lang, "%s", lang);
	an->stopwords_on = stop_on;
	if (an->prof.cjk && strcmp(an->prof.code, "ko") != 0 && runcache) {
		/* Korean keeps the plain path: Hangul is no dictionary run. */
		pthread_once(&run_classes_once, run_classes_init);
		an->runcache_on = run_classes_ok;
	}
	int st = FRESHET_ANALYZER_INTERNAL;
	UErrorCode e = U_ZERO_ERROR;
	an->cache = calloc(CACHE_SLOTS, sizeof *an->cache);
	if (!an->cache) {
		st = fail(errbuf, errlen, FRESHET_ANALYZER_NOMEM, "%s", "out of memory");
		goto out_fail;
	}
	an->bi = ubrk_open(UBRK_WORD, lang, NULL, 0, &e);
	if (U_FAILURE(e)) {
		st = fail(errbuf, errlen, e == U_MEMORY_ALLOCATION_ERROR ? FRESHET_ANALYZER_NOMEM
		          : FRESHET_ANALYZER_INTERNAL, "ubrk_open: %s", u_errorName(e));
		goto out_fail;
	}
	an->nfd = unorm2_getNFDInstance(&e);
	an->norm = unorm2_getNFKCCasefoldInstance(&e);
	if (U_FAILURE(e)) {
		st = fail(errbuf, errlen, FRESHET_ANALYZER_INTERNAL, "ICU: %s", u_errorName(e));
		goto out_fail;
	}
	if (an->prof.german) {
		/* German keeps ß in the plain view (Straße stays straße). */
		static const UChar pat[] = { '[', '^', 0xDF, ']', 0 };
		an->filter_set = uset_openPattern(pat, -1, &e);
		if (U_SUCCESS(e))
			an->filtered = unorm2_openFiltered(an->norm, an->filter_set, &e);
		if (U_FAILURE(e)) {
			st = fail(errbuf, errlen, FRESHET_ANALYZER_INTERNAL, "unorm2_openFiltered: %s",
			          u_errorName(e));
			goto out_fail;
		}
		an->norm = an->filtered;
	}
	if (an->prof.stemmer) {
		an->stemmer = sb_stemmer_new(an->prof.stemmer, "UTF_8");
		if (!an->stemmer) {
			st = fail(errbuf, errlen, FRESHET_ANALYZER_NOMEM,
			          "sb_stemmer_new(%s) failed", an->prof.stemmer);
			goto out_fail;
		}
	}
#ifdef FRESHET_PLUGIN_SNOWBALL
	for (const struct stopword_list *l = stopword_lists; l->lang; l++) {
		if (strcmp(l->lang, an->prof.code) == 0 ||
		    (strcmp(l->lang, "no") == 0 && an->prof.stemmer &&
		     strcmp(an->prof.stemmer, "norwegian") == 0)) {
			an->stop = l->words;
			an->nstop = l->count;
		}
	}
#endif
	*out = an;
	return FRESHET_ANALYZER_OK;
out_fail:
	do_destroy(an);
	return st;
}

static const char *do_errmsg(struct freshet_analyzer *an)
{
	return an ? an->err : "";
}


static const struct freshet_analyzer_api api = {
	.abi_version = FRESHET_ANALYZER_ABI_VERSION,
	.struct_size = sizeof(struct freshet_analyzer_api),
	.name = PLUGIN_NAME,
	.version = "1.0",
	.languages = served,
	.create = do_create,
	.destroy = do_destroy,
	.analyze = do_analyze,
	.errmsg = do_errmsg,
	.analyze_both = do_analyze_both,
};

/* Returns the table, or NULL (the loader refuses the plugin) when the
 * language table gives this plugin no language or more than it has room
 * for. */
EXPORT const struct freshet_analyzer_api *freshet_analyzer_entry(void)
{
#ifndef FRESHET_PLUGIN_GENERIC
	pthread_once(&served_once, served_init);
	if (!served_ok)
		return NULL;
#endif
	return &api;
}
