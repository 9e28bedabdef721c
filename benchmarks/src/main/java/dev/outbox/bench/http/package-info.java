/**
 * The HTTP client's retry-storm benchmark ({@link dev.outbox.bench.http.RetryStormBenchmark}):
 * request amplification and recovery time of a failing dependency, with and without a retry
 * budget and circuit breaker. Results and conditions: {@code benchmarks/HTTP.md}.
 */
package dev.outbox.bench.http;
