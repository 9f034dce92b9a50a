#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "num.h"
#include "util.h"

int
parse_ll(const char *s, long long min, long long max, long long *out, const char **why)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || *s == ' ' || *s == '\t' || *s == '+') {
		*why = "not a number";
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0') {
		*why = "not a number";
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		*why = "out of range";
		return -1;
	}
	*out = v;
	return 0;
}

int
parse_double(const char *s, double min, double max, double *out, const char **why)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0' || *s == ' ' || *s == '\t' || *s == '+') {
		*why = "not a number";
		return -1;
	}
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0' || isnan(v) || isinf(v) ||
	    strpbrk(s, "xXnNiI") != NULL) {
		*why = "not a number";
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		*why = "out of range";
		return -1;
	}
	*out = v;
	return 0;
}

long long
opt_ll(const char *opt, const char *s, long long min, long long max)
{
	const char *why;
	long long v;

	if (parse_ll(s, min, max, &v, &why) < 0)
		die(EXIT_USAGE, "option %s: '%s' is %s (want an integer from %lld to %lld)",
		    opt, s, why, min, max);
	return v;
}

double
opt_double(const char *opt, const char *s, double min, double max)
{
	const char *why;
	double v;

	if (parse_double(s, min, max, &v, &why) < 0)
		die(EXIT_USAGE, "option %s: '%s' is %s (want a number from %g to %g)",
		    opt, s, why, min, max);
	return v;
}

const char *
env_str(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v == NULL || *v == '\0' ? def : v;
}

long long
env_ll(const char *name, long long def, long long min, long long max)
{
	const char *s = env_str(name, NULL), *why;
	long long v;

	if (s == NULL)
		return def;
	if (parse_ll(s, min, max, &v, &why) < 0)
		die(EXIT_CONFIG, "%s: '%s' is %s (want an integer from %lld to %lld)",
		    name, s, why, min, max);
	return v;
}

double
env_double(const char *name, double def, double min, double max)
{
	const char *s = env_str(name, NULL), *why;
	double v;

	if (s == NULL)
		return def;
	if (parse_double(s, min, max, &v, &why) < 0)
		die(EXIT_CONFIG, "%s: '%s' is %s (want a number from %g to %g)",
		    name, s, why, min, max);
	return v;
}

int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
