#ifndef TE_COPENSSL_SHIM_H
#define TE_COPENSSL_SHIM_H
// libcrypto only: EVP ciphers (AES-256-GCM), MACs (HMAC-SHA256), KDFs (HKDF), signatures (Ed25519),
// and SHA-256's state for the hit path's HMAC (below). SHA256_Init/Update/Final are deprecated in
// OpenSSL 3.0 in favour of EVP_MD, whose context copy allocates; they bypass providers, so a FIPS
// provider configured for OpenSSL would not cover the HMAC.
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

/// Absorbs one 64-byte pad block (the key XOR ipad or opad) into a fresh SHA-256 state.
static inline int te_sha256_pad_state(SHA256_CTX *state, const unsigned char pad[64]) {
    return SHA256_Init(state) == 1 && SHA256_Update(state, pad, 64) == 1;
}

/// HMAC-SHA256 (RFC 2104) of `prefix` then `data` from the key's inner and outer states (each the
/// SHA-256 state after its pad block). SHA256_CTX is a plain struct: a state is copied by value,
/// so a digest allocates nothing, while the EVP HMAC duplicates and frees two digest contexts.
/// Only OpenSSL's SHA-256 runs here; `HMACSHA256Tests` checks this against OpenSSL's own HMAC.
static inline int te_hmac_sha256(const SHA256_CTX *inner, const SHA256_CTX *outer,
                                 const unsigned char *prefix, size_t prefixCount,
                                 const unsigned char *data, size_t count, unsigned char out[32]) {
    SHA256_CTX context = *inner;
    unsigned char innerDigest[32];
    if (prefixCount > 0 && SHA256_Update(&context, prefix, prefixCount) != 1) return 0;
    if (count > 0 && SHA256_Update(&context, data, count) != 1) return 0;
    if (SHA256_Final(innerDigest, &context) != 1) return 0;
    context = *outer;
    if (SHA256_Update(&context, innerDigest, 32) != 1) return 0;
    return SHA256_Final(out, &context);
}
#endif
