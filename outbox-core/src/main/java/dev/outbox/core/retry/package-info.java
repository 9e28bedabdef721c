/**
 * Retry primitives shared by the relay, the consumer and the HTTP client: exponential backoff
 * with full jitter ({@link dev.outbox.core.retry.Backoff}) and a retry budget ({@link
 * dev.outbox.core.retry.RetryBudget}). Circuit breakers come from Resilience4j.
 */
package dev.outbox.core.retry;
