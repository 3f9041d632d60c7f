/* mw.c: a private MediaWiki for the tests (see mw.h). */
#include "mw.h"
