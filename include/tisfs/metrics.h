/* metrics — what the daemon counts for /metrics (queries and their
 * latency), and the Prometheus text rendering of api_metrics (api.h). */
#ifndef TISFS_METRICS_H
#define TISFS_METRICS_H

#include "tisfs/api.h"

/* Counts one select that took seconds and ended with st. Lock-free. */
void metrics_query(double seconds, enum api_status st);

#endif
