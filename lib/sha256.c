#include <openssl/evp.h>

#include "log.h"
#include "sha256.h"
#include "util.h"

void
sha256_hex(const void *p, size_t n, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	static EVP_MD_CTX *ctx;
	static EVP_MD *md;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dn = 0, i;

	if (ctx == NULL) {
		if ((md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
		    (ctx = EVP_MD_CTX_new()) == NULL)
			die(EXIT_SOFTWARE, "OpenSSL: SHA-256 is not available");
	}
	if (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, p, n) != 1 ||
	    EVP_DigestFinal_ex(ctx, d, &dn) != 1 || dn != 32)
		die(EXIT_SOFTWARE, "OpenSSL: SHA-256 failed");
	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[64] = '\0';
}
