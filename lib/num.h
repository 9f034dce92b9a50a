/* Strict parsing of numbers: from options, environment variables, hex digits. */
#ifndef TBL_NUM_H
#define TBL_NUM_H

/* Parse all of s as a decimal integer within [min, max]. Returns 0, or -1
 * with *why naming the problem. */
int	parse_ll(const char *s, long long min, long long max, long long *out, const char **why);
int	parse_double(const char *s, double min, double max, double *out, const char **why);

/* The same for an option argument; a bad value exits 64 naming the option. */
long long opt_ll(const char *opt, const char *s, long long min, long long max);
double	opt_double(const char *opt, const char *s, double min, double max);

/* The same for an environment variable (unset or empty gives def); a bad
 * value exits 78 naming the variable. */
long long env_ll(const char *name, long long def, long long min, long long max);
double	env_double(const char *name, double def, double min, double max);
const char *env_str(const char *name, const char *def);

/* The value of a hexadecimal digit of either case, or -1. */
int	hex_digit(int c);

#endif
