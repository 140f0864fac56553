#ifndef TE_CCURL_SHIM_H
#define TE_CCURL_SHIM_H
// curl_easy_setopt and curl_easy_getinfo are C variadics that Swift cannot call:
// these typed wrappers are the only way the Swift side reaches them.
#include <curl/curl.h>

static inline CURLcode te_curl_setopt_long(CURL *_Nonnull handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode te_curl_setopt_str(CURL *_Nonnull handle, CURLoption option, const char *_Nullable value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode te_curl_setopt_ptr(CURL *_Nonnull handle, CURLoption option, void *_Nullable value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode te_curl_setopt_write_callback(CURL *_Nonnull handle,
        size_t (*_Nonnull callback)(char *_Nonnull, size_t, size_t, void *_Nullable)) {
    return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}
static inline CURLcode te_curl_setopt_header_callback(CURL *_Nonnull handle,
        size_t (*_Nonnull callback)(char *_Nonnull, size_t, size_t, void *_Nullable)) {
    return curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
}
static inline CURLcode te_curl_setopt_xferinfo_callback(CURL *_Nonnull handle,
        int (*_Nonnull callback)(void *_Nullable, curl_off_t, curl_off_t, curl_off_t, curl_off_t)) {
    return curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
}
static inline CURLcode te_curl_getinfo_long(CURL *_Nonnull handle, CURLINFO info, long *_Nonnull value) {
    return curl_easy_getinfo(handle, info, value);
}
#endif
