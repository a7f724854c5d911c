/* source — what every source module shares: the log helper (source.h). */
#include "tisfs/source.h"

#include <stdarg.h>
#include <stdio.h>

void source_logf(source_log_fn log, void *arg, const char *fmt, ...)
{
    if (!log)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log(arg, line);
}
