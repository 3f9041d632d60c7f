/* SPDX-License-Identifier: MIT */
/*
 * fuzz-event.c: libFuzzer target for event_decode().
 *
 * Every input must either decode into an event whose invariants hold (ids
 * in range, titles 1..255 bytes, re-encodable and decoding back to the same
 * fields) or fail with STATUS_DECODE and a message that starts with a path.
 * Any crash, leak or sanitizer report is a bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event *ev = NULL;
	struct event_error err;
	enum status st = event_decode((const char *)data, size, &ev, &err);
	if (st != STATUS_OK) {
		if (st != STATUS_DECODE || !strstr(err.text, ": ") ||
		    strncmp(err.text, err.path, strlen(err.path)) != 0)
			abort();
		return 0;
	}
	if (ev->page_id < 1 || ev->page_id > EVENT_ID_MAX || !ev->title ||
	    strlen(ev->title) == 0 || strlen(ev->title) > EVENT_TITLE_MAX || !ev->wiki)
		abort();
	/* Round trip: what we encode we must read back identically. */
	char *json = event_encode(ev);
	struct event *back = NULL;
	if (event_decode(json, strlen(json), &back, &err) != STATUS_OK)
		abort();
	if (back->kind != ev->kind || back->page_id != ev->page_id ||
	    strcmp(back->title, ev->title) != 0 || back->rev_id != ev->rev_id ||
	    back->namespace_id != ev->namespace_id || strcmp(back->wiki, ev->wiki) != 0)
		abort();
	free(json);
	event_free(back);
	event_free(ev);
	return 0;
}
