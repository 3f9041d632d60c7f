/* SPDX-License-Identifier: MIT */
/*
 * test-event.c: decoding of Wikimedia page change and rerender events.
 *
 * Fixtures live in tests/fixtures/events/: Wikimedia's own examples, one
 * file per page_change_kind plus a rerender, and under bad/ the malformed
 * events with the JSON path each error must name (bad/MANIFEST).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "testsupport.h"

static struct event *load(const char *name)
{
	char rel[256];
	snprintf(rel, sizeof rel, "tests/fixtures/events/%s", name);
	char *path = test_srcpath(rel);
	size_t len;
	char *json = test_read_file(path, &len);
	cr_assert_not_null(json, "cannot read %s", path);
	struct event *ev = NULL;
	struct event_error err;
	enum status st = event_decode(json, len, &ev, &err);
	cr_assert_eq(st, STATUS_OK, "%s: %s", name, err.text);
	free(json);
	free(path);
	return ev;
}

Test(event, wikimedia_page_change_example)
{
	struct event *ev = load("page_change.edit.example.json");
	cr_expect_eq(ev->kind, EVENT_EDIT);
	cr_expect_str_eq(ev->wiki, "example");
	cr_expect_eq(ev->page_id, 1);
	cr_expect_str_eq(ev->title, "example");
	cr_expect_eq(ev->namespace_id, 1);
	cr_expect_eq(ev->rev_id, 2);
	cr_expect_eq(ev->is_redirect, 1);
	cr_expect_eq(ev->time_ms, INT64_C(1609459200000)); /* 2021-01-01T00:00:00.0Z */
	event_free(ev);
}

Test(event, wikimedia_rerender_example)
{
	struct event *ev = load("page_rerender.example.json");
	cr_expect_eq(ev->kind, EVENT_RERENDER);
	cr_expect_str_eq(ev->wiki, "mywiki");
	cr_expect_eq(ev->page_id, 123);
	cr_expect_str_eq(ev->title, "MyPage");
	cr_expect_eq(ev->namespace_id, 0);
	cr_expect_eq(ev->rev_id, 0, "rerenders keep the revision: no rev_id");
	cr_expect_eq(ev->time_ms, 0);
	event_free(ev);
}

Test(event, create)
{
	struct event *ev = load("create.json");
	cr_expect_eq(ev->kind, EVENT_CREATE);
	cr_expect_eq(ev->page_id, 10);
	cr_expect_str_eq(ev->title, "New_page");
	cr_expect_eq(ev->rev_id, 100);
	cr_expect_eq(ev->time_ms, INT64_C(1709642096789)); /* 2024-03-05T12:34:56.789Z */
	event_free(ev);
}

Test(event, edit_with_utf8_title)
{
	struct event *ev = load("edit.json");
	cr_expect_eq(ev->kind, EVENT_EDIT);
	cr_expect_eq(ev->page_id, 11);
	cr_expect_str_eq(ev->title, "\xc3\x89" "dition_d'\xc3\xa9t\xc3\xa9");
	cr_expect_eq(ev->rev_id, 111);
	event_free(ev);
}

Test(event, delete)
{
	struct event *ev = load("delete.json");
	cr_expect_eq(ev->kind, EVENT_DELETE);
	cr_expect_eq(ev->page_id, 12);
	cr_expect_str_eq(ev->title, "Gone");
	cr_expect_eq(ev->rev_id, 120);
	event_free(ev);
}

Test(event, suppressed_delete_without_revision)
{
	struct event *ev = load("delete.suppressed.json");
	cr_expect_eq(ev->kind, EVENT_DELETE);
	cr_expect_eq(ev->page_id, 13);
	cr_expect_eq(ev->namespace_id, 2);
	cr_expect_eq(ev->rev_id, 0);
	event_free(ev);
}

Test(event, undelete_with_prior_page_id)
{
	struct event *ev = load("undelete.json");
	cr_expect_eq(ev->kind, EVENT_UNDELETE);
	cr_expect_eq(ev->page_id, 14);
	cr_expect_eq(ev->prior_page_id, 9);
	cr_expect_eq(ev->rev_id, 140);
	event_free(ev);
}

Test(event, move_with_created_redirect)
{
	struct event *ev = load("move.json");
	cr_expect_eq(ev->kind, EVENT_MOVE);
	cr_expect_eq(ev->page_id, 15);
	cr_expect_str_eq(ev->title, "New_name");
	cr_expect_str_eq(ev->prior_title, "Old_name");
	cr_expect_eq(ev->prior_namespace_id, 0);
	cr_expect_eq(ev->redirect_page_id, 16);
	cr_expect_eq(ev->rev_id, 150);
	event_free(ev);
}

Test(event, move_across_namespaces_without_redirect)
{
	struct event *ev = load("move.noredirect.json");
	cr_expect_eq(ev->kind, EVENT_MOVE);
	cr_expect_eq(ev->namespace_id, 4);
	cr_expect_str_eq(ev->prior_title, "Draft");
	cr_expect_eq(ev->prior_namespace_id, 2);
	cr_expect_eq(ev->redirect_page_id, 0);
	event_free(ev);
}

Test(event, visibility_change)
{
	struct event *ev = load("visibility_change.json");
	cr_expect_eq(ev->kind, EVENT_VISIBILITY_CHANGE);
	cr_expect_eq(ev->page_id, 17);
	cr_expect_eq(ev->rev_id, 170);
	event_free(ev);
}

Test(event, rerender)
{
	struct event *ev = load("rerender.json");
	cr_expect_eq(ev->kind, EVENT_RERENDER);
	cr_expect_eq(ev->page_id, 18);
	cr_expect_str_eq(ev->title, "Rerendered");
	/* meta.dt wins over dt. */
	cr_expect_eq(ev->time_ms, INT64_C(1704067201000));
	event_free(ev);
}

Test(event, malformed_events_name_the_path)
{
	char *dir = test_srcpath("tests/fixtures/events/bad");
	char path[1024];
	snprintf(path, sizeof path, "%s/MANIFEST", dir);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s", path);
	char line[512];
	int n = 0;
	while (fgets(line, sizeof line, f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		line[strcspn(line, "\n")] = '\0';
		char *tab = strchr(line, '\t');
		cr_assert_not_null(tab, "bad manifest line: %s", line);
		*tab = '\0';
		const char *want = tab + 1;
		char fpath[1024];
		snprintf(fpath, sizeof fpath, "%s/%s", dir, line);
		size_t len;
		char *json = test_read_file(fpath, &len);
		cr_assert_not_null(json, "cannot read %s", fpath);
		struct event *ev = NULL;
		struct event_error err;
		enum status st = event_decode(json, len, &ev, &err);
		cr_expect_eq(st, STATUS_DECODE, "%s decoded but should not", line);
		if (st == STATUS_DECODE) {
			cr_expect_str_eq(err.path, want, "%s: error \"%s\", expected path %s", line,
			                 err.text, want);
			cr_expect(strncmp(err.text, want, strlen(want)) == 0 &&
			          strncmp(err.text + strlen(want), ": ", 2) == 0,
			          "%s: message \"%s\" does not start with the path", line, err.text);
		} else {
			event_free(ev);
		}
		free(json);
		n++;
	}
	fclose(f);
	free(dir);
	cr_expect_geq(n, 30, "only %d malformed fixtures", n);
}

Test(event, title_limit_is_255_bytes)
{
	char title[300];
	memset(title, 'a', 255);
	title[255] = '\0';
	json_t *e = test_event_json("edit", "w", 1, title, 9007199254740991L);
	json_object_set_new(e, "dt", json_string("2020-02-29T23:59:59+01:00"));
	json_object_set_new(json_object_get(e, "meta"), "dt",
			    json_string("2020-02-29T23:59:59+01:00"));
	char *json = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	cr_assert_not_null(json);
	struct event *ev = NULL;
	struct event_error err;
	cr_assert_eq(event_decode(json, strlen(json), &ev, &err), STATUS_OK, "%s", err.text);
	cr_expect_eq(strlen(ev->title), 255);
	cr_expect_eq(ev->rev_id, EVENT_ID_MAX);
	/* 2020-02-29T22:59:59Z */
	cr_expect_eq(ev->time_ms, INT64_C(1583017199000));
	event_free(ev);
	free(json);
}

Test(event, encode_round_trips_every_kind)
{
	const char *files[] = { "create.json", "edit.json", "delete.json", "delete.suppressed.json",
	                        "undelete.json", "move.json", "visibility_change.json",
	                        "rerender.json" };
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		struct event *ev = load(files[i]);
		char *json = event_encode(ev);
		struct event *back = NULL;
		struct event_error err;
		cr_assert_eq(event_decode(json, strlen(json), &back, &err), STATUS_OK, "%s: %s",
		             files[i], err.text);
		cr_expect_eq(back->kind, ev->kind, "%s", files[i]);
		cr_expect_eq(back->page_id, ev->page_id);
		cr_expect_str_eq(back->title, ev->title);
		cr_expect_eq(back->namespace_id, ev->namespace_id);
		cr_expect_eq(back->rev_id, ev->rev_id);
		cr_expect_eq(back->prior_page_id, ev->prior_page_id);
		cr_expect_eq(back->redirect_page_id, ev->redirect_page_id);
		cr_expect_eq(back->time_ms, ev->time_ms);
		if (ev->prior_title)
			cr_expect_str_eq(back->prior_title, ev->prior_title);
		struct event *d = event_dup(back);
		cr_expect_str_eq(d->wiki, ev->wiki);
		event_free(d);
		event_free(back);
		event_free(ev);
		free(json);
	}
}
