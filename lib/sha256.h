/* SHA-256 through OpenSSL. */
#ifndef TBL_SHA256_H
#define TBL_SHA256_H

#include <stddef.h>

/* Lowercase hex SHA-256 of n bytes into out[65]. */
void	sha256_hex(const void *, size_t, char out[65]);

#endif
