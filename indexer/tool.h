/* SPDX-License-Identifier: MIT */
/*
 * tool.h: what the operator programs (reindex-page, freshet-search,
 * freshetctl) share: loading the configuration, picking a wiki, connecting
 * to Redis, parsing numbers from the command line, and exit codes.
 *
 * These helpers print their message to stderr and exit(TOOL_EXIT_USAGE) on
 * a usage or configuration error: they are for main() and its direct
 * helpers, never for library code.
 */
#ifndef FRESHET_TOOL_H
#define FRESHET_TOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "redis.h"

/* Exit codes shared by the tools (documented in their man pages). */
#define TOOL_EXIT_OK 0
#define TOOL_EXIT_FAIL 1
#define TOOL_EXIT_USAGE 2

/* Loads the configuration (--config arg, else $FRESHET_CONFIG, else the
 * defaults).  Exits 2 with the file:line message on error.  Caller frees
 * with conf_free(). */
struct conf *tool_load_conf(const char *prog, const char *arg);

/* Returns the wiki named `name`; with name NULL, the only configured wiki
 * (exits 2 when there are several).  Exits 2 for an unknown wiki. */
const struct conf_wiki *tool_wiki(const char *prog, const struct conf *cfg,
				  const char *name);

/* Returns a Redis handle for the configured server (not yet connected; the
 * first command connects).  Exits 2 on a bad URL or password file.
 * `read_timeout_ms` 0 means 5000. */
struct redis *tool_redis(const char *prog, const struct conf *cfg,
			 int read_timeout_ms);

/* Parses a decimal integer in [min, max] from an option's argument; exits
 * 2 naming the option when it is not one. */
int64_t tool_int(const char *prog, const char *opt, const char *arg,
		 int64_t min, int64_t max);

#endif
