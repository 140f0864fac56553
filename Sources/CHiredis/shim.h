#ifndef TE_CHIREDIS_SHIM_H
#define TE_CHIREDIS_SHIM_H
// hiredis needs no wrapper: the variadic redisCommand is replaced by redisCommandArgv
// (redisAsyncCommandArgv for the async API).
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#endif
