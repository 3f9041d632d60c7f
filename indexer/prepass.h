/* SPDX-License-Identifier: MIT */
/*
 * prepass.h: HTML made safe for libxml2's parser, before it parses.
 *
 * The extractor (extract.c) gives libxml2's HTML push parser the bytes
 * prepass_run() returns, not the page itself.  The pre-pass does three
 * things, in one copy at most per step:
 *
 *   UTF-8       The output is valid UTF-8 without NUL: an invalid byte
 *               sequence becomes U+FFFD (one per byte that starts no valid
 *               sequence), a control character below 0x20 other than tab,
 *               LF, CR and FF becomes a space (DEL, 0x7F, is passed on).
 *               libxml2 then never falls back to another encoding.
 *
 *   nesting     The pre-pass keeps its own stack of open element names, an
 *               over-estimate of libxml2's (it knows no implied closes).
 *               A start tag that would go deeper than max_depth becomes
 *               one space; past the bound, a <script> or <style> start tag
 *               takes its body and its end tag with it (they are not
 *               text).  An end tag that matches no open name becomes one
 *               space (libxml2 would scan its whole stack for it, so
 *               hostile input such as "<div>" x 100k then "</i>" x 100k
 *               costs quadratic time; at most it would have closed an
 *               element libxml2 implied, a <p>, and a space breaks words
 *               as well).  Text is kept.  Void elements (br, img, ...) and
 *               self-closing tags do not count.
 *
 *   attributes  From each start tag it keeps, other than <meta>, the
 *               pre-pass drops every attribute but class and id, a class
 *               or id whose value keep() refuses, and any repeat of class
 *               or id (libxml2 keeps only the first).  A class or id whose
 *               value holds '&' is kept without asking: its decoded text
 *               is not known.  Stripping is done only while the pre-pass
 *               surely reads the tags as libxml2 does (below).
 *
 * What stays equal.  For the caller, parsing the output gives the same
 * SAX events as parsing the UTF-8-clean input, except that (a) the
 * dropped attributes are missing, and (b) where the nesting bound replaced
 * a tag (with, past the bound, a script's or style's body) there is a
 * space in the character data instead.  (a) holds because a
 * tag is rewritten only if every attribute has the plain shape libxml2
 * 2.9.14's htmlParseStartTag() reads (see prepass.c) and the tag ends
 * where libxml2 ends it, and because stripping stops for the rest of the
 * document at the first construct the pre-pass might read differently
 * from libxml2: a start tag outside that shape, an end tag with more than
 * blanks after its name, an element name of 100 bytes or more, a doctype
 * with quoted literals, a processing instruction or bogus comment
 * ("<!x>", "<?x>"), a comment holding "--!>" (libxml2 ends the comment
 * there, the pre-pass at "-->"), or a script or style body holding "</"
 * and a letter (libxml2 ends the body there, the pre-pass at "</script"
 * or "</style").  So keep() must accept every class and id value that can
 * change the caller's output; the rest of the output is the same.
 *
 * What is not guaranteed: the nesting bound is on the pre-pass's reading
 * of the document.  Where its simpler tokenizer and libxml2's disagree
 * (the same constructs as above), libxml2's own stack can pass max_depth;
 * a caller that must stay linear checks libxml2's depth itself and stops
 * the parse (extract.c does, a little above max_depth).
 *
 * Memory and time are linear in the input.  The UTF-8 copy is at most
 * three times the input (U+FFFD for a byte); the rewritten copy is never
 * longer than the UTF-8-clean text.
 *
 * Threads: a struct prepass is used by one thread at a time (it holds the
 * name stack and the copies); use one per thread.  prepass_utf8_clean()
 * and the keep function hold no state and may run on any thread.
 */
#ifndef FRESHET_PREPASS_H
#define FRESHET_PREPASS_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* Says whether a class or id attribute can change the caller's output, so
 * must be kept.  attr is "class" or "id" (NUL-terminated, lowercase, as
 * the attribute name is matched case-insensitively).  value is the
 * attribute's value as written (n bytes, not NUL-terminated, quotes
 * removed; a class value is the whole space-separated list), never holding
 * '&' or '<'.  Called only for the first class and the first id of a tag.
 * Must not fail and must hold no state the pre-pass could race on. */
typedef bool (*prepass_keep_fn)(const char *attr, const char *value,
				size_t n);

struct prepass;

/* Creates a pre-pass that bounds nesting at max_depth open elements and
 * keeps the class and id attributes keep() accepts.  Aborts on OOM. */
struct prepass *prepass_new(unsigned max_depth, prepass_keep_fn keep);
/* Frees pp and any copy it still holds; NULL is a no-op. */
void prepass_free(struct prepass *pp);

/* Runs the pre-pass on html (len bytes, any bytes, need not be
 * NUL-terminated; borrowed for the call) and returns the bytes to parse,
 * setting *out_len.  The result is html itself when nothing had to change
 * (valid, clean UTF-8, no tag past the bound, no attribute to drop), else
 * a NUL-terminated copy owned by pp and valid until the next
 * prepass_run() or prepass_release() on pp, or prepass_free().  Never
 * fails (aborts on OOM). */
const char *prepass_run(struct prepass *pp, const char *html, size_t len,
			size_t *out_len);

/* Frees the copies the last prepass_run() made: they are as large as the
 * document, so release them once the parse is done.  pp stays usable. */
void prepass_release(struct prepass *pp);

/* Appends in (len bytes, any bytes) to out as valid UTF-8 without NUL, by
 * the UTF-8 rule above (the first step of prepass_run()).  For strings
 * that skip the rest of the pre-pass, such as titles and category names. */
void prepass_utf8_clean(struct buf *out, const char *in, size_t len);

#endif
