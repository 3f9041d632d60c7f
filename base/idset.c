/* SPDX-License-Identifier: MIT */
/*
 * idset.c: the page id set (see idset.h).  The hash is a Fibonacci
 * multiplication, so ids that follow each other spread over the table.
 */
#include "idset.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

static size_t slot(int64_t id, size_t cap)
{
	return (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

bool idset_add(struct idset *s, int64_t id)
{
	if (2 * (s->n + 1) > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		int64_t *nv = xcalloc(ncap, sizeof *nv);
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->v[i])
				continue;
			size_t h = slot(s->v[i], ncap);
			while (nv[h])
				h = (h + 1) & (ncap - 1);
			nv[h] = s->v[i];
		}
		free(s->v);
		s->v = nv;
		s->cap = ncap;
	}
	size_t h = slot(id, s->cap);
	while (s->v[h]) {
		if (s->v[h] == id)
			return false;
		h = (h + 1) & (s->cap - 1);
	}
	s->v[h] = id;
	s->n++;
	return true;
}

bool idset_has(const struct idset *s, int64_t id)
{
	if (!s->cap)
		return false;
	size_t h = slot(id, s->cap);
	while (s->v[h]) {
		if (s->v[h] == id)
			return true;
		h = (h + 1) & (s->cap - 1);
	}
	return false;
}

void idset_clear(struct idset *s)
{
	free(s->v);
	memset(s, 0, sizeof *s);
}
