/* SPDX-License-Identifier: MIT */
/*
 * tool.c: shared start-up of the operator programs.  Every failure here is
 * a usage or configuration error, reported once on stderr with the program
 * name, and ends the program with exit status 2 before anything was done.
 */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct conf *tool_load_conf(const char *prog, const char *arg)
{
	struct conf *cfg = conf_new();
	enum status st = conf_load(cfg, conf_path(arg));
	if (st != STATUS_OK) {
		fprintf(stderr, "%s: %s\n", prog, conf_errmsg(cfg));
		conf_free(cfg);
		exit(TOOL_EXIT_USAGE);
	}
	return cfg;
}

const struct conf_wiki *tool_wiki(const char *prog, const struct conf *cfg,
				  const char *name)
{
	if (!name) {
		if (cfg->n_wikis == 1)
			return &cfg->wikis[0];
		fprintf(stderr, "%s: several wikis are configured: say which with --wiki\n",
			prog);
		exit(TOOL_EXIT_USAGE);
	}
	const struct conf_wiki *w = conf_wiki(cfg, name);
	if (!w) {
		fprintf(stderr, "%s: wiki '%s' is not configured in %s (configured:",
			prog, name, cfg->path ? cfg->path : "the defaults");
		for (size_t i = 0; i < cfg->n_wikis; i++)
			fprintf(stderr, " %s", cfg->wikis[i].id);
		fprintf(stderr, ")\n");
		exit(TOOL_EXIT_USAGE);
	}
	return w;
}

struct redis *tool_redis(const char *prog, const struct conf *cfg,
			 int read_timeout_ms)
{
	struct redis_opts o = {
		.url = cfg->redis_url,
		.password_file = cfg->redis_password_file,
		.connect_timeout_ms = 2000,
		.read_timeout_ms = read_timeout_ms ? read_timeout_ms : 5000,
		.sentinels = cfg->redis_sentinels,
		.master_name = cfg->redis_master_name,
	};
	char err[256];
	struct redis *r = redis_new(&o, err, sizeof err);
	if (!r) {
		fprintf(stderr, "%s: redis: %s\n", prog, err);
		exit(TOOL_EXIT_USAGE);
	}
	return r;
}

int64_t tool_int(const char *prog, const char *opt, const char *arg,
		 int64_t min, int64_t max)
{
	char *end;
	errno = 0;
	long long v = strtoll(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max) {
		fprintf(stderr, "%s: %s wants an integer from %" PRId64 " to %" PRId64
			", not '%s'\n", prog, opt, min, max, arg);
		exit(TOOL_EXIT_USAGE);
	}
	return v;
}
