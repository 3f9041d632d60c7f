/* SPDX-License-Identifier: MIT */
/*
 * test-core.c: the small shared pieces (status names, buffers, log quoting,
 * id sets).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "document.h"
#include "idset.h"
#include "log.h"
#include "redact.h"
#include "status.h"
#include "testsupport.h"

Test(status, every_code_has_a_name)
{
	for (int i = 0; i < STATUS__COUNT; i++) {
		const char *s = status_str((enum status)i);
		cr_assert_not_null(s);
		cr_assert_neq(strcmp(s, "invalid status"), 0, "status %d unnamed", i);
	}
	cr_assert_str_eq(status_str(STATUS__COUNT), "invalid status");
	cr_assert(status_is_transient(STATUS_TRANSIENT));
	cr_assert_not(status_is_transient(STATUS_PERMANENT));
}

Test(buf, starts_empty_and_terminated)
{
	struct buf b = BUF_INIT;
	cr_assert_str_eq(b.data, "");
	buf_addf(&b, "%d-%s", 42, "x");
	buf_adds(&b, "yz");
	buf_addch(&b, '!');
	cr_assert_str_eq(b.data, "42-xyz!");
	cr_assert_eq(b.len, 7);
	size_t len;
	char *s = buf_detach(&b, &len);
	cr_assert_str_eq(s, "42-xyz!");
	cr_assert_eq(len, 7);
	cr_assert_str_eq(b.data, "");
	free(s);
}

Test(buf, grows_past_many_doublings)
{
	struct buf b = BUF_INIT;
	for (int i = 0; i < 100000; i++)
		buf_addch(&b, 'a' + i % 26);
	cr_assert_eq(b.len, 100000);
	cr_assert_eq(b.data[100000], '\0');
	cr_assert_eq(b.data[99999], 'a' + 99999 % 26);
	buf_release(&b);
}

Test(log, quotes_values_with_spaces)
{
	cr_assert_str_eq(log_quote("simple"), "simple");
	cr_assert_str_eq(log_quote("two words"), "\"two words\"");
	cr_assert_str_eq(log_quote("a\"b"), "\"a\\\"b\"");
	cr_assert_str_eq(log_quote(""), "\"\"");
	/* Control characters never reach the terminal raw. */
	cr_assert_str_eq(log_quote("a\x1b[2Jb"), "\"a\\x1b[2Jb\"");
	cr_assert_str_eq(log_quote("l1\nl2\tx\x7f"), "\"l1\\x0al2\\x09x\\x7f\"");
	cr_assert_str_eq(log_quote("csi\xc2\x9b" "1m é"), "\"csi\\xc2\\x9b1m é\"");
	cr_assert_eq(log_level_parse("WARN"), LOG_LEVEL_WARN);
	cr_assert_eq(log_level_parse("loud"), -1);
}

Test(redact, urls_lose_their_userinfo_and_nothing_else)
{
	const char *cases[][2] = {
		{ "http://user:pass@wiki.example/w/api.php",
		  "http://wiki.example/w/api.php" },
		{ "GET https://a:b@c@h:8080/api.php?x=1: HTTP 404",
		  "GET https://h:8080/api.php?x=1: HTTP 404" },
		{ "refused redirect to http://u:p@h/x and ftp://v@g",
		  "refused redirect to http://h/x and ftp://g" },
		{ "mail me@example.org at http://h/a@b", "mail me@example.org at http://h/a@b" },
		{ "no url here", "no url here" },
		{ "http://", "http://" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *r = redact_userinfo(cases[i][0]);
		cr_expect_str_eq(r, cases[i][1], "%s", cases[i][0]);
		free(r);
	}
	char *r = redact_userinfo(NULL);
	cr_expect_str_eq(r, "");
	free(r);
}

Test(redact, page_urls_keep_the_host_and_lose_credentials)
{
	const char *cases[][2] = {
		{ "http://u:p@h/w/api.php", "http://h/w/index.php?title=A_b" },
		{ "https://h/api.php", "https://h/index.php?title=A_b" },
		{ "http://h", "http://h/index.php?title=A_b" },
		{ "http://u:p@h:8080", "http://h:8080/index.php?title=A_b" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *u = document_page_url(cases[i][0], "A b");
		cr_expect_str_eq(u, cases[i][1], "%s", cases[i][0]);
		free(u);
	}
}

Test(log, lines_carry_no_raw_control_characters)
{
	char *dir = test_mkdtemp("log");
	char path[512];
	snprintf(path, sizeof path, "%s/err", dir);
	fflush(stderr);
	int saved = dup(2);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0 && saved >= 0);
	dup2(fd, 2);
	close(fd);
	/* Quoted, and not quoted (a caller that forgot log_quote()). */
	log_error("action=test reason=%s raw=%s", log_quote("bad\x1b]0;t\x07"),
		  "x\x1b[31my\nlevel=forged");
	dup2(saved, 2);
	close(saved);
	size_t len = 0;
	char *text = test_read_file(path, &len);
	cr_assert_not_null(text);
	for (size_t i = 0; i + 1 < len; i++)
		cr_assert(!((unsigned char)text[i] < 0x20 || text[i] == 0x7f),
			  "raw byte 0x%02x at %zu: %s", (unsigned char)text[i], i, text);
	cr_assert_eq(text[len - 1], '\n');
	cr_assert(strstr(text, "reason=\"bad\\x1b]0;t\\x07\" raw=x\\x1b[31my\\x0alevel=forged\n"),
		  "%s", text);
	free(text);
	test_rmtree(dir);
	free(dir);
}

Test(buf, escaped_text_has_no_control_characters)
{
	struct buf b = BUF_INIT;
	buf_add_escaped(&b, "a\x1b[0m\0b\x7f\xc2\x9b\xc2\xa0", 12);
	cr_assert_str_eq(b.data, "a\\x1b[0m\\x00b\\x7f\\xc2\\x9b\xc2\xa0");
	buf_release(&b);
}

Test(testsupport, redis_starts_and_restarts)
{
	struct test_redis *r = test_redis_start();
	cr_assert_gt(r->port, 0);
	test_redis_pause(r);
	test_redis_resume(r);
	test_redis_stop(r);
}

Test(idset, adds_once_and_grows)
{
	struct idset s = { 0 };
	cr_assert_not(idset_has(&s, 7), "an empty set holds nothing");
	for (int64_t id = 1; id <= 5000; id++)
		cr_assert(idset_add(&s, id * 1024), "id %lld refused", (long long)id);
	cr_assert_eq(s.n, 5000);
	cr_assert_not(idset_add(&s, 3 * 1024), "an id added twice");
	cr_assert_eq(s.n, 5000);
	for (int64_t id = 1; id <= 5000; id++)
		cr_assert(idset_has(&s, id * 1024), "id %lld lost", (long long)id);
	cr_assert_not(idset_has(&s, 1023));
	idset_clear(&s);
	cr_assert_eq(s.n, 0);
	cr_assert_not(idset_has(&s, 1024));
	cr_assert(idset_add(&s, 1024), "a cleared set takes ids again");
	idset_clear(&s);
}
