/*
 * utf8: UTF-8 well-formedness. Pure; returns lengths, never fails.
 */
#include "common/utf8.h"

size_t
utf8_sequence_len(const void *p, size_t avail)
{
	const unsigned char *s = p;
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n, i;

	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		n = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		n = 3;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		n = 4;
	else
		return 0;	/* ASCII, lone continuation byte, C0/C1, F5..FF */
	if (s[0] == 0xE0)
		lo = 0xA0;
	else if (s[0] == 0xED)
		hi = 0x9F;
	else if (s[0] == 0xF0)
		lo = 0x90;
	else if (s[0] == 0xF4)
		hi = 0x8F;
	if (avail < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

