#ifndef TE_CMAXMINDDB_SHIM_H
#define TE_CMAXMINDDB_SHIM_H
// libmaxminddb needs no wrapper: the variadic MMDB_get_value is replaced by MMDB_aget_value.
#include <sys/socket.h>
#include <netinet/in.h>
#include <maxminddb.h>
#endif
