/* SPDX-License-Identifier: MIT */
/*
 * prepass.c: the bytes libxml2 is given, made safe and small before parsing.
 *
 * Two steps, each making a copy only when something must change.  First
 * the input is made valid UTF-8 (invalid sequences become U+FFFD, control
 * characters below 0x20 other than white space become spaces), so libxml2
 * never falls back to another encoding and never sees a byte it could
 * misread; a clean document is recognised sixteen bytes at a time (SSE2)
 * or eight (SWAR) and not copied.  Then one scan, bound_depth(), keeps its own
 * stack of open element names to bound the nesting libxml2 will see, and
 * drops the attributes that cannot change the caller's output.
 *
 * The scan is a tokenizer of its own, simpler than libxml2's.  Its
 * invariant: an attribute is dropped only while the scan surely reads the
 * document as libxml2 2.9.14's HTML parser does (the "sync" flag); the
 * first construct it might read differently ends the stripping for the
 * rest of the document, though the nesting bound goes on.  The rewritten
 * copy is never longer than the scan's input (a replaced tag becomes one
 * space, a dropped attribute nothing).
 */
#include "prepass.h"
#include "buf.h"
#include "xmalloc.h"

#include <stdint.h>
#include <stdlib.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <string.h>
#include <strings.h>

/* Element names are compared on their first NAME_MAX_LEN bytes. */
#define NAME_MAX_LEN 15

struct prepass {
	unsigned max_depth;
	prepass_keep_fn keep;
	char (*names)[NAME_MAX_LEN + 1]; /* bound_depth()'s stack */
	/* The copies prepass_run() hands out, until prepass_release(). */
	struct buf utf8, bounded;
};

/* --- UTF-8 ------------------------------------------------------------ */

/* Returns the length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && s[1] < 0xA0)
			return 0; /* overlong */
		if (c == 0xED && s[1] >= 0xA0)
			return 0; /* surrogate */
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
		    (s[3] & 0xC0) != 0x80)
			return 0;
		if (c == 0xF0 && s[1] < 0x90)
			return 0; /* overlong */
		if (c == 0xF4 && s[1] >= 0x90)
			return 0; /* above U+10FFFF */
		return 4;
	}
	return 0;
}

/* Returns true if in is valid UTF-8 without NUL or control characters
 * other than white space (so prepass_utf8_clean() would copy it
 * unchanged). */
static bool utf8_is_clean(const char *in, size_t len)
{
	const unsigned char *s = (const unsigned char *)in;
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	size_t i = 0;
	while (i < len) {
#ifdef __SSE2__
		/* Sixteen bytes at a time with SSE2 (every x86-64 has it):
		 * the signed compare flags both bytes below 0x20 and bytes
		 * with the high bit. */
		while (len - i >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(s + i));
			__m128i low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
			__m128i nl = _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'));
			__m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F));
			if (_mm_movemask_epi8(_mm_or_si128(_mm_andnot_si128(nl, low),
							   del)))
				break;
			i += 16;
		}
#endif
		/* Eight bytes at a time while they are printable ASCII or
		 * newlines: no high bit, no 0x7F, no byte below 0x20 other
		 * than '\n' (the per-byte masks are exact: no borrow
		 * crosses a byte). */
		while (len - i >= 8) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			uint64_t below = ~((w | highs) - ones * 0x20) & ~w & highs;
			uint64_t nl = w ^ (ones * '\n');
			nl = ~(((nl & ~highs) + ~highs) | nl) & highs;
			uint64_t del = w ^ (ones * 0x7F);
			del = ~(((del & ~highs) + ~highs) | del) & highs;
			if ((w & highs) | (below & ~nl) | del)
				break;
			i += 8;
		}
		if (i >= len)
			break;
		unsigned char c = s[i];
		if (c >= 0x20 && c < 0x7F) {
			i++;
			continue;
		}
		if (c < 0x20) {
			if (c != '\t' && c != '\n' && c != '\r' && c != '\f')
				return false;
			i++;
			continue;
		}
		if (c == 0x7F)
			return false;
		size_t k = utf8_seq(s + i, len - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

void prepass_utf8_clean(struct buf *out, const char *in, size_t len)
{
	const unsigned char *s = (const unsigned char *)in;
	buf_grow(out, len + len / 8 + 16);
	size_t i = 0;
	while (i < len) {
		size_t start = i;
		while (i < len && s[i] >= 0x20 && s[i] < 0x80)
			i++;
		if (i > start)
			buf_add(out, s + start, i - start);
		if (i >= len)
			break;
		if (s[i] < 0x20) {
			bool ws = s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ||
				  s[i] == '\f';
			buf_addch(out, ws ? (char)s[i] : ' ');
			i++;
			continue;
		}
		if (s[i] == 0x7F) {
			buf_addch(out, ' ');
			i++;
			continue;
		}
		size_t k = utf8_seq(s + i, len - i);
		if (k) {
			buf_add(out, s + i, k);
			i += k;
		} else {
			buf_add(out, "\xEF\xBF\xBD", 3);
			i++;
		}
	}
}

/* --- nesting bound ----------------------------------------------------- */

/* libxml2's HTML parser scans its whole element stack for every end tag
 * that does not match the innermost element, so "<div>" x 100k followed by
 * "</i>" x 100k costs 10^10 steps.  Before parsing, this pass keeps its own
 * stack of open element names (an over-estimate of libxml2's: it knows no
 * implied closes) and replaces each start tag that would go deeper than the
 * bound with a space, so libxml2's stack, and each of its scans, stays
 * within the bound.  Text is kept.  The tokenizer is deliberately simple
 * (comments, doctype, processing instructions, quoted attribute values,
 * script and style bodies); where it and libxml2 disagree, libxml2's stack
 * can pass the bound, and the caller's own check on libxml2's depth stops
 * the parse (see prepass.h). */

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_name_char(unsigned char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '-' || c == ':' ||
	       c == '_' || c == '.';
}

/* True for the elements that never have content (HTML's void elements),
 * without a table search: this runs for every start tag. */
static bool is_void(const char *n, size_t len)
{
	switch (len) {
	case 2:
		return (n[0] == 'b' || n[0] == 'h') && n[1] == 'r';
	case 3:
		return !memcmp(n, "img", 3) || !memcmp(n, "col", 3) ||
		       !memcmp(n, "wbr", 3);
	case 4:
		return !memcmp(n, "link", 4) || !memcmp(n, "meta", 4) ||
		       !memcmp(n, "area", 4) || !memcmp(n, "base", 4);
	case 5:
		return !memcmp(n, "input", 5) || !memcmp(n, "embed", 5) ||
		       !memcmp(n, "param", 5) || !memcmp(n, "track", 5) ||
		       !memcmp(n, "frame", 5);
	case 6:
		return !memcmp(n, "source", 6) || !memcmp(n, "keygen", 6);
	case 7:
		return !memcmp(n, "isindex", 7);
	case 8:
		return !memcmp(n, "basefont", 8);
	}
	return false;
}

/* Returns the offset of needle (case-insensitive) in s[from, n), or n. */
static size_t find_ci(const char *s, size_t n, size_t from, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = from; i + k <= n; i++)
		if (strncasecmp(s + i, needle, k) == 0)
			return i;
	return n;
}

/* The bytes that can end a tag or open a quoted attribute value. */
static const unsigned char tag_stop[256] = { ['"'] = 1, ['\''] = 1, ['>'] = 1 };

/* --- attribute stripping ------------------------------------------------ */

/* The extractor reads two attributes: class (for a few class names) and id
 * (for "toc").  libxml2 parses every other attribute all the same: each
 * value is decoded a character at a time into a malloc'd copy, each name
 * is looked up in its dictionary, and a page of MediaWiki HTML has one or
 * two per element, nearly all "class" with a name the extractor ignores;
 * that is a large share of libxml2's work on a page.  So the nesting
 * pre-pass also drops, from each start tag it keeps, every attribute that
 * cannot change the output: all but class and id, a class or id whose
 * value the caller's prepass_keep_fn refuses, and any repeat of class or
 * id (libxml2 keeps only the first; once the first is dropped, a repeat
 * must go too or it would take its place).
 *
 * Only a tag whose every attribute has the plain shape below is rewritten,
 * and only if it ends where bound_depth() found its end.  The grammar is
 * libxml2 2.9.14's htmlParseStartTag() on that subset: blanks are space,
 * tab, CR and LF; each attribute follows a blank; a name starts with a
 * letter, '_', ':' or '.' and goes on with letters, digits, ':', '-', '_',
 * '.' (under 100 bytes, where libxml2 would cut it); "= value" may have
 * blanks around '='; a quoted value ends at the next same quote (character
 * references never consume a raw quote); an unquoted value ends at a blank
 * or '>' and holds no quote; no value holds a '<'.  A value with '&' is
 * kept when it matters (class, id): its decoded text is not known here.
 *
 * Stripping is only right where this pass and libxml2 agree on what is a
 * tag.  They can disagree after a construct the pre-pass reads more
 * simply (a start tag outside the grammar, an end tag with more than
 * blanks after its name, a doctype with quoted literals, a PI or bogus
 * comment, a comment holding "--!>" or a script or style body holding "</"
 * and a letter, where libxml2 ends them): bound_depth() stops stripping
 * for the rest of the document at the first one.  Each dropped span
 * starts at an attribute's name and takes the blanks after it, so the
 * blank before it stays and an unquoted value before it never meets a
 * "/>".  Adjacent spans merge and at most two attributes stay, so a tag
 * has at most three spans (STRIP_MAX; a tag with more would be left as it
 * is). */
#define STRIP_MAX 3
#define STRIP_FAIL ((size_t)-1)
#define HTML_NAME_MAX 100 /* libxml2's HTML_PARSER_BUFFER_SIZE */

static bool is_blank_ch(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses the attributes of a start tag, s[q, r] (s[r] is its '>'), and
 * stores in drop[] the byte spans to remove (each an attribute and the
 * blanks after it).  Returns the number of spans (0: nothing to drop), or
 * STRIP_FAIL if the tag is not of the plain shape. */
static size_t strip_spans(const char *s, size_t q, size_t r,
			  prepass_keep_fn keep_fn, size_t drop[STRIP_MAX][2])
{
	const unsigned char *u = (const unsigned char *)s;
	size_t k = q, nd = 0;
	bool full = false;
	bool seen_class = false, seen_id = false;
	for (;;) {
		size_t ws = k;
		while (k < r && is_blank_ch(u[k]))
			k++;
		if (k == r)
			break;
		if (u[k] == '/' && k + 1 == r)
			break;
		if (k == ws)
			return STRIP_FAIL;
		size_t a0 = k;
		if (!is_alpha(u[k]) && u[k] != '_' && u[k] != ':' && u[k] != '.')
			return STRIP_FAIL;
		while (k < r && is_name_char(u[k]))
			k++;
		size_t alen = k - a0;
		if (alen >= HTML_NAME_MAX)
			return STRIP_FAIL;
		const char *v = NULL;
		size_t vlen = 0;
		bool amp = false;
		size_t j = k;
		while (j < r && is_blank_ch(u[j]))
			j++;
		if (j < r && u[j] == '=') {
			j++;
			while (j < r && is_blank_ch(u[j]))
				j++;
			if (j >= r)
				return STRIP_FAIL;
			/* Values are short: one inline scan finds the end,
			 * a '<' (give up) and a '&'. */
			if (u[j] == '"' || u[j] == '\'') {
				unsigned char quote = u[j];
				size_t e = j + 1;
				for (; e < r && u[e] != quote; e++) {
					if (u[e] == '<')
						return STRIP_FAIL;
					amp |= u[e] == '&';
				}
				if (e >= r)
					return STRIP_FAIL;
				v = s + j + 1;
				vlen = e - j - 1;
				k = e + 1;
			} else {
				size_t v0 = j;
				for (; j < r && !is_blank_ch(u[j]); j++) {
					if (u[j] == '>' || u[j] == '"' ||
					    u[j] == '\'' || u[j] == '<')
						return STRIP_FAIL;
					amp |= u[j] == '&';
				}
				if (j == v0)
					return STRIP_FAIL;
				v = s + v0;
				vlen = j - v0;
				k = j;
			}
		}
		/* An attribute without a value ends at its name: the blanks
		 * after it belong to the next one. */
		bool keep = false;
		/* (c | 0x20) lowercases a letter and maps no other byte
		 * to one of these letters. */
		if (alen == 5 && (u[a0] | 0x20) == 'c' && (u[a0 + 1] | 0x20) == 'l' &&
		    (u[a0 + 2] | 0x20) == 'a' && (u[a0 + 3] | 0x20) == 's' &&
		    (u[a0 + 4] | 0x20) == 's') {
			if (!seen_class)
				keep = v && (amp || keep_fn("class", v, vlen));
			seen_class = true;
		} else if (alen == 2 && (u[a0] | 0x20) == 'i' &&
			   (u[a0 + 1] | 0x20) == 'd') {
			if (!seen_id)
				keep = v && (amp || keep_fn("id", v, vlen));
			seen_id = true;
		}
		if (!keep) {
			/* The attribute and the blanks after it: the blank
			 * before it stays, so the previous attribute's
			 * unquoted value never meets a "/>". */
			size_t t = k;
			while (t < r && is_blank_ch(u[t]))
				t++;
			if (nd && drop[nd - 1][1] == a0) {
				drop[nd - 1][1] = t; /* adjacent: one span */
			} else if (nd < STRIP_MAX) {
				drop[nd][0] = a0;
				drop[nd][1] = t;
				nd++;
			} else {
				full = true; /* the tag stays as it is */
			}
		}
	}
	return full ? 0 : nd;
}

/* Appends len bytes to out, the pre-pass's copy of an n-byte document:
 * room for all of it is made at the first append (the copy is never longer:
 * a replaced tag becomes one space, a stripped attribute nothing), so the
 * common case is one memcpy. */
static inline void out_add(struct buf *out, size_t n, const char *p,
			   size_t len)
{
	if (out->cap - out->len <= len)
		buf_grow(out, len > n ? len : n);
	memcpy(out->data + out->len, p, len);
	out->len += len;
	out->data[out->len] = '\0';
}

/* Copies s[*copied, ...) up to each span strip_spans() finds in the start
 * tag s[q, r] into out, skipping the spans (none if apply is false).
 * Returns false if the tag is not of the plain shape. */
static bool strip_tag(const struct prepass *pp, const char *s, size_t n,
		      size_t q, size_t r, struct buf *out, size_t *copied,
		      bool apply)
{
	size_t drop[STRIP_MAX][2];
	size_t nd = strip_spans(s, q, r, pp->keep, drop);
	if (nd == STRIP_FAIL)
		return false;
	if (!apply)
		return true;
	for (size_t d = 0; d < nd; d++) {
		out_add(out, n, s + *copied, drop[d][0] - *copied);
		*copied = drop[d][1];
	}
	return true;
}

/* The nesting bound and the attribute stripping, in one scan of s (valid
 * UTF-8).  Returns true with the rewritten document in out, or false if
 * nothing had to change (out untouched). */
static bool bound_depth(const struct prepass *pp, const char *s, size_t n,
			struct buf *out)
{
	unsigned max_depth = pp->max_depth;
	char (*stack)[NAME_MAX_LEN + 1] = pp->names;
	unsigned depth = 0;
	size_t i = 0, copied = 0;
	/* Attributes are stripped only while this pass surely reads the
	 * document as libxml2 does (see strip_spans()); the first construct
	 * it might read differently ends the stripping for the document. */
	bool sync = true;
	while (i < n) {
		const char *lt = memchr(s + i, '<', n - i);
		if (!lt)
			break;
		size_t p = (size_t)(lt - s);
		if (p + 1 >= n)
			break;
		unsigned char c = (unsigned char)s[p + 1];
		if (c == '!' || c == '?') {
			size_t e;
			if (n - p >= 4 && memcmp(s + p, "<!--", 4) == 0) {
				e = find_ci(s, n, p + 4, "-->");
				i = e < n ? e + 3 : n;
				/* libxml2 2.9.14 also ends a comment at "--!>". */
				if (sync && find_ci(s, e, p + 4, "--!>") < e)
					sync = false;
			} else {
				const char *gt = memchr(s + p, '>', n - p);
				i = gt ? (size_t)(gt - s) + 1 : n;
				/* A doctype without quoted literals ends at
				 * its '>' for libxml2 too; a PI or bogus
				 * comment might not. */
				if (sync && (n - p < 9 ||
					     strncasecmp(s + p, "<!doctype", 9) ||
					     memchr(s + p, '"', i - p) ||
					     memchr(s + p, '\'', i - p) ||
					     memchr(s + p + 1, '<', i - p - 1)))
					sync = false;
			}
			continue;
		}
		bool end = c == '/';
		size_t q = p + 1 + (end ? 1 : 0);
		if (q >= n || !is_alpha((unsigned char)s[q])) {
			i = p + 1;
			continue;
		}
		/* Zero-padded, so names are copied and compared as whole
		 * 16-byte arrays (no strcmp or strlen per tag). */
		char name[NAME_MAX_LEN + 1];
		memset(name, 0, sizeof(name));
		size_t nl = 0, name0 = q;
		while (q < n && is_name_char((unsigned char)s[q])) {
			if (nl < NAME_MAX_LEN) {
				char ch = s[q];
				name[nl++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
			}
			q++;
		}
		name[nl] = '\0';
		/* The end of the tag, skipping quoted attribute values. */
		size_t r = q;
		while (r < n) {
			while (r < n && !tag_stop[(unsigned char)s[r]])
				r++;
			if (r >= n || s[r] == '>')
				break;
			if (r > q && s[r - 1] == '=') {
				const char *e = memchr(s + r + 1, s[r], n - r - 1);
				r = e ? (size_t)(e - s) + 1 : n;
			} else {
				r++;
			}
		}
		if (r >= n)
			break;
		i = r + 1;
		if (q - name0 >= HTML_NAME_MAX)
			sync = false; /* libxml2 cuts the name there */
		if (end) {
			/* libxml2 reads "</name>" with blanks before '>' only. */
			if (sync) {
				size_t k = q;
				while (k < r && is_blank_ch((unsigned char)s[k]))
					k++;
				if (k != r)
					sync = false;
			}
			bool found = false;
			for (unsigned k = depth; k > 0; k--) {
				if (memcmp(stack[k - 1], name, sizeof(name)) == 0) {
					depth = k - 1;
					found = true;
					break;
				}
			}
			/* An end tag that closes nothing would only make
			 * libxml2 scan its stack; at most it would close an
			 * element libxml2 implied (a <p>), and a space breaks
			 * words just as well. */
			if (!found) {
				out_add(out, n, s + copied, p - copied);
				out_add(out, n, " ", 1);
				copied = i;
			}
			continue;
		}
		/* Not <meta>: its attributes could name a charset (ignored
		 * with HTML_PARSE_IGNORE_ENC, but there is nothing to gain). */
		bool strip = !(nl == 4 && !memcmp(name, "meta", 4));
		bool self_closing = s[r - 1] == '/';
		if (self_closing || is_void(name, nl)) {
			if (sync &&
			    !strip_tag(pp, s, n, q, r, out, &copied, strip))
				sync = false;
			continue;
		}
		bool raw = !strcmp(name, "script") || !strcmp(name, "style");
		if (depth >= max_depth) {
			/* Too deep: the tag becomes a space; a script or
			 * style goes with its body, which is not text. */
			out_add(out, n, s + copied, p - copied);
			out_add(out, n, " ", 1);
			if (raw) {
				size_t e = find_ci(s, n, i, !strcmp(name, "script")
								? "</script" : "</style");
				const char *gt = e < n ? memchr(s + e, '>', n - e) : NULL;
				i = gt ? (size_t)(gt - s) + 1 : n;
			}
			copied = i;
			continue;
		}
		memcpy(stack[depth++], name, sizeof(name));
		if (sync && !strip_tag(pp, s, n, q, r, out, &copied, strip))
			sync = false;
		if (raw) {
			size_t e = find_ci(s, n, i, !strcmp(name, "script")
							? "</script" : "</style");
			/* libxml2 ends the body at the first "</" and a
			 * letter, this pass at "</script" or "</style". */
			for (size_t k = i; sync && k + 2 < e; k++) {
				const char *lt = memchr(s + k, '<', e - 2 - k);
				if (!lt)
					break;
				k = (size_t)(lt - s);
				if (s[k + 1] == '/' && is_alpha((unsigned char)s[k + 2]))
					sync = false;
			}
			i = e;
		}
	}
	if (!copied)
		return false; /* nothing changed: the caller parses s itself */
	out_add(out, n, s + copied, n - copied);
	return true;
}

/* --- public ------------------------------------------------------------- */

struct prepass *prepass_new(unsigned max_depth, prepass_keep_fn keep)
{
	struct prepass *pp = xcalloc(1, sizeof(*pp));
	pp->max_depth = max_depth;
	pp->keep = keep;
	pp->names = xmalloc((max_depth ? max_depth : 1) * sizeof(*pp->names));
	buf_init(&pp->utf8);
	buf_init(&pp->bounded);
	return pp;
}

void prepass_free(struct prepass *pp)
{
	if (!pp)
		return;
	prepass_release(pp);
	free(pp->names);
	free(pp);
}

void prepass_release(struct prepass *pp)
{
	buf_release(&pp->utf8);
	buf_release(&pp->bounded);
}

const char *prepass_run(struct prepass *pp, const char *html, size_t len,
			size_t *out_len)
{
	prepass_release(pp);
	const char *src = html;
	size_t src_len = len;
	if (!utf8_is_clean(html, len)) {
		prepass_utf8_clean(&pp->utf8, html, len);
		src = pp->utf8.data;
		src_len = pp->utf8.len;
	}
	if (bound_depth(pp, src, src_len, &pp->bounded)) {
		src = pp->bounded.data;
		src_len = pp->bounded.len;
	}
	*out_len = src_len;
	return src;
}
