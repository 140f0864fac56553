#ifndef TE_CHIREDIS_SHIM_H
#define TE_CHIREDIS_SHIM_H
// hiredis needs no wrapper: the variadic redisCommand is replaced by redisCommandArgv.
#include <hiredis/hiredis.h>
#endif
