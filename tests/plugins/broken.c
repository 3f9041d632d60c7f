/* SPDX-License-Identifier: MIT */
/*
 * broken.c: deliberately broken analyzer plugins for tests/test-loader.c.
 * BROKEN_NOENTRY exports no entry symbol, BROKEN_BADABI returns a table of
 * ABI version 999, BROKEN_SMALL a table whose struct_size is too small.
 * The loader must refuse each with its reason and keep the others.
 */
#include <stddef.h>

#include "analyzer.h"

#if defined(BROKEN_NOENTRY)
int freshet_not_the_entry(void);
int freshet_not_the_entry(void)
{
	return 0;
}
#else
static const char *const langs[] = { "xx-broken", NULL };
static const struct freshet_analyzer_api api = {
#if defined(BROKEN_BADABI)
	.abi_version = 999,
	.struct_size = sizeof(struct freshet_analyzer_api),
#else
	.abi_version = FRESHET_ANALYZER_ABI_VERSION,
	.struct_size = 2 * sizeof(uint32_t) + sizeof(char *),
#endif
	.name = "broken",
	.version = "0",
	.languages = langs,
};

const struct freshet_analyzer_api *freshet_analyzer_entry(void)
{
	return &api;
}
#endif
