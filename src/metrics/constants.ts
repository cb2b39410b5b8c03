/** The one path the metrics endpoint serves */
export const METRICS_PATH = '/metrics'

/** Buckets of `agentnet_request_rtt_seconds`: loopback to a slow relayed peer with retries */
export const RTT_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/**
 * Distinct values one label (service name, error code) takes at most; later
 * ones are counted under {@link OTHER_LABEL}, so a peer choosing service
 * names or error codes cannot grow the series without bound
 */
export const MAX_LABEL_VALUES = 64

/** The label value that stands for every value past {@link MAX_LABEL_VALUES} */
export const OTHER_LABEL = '_other'

/** The label value of an error code another party chose (a remote service's own code) */
export const FOREIGN_LABEL = '_foreign'

/** Longest time a scrape may take before the server answers 503, ms */
export const SCRAPE_TIMEOUT_MS = 10_000
